"""冲正 of early repayments: a full or partial early repayment is reversed like any payment, the loan and its
schedule ending exactly as if it had never been posted (against a twin bank that never posted it)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from tests.unit.servicing.fakes import FakeUnitOfWork, make_loan, staff

from microlend.core.errors import Conflict
from microlend.servicing import service
from microlend.servicing.ledger import Acct
from microlend.servicing.schedules import PrepaymentMode

D = Decimal
DISBURSED = date(2026, 1, 15)
WHO = staff()


def bank() -> FakeUnitOfWork:
    fake = FakeUnitOfWork(DISBURSED)
    fake.loans.add(make_loan("10000", "0.12", 12, DISBURSED))
    return fake


def on(uow: FakeUnitOfWork, day: date) -> FakeUnitOfWork:
    uow.ledger.state.business_date = day
    return uow


def state(uow: FakeUnitOfWork) -> tuple[object, ...]:
    view = service.get_loan(uow, WHO, 1)
    schedule = [
        (
            i.number,
            i.period_start,
            i.due_date,
            i.principal,
            i.interest,
            i.principal_paid,
            i.interest_paid,
            i.interest_accrued,
            i.status,
        )
        for i in view.installments
    ]
    books = {a.value: uow.ledger.balance(a) for a in Acct}
    return view.status, view.maturity_date, view.credit_balance, view.penalty_due, schedule, books


class TestEarlyRepaymentsAreReversible:
    def test_a_full_early_repayment_reversed_reopens_the_loan_on_its_schedule(self) -> None:
        uow, twin = bank(), bank()
        for b in (uow, twin):
            service.post_repayment(on(b, date(2026, 2, 15)), WHO, 1, D("888.49"))
        early = service.repay_early(on(uow, date(2026, 2, 20)), WHO, 1)
        assert service.get_loan(uow, WHO, 1).status == "closed"
        on(twin, date(2026, 2, 20))
        reversed_ = service.reverse_repayment(uow, WHO, early.id, "paid from the wrong account")
        assert reversed_.status == "reversed"
        assert state(uow) == state(twin)

    @pytest.mark.parametrize("mode", list(PrepaymentMode))
    def test_a_partial_early_repayment_reversed_brings_back_the_schedule_it_replaced(
        self, mode: PrepaymentMode
    ) -> None:
        uow, twin = bank(), bank()
        early = service.repay_early(on(uow, date(2026, 2, 15)), WHO, 1, amount=D("888.49") + D("3000"), mode=mode)
        assert len(service.get_loan(uow, WHO, 1).installments) <= 12
        service.reverse_repayment(uow, WHO, early.id, "cheque bounced")
        on(twin, date(2026, 2, 15))
        assert state(uow) == state(twin)
        # and the loan takes its ordinary repayment again
        service.post_repayment(uow, WHO, 1, D("888.49"))
        assert service.get_loan(uow, WHO, 1).installments[0].status == "paid"

    def test_a_payment_before_a_standing_early_repayment_still_cannot_be_reversed(self) -> None:
        uow = bank()
        rep = service.post_repayment(uow, WHO, 1, D("100"))
        service.repay_early(uow, WHO, 1)
        with pytest.raises(Conflict, match="adjusting payment"):
            service.reverse_repayment(uow, WHO, rep.id, "error")
