"""固定还款日 a loan booked on a fixed repayment day, on SQLite and PostgreSQL: the schedule and the API show the
broken first period, close of business accrues its actual-day interest, and the loan is repaid through close of
business to the cent, the books balanced and reconciled."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from decimal import Decimal

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.integration.servicing.kit import Bank
from tests.integration.servicing.test_servicing_api import SECRET, booked
from tests.integration.servicing.test_servicing_api import token_for as token_for

from microlend.api import errors
from microlend.api.routers.servicing import router
from microlend.core.db import make_session_factory
from microlend.core.errors import ValidationError
from microlend.core.identity import Principal, Role
from microlend.core.settings import Settings
from microlend.servicing import cob, service
from microlend.servicing.ledger import Acct
from microlend.servicing.repository import loans
from microlend.servicing.service import Disbursement

D = Decimal
ZERO = D(0)


@pytest.fixture
def client(bank: Bank) -> Iterator[TestClient]:
    settings = Settings(
        mode="test", database_url=bank.engine.url.render_as_string(hide_password=False), secret_key=SECRET
    )
    app = FastAPI()
    app.state.settings = settings
    app.state.session_factory = make_session_factory(bank.engine)
    errors.install(app)
    app.include_router(router)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def operations(bank: Bank) -> Principal:
    return Principal(user_id=71, tenant_id=bank.tenant_id, username="ops-desk", roles=frozenset({Role.OPERATIONS}))


def booked_on_day(bank: Bank, day: int, product: str = "EI-STD", term: int = 3) -> int:
    """Operations books 12,000 at 12 % on a repayment day; a second person approves (business date 15 Jan)."""
    asked = service.book_loan(bank.uow(), operations(bank), Disbursement(
        product, D("12000"), term, D("0.12"), repayment_day=day))
    assert asked.repayment_day == day
    done = service.approve_booking(bank.uow(), bank.principal(Role.APPROVER), asked.id)
    assert done.loan_id is not None
    return done.loan_id


def balances(bank: Bank) -> dict[str, Decimal]:
    tb = service.trial_balance(bank.uow(), bank.who)
    assert tb.balanced
    return {r.code: r.balance for r in tb.rows}


class TestBookedOnARepaymentDay:
    def test_the_schedule_has_the_broken_first_period_and_is_repaid_through_close_of_business(
        self, bank: Bank
    ) -> None:
        loan_id = booked_on_day(bank, 5)  # paid out 15 Jan, repaid on the 5th: first period 15 Jan - 5 Feb
        view = service.get_loan(bank.uow(), bank.who, loan_id)
        first, second, third = view.installments
        assert (first.period_start, first.due_date, first.days) == (date(2026, 1, 15), date(2026, 2, 5), 21)
        assert first.broken_period and not second.broken_period
        # 21 days: 12,000 × 0.12 / 360 × 21 = 84.00; the level payment 4,080.27 repays 3,960.27 as in a month
        assert (first.interest, first.principal) == (D("84.00"), D("3960.27"))
        assert second.due_date == date(2026, 3, 5) and third.due_date == date(2026, 4, 5)
        assert second.interest == D("80.40")  # 8,039.73 × 1 %
        assert view.maturity_date == date(2026, 4, 5)
        # the day before the first due date, close of business has accrued exactly the broken period's interest
        cob.run_close_of_business(bank.uow(), bank.who, through=date(2026, 2, 4))
        assert balances(bank)[Acct.INTEREST_RECEIVABLE] == D("84.00")
        paid = ZERO
        for due in (first.due_date, second.due_date, third.due_date):
            cob.run_close_of_business(bank.uow(), bank.who, through=due - timedelta(days=1))
            with bank.uow() as u:
                loan = loans(u).get(bank.tenant_id, loan_id)
                owed = sum((d.amount for d in loan.current_dues(due)), ZERO)
            service.post_repayment(bank.uow(), bank.who, loan_id, owed)
            paid += owed
            cob.run_close_of_business(bank.uow(), bank.who, through=due)
        end = service.get_loan(bank.uow(), bank.who, loan_id)
        assert end.status == "closed" and end.days_past_due == 0
        assert paid == D("12000") + sum((i.interest for i in view.installments), ZERO)
        books = balances(bank)
        assert books[Acct.LOAN_PRINCIPAL] == 0 and books[Acct.INTEREST_RECEIVABLE] == 0
        assert books[Acct.INTEREST_INCOME] == sum((i.interest for i in view.installments), ZERO)
        assert service.reconcile(bank.uow(), bank.who).ok

    def test_a_product_repayment_day_applies_unless_the_booking_names_another(self, bank: Bank) -> None:
        service.update_product(bank.uow(), bank.who, "EP-STD", {"repayment_day": 20})
        plain = service.disburse(bank.uow(), bank.who, Disbursement("EP-STD", D("12000"), 3, D("0.12")))
        assert [i.due_date.day for i in plain.installments] == [20, 20, 20]
        assert plain.installments[0].due_date == date(2026, 2, 20)  # 15 Jan → 20 Jan is too short: 36 days
        assert plain.installments[0].interest == D("144.00")  # 12,000 × 0.12 / 360 × 36
        own = service.disburse(bank.uow(), bank.who, Disbursement("EP-STD", D("12000"), 3, D("0.12"),
                                                                  repayment_day=1))
        assert own.installments[0].due_date == date(2026, 2, 1)

    def test_a_bullet_booking_or_a_day_past_28_is_refused_and_nothing_is_booked(self, bank: Bank) -> None:
        with pytest.raises(ValidationError, match="bullet"):
            service.book_loan(bank.uow(), operations(bank), Disbursement("BL-STD", D("12000"), 3, D("0.12"),
                                                                         repayment_day=10))
        with pytest.raises(ValidationError, match="repayment_day"):
            service.book_loan(bank.uow(), operations(bank), Disbursement("EI-STD", D("12000"), 3, D("0.12"),
                                                                         repayment_day=30))
        assert service.list_bookings(bank.uow(), bank.principal(Role.APPROVER)) == []


class TestTheApiShowsTheBrokenPeriod:
    def test_booking_with_a_repayment_day_and_the_schedule(
        self, client: TestClient, token_for: Callable[..., dict[str, str]]
    ) -> None:
        loan = booked(client, token_for, {"product_code": "EI-STD", "principal": "12000", "term_months": 3,
                                          "annual_rate": "0.12", "repayment_day": 5})
        r = client.get(f"/api/v1/loans/{loan['id']}/schedule", headers=token_for(Role.AUDITOR))
        assert r.status_code == 200, r.text
        rows = r.json()["installments"]
        assert rows[0]["due_date"] == "2026-02-05" and rows[0]["days"] == 21 and rows[0]["broken_period"] is True
        assert rows[0]["interest"] == "84.00" and rows[1]["broken_period"] is False
        bad = client.post("/api/v1/loans", json={"product_code": "EI-STD", "principal": "12000", "term_months": 3,
                                                 "repayment_day": 29}, headers=token_for(Role.OPERATIONS))
        assert bad.status_code == 422
