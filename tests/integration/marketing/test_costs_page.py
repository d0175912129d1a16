"""The marketer's channel costs and margin page through HTTP (cookie sign-in) on both databases: the figures
are stored exactly (Decimal), audited, refused with a message when malformed (nothing saved), closed to a
credit officer, and the campaign report's cost and ROI are computed from them."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import polars as pl
from sqlalchemy import select
from tests.battery import audit_actions, audit_count
from tests.conftest import Api, sign_in_page

from microlend.core.tables import AuditRow
from microlend.marketing import service
from microlend.marketing.segments import FrequencyCap
from microlend.marketing.tables import MeasurementSettingsRow

from .test_marketing_campaign_flow import NOON, FakeConsent, RecordingSender, customers

FORM = {"sms_cost": "0.08", "push_cost": "0.012", "visit_cost": "25", "margin_per_disbursed": "800.50",
        "min_control_per_stratum": "30"}


def sign_in(api: Api, *roles: str, lang: str = "en") -> None:
    api.client.cookies.clear()
    username, _ = api.kit.user(*roles)
    sign_in_page(api.client, username)
    api.client.cookies.set("ml_lang", lang)


def _row(api: Api) -> MeasurementSettingsRow | None:
    with api.kit.uow_factory() as u:
        row = u.session.execute(select(MeasurementSettingsRow).where(
            MeasurementSettingsRow.tenant_id == api.kit.tenant.id)).scalar()
        if row is not None:
            u.session.expunge(row)
        return row


def test_the_marketer_states_costs_and_margin_exactly_and_audited(api: Api) -> None:
    sign_in(api, "marketer", lang="zh_CN")
    page = api.client.get("/marketing/costs")
    assert page.status_code == 200 and "渠道成本与利润" in page.text and 'data-testid="costs-default"' in page.text
    before = audit_count(api)
    r = api.client.post("/marketing/costs", data=FORM, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/marketing/costs?saved=1"
    row = _row(api)
    assert row is not None
    assert (row.sms_cost, row.push_cost, row.visit_cost, row.margin_per_disbursed, row.min_control_per_stratum) \
        == (Decimal("0.08"), Decimal("0.012"), Decimal("25"), Decimal("800.50"), 30)
    assert audit_actions(api)[before:] == ["marketing.measurement_settings.update"]
    with api.kit.uow_factory() as u:
        after = u.session.execute(select(AuditRow.after).where(
            AuditRow.tenant_id == api.kit.tenant.id).order_by(AuditRow.seq.desc()).limit(1)).scalar()
    assert after is not None and '"margin_per_disbursed": "800.50"' in str(after).replace("'", '"')
    shown = api.client.get("/marketing/costs?saved=1")
    assert 'value="800.50"' in shown.text and 'data-testid="costs-default"' not in shown.text
    # an empty margin: no ROI, and the stated costs stay
    assert api.client.post("/marketing/costs", data={**FORM, "margin_per_disbursed": ""},
                           follow_redirects=False).status_code == 303
    row = _row(api)
    assert row is not None and row.margin_per_disbursed is None and row.sms_cost == Decimal("0.08")
    api.client.cookies.clear()


def test_a_malformed_figure_is_shown_on_the_form_and_nothing_is_saved(api: Api) -> None:
    sign_in(api, "marketer")
    for field, value in (("sms_cost", "abc"), ("sms_cost", "-0.01"), ("push_cost", "0.00001"), ("visit_cost", "1e400"),
                         ("visit_cost", "NaN"), ("margin_per_disbursed", "2000000"), ("sms_cost", ""),
                         ("min_control_per_stratum", "0"), ("min_control_per_stratum", "x")):
        r = api.client.post("/marketing/costs", data={**FORM, field: value})
        assert r.status_code == 422 and 'role="alert"' in r.text and field in r.text, (field, value, r.status_code)
    assert _row(api) is None
    api.client.cookies.clear()


def test_a_credit_officer_may_not_state_them(api: Api) -> None:
    sign_in(api, "credit_officer")
    before = audit_count(api)
    assert api.client.get("/marketing/costs").status_code == 403
    assert api.client.post("/marketing/costs", data=FORM).status_code == 403
    assert _row(api) is None and audit_count(api) == before
    api.client.cookies.clear()


def test_the_campaign_report_takes_its_cost_and_roi_from_the_page(api: Api) -> None:
    marketer = api.kit.principal("marketer")
    uow = api.kit.uow_factory
    frame = customers()
    service.save_segment(uow(), marketer, "adults", "age >= 25", at=NOON)
    camp = service.create_campaign(uow(), marketer, service.CampaignSpec(
        name="roi", channel="sms", segment_name="adults", control_share_bp=3000, cap=FrequencyCap(10, 1)), at=NOON)
    service.launch_campaign(uow(), marketer, camp.id, frame, at=NOON, bank_name="Demo")
    service.dispatch_outbox(uow(), marketer, now=NOON, sender=RecordingSender(), consent=FakeConsent(frame))
    arms = service.campaign_outcomes(uow(), marketer, [camp.id], stage="disbursed")
    treat = sorted(arms.filter(pl.col("treated") == 1).get_column("customer_id").to_list())
    control = sorted(arms.filter(pl.col("treated") == 0).get_column("customer_id").to_list())
    service.record_events(uow(), marketer, [
        {"customer_id": c, "kind": "disbursed", "at": NOON + timedelta(days=2)} for c in treat[:20]]
        + [{"customer_id": c, "kind": "disbursed", "at": NOON + timedelta(days=2)} for c in control[:1]])

    sign_in(api, "marketer")
    assert api.client.post("/marketing/costs", data=FORM, follow_redirects=False).status_code == 303
    report = service.campaign_report(uow(), marketer, [camp.id])
    sent = next(f for f in report.funnel if f.by == "channel").sent
    effect = next(e for e in report.channels if e.stage == "disbursed")
    cost = (Decimal("0.08") * sent).quantize(Decimal("0.01"))
    incremental = Decimal(20) - Decimal(1) * Decimal(len(treat)) / Decimal(len(control))
    assert effect.cost == cost and report.total_cost == cost
    assert effect.roi == ((incremental * Decimal("800.50") - cost) / cost).quantize(Decimal("0.0001"))
    page = api.client.get(f"/marketing/campaigns/{camp.id}/report")
    assert page.status_code == 200 and 'href="/marketing/costs"' in page.text
    shown = re.search(r'<tr data-channel="sms" data-stage="disbursed">.*?data-testid="roi">([^<]*)<', page.text,
                      re.DOTALL)
    assert shown is not None and shown.group(1).replace(",", "") == f"{effect.roi * 100:.0f}%"
    api.client.cookies.clear()
