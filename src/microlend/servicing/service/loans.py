"""Loan queries: a loan with its schedule, its transactions, the loan list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import select

from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.servicing.accrued import closed_through
from microlend.servicing.domain import Installment, Loan
from microlend.servicing.ledger import JournalLine
from microlend.servicing.repository import installment_rows, load_entry, loan_from_rows, loans
from microlend.servicing.schedules import is_broken_period
from microlend.servicing.service._common import P, _loan
from microlend.servicing.tables import InstallmentRow, JournalEntryRow, LoanRow


@dataclass(frozen=True)
class InstallmentView:
    number: int
    period_start: date
    due_date: date
    principal: Decimal
    interest: Decimal
    fee: Decimal
    principal_paid: Decimal
    interest_paid: Decimal
    fee_paid: Decimal
    interest_accrued: Decimal
    status: str

    @property
    def payment(self) -> Decimal:
        return self.principal + self.interest + self.fee

    @property
    def outstanding(self) -> Decimal:
        return self.payment - self.principal_paid - self.interest_paid - self.fee_paid

    @property
    def days(self) -> int:
        return (self.due_date - self.period_start).days

    @property
    def broken_period(self) -> bool:
        """不足月/超月 not a whole number of months: interest on the period's actual days."""
        return is_broken_period(self.period_start, self.due_date)

    @classmethod
    def from_domain(cls, i: Installment) -> InstallmentView:
        return cls(
            i.number, i.period_start, i.due_date, i.principal, i.interest, i.fee, i.principal_paid,
            i.interest_paid, i.fee_paid, i.interest_accrued, i.status,
        )


@dataclass(frozen=True)
class LoanView:
    id: int
    product_id: int
    customer_id: int | None
    method: str
    currency: str
    principal: Decimal
    annual_rate: Decimal
    term_months: int
    upfront_fee: Decimal
    fee_mode: str
    disbursed_on: date
    maturity_date: date
    status: str
    days_past_due: int
    bucket: str
    loan_class: str
    outstanding_principal: Decimal
    interest_receivable: Decimal
    penalty_due: Decimal
    credit_balance: Decimal
    credit_line_id: int | None
    installments: tuple[InstallmentView, ...] = field(default=(), repr=False)
    #: accruing | non-accrual (停止计息) | written-off
    accrual_status: str = "accruing"
    #: the upfront fee not yet recognised (未实现手续费收益, effective-interest method)
    deferred_fee: Decimal = Decimal(0)
    #: interest paid before it accrued (a repayment on the day of disbursement pays interest of days to come):
    #: shown as such, never as a negative `interest_receivable`
    interest_paid_ahead: Decimal = Decimal(0)


def _loan_view(loan: LoanRow, insts: Sequence[InstallmentRow], closed: int) -> LoanView:
    return loan_view(loan_from_rows(loan, insts, closed))


def loan_view(loan: Loan) -> LoanView:
    """What staff and borrowers see of a loan."""
    return LoanView(
        loan.id,
        loan.product_id,
        loan.customer_id,
        loan.method,
        loan.currency,
        loan.principal,
        loan.annual_rate,
        loan.term_months,
        loan.upfront_fee,
        loan.fee_mode,
        loan.disbursed_on,
        loan.maturity_date,
        loan.status,
        loan.days_past_due,
        loan.bucket,
        loan.loan_class,
        loan.outstanding_principal,
        max(loan.interest_receivable, Decimal(0)),
        loan.penalty_due,
        loan.credit_balance,
        loan.credit_line_id,
        tuple(InstallmentView.from_domain(i) for i in loan.installments),
        loan.accrual_state,
        loan.deferred_fee,
        max(-loan.interest_receivable, Decimal(0)),
    )


def get_loan(uow: UnitOfWork, who: Principal, loan_id: int) -> LoanView:
    who.require(P.VIEW_LOANS)
    with uow:
        return loan_view(loans(uow).get(who.tenant_id, loan_id))


def loan_schedule(uow: UnitOfWork, who: Principal, loan_id: int) -> list[InstallmentView]:
    return list(get_loan(uow, who, loan_id).installments)


@dataclass(frozen=True)
class TransactionView:
    entry_id: int
    business_date: date
    kind: str
    memo: str
    lines: tuple[JournalLine, ...]


def loan_transactions(uow: UnitOfWork, who: Principal, loan_id: int) -> list[TransactionView]:
    """Every journal entry that touched a loan, oldest first."""
    who.require(P.VIEW_LOANS)
    with uow:
        s = uow.session
        _loan(s, who, loan_id)
        rows = s.execute(
            select(JournalEntryRow)
            .where(JournalEntryRow.tenant_id == who.tenant_id, JournalEntryRow.loan_id == loan_id)
            .order_by(JournalEntryRow.id)
        ).scalars()
        return [TransactionView(r.id, r.business_date, r.kind, r.memo, load_entry(s, r.id).lines) for r in rows]



def list_loans(
    uow: UnitOfWork, who: Principal, *, status: str | None = None, limit: int = 100, offset: int = 0
) -> list[LoanView]:
    who.require(P.VIEW_LOANS)
    with uow:
        s = uow.session
        stmt = select(LoanRow).where(LoanRow.tenant_id == who.tenant_id)
        if status:
            stmt = stmt.where(LoanRow.status == status)
        loans = list(s.execute(stmt.order_by(LoanRow.id).limit(min(limit, 500)).offset(offset)).scalars())
        closed = closed_through(s, who.tenant_id)
        return [_loan_view(loan, installment_rows(s, loan.id), closed) for loan in loans]
