"""The journey, variant and calendar pages through HTTP on both databases: a campaign with department,
product, budget and A/B texts created from the form, a follow-up step added, a launch over budget refused
with the reason, the calendar by department and product, and another bank's campaign not found."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from sqlalchemy import select
from tests.conftest import Api
from tests.integration.marketing.test_marketing_pages import created_id, customers, reachable, sign_in

from microlend.marketing import service
from microlend.marketing.journeys import StepSpec, Variant
from microlend.marketing.segments import FrequencyCap
from microlend.marketing.tables import JourneyStepRow, VisitTaskRow

pytestmark = pytest.mark.slow


@pytest.fixture
def other(app_client: Any, new_tenant: Any) -> Api:
    return Api(app_client, new_tenant())


def _noon() -> datetime:
    return (datetime.now(UTC) - timedelta(days=1)).replace(hour=4, minute=0, second=0, microsecond=0)


class TestJourneyPages:
    def test_create_with_variants_add_a_step_and_see_the_calendar(self, api: Api,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
        noon = _noon()
        monkeypatch.setattr("microlend.web.marketing._now", lambda: noon)
        customers(api, 6)
        sign_in(api, "marketer")
        api.client.post("/marketing/segments", data={"name": "everyone", "expression": "age >= 18"})
        half = api.client.post("/marketing/campaigns", data={
            "name": "ab", "target": "segment:everyone", "channel": "sms", "variant_a": "Text A {{ link }}"})
        assert half.status_code == 422 and "variants" in half.text
        cid = created_id(api.client.post("/marketing/campaigns", data={
            "name": "ab", "target": "segment:everyone", "channel": "sms", "department": "Retail",
            "product": "Micro loan", "budget": "0.10", "variant_a": "Text A {{ link }}",
            "variant_b": "Text B {{ link }}"}, follow_redirects=False))
        page = api.client.get(f"/marketing/campaigns/{cid}").text
        assert 'data-testid="step-form"' in page and "Retail" in page and "Micro loan" in page
        bad = api.client.post(f"/marketing/campaigns/{cid}/steps", data={
            "after_days": "0", "condition": "no_click", "action": "visit"})
        assert bad.status_code == 422 and "after_days" in bad.text
        added = api.client.post(f"/marketing/campaigns/{cid}/steps", data={
            "after_days": "3", "condition": "no_click", "action": "visit"}, follow_redirects=False)
        assert added.status_code == 303
        with api.kit.uow_factory() as u:
            assert [s.position for s in u.session.execute(select(JourneyStepRow).where(
                JourneyStepRow.campaign_id == cid)).scalars()] == [1]
        assert "did not click" in api.client.get(f"/marketing/campaigns/{cid}").text
        # 6 messages at 0.05 cost 0.30, over the budget of 0.10: refused, saying so
        refused = api.client.post(f"/marketing/campaigns/{cid}/launch")
        assert refused.status_code == 409 and "budget" in refused.text
        calendar = api.client.get(f"/marketing/calendar?month={noon.strftime('%Y-%m')}")
        assert calendar.status_code == 200 and "Retail" in calendar.text and "/marketing/campaigns/" in calendar.text
        assert api.client.get("/marketing/calendar?month=2026-13").status_code == 422
        api.client.cookies.set("ml_lang", "zh_CN")
        zh = api.client.get(f"/marketing/calendar?month={noon.strftime('%Y-%m')}").text
        assert "营销日历" in zh and "已花费" in zh
        assert "客户旅程" in api.client.get(f"/marketing/campaigns/{cid}").text
        api.client.cookies.clear()

    def test_the_report_shows_the_funnel_per_step_and_per_variant(self, api: Api) -> None:
        who = api.kit.principal("marketer")
        noon = _noon() - timedelta(days=5)
        service.save_segment(api.kit.uow_factory(), who, "grown-ups", "age >= 25", at=noon)
        camp = service.create_campaign(api.kit.uow_factory(), who, service.CampaignSpec(
            name="ab-journey", channel="sms", segment_name="grown-ups", control_share_bp=2000,
            cap=FrequencyCap(5, 30), variants=(Variant("A", 50, "A {{ link }}"), Variant("B", 50, "B {{ link }}"))),
            at=noon)
        service.add_journey_step(api.kit.uow_factory(), who, camp.id, StepSpec(2, "no_click", "visit"))
        frame = pl.DataFrame({"customer_id": list(range(900001, 900041)), "age": [30] * 40,
                              "marketing_consent": [True] * 40, "current_days_past_due": [0] * 40})
        service.launch_campaign(api.kit.uow_factory(), who, camp.id, frame, at=noon)
        done = service.advance_journeys(api.kit.uow_factory(), who, now=noon + timedelta(days=2),
                                        consent=lambda _u, _w, ids: set(ids))
        assert done.visit_tasks > 0
        sign_in(api, "marketer")
        report = api.client.get(f"/marketing/campaigns/{camp.id}/report").text
        assert 'data-testid="step-funnel"' in report and 'data-testid="variants"' in report
        assert "Funnel per journey step" in report
        api.client.cookies.set("ml_lang", "zh_CN")
        zh = api.client.get(f"/marketing/campaigns/{camp.id}/report")
        assert zh.status_code == 200 and "各旅程步骤漏斗" in zh.text and "申请率（95% 区间）" in zh.text
        api.client.cookies.clear()

    def test_a_visit_step_goes_to_the_customers_officer(self, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
        noon = _noon() - timedelta(days=3)
        monkeypatch.setattr("microlend.web.marketing._now", lambda: noon)
        _, officer = api.kit.user("credit_officer")
        ids = customers(api, 4, officer_user_id=officer.user_id)
        sign_in(api, "marketer")
        api.client.post("/marketing/segments", data={"name": "mine", "expression": "age >= 18"})
        cid = created_id(api.client.post("/marketing/campaigns", data={
            "name": "then-visit", "target": "segment:mine", "channel": "sms", "control_pct": "0"},
            follow_redirects=False))
        api.client.post(f"/marketing/campaigns/{cid}/steps", data={
            "after_days": "2", "condition": "no_click", "action": "visit"})
        assert api.client.post(f"/marketing/campaigns/{cid}/launch").status_code == 200
        done = service.advance_journeys(api.kit.uow_factory(), api.kit.principal("marketer"),
                                        now=noon + timedelta(days=2))
        assert done.visit_tasks == len(reachable(api, ids))
        with api.kit.uow_factory() as u:
            officers = set(u.session.execute(select(VisitTaskRow.officer_user_id).where(
                VisitTaskRow.campaign_id == cid)).scalars())
        assert officers == {officer.user_id}
        api.client.cookies.clear()

    def test_another_banks_campaign_and_a_credit_officer_are_kept_out(self, api: Api, other: Api) -> None:
        sign_in(other, "marketer")
        other.client.post("/marketing/segments", data={"name": "all", "expression": "age >= 18"})
        cid = created_id(other.client.post("/marketing/campaigns", data={
            "name": "theirs", "target": "segment:all", "channel": "sms", "department": "Theirs"},
            follow_redirects=False))
        sign_in(api, "marketer")
        assert api.client.post(f"/marketing/campaigns/{cid}/steps", data={
            "after_days": "3", "condition": "no_click", "action": "visit"}).status_code == 404
        assert "Theirs" not in api.client.get("/marketing/calendar").text
        sign_in(api, "credit_officer")
        assert api.client.get("/marketing/calendar").status_code == 403
        api.client.cookies.clear()
        other.client.cookies.clear()
