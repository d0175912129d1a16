"""An Idempotency-Key belongs to the user who sent it: another user of the same bank sending the same key with
the same request is a request of their own (it is executed, not answered with the first user's result), and
each user still gets their own answer replayed."""

from __future__ import annotations

from sqlalchemy import func, select
from tests.conftest import Api
from tests.integration.test_credit_integrity_api import loan as booked_loan

from microlend.servicing.tables import RepaymentRow

LOAN = {"product_code": "EI-STD", "principal": "10000", "term_months": 12, "annual_rate": "0.12"}


def repayments(api: Api, loan_id: int) -> int:
    with api.kit.uow_factory() as u:
        return int(u.session.execute(select(func.count()).select_from(RepaymentRow)
                                     .where(RepaymentRow.loan_id == loan_id)).scalar_one())


def test_two_users_of_a_bank_with_the_same_key_each_get_their_own_answer(api: Api) -> None:
    alice, bob = api.token("admin"), api.token("admin")
    loan = {"id": booked_loan(api)}
    path = f"/api/v1/loans/{loan['id']}/repayments"
    a = api.client.post(path, json={"amount": "100.00"}, headers={**alice, "Idempotency-Key": "shared"})
    b = api.client.post(path, json={"amount": "100.00"}, headers={**bob, "Idempotency-Key": "shared"})
    assert a.status_code == b.status_code == 201, (a.text, b.text)
    assert a.json()["id"] != b.json()["id"]  # bob's request ran: he did not get alice's repayment back
    assert repayments(api, loan["id"]) == 2
    again = api.client.post(path, json={"amount": "100.00"}, headers={**bob, "Idempotency-Key": "shared"})
    assert again.json() == b.json()  # each user's own answer is still replayed
    assert repayments(api, loan["id"]) == 2


def test_a_booking_key_of_one_user_does_not_replay_for_another(api: Api) -> None:
    alice, bob = api.token("operations"), api.token("operations")
    a = api.client.post("/api/v1/loans", json=LOAN, headers={**alice, "Idempotency-Key": "loan-1"})
    b = api.client.post("/api/v1/loans", json=LOAN, headers={**bob, "Idempotency-Key": "loan-1"})
    assert a.status_code == b.status_code == 202, (a.text, b.text)
    assert a.json()["id"] != b.json()["id"]


def test_a_key_longer_than_the_limit_is_refused(api: Api) -> None:
    staff = api.token("operations")
    r = api.client.post("/api/v1/loans", json=LOAN, headers={**staff, "Idempotency-Key": "k" * 201})
    assert r.status_code == 422 and r.json()["field"] == "Idempotency-Key"
