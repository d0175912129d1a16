"""A shop owner registers on the borrower pages and gets a real decision on data a bank can obtain: the six
providers behind the gateway (the sandboxes, as a separate process), the expert scorecard as champion, the
data rules of the default policy. No German attribute is anywhere in it."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import date
from decimal import ROUND_FLOOR, Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.conftest import Api, TenantKit, page_headers, sign_in_page

from microlend.api.deps import SESSION_COOKIE
from microlend.core.clock import utcnow
from microlend.core.identity import system_principal
from microlend.data import business, provider_service
from microlend.data.tables import ProviderCallRow
from microlend.decisioning.reasons import tellable_reasons
from microlend.demo import identities
from microlend.demo.sandbox import KINDS, payload, subject_with
from microlend.demo.sandbox.process import SandboxProcess, start_sandbox
from microlend.origination.tables import ApplicationRow
from microlend.parties.tables import CustomerRow
from microlend.risk import registry
from microlend.risk.artefacts import load_model
from microlend.risk.starter import EXPERT_STARTER_DIR

GERMAN_FIELDS = {"status_of_existing_checking_account", "credit_history", "purpose", "credit_amount",
                 "present_employment_since", "foreign_worker", "personal_status_and_sex"}
_rng = random.Random(1414)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    with start_sandbox(anchor=utcnow().date(), seed=0) as process:
        yield process


def _wire(kit: TenantKit, base_url: str, **per_kind: str) -> None:
    admin = system_principal(kit.tenant.id)
    for kind in KINDS:
        changes = provider_service.ProviderChanges(
            base_url=per_kind.get(kind, base_url), api_key="sandbox", timeout_ms=2000, retries=0,
            cost_per_call=Decimal("0.50"))
        provider_service.set_provider(kit.uow_factory(), admin, kind, changes)


@pytest.fixture
def shop(app_client: TestClient, new_tenant: Callable[..., TenantKit], sandbox: SandboxProcess) -> Api:
    """A bank as shipped (the expert scorecard is its champion) whose providers are the sandboxes."""
    app_client.cookies.clear()
    kit = new_tenant("expert")
    _wire(kit, sandbox.base_url)
    return Api(app_client, kit)


def _apply(api: Api, uscc: str, product: str = "TAX_LOAN", amount: str = "80000") -> ApplicationRow:
    form = {"kind": "business", "name": "城关镇小卖部", "id_number": uscc, "mobile": identities.mobile(_rng),
            "password": "borrower-pass-1", "industry": "retail", "annual_turnover": "600000",
            "years_in_business": "6", "owner_id_number": identities.resident_id(
                _rng, identities.birth_date_for_age(_rng, 42, date(2026, 1, 1)))}
    r = api.client.post(f"/b/{api.kit.tenant.name}/register", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    token = r.cookies.get(SESSION_COOKIE)
    assert token
    api.client.cookies.clear()
    h = {"Cookie": f"{SESSION_COOKIE}={token}; ml_lang=en", **page_headers(api.client, token)}
    r = api.client.post("/b/apply", headers={**h, **FORM}, follow_redirects=False, content=urlencode([
        ("product_code", product), ("amount", amount), ("term_months", "12"), ("purpose", "stock"),
        ("consent", "credit_report"), ("consent", "external_data")]))
    assert r.status_code == 303, r.text
    app_id = int(r.headers["location"].rsplit("/", 1)[1])
    with api.kit.uow_factory() as u:
        row = u.session.get(ApplicationRow, app_id)
        assert row is not None
        u.session.expunge(row)
    return row


def _sales_12m(uscc: str, on: date) -> Decimal:
    body: dict[str, Any] = payload("tax", uscc, on, seed=0, anchor=on)
    periods = {f"{(on.year * 12 + on.month - 1 - k) // 12:04d}-{(on.year * 12 + on.month - 1 - k) % 12 + 1:02d}"
               for k in range(1, 13)}
    return sum((Decimal(d["sales"]) for d in body["declarations"] if d["period"] in periods), Decimal(0))


def _expert_score(uscc: str, on: date) -> float:
    """What the shipped expert scorecard makes of the subject's sandbox data (a newcomer: no account here)."""
    answers = {kind: payload(kind, uscc, on, seed=0, anchor=on) for kind in KINDS}
    case = {**business.features_from_payloads(answers, on), "years_in_business": 6, "subject_kind": "business"}
    return float(load_model(EXPERT_STARTER_DIR).model.score_one(case)[1])


def _tax_cap(uscc: str, on: date) -> Decimal:
    """The tax loan's limit by its formula: 0.3 of the sales declared in the last 12 months, in hundreds."""
    return (Decimal("0.3") * _sales_12m(uscc, on) / 100).to_integral_value(ROUND_FLOOR) * 100


def test_a_good_shop_owner_is_approved_at_the_tax_loan_formula(shop: Api) -> None:
    on = shop.kit.tenant.business_date
    # a village shop whose data scores above the grey band (most good profiles do), and whose formula (0.3 x
    # declared sales) is below what it asks for, so the formula decides
    uscc = next(u for u in (subject_with("good", _rng, kind="business") for _ in range(400))
                if Decimal(20000) <= _tax_cap(u, on) <= Decimal(90000) and _expert_score(u, on) >= 575)
    row = _apply(shop, uscc, amount="100000")
    assert row.status == "approved", row.decision_reasons
    assert row.model_version.startswith("starter-expert-micro-business")
    assert row.score is not None and row.score >= 520
    assert row.decision_limit == _tax_cap(uscc, on)
    assert row.offer_amount == row.decision_limit
    with shop.kit.uow_factory() as u:
        customer = u.session.get(CustomerRow, row.customer_id)
        assert customer is not None and not GERMAN_FIELDS & set(customer.attributes or {})
        calls = u.session.execute(select(ProviderCallRow).where(
            ProviderCallRow.tenant_id == shop.kit.tenant.id, ProviderCallRow.application_id == row.id)).scalars().all()
    assert sorted(c.kind for c in calls) == sorted(KINDS)
    statuses = {c.kind: c.status for c in calls}  # a shop without card acquiring is not found at the merchant
    assert set(statuses.values()) <= {"ok", "not_found"} and statuses["tax"] == statuses["registry"] == "ok"
    assert all(c.cost == Decimal("0.50") for c in calls)


@pytest.mark.parametrize(("profile", "reasons"), [
    ("enforcement", {"ENFORCEMENT_DISHONEST", "ENFORCEMENT_CASES"}),
    ("declining", {"SALES_DECLINING"}),
])
def test_enforcement_cases_and_falling_sales_are_declined_with_reasons_a_borrower_can_be_told(
        shop: Api, profile: str, reasons: set[str]) -> None:
    row = _apply(shop, subject_with(profile, _rng, kind="business"))
    assert row.status == "declined"
    assert reasons & set(row.decision_reasons), row.decision_reasons
    told = tellable_reasons(row.decision_reasons, locale="en")
    assert told and all(t and "_" not in t for t in told)
    assert tellable_reasons(row.decision_reasons, locale="zh_CN") != told


def test_a_provider_outage_refers_the_application_instead_of_failing(shop: Api, sandbox: SandboxProcess) -> None:
    _wire(shop.kit, sandbox.base_url, tax="http://127.0.0.1:9")  # nothing listens there: connection refused
    row = _apply(shop, subject_with("good", _rng, kind="business"))
    assert row.status == "referred", row.decision_reasons
    assert "DATA_SOURCE_UNAVAILABLE" in row.decision_reasons
    with shop.kit.uow_factory() as u:
        status = u.session.execute(select(ProviderCallRow.status).where(
            ProviderCallRow.application_id == row.id, ProviderCallRow.kind == "tax")).scalar_one()
    assert status == "unavailable"


def test_without_the_external_data_consent_only_the_public_records_and_the_report_are_asked(shop: Api) -> None:
    uscc = subject_with("good", _rng, kind="business")
    form = {"kind": "business", "name": "新街村农资店", "id_number": uscc, "mobile": identities.mobile(_rng),
            "password": "borrower-pass-1", "industry": "agriculture", "annual_turnover": "300000",
            "owner_id_number": identities.resident_id(_rng, identities.birth_date_for_age(_rng, 50, date(2026, 1, 1)))}
    r = shop.client.post(f"/b/{shop.kit.tenant.name}/register", data=form, follow_redirects=False)
    token = r.cookies.get(SESSION_COOKIE)
    assert r.status_code == 303 and token
    shop.client.cookies.clear()
    h = {"Cookie": f"{SESSION_COOKIE}={token}; ml_lang=en", **page_headers(shop.client, token)}
    r = shop.client.post("/b/apply", headers={**h, **FORM}, follow_redirects=False, content=urlencode([
        ("product_code", "TAX_LOAN"), ("amount", "50000"), ("term_months", "6"), ("consent", "credit_report")]))
    assert r.status_code == 303, r.text
    app_id = int(r.headers["location"].rsplit("/", 1)[1])
    with shop.kit.uow_factory() as u:
        row = u.session.get(ApplicationRow, app_id)
        assert row is not None and row.status == "declined" and "CONSENT_MISSING" in row.decision_reasons
        calls = dict(u.session.execute(select(ProviderCallRow.kind, ProviderCallRow.status).where(
            ProviderCallRow.application_id == app_id)).all())
    assert calls["tax"] == calls["einvoice"] == calls["merchant"] == "no_consent"
    assert calls["bureau"] == calls["registry"] == calls["enforcement"] == "ok"


def test_the_champion_of_a_new_bank_is_the_expert_scorecard(shop: Api) -> None:
    models = registry.list_model_versions(shop.kit.uow_factory(), system_principal(shop.kit.tenant.id))
    by_status = {m.status: m.name for m in models}
    assert by_status["champion"] == "starter-expert-micro-business"
    assert by_status["approved"] == "starter-german-credit"


@pytest.mark.parametrize("lang", ["en", "zh_CN"])
def test_the_officer_sees_the_business_profile_instead_of_raw_attributes(shop: Api, lang: str) -> None:
    on = shop.kit.tenant.business_date
    uscc = subject_with("good", _rng, kind="business")
    row = _apply(shop, uscc)
    officer, _ = shop.kit.user("credit_officer")
    sign_in_page(shop.client, officer)
    shop.client.cookies.set("ml_lang", lang)
    html = shop.client.get(f"/customers/{row.customer_id}/360").text
    assert 'data-testid="business-profile"' in html
    answered = html.count('data-status="ok"') + html.count('data-status="not_found"')  # not every shop takes cards
    assert answered == len(KINDS) and 'data-kind="tax" data-status="ok"' in html
    sales = f"{_sales_12m(uscc, on):,.2f}"
    assert sales in html  # the exact declared sales of the last 12 months
    assert '<svg class="chart bars"' in html and uscc not in html  # a chart; the USCC never in clear
    assert ("经营画像" in html) == (lang == "zh_CN") and ("Business profile" in html) == (lang == "en")
    shop.client.cookies.clear()


def test_a_customer_never_asked_about_shows_an_empty_profile(shop: Api) -> None:
    r = shop.client.post("/api/v1/customers", headers=shop.token("credit_officer"), json={
        "kind": "person", "name": "李四", "id_number": identities.resident_id(
            _rng, identities.birth_date_for_age(_rng, 35, date(2026, 1, 1))), "phone": identities.mobile(_rng)})
    assert r.status_code == 201, r.text
    officer, _ = shop.kit.user("credit_officer")
    sign_in_page(shop.client, officer)
    html = shop.client.get(f"/customers/{r.json()['id']}/360").text
    assert 'data-testid="business-profile"' in html and 'data-status="not_called"' in html
    assert 'data-testid="tax-sales-12m"' not in html
    shop.client.cookies.clear()


@pytest.fixture(scope="module")
def broken_sandbox() -> Iterator[SandboxProcess]:
    """A provider whose every answer breaks its data contract (a cut-off body, "abc" for an amount, a key gone)."""
    with start_sandbox(anchor=utcnow().date(), seed=0, malformed_rate=1.0) as process:
        yield process


def test_a_provider_answering_garbage_refers_the_application_with_the_data_error_recorded(
        shop: Api, sandbox: SandboxProcess, broken_sandbox: SandboxProcess) -> None:
    _wire(shop.kit, sandbox.base_url, tax=broken_sandbox.base_url)
    row = _apply(shop, subject_with("good", _rng, kind="business"))
    assert row.status == "referred", row.decision_reasons
    assert "DATA_SOURCE_UNAVAILABLE" in row.decision_reasons
    with shop.kit.uow_factory() as u:
        call = u.session.execute(select(ProviderCallRow).where(
            ProviderCallRow.application_id == row.id, ProviderCallRow.kind == "tax")).scalar_one()
    assert call.status == "data_error" and call.error
