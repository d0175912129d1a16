"""The loan repository on SQLite and PostgreSQL: a loan read, changed, saved and read again is the loan that
was saved — installments replaced by a re-amortisation included — and another bank's loan is not found."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select
from tests.integration.servicing.kit import Bank

from microlend.core.errors import NotFound
from microlend.servicing import service
from microlend.servicing.domain import Loan
from microlend.servicing.repository import ledger, loans
from microlend.servicing.schedules import PrepaymentMode
from microlend.servicing.service import Disbursement
from microlend.servicing.tables import InstallmentRow, LoanEventRow
from microlend.servicing.writeoff import write_off_loan

D = Decimal


def new_loan(bank: Bank) -> int:
    return service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", D("10000"), 12, D("0.12"))).id


def load(bank: Bank, loan_id: int) -> Loan:
    with bank.uow() as uow:
        return loans(uow).get(bank.tenant_id, loan_id)


def change_and_save(bank: Bank, loan_id: int, change: Callable[[Loan], object]) -> Loan:
    with bank.uow() as uow:
        loan = loans(uow).get(bank.tenant_id, loan_id, lock=True)
        change(loan)
        loans(uow).save(loan)
        uow.commit()
    return loan


class TestRoundTrip:
    def test_a_repaid_loan_reads_back_as_saved(self, bank: Bank) -> None:
        loan_id = new_loan(bank)
        saved = change_and_save(bank, loan_id, lambda loan: loan.repay(D("1000"), date(2026, 2, 15)))
        assert saved.installments[0].status == "paid" and saved.credit_balance == D("111.51")
        assert load(bank, loan_id) == saved

    def test_a_reamortised_schedule_replaces_the_later_installments(self, bank: Bank) -> None:
        loan_id = new_loan(bank)
        before = load(bank, loan_id)
        saved = change_and_save(
            bank, loan_id, lambda loan: loan.prepay(D("3888.49"), date(2026, 2, 15), PrepaymentMode.REDUCE_TERM)
        )
        assert all(i.id is not None for i in saved.installments)
        again = load(bank, loan_id)
        assert again == saved and again.maturity_date < before.maturity_date
        assert len(again.installments) < len(before.installments)
        with bank.uow() as uow:
            rows = uow.session.execute(
                select(InstallmentRow).where(InstallmentRow.loan_id == loan_id).order_by(InstallmentRow.number)
            ).scalars()
            assert [(r.start_day, r.due_day) for r in rows] == [
                (i.period_start.toordinal(), i.due_date.toordinal()) for i in again.installments
            ]

    def test_a_written_off_loan_keeps_its_state_and_history(self, bank: Bank) -> None:
        loan_id = new_loan(bank)
        saved = change_and_save(bank, loan_id, lambda loan: write_off_loan(loan, date(2026, 1, 15), "fraud", D(0),
                                                                   reverse_accrued=True))
        assert saved.events == [] and saved.history == []  # handed over on save
        assert load(bank, loan_id) == saved
        with bank.uow() as uow:
            kinds = uow.session.execute(
                select(LoanEventRow.kind).where(LoanEventRow.loan_id == loan_id).order_by(LoanEventRow.id)
            ).scalars()
            assert list(kinds) == ["LoanDisbursed", "LoanWrittenOff"]

    def test_nothing_is_saved_without_commit(self, bank: Bank) -> None:
        loan_id = new_loan(bank)
        before = load(bank, loan_id)
        with bank.uow() as uow:
            loan = loans(uow).get(bank.tenant_id, loan_id)
            loan.repay(D("500"), ledger(uow).business_date(bank.tenant_id))
            loans(uow).save(loan)
        assert load(bank, loan_id) == before

    def test_another_banks_loan_is_not_found(self, bank: Bank, other_bank: Callable[[], Bank]) -> None:
        loan_id = new_loan(bank)
        stranger = other_bank()
        with stranger.uow() as uow, pytest.raises(NotFound):
            loans(uow).get(stranger.tenant_id, loan_id)
