"""Days past due, delinquency buckets and the five-category classification."""

from __future__ import annotations

from datetime import date

import pytest

from microlend.core.errors import ValidationError
from microlend.servicing.delinquency import (
    DEFAULT_BUCKETS,
    Bucket,
    BucketScheme,
    LoanClass,
    classify,
    days_past_due,
    delinquency_bucket,
)


class TestDaysPastDue:
    def test_paid_on_the_due_date_is_not_late(self) -> None:
        assert days_past_due(date(2026, 2, 15), date(2026, 2, 15)) == 0

    def test_counts_from_the_oldest_unpaid_due_date(self) -> None:
        assert days_past_due(date(2026, 2, 15), date(2026, 3, 17)) == 30

    def test_nothing_unpaid_is_current(self) -> None:
        assert days_past_due(None, date(2026, 3, 17)) == 0


class TestBuckets:
    @pytest.mark.parametrize(
        ("dpd", "bucket"),
        [
            (0, "M0"),
            (1, "M1"),
            (30, "M1"),
            (31, "M2"),
            (60, "M2"),
            (61, "M3"),
            (90, "M3"),
            (91, "M3+"),
            (4000, "M3+"),
        ],
    )
    def test_default_buckets(self, dpd: int, bucket: str) -> None:
        assert delinquency_bucket(dpd) == bucket

    def test_a_bank_can_configure_its_own_buckets(self) -> None:
        scheme = BucketScheme([Bucket("C", 0, 0), Bucket("X", 1, 7), Bucket("Y", 8, None)])
        assert [scheme.bucket_for(d) for d in (0, 7, 8)] == ["C", "X", "Y"]

    @pytest.mark.parametrize(
        "buckets",
        [
            [Bucket("A", 1, None)],
            [Bucket("A", 0, 5), Bucket("B", 7, None)],
            [Bucket("A", 0, 5)],
            [Bucket("A", 0, 0), Bucket("A", 1, None)],
        ],
    )
    def test_gaps_overlaps_and_closed_ends_are_refused(self, buckets: list[Bucket]) -> None:
        with pytest.raises(ValidationError, match="buckets"):
            BucketScheme(buckets)

    def test_default_names(self) -> None:
        assert DEFAULT_BUCKETS.names == ["M0", "M1", "M2", "M3", "M3+"]


class TestFiveCategoryClassification:
    @pytest.mark.parametrize(
        ("dpd", "klass"),
        [
            (0, LoanClass.NORMAL),
            (1, LoanClass.SPECIAL_MENTION),
            (90, LoanClass.SPECIAL_MENTION),
            (91, LoanClass.SUBSTANDARD),
            (270, LoanClass.SUBSTANDARD),
            (271, LoanClass.DOUBTFUL),
            (360, LoanClass.DOUBTFUL),
            (361, LoanClass.LOSS),
        ],
    )
    def test_by_days_past_due(self, dpd: int, klass: LoanClass) -> None:
        assert classify(dpd) == klass

    def test_a_worse_reviewed_class_is_kept(self) -> None:
        assert classify(0, floor=LoanClass.SUBSTANDARD) == LoanClass.SUBSTANDARD
        assert classify(400, floor=LoanClass.SUBSTANDARD) == LoanClass.LOSS

    def test_non_performing_loans(self) -> None:
        assert [c for c in LoanClass if c.non_performing] == [
            LoanClass.SUBSTANDARD,
            LoanClass.DOUBTFUL,
            LoanClass.LOSS,
        ]


class TestPenaltyInterest:
    def test_one_and_a_half_times_the_contract_rate_per_360_days(self) -> None:
        from decimal import Decimal

        from microlend.servicing.delinquency import daily_penalty

        # 10,000 overdue at 12% × 1.5 = 18% a year: 5.00 a day
        assert daily_penalty(Decimal("10000"), Decimal("0.12"), Decimal("1.5")) == Decimal("5.00")
        assert daily_penalty(Decimal("788.49"), Decimal("0.0888"), Decimal("1.5")) == Decimal("0.29")
        assert daily_penalty(Decimal("0"), Decimal("0.12"), Decimal("1.5")) == 0
