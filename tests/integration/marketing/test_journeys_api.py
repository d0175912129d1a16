"""Journeys, variants, budgets and the calendar through the API on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from microlend.api import errors
from microlend.api.deps import get_principal
from microlend.api.routers.marketing import router
from microlend.core.db import make_session_factory
from microlend.core.identity import Principal, Role
from microlend.marketing import service

from .conftest import Bank
from .test_journeys import NOON, customers, everyone


@pytest.fixture
def client(mbank: Bank) -> Iterator[tuple[TestClient, dict[str, Principal]]]:
    app = FastAPI()
    app.state.session_factory = make_session_factory(mbank.engine)
    errors.install(app)
    app.include_router(router)
    who = {"current": mbank.who()}
    app.dependency_overrides[get_principal] = lambda: who["current"]
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c, who


def test_a_campaign_with_variants_budget_and_a_step(mbank: Bank, client: tuple[TestClient, dict[str, Principal]]
                                                    ) -> None:
    c, who = client
    assert c.post("/api/v1/marketing/segments", json={"name": "all", "expression": "age >= 18"}).status_code == 201
    one = c.post("/api/v1/marketing/campaigns", json={
        "name": "one", "channel": "sms", "segment_name": "all", "variants": [{"key": "A", "template": "x"}]})
    assert one.status_code == 422 and "variants" in one.text
    r = c.post("/api/v1/marketing/campaigns", json={
        "name": "ab", "channel": "sms", "segment_name": "all", "department": "Retail", "product": "Micro",
        "budget": "50.00", "variants": [{"key": "A", "weight": 60, "template": "A {{ link }}"},
                                        {"key": "B", "weight": 40, "template": "B {{ link }}"}]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["budget"] == "50.00" and [v["key"] for v in body["variants"]] == ["A", "B"]
    cid = body["id"]
    assert c.post(f"/api/v1/marketing/campaigns/{cid}/steps", json={
        "after_days": 0, "condition": "no_click", "action": "visit"}).status_code == 422
    step = c.post(f"/api/v1/marketing/campaigns/{cid}/steps", json={
        "after_days": 2, "condition": "clicked_no_application", "action": "push"})
    assert step.status_code == 201 and step.json()["position"] == 1
    service.launch_campaign(mbank.uow(), mbank.who(), cid, customers(100), at=NOON)
    assert c.post(f"/api/v1/marketing/campaigns/{cid}/steps", json={
        "after_days": 2, "condition": "no_click", "action": "push"}).status_code == 409
    service.advance_journeys(mbank.uow(), mbank.who(), now=NOON + timedelta(days=2), consent=everyone)
    steps = c.get(f"/api/v1/marketing/campaigns/{cid}/steps").json()
    assert steps[0]["status"] == "done" and steps[0]["contacted"] == 0  # nobody clicked
    funnel = c.get(f"/api/v1/marketing/campaigns/{cid}/step-funnel").json()
    assert [f["position"] for f in funnel] == [0, 1]
    variants = c.get(f"/api/v1/marketing/campaigns/{cid}/variants").json()
    assert [v["key"] for v in variants] == ["A", "B"] and variants[1]["difference"] is not None
    cal = c.get("/api/v1/marketing/calendar", params={"month": NOON.strftime("%Y-%m"), "department": "Retail"})
    assert cal.status_code == 200 and [x["campaign_id"] for x in cal.json()] == [cid]
    treated = sum(v["treated"] for v in variants)
    assert Decimal(cal.json()[0]["spent"]) == Decimal("0.05") * treated and cal.json()[0]["over"] is False
    assert c.get("/api/v1/marketing/calendar", params={"month": "2026-3"}).status_code == 422
    who["current"] = mbank.who(Role.COLLECTOR)
    assert c.get("/api/v1/marketing/calendar").status_code == 403
    assert c.get(f"/api/v1/marketing/campaigns/{cid}/steps").status_code == 403
