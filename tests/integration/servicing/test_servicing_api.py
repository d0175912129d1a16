"""The servicing HTTP API: products, disbursement and repayments with Idempotency-Key, schedules, ledger
reports, and the permission battery (401 without a token, 403 for a wrong role, 404 across tenants)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.integration.servicing.kit import Bank

from microlend.api import errors
from microlend.api.routers import write_offs
from microlend.api.routers.servicing import router
from microlend.core import tenancy
from microlend.core.db import make_session_factory
from microlend.core.identity import Role
from microlend.core.settings import Settings
from microlend.core.tables import AuditRow
from microlend.servicing.products import STANDARD_CATALOGUE

SECRET = "servicing-api-test-secret-0123456789abcdef"


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
    app.include_router(write_offs.router)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def token_for(bank: Bank) -> Callable[..., dict[str, str]]:
    settings = Settings(mode="test", secret_key=SECRET)
    counter = iter(range(10_000))

    def make(*roles: Role, tenant_id: int | None = None) -> dict[str, str]:
        with bank.uow() as u:
            row = tenancy.add_user(
                u.session,
                tenant_id or bank.tenant_id,
                f"api-user-{next(counter)}",
                "correct-horse-1",
                [r.value for r in roles],
            )
            who = tenancy.principal_for(row)
            u.commit()
        return {"Authorization": f"Bearer {tenancy.issue_token(who, settings)}"}

    return make


def audit_rows(bank: Bank) -> int:
    with bank.uow() as u:
        return int(
            u.session.execute(
                select(func.count()).select_from(AuditRow).where(AuditRow.tenant_id == bank.tenant_id)
            ).scalar_one()
        )


LOAN = {"product_code": "EI-STD", "principal": "10000", "term_months": 12, "annual_rate": "0.12"}
LINE = {"product_code": "RV-STD", "limit": "50000"}


def booked(client: TestClient, token_for: Callable[..., dict[str, str]], body: dict[str, object],
           path: str = "/api/v1/loans") -> dict[str, object]:
    """Operations books a loan (or a line), a second person approves it: the loan (or ``{"id": line id}``)."""
    r = client.post(path, json=body, headers=token_for(Role.OPERATIONS))
    assert r.status_code == 202, r.text
    approved = client.post(f"/api/v1/bookings/{r.json()['id']}/approval", headers=token_for(Role.APPROVER))
    assert approved.status_code == 201, approved.text
    if approved.json()["kind"] == "credit_line":
        return {"id": approved.json()["credit_line_id"]}
    loan = client.get(f"/api/v1/loans/{approved.json()['loan_id']}", headers=token_for(Role.AUDITOR))
    assert loan.status_code == 200, loan.text
    return dict(loan.json())


class TestProductsAndLoans:
    def test_products_list_the_standard_catalogue(
        self, client: TestClient, token_for: Callable[..., dict[str, str]]
    ) -> None:
        r = client.get("/api/v1/products", headers=token_for(Role.CREDIT_OFFICER))
        assert r.status_code == 200
        first = r.json()[0]
        assert {
            "code",
            "name",
            "method",
            "min_amount",
            "max_amount",
            "min_term_months",
            "max_term_months",
            "annual_rate",
        } <= set(first)
        assert [p["code"] for p in r.json()] == [p.code for p in STANDARD_CATALOGUE]
        assert {"TAX_LOAN", "FLOW_LOAN", "INVOICE_LINE"} <= {p["code"] for p in r.json()}

    def test_disburse_then_read_the_schedule(
        self, client: TestClient, token_for: Callable[..., dict[str, str]], bank: Bank
    ) -> None:
        before = audit_rows(bank)
        loan = booked(client, token_for, LOAN)
        assert audit_rows(bank) == before + 3  # booked, approved, disbursed
        s = client.get(f"/api/v1/loans/{loan['id']}/schedule", headers=token_for(Role.AUDITOR))
        assert s.status_code == 200
        body = s.json()
        assert body["installments"][0]["payment"] == "888.49" and body["total_interest"] == "661.86"

    def test_amounts_as_json_numbers_are_refused(
        self, client: TestClient, token_for: Callable[..., dict[str, str]]
    ) -> None:
        r = client.post("/api/v1/loans", json={**LOAN, "principal": 10000.5}, headers=token_for(Role.OPERATIONS))
        assert r.status_code == 422


class TestIdempotentRepayments:
    def test_same_key_same_body_replays_and_posts_once(
        self, client: TestClient, token_for: Callable[..., dict[str, str]], bank: Bank
    ) -> None:
        staff = token_for(Role.ADMIN)
        loan = booked(client, token_for, LOAN)
        headers = {**staff, "Idempotency-Key": "pay-1"}
        a = client.post(f"/api/v1/loans/{loan['id']}/repayments", json={"amount": "888.49"}, headers=headers)
        b = client.post(f"/api/v1/loans/{loan['id']}/repayments", json={"amount": "888.49"}, headers=headers)
        assert a.status_code == b.status_code == 201
        assert a.json() == b.json()
        c = client.post(f"/api/v1/loans/{loan['id']}/repayments", json={"amount": "1.00"}, headers=headers)
        assert c.status_code == 422
        tb = client.get("/api/v1/ledger/trial-balance", headers=staff).json()
        cash = next(x for x in tb["accounts"] if x["code"] == "1001")
        assert cash["debit"] == "888.49" and tb["balanced"]

    def test_a_failed_request_does_not_keep_the_key(
        self, client: TestClient, token_for: Callable[..., dict[str, str]]
    ) -> None:
        staff = token_for(Role.ADMIN)
        loan = booked(client, token_for, LOAN)
        headers = {**staff, "Idempotency-Key": "pay-2"}
        bad = client.post(f"/api/v1/loans/{loan['id']}/repayments", json={"amount": "-5"}, headers=headers)
        assert bad.status_code == 422
        good = client.post(f"/api/v1/loans/{loan['id']}/repayments", json={"amount": "5"}, headers=headers)
        assert good.status_code == 201


class TestPermissionBattery:
    """The 401/403/404 battery of every servicing route is in tests/integration/test_route_battery.py."""

    def test_another_banks_real_repayment_cannot_be_reversed(
        self,
        client: TestClient,
        token_for: Callable[..., dict[str, str]],
        bank: Bank,
        other_bank: Callable[[], Bank],
    ) -> None:
        staff = token_for(Role.ADMIN)
        loan = booked(client, token_for, LOAN)
        repayment = client.post(f"/api/v1/loans/{loan['id']}/repayments", json={"amount": "100"}, headers=staff)
        assert repayment.status_code == 201, repayment.text
        stranger = other_bank()
        before = audit_rows(bank)
        history = client.get(f"/api/v1/loans/{loan['id']}/transactions", headers=staff).json()
        r = client.post(
            f"/api/v1/repayments/{repayment.json()['id']}/reversal",
            json={"reason": "returned"},
            headers=token_for(Role.ADMIN, tenant_id=stranger.tenant_id),
        )
        assert r.status_code == 404
        assert audit_rows(bank) == before
        assert client.get(f"/api/v1/loans/{loan['id']}/transactions", headers=staff).json() == history
        assert history, "the repayment is in the loan's history"

    def test_every_write_leaves_one_audit_row(
        self, client: TestClient, token_for: Callable[..., dict[str, str]], bank: Bank
    ) -> None:
        staff = token_for(Role.ADMIN)
        loan = booked(client, token_for, LOAN)
        posted: dict[str, int] = {}
        writes = [
            ("/api/v1/loans/{id}/repayments", {"amount": "100"}),
            ("/api/v1/repayments/{repayment}/reversal", {"reason": "returned"}),  # the repayment just posted
            ("/api/v1/loans/{id}/write-off", {"reason": "fraud", "reason_code": "fraud", "documents": ["report 7"]}),
        ]
        for url, body in writes:
            before = audit_rows(bank)
            r = client.post(url.format(id=loan["id"], **posted), json=body, headers=staff)
            assert r.status_code in (200, 201, 202), r.text
            assert audit_rows(bank) == before + 1, url
            posted.setdefault("repayment", r.json()["id"])


class TestCloseOfBusinessApi:
    def test_runs_through_a_date(self, client: TestClient, token_for: Callable[..., dict[str, str]]) -> None:
        staff = token_for(Role.ADMIN)
        booked(client, token_for, LOAN)
        r = client.post("/api/v1/cob/runs", json={"date": "2026-01-20"}, headers=staff)
        assert r.status_code == 201
        assert [x["business_date"] for x in r.json()["runs"]][-1] == date(2026, 1, 20).isoformat()


class TestCreditLinesAndReversalApi:
    def test_drawdown_is_idempotent_and_reversal_needs_the_permission(
        self,
        client: TestClient,
        token_for: Callable[..., dict[str, str]],
        bank: Bank,
        other_bank: Callable[[], Bank],
    ) -> None:
        staff = token_for(Role.ADMIN)
        line = booked(client, token_for, LINE, "/api/v1/credit-lines")
        for role in (Role.MARKETER, Role.APPROVER, Role.ADMIN):
            assert client.post("/api/v1/credit-lines", json=LINE, headers=token_for(role)).status_code == 403
        url = f"/api/v1/credit-lines/{line['id']}/drawdowns"
        headers = {**staff, "Idempotency-Key": "draw-1"}
        a = client.post(url, json={"amount": "20000"}, headers=headers)
        b = client.post(url, json={"amount": "20000"}, headers=headers)
        assert a.status_code == b.status_code == 201 and a.json()["id"] == b.json()["id"]
        too_much = client.post(url, json={"amount": "40000"}, headers=staff)
        assert too_much.status_code == 422
        rep = client.post(f"/api/v1/loans/{a.json()['id']}/repayments", json={"amount": "100"}, headers=staff)
        rid = rep.json()["id"]
        assert client.post(f"/api/v1/repayments/{rid}/reversal", json={"reason": "x"}).status_code == 401
        assert (
            client.post(
                f"/api/v1/repayments/{rid}/reversal", json={"reason": "x"}, headers=token_for(Role.COLLECTOR)
            ).status_code
            == 403
        )
        stranger = other_bank()
        assert (
            client.post(
                f"/api/v1/repayments/{rid}/reversal",
                json={"reason": "x"},
                headers=token_for(Role.ADMIN, tenant_id=stranger.tenant_id),
            ).status_code
            == 404
        )
        assert client.post(f"/api/v1/repayments/{rid}/reversal", json={"reason": "x"}, headers=staff).status_code == 201
