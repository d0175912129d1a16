"""Extension (展期) and restructuring (重组) with four eyes: an officer asks, a second person with the authority
approves (the new schedule replaces the remaining one, arrears capitalised when asked, the loan reclassified when it
counts as restructured) or rejects. The rules are in ``servicing.restructuring``."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from microlend.core.clock import utcnow
from microlend.core.errors import Conflict, NotFound, ValidationError
from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.servicing.classification import mark_restructured, rank
from microlend.servicing.delinquency import LoanClass
from microlend.servicing.domain import Loan
from microlend.servicing.events import LoanClassChanged, LoanRestructured
from microlend.servicing.repository import audit_trail, ledger, loans
from microlend.servicing.restructuring import (
    RestructureKind,
    RestructureTerms,
    check_restructurable,
    counts_as_restructured,
    restructure_loan,
)
from microlend.servicing.service._common import P, _money
from microlend.servicing.service.four_eyes import decidable, pending_for
from microlend.servicing.tables import RestructureRow, WriteOffRow

ZERO = Decimal(0)
STATUSES = ("pending", "approved", "rejected")


@dataclass(frozen=True)
class RestructureView:
    """An extension or restructuring request and, once approved, what it did."""

    id: int
    loan_id: int
    kind: str
    status: str
    term_months: int
    annual_rate: Decimal | None
    capitalise_arrears: bool
    reason: str
    loan_class: str
    days_past_due: int
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str
    effective_on: date | None
    restructured: bool
    observe_until: date | None
    principal: Decimal
    capitalised: Decimal
    maturity_before: date | None
    maturity_after: date | None
    journal_entry_id: int | None

    @classmethod
    def of(cls, r: RestructureRow) -> RestructureView:
        return cls(
            r.id, r.loan_id, r.kind, r.status, r.term_months, r.annual_rate, bool(r.capitalise_arrears), r.reason,
            r.loan_class, r.days_past_due, r.requested_by, r.requested_at, r.decided_by, r.decided_at,
            r.decision_reason or "", r.effective_on, bool(r.restructured), r.observe_until, r.principal,
            r.capitalised, r.maturity_before, r.maturity_after, r.journal_entry_id,
        )


def _check_rate(uow: UnitOfWork, loan: Loan, terms: RestructureTerms) -> None:
    """A new rate stays within the loan's product range and the bank's rate cap."""
    rate = terms.annual_rate
    if rate is None:
        return
    repo = loans(uow)
    product = repo.product_by_id(loan.product_id).product
    cap = repo.rate_cap(loan.tenant_id)
    if not product.min_rate <= rate <= product.max_rate or rate > cap:
        raise ValidationError(
            f"annual_rate: between {product.min_rate} and {min(product.max_rate, cap)} for product {product.code}",
            field="annual_rate")


def request_restructure(uow: UnitOfWork, who: Principal, loan_id: int, terms: RestructureTerms,
                        reason: str) -> RestructureView:
    """展期/重组申请 ask for a loan's remaining schedule to be replaced; nothing changes until a second person with
    the authority approves it. The request is tried on a copy of the loan today, so terms no approval could carry
    out (an extension that does not extend, or beyond the legal limit) are refused now."""
    who.require(P.RESTRUCTURE_LOANS)
    if not reason.strip():
        raise ValidationError("reason: say why the loan is extended or restructured", field="reason")
    with uow:
        s = uow.session
        loan = loans(uow).get(who.tenant_id, loan_id, lock=True)
        check_restructurable(loan, terms)
        if pending_for(s, RestructureRow, who.tenant_id, loan_id) is not None:
            raise Conflict(f"loan {loan_id} already has an extension or restructuring waiting for approval")
        if pending_for(s, WriteOffRow, who.tenant_id, loan_id) is not None:
            raise Conflict(f"loan {loan_id} has a write-off waiting for approval")
        _check_rate(uow, loan, terms)
        restructure_loan(copy.deepcopy(loan), terms, ledger(uow).business_date(who.tenant_id))  # a dry run
        row = RestructureRow(
            tenant_id=who.tenant_id, loan_id=loan_id, kind=terms.kind.value, status="pending",
            term_months=terms.term_months, annual_rate=terms.annual_rate,
            capitalise_arrears=terms.capitalise_arrears, reason=reason.strip()[:500], loan_class=loan.loan_class,
            days_past_due=loan.days_past_due, requested_by_id=who.user_id, requested_by=who.username,
            requested_at=utcnow(), decision_reason="", restructured=False, principal=ZERO, capitalised=ZERO,
            outcome={},
        )
        s.add(row)
        s.flush()
        audit_trail(uow).record(who, "restructure.request", "restructure", row.id, reason=row.reason,
                                after={"loan_id": loan_id, "kind": row.kind, "term_months": row.term_months,
                                       "annual_rate": None if terms.annual_rate is None else str(terms.annual_rate),
                                       "capitalise_arrears": row.capitalise_arrears,
                                       "loan_class": loan.loan_class, "days_past_due": loan.days_past_due})
        view = RestructureView.of(row)
        uow.commit()
    return view


def _terms(row: RestructureRow) -> RestructureTerms:
    return RestructureTerms(RestructureKind(row.kind), row.term_months, row.annual_rate, bool(row.capitalise_arrears))


def approve_restructure(uow: UnitOfWork, who: Principal, restructure_id: int) -> RestructureView:
    """四眼 approve: on today's business date the new schedule replaces the remaining one (arrears capitalised
    when asked, balanced per-loan postings), and a loan that counts as restructured is at least substandard until
    its observation period ends."""
    with uow:
        s = uow.session
        row = decidable(s, who, RestructureRow, restructure_id, P.APPROVE_RESTRUCTURE, "restructure")
        repo, books = loans(uow), ledger(uow)
        loan = repo.get(who.tenant_id, row.loan_id, lock=True)
        terms = _terms(row)
        _check_rate(uow, loan, terms)
        on = books.business_date(who.tenant_id)
        restructured = counts_as_restructured(terms.kind, loan, terms.capitalise_arrears)
        done = restructure_loan(loan, terms, on)
        entry_id = books.post(who, on, done.entry) if done.entry is not None else None
        observe_until = None
        if restructured:
            observe_until = mark_restructured(s, who.tenant_id, loan.id, done.first_due, done.due_dates)
            if rank(loan.loan_class) < rank(LoanClass.SUBSTANDARD.value):
                before = loan.loan_class
                loan.loan_class = LoanClass.SUBSTANDARD.value
                loan.events.append(LoanClassChanged(
                    who.tenant_id, loan.id, on, before, loan.loan_class, loan.days_past_due,
                    f"restructured: observation until {observe_until.isoformat()}", who.username))
        loan.events.append(LoanRestructured(who.tenant_id, loan.id, on, terms.kind.value, _money(done.principal),
                                            done.maturity_after, restructured))
        repo.save(loan)
        row.status, row.decided_by_id, row.decided_by, row.decided_at = "approved", who.user_id, who.username, utcnow()
        row.effective_on, row.journal_entry_id = on, entry_id
        row.restructured, row.observe_until = restructured, observe_until
        row.principal, row.capitalised = done.principal, done.capitalised
        row.maturity_before, row.maturity_after = done.maturity_before, done.maturity_after
        outcome: dict[str, Any] = {**done.facts(), "schedule_before": done.schedule_before}
        row.outcome = outcome
        s.flush()
        audit_trail(uow).record(
            who, "restructure.approve", "restructure", row.id, reason=row.reason, before={"status": "pending"},
            after={"status": "approved", "loan_id": loan.id, "requested_by": row.requested_by,
                   "restructured": restructured,
                   "observe_until": observe_until.isoformat() if observe_until else None, **done.facts()},
        )
        view = RestructureView.of(row)
        uow.commit()
    return view


def reject_restructure(uow: UnitOfWork, who: Principal, restructure_id: int, reason: str) -> RestructureView:
    """Turn a request down, with the reason; nothing changes."""
    if not reason.strip():
        raise ValidationError("reason: say why the request is rejected", field="reason")
    with uow:
        s = uow.session
        row = decidable(s, who, RestructureRow, restructure_id, P.APPROVE_RESTRUCTURE, "restructure")
        row.status, row.decided_by_id, row.decided_by, row.decided_at = "rejected", who.user_id, who.username, utcnow()
        row.decision_reason = reason.strip()[:500]
        s.flush()
        audit_trail(uow).record(who, "restructure.reject", "restructure", row.id, reason=row.decision_reason,
                                before={"status": "pending"}, after={"status": "rejected", "loan_id": row.loan_id})
        view = RestructureView.of(row)
        uow.commit()
    return view


def _may_see(who: Principal) -> None:
    if not (who.can(P.RESTRUCTURE_LOANS) or who.can(P.APPROVE_RESTRUCTURE)):
        who.require(P.VIEW_LEDGER)


def get_restructure(uow: UnitOfWork, who: Principal, restructure_id: int) -> RestructureView:
    _may_see(who)
    with uow:
        row = uow.session.execute(select(RestructureRow).where(
            RestructureRow.id == restructure_id, RestructureRow.tenant_id == who.tenant_id)).scalar_one_or_none()
        if row is None:
            raise NotFound(f"restructure {restructure_id} not found")
        return RestructureView.of(row)


def list_restructures(
    uow: UnitOfWork, who: Principal, *, status: str | None = None, loan_id: int | None = None, limit: int = 100,
    offset: int = 0,
) -> list[RestructureView]:
    """The bank's extension and restructuring requests, newest first."""
    _may_see(who)
    if status is not None and status not in STATUSES:
        raise ValidationError("status: pending, approved or rejected", field="status")
    with uow:
        stmt = select(RestructureRow).where(RestructureRow.tenant_id == who.tenant_id)
        if status is not None:
            stmt = stmt.where(RestructureRow.status == status)
        if loan_id is not None:
            stmt = stmt.where(RestructureRow.loan_id == loan_id)
        rows = uow.session.execute(stmt.order_by(RestructureRow.id.desc()).limit(limit).offset(offset)).scalars()
        return [RestructureView.of(r) for r in rows]


__all__ = [
    "RestructureView",
    "approve_restructure",
    "get_restructure",
    "list_restructures",
    "reject_restructure",
    "request_restructure",
]
