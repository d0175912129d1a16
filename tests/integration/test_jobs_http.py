"""The bank's calendar over HTTP: operations see the jobs and runs and ask for a run again (API and page, in
Chinese and English); other roles are refused, another bank's job is not found, and bad input is a 4xx."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from tests.battery import audit_count
from tests.conftest import Api, sign_in_page

from microlend import worker
from microlend.batch.spark import spark_unavailable
from microlend.core import jobs
from microlend.servicing import cob_engine


def _calendar(api: Api) -> None:
    with api.kit.uow_factory() as u:
        jobs.ensure_calendar(u.session, api.kit.tenant.id, worker.DEFAULT_CALENDAR, starting=date(2026, 3, 1))
        u.commit()


def _sign_in(api: Api, *roles: str) -> None:
    username, _ = api.kit.user(*roles)
    sign_in_page(api.client, username, next="/operations/jobs")


def test_operations_see_the_calendar_and_ask_for_a_run_again(api: Api) -> None:
    _calendar(api)
    ops = api.token("operations")
    listed = api.client.get("/api/v1/jobs", headers=ops)
    assert listed.status_code == 200
    by_kind = {j["kind"]: j for j in listed.json()}
    assert set(by_kind) == {"close_of_business", "provisioning", "reminders", "messages", "early_warning",
                           "model_monitoring", "data_refresh", "journeys", "audit_check"}
    assert by_kind["provisioning"]["next_business_date"] == "2026-03-31"
    assert by_kind["close_of_business"]["next_run_at"].startswith("2026-03-01T15:00:00")  # 23:00 in Shanghai
    cob = by_kind["close_of_business"]["id"]
    before = audit_count(api)
    r = api.client.post(f"/api/v1/jobs/{cob}/rerun", json={"business_date": "2026-03-01"}, headers=ops)
    assert r.status_code == 202 and r.json()["rerun_date"] == "2026-03-01"
    assert audit_count(api) == before + 1
    r = api.client.post(f"/api/v1/jobs/{cob}/rerun", json={"business_date": "2026-04-01"}, headers=ops)
    assert r.status_code == 422 and "next business date" in r.text
    assert api.client.post(f"/api/v1/jobs/{cob}/rerun", json={"when": "now"}, headers=ops).status_code == 422
    assert api.client.get("/api/v1/jobs/runs?status=maybe", headers=ops).status_code == 422
    assert api.client.get("/api/v1/jobs/runs", headers=ops).json() == []
    assert api.client.get("/api/v1/jobs", headers=api.token("marketer")).status_code == 403
    assert api.client.get("/api/v1/jobs").status_code == 401


def test_another_bank_cannot_see_or_rerun_the_jobs(api: Api, new_tenant) -> None:  # type: ignore[no-untyped-def]
    _calendar(api)
    job = api.client.get("/api/v1/jobs", headers=api.token("operations")).json()[0]
    other = Api(api.client, new_tenant())
    theirs = other.token("operations")
    assert other.client.get("/api/v1/jobs", headers=theirs).json() == []
    assert other.client.post(f"/api/v1/jobs/{job['id']}/rerun", json={}, headers=theirs).status_code == 404
    again = api.client.get("/api/v1/jobs", headers=api.token("operations")).json()[0]
    assert again["rerun_date"] is None


def test_the_operations_page_in_both_languages(api: Api) -> None:
    _calendar(api)
    api.client.cookies.clear()
    _sign_in(api, "operations")
    api.client.cookies.set("ml_lang", "zh_CN")
    page = api.client.get("/operations/jobs")
    assert page.status_code == 200
    assert "作业日历" in page.text and "日终批处理" in page.text and "月末拨备计提" in page.text
    assert "还款提醒" in page.text and "Close of business" not in page.text
    api.client.cookies.set("ml_lang", "en")
    page = api.client.get("/operations/jobs")
    assert "Scheduled jobs" in page.text and "Month-end provisioning" in page.text and "日终" not in page.text
    job = api.client.get("/api/v1/jobs", headers=api.token("operations")).json()[0]
    r = api.client.post(f"/operations/jobs/{job['id']}/rerun", data={"business_date": "2026-03-01"},
                        follow_redirects=False)
    assert r.status_code == 303
    assert "will run again" in api.client.get(r.headers["location"]).text
    bad = api.client.post(f"/operations/jobs/{job['id']}/rerun", data={"business_date": "yesterday"})
    assert bad.status_code == 422 and "is not a date" in bad.text
    api.client.cookies.clear()
    _sign_in(api, "marketer")
    assert api.client.get("/operations/jobs").status_code == 403
    api.client.cookies.clear()


def test_a_bank_words_its_reminders_in_both_languages(api: Api) -> None:
    admin = api.token("admin")
    shipped = api.client.get("/api/v1/reminders/settings", headers=api.token("operations")).json()
    assert shipped["days_before"] == [3] and shipped["quiet_start"].startswith("21:00")
    body = {"days_before": [3], "overdue_days": [1, 10],
            "templates": {"before_due": {"zh_CN": "【{bank}】{due_date}应还{amount}元",
                                         "en": "{amount} due {due_date}"}}}
    r = api.client.put("/api/v1/reminders/settings", json=body, headers=admin)
    assert r.status_code == 200 and r.json()["overdue_days"] == [1, 10]
    assert api.client.get("/api/v1/reminders/settings", headers=admin).json()["templates"] == body["templates"]
    broken = {**body, "templates": {"overdue": {"en": "{amount} overdue since {since}"}}}
    r = api.client.put("/api/v1/reminders/settings", json=broken, headers=admin)
    assert r.status_code == 422 and "templates.overdue.en" in r.text
    r = api.client.put("/api/v1/reminders/settings", json={**body, "timezone": "Moon/Base"}, headers=admin)
    assert r.status_code == 422 and "Moon/Base" in r.text
    assert api.client.put("/api/v1/reminders/settings", json=body, headers=api.token("operations")).status_code == 403
    assert api.client.get("/api/v1/reminders/settings", headers=admin).json()["overdue_days"] == [1, 10]


def _without_java(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """This server as one without Java: no JAVA_HOME, nothing on the PATH, no Spark Connect server."""
    for name in ("JAVA_HOME", "MICROLEND_SPARK_REMOTE", "MICROLEND_SPARK_MASTER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))


def test_how_close_of_business_runs_is_read_by_operations_and_set_by_an_administrator(
    api: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ops, admin = api.token("operations"), api.token("admin")
    assert api.client.get("/api/v1/cob/engine", headers=ops).json() == {"engine": "database"}
    assert api.client.get("/api/v1/cob/engine", headers=api.token("marketer")).status_code == 403
    assert api.client.get("/api/v1/cob/engine").status_code == 401
    before = audit_count(api)
    assert api.client.put("/api/v1/cob/engine", json={"engine": "local"}, headers=ops).status_code == 403
    r = api.client.put("/api/v1/cob/engine", json={"engine": "local"}, headers=admin)
    assert r.status_code == 200 and r.json() == {"engine": "local"}
    assert audit_count(api) == before + 1
    assert api.client.get("/api/v1/cob/engine", headers=ops).json() == {"engine": "local"}
    r = api.client.put("/api/v1/cob/engine", json={"engine": "hadoop"}, headers=admin)
    assert r.status_code == 422 and "'hadoop' is not an engine; choose database (no engine), local or spark" in r.text
    assert api.client.put("/api/v1/cob/engine", json={"engine": ""}, headers=admin).status_code == 422
    assert api.client.put("/api/v1/cob/engine", json={"engine": "local", "now": True}, headers=admin
                          ).status_code == 422
    with monkeypatch.context() as m:
        _without_java(m, tmp_path)
        r = api.client.put("/api/v1/cob/engine", json={"engine": "spark"}, headers=admin)
        assert r.status_code == 422 and "Spark cannot run on this server" in r.text and "Java 17" in r.text
    assert api.client.get("/api/v1/cob/engine", headers=ops).json() == {"engine": "local"}
    assert audit_count(api) == before + 1  # nothing refused was recorded as a change
    if spark_unavailable() is None:  # pyspark and Java here: Spark may be chosen
        assert api.client.put("/api/v1/cob/engine", json={"engine": "spark"}, headers=admin).json() == {
            "engine": "spark"}
    r = api.client.put("/api/v1/cob/engine", json={"engine": "database"}, headers=admin)
    assert r.json() == {"engine": "database"}
    with api.kit.uow_factory() as u:
        assert cob_engine.bank_cob_engine(u.session, api.kit.tenant.id) == cob_engine.IN_DATABASE


def test_the_close_of_business_engine_on_the_operations_page_in_both_languages(
    api: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    api.client.cookies.clear()
    _sign_in(api, "admin")
    api.client.cookies.set("ml_lang", "zh_CN")
    page = api.client.get("/operations/jobs")
    assert page.status_code == 200 and "日终批处理的运行方式" in page.text
    assert '<option value="database" selected>数据库内</option>' in page.text and "本地引擎" in page.text
    before = audit_count(api)
    r = api.client.post("/operations/cob-engine", data={"engine": "local"}, follow_redirects=False)
    assert r.status_code == 303
    saved = api.client.get(r.headers["location"]).text
    assert "已保存" in saved and '<option value="local" selected>' in saved
    assert audit_count(api) == before + 1
    bad = api.client.post("/operations/cob-engine", data={"engine": "hadoop"})
    assert bad.status_code == 422 and "请选择日终批处理的运行方式" in bad.text
    with monkeypatch.context() as m:
        _without_java(m, tmp_path)
        refused = api.client.post("/operations/cob-engine", data={"engine": "spark"})
        assert refused.status_code == 422 and "本服务器无法运行 Spark" in refused.text and "openjdk-17" in refused.text
        api.client.cookies.set("ml_lang", "en")
        refused = api.client.post("/operations/cob-engine", data={"engine": "spark"})
        assert refused.status_code == 422 and "Spark cannot run on this server: the Spark engine needs Java 17" in (
            refused.text)
    assert "How close of business runs" in api.client.get("/operations/jobs").text
    assert api.client.get("/api/v1/cob/engine", headers=api.token("operations")).json() == {"engine": "local"}
    assert audit_count(api) == before + 1
    api.client.cookies.clear()
    _sign_in(api, "operations")  # sees how it runs, may not change it
    api.client.cookies.set("ml_lang", "en")
    page = api.client.get("/operations/jobs")
    assert "Local engine (DuckDB, in the worker)" in page.text and 'action="/operations/cob-engine"' not in page.text
    r = api.client.post("/operations/cob-engine", data={"engine": "database"})
    assert r.status_code == 403 and "You may not change how close of business runs." in r.text
    assert api.client.get("/api/v1/cob/engine", headers=api.token("operations")).json() == {"engine": "local"}
    api.client.cookies.clear()
