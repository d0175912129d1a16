"""逐户对账: every line of the nightly interest and penalty postings carries its loan, so a loan's income and
receivables can be traced in the ledger and the sub-ledger reconciles loan by loan (accruing, overdue,
revolving, non-accrual and repaid loans alike)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from tests.integration.servicing.kit import Bank

from microlend.core.db import Amount
from microlend.servicing import cob, service
from microlend.servicing.accrued import accrued_column, accrued_on, closed_through
from microlend.servicing.ledger import Acct
from microlend.servicing.nonaccrual import AccruedInterestPolicy, NonAccrualSettings
from microlend.servicing.service import Disbursement
from microlend.servicing.tables import InstallmentRow, JournalEntryRow, JournalLineRow, LoanAccrualRow

D = Decimal


def close_through(bank: Bank, last: date) -> list[cob.CobResult]:
    return cob.run_close_of_business(bank.uow(), bank.who, through=last)


def income_of(bank: Bank, loan_id: int, account: Acct) -> Decimal:
    """The loan's income on ``account`` as its ledger statement shows it: journal lines and sub-ledger rows."""
    return sum((p.credit - p.debit for p in service.loan_postings(bank.uow(), bank.who, loan_id, account.value)),
               D(0))


class TestEveryPostingLineCarriesItsLoan:
    def test_the_ledger_reconciles_loan_by_loan_through_overdue_revolving_and_non_accrual(self, bank: Bank) -> None:
        service.set_nonaccrual_settings(
            bank.uow(), bank.who, NonAccrualSettings(days=30, on_npl=True, policy=AccruedInterestPolicy.REVERSE)
        )
        payer = service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", D("12000"), 12, D("0.12"))).id
        late = service.disburse(bank.uow(), bank.who, Disbursement("EP-STD", D("8000.50"), 6, D("0.10"))).id
        bullet = service.disburse(bank.uow(), bank.who, Disbursement("BL-STD", D("5000"), 1, D("0.096"))).id
        line = service.open_credit_line(bank.uow(), bank.who, "RV-STD", D("40000"))
        revolving = service.draw_down(bank.uow(), bank.who, line.id, D("25000")).id
        day = date(2026, 1, 15)
        while day <= date(2026, 5, 10):
            for paying in (payer, revolving):  # the revolving borrower pays each month's settled interest
                view = service.get_loan(bank.uow(), bank.who, paying)
                for inst in view.installments:
                    if inst.due_date == day and inst.outstanding > 0:
                        service.post_repayment(bank.uow(), bank.who, paying, inst.outstanding)
            if day == date(2026, 3, 1):
                service.post_repayment(bank.uow(), bank.who, revolving, D("10000"))
                service.post_repayment(bank.uow(), bank.who, late, D("500"))
            close_through(bank, day)
            day += timedelta(days=1)

        assert service.reconcile_loans(bank.uow(), bank.who) == []
        assert service.reconcile(bank.uow(), bank.who).ok
        # every line naming no loan is a batch total whose loans are in the sub-ledger, and they agree
        assert service.reconcile_batches(bank.uow(), bank.who) == []
        with bank.uow() as u:
            nameless = u.session.execute(
                select(func.count())
                .select_from(JournalLineRow)
                .join(JournalEntryRow, JournalEntryRow.id == JournalLineRow.entry_id)
                .where(
                    JournalEntryRow.tenant_id == bank.tenant_id,
                    JournalEntryRow.kind.like("cob.%"),
                    JournalLineRow.loan_id.is_(None),
                    ~JournalEntryRow.id.in_(select(LoanAccrualRow.entry_id)),
                )
            ).scalar_one()
            through = closed_through(u.session, bank.tenant_id)
            accrued = {
                int(r[0]): D(r[1])
                for r in u.session.execute(
                    select(InstallmentRow.loan_id, func.sum(accrued_column(through), type_=Amount()))
                    .where(InstallmentRow.tenant_id == bank.tenant_id)
                    .group_by(InstallmentRow.loan_id)
                )
            }
        assert nameless == 0
        # an accruing loan's interest income in the ledger is exactly what it accrued
        assert income_of(bank, payer, Acct.INTEREST_INCOME) == accrued[payer] > 0
        assert income_of(bank, revolving, Acct.INTEREST_INCOME) == accrued[revolving] > 0
        # the late loans charged penalty, loan by loan, and went off-balance
        assert income_of(bank, late, Acct.PENALTY_INCOME) > 0
        assert service.get_loan(bank.uow(), bank.who, bullet).accrual_status == "non-accrual"

    def test_a_difference_on_one_loan_is_named(self, bank: Bank) -> None:
        a = service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", D("12000"), 12, D("0.12"))).id
        service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", D("6000"), 6, D("0.12")))
        close_through(bank, date(2026, 1, 20))
        with bank.uow() as u:  # the sub-ledger drifts on loan a only
            row = u.session.execute(
                select(InstallmentRow).where(InstallmentRow.loan_id == a, InstallmentRow.number == 1)
            ).scalar_one()
            # stored with the day it holds through, as every write does
            row.interest_accrued = accrued_on(row, closed_through(u.session, bank.tenant_id)) + D("0.01")
            row.accrued_through = closed_through(u.session, bank.tenant_id)
            u.commit()
        differences = service.reconcile_loans(bank.uow(), bank.who)
        assert [(d.loan_id, d.account, d.loan - d.ledger) for d in differences] == [
            (a, Acct.INTEREST_RECEIVABLE.value, D("0.01"))
        ]
