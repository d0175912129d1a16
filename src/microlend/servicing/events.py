"""Events servicing publishes after commit; collections and monitoring subscribe without servicing knowing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from microlend.core.events import DomainEvent


@dataclass(frozen=True)
class LoanDisbursed(DomainEvent):
    loan_id: int
    business_date: date
    principal: str


@dataclass(frozen=True)
class LoanBecameOverdue(DomainEvent):
    """A loan went from current to past due (逾期) at a close of business."""

    loan_id: int
    business_date: date
    days_past_due: int


@dataclass(frozen=True)
class LoanBucketChanged(DomainEvent):
    """A loan moved between delinquency buckets (e.g. M1 → M2, or back to M0 after a repayment)."""

    loan_id: int
    business_date: date
    from_bucket: str
    to_bucket: str
    days_past_due: int


@dataclass(frozen=True)
class LoanRepaid(DomainEvent):
    """A loan is fully repaid (结清) and closed."""

    loan_id: int
    business_date: date


@dataclass(frozen=True)
class LoanWrittenOff(DomainEvent):
    loan_id: int
    business_date: date
    amount: str
