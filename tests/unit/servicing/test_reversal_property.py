"""Property, on the fake unit of work: reversing a repayment (then replaying the later ones) leaves the loan
and the books exactly as if that repayment had never been posted; every entry balances."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.servicing.fakes import FakeUnitOfWork, make_loan, staff

from microlend.servicing import service
from microlend.servicing.ledger import Acct

payments = st.lists(
    # at most 12,000 in all: never above what the loan owes (a larger repayment is refused)
    st.tuples(st.decimals(Decimal("1"), Decimal("2000"), places=2), st.integers(0, 40)), min_size=2, max_size=6
)
START = date(2026, 1, 15)


def _run(paid: list[tuple[Decimal, int]], skip: int | None, reverse: int | None) -> tuple[object, ...]:
    uow = FakeUnitOfWork(START)
    uow.loans.add(make_loan("12000.00", "0.12", 12, START))
    who = staff()
    ids = []
    day = START
    for k, (amount, days_later) in enumerate(paid):
        day += timedelta(days=days_later)
        uow.ledger.state.business_date = day
        if k != skip:
            ids.append(service.post_repayment(uow, who, 1, amount).id)
    if reverse is not None:
        service.reverse_repayment(uow, who, ids[reverse], "returned")
    assert all(e.total_debit == e.total_credit for e in uow.ledger.entries())
    view = service.get_loan(uow, who, 1)
    return (
        [(i.principal_paid, i.interest_paid, i.fee_paid, i.status) for i in view.installments],
        view.credit_balance,
        view.status,
        {a.value: uow.ledger.balance(a) for a in Acct},
    )


@settings(max_examples=60, deadline=None)
@given(paid=payments, data=st.data())
def test_reversal_then_replay_equals_never_having_posted(paid: list[tuple[Decimal, int]], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(paid) - 1))
    assert _run(paid, None, index) == _run(paid, index, None)
