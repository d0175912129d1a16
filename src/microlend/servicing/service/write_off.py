"""Write-off (核销) with four eyes, recoveries on written-off loans, judgement downgrades of the class and the
bank's bad-loan settings. The rules are in ``servicing.writeoff`` and ``servicing.classification``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from microlend.core.clock import utcnow
from microlend.core.errors import Conflict, NotFound, ValidationError
from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.servicing.classification import bank_policy, rank
from microlend.servicing.domain import Loan, Repayment
from microlend.servicing.events import LoanClassChanged, RepaymentPosted
from microlend.servicing.nonaccrual import AccruedInterestPolicy
from microlend.servicing.provisions import allowance_balance
from microlend.servicing.repository import audit_trail, bank_nonaccrual, ledger, loans
from microlend.servicing.service._common import P, _money
from microlend.servicing.service.four_eyes import decidable, pending_for
from microlend.servicing.service.loans import LoanView, loan_view
from microlend.servicing.tables import BadLoanSettingsRow, LoanClassStateRow, LoanEventRow, WriteOffRow
from microlend.servicing.writeoff import BadLoanPolicy, check_eligible, recover, unrecover, write_off_loan

ZERO = Decimal(0)
MAX_DOCUMENTS = 20


@dataclass(frozen=True)
class WriteOffView:
    """A write-off request and, once approved, the loan's off-balance register (账销案存)."""

    id: int
    loan_id: int
    status: str
    reason_code: str
    reason: str
    documents: list[str]
    loan_class: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str
    written_off_on: date | None
    principal: Decimal
    interest: Decimal
    penalty: Decimal
    charged: Decimal
    against_allowance: Decimal
    shortfall: Decimal
    recovered: Decimal
    journal_entry_id: int | None

    @classmethod
    def of(cls, r: WriteOffRow) -> WriteOffView:
        return cls(
            r.id, r.loan_id, r.status, r.reason_code, r.reason, list(r.documents or []), r.loan_class,
            r.requested_by, r.requested_at, r.decided_by, r.decided_at, r.decision_reason or "", r.written_off_on,
            r.principal, r.interest, r.penalty, r.charged, r.against_allowance, r.shortfall,
            r.recovered_charged + r.recovered_interest + r.recovered_penalty, r.journal_entry_id,
        )


def _documents(documents: Sequence[str]) -> list[str]:
    docs = [d.strip() for d in documents if d.strip()]
    if len(docs) > MAX_DOCUMENTS or any(len(d) > 300 for d in docs):
        raise ValidationError(f"documents: at most {MAX_DOCUMENTS} references of up to 300 characters",
                              field="documents")
    return docs


def request_write_off(
    uow: UnitOfWork, who: Principal, loan_id: int, reason: str, *, reason_code: str = "",
    documents: Sequence[str] = (),
) -> WriteOffView:
    """核销申请 ask for a loan to be written off, with the reason (and the documents a documented reason needs);
    nothing moves until a second person with the authority approves it."""
    who.require(P.WRITE_OFF)
    if not reason.strip():
        raise ValidationError("reason: say why the loan is written off", field="reason")
    docs = _documents(documents)
    with uow:
        s = uow.session
        loan = loans(uow).get(who.tenant_id, loan_id, lock=True)
        check_eligible(bank_policy(s, who.tenant_id), loan, reason_code, docs)
        if _pending_for(s, who.tenant_id, loan_id) is not None:
            raise Conflict(f"loan {loan_id} already has a write-off request waiting for approval")
        row = WriteOffRow(
            tenant_id=who.tenant_id, loan_id=loan_id, status="pending", reason_code=reason_code.strip(),
            reason=reason.strip()[:500], documents=docs, loan_class=loan.loan_class, requested_by_id=who.user_id,
            requested_by=who.username, requested_at=utcnow(), decision_reason="", principal=ZERO, interest=ZERO,
            penalty=ZERO, charged=ZERO, against_allowance=ZERO, shortfall=ZERO, recovered_charged=ZERO,
            recovered_interest=ZERO, recovered_penalty=ZERO,
        )
        s.add(row)
        s.flush()
        audit_trail(uow).record(who, "write_off.request", "write_off", row.id, reason=row.reason,
                                after={"loan_id": loan_id, "reason_code": row.reason_code, "documents": docs,
                                       "loan_class": loan.loan_class, "days_past_due": loan.days_past_due})
        view = WriteOffView.of(row)
        uow.commit()
    return view


def _pending_for(s: Session, tenant_id: int, loan_id: int) -> WriteOffRow | None:
    return pending_for(s, WriteOffRow, tenant_id, loan_id)


def _decidable(s: Session, who: Principal, write_off_id: int) -> WriteOffRow:
    return decidable(s, who, WriteOffRow, write_off_id, P.APPROVE_WRITE_OFF, "write-off")


def approve_write_off(uow: UnitOfWork, who: Principal, write_off_id: int) -> WriteOffView:
    """四眼 approve a write-off: the loan leaves the books against the loan-loss allowance (the shortfall to
    credit-impairment loss) and stays on the off-balance register."""
    with uow:
        s = uow.session
        row = _decidable(s, who, write_off_id)
        repo, books = loans(uow), ledger(uow)
        loan = repo.get(who.tenant_id, row.loan_id, lock=True)
        check_eligible(bank_policy(s, who.tenant_id), loan, row.reason_code, row.documents or [])
        on = books.business_date(who.tenant_id)
        reverse = bank_nonaccrual(s, who.tenant_id).policy is AccruedInterestPolicy.REVERSE
        done = write_off_loan(loan, on, row.reason, allowance_balance(s, who.tenant_id), reverse_accrued=reverse)
        entry_id = books.post(who, on, done.entry) if done.entry is not None else None
        repo.save(loan)
        row.status, row.decided_by_id, row.decided_by, row.decided_at = "approved", who.user_id, who.username, utcnow()
        row.written_off_on, row.journal_entry_id = on, entry_id
        row.principal, row.interest, row.penalty = done.principal, done.interest, done.penalty
        row.charged, row.against_allowance, row.shortfall = done.charged, done.against_allowance, done.shortfall
        s.flush()
        audit_trail(uow).record(
            who, "write_off.approve", "write_off", row.id, reason=row.reason, before={"status": "pending"},
            after={"status": "approved", "loan_id": loan.id, "requested_by": row.requested_by,
                   "principal": _money(done.principal), "charged": _money(done.charged),
                   "against_allowance": _money(done.against_allowance), "shortfall": _money(done.shortfall),
                   "moved_off_balance": _money(done.moved_off_balance)},
        )
        view = WriteOffView.of(row)
        uow.commit()
    return view


def reject_write_off(uow: UnitOfWork, who: Principal, write_off_id: int, reason: str) -> WriteOffView:
    """Turn a write-off request down, with the reason; nothing moves."""
    if not reason.strip():
        raise ValidationError("reason: say why the write-off is rejected", field="reason")
    with uow:
        s = uow.session
        row = _decidable(s, who, write_off_id)
        row.status, row.decided_by_id, row.decided_by, row.decided_at = "rejected", who.user_id, who.username, utcnow()
        row.decision_reason = reason.strip()[:500]
        s.flush()
        audit_trail(uow).record(who, "write_off.reject", "write_off", row.id, reason=row.decision_reason,
                                before={"status": "pending"}, after={"status": "rejected", "loan_id": row.loan_id})
        view = WriteOffView.of(row)
        uow.commit()
    return view


def _may_see(who: Principal) -> None:
    if not (who.can(P.WRITE_OFF) or who.can(P.APPROVE_WRITE_OFF)):
        who.require(P.VIEW_LEDGER)


def get_write_off(uow: UnitOfWork, who: Principal, write_off_id: int) -> WriteOffView:
    _may_see(who)
    with uow:
        row = uow.session.execute(select(WriteOffRow).where(
            WriteOffRow.id == write_off_id, WriteOffRow.tenant_id == who.tenant_id)).scalar_one_or_none()
        if row is None:
            raise NotFound(f"write-off {write_off_id} not found")
        return WriteOffView.of(row)


def list_write_offs(
    uow: UnitOfWork, who: Principal, *, status: str | None = None, loan_id: int | None = None, limit: int = 100,
    offset: int = 0,
) -> list[WriteOffView]:
    """The bank's write-offs, newest first (pending requests, and the register of approved ones)."""
    _may_see(who)
    if status is not None and status not in ("pending", "approved", "rejected"):
        raise ValidationError("status: pending, approved or rejected", field="status")
    with uow:
        stmt = select(WriteOffRow).where(WriteOffRow.tenant_id == who.tenant_id)
        if status is not None:
            stmt = stmt.where(WriteOffRow.status == status)
        if loan_id is not None:
            stmt = stmt.where(WriteOffRow.loan_id == loan_id)
        rows = uow.session.execute(stmt.order_by(WriteOffRow.id.desc()).limit(limit).offset(offset)).scalars()
        return [WriteOffView.of(r) for r in rows]


def register_of(s: Session, tenant_id: int, loan_id: int) -> WriteOffRow:
    row = s.execute(select(WriteOffRow).where(
        WriteOffRow.tenant_id == tenant_id, WriteOffRow.loan_id == loan_id, WriteOffRow.status == "approved")
    ).scalars().first()
    if row is None:
        raise Conflict(f"loan {loan_id} is written off but has no approved write-off on the register")
    return row


def book_recovery(uow: UnitOfWork, who: Principal, loan: Loan, amount: Decimal, *, key: str | None,
                  digest: str) -> Repayment:
    """已核销贷款收回 a payment on a written-off loan, inside the caller's transaction: a recovery on the register
    (back to the allowance, then off-balance interest and penalty as income), stored as a repayment of kind
    ``recovery``."""
    s = uow.session
    reg = register_of(s, who.tenant_id, loan.id)
    books = ledger(uow)
    on = books.business_date(who.tenant_id)
    done = recover(loan, amount, on, reg.charged - reg.recovered_charged)
    entry_id = books.post(who, on, done.entry)
    repo = loans(uow)
    repo.save(loan)
    reg.recovered_charged += done.charged
    reg.recovered_interest += done.interest
    reg.recovered_penalty += done.penalty
    split: dict[str, Any] = {"write_off_id": reg.id, "charged": _money(done.charged),
                             "interest": _money(done.interest), "penalty": _money(done.penalty)}
    record = {"recovery": split, "parts": [], "credit": "0.00", "recognised": [], "closed": False}
    stored = repo.add_repayment(Repayment(loan.id, "recovery", amount, on, record, ZERO, entry_id, who.username,
                                          idempotency_key=key, request_hash=digest))
    assert stored.id is not None
    uow.publish(RepaymentPosted(who.tenant_id, loan.id, stored.id, loan.customer_id, "recovery", amount, on))
    audit_trail(uow).record(who, "write_off.recovery", "write_off", reg.id,
                            after={"loan_id": loan.id, "repayment_id": stored.id, "amount": _money(amount),
                                   **split})
    return stored


def reverse_recovery(uow: UnitOfWork, who: Principal, loan: Loan, rep: Repayment, later: Sequence[Repayment],
                     reason: str) -> None:
    """冲正 a recovery on a written-off loan, inside the caller's transaction: the recovery and every later one are
    taken back newest first (reversing entries; the register and the off-balance interest and penalty owed again),
    then the later ones are recovered anew in order, so the register ends as if the reversed payment had never
    been received."""
    if any(r.kind != "recovery" for r in later):
        raise Conflict(f"repayment {rep.id}: later payments on loan {loan.id} are not recoveries; "
                       "correct it with an adjusting payment instead")
    s, books, repo = uow.session, ledger(uow), loans(uow)
    reg = register_of(s, who.tenant_id, loan.id)
    on = books.business_date(who.tenant_id)
    for r in reversed([rep, *later]):
        split = r.allocation.get("recovery") or {}
        charged, interest, penalty = unrecover(loan, split, on, r.id or 0)
        reg.recovered_charged -= charged
        reg.recovered_interest -= interest
        reg.recovered_penalty -= penalty
        memo = f"reversal of recovery {r.id}: {reason}"
        reversal_id = books.post(who, on, books.entry(r.journal_entry_id).reversal("recovery.reversal", memo,
                                                                                r.journal_entry_id))
        if r is rep:
            rep.status, rep.reversal_entry_id = "reversed", reversal_id
    for r in later:  # recovered again in the original order
        done = recover(loan, r.amount, on, reg.charged - reg.recovered_charged)
        reg.recovered_charged += done.charged
        reg.recovered_interest += done.interest
        reg.recovered_penalty += done.penalty
        r.allocation = {**r.allocation, "recovery": {"write_off_id": reg.id, "charged": _money(done.charged),
                                                     "interest": _money(done.interest),
                                                     "penalty": _money(done.penalty)}}
        r.journal_entry_id = books.post(who, on, done.entry)
        repo.save_repayment(r)
    repo.save_repayment(rep)
    repo.save(loan)
    s.flush()
    audit_trail(uow).record(who, "write_off.recovery_reversal", "write_off", reg.id, reason=reason,
                            after={"loan_id": loan.id, "repayment_id": rep.id, "replayed": [r.id for r in later],
                                   "recovered": _money(reg.recovered_charged + reg.recovered_interest
                                                       + reg.recovered_penalty)})


# ------------------------------------------------------------------------------------------ classification


def downgrade_loan(uow: UnitOfWork, who: Principal, loan_id: int, to_class: str, reason: str) -> LoanView:
    """A judgement downgrade (人工下调) of a loan's five-category class by an officer, with the reason: the class
    changes now and is a floor the close of business never improves on."""
    who.require(P.CLASSIFY_LOANS)
    target = to_class.strip()
    rank(target)
    if not reason.strip():
        raise ValidationError("reason: say why the loan is downgraded", field="reason")
    with uow:
        s = uow.session
        repo = loans(uow)
        loan = repo.get(who.tenant_id, loan_id, lock=True)
        if loan.status != "active":
            raise Conflict(f"loan {loan_id} is {loan.status.replace('_', ' ')}: its class no longer changes")
        if rank(target) <= rank(loan.loan_class):
            raise Conflict(
                f"loan {loan_id} is classified {loan.loan_class}: a judgement only downgrades it; an upgrade "
                "follows the rules (arrears repaid and a period of normal repayment)")
        on = ledger(uow).business_date(who.tenant_id)
        state = s.get(LoanClassStateRow, loan_id)
        if state is None:
            state = LoanClassStateRow(loan_id=loan_id, tenant_id=who.tenant_id, judged_reason="")
            s.add(state)
        state.judged_class, state.judged_reason = target, reason.strip()[:500]
        state.judged_by, state.judged_on = who.username, on
        before = loan.loan_class
        loan.loan_class = target
        why = f"judgement by {who.username}: {state.judged_reason}"
        loan.events.append(LoanClassChanged(who.tenant_id, loan_id, on, before, target, loan.days_past_due, why,
                                            who.username))
        repo.save(loan)
        s.flush()
        audit_trail(uow).record(who, "loan.class_change", "loan", loan_id, reason=state.judged_reason,
                                before={"loan_class": before},
                                after={"loan_class": target, "days_past_due": loan.days_past_due,
                                       "business_date": on.isoformat(), "why": why})
        view = loan_view(loan)
        uow.commit()
    return view


@dataclass(frozen=True)
class ClassChangeView:
    business_date: date
    from_class: str
    to_class: str
    days_past_due: int
    reason: str
    changed_by: str


def class_history(uow: UnitOfWork, who: Principal, loan_id: int) -> list[ClassChangeView]:
    """五级分类 a loan's class changes, oldest first, each with its reason and who made it."""
    who.require(P.VIEW_LOANS)
    with uow:
        s = uow.session
        loans(uow).get(who.tenant_id, loan_id)  # another bank's loan is not found
        rows = s.execute(select(LoanEventRow.business_date, LoanEventRow.data).where(
            LoanEventRow.tenant_id == who.tenant_id, LoanEventRow.loan_id == loan_id,
            LoanEventRow.kind == "LoanClassChanged").order_by(LoanEventRow.id)).all()
        return [ClassChangeView(on, d["from_class"], d["to_class"], int(d["days_past_due"]), d.get("reason", ""),
                                d.get("changed_by", "close of business")) for on, d in rows]


def bad_loan_settings(uow: UnitOfWork, who: Principal) -> BadLoanPolicy:
    who.require(P.VIEW_LOANS)
    with uow:
        return bank_policy(uow.session, who.tenant_id)


def set_bad_loan_settings(uow: UnitOfWork, who: Principal, policy: BadLoanPolicy) -> BadLoanPolicy:
    """The bank's write-off eligibility (classes, documented reasons) and cure rule (months, periods)."""
    who.require(P.MANAGE_PRODUCTS)
    with uow:
        s = uow.session
        before = bank_policy(s, who.tenant_id)
        row = s.get(BadLoanSettingsRow, who.tenant_id)
        if row is None:
            row = BadLoanSettingsRow(tenant_id=who.tenant_id)
            s.add(row)
        facts: dict[str, Any] = policy.facts()
        row.writeoff_classes, row.writeoff_reasons = facts["writeoff_classes"], facts["writeoff_reasons"]
        row.cure_months, row.cure_periods = policy.cure_months, policy.cure_periods
        row.updated_by, row.updated_at = who.username, utcnow()
        s.flush()
        audit_trail(uow).record(who, "servicing.bad_loan_settings", "tenant", who.tenant_id,
                                before=before.facts(), after=facts)
        uow.commit()
    return policy


__all__ = [
    "ClassChangeView",
    "WriteOffView",
    "approve_write_off",
    "bad_loan_settings",
    "book_recovery",
    "class_history",
    "downgrade_loan",
    "get_write_off",
    "list_write_offs",
    "reject_write_off",
    "request_write_off",
    "reverse_recovery",
    "set_bad_loan_settings",
]
