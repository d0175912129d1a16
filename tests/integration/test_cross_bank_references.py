"""A reference to another bank's object inside a request body is never accepted: it is not found, and nothing
is written — a loan or a credit line booked on another bank's customer would put that customer in this bank's
books and pages."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date

from sqlalchemy import func, select
from tests.conftest import Api, TenantKit

from microlend.demo import identities
from microlend.servicing.tables import CreditLineRow, LoanRow

LOAN = {"product_code": "EI-STD", "principal": "10000", "term_months": 12, "annual_rate": "0.12"}
LINE = {"product_code": "RV-STD", "limit": "50000"}


def customer_of(api: Api) -> int:
    rng = random.Random()
    birth = identities.birth_date_for_age(rng, 38, date(2026, 1, 1))
    body = {"kind": "person", "name": "钱老板", "id_number": identities.resident_id(rng, birth),
            "phone": identities.mobile(rng), "attributes": {}}
    r = api.client.post("/api/v1/customers", json=body, headers=api.token("credit_officer"))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def books(kit: TenantKit) -> tuple[int, int]:
    with kit.uow_factory() as u:
        loans = u.session.execute(select(func.count()).select_from(LoanRow)
                                  .where(LoanRow.tenant_id == kit.tenant.id)).scalar_one()
        lines = u.session.execute(select(func.count()).select_from(CreditLineRow)
                                  .where(CreditLineRow.tenant_id == kit.tenant.id)).scalar_one()
    return int(loans), int(lines)


def test_a_loan_or_credit_line_on_another_banks_customer_is_not_found(
        api: Api, new_tenant: Callable[[], TenantKit]) -> None:
    theirs = customer_of(Api(api.client, new_tenant()))
    mine = customer_of(api)
    staff = api.token("operations")
    before = books(api.kit)
    for path, body in (("/api/v1/loans", LOAN), ("/api/v1/credit-lines", LINE)):
        r = api.client.post(path, json={**body, "customer_id": theirs}, headers=staff)
        assert r.status_code == 404, r.text
        assert r.json()["field"] == "customer_id" and f"customer {theirs} not found" in r.json()["detail"]
    assert books(api.kit) == before
    approver = api.token("approver")
    for path, body in (("/api/v1/loans", LOAN), ("/api/v1/credit-lines", LINE)):
        r = api.client.post(path, json={**body, "customer_id": mine}, headers=staff)
        assert r.status_code == 202, r.text
        assert books(api.kit) == before or path.endswith("credit-lines")  # nothing moves before the approval
        approved = api.client.post(f"/api/v1/bookings/{r.json()['id']}/approval", headers=approver)
        assert approved.status_code == 201, approved.text
    assert books(api.kit) == (before[0] + 1, before[1] + 1)
    with api.kit.uow_factory() as u:  # both stored on this bank's own customer
        assert set(u.session.execute(select(LoanRow.customer_id).where(LoanRow.tenant_id == api.kit.tenant.id))
                   .scalars()) == {mine}
        assert set(u.session.execute(select(CreditLineRow.customer_id)
                                     .where(CreditLineRow.tenant_id == api.kit.tenant.id)).scalars()) == {mine}
