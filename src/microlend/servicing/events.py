"""Events servicing publishes after commit; collections and monitoring subscribe without servicing knowing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

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
    customer_id: int | None = None


@dataclass(frozen=True)
class LoanBucketChanged(DomainEvent):
    """A loan moved between delinquency buckets (e.g. M1 → M2, or back to M0 after a repayment)."""

    loan_id: int
    business_date: date
    from_bucket: str
    to_bucket: str
    days_past_due: int


@dataclass(frozen=True)
class LoanClassChanged(DomainEvent):
    """A loan's five-category class (五级分类) changed, at a close of business or by an officer's judgement, with the
    reason, e.g. normal → special mention, 1 day past due."""

    loan_id: int
    business_date: date
    from_class: str
    to_class: str
    days_past_due: int
    #: why: days past due, an officer's judgement, a cure after its observation period, restructuring
    reason: str = ""
    #: the officer who changed it by judgement; empty for a close of business
    changed_by: str = ""


@dataclass(frozen=True)
class RepaymentPosted(DomainEvent):
    """Money was posted to a loan (还款入账): a repayment, an early repayment or the borrower's credit used.

    Not `LoanRepaid`, which says the loan is fully repaid and closed (one repayment may publish both)."""

    loan_id: int
    repayment_id: int
    customer_id: int | None
    kind: str
    amount: Decimal
    value_date: date


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


@dataclass(frozen=True)
class LoanRestructured(DomainEvent):
    """展期/重组 a loan's remaining schedule was replaced by approved new terms; ``restructured``: it counts as a
    restructured loan for classification."""

    loan_id: int
    business_date: date
    kind: str  # extension | restructure
    principal: str  # of the new schedule
    maturity_date: date
    restructured: bool
