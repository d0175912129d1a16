"""Repayment reminders, the pure rules: quiet hours across midnight in the bank's time zone, the moment a
message may go, the bank's own wording checked before it is stored, and amounts written to the cent."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microlend.core.errors import ValidationError
from microlend.servicing.reminders import DEFAULT_TEMPLATES, KINDS, ReminderSettings, render

SHANGHAI_22H = datetime(2026, 2, 12, 14, 0, tzinfo=UTC)


class TestQuietHours:
    def test_the_night_is_quiet_in_shanghai(self) -> None:
        rules = ReminderSettings()
        assert rules.quiet(SHANGHAI_22H)  # 22:00
        assert rules.quiet(datetime(2026, 2, 12, 23, 59, tzinfo=UTC))  # 07:59
        assert not rules.quiet(datetime(2026, 2, 13, 0, 0, tzinfo=UTC))  # 08:00
        assert not rules.quiet(datetime(2026, 2, 12, 12, 59, tzinfo=UTC))  # 20:59

    def test_a_message_due_at_night_goes_at_eight_in_the_morning(self) -> None:
        assert ReminderSettings().next_allowed(SHANGHAI_22H) == datetime(2026, 2, 13, 0, 0, tzinfo=UTC)
        after_midnight = datetime(2026, 2, 12, 17, 30, tzinfo=UTC)  # 01:30 on the 13th
        assert ReminderSettings().next_allowed(after_midnight) == datetime(2026, 2, 13, 0, 0, tzinfo=UTC)

    def test_quiet_hours_within_a_day(self) -> None:
        lunch = ReminderSettings(quiet_start=time(12), quiet_end=time(14))
        assert lunch.quiet(datetime(2026, 2, 12, 4, 30, tzinfo=UTC))  # 12:30
        assert not lunch.quiet(SHANGHAI_22H)
        assert lunch.next_allowed(datetime(2026, 2, 12, 4, 30, tzinfo=UTC)) == datetime(2026, 2, 12, 6, 0, tzinfo=UTC)

    @given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)))
    def test_the_next_allowed_moment_is_never_quiet_nor_earlier(self, at: datetime) -> None:
        rules = ReminderSettings()
        allowed = rules.next_allowed(at)
        assert allowed >= at and not rules.quiet(allowed)
        assert (allowed - at).total_seconds() <= 11 * 3600


class TestWording:
    def test_each_kind_has_both_languages(self) -> None:
        assert set(DEFAULT_TEMPLATES) == set(KINDS)
        assert all(set(t) == {"zh_CN", "en"} for t in DEFAULT_TEMPLATES.values())

    def test_a_message_names_the_loan_the_amount_and_the_date(self) -> None:
        text = render(ReminderSettings(), "before_due", "zh_CN", bank="城关农商行", loan_id=42,
                      amount=Decimal("1234.5"), ref_date=date(2026, 2, 15), days=3)
        assert text.startswith("【城关农商行】") and "编号42" in text and "1,234.50元" in text and "2026-02-15" in text
        english = render(ReminderSettings(), "overdue", "en", bank="Bank", loan_id=7, amount=Decimal("88.8"),
                         ref_date=date(2026, 2, 15), days=7)
        assert "7 days overdue" in english and "88.80 CNY" in english

    def test_the_bank_wording_replaces_the_default_in_its_language_only(self) -> None:
        rules = ReminderSettings(templates={"receipt": {"en": "Thanks, {amount} received for loan {loan}"}})
        assert render(rules, "receipt", "en", bank="B", loan_id=1, amount=Decimal(5), ref_date=date(2026, 1, 1),
                      days=0) == "Thanks, 5.00 received for loan 1"
        assert "感谢" in render(rules, "receipt", "zh_CN", bank="B", loan_id=1, amount=Decimal(5),
                                ref_date=date(2026, 1, 1), days=0)

    @pytest.mark.parametrize(("templates", "field"), [
        ({"receipt": {"en": "{amont}"}}, "templates.receipt.en"),
        ({"birthday": {"en": "hi"}}, "birthday"),
        ({"receipt": {"fr": "merci"}}, "fr"),
        ({"receipt": {"zh_CN": "{0}"}}, "templates.receipt.zh_CN"),
    ])
    def test_broken_wording_is_refused(self, templates: dict[str, dict[str, str]], field: str) -> None:
        with pytest.raises(ValidationError) as err:
            ReminderSettings(templates=templates)
        assert field in err.value.message

    def test_days_must_be_distinct_and_sensible(self) -> None:
        with pytest.raises(ValidationError, match="days_before"):
            ReminderSettings(days_before=(3, 3))
        with pytest.raises(ValidationError, match="overdue_days"):
            ReminderSettings(overdue_days=(0,))
        with pytest.raises(ValidationError, match="timezone"):
            ReminderSettings(timezone="Nowhere/City")
