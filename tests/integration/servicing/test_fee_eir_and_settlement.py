"""Through close of business on SQLite and PostgreSQL: an upfront fee is deferred at payout and recognised into
interest income over the loan's life by the effective-interest method (实际利率法), and a revolving drawdown's
interest is charged on the daily-balance product and settled monthly (按月结息), rounded once."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from tests.integration.servicing.kit import Bank
from tests.integration.servicing.test_servicing_ledger_db import assert_books_sound, balance

from microlend.servicing import cob, service
from microlend.servicing.ledger import Acct
from microlend.servicing.nonaccrual import AccruedInterestPolicy, NonAccrualSettings
from microlend.servicing.products import STANDARD_CATALOGUE, Product
from microlend.servicing.repository import SqlLoanRepository
from microlend.servicing.schedules import accrued_interest
from microlend.servicing.service import Disbursement

D = Decimal
START = date(2026, 1, 15)


def close_through(bank: Bank, last: date) -> None:
    cob.run_close_of_business(bank.uow(), bank.who, through=last)


def fee_product(bank: Bank) -> str:
    """An equal-installment product charging 2 % upfront, deducted from the payout."""
    base = next(p for p in STANDARD_CATALOGUE if p.code == "EI-STD")
    product: Product = replace(base, code="EI-FEE", upfront_fee_rate=D("0.02"), min_term_months=6, max_rate=D("0.12"))
    service.create_product(bank.uow(), bank.who, product)
    return "EI-FEE"


def loan_lines(bank: Bank, loan_id: int, account: Acct) -> Decimal:
    """The loan's postings on ``account`` (its journal lines and its nightly sub-ledger rows), credits positive."""
    return -sum((p.debit - p.credit for p in service.loan_postings(bank.uow(), bank.who, loan_id, account.value)),
                D(0))


def pay_what_falls_due(bank: Bank, loan_id: int, last: date, first: date = START) -> None:
    """Close every date ``first``..``last``, the borrower paying each installment on its due date."""
    day = first
    while day <= last:
        view = service.get_loan(bank.uow(), bank.who, loan_id)
        for inst in view.installments:
            if inst.due_date == day and inst.outstanding > 0:
                service.post_repayment(bank.uow(), bank.who, loan_id, inst.outstanding)
        close_through(bank, day)
        day += timedelta(days=1)


class TestFeeAmortisation:
    def test_the_fee_is_income_over_the_life_and_the_deferred_balance_ends_at_zero(self, bank: Bank) -> None:
        loan = service.disburse(bank.uow(), bank.who, Disbursement(fee_product(bank), D("10000"), 6, D("0.12")))
        assert loan.deferred_fee == D("200.00") and balance(bank, Acct.DEFERRED_FEE) == D("200.00")
        assert loan_lines(bank, loan.id, Acct.INTEREST_INCOME) == 0  # nothing at payout
        pay_what_falls_due(bank, loan.id, date(2026, 3, 1))
        view = service.get_loan(bank.uow(), bank.who, loan.id)
        with bank.uow() as u:  # the set-based amortisation equals the domain's accrual of each share
            stored = SqlLoanRepository(u).get(bank.tenant_id, loan.id)
            for inst in stored.installments:
                expected = accrued_interest(inst.fee_amortisation, inst.period_start, inst.due_date,
                                            date(2026, 3, 1)) if inst.period_start <= date(2026, 3, 1) else D(0)
                assert inst.fee_amortised == expected, inst.number
            assert stored.installments[0].fee_amortisation > stored.installments[-1].fee_amortisation > 0
        assert D(0) < view.deferred_fee < D("200.00")
        assert service.reconcile_loans(bank.uow(), bank.who) == []
        pay_what_falls_due(bank, loan.id, view.maturity_date, date(2026, 3, 2))
        view = service.get_loan(bank.uow(), bank.who, loan.id)
        interest = sum((i.interest for i in view.installments), D(0))
        assert view.status == "closed" and view.deferred_fee == 0
        assert balance(bank, Acct.DEFERRED_FEE) == 0
        assert loan_lines(bank, loan.id, Acct.INTEREST_INCOME) == interest + D("200.00")
        assert loan_lines(bank, loan.id, Acct.FEE_INCOME) == 0
        assert_books_sound(bank)
        assert service.reconcile_loans(bank.uow(), bank.who) == []

    def test_an_early_payoff_recognises_the_rest_at_once(self, bank: Bank) -> None:
        loan = service.disburse(bank.uow(), bank.who, Disbursement(fee_product(bank), D("10000"), 12, D("0.12")))
        close_through(bank, date(2026, 1, 31))
        amortised = loan_lines(bank, loan.id, Acct.INTEREST_INCOME) - sum(
            (i.interest_accrued for i in service.get_loan(bank.uow(), bank.who, loan.id).installments), D(0))
        assert D(0) < amortised < D("200.00")
        service.repay_early(bank.uow(), bank.who, loan.id)
        view = service.get_loan(bank.uow(), bank.who, loan.id)
        assert view.status == "closed" and view.deferred_fee == 0
        assert loan_lines(bank, loan.id, Acct.DEFERRED_FEE) == D(0)
        assert_books_sound(bank)
        assert service.reconcile_loans(bank.uow(), bank.who) == []

    def test_a_non_accrual_loan_stops_amortising(self, bank: Bank) -> None:
        service.set_nonaccrual_settings(
            bank.uow(), bank.who, NonAccrualSettings(days=30, on_npl=True, policy=AccruedInterestPolicy.REVERSE))
        loan = service.disburse(bank.uow(), bank.who, Disbursement(fee_product(bank), D("10000"), 12, D("0.12")))
        close_through(bank, date(2026, 3, 25))  # nothing paid: 38 days past due on March 25th
        view = service.get_loan(bank.uow(), bank.who, loan.id)
        assert view.accrual_status == "non-accrual"
        left = view.deferred_fee
        close_through(bank, date(2026, 4, 30))
        assert service.get_loan(bank.uow(), bank.who, loan.id).deferred_fee == left > 0
        assert_books_sound(bank)
        assert service.reconcile_loans(bank.uow(), bank.who) == []


class TestRevolvingMonthlySettlement:
    def test_a_small_balance_is_charged_the_product_rounded_once_not_a_rounded_cent_a_day(self, bank: Bank) -> None:
        # 99.00 at 6 %: 0.0165 a day. Rounded each day that was 0.02 × 29 = 0.58; the 29 days' balance product
        # gives 99 × 29 × 0.06 / 360 = 0.4785, charged 0.48 at the settlement of February 20th
        close_through(bank, date(2026, 1, 22))
        line = service.open_credit_line(bank.uow(), bank.who, "RV-STD", D("40000"), annual_rate=D("0.06"))
        paid = service.draw_down(bank.uow(), bank.who, line.id, D("99.00")).id
        unpaid = service.draw_down(bank.uow(), bank.who, line.id, D("99.00")).id
        close_through(bank, date(2026, 2, 20))
        view = service.get_loan(bank.uow(), bank.who, paid)
        settled = [i for i in view.installments if i.number > 1]
        assert [(i.interest, i.due_date, i.principal) for i in settled] == [(D("0.48"), date(2026, 2, 21), D(0))]
        assert view.installments[0].interest == 0  # the month starts again
        assert loan_lines(bank, paid, Acct.INTEREST_INCOME) == D("0.48")
        assert view.days_past_due == 0
        service.post_repayment(bank.uow(), bank.who, paid, D("0.48"))  # on the 21st, the due date
        close_through(bank, date(2026, 2, 22))
        assert service.get_loan(bank.uow(), bank.who, paid).days_past_due == 0
        late = service.get_loan(bank.uow(), bank.who, unpaid)
        assert late.days_past_due == 1  # the unpaid settled interest counts as past due
        assert [i.status for i in late.installments if i.number > 1] == ["overdue"]
        assert_books_sound(bank)
        assert service.reconcile_loans(bank.uow(), bank.who) == []

    def test_principal_stays_repayable_any_day_and_the_settled_interest_is_paid_first(self, bank: Bank) -> None:
        line = service.open_credit_line(bank.uow(), bank.who, "RV-STD", D("40000"))
        loan = service.draw_down(bank.uow(), bank.who, line.id, D("20000")).id
        close_through(bank, date(2026, 1, 21))
        view = service.get_loan(bank.uow(), bank.who, loan)
        settled = next(i for i in view.installments if i.number == 2)
        accrued = view.installments[0].interest
        assert settled.due_date == date(2026, 1, 21) and settled.interest > 0 and accrued > 0
        service.post_repayment(bank.uow(), bank.who, loan, settled.interest + accrued + D("5000"))
        view = service.get_loan(bank.uow(), bank.who, loan)
        assert view.outstanding_principal == D("15000")
        assert all(i.interest_paid == i.interest for i in view.installments)
        close_through(bank, date(2026, 1, 25))
        assert_books_sound(bank)
        assert service.reconcile_loans(bank.uow(), bank.who) == []
