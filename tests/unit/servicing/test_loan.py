"""The Loan aggregate on its own: dues, allocation and settlement, reversal, credit balance, early repayment
and write-off — every rule checked without a database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from tests.unit.servicing.fakes import make_loan

from microlend.core.errors import Conflict, ValidationError
from microlend.core.money import round_half_up
from microlend.servicing.allocation import Component
from microlend.servicing.domain import Loan
from microlend.servicing.events import LoanRepaid
from microlend.servicing.ledger import Acct, JournalEntry
from microlend.servicing.schedules import PrepaymentMode, RepaymentMethod

D = Decimal
DISBURSED = date(2026, 1, 15)


def loan_of(principal: str = "10000", term: int = 12, **kw: object) -> Loan:
    return make_loan(principal, "0.12", term, DISBURSED, **kw)  # type: ignore[arg-type]


def amounts(entry: JournalEntry) -> dict[str, Decimal]:
    """Signed amount per account (debit positive), zero lines left out."""
    out: dict[str, Decimal] = {}
    for line in entry.lines:
        out[line.account] = out.get(line.account, D(0)) + line.signed
    return {k: v for k, v in out.items() if v}


class TestDues:
    def test_before_the_first_due_date_only_the_current_installment_is_due(self) -> None:
        loan = loan_of()
        dues = loan.current_dues(date(2026, 2, 1))
        assert {d.installment for d in dues} == {1}
        assert all(not d.overdue for d in dues)
        assert sum(d.amount for d in dues) == D("888.49")

    def test_a_late_installment_is_overdue_and_the_next_one_current(self) -> None:
        loan = loan_of()
        dues = loan.current_dues(date(2026, 2, 20))
        assert [(d.installment, d.overdue) for d in dues] == [(1, True), (1, True), (2, False), (2, False)]

    def test_a_penalty_is_due_first_on_the_loan(self) -> None:
        loan = loan_of()
        loan.penalty_accrued = D("5.00")
        dues = loan.current_dues(date(2026, 2, 1))
        assert (dues[0].installment, dues[0].component, dues[0].amount) == (0, Component.PENALTY, D("5.00"))

    def test_everything_lists_every_unpaid_installment(self) -> None:
        assert {d.installment for d in loan_of().current_dues(DISBURSED, everything=True)} == set(range(1, 13))


class TestRepay:
    def test_an_installment_on_its_due_date_is_settled_in_order(self) -> None:
        loan = loan_of()
        posting = loan.repay(D("888.49"), date(2026, 2, 15))
        assert posting.credit == 0
        assert loan.installments[0].status == "paid" and loan.installments[0].paid_on == date(2026, 2, 15)
        assert loan.outstanding_principal == D("9211.51")
        assert amounts(posting.entry) == {
            Acct.CASH: D("888.49"), Acct.INTEREST_RECEIVABLE: D("-100.00"), Acct.LOAN_PRINCIPAL: D("-788.49"),
        }
        assert posting.entry.kind == "repayment" and posting.entry.loan_id == loan.id

    def test_overpayment_is_held_as_credit_balance(self) -> None:
        loan = loan_of()
        posting = loan.repay(D("1000"), DISBURSED)
        assert posting.credit == D("111.51") and loan.credit_balance == D("111.51")
        assert amounts(posting.entry)[Acct.BORROWER_CREDIT] == D("-111.51")
        assert posting.record["credit"] == "111.51" and posting.record["closed"] is False

    def test_a_penalty_is_paid_before_interest(self) -> None:
        loan = loan_of()
        loan.penalty_accrued = D("3.00")
        posting = loan.repay(D("50"), date(2026, 2, 20))
        assert [(p.component, p.amount) for p in posting.allocation.parts] == [
            (Component.PENALTY, D("3.00")), (Component.INTEREST, D("47")),
        ]
        assert loan.penalty_paid == D("3.00")

    def test_paying_the_whole_schedule_closes_the_loan_and_recognises_unaccrued_interest(self) -> None:
        loan = loan_of(term=3)
        for inst in list(loan.installments):
            posting = loan.repay(inst.principal + inst.interest, inst.due_date)
        assert loan.status == "closed" and loan.closed_on == loan.installments[-1].due_date
        assert loan.outstanding_principal == 0
        total_interest = sum((i.interest for i in loan.installments), D(0))
        assert amounts(posting.entry)[Acct.INTEREST_INCOME] == -total_interest  # nothing accrued before
        assert posting.record["closed"] is True and len(posting.record["recognised"]) == 3
        assert loan.events == [LoanRepaid(loan.tenant_id, loan.id, loan.installments[-1].due_date)]
        assert [h.kind for h in loan.history] == ["LoanRepaid"]
        with pytest.raises(Conflict, match="closed"):
            loan.repay(D("1"), date(2026, 5, 1))

    def test_the_configured_order_decides(self) -> None:
        principal_first = ("penalty", "fee", "overdue_principal", "overdue_interest", "current_principal",
                           "current_interest")
        loan = loan_of(order=principal_first)
        posting = loan.repay(D("800"), date(2026, 2, 1))
        assert posting.allocation.total(Component.PRINCIPAL) == D("788.49")
        assert posting.allocation.total(Component.INTEREST) == D("11.51")

    def test_every_entry_balances(self) -> None:
        loan = loan_of()
        for amount, on in ((D("300"), date(2026, 1, 20)), (D("2000"), date(2026, 3, 20))):
            entry = loan.repay(amount, on).entry
            assert entry.total_debit == entry.total_credit


class TestUnapply:
    def test_unapplying_a_payment_restores_the_loan(self) -> None:
        loan = loan_of()
        before = [(i.principal_paid, i.interest_paid, i.status) for i in loan.installments]
        posting = loan.repay(D("1000"), date(2026, 2, 15))
        loan.unapply(posting.record, date(2026, 2, 16))
        assert [(i.principal_paid, i.interest_paid, i.status) for i in loan.installments] == before
        assert loan.credit_balance == 0

    def test_unapplying_the_closing_payment_reopens_the_loan(self) -> None:
        loan = loan_of(term=1, method=RepaymentMethod.BULLET)
        inst = loan.installments[0]
        posting = loan.repay(inst.principal + inst.interest, DISBURSED)
        assert loan.status == "closed"
        loan.unapply(posting.record, DISBURSED)
        assert loan.status == "active" and loan.closed_on is None
        assert loan.outstanding_principal == D("10000") and loan.interest_receivable == 0

    def test_a_replay_allocates_on_its_own_value_date(self) -> None:
        loan = loan_of()
        posting = loan.replay(D("888.49"), date(2026, 3, 1), dues_on=date(2026, 1, 20), kind="repayment.replay")
        assert posting.entry.kind == "repayment.replay"
        assert all(not p.installment > 1 for p in posting.allocation.parts)


class TestCreditBalance:
    def test_a_credit_balance_settles_the_next_installment(self) -> None:
        loan = loan_of()
        loan.repay(D("1000"), DISBURSED)  # 111.51 held as credit
        posting = loan.apply_credit_balance(date(2026, 2, 16))
        assert posting.amount == D("111.51") and posting.credit == 0
        assert loan.credit_balance == 0
        assert loan.installments[1].interest_paid == D("92.12")
        assert loan.installments[1].principal_paid == D("19.39")
        assert amounts(posting.entry)[Acct.BORROWER_CREDIT] == D("111.51")
        assert posting.entry.kind == "credit.applied"
        with pytest.raises(Conflict, match="no credit balance"):
            loan.apply_credit_balance(date(2026, 2, 16))

    def test_only_what_is_due_is_taken_from_the_credit_balance(self) -> None:
        loan = loan_of()
        loan.repay(D("1000"), DISBURSED)
        loan.credit_balance = D("5000")  # more than is due now
        posting = loan.apply_credit_balance(date(2026, 2, 16))
        assert posting.amount == D("888.49") - D("111.51") + D("111.51")
        assert loan.credit_balance == D("5000") - posting.amount

    def test_nothing_due_is_a_conflict(self) -> None:
        loan = loan_of(term=1, method=RepaymentMethod.BULLET)
        loan.credit_balance = D("10")
        loan.installments[0].principal_paid = loan.installments[0].principal
        loan.installments[0].interest_paid = loan.installments[0].interest
        with pytest.raises(Conflict, match="nothing is due"):
            loan.apply_credit_balance(DISBURSED)


class TestEarlyRepayment:
    def test_full_early_repayment_charges_interest_to_date_only(self) -> None:
        loan = loan_of()
        posting = loan.pay_off(date(2026, 1, 25))  # 10 of 31 days into the first period
        assert posting.amount == D("10000") + D("32.26")
        assert loan.status == "closed"
        assert amounts(posting.entry)[Acct.INTEREST_INCOME] == D("-32.26")
        assert posting.record["recognised_now"] == "32.26" and len(posting.record["rescheduled"]) == 12
        assert posting.entry.kind == "repayment.early_full"
        assert [h.kind for h in loan.history] == ["LoanRepaid", "EarlyRepayment"]

    @pytest.mark.parametrize("mode", list(PrepaymentMode))
    def test_partial_early_repayment_on_a_due_date_reamortises(self, mode: PrepaymentMode) -> None:
        loan = loan_of()
        posting = loan.prepay(D("888.49") + D("3000"), date(2026, 2, 15), mode)
        assert loan.outstanding_principal == D("10000") - D("788.49") - D("3000")
        future = [i for i in loan.installments if i.number > 1]
        assert sum(i.principal for i in future) == loan.outstanding_principal
        assert all(i.id is None for i in future)  # a new schedule, stored on save
        assert loan.maturity_date == future[-1].due_date
        if mode == PrepaymentMode.REDUCE_TERM:
            assert len(future) < 11
        else:
            assert len(future) == 11 and future[0].principal + future[0].interest < D("888.49")
        assert amounts(posting.entry)[Acct.LOAN_PRINCIPAL] == -(D("788.49") + D("3000"))
        assert posting.record["prepaid_principal"] == "3000.00" and len(posting.record["replaced_schedule"]) == 11

    @pytest.mark.parametrize("mode", list(PrepaymentMode))
    def test_partial_early_repayment_between_due_dates_reamortises_after_the_current_period(
        self, mode: PrepaymentMode
    ) -> None:
        loan = loan_of()
        posting = loan.prepay(D("3000"), date(2026, 2, 3), mode)
        first, later = loan.installments[0], loan.installments[1:]
        assert (first.due_date, first.principal, first.interest) == (date(2026, 2, 15), D("788.49"), D("100.00"))
        assert sum(i.principal for i in later) == D("10000") - D("788.49") - D("3000")
        assert later[0].period_start == date(2026, 2, 15)
        # 3,000 no longer earns 1 % a month for 12 of the first period's 31 days: 11.61 off the next interest
        assert later[0].interest == round_half_up((D("10000") - D("788.49") - D("3000")) * D("0.01")) - D("11.61")
        if mode == PrepaymentMode.REDUCE_TERM:  # the same installment, fewer of them
            assert len(later) < 11 and later[1].principal + later[1].interest == D("888.49")
        else:  # as many, each lower
            assert len(later) == 11 and later[1].principal + later[1].interest < D("888.49")
        assert posting.record["interest_saved"] == "11.61"
        assert amounts(posting.entry)[Acct.LOAN_PRINCIPAL] == -D("3000")

    def test_partial_early_repayment_must_exceed_what_is_due_and_not_cover_the_loan(self) -> None:
        with pytest.raises(ValidationError, match="exceed"):
            loan_of().prepay(D("800"), date(2026, 2, 15), PrepaymentMode.REDUCE_TERM)
        with pytest.raises(ValidationError, match="whole loan"):
            loan_of().prepay(D("20000"), date(2026, 2, 15), PrepaymentMode.REDUCE_TERM)
