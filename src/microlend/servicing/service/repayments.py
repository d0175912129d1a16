"""Repayments (还款): posting (idempotent), reversal (冲正) with replay, credit balance (溢缴款), early
repayment (提前还款). Each loads the loan, lets it allocate, posts its journal entry and saves it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from microlend.core.errors import Conflict, ValidationError
from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.servicing.domain import Loan, Posting, Repayment
from microlend.servicing.events import RepaymentPosted
from microlend.servicing.repository import KEY_REUSED, LoanRepository, audit_trail, ledger, loans
from microlend.servicing.schedules import PrepaymentMode
from microlend.servicing.service._common import P, _cents, _key, _money, request_hash
from microlend.servicing.service.write_off import book_recovery, reverse_recovery


@dataclass(frozen=True)
class RepaymentView:
    id: int
    loan_id: int
    kind: str
    amount: Decimal
    value_date: date
    status: str
    credit: Decimal
    allocation: dict[str, Any]
    journal_entry_id: int
    loan_status: str


def _repayment_view(r: Repayment, loan: Loan) -> RepaymentView:
    assert r.id is not None
    return RepaymentView(
        r.id, r.loan_id, r.kind, r.amount, r.value_date, r.status, r.credit, r.allocation, r.journal_entry_id,
        loan.status,
    )


def _replayed_repayment(repo: LoanRepository, who: Principal, key: str | None, digest: str) -> Repayment | None:
    """The repayment this tenant already stored under ``key``, or None; the same key with another request
    is refused."""
    if key is None:
        return None
    found = repo.repayment_by_key(who.tenant_id, key)
    if found is not None and found.request_hash != digest:
        raise ValidationError(KEY_REUSED, field="idempotency_key")
    return found


def _book(
    uow: UnitOfWork, who: Principal, loan: Loan, posting: Posting, on: date,
    *, kind: str, key: str | None = None, digest: str = "", credit: Decimal | None = None,
) -> Repayment:
    """Post the payment's journal entry, store the repayment, save the loan and publish `RepaymentPosted`."""
    entry_id = ledger(uow).post(who, on, posting.entry)
    repo = loans(uow)
    repo.save(loan)
    stored = repo.add_repayment(
        Repayment(
            loan.id, kind, posting.amount, on, posting.record,
            posting.credit if credit is None else credit, entry_id, who.username,
            idempotency_key=key, request_hash=digest,
        )
    )
    assert stored.id is not None
    uow.publish(RepaymentPosted(who.tenant_id, loan.id, stored.id, loan.customer_id, kind, posting.amount, on))
    return stored


def post_repayment(
    uow: UnitOfWork, who: Principal, loan_id: int, amount: Decimal, *, idempotency_key: str | None = None
) -> RepaymentView:
    """还款 allocate a payment in the product's order and post it; an overpayment is held as credit.

    The same idempotency key with the same request replays the first answer; with another request it is 422."""
    who.require(P.POST_REPAYMENT)
    key = _key(idempotency_key)
    value = _cents(amount, "amount")
    digest = request_hash({"loan_id": loan_id, "amount": str(value), "kind": "repayment"})
    with uow:
        repo = loans(uow)
        loan = repo.get(who.tenant_id, loan_id, lock=True)  # serialises repayments of one loan
        replay = _replayed_repayment(repo, who, key, digest)
        if replay is not None:
            return _repayment_view(replay, loan)
        if loan.status == "written_off":  # 账销案存: a payment on a written-off loan is a recovery
            recovered = book_recovery(uow, who, loan, value, key=key, digest=digest)
            view = _repayment_view(recovered, loan)
            uow.commit()
            return view
        loan.require_active()
        on = ledger(uow).business_date(who.tenant_id)
        loan.check_payment(value, on, repo.overpayment_tolerance(loan))
        posting = loan.repay(value, on)
        row = _book(uow, who, loan, posting, on, kind="repayment", key=key, digest=digest)
        audit_trail(uow).record(
            who, "repayment.post", "repayment", row.id,
            after={"loan_id": loan.id, "amount": _money(value), "allocation": posting.record},
        )
        view = _repayment_view(row, loan)
        uow.commit()
    return view


#: what a reversal takes back: ordinary and early repayments (an early one with the schedule it replaced)
REVERSIBLE = ("repayment", "early_full", "early_partial")


def reverse_repayment(uow: UnitOfWork, who: Principal, repayment_id: int, reason: str) -> RepaymentView:
    """冲正 reverse a repayment with a new reversing entry, then replay the later repayments of the loan
    in order, so the loan ends as if the reversed payment had never been posted."""
    who.require(P.REVERSE_REPAYMENT)
    if not reason.strip():
        raise ValidationError("reason: say why the repayment is reversed", field="reason")
    with uow:
        repo, books = loans(uow), ledger(uow)
        rep = repo.repayment(who.tenant_id, repayment_id)
        loan = repo.get(who.tenant_id, rep.loan_id, lock=True)
        if rep.status == "reversed":
            raise Conflict(f"repayment {repayment_id} is already reversed")
        later = repo.posted_after(rep)
        if rep.kind == "recovery":  # 已核销贷款收回: the register and the off-balance amounts come back
            reverse_recovery(uow, who, loan, rep, later, reason)
            view = _repayment_view(rep, loan)
            uow.commit()
            return view
        if loan.status == "written_off":
            raise Conflict(f"loan {loan.id} is written off: its repayments can no longer be reversed")
        if any(r.kind != "repayment" for r in later) or rep.kind not in REVERSIBLE:
            raise Conflict(
                "an early repayment or a credit application changed the loan after this payment: "
                "correct it with a new adjusting payment instead"
            )
        if rep.kind != "repayment" and "schedule_before" not in rep.allocation:
            raise Conflict(f"repayment {rep.id} was posted without the schedule it replaced: it cannot be reversed")
        on = books.business_date(who.tenant_id)
        for r in reversed([rep, *later]):  # take back newest first
            accrual = loan.unapply(r.allocation, on)
            if accrual is not None:
                books.post(who, on, accrual)
            original = books.entry(r.journal_entry_id)
            memo = f"reversal of repayment {r.id}: {reason}"
            reversal_id = books.post(who, on, original.reversal("repayment.reversal", memo, r.journal_entry_id))
            if r is rep:
                rep.status, rep.reversal_entry_id = "reversed", reversal_id
        for r in later:  # replay in the original order, each on its own value date
            posting = loan.replay(r.amount, on, dues_on=r.value_date, kind="repayment.replay")
            r.allocation, r.credit = posting.record, posting.credit
            r.journal_entry_id = books.post(who, on, posting.entry)
            repo.save_repayment(r)
        repo.save_repayment(rep)
        replayed = [r.id for r in later]
        loan.record(on, "RepaymentReversed", {"repayment_id": rep.id, "replayed": replayed})
        # the days closed since the reversed payment are charged the penalty they should have carried
        last_closed = on - timedelta(days=1)
        closed = books.closed_dates(who.tenant_id, rep.value_date, last_closed)
        if closed and loan.status == "active":
            owed = loan.penalty_owed_over(closed, [(r.value_date, r.allocation) for r in later])
            charged = books.penalty_charged(who.tenant_id, loan.id, rep.value_date, last_closed)
            adjustment = loan.adjust_penalty(owed - charged, on, f"repayment {rep.id} reversed")
            if adjustment is not None:
                books.post(who, on, adjustment)
        repo.save(loan)
        audit_trail(uow).record(
            who, "repayment.reverse", "repayment", rep.id, reason=reason,
            after={"loan_id": loan.id, "replayed": replayed},
        )
        view = _repayment_view(rep, loan)
        uow.commit()
    return view


def apply_credit_balance(uow: UnitOfWork, who: Principal, loan_id: int) -> RepaymentView:
    """Use the borrower's credit balance (溢缴款) to settle what is due now, in the product's order."""
    who.require(P.POST_REPAYMENT)
    with uow:
        loan = loans(uow).get(who.tenant_id, loan_id, lock=True)
        on = ledger(uow).business_date(who.tenant_id)
        posting = loan.apply_credit_balance(on)
        row = _book(uow, who, loan, posting, on, kind="credit_applied", credit=Decimal(0))
        audit_trail(uow).record(
            who, "repayment.apply_credit", "repayment", row.id,
            after={"loan_id": loan.id, "amount": _money(posting.amount), "allocation": posting.record},
        )
        view = _repayment_view(row, loan)
        uow.commit()
    return view


def repay_early(
    uow: UnitOfWork,
    who: Principal,
    loan_id: int,
    *,
    amount: Decimal | None = None,
    mode: PrepaymentMode | str = PrepaymentMode.REDUCE_INSTALLMENT,
    idempotency_key: str | None = None,
) -> RepaymentView:
    """提前还款 full (``amount`` None: pays off everything, interest only to date) or partial on a due date
    (what is due today first, the rest repays principal and the remaining schedule is re-amortised)."""
    who.require(P.POST_REPAYMENT)
    key = _key(idempotency_key)
    mode = PrepaymentMode(mode)
    value = _cents(amount, "amount") if amount is not None else None
    kind = "early_full" if value is None else "early_partial"
    digest = request_hash({"loan_id": loan_id, "amount": str(value), "kind": kind, "mode": mode.value})
    with uow:
        repo = loans(uow)
        loan = repo.get(who.tenant_id, loan_id, lock=True)
        replay = _replayed_repayment(repo, who, key, digest)
        if replay is not None:
            return _repayment_view(replay, loan)
        loan.require_active()
        if not repo.early_repayment_allowed(loan):
            raise Conflict(f"loan {loan.id}: its product does not allow early repayment")
        on = ledger(uow).business_date(who.tenant_id)
        if value is not None:
            loan.check_payment(value, on, repo.overpayment_tolerance(loan))
        posting = loan.pay_off(on) if value is None else loan.prepay(value, on, mode)
        row = _book(uow, who, loan, posting, on, kind=kind, key=key, digest=digest)
        audit_trail(uow).record(
            who, f"repayment.{kind}", "repayment", row.id,
            after={"loan_id": loan.id, "amount": _money(posting.amount), "mode": mode.value},
        )
        view = _repayment_view(row, loan)
        uow.commit()
    return view
