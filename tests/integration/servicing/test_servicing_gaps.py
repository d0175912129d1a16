"""Servicing gaps a bank's finance team would flag: a borrower's credit balance settles the next dues on their
due date (no overdue, no penalty, no 关注); compound interest (复利) on overdue interest, so interest-only and
bullet arrears carry penalty; penalty charged back once the grace period is exceeded; a reversal recomputes
penalty; each on SQLite and PostgreSQL, with the ledger reconciling loan by loan."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from tests.integration.servicing.kit import Bank

from microlend.core.money import round_half_up
from microlend.servicing import cob, service
from microlend.servicing.delinquency import daily_penalty, penalty_for_day
from microlend.servicing.service import Disbursement

D = Decimal
ZERO = D(0)
START = date(2026, 1, 15)


def close_through(bank: Bank, last: date) -> list[cob.CobResult]:
    return cob.run_close_of_business(bank.uow(), bank.who, through=last)


def reconciled_loan_by_loan(bank: Bank) -> None:
    rec = service.reconcile(bank.uow(), bank.who)
    assert rec.ok, [(r.account, r.general_ledger, r.sub_ledger) for r in rec.rows if r.difference]
    assert service.reconcile_loans(bank.uow(), bank.who) == []


def pay_first_installment_with(bank: Bank, loan_id: int, extra: Decimal) -> D:
    close_through(bank, date(2026, 2, 14))  # the business date is now the first due date
    first = service.get_loan(bank.uow(), bank.who, loan_id).installments[0]
    assert first.due_date == date(2026, 2, 15)
    service.post_repayment(bank.uow(), bank.who, loan_id, first.outstanding + extra)
    return first.outstanding


class TestCreditBalanceSettlesTheNextDues:
    def test_a_borrower_holding_credit_is_never_overdue_nor_charged_penalty(self, bank: Bank) -> None:
        loan_id = service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", D("12000"), 12, D("0.12"))).id
        pay_first_installment_with(bank, loan_id, D("1933.81"))
        assert service.get_loan(bank.uow(), bank.who, loan_id).credit_balance == D("1933.81")
        close_through(bank, date(2026, 4, 14))  # 30 days after the second due date, before the third

        view = service.get_loan(bank.uow(), bank.who, loan_id)
        second = view.installments[1]
        assert second.status == "paid"
        assert (view.days_past_due, view.bucket, view.loan_class) == (0, "M0", "normal")
        assert view.penalty_due == ZERO
        assert view.credit_balance == D("1933.81") - second.payment
        reconciled_loan_by_loan(bank)

        close_through(bank, date(2026, 4, 20))  # the third is more than the credit left: the rest is overdue
        view = service.get_loan(bank.uow(), bank.who, loan_id)
        third = view.installments[2]
        assert view.credit_balance == ZERO
        assert third.outstanding == third.payment - (D("1933.81") - second.payment)
        assert view.days_past_due == 5
        reconciled_loan_by_loan(bank)

    def test_a_product_may_keep_credit_until_the_borrower_asks(self, bank: Bank) -> None:
        service.update_product(bank.uow(), bank.who, "EI-STD", {"auto_apply_credit": False})
        loan_id = service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", D("12000"), 12, D("0.12"))).id
        pay_first_installment_with(bank, loan_id, D("1933.81"))
        close_through(bank, date(2026, 3, 20))
        view = service.get_loan(bank.uow(), bank.who, loan_id)
        assert view.credit_balance == D("1933.81")
        assert view.days_past_due == 5


def penalty_on_everything_overdue(bank: Bank, loan_id: int, end: date) -> Decimal:
    """The domain reference: nothing paid, each day's penalty on the principal and interest then past due."""
    view = service.get_loan(bank.uow(), bank.who, loan_id)
    product = next(p for p in service.list_products(bank.uow(), bank.who) if p.id == view.product_id)
    expected = ZERO
    day = START
    while day <= end:
        late = [i for i in view.installments if i.due_date < day]
        if late and (day - min(i.due_date for i in late)).days > product.grace_days:
            base = sum((i.principal + i.interest for i in late), ZERO)
            dpd = (day - min(i.due_date for i in late)).days
            expected += penalty_for_day(base, view.annual_rate, product.penalty_multiplier, dpd, product.grace_days)
        day += timedelta(days=1)
    return expected


class TestCompoundInterestOnOverdueInterest:
    def test_interest_only_arrears_carry_penalty_on_the_unpaid_interest(self, bank: Bank) -> None:
        loan_id = service.disburse(bank.uow(), bank.who, Disbursement("IO-STD", D("120000"), 12, D("0.072"))).id
        end = date(2026, 2, 15) + timedelta(days=94)
        close_through(bank, end)
        view = service.get_loan(bank.uow(), bank.who, loan_id)
        unpaid_interest = sum((i.interest for i in view.installments if i.due_date < end), ZERO)
        assert unpaid_interest > D("2000")  # interest only: nothing but interest is overdue
        assert sum((i.principal for i in view.installments if i.due_date < end), ZERO) == ZERO
        assert view.penalty_due == penalty_on_everything_overdue(bank, loan_id, end) > 0
        reconciled_loan_by_loan(bank)

    def test_bullet_arrears_carry_penalty_on_principal_and_interest(self, bank: Bank) -> None:
        loan_id = service.disburse(bank.uow(), bank.who, Disbursement("BL-STD", D("50000"), 1, D("0.096"))).id
        end = date(2026, 3, 31)
        close_through(bank, end)
        view = service.get_loan(bank.uow(), bank.who, loan_id)
        penalty_on_principal_only = sum(
            (daily_penalty(D("50000"), view.annual_rate, D("1.5")) for _ in range((end - date(2026, 2, 15)).days)),
            ZERO,
        )
        assert view.penalty_due == penalty_on_everything_overdue(bank, loan_id, end) > penalty_on_principal_only
        reconciled_loan_by_loan(bank)

    def test_without_compound_interest_only_principal_carries_penalty(self, bank: Bank) -> None:
        service.update_product(bank.uow(), bank.who, "IO-STD", {"compound_interest": False})
        loan_id = service.disburse(bank.uow(), bank.who, Disbursement("IO-STD", D("120000"), 12, D("0.072"))).id
        service.update_product(bank.uow(), bank.who, "IO-STD", {"compound_interest": True})  # a loan keeps its terms
        close_through(bank, date(2026, 5, 20))
        assert service.get_loan(bank.uow(), bank.who, loan_id).penalty_due == ZERO


def ei_loan(bank: Bank) -> int:
    return service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", D("12000"), 12, D("0.12"))).id


class TestGracePeriod:
    def test_exceeding_the_grace_period_charges_penalty_from_the_first_day_overdue(self, bank: Bank) -> None:
        loan_id = ei_loan(bank)  # EI-STD: three days' grace
        due = date(2026, 2, 15)
        close_through(bank, due + timedelta(days=3))
        assert service.get_loan(bank.uow(), bank.who, loan_id).penalty_due == ZERO  # within grace
        close_through(bank, due + timedelta(days=4))
        view = service.get_loan(bank.uow(), bank.who, loan_id)
        first = view.installments[0]
        one_day = daily_penalty(first.principal + first.interest, view.annual_rate, D("1.5"))
        assert view.penalty_due == 4 * one_day > 0
        close_through(bank, due + timedelta(days=5))
        assert service.get_loan(bank.uow(), bank.who, loan_id).penalty_due == 5 * one_day
        reconciled_loan_by_loan(bank)

    def test_paid_within_grace_no_penalty_is_charged(self, bank: Bank) -> None:
        loan_id = ei_loan(bank)
        close_through(bank, date(2026, 2, 17))
        first = service.get_loan(bank.uow(), bank.who, loan_id).installments[0]
        service.post_repayment(bank.uow(), bank.who, loan_id, first.outstanding)
        close_through(bank, date(2026, 3, 10))
        assert service.get_loan(bank.uow(), bank.who, loan_id).penalty_due == ZERO


class TestReversalRecomputesPenalty:
    def test_a_bounced_payment_reversed_later_carries_the_penalty_of_the_days_it_stood(self, bank: Bank) -> None:
        loan_id = ei_loan(bank)
        close_through(bank, date(2026, 2, 14))
        paid = service.get_loan(bank.uow(), bank.who, loan_id).installments[0].outstanding
        rep = service.post_repayment(bank.uow(), bank.who, loan_id, paid)  # on its due date, 2026-02-15
        close_through(bank, date(2026, 3, 1))
        assert service.get_loan(bank.uow(), bank.who, loan_id).penalty_due == ZERO
        service.reverse_repayment(bank.uow(), bank.who, rep.id, "cheque bounced")

        view = service.get_loan(bank.uow(), bank.who, loan_id)
        rate = view.annual_rate
        # the installment stood unpaid at the close of 2026-02-15 .. 2026-03-01: 14 days past due by then
        expected = sum(
            (penalty_for_day(paid, rate, D("1.5"), dpd, 3) for dpd in range(0, 15)),
            ZERO,
        )
        assert view.penalty_due == expected == 14 * daily_penalty(paid, rate, D("1.5"))
        reconciled_loan_by_loan(bank)
        close_through(bank, date(2026, 3, 2))  # and it keeps running from there
        assert service.get_loan(bank.uow(), bank.who, loan_id).penalty_due == expected + daily_penalty(
            paid, rate, D("1.5")
        )
        reconciled_loan_by_loan(bank)


def schedule_of(bank: Bank, loan_id: int) -> list[tuple[object, ...]]:
    return [
        (i.number, i.due_date, i.principal, i.interest, i.principal_paid, i.interest_paid, i.status)
        for i in service.get_loan(bank.uow(), bank.who, loan_id).installments
    ]


class TestEarlyRepaymentsAreReversible:
    def test_a_partial_prepayment_reversed_brings_back_its_schedule_and_the_days_since_are_charged(
        self, bank: Bank
    ) -> None:
        loan_id = ei_loan(bank)
        close_through(bank, date(2026, 2, 14))
        original = schedule_of(bank, loan_id)
        first = service.get_loan(bank.uow(), bank.who, loan_id).installments[0]
        early = service.repay_early(
            bank.uow(), bank.who, loan_id, amount=first.outstanding + D("3000"), mode="reduce-term"
        )
        assert len(schedule_of(bank, loan_id)) < 12
        close_through(bank, date(2026, 2, 25))
        service.reverse_repayment(bank.uow(), bank.who, early.id, "cheque bounced")

        assert schedule_of(bank, loan_id) == original
        view = service.get_loan(bank.uow(), bank.who, loan_id)
        # the first installment stood unpaid 10 days: past the 3 days' grace, charged from the first day
        assert view.penalty_due == 10 * daily_penalty(first.outstanding, view.annual_rate, D("1.5"))
        reconciled_loan_by_loan(bank)
        close_through(bank, date(2026, 3, 20))
        reconciled_loan_by_loan(bank)


class TestPartialPrepaymentOnAnyDate:
    def test_a_prepayment_between_due_dates_lowers_the_interest_and_the_books_follow(self, bank: Bank) -> None:
        loan_id = ei_loan(bank)  # 12,000 at 12 % over 12 months from 2026-01-15
        close_through(bank, date(2026, 2, 2))  # the business date is 2026-02-03
        before = service.get_loan(bank.uow(), bank.who, loan_id)
        early = service.repay_early(bank.uow(), bank.who, loan_id, amount=D("3000"), mode="reduce-installment")
        assert early.value_date == date(2026, 2, 3)
        view = service.get_loan(bank.uow(), bank.who, loan_id)
        first = view.installments[0]
        assert (first.principal, first.interest) == (before.installments[0].principal, before.installments[0].interest)
        # 3,000 earns 1 % a month no longer for 12 of the first period's 31 days: off the next installment
        balance_after_first = D("9000") - first.principal
        assert view.installments[1].interest == round_half_up(balance_after_first * D("0.01")) - D("11.61")
        assert len(view.installments) == 12 and view.installments[1].payment < before.installments[1].payment
        assert view.outstanding_principal == D("9000")
        reconciled_loan_by_loan(bank)
        close_through(bank, date(2026, 3, 20))  # accruals follow the new schedule
        assert service.get_loan(bank.uow(), bank.who, loan_id).installments[1].interest_accrued == (
            view.installments[1].interest
        )
        reconciled_loan_by_loan(bank)
