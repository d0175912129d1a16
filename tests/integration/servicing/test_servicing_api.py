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
from microlend.api.routers.servicing import router
from microlend.core import tenancy
from microlend.core.db import make_session_factory
from microlend.core.identity import Role
from microlend.core.settings import Settings
from microlend.core.tables import AuditRow

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
        assert len(r.json()) == 5

    def test_disburse_then_read_the_schedule(
        self, client: TestClient, token_for: Callable[..., dict[str, str]], bank: Bank
    ) -> None:
        before = audit_rows(bank)
        r = client.post("/api/v1/loans", json=LOAN, headers=token_for(Role.APPROVER))
        assert r.status_code == 201, r.text
        assert audit_rows(bank) == before + 1
        loan = r.json()
        s = client.get(f"/api/v1/loans/{loan['id']}/schedule", headers=token_for(Role.AUDITOR))
        assert s.status_code == 200
        body = s.json()
        assert body["installments"][0]["payment"] == "888.49" and body["total_interest"] == "661.86"

    def test_amounts_as_json_numbers_are_refused(
        self, client: TestClient, token_for: Callable[..., dict[str, str]]
    ) -> None:
        r = client.post("/api/v1/loans", json={**LOAN, "principal": 10000.5}, headers=token_for(Role.APPROVER))
        assert r.status_code == 422


class TestIdempotentRepayments:
    def test_same_key_same_body_replays_and_posts_once(
        self, client: TestClient, token_for: Callable[..., dict[str, str]], bank: Bank
    ) -> None:
        staff = token_for(Role.ADMIN)
        loan = client.post("/api/v1/loans", json=LOAN, headers=staff).json()
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
        loan = client.post("/api/v1/loans", json=LOAN, headers=staff).json()
        headers = {**staff, "Idempotency-Key": "pay-2"}
        bad = client.post(f"/api/v1/loans/{loan['id']}/repayments", json={"amount": "-5"}, headers=headers)
        assert bad.status_code == 422
        good = client.post(f"/api/v1/loans/{loan['id']}/repayments", json={"amount": "5"}, headers=headers)
        assert good.status_code == 201


ENDPOINTS: list[tuple[str, str, object, Role]] = [
    ("get", "/api/v1/loans/{id}", None, Role.MARKETER),
    ("get", "/api/v1/loans/{id}/schedule", None, Role.MARKETER),
    ("get", "/api/v1/loans/{id}/transactions", None, Role.MARKETER),
    ("post", "/api/v1/loans/{id}/repayments", {"amount": "10"}, Role.AUDITOR),
    ("post", "/api/v1/loans/{id}/early-repayments", {}, Role.AUDITOR),
    ("post", "/api/v1/loans/{id}/write-off", {"reason": "gone"}, Role.CREDIT_OFFICER),
    ("post", "/api/v1/loans/{id}/credit-applications", {}, Role.AUDITOR),
    ("post", "/api/v1/loans", LOAN, Role.CREDIT_OFFICER),
    ("get", "/api/v1/products", None, Role.MARKETER),
    (
        "post",
        "/api/v1/products",
        {
            "code": "NEW-1",
            "name": "n",
            "method": "bullet",
            "min_amount": "100",
            "max_amount": "1000",
            "min_term_months": 1,
            "max_term_months": 3,
            "annual_rate": "0.1",
        },
        Role.CREDIT_OFFICER,
    ),
    ("get", "/api/v1/ledger/trial-balance", None, Role.CREDIT_OFFICER),
    ("get", "/api/v1/ledger/reconciliation", None, Role.COLLECTOR),
    ("post", "/api/v1/cob/runs", {}, Role.CREDIT_OFFICER),
]


class TestPermissionBattery:
    @pytest.mark.parametrize(("method", "path", "body", "wrong_role"), ENDPOINTS)
    def test_no_token_401_wrong_role_403(
        self,
        client: TestClient,
        token_for: Callable[..., dict[str, str]],
        method: str,
        path: str,
        body: object,
        wrong_role: Role,
    ) -> None:
        loan = client.post("/api/v1/loans", json=LOAN, headers=token_for(Role.ADMIN)).json()
        url = path.format(id=loan["id"])
        kwargs = {"json": body} if body is not None else {}
        assert getattr(client, method)(url, **kwargs).status_code == 401
        assert getattr(client, method)(url, headers=token_for(wrong_role), **kwargs).status_code == 403

    @pytest.mark.parametrize(("method", "path", "body"), [(m, p, b) for m, p, b, _ in ENDPOINTS if "{id}" in p])
    def test_another_tenants_loan_is_404_and_nothing_changes(
        self,
        client: TestClient,
        token_for: Callable[..., dict[str, str]],
        bank: Bank,
        other_bank: Callable[[], Bank],
        method: str,
        path: str,
        body: object,
    ) -> None:
        loan = client.post("/api/v1/loans", json=LOAN, headers=token_for(Role.ADMIN)).json()
        stranger = other_bank()
        before = audit_rows(bank)
        kwargs = {"json": body} if body is not None else {}
        r = getattr(client, method)(
            path.format(id=loan["id"]), headers=token_for(Role.ADMIN, tenant_id=stranger.tenant_id), **kwargs
        )
        assert r.status_code == 404
        assert audit_rows(bank) == before
        mine = client.get(f"/api/v1/loans/{loan['id']}", headers=token_for(Role.ADMIN)).json()
        assert mine["outstanding_principal"] == "10000.00" and mine["status"] == "active"

    def test_every_write_leaves_one_audit_row(
        self, client: TestClient, token_for: Callable[..., dict[str, str]], bank: Bank
    ) -> None:
        staff = token_for(Role.ADMIN)
        loan = client.post("/api/v1/loans", json=LOAN, headers=staff).json()
        writes = [
            ("/api/v1/loans/{id}/repayments", {"amount": "100"}),
            ("/api/v1/repayments/1/reversal", {"reason": "returned"}),
            ("/api/v1/loans/{id}/write-off", {"reason": "fraud"}),
        ]
        for url, body in writes:
            before = audit_rows(bank)
            r = client.post(url.format(id=loan["id"]), json=body, headers=staff)
            assert r.status_code in (200, 201), r.text
            assert audit_rows(bank) == before + 1, url


class TestCloseOfBusinessApi:
    def test_runs_through_a_date(self, client: TestClient, token_for: Callable[..., dict[str, str]]) -> None:
        staff = token_for(Role.ADMIN)
        client.post("/api/v1/loans", json=LOAN, headers=staff)
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
        line = client.post("/api/v1/credit-lines", json={"product_code": "RV-STD", "limit": "50000"}, headers=staff)
        assert line.status_code == 201, line.text
        assert (
            client.post(
                "/api/v1/credit-lines",
                json={"product_code": "RV-STD", "limit": "50000"},
                headers=token_for(Role.MARKETER),
            ).status_code
            == 403
        )
        url = f"/api/v1/credit-lines/{line.json()['id']}/drawdowns"
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
