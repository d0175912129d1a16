"""Properties for money, on the fake unit of work: through any mix of repayments, partial prepayments on any
date (either mode), full payoffs and reversals of the latest payment (early ones included), every entry
balances and no cent is lost: the books hold, loan by loan, exactly what the loan's own balances say; and a
reversal puts the loan and its books back exactly where they stood before the payment."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st
from tests.unit.servicing.fakes import FakeUnitOfWork, make_loan, staff

from microlend.core.errors import Conflict, ValidationError
from microlend.servicing import service
from microlend.servicing.ledger import Acct

D = Decimal
ZERO = D(0)
START = date(2026, 1, 15)
WHO = staff()

operations = st.lists(
    st.one_of(
        st.tuples(st.just("pay"), st.decimals(D("0.01"), D("3000"), places=2), st.integers(0, 45)),
        st.tuples(st.just("prepay"), st.decimals(D("0.01"), D("6000"), places=2), st.integers(0, 45)),
        st.tuples(st.just("payoff"), st.just(ZERO), st.integers(0, 45)),
        st.tuples(st.just("reverse"), st.just(ZERO), st.integers(0, 10)),
    ),
    min_size=1,
    max_size=8,
)


def books_match_the_loan(uow: FakeUnitOfWork) -> None:
    assert all(e.total_debit == e.total_credit for e in uow.ledger.entries())
    view = service.get_loan(uow, WHO, 1)
    paid = sum((i.principal_paid for i in view.installments), ZERO)
    principal_down = D("12000") - view.outstanding_principal  # the fake books hold no disbursement entry
    interest_paid = sum((i.interest_paid for i in view.installments), ZERO)
    fee_paid = sum((i.fee_paid for i in view.installments), ZERO)
    receivable = sum((i.interest_accrued - i.interest_paid for i in view.installments), ZERO)
    penalty_paid = uow.loans.get(WHO.tenant_id, 1).penalty_paid
    ledger = uow.ledger
    assert ledger.balance(Acct.LOAN_PRINCIPAL, 1) == -principal_down
    assert ledger.balance(Acct.INTEREST_RECEIVABLE, 1) == receivable
    assert ledger.balance(Acct.BORROWER_CREDIT, 1) == -view.credit_balance
    assert principal_down >= paid  # a prepayment repays principal the new schedule no longer shows
    # no cent lost: what came in is what the loan says went to principal, interest, fees, penalty and credit
    assert ledger.balance(Acct.CASH, 1) == (
        principal_down + interest_paid + fee_paid + penalty_paid + view.credit_balance
    )


def snapshot(uow: FakeUnitOfWork) -> tuple[object, ...]:
    view = service.get_loan(uow, WHO, 1)
    return (
        view.status,
        view.maturity_date,
        view.credit_balance,
        [
            (
                i.number,
                i.due_date,
                i.principal,
                i.interest,
                i.principal_paid,
                i.interest_paid,
                i.interest_accrued,
                i.status,
            )
            for i in view.installments
        ],
        {a.value: uow.ledger.balance(a, 1) for a in Acct},
    )


@settings(max_examples=60, deadline=None)
@given(ops=operations)
@example(ops=[("pay", D("1066.19"), 31), ("prepay", D("2500"), 10), ("reverse", ZERO, 0)])
@example(ops=[("prepay", D("3000"), 19), ("payoff", ZERO, 5), ("reverse", ZERO, 0), ("reverse", ZERO, 0)])
def test_no_cent_is_lost_through_payments_prepayments_and_reversals(ops: list[tuple[str, Decimal, int]]) -> None:
    uow = FakeUnitOfWork(START)
    uow.loans.add(make_loan("12000.00", "0.12", 12, START))
    posted: list[tuple[int, tuple[object, ...]]] = []
    day = START
    for kind, amount, days in ops:
        if kind != "reverse":
            day += timedelta(days=days)
            uow.ledger.state.business_date = day
        before = snapshot(uow)
        try:
            if kind == "pay":
                posted.append((service.post_repayment(uow, WHO, 1, amount).id, before))
            elif kind == "prepay":
                mode = "reduce-term" if days % 2 else "reduce-installment"
                posted.append((service.repay_early(uow, WHO, 1, amount=amount, mode=mode).id, before))
            elif kind == "payoff":
                posted.append((service.repay_early(uow, WHO, 1).id, before))
            elif posted:
                last, stood = posted.pop()
                service.reverse_repayment(uow, WHO, last, "returned")
                assert snapshot(uow) == stood
        except (ValidationError, Conflict) as refused:
            assert kind != "reverse", refused  # the latest payment, whatever its kind, can be reversed
            assert snapshot(uow) == before  # refused: nothing changed
        books_match_the_loan(uow)
