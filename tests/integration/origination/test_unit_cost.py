"""单笔贷款运营成本 over a bank's real use cases: provider calls priced per call (declined applications' too),
the decisions' and closes of business' measured CPU, and the actions people took on referred cases, under the
stated assumptions; per loan disbursed, per application, per bank, on the API and the workbench pages."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.conftest import Api, TenantKit
from tests.integration.origination.test_applications_api import POOR_ROW, apply, new_customer
from tests.integration.origination.test_small_business_decisions import _apply, _wire
from tests.integration.origination.test_workbench_pages import get
from tests.signing import accept_by_code

from microlend.core import crypto
from microlend.core.clock import utcnow
from microlend.core.errors import NotFound
from microlend.core.identity import system_principal
from microlend.data.tables import ProviderCallRow
from microlend.demo.sandbox import subject_with
from microlend.demo.sandbox.process import SandboxProcess, start_sandbox
from microlend.origination import service as origination
from microlend.origination import unit_cost
from microlend.origination.applications import ApprovalAuthority
from microlend.origination.tables import ApplicationRow
from microlend.servicing.cob import run_close_of_business
from microlend.servicing.tables import CobRunRow
from microlend.web import i18n

A = unit_cost.DEFAULT_ASSUMPTIONS
_rng = random.Random(77)
TWO_APPROVERS = ApprovalAuthority(single_approval_limit=Decimal("100000"))


def _call(kit: TenantKit, application_id: int | None, cost: str, kind: str = "bureau") -> None:
    """A call as the gateway records it (the provider's price per call in `cost`)."""
    with kit.uow_factory() as u:
        u.session.add(
            ProviderCallRow(
                tenant_id=kit.tenant.id,
                kind=kind,
                subject_index=crypto.blind_index("subject"),
                subject_masked="sub***",
                subject_kind="business",
                as_of=None,
                purpose="credit application",
                application_id=application_id,
                called_by="decision-engine",
                at=utcnow(),
                status="ok",
                latency_ms=120,
                cost=Decimal(cost),
                currency="CNY",
                cached=False,
                http_status=200,
                error=None,
                payload=None,
                payload_sha256=None,
            )
        )
        u.commit()


def _referred(api: Api) -> int:
    app = apply(api, new_customer(api, turnover="3000000"), "300000.00", product="EP-STD").json()
    assert app["status"] == "referred", app
    return int(app["id"])


@pytest.fixture
def history(api: Api) -> dict[str, int]:
    """One loan disbursed, one application declined by the engine, a referred case approved by two people
    after a field visit, a referred case declined by a person; provider calls priced on three of them and
    one no application asked for; three closes of business."""
    kit = api.kit
    uow = kit.uow_factory
    disbursed = apply(api, new_customer(api), "30000.00").json()
    assert accept_by_code(api, disbursed["id"]).json()["status"] == "disbursed"
    declined = apply(api, new_customer(api, POOR_ROW), "30000.00").json()
    assert declined["status"] == "declined"

    two = _referred(api)
    origination.recommend(
        uow(),
        kit.principal("credit_officer"),
        two,
        "approve",
        Decimal("250000"),
        Decimal("0.085"),
        "strong ledger",
        field_visit={"premises": "owned", "findings": "ok"},
        authority=TWO_APPROVERS,
    )
    assert origination.approve(uow(), kit.principal("approver"), two, authority=TWO_APPROVERS).status == "recommended"
    assert origination.approve(uow(), kit.principal("approver"), two, authority=TWO_APPROVERS).status == "approved"

    refused = _referred(api)
    origination.recommend(uow(), kit.principal("credit_officer"), refused, "decline", None, None, "weak")
    assert origination.decline(uow(), kit.principal("approver"), refused, "agreed").status == "declined"

    for application_id, cost in (
        (disbursed["id"], "1.25"),
        (disbursed["id"], "1.25"),
        (declined["id"], "0.40"),
        (declined["id"], "0.40"),
        (declined["id"], "0.40"),
        (two, "3.00"),
    ):
        _call(kit, application_id, cost)
    _call(kit, None, "0.10", kind="registry")  # a portfolio check no application asked for: paid all the same
    run_close_of_business(
        uow(), system_principal(kit.tenant.id, "cob"), through=kit.tenant.business_date + timedelta(days=2)
    )
    return {"disbursed": disbursed["id"], "declined": declined["id"], "two": two, "refused": refused}


def _window() -> tuple[Any, Any]:
    now = utcnow()
    return now - timedelta(days=1), now + timedelta(minutes=5)


def _measured(kit: TenantKit) -> tuple[int, int, int]:
    """The recorded decision CPU of the bank's applications, and its closes of business' CPU and loan-days."""
    with kit.uow_factory() as u:
        decision = u.session.execute(
            select(func.sum(ApplicationRow.decision_cpu_ms)).where(ApplicationRow.tenant_id == kit.tenant.id)
        ).scalar_one()
        cob, days = u.session.execute(
            select(func.sum(CobRunRow.cpu_ms), func.sum(CobRunRow.loans_active)).where(
                CobRunRow.tenant_id == kit.tenant.id
            )
        ).one()
    return int(decision), int(cob), int(days)


def test_the_unit_cost_is_the_sum_of_its_measured_parts_under_the_stated_assumptions(
    api: Api, history: dict[str, int]
) -> None:
    decision_ms, cob_ms, loan_days = _measured(api.kit)
    c = unit_cost.unit_cost(api.kit.uow_factory(), api.kit.principal("approver"), *_window())

    assert c.provider_cost == Decimal("6.80")  # 2 x 1.25 + 3 x 0.40 (declined: paid, no loan) + 3.00 + 0.10
    assert c.provider_calls == 7  # the calls not made (no consent, not set up) are recorded, not counted
    assert {k: v for k, v in c.provider_by_kind.items() if v} == {
        "bureau": Decimal("6.70"),
        "registry": Decimal("0.10"),
    }
    assert c.applications == 4 and c.decided == 4 and c.loans_disbursed == 1
    assert decision_ms > 0 and c.decision_cpu_ms == decision_ms
    assert c.decision_cost == Decimal(decision_ms) * Decimal("0.50") / 3_600_000
    # two approvals, a recommendation and a field visit; a recommendation and a person's decline
    assert c.staff == unit_cost.StaffActions(cases=2, recommendations=2, decisions=3, field_visits=1)
    assert c.staff_minutes == (20 + 2 * 10 + 60) + (20 + 10) == 130
    assert c.staff_cost == Decimal(130) * Decimal(60) / 60 == Decimal(130)
    assert c.servicing_cpu_ms == cob_ms and c.servicing_loan_days == loan_days == 3  # one loan, three closes
    assert c.servicing_cost == Decimal(cob_ms) * Decimal("0.50") / 3_600_000
    expected = Decimal("6.80") + c.decision_cost + Decimal(130) + c.servicing_cost
    assert c.total == expected and c.per_loan == expected  # one loan disbursed carries it all
    assert [name for name, _ in c.parts] == ["provider", "decision", "staff", "servicing"]
    assert sum((amount for _, amount in c.parts), Decimal(0)) == c.total


def test_one_applications_cost_counts_its_own_calls_cpu_and_the_people_who_acted_on_it(
    api: Api, history: dict[str, int]
) -> None:
    who = api.kit.principal("approver")
    uow = api.kit.uow_factory
    _, cob_ms, loan_days = _measured(api.kit)

    two = unit_cost.loan_cost(uow(), who, history["two"])
    assert two.provider_cost == Decimal("3.00") and two.staff_minutes == 100 and two.staff_cost == Decimal(100)
    assert two.loan_days == 0 and two.servicing_cost == 0  # approved, not disbursed: nothing to service yet

    loan = unit_cost.loan_cost(uow(), who, history["disbursed"])
    assert loan.provider_cost == Decimal("2.50") and loan.staff_minutes == 0
    assert loan.decision_cpu_ms is not None and loan.decision_cost == A.cpu_cost(loan.decision_cpu_ms)
    assert loan.loan_days == 3 and loan.months_on_book == Decimal(3) / Decimal("30.4")
    assert loan.servicing_cost == A.cpu_cost(Decimal(cob_ms) / loan_days * 3)
    assert loan.total == loan.provider_cost + loan.decision_cost + loan.servicing_cost

    declined = unit_cost.loan_cost(uow(), who, history["declined"])
    assert declined.provider_cost == Decimal("1.20") and declined.staff_minutes == 0


def test_another_bank_sees_only_its_own_costs(
    api: Api, history: dict[str, int], new_tenant: Callable[..., TenantKit]
) -> None:
    other = new_tenant()
    _call(other, None, "9.99")
    theirs = unit_cost.unit_cost(other.uow_factory(), other.principal("approver"), *_window())
    assert theirs.provider_cost == Decimal("9.99") and theirs.loans_disbursed == 0 and theirs.per_loan is None
    assert theirs.staff_minutes == 0 and theirs.decision_cpu_ms == 0 and theirs.servicing_cpu_ms == 0
    ours = unit_cost.unit_cost(api.kit.uow_factory(), api.kit.principal("approver"), *_window())
    assert ours.provider_cost == Decimal("6.80")
    with pytest.raises(NotFound):
        unit_cost.loan_cost(other.uow_factory(), other.principal("approver"), history["disbursed"])


def test_the_api_returns_the_figures_with_the_assumptions(api: Api, history: dict[str, int]) -> None:
    since, until = _window()
    r = api.client.get(
        "/api/v1/unit-cost",
        headers=api.token("approver"),
        params={"since": since.isoformat(), "until": until.isoformat()},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    c = unit_cost.unit_cost(api.kit.uow_factory(), api.kit.principal("approver"), since, until)
    assert body["provider_cost"] == "6.80" and body["staff_cost"] == "130.00" and body["loans_disbursed"] == 1
    assert body["referred_cases"] == 2 and body["staff_decisions"] == 3 and body["staff_field_visits"] == 1
    assert body["total"] == f"{c.total.quantize(Decimal('0.01'))}"
    assert body["reference_per_loan"] == "2.30" and body["assumptions"]["cpu_hour_cost"] == "0.50"
    assert body["assumptions"]["recommend_minutes"] == 20 and body["assumptions"]["field_visit_minutes"] == 60
    r = api.client.get(
        "/api/v1/unit-cost",
        headers=api.token("approver"),
        params={"since": until.isoformat(), "until": since.isoformat()},
    )
    assert r.status_code == 422 and "until" in r.text


@pytest.mark.parametrize(("lang", "title"), [("en", "Cost per loan"), ("zh_CN", "单笔贷款运营成本")])
def test_the_dashboard_and_the_application_page_show_the_cost(
    api: Api, history: dict[str, int], lang: str, title: str
) -> None:
    who = api.kit.principal("approver")
    now = utcnow()
    c = unit_cost.unit_cost(api.kit.uow_factory(), who, now - timedelta(days=30), now + timedelta(minutes=5))
    html = get(api, "/workbench/dashboard?scope=all", who, lang=lang).text
    assert title in html and 'class="chart cost-bar"' in html and "cost-provider" in html
    assert f'data-testid="cost-per-loan">{i18n.money(c.per_loan, "CNY", lang)}<' in html
    assert f'data-testid="cost-reference">{i18n.money(Decimal("2.30"), "CNY", lang)}<' in html
    assert i18n.money(Decimal(130), "CNY", lang) in html  # the staff part
    assert ("假设" if lang == "zh_CN" else "Assumptions") in html
    assert html.count('data-testid="unit-cost"') == 1  # once, in the page's body
    assert "<section" not in html.split("<title>", 1)[1].split("</title>", 1)[0]
    assert html.index('data-testid="unit-cost"') > html.index("<body")

    page = get(api, f"/applications/{history['two']}", who, lang=lang).text
    cost = unit_cost.loan_cost(api.kit.uow_factory(), who, history["two"])
    assert 'data-testid="loan-cost"' in page
    assert f"<strong>{i18n.money(cost.total, 'CNY', lang)}</strong>" in page
    assert ("运营成本" if lang == "zh_CN" else "Operating cost") in page


def test_a_bank_sets_its_own_assumptions_and_its_unit_cost_reads_them(api: Api, history: dict[str, int]) -> None:
    analyst = api.token("risk_analyst")
    r = api.client.get("/api/v1/unit-cost/settings", headers=analyst)
    assert r.status_code == 200 and r.json()["staff_hour_cost"] == "60" and r.json()["updated_by"] is None
    body = {
        "cpu_hour_cost": "0.40",
        "staff_hour_cost": "120",
        "recommend_minutes": 30,
        "decide_minutes": 15,
        "field_visit_minutes": 90,
        "reference_per_loan": "2.30",
    }
    r = api.client.put("/api/v1/unit-cost/settings", headers=analyst, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["staff_hour_cost"] == "120" and r.json()["updated_by"]
    c = unit_cost.unit_cost(api.kit.uow_factory(), api.kit.principal("approver"), *_window())
    assert c.staff_minutes == (30 + 2 * 15 + 90) + (30 + 15) == 195 and c.staff_cost == Decimal(390)
    assert c.decision_cost == Decimal(c.decision_cpu_ms) * Decimal("0.40") / 3_600_000
    for field, value in (
        ("staff_hour_cost", "-1"),
        ("recommend_minutes", 2000),
        ("reference_per_loan", "0"),
        ("cpu_hour_cost", "0.123456"),
    ):
        r = api.client.put("/api/v1/unit-cost/settings", headers=analyst, json={**body, field: value})
        assert r.status_code == 422 and field in r.text, r.text
    r = api.client.put("/api/v1/unit-cost/settings", headers=analyst, json={**body, "staff_hour_cost": 60.5})
    assert r.status_code == 422 and "floating point" in r.text
    other_bank = unit_cost.cost_assumptions(api.kit.uow_factory(), system_principal(api.kit.tenant.id + 1000))
    assert other_bank == unit_cost.DEFAULT_ASSUMPTIONS


# --- with the provider sandboxes: what the gateway really recorded -------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    with start_sandbox(anchor=utcnow().date(), seed=0) as process:
        yield process


def test_with_the_sandboxes_every_call_the_gateway_priced_is_counted_declined_ones_too(
    app_client: Any, new_tenant: Callable[..., TenantKit], sandbox: SandboxProcess
) -> None:
    app_client.cookies.clear()
    kit = new_tenant("expert")
    _wire(kit, sandbox.base_url)  # 0.50 a call
    shop = Api(app_client, kit)
    good = _apply(shop, subject_with("good", _rng, kind="business"))
    bad = _apply(shop, subject_with("enforcement", _rng, kind="business"))
    assert bad.status == "declined"
    with kit.uow_factory() as u:
        calls = dict(
            u.session.execute(
                select(ProviderCallRow.application_id, func.count())
                .where(ProviderCallRow.tenant_id == kit.tenant.id)
                .group_by(ProviderCallRow.application_id)
            ).all()
        )
    c = unit_cost.unit_cost(kit.uow_factory(), kit.principal("approver"), *_window())
    assert calls[good.id] > 0 and calls[bad.id] > 0
    assert c.provider_cost == Decimal("0.50") * sum(calls.values())
    assert unit_cost.loan_cost(kit.uow_factory(), kit.principal("approver"), bad.id).provider_cost == (
        Decimal("0.50") * calls[bad.id]
    )
    assert c.decision_cpu_ms == (good.decision_cpu_ms or 0) + (bad.decision_cpu_ms or 0) > 0
