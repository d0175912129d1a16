"""The bank's calendar, the pure rules: when a job runs for a business date in the bank's time zone, which
date comes next for each cadence, and how long a failed job waits before it is tried again."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microlend.core import jobs
from microlend.core.errors import ValidationError


class TestRunAt:
    def test_the_cut_off_is_local_time_in_the_bank_zone(self) -> None:
        assert jobs.run_at(date(2026, 3, 1), "23:00", "Asia/Shanghai") == datetime(2026, 3, 1, 15, 0, tzinfo=UTC)
        assert jobs.run_at(date(2026, 3, 1), "09:00", "Asia/Shanghai") == datetime(2026, 3, 1, 1, 0, tzinfo=UTC)

    def test_a_zone_with_summer_time_moves_the_utc_moment(self) -> None:
        winter = jobs.run_at(date(2026, 1, 15), "23:00", "Europe/Berlin")
        summer = jobs.run_at(date(2026, 7, 15), "23:00", "Europe/Berlin")
        assert (winter.hour, summer.hour) == (22, 21)

    def test_a_bad_zone_or_time_is_refused_with_its_name(self) -> None:
        with pytest.raises(ValidationError, match="Mars/Olympus"):
            jobs.run_at(date(2026, 1, 1), "23:00", "Mars/Olympus")
        with pytest.raises(ValidationError, match="25:00"):
            jobs.run_at(date(2026, 1, 1), "25:00", "Asia/Shanghai")


class TestNextBusinessDate:
    def test_daily_is_the_next_day(self) -> None:
        assert jobs.following_business_date(jobs.DAILY, date(2026, 2, 28)) == date(2026, 3, 1)

    def test_month_end_is_the_last_day_of_the_next_month(self) -> None:
        assert jobs.first_business_date(jobs.MONTH_END, date(2026, 2, 3)) == date(2026, 2, 28)
        assert jobs.following_business_date(jobs.MONTH_END, date(2026, 2, 28)) == date(2026, 3, 31)
        assert jobs.following_business_date(jobs.MONTH_END, date(2028, 1, 31)) == date(2028, 2, 29)
        assert jobs.following_business_date(jobs.MONTH_END, date(2026, 12, 31)) == date(2027, 1, 31)

    def test_hourly_runs_at_the_next_full_hour(self) -> None:
        now = datetime(2026, 3, 1, 15, 42, 7, tzinfo=UTC)
        business_date, at = jobs.next_run(jobs.HOURLY, date(2026, 3, 1), "00:00", "Asia/Shanghai", now)
        assert at == datetime(2026, 3, 1, 16, 0, tzinfo=UTC) and business_date == date(2026, 3, 2)  # 00:00 local

    @given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)))
    def test_every_month_end_is_a_last_day_and_none_is_skipped(self, on: date) -> None:
        first = jobs.first_business_date(jobs.MONTH_END, on)
        following = jobs.following_business_date(jobs.MONTH_END, first)
        assert first >= on and (first + timedelta(days=1)).day == 1 and (following + timedelta(days=1)).day == 1
        assert (following.year * 12 + following.month) - (first.year * 12 + first.month) == 1


class TestBackoff:
    def test_the_wait_doubles_up_to_two_hours(self) -> None:
        waits = [jobs.backoff(n) for n in range(1, 11)]
        assert waits[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
        assert waits[-1] == jobs.LONGEST_WAIT == timedelta(hours=2)
        assert all(a <= b for a, b in pairwise(waits))
