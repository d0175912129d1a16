from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from microlend.api import errors
from microlend.api.deps import get_principal
from microlend.api.routers.marketing import router, tracking_router
from microlend.core.db import make_session_factory
from microlend.core.identity import Principal, Role
from microlend.marketing.tables import OutboxRow, TrackingEventRow

from .conftest import Bank
from .test_marketing_campaign_flow import NOON, _launch


@pytest.fixture
def client(mbank: Bank) -> Iterator[tuple[TestClient, dict[str, Principal]]]:
    app = FastAPI()
    app.state.session_factory = make_session_factory(mbank.engine)
    errors.install(app)
    app.include_router(router)
    app.include_router(tracking_router)
    who = {"current": mbank.who()}
    app.dependency_overrides[get_principal] = lambda: who["current"]
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c, who


def test_segments_and_campaigns_through_the_api(client: tuple[TestClient, dict[str, Principal]]) -> None:
    c, _ = client
    r = c.post("/api/v1/marketing/segments/check", json={"expression": "age > 1 and salary > 2"})
    assert r.status_code == 422 and "salary" in r.text
    r = c.post("/api/v1/marketing/segments", json={"name": "adults", "expression": "age >= 25"})
    assert r.status_code == 201 and r.json()["version"] == 1
    r = c.post("/api/v1/marketing/campaigns", json={"name": "c1", "channel": "sms", "segment_name": "adults"})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert c.get(f"/api/v1/marketing/campaigns/{cid}").json()["status"] == "draft"
    assert c.get(f"/api/v1/marketing/campaigns/{cid}/report").status_code == 409  # not launched yet
    r = c.post("/api/v1/marketing/campaigns", json={"name": "c2", "channel": "fax", "segment_name": "adults"})
    assert r.status_code == 422
    r = c.post("/api/v1/marketing/campaigns", json={"name": "c3", "channel": "sms", "segment_name": "adults",
                                                    "status": "launched"})
    assert r.status_code == 422  # a client cannot set the status


def test_reports_tasks_and_roles(mbank: Bank, client: tuple[TestClient, dict[str, Principal]]) -> None:
    c, who = client
    summary = _launch(mbank, "api-visits", channel="visit", share=2000, at=NOON)
    assert c.get(f"/api/v1/marketing/campaigns/{summary.campaign_id}/report").json()["comparisons"]
    page = c.get(f"/api/v1/marketing/campaigns/{summary.campaign_id}/report.html")
    assert page.status_code == 200 and "data:image/png;base64," in page.text
    who["current"] = mbank.who(Role.CREDIT_OFFICER, user_id=101)
    tasks = c.get("/api/v1/marketing/visit-tasks").json()
    assert tasks and {t["officer_user_id"] for t in tasks} == {101}
    assert all(t["due_at"] and t["status"] == "open" for t in tasks)  # due the campaign's visit days on
    closed = c.post(f"/api/v1/marketing/visit-tasks/{tasks[0]['id']}/close", json={"outcome": "visited"})
    assert closed.status_code == 204
    assert c.post("/api/v1/marketing/segments", json={"name": "x", "expression": "age > 1"}).status_code == 403
    who["current"] = mbank.who(Role.BORROWER)
    assert c.get("/api/v1/marketing/campaigns").status_code == 403


def test_tracked_link_records_a_click(mbank: Bank, client: tuple[TestClient, dict[str, Principal]]) -> None:
    c, _ = client
    summary = _launch(mbank, "api-sms", share=0, at=NOON)
    with mbank.uow() as u:
        token, customer = u.session.execute(select(OutboxRow.token, OutboxRow.customer_id).where(
            OutboxRow.campaign_id == summary.campaign_id).limit(1)).one()
    r = c.get(f"/t/{token}", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/b/apply"
    assert c.get("/t/not-a-real-token", follow_redirects=False).status_code == 307
    with mbank.uow() as u:
        clicks = u.session.execute(select(TrackingEventRow.customer_id).where(
            TrackingEventRow.token == token, TrackingEventRow.kind == "clicked")).scalars().all()
    assert clicks == [customer]
