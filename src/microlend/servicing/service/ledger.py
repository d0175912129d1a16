"""The general ledger's use cases: posting entries, the trial balance (试算平衡表), reconciliation (对账)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from microlend.core.db import Amount
from microlend.core.errors import NotFound, ValidationError
from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.servicing.accrued import accrued_column, closed_through
from microlend.servicing.ledger import ACCOUNTS_BY_CODE, Acct, natural_balance
from microlend.servicing.service._common import ZERO, P
from microlend.servicing.subledger import BatchDifference, LoanPosting, batch_differences, loan_account_sums
from microlend.servicing.subledger import loan_postings as subledger_postings
from microlend.servicing.tables import AccountRow, InstallmentRow, JournalLineRow, LoanRow, WriteOffRow


@dataclass(frozen=True)
class TrialBalanceRow:
    code: str
    name: str
    name_zh: str
    type: str
    debit: Decimal
    credit: Decimal

    @property
    def balance(self) -> Decimal:
        """On the account's normal side: assets/expenses debit minus credit, others the reverse."""
        return natural_balance(self.code, self.debit - self.credit)


@dataclass(frozen=True)
class TrialBalance:
    """试算平衡表 totals per account; the ledger is sound when total debits equal total credits."""

    rows: tuple[TrialBalanceRow, ...]
    total_debit: Decimal
    total_credit: Decimal

    @property
    def balanced(self) -> bool:
        return self.total_debit == self.total_credit


def trial_balance_in(session: Session, tenant_id: int) -> TrialBalance:
    sums = {
        code: (Decimal(d or 0), Decimal(c or 0))
        for code, d, c in session.execute(
            select(JournalLineRow.account_code, func.sum(JournalLineRow.debit), func.sum(JournalLineRow.credit))
            .where(JournalLineRow.tenant_id == tenant_id)
            .group_by(JournalLineRow.account_code)
        )
    }
    accounts = session.execute(
        select(AccountRow).where(AccountRow.tenant_id == tenant_id).order_by(AccountRow.code)
    ).scalars()
    rows = tuple(TrialBalanceRow(a.code, a.name, a.name_zh, a.type, *sums.get(a.code, (ZERO, ZERO))) for a in accounts)
    return TrialBalance(rows, sum((r.debit for r in rows), ZERO), sum((r.credit for r in rows), ZERO))


def trial_balance(uow: UnitOfWork, who: Principal) -> TrialBalance:
    who.require(P.VIEW_LEDGER)
    with uow:
        return trial_balance_in(uow.session, who.tenant_id)


@dataclass(frozen=True)
class ReconciliationRow:
    account: str
    name: str
    general_ledger: Decimal
    sub_ledger: Decimal

    @property
    def difference(self) -> Decimal:
        return self.general_ledger - self.sub_ledger


@dataclass(frozen=True)
class Reconciliation:
    """对账 the loan sub-ledger (installments, penalties, credit balances) against the general ledger."""

    rows: tuple[ReconciliationRow, ...]
    trial_balance_balanced: bool

    @property
    def ok(self) -> bool:
        return self.trial_balance_balanced and all(r.difference == 0 for r in self.rows)


def _dec(value: Any) -> Decimal:
    return ZERO if value is None else Decimal(value)


def reconcile_in(session: Session, tenant_id: int) -> Reconciliation:
    tb = trial_balance_in(session, tenant_id)
    gl = {r.code: r.balance for r in tb.rows}
    open_loans = (LoanRow.tenant_id == tenant_id) & (LoanRow.status != "written_off")
    accrued = accrued_column(closed_through(session, tenant_id))
    inst = (
        select(
            func.sum(InstallmentRow.principal - InstallmentRow.principal_paid, type_=Amount()),
            func.sum(accrued - InstallmentRow.interest_paid, type_=Amount()),
        )
        .join(LoanRow, LoanRow.id == InstallmentRow.loan_id)
        .where(open_loans)
    )
    principal, interest = session.execute(inst).one()
    penalty = session.execute(
        select(func.sum(LoanRow.penalty_accrued - LoanRow.penalty_paid, type_=Amount())).where(open_loans)
    ).scalar_one()
    # a non-accrual loan's off-balance interest and penalty are on the memo accounts, not the receivables
    # (written-off loans keep theirs there as well: 账销案存)
    held_interest, held_penalty = session.execute(
        select(
            func.sum(LoanRow.interest_suspended, type_=Amount()), func.sum(LoanRow.penalty_suspended, type_=Amount())
        ).where(LoanRow.tenant_id == tenant_id)
    ).one()
    open_held_interest, open_held_penalty = session.execute(
        select(
            func.sum(LoanRow.interest_suspended, type_=Amount()), func.sum(LoanRow.penalty_suspended, type_=Amount())
        ).where(open_loans)
    ).one()
    credit_total = session.execute(
        select(func.sum(LoanRow.credit_balance)).where(LoanRow.tenant_id == tenant_id)
    ).scalar_one()
    # 账销案存: what written-off loans charged off and have not yet repaid stays on the register's memo account
    register = session.execute(
        select(func.sum(WriteOffRow.charged - WriteOffRow.recovered_charged, type_=Amount())).where(
            WriteOffRow.tenant_id == tenant_id, WriteOffRow.status == "approved")
    ).scalar_one()
    # the deferred fees (1305): every installment's share not yet recognised (paid-off and written-off loans
    # have none left)
    deferred = session.execute(
        select(func.sum(InstallmentRow.fee_amortisation - InstallmentRow.fee_amortised, type_=Amount())).where(
            InstallmentRow.tenant_id == tenant_id)
    ).scalar_one()
    sub = {
        Acct.LOAN_PRINCIPAL: _dec(principal),
        Acct.DEFERRED_FEE: _dec(deferred),
        Acct.INTEREST_RECEIVABLE: _dec(interest) - _dec(open_held_interest),
        Acct.PENALTY_RECEIVABLE: _dec(penalty) - _dec(open_held_penalty),
        Acct.BORROWER_CREDIT: _dec(credit_total),
        Acct.OFF_BALANCE_INTEREST: _dec(held_interest),
        Acct.OFF_BALANCE_PENALTY: _dec(held_penalty),
        Acct.WRITTEN_OFF_REGISTER: _dec(register),
    }
    rows = tuple(
        ReconciliationRow(code.value, ACCOUNTS_BY_CODE[code].name, gl.get(code.value, ZERO), value)
        for code, value in sub.items()
    )
    return Reconciliation(rows, tb.balanced)


def reconcile(uow: UnitOfWork, who: Principal) -> Reconciliation:
    who.require(P.VIEW_LEDGER)
    with uow:
        return reconcile_in(uow.session, who.tenant_id)


#: the sub-ledger accounts every line of which carries its loan
LOAN_ACCOUNTS = (
    Acct.LOAN_PRINCIPAL,
    Acct.INTEREST_RECEIVABLE,
    Acct.PENALTY_RECEIVABLE,
    Acct.BORROWER_CREDIT,
    Acct.OFF_BALANCE_INTEREST,
    Acct.OFF_BALANCE_PENALTY,
    Acct.DEFERRED_FEE,
)


@dataclass(frozen=True)
class LoanDifference:
    """One loan's account whose ledger lines do not add up to the loan's own balance (``loan_id`` None: lines
    of a sub-ledger account that name no loan)."""

    loan_id: int | None
    account: str
    ledger: Decimal
    loan: Decimal


def loan_balances_in(session: Session, tenant_id: int) -> dict[int, dict[Acct, Decimal]]:
    """Each loan's balances on the sub-ledger accounts as the loan itself states them (debit positive)."""
    out: dict[int, dict[Acct, Decimal]] = {}
    accrued = accrued_column(closed_through(session, tenant_id))
    inst = (
        select(
            InstallmentRow.loan_id,
            func.sum(InstallmentRow.principal - InstallmentRow.principal_paid, type_=Amount()),
            func.sum(accrued - InstallmentRow.interest_paid, type_=Amount()),
            func.sum(InstallmentRow.fee_amortisation - InstallmentRow.fee_amortised, type_=Amount()),
        )
        .where(InstallmentRow.tenant_id == tenant_id)
        .group_by(InstallmentRow.loan_id)
    )
    rows = list(session.execute(inst))
    owed = {int(r[0]): (_dec(r[1]), _dec(r[2])) for r in rows}
    deferred = {int(r[0]): _dec(r[3]) for r in rows}
    loans_q = select(
        LoanRow.id, LoanRow.status, LoanRow.penalty_accrued, LoanRow.penalty_paid, LoanRow.credit_balance,
        LoanRow.interest_suspended, LoanRow.penalty_suspended,
    ).where(LoanRow.tenant_id == tenant_id)
    for loan_id, status, pen_accrued, pen_paid, credit_balance, held_i, held_p in session.execute(loans_q):
        principal, interest = owed.get(int(loan_id), (ZERO, ZERO))
        on_books = status != "written_off"  # a written-off loan keeps only its memo amounts (账销案存)
        out[int(loan_id)] = {
            Acct.LOAN_PRINCIPAL: principal if on_books else ZERO,
            Acct.INTEREST_RECEIVABLE: interest - held_i if on_books else ZERO,
            Acct.PENALTY_RECEIVABLE: pen_accrued - pen_paid - held_p if on_books else ZERO,
            Acct.BORROWER_CREDIT: -credit_balance,
            Acct.OFF_BALANCE_INTEREST: held_i,
            Acct.OFF_BALANCE_PENALTY: held_p,
            Acct.DEFERRED_FEE: -deferred.get(int(loan_id), ZERO),
        }
    return out


def reconcile_loans_in(session: Session, tenant_id: int) -> list[LoanDifference]:
    """逐户对账 the ledger loan by loan: per loan and sub-ledger account, what was posted for the loan (its journal
    lines and its rows in the close-of-business sub-ledger) against the loan's own balance, and every batch entry's
    general-ledger lines against the sum of its sub-ledger rows (a batch difference comes under loan None);
    returns every difference (none: the sub-ledger reconciles loan by loan)."""
    codes = {a.value for a in LOAN_ACCOUNTS}
    posted = {key: amount for key, amount in loan_account_sums(session, tenant_id).items() if key[1] in codes}
    differences: list[LoanDifference] = []
    for loan_id, balances in sorted(loan_balances_in(session, tenant_id).items()):
        for account, own in balances.items():
            on_ledger = posted.pop((loan_id, account.value), ZERO)
            if on_ledger != own:
                differences.append(LoanDifference(loan_id, account.value, on_ledger, own))
    differences += [
        LoanDifference(loan_id, account, amount, ZERO) for (loan_id, account), amount in posted.items() if amount
    ]
    differences += [
        LoanDifference(None, d.account, d.general_ledger, d.sub_ledger) for d in batch_differences(session, tenant_id)
    ]
    return differences


def reconcile_loans(uow: UnitOfWork, who: Principal) -> list[LoanDifference]:
    who.require(P.VIEW_LEDGER)
    with uow:
        return reconcile_loans_in(uow.session, who.tenant_id)


def reconcile_batches(
    uow: UnitOfWork, who: Principal, first: date | None = None, last: date | None = None
) -> list[BatchDifference]:
    """对账 every close-of-business batch entry against its loan-level sub-ledger rows, per account and business
    date (``first``..``last`` when given); an empty list: the general ledger and the sub-ledger agree."""
    who.require(P.VIEW_LEDGER)
    if first is not None and last is not None and last < first:
        raise ValidationError("to: the period ends before it starts", field="to")
    with uow:
        return batch_differences(uow.session, who.tenant_id, first, last)


def loan_postings(uow: UnitOfWork, who: Principal, loan_id: int, account: str | None = None) -> list[LoanPosting]:
    """A loan's postings (its ledger statement), oldest first: its journal lines and its nightly sub-ledger rows
    (interest, penalty, off-balance, fees), on every account or on ``account``."""
    who.require(P.VIEW_LEDGER)
    if account is not None and account not in ACCOUNTS_BY_CODE:
        raise ValidationError(f"account: unknown account '{account}'", field="account")
    with uow:
        owner = uow.session.execute(select(LoanRow.tenant_id).where(LoanRow.id == loan_id)).scalar()
        if owner != who.tenant_id:
            raise NotFound(f"loan {loan_id} not found")
        return subledger_postings(uow.session, who.tenant_id, loan_id, account)
