"""Upfront fees by the effective-interest method (实际利率法): the maths against independent computations, and the
Loan aggregate deferring the fee at payout, releasing it on payoff, re-spreading it on a partial prepayment and
netting it on write-off — every posting balanced."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microlend.core.errors import ValidationError
from microlend.core.money import round_half_up
from microlend.servicing.domain import Loan, ProductTerms
from microlend.servicing.fees import fee_amortisation, periodic_effective_rate, present_value
from microlend.servicing.ledger import Acct, JournalEntry, balances
from microlend.servicing.products import STANDARD_CATALOGUE
from microlend.servicing.restructuring import RestructureKind, RestructureTerms, restructure_loan
from microlend.servicing.schedules import FeeMode, PrepaymentMode, RepaymentMethod, build_schedule
from microlend.servicing.writeoff import write_off_loan

D = Decimal
START = date(2026, 1, 15)


def newton_rate(net: Decimal, flows: list[Decimal]) -> Decimal:
    """An independent root: Newton's method on f(i) = Σ flows/(1+i)^k − net from the contract's own guess."""
    with localcontext() as ctx:
        ctx.prec = 50
        i = D("0.01")
        for _ in range(60):
            f = sum((c / (1 + i) ** (k + 1) for k, c in enumerate(flows)), D(0)) - net
            df = sum((-(k + 1) * c / (1 + i) ** (k + 2) for k, c in enumerate(flows)), D(0))
            i -= f / df
        return i


def fee_loan(principal: str = "10000", term: int = 12, fee_rate: str = "0.02",
             method: RepaymentMethod = RepaymentMethod.EQUAL_INSTALLMENT) -> Loan:
    product = replace(next(p for p in STANDARD_CATALOGUE if p.method == method), upfront_fee_rate=D(fee_rate),
                      fee_mode=FeeMode.DEDUCT)
    fee = product.upfront_fee(D(principal))
    schedule = build_schedule(method, D(principal), D("0.12"), term, START, upfront_fee=fee)
    loan = Loan.disburse(ProductTerms(1, 1, True, product), schedule)
    loan.stored_as(7)
    return loan


def amortise_to(loan: Loan, on: date) -> Decimal:
    """What close of business recognises by the end of ``on``: each period's share pro rata to its days."""
    from microlend.servicing.schedules import accrued_interest

    total = D(0)
    for inst in loan.installments:
        if inst.period_start <= on:
            to_date = accrued_interest(inst.fee_amortisation, inst.period_start, inst.due_date, on)
            total += to_date - inst.fee_amortised
            inst.fee_amortised = to_date
    return total


class TestEffectiveRate:
    def test_one_period_is_the_return_on_the_net_amount(self) -> None:
        # 1000 out less a fee of 20, 1010 back: the period's rate is 1010 / 980 - 1
        rate = periodic_effective_rate(D("980"), [D("1010")])
        assert abs(rate - (D("1010") / D("980") - 1)) < D("1e-25")
        assert fee_amortisation(D("20"), [(D("1000"), D("10"))]) == [D("20")]

    def test_two_periods_by_the_quadratic_formula(self) -> None:
        # 505·x² + 510·x − 980 = 0 with x = 1/(1+i): the positive root, by hand
        with localcontext() as ctx:
            ctx.prec = 50
            x = (-510 + (D(510) ** 2 + 4 * 505 * 980).sqrt()) / (2 * 505)
            expected = 1 / x - 1
        rate = periodic_effective_rate(D("980"), [D("510"), D("505")])
        assert abs(rate - expected) < D("1e-30")
        first = round_half_up(D("980") * expected - D("10"))
        assert fee_amortisation(D("20"), [(D("500"), D("10")), (D("500"), D("5"))]) == [first, D("20") - first]

    def test_an_annuity_matches_newtons_method_and_the_first_period_by_hand(self) -> None:
        schedule = build_schedule(RepaymentMethod.EQUAL_INSTALLMENT, D("10000"), D("0.12"), 12, START)
        flows = [i.principal + i.interest for i in schedule.installments]
        rate = periodic_effective_rate(D("9800"), flows)
        assert abs(rate - newton_rate(D("9800"), flows)) < D("1e-25")
        assert abs(present_value(rate, flows) - D("9800")) < D("1e-20")
        shares = fee_amortisation(D("200"), [(i.principal, i.interest) for i in schedule.installments])
        assert shares[0] == round_half_up(D("9800") * rate - D("100.00")) == D("29.48")
        assert shares == sorted(shares, reverse=True)  # front-loaded: the carrying amount falls
        assert sum(shares) == D("200")

    def test_no_fee_amortises_nothing_and_bad_flows_are_refused(self) -> None:
        assert fee_amortisation(D("0"), [(D("100"), D("1"))]) == [D("0")]
        assert fee_amortisation(D("5"), []) == []
        with pytest.raises(ValidationError):
            periodic_effective_rate(D("0"), [D("1")])
        with pytest.raises(ValidationError):
            periodic_effective_rate(D("100"), [D("50")])

    @settings(max_examples=60, deadline=None)
    @given(
        principal=st.integers(1000, 500_000),
        term=st.integers(1, 36),
        rate=st.decimals(D("0"), D("0.24"), places=4),
        fee_permille=st.integers(0, 190),
        method=st.sampled_from([m for m in RepaymentMethod if m != RepaymentMethod.REVOLVING]),
    )
    def test_shares_add_up_to_the_fee_and_are_never_negative(
        self, principal: int, term: int, rate: Decimal, fee_permille: int, method: RepaymentMethod
    ) -> None:
        schedule = build_schedule(method, D(principal), rate, term, START)
        fee = round_half_up(D(principal) * fee_permille / 1000)
        shares = fee_amortisation(fee, [(i.principal, i.interest) for i in schedule.installments])
        assert sum(shares) == fee
        assert all(s >= 0 and round_half_up(s) == s for s in shares)


class TestTheLoanDefersItsFee:
    def test_the_fee_is_deferred_at_payout_not_income(self) -> None:
        loan = fee_loan()
        entry = loan.disbursement_entry()
        totals = balances([entry])
        assert totals[Acct.CASH] == D("-9800.00") and totals[Acct.DEFERRED_FEE] == D("-200.00")
        assert Acct.FEE_INCOME not in totals
        assert loan.deferred_fee == D("200.00")

    def test_daily_amortisation_reaches_zero_exactly_at_maturity(self) -> None:
        loan = fee_loan()
        recognised = D(0)
        day = START
        while day < loan.maturity_date:
            step = amortise_to(loan, day)
            assert step >= 0
            recognised += step
            day += timedelta(days=1)
        assert recognised == D("200.00") and loan.deferred_fee == 0

    def test_a_payoff_recognises_what_is_left(self) -> None:
        loan = fee_loan()
        amortised = amortise_to(loan, date(2026, 3, 1))
        posting = loan.pay_off(date(2026, 3, 2))
        released = D("200.00") - amortised
        assert balances([posting.entry])[Acct.DEFERRED_FEE] == released > 0
        assert loan.status == "closed" and loan.deferred_fee == 0
        # and a reversal of the payoff brings the deferred fee back
        reversal = posting.entry.reversal()
        loan.unapply(posting.record, date(2026, 3, 2))
        assert loan.deferred_fee == released
        assert balances([posting.entry, reversal]).get(Acct.DEFERRED_FEE, D(0)) == 0

    def test_a_partial_prepayment_re_spreads_the_rest_over_the_new_schedule(self) -> None:
        loan = fee_loan()
        amortise_to(loan, date(2026, 2, 15))
        before = loan.deferred_fee
        due = loan.installments[1]
        loan.prepay(due.principal + due.interest + D("3000"), due.due_date, PrepaymentMode.REDUCE_TERM)
        assert loan.deferred_fee == before  # nothing recognised or lost, only re-spread
        later = [i for i in loan.installments if i.number > due.number]
        assert all(i.fee_amortisation >= 0 for i in later)
        assert sum(i.fee_amortisation for i in loan.installments) == D("200.00")

    def test_a_restructure_moves_the_deferred_fee_to_the_new_schedule(self) -> None:
        loan = fee_loan()
        amortise_to(loan, date(2026, 3, 1))
        before = loan.deferred_fee
        restructure_loan(loan, RestructureTerms(RestructureKind.EXTENSION, 18), date(2026, 3, 2))
        assert loan.deferred_fee == before > 0  # nothing recognised or lost by the new schedule
        assert sum(i.fee_amortisation for i in loan.installments) == D("200.00")
        recognised, day = D(0), date(2026, 3, 2)
        while day < loan.maturity_date:
            recognised += amortise_to(loan, day)
            day += timedelta(days=1)
        assert recognised == before and loan.deferred_fee == 0  # the new schedule ends with nothing deferred

    def test_a_write_off_nets_the_deferred_fee_against_the_loss(self) -> None:
        loan = fee_loan()
        amortise_to(loan, date(2026, 2, 10))
        deferred = loan.deferred_fee
        done = write_off_loan(loan, date(2026, 2, 11), "fraud", D("0"), reverse_accrued=True)
        assert done.entry is not None and done.deferred_fee == deferred > 0
        totals = balances([done.entry])
        assert totals[Acct.DEFERRED_FEE] == deferred
        assert totals[Acct.CREDIT_IMPAIRMENT_LOSS] == done.principal + done.interest + done.penalty - deferred
        assert loan.deferred_fee == 0

    @settings(max_examples=40, deadline=None)
    @given(
        principal=st.integers(5000, 200_000),
        term=st.integers(2, 24),
        fee_permille=st.integers(1, 150),
        payoff_day=st.integers(1, 700),
    )
    def test_the_ledger_balances_and_the_fee_is_recognised_exactly_once(
        self, principal: int, term: int, fee_permille: int, payoff_day: int
    ) -> None:
        loan = fee_loan(str(principal), term, str(D(fee_permille) / 1000))
        entries: list[JournalEntry] = [loan.disbursement_entry()]
        fee = loan.upfront_fee
        recognised = D(0)
        payoff = min(START + timedelta(days=payoff_day), loan.maturity_date - timedelta(days=1))
        day = START
        while day < payoff:
            step = amortise_to(loan, day)
            assert loan.deferred_fee >= 0
            recognised += step
            day += timedelta(days=1)
        for inst in loan.installments:  # what fell due before the payoff is paid on its date
            if inst.due_date < payoff:
                entries.append(loan.repay(inst.owed, inst.due_date).entry)
        if loan.status == "active":
            entries.append(loan.pay_off(payoff).entry)
        # close of business recognised ``recognised``; the payoff entry released the rest out of 1305
        released = sum((balances([e]).get(Acct.DEFERRED_FEE, D(0)) for e in entries[1:]), D(0))
        assert released >= 0 and recognised + released == fee
        assert loan.deferred_fee == 0
        assert all(e.total_debit == e.total_credit for e in entries)
