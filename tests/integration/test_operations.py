"""What an operator relies on: /readyz tells a database that is unreachable or behind this version's schema,
/metrics shows requests, decisions and close of business to a scraper (and to nobody else), and every log
line of a request is JSON carrying its request id, echoed to the caller."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text
from tests.conftest import Api, TenantKit
from tests.conftest import test_settings as settings_for

from microlend.api.app import create_app
from microlend.core.migrate import code_heads
from microlend.demo import identities

TOKEN = "scraper-token-0123456789"


def app_on(db_url: str, engine: Engine | None = None, **settings: Any) -> FastAPI:
    update = {"login_client_max_failures": 1_000_000, **settings}
    return create_app(settings_for(db_url).model_copy(update=update), engine=engine)


# --- readiness -----------------------------------------------------------------------------------------------


def test_a_migrated_database_is_ready(app_client: TestClient) -> None:
    r = app_client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready", "checks": {"database": {"ok": True}, "migrations": {"ok": True}}}
    assert app_client.get("/healthz").json()["status"] == "ok"


def test_a_module_behind_its_head_is_named_with_503(fresh_db_url: str, fresh_engine: Engine) -> None:
    with fresh_engine.begin() as c:
        stamped = sorted(str(v) for v in c.execute(text("SELECT version_num FROM alembic_version")).scalars())
        assert set(stamped) <= set(code_heads())
        dropped = next(v for v in stamped if v.startswith("marketing_"))
        c.execute(text("DELETE FROM alembic_version WHERE version_num = :v"), {"v": dropped})
    with TestClient(app_on(fresh_db_url, fresh_engine)) as client:
        r = client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["migrations"]["ok"] is False
    assert body["checks"]["migrations"]["behind"] == ["marketing"]
    assert "microlend db upgrade" in body["checks"]["migrations"]["detail"]


def test_a_revision_from_a_newer_version_is_not_ready(fresh_db_url: str, fresh_engine: Engine) -> None:
    with fresh_engine.begin() as c:
        c.execute(text("INSERT INTO alembic_version (version_num) VALUES ('marketing_9999')"))
    with TestClient(app_on(fresh_db_url, fresh_engine)) as client:
        r = client.get("/readyz")
    assert r.status_code == 503
    assert "marketing_9999" in r.json()["checks"]["migrations"]["detail"]


def test_an_unreachable_database_is_503_without_its_address() -> None:
    url = "postgresql://nobody:secret-pw@127.0.0.1:9/nowhere"
    with TestClient(app_on(url)) as client:
        r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["database"] == {"ok": False, "detail": "not reachable"}
    assert r.json()["checks"]["migrations"]["ok"] is False
    assert "127.0.0.1" not in r.text and "secret-pw" not in r.text


# --- metrics -------------------------------------------------------------------------------------------------


def sample(page: str, name: str, **labels: str) -> float:
    """The value of one series on a /metrics page (0 if it is not there yet)."""
    for family in text_string_to_metric_families(page):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


@pytest.fixture(scope="module")
def scraped(db_url: str, engine: Engine) -> Iterator[TestClient]:
    with TestClient(app_on(db_url, engine, metrics_token=TOKEN), raise_server_exceptions=False) as client:
        yield client


def scrape(client: TestClient) -> str:
    r = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


def _good_applicant(api: Api, token: dict[str, str]) -> int:
    import random

    rng = random.Random(7)
    birth = identities.birth_date_for_age(rng, 41, date(2026, 1, 1))
    r = api.client.post("/api/v1/customers", headers=token, json={
        "kind": "person", "name": "王运维", "id_number": identities.resident_id(rng, birth),
        "phone": identities.mobile(rng), "industry": "retail", "branch": "城关支行",
        "attributes": {"annual_turnover": "600000", "years_in_business": 8}})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_requests_decisions_and_close_of_business_show_on_metrics(scraped: TestClient, bank: TenantKit) -> None:
    api = Api(scraped, bank)
    officer, admin = api.token("credit_officer"), api.token("admin")
    before = scrape(scraped)

    customer_id = _good_applicant(api, officer)
    r = scraped.post("/api/v1/applications", headers=officer, json={
        "customer_id": customer_id, "product_code": "EP-STD", "amount": "20000.00", "term_months": 12,
        "purpose": "进货"})
    assert r.status_code == 201, r.text
    outcome = r.json()["status"]
    assert scraped.get(f"/api/v1/customers/{customer_id}", headers=officer).status_code == 200
    r = scraped.post("/api/v1/cob/runs", headers=admin, json={})
    assert r.status_code == 201, r.text

    after = scrape(scraped)
    route = "/api/v1/customers/{customer_id}"
    count = "microlend_http_request_duration_seconds_count"
    assert sample(after, count, method="GET", route=route, status_class="2xx") \
        == sample(before, count, method="GET", route=route, status_class="2xx") + 1
    assert f'route="/api/v1/customers/{customer_id}"' not in after  # a template, never a raw path
    decisions = "microlend_decisions_total"
    assert sample(after, decisions, outcome=outcome, automatic="true") \
        == sample(before, decisions, outcome=outcome, automatic="true") + 1
    assert sample(after, "microlend_domain_events_total", event_type="ApplicationDecided") >= 1
    cob = "microlend_job_duration_seconds_count"
    assert sample(after, cob, job="close_of_business") == sample(before, cob, job="close_of_business") + 1
    assert sample(after, "microlend_job_last_success_timestamp_seconds", job="close_of_business") > 0
    for job in ("close_of_business", "event_delivery", "marketing_dispatch"):
        assert f'microlend_job_failures_total{{job="{job}"}}' in after
    assert "王运维" not in after and "城关支行" not in after


def test_metrics_need_the_scrapers_token(scraped: TestClient) -> None:
    assert scraped.get("/metrics").status_code == 401
    assert scraped.get("/metrics", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
    assert scraped.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_without_a_token_metrics_answer_only_this_machine(db_url: str, engine: Engine) -> None:
    app = app_on(db_url, engine)
    with TestClient(app, client=("203.0.113.9", 40000)) as remote:
        assert remote.get("/metrics").status_code == 403
    with TestClient(app, client=("127.0.0.1", 40000)) as local:
        assert local.get("/metrics").status_code == 200
    production = app_on(db_url, engine, mode="production")
    with TestClient(production, client=("127.0.0.1", 40000)) as local:
        assert local.get("/metrics").status_code == 403


# --- logs ----------------------------------------------------------------------------------------------------


def _json_lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_request_log_lines_are_json_with_the_request_id(
    db_url: str, engine: Engine, bank: TenantKit, capsys: pytest.CaptureFixture[str],
) -> None:
    with TestClient(app_on(db_url, engine, log_format="json")) as client:
        api = Api(client, bank)
        headers = api.token("credit_officer")
        _, who = bank.user("credit_officer")
        capsys.readouterr()
        r = client.get("/api/v1/customers", headers={**headers, "X-Request-ID": "lb-4711.a"})
        assert r.headers["X-Request-ID"] == "lb-4711.a"
        lines = _json_lines(capsys.readouterr().err)
        assert lines, "no JSON log line was written"
        assert all(line.get("request_id") == "lb-4711.a" for line in lines)
        done = next(line for line in lines if line["logger"] == "microlend.request")
        assert done["route"] == "/api/v1/customers" and done["status"] == 200 and done["method"] == "GET"
        assert done["tenant_id"] == bank.tenant.id and isinstance(done["user_id"], int)
        assert who.tenant_id == done["tenant_id"]

        r = client.get("/api/v1/customers/13812345678", headers={"X-Request-ID": "bad id <script>"})
        echoed = r.headers["X-Request-ID"]
        assert echoed != "bad id <script>" and len(echoed) == 32
        line = next(x for x in _json_lines(capsys.readouterr().err) if x["logger"] == "microlend.request")
        assert line["request_id"] == echoed and "tenant_id" not in line
        assert "13812345678" not in json.dumps(line) and "138****5678" in line["message"]


def test_an_unexpected_error_is_logged_and_answered_with_the_request_id(
    db_url: str, engine: Engine, capsys: pytest.CaptureFixture[str],
) -> None:
    app = app_on(db_url, engine, log_format="json")

    @app.get("/api/v1/test-only/boom")
    def boom() -> None:
        raise RuntimeError("the disk is full")

    with TestClient(app, raise_server_exceptions=False) as client:
        capsys.readouterr()
        r = client.get("/api/v1/test-only/boom", headers={"X-Request-ID": "trace-500"})
    assert r.status_code == 500 and r.headers["X-Request-ID"] == "trace-500"
    assert "trace-500" in r.json()["detail"] and "disk" not in r.text
    lines = _json_lines(capsys.readouterr().err)
    error = next(x for x in lines if x["message"].startswith("unexpected error"))
    assert error["request_id"] == "trace-500" and "RuntimeError: the disk is full" in error["exception"]
    assert next(x for x in lines if x["logger"] == "microlend.request")["status"] == 500
