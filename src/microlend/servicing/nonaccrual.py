"""Non-accrual (停止计息): when a loan stops taking interest and penalty to income, and what happens then.

From the bank's threshold (default: more than 90 days past due, or classified non-performing 次级/可疑/损失) a
loan's interest and penalty are tracked off the balance sheet (表外, memo accounts 7101/7102 against their
contra 7999) and are income only when collected (cash basis). Interest and penalty accrued but unpaid when the
loan stops accruing are, by the bank's policy, either reversed (``reverse``, the default: Dr income / Cr
receivable, the amount moved to the memo accounts) or kept on the balance sheet (``keep``). Collections on a
non-accrual loan repay principal first, then interest, fees and penalty (``domain.NON_ACCRUAL_ORDER``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from microlend.core.errors import ValidationError

ACCRUING = "accruing"
NON_ACCRUAL = "non-accrual"
WRITTEN_OFF = "written-off"
MAX_THRESHOLD_DAYS = 360


class AccruedInterestPolicy(StrEnum):
    """What happens to interest and penalty accrued but unpaid when a loan stops accruing."""

    REVERSE = "reverse"
    KEEP = "keep"


@dataclass(frozen=True)
class NonAccrualSettings:
    """A bank's non-accrual rule: more than ``days`` past due, or (``on_npl``) classified non-performing."""

    days: int = 90
    on_npl: bool = True
    policy: AccruedInterestPolicy = AccruedInterestPolicy.REVERSE

    def __post_init__(self) -> None:
        if not 0 <= self.days <= MAX_THRESHOLD_DAYS:
            raise ValidationError(
                f"nonaccrual_days: between 0 and {MAX_THRESHOLD_DAYS} days past due", field="nonaccrual_days"
            )
        try:
            object.__setattr__(self, "policy", AccruedInterestPolicy(self.policy))
        except ValueError:
            raise ValidationError("nonaccrual_policy: 'reverse' or 'keep'", field="nonaccrual_policy") from None

    def stops_accruing(self, days_past_due: int, non_performing: bool) -> bool:
        return days_past_due > self.days or (self.on_npl and non_performing)


DEFAULT_NONACCRUAL = NonAccrualSettings()
