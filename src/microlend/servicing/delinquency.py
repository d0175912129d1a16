"""Delinquency: days past due (逾期天数), buckets (M0..M3+), five-category classification (五级分类)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from microlend.core.errors import ValidationError
from microlend.core.money import DEFAULT_CURRENCY, round_half_up


def days_past_due(oldest_unpaid_due_date: date | None, as_of: date) -> int:
    """Days since the oldest unpaid due date; 0 while nothing is past due (paid on the due date = on time)."""
    if oldest_unpaid_due_date is None:
        return 0
    return max((as_of - oldest_unpaid_due_date).days, 0)


@dataclass(frozen=True, slots=True)
class Bucket:
    """A delinquency bucket: loans whose days past due lie in ``low``..``high`` (``high`` None = no limit)."""

    name: str
    low: int
    high: int | None

    def holds(self, dpd: int) -> bool:
        return self.low <= dpd and (self.high is None or dpd <= self.high)


class BucketScheme:
    """Configurable buckets that cover every dpd from 0 upwards exactly once, in ascending order."""

    def __init__(self, buckets: Sequence[Bucket]) -> None:
        if not buckets or buckets[0].low != 0:
            raise ValidationError("buckets: the first bucket must start at 0 days", field="buckets")
        for before, after in itertools.pairwise(buckets):
            if before.high is None or after.low != before.high + 1:
                raise ValidationError(
                    f"buckets: '{after.name}' must start the day after '{before.name}' ends", field="buckets"
                )
        if buckets[-1].high is not None:
            raise ValidationError("buckets: the last bucket must be open-ended", field="buckets")
        if len({b.name for b in buckets}) != len(buckets):
            raise ValidationError("buckets: names must be unique", field="buckets")
        self.buckets = tuple(buckets)

    def bucket_for(self, dpd: int) -> str:
        if dpd < 0:
            raise ValidationError("days_past_due: cannot be negative", field="days_past_due")
        for b in self.buckets:
            if b.holds(dpd):
                return b.name
        raise AssertionError("buckets cover every dpd")  # pragma: no cover - guaranteed by __init__

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.buckets]


#: M0 current; M1 1–30; M2 31–60; M3 61–90; M3+ over 90 days past due.
DEFAULT_BUCKETS = BucketScheme(
    [
        Bucket("M0", 0, 0),
        Bucket("M1", 1, 30),
        Bucket("M2", 31, 60),
        Bucket("M3", 61, 90),
        Bucket("M3+", 91, None),
    ]
)


def delinquency_bucket(dpd: int, scheme: BucketScheme = DEFAULT_BUCKETS) -> str:
    return scheme.bucket_for(dpd)


class LoanClass(StrEnum):
    """五级分类 five-category classification: 正常 normal, 关注 special mention, 次级 substandard,
    可疑 doubtful, 损失 loss."""

    NORMAL = "normal"
    SPECIAL_MENTION = "special_mention"
    SUBSTANDARD = "substandard"
    DOUBTFUL = "doubtful"
    LOSS = "loss"

    @property
    def non_performing(self) -> bool:
        """不良贷款 NPL: substandard, doubtful or loss."""
        return self in (LoanClass.SUBSTANDARD, LoanClass.DOUBTFUL, LoanClass.LOSS)


_CLASS_ORDER = list(LoanClass)


def classify(dpd: int, floor: LoanClass = LoanClass.NORMAL) -> LoanClass:
    """The class by days past due: any overdue → at least special mention; over 90 → substandard; over
    270 → doubtful; over 360 → loss. ``floor`` is a class a reviewer gave; this never improves on it."""
    if dpd < 0:
        raise ValidationError("days_past_due: cannot be negative", field="days_past_due")
    if dpd > 360:
        by_dpd = LoanClass.LOSS
    elif dpd > 270:
        by_dpd = LoanClass.DOUBTFUL
    elif dpd > 90:
        by_dpd = LoanClass.SUBSTANDARD
    elif dpd > 0:
        by_dpd = LoanClass.SPECIAL_MENTION
    else:
        by_dpd = LoanClass.NORMAL
    return max(by_dpd, floor, key=_CLASS_ORDER.index)


#: dpd thresholds of ``classify`` (class applies when dpd > threshold), for set-based SQL.
CLASS_THRESHOLDS: tuple[tuple[int, LoanClass], ...] = (
    (360, LoanClass.LOSS),
    (270, LoanClass.DOUBTFUL),
    (90, LoanClass.SUBSTANDARD),
    (0, LoanClass.SPECIAL_MENTION),
)


def penalty_for_day(
    overdue: Decimal, annual_rate: Decimal, multiplier: Decimal, days_past_due: int, grace_days: int,
    currency: str = DEFAULT_CURRENCY,
) -> Decimal:
    """The penalty a close of business charges for one day: none within the grace period (宽限期); on the day it
    is exceeded the grace days are charged back, so penalty runs from the first day overdue."""
    if days_past_due <= grace_days:
        return Decimal(0)
    days = grace_days + 1 if days_past_due == grace_days + 1 else 1
    return daily_penalty(overdue, annual_rate, multiplier, currency) * days


def daily_penalty(
    overdue_principal: Decimal, annual_rate: Decimal, multiplier: Decimal, currency: str = DEFAULT_CURRENCY
) -> Decimal:
    """罚息 one day's penalty interest: overdue principal × (contract rate × multiplier) / 360, rounded half-up."""
    return round_half_up(overdue_principal * annual_rate * multiplier / 360, currency)
