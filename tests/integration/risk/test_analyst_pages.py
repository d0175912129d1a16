"""The risk analyst's pages through HTTP: datasets with a contract, the registry with four eyes, training
from a form, the monitoring page with its charts, in zh-CN and English."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import Api, TenantKit, sign_in_page

from microlend.core.identity import Principal
from microlend.risk import registry
from microlend.risk.artefacts import load_model
from microlend.risk.datasets import german_credit
from microlend.risk.development import develop_model

CSV = "id,age,segment,outcome\n1,34,retail,good\n2,51,farming,bad\n3,29,retail,good\n4,45,trade,good\n"
BROKEN = CSV + "5,17,retail,good\n"
CONTRACT = {"name": "loans", "columns": [
    {"name": "id", "dtype": "int"}, {"name": "age", "dtype": "int", "min": 18, "max": 70},
    {"name": "segment", "dtype": "string"}, {"name": "outcome", "dtype": "string"}]}


@pytest.fixture
def api(app_client: Any, new_tenant: Callable[[], TenantKit]) -> Api:
    return Api(app_client, new_tenant())


@pytest.fixture(autouse=True)
def _data_dir(app_client: Any, tmp_path: Path) -> Iterator[Path]:
    app = app_client.app
    original = app.state.settings
    app.state.settings = original.model_copy(update={"data_dir": tmp_path})
    yield tmp_path
    app.state.settings = original


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "scorecard"
    develop_model(german_credit().frame, target="creditability", bad="bad", kind="scorecard", out_dir=out,
                  created_at=datetime(2026, 1, 5, tzinfo=UTC), benchmark=False, name="german", seed=11)
    return out


def browser(api: Api, *roles: str, lang: str = "en") -> tuple[TestClient, Principal]:
    """A signed-in staff member with their own cookies."""
    username, who = api.kit.user(*roles)
    client = TestClient(api.client.app, raise_server_exceptions=False)
    client.cookies.set("ml_lang", lang)
    sign_in_page(client, username)
    return client, who


def register(api: Api, trained: Path, trainer: Principal) -> int:
    root: Path = api.client.app.state.settings.data_dir  # type: ignore[attr-defined]
    return registry.register_model(api.kit.uow_factory(), trainer, trained, name="german",
                                   store_root=root / "models").id


def test_the_pages_need_a_sign_in(api: Api) -> None:
    client = TestClient(api.client.app)
    for path in ("/analyst/datasets", "/analyst/models", "/analyst/models/1", "/analyst/models/1/monitoring"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path


def test_the_menu_shows_the_analyst_pages_only_to_those_allowed(api: Api) -> None:
    analyst, _ = browser(api, "risk_analyst")
    page = analyst.get("/analyst/models").text
    assert 'href="/analyst/datasets"' in page and 'href="/analyst/models"' in page
    marketer, _ = browser(api, "marketer")
    assert marketer.get("/analyst/datasets").status_code == 403
    assert marketer.get("/analyst/models").status_code == 403


class TestDatasets:
    def test_an_upload_lands_on_the_dataset_page_with_its_quality_report(self, api: Api) -> None:
        client, _ = browser(api, "risk_analyst")
        r = client.post("/analyst/datasets", data={"name": "loans", "contract": json.dumps(CONTRACT)},
                        files={"file": ("loans.csv", CSV.encode(), "text/csv")}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/analyst/datasets/loans?version=1")
        page = client.get(r.headers["location"]).text
        assert 'data-testid="imported"' in page and "Imported: 4 rows." in page
        assert "/analyst/datasets/loans/quality?version=1" in page
        quality = client.get("/analyst/datasets/loans/quality?version=1&target=outcome&bad=bad")
        assert quality.status_code == 200 and "data:image/png;base64," in quality.text
        listing = client.get("/analyst/datasets").text
        assert 'href="/analyst/datasets/loans"' in listing

    def test_the_quality_report_reads_the_bad_value_of_the_target_and_prints_plain_figures(self, api: Api) -> None:
        """With the target's contract naming "bad" among its values, the report's bad rate is the real one
        (30 % of the German credit data), not 0 % of a blank bad value; figures are never 1.842e+04."""
        client, _ = browser(api, "risk_analyst")
        contract = {"name": "loans", "target": "outcome", "columns": [
            *CONTRACT["columns"][:3], {"name": "outcome", "dtype": "string", "categories": ["bad", "good"]}]}
        rows = "".join(f"{i},{20 + i % 40},retail,{'bad' if i % 10 < 3 else 'good'}\n" for i in range(5, 25))
        wide = CSV.replace("1,34", "18420,34") + rows
        r = client.post("/analyst/datasets", data={"name": "loans", "contract": json.dumps(contract)},
                        files={"file": ("loans.csv", wide.encode(), "text/csv")}, follow_redirects=False)
        assert r.status_code == 303, r.text
        page = client.get(r.headers["location"]).text
        assert "target=outcome&amp;bad=bad" in page
        quality = client.get("/analyst/datasets/loans/quality?version=1&target=outcome").text
        assert "bad rate 29.17%" in quality  # 7 of 24
        assert "18,420" in quality and "e+04" not in quality

    def test_a_versions_quality_report_is_built_once_and_read_after(self, api: Api, _data_dir: Path) -> None:
        """A dataset version never changes: its report is stored on the first view and later views read it
        (here a marked copy of the stored report comes back); another target is another report."""
        client, _ = browser(api, "risk_analyst")
        r = client.post("/analyst/datasets", data={"name": "loans", "contract": json.dumps(CONTRACT)},
                        files={"file": ("loans.csv", CSV.encode(), "text/csv")}, follow_redirects=False)
        assert r.status_code == 303, r.text
        address = "/analyst/datasets/loans/quality?version=1&target=outcome&bad=bad"
        first = client.get(address)
        assert first.status_code == 200 and "data:image/png;base64," in first.text
        [stored] = list(_data_dir.rglob("*.quality-*.html"))
        assert stored.read_text(encoding="utf-8") == first.text
        stored.write_text(first.text.replace("</body>", "<p>read from the store</p></body>"), encoding="utf-8")
        assert "read from the store" in client.get(address).text
        assert "read from the store" not in client.get("/analyst/datasets/loans/quality?version=1").text
        assert len(list(_data_dir.rglob("*.quality-*.html"))) == 2

    def test_a_broken_contract_lists_the_rows_at_fault_and_stores_nothing(self, api: Api) -> None:
        client, _ = browser(api, "risk_analyst")
        r = client.post("/analyst/datasets", data={"name": "loans", "contract": json.dumps(CONTRACT)},
                        files={"file": ("loans.csv", BROKEN.encode(), "text/csv")})
        assert r.status_code == 422
        table = r.text.split('data-testid="violations"')[1].split("</table>")[0]
        assert re.search(r"<td class=\"num\">5</td><td>age</td>", table)
        assert "No datasets yet" in r.text

    def test_valid_only_keeps_the_good_rows(self, api: Api) -> None:
        client, _ = browser(api, "risk_analyst")
        r = client.post("/analyst/datasets", data={"name": "loans", "contract": json.dumps(CONTRACT),
                                                   "valid_only": "true"},
                        files={"file": ("loans.csv", BROKEN.encode(), "text/csv")})
        assert r.status_code == 200 and "1 rows broke the contract and were set aside." in r.text

    def test_in_chinese(self, api: Api) -> None:
        client, _ = browser(api, "risk_analyst", lang="zh_CN")
        page = client.get("/analyst/datasets").text
        assert "数据集" in page and "上传数据集" in page and "数据契约" in page


class TestRegistryPages:
    def test_the_trainer_is_told_about_four_eyes_and_a_second_analyst_approves_and_promotes(
            self, api: Api, trained_dir: Path) -> None:
        a, a_who = browser(api, "risk_analyst")
        b, b_who = browser(api, "risk_analyst")
        v, v_who = browser(api, "model_validator")
        vid = register(api, trained_dir, a_who)

        page = a.get(f"/analyst/models/{vid}").text
        assert 'data-testid="validate"' not in page and 'data-testid="report-frame"' in page
        assert 'data-testid="points"' in page and "Download CSV" in page and 'data-testid="gates"' in page
        assert a.post(f"/analyst/models/{vid}/validate").status_code == 403
        assert 'data-testid="validate"' in v.get(f"/analyst/models/{vid}").text
        r = v.post(f"/analyst/models/{vid}/validate", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].endswith("done=validate")

        page = a.get(f"/analyst/models/{vid}").text
        assert 'data-testid="four-eyes"' in page and 'data-testid="approve"' not in page
        assert f'data-testid="validated-by">{v_who.username}<' in page
        refused = a.post(f"/analyst/models/{vid}/approve", data={"note": "mine"})
        assert refused.status_code == 403 and "four eyes" in refused.text

        page = b.get(f"/analyst/models/{vid}").text
        assert 'data-testid="approve"' in page and 'data-testid="four-eyes"' not in page
        assert b.post(f"/analyst/models/{vid}/approve", data={"note": "report read"},
                      follow_redirects=False).status_code == 303
        assert b.post(f"/analyst/models/{vid}/promote", data={"role": "champion"},
                      follow_redirects=False).status_code == 303
        page = b.get(f"/analyst/models/{vid}").text
        assert 'data-testid="status">Champion<' in page and b_who.username in page
        listing = b.get("/analyst/models").text
        assert f'data-testid="status-{vid}">Champion<' in listing and "AUC 0." in listing
        report = b.get(f"/analyst/models/{vid}/report")
        assert report.status_code == 200 and "data:image/png;base64," in report.text

    def test_a_refused_move_says_why_on_the_page(self, api: Api, trained_dir: Path) -> None:
        a, a_who = browser(api, "risk_analyst")
        vid = register(api, trained_dir, a_who)
        r = a.post(f"/analyst/models/{vid}/promote", data={"role": "champion"})
        assert r.status_code == 409 and 'data-testid="refusal"' in r.text and "not been approved" in r.text

    def test_another_banks_model_is_not_found(self, api: Api, trained_dir: Path,
                                              new_tenant: Callable[[], TenantKit]) -> None:
        other = Api(api.client, new_tenant())
        vid = register(other, trained_dir, other.kit.principal("risk_analyst"))
        a, _ = browser(api, "risk_analyst")
        assert a.get(f"/analyst/models/{vid}").status_code == 404
        assert a.post(f"/analyst/models/{vid}/retire", data={}).status_code == 404
        assert a.get(f"/analyst/models/{vid}/monitoring").status_code == 404

    def test_the_status_badges_in_chinese(self, api: Api, trained_dir: Path) -> None:
        a, a_who = browser(api, "risk_analyst", lang="zh_CN")
        register(api, trained_dir, a_who)
        page = a.get("/analyst/models").text
        assert "草稿" in page and "冠军" in page  # our draft and the starter champion

    @pytest.mark.slow
    def test_a_scorecard_is_trained_from_the_form(self, api: Api) -> None:
        a, _ = browser(api, "risk_analyst")
        csv = german_credit().frame.to_csv(index=False).encode()
        assert a.post("/analyst/datasets", data={"name": "german"}, files={"file": ("g.csv", csv, "text/csv")},
                      follow_redirects=False).status_code == 303
        form = a.get("/analyst/models/new?dataset=german").text
        assert 'data-testid="train-form"' in form
        bad = a.post("/analyst/models", data={"dataset": "german", "target": "creditability", "bad": "awful"})
        assert bad.status_code == 422 and "no row has the bad value" in bad.text
        r = a.post("/analyst/models", data={"dataset": "german", "target": "creditability", "bad": "bad",
                                            "kind": "scorecard", "seed": "5"}, follow_redirects=False)
        assert r.status_code == 303, r.text
        page = a.get(r.headers["location"]).text
        assert "Trained and registered as a draft" in page and 'data-testid="figures"' in page


class TestMonitoringPage:
    def test_charts_of_live_scores_against_development(self, api: Api, trained_dir: Path) -> None:
        a, a_who = browser(api, "risk_analyst")
        b_who = api.kit.principal("risk_analyst")
        vid = register(api, trained_dir, a_who)
        registry.mark_validated(api.kit.uow_factory(), api.kit.principal("model_validator"), vid)
        registry.approve_model(api.kit.uow_factory(), b_who, vid)
        registry.promote_model(api.kit.uow_factory(), b_who, vid, "champion")
        runtime = registry.ScoringRuntime()
        frame = german_credit().frame
        for i, row in enumerate(frame[frame["creditability"] == "bad"].head(30).to_dict("records")):
            runtime.score(api.kit.uow_factory(), a_who, row, subject_type="application", subject_id=i)
        page = a.get(f"/analyst/models/{vid}/monitoring").text
        assert 'data-testid="distribution-chart"' in page and 'src="data:image/png;base64,' in page
        assert '<div class="kpi" data-testid="live-count">30</div>' in page
        assert 'data-testid="alerts"' in page
        csv = frame.sample(200, random_state=3).to_csv(index=False).encode()
        a.post("/analyst/datasets", data={"name": "live"}, files={"file": ("live.csv", csv, "text/csv")})
        with_csi = a.get(f"/analyst/models/{vid}/monitoring?dataset=live").text
        assert 'data-testid="csi-chart"' in with_csi

    @pytest.mark.parametrize("lang", ["en", "zh_CN"])
    def test_the_month_end_run_and_its_alerts_are_on_the_page_and_in_the_api(self, api: Api, lang: str) -> None:
        from microlend.core.identity import system_principal
        from microlend.risk.monitoring_runs import CaseFacts, record_monitoring

        a, a_who = browser(api, "risk_analyst", lang=lang)
        champion = registry.list_model_versions(api.kit.uow_factory(), a_who, status="champion")[0]
        empty = a.get(f"/analyst/models/{champion.id}/monitoring").text
        assert 'data-testid="monitoring-runs"' in empty and 'data-testid="run-' not in empty
        runtime = registry.ScoringRuntime()
        frame = german_credit().frame.head(120)
        facts = {}
        for i, row in enumerate(frame.to_dict("records")):
            runtime.score(api.kit.uow_factory(), a_who, row, subject_type="application", subject_id=i + 1)
            facts[i + 1] = CaseFacts(row, row["creditability"] == "bad")
        today = datetime.now(UTC).date()
        record_monitoring(api.kit.uow_factory(), system_principal(api.kit.tenant.id, "worker"), today, facts)
        page = a.get(f"/analyst/models/{champion.id}/monitoring").text
        assert f'data-testid="run-{today}"' in page and 'data-testid="run-bands"' in page
        assert ("月末监控" if lang == "zh_CN" else "Month-end monitoring runs") in page
        runs = api.client.get(f"/api/v1/risk/models/{champion.id}/monitoring-runs",
                              headers=api.token("risk_analyst")).json()
        assert [r["as_of"] for r in runs] == [today.isoformat()] and runs[0]["cases"] == 120
        assert runs[0]["result"]["performance"]["count"] == 120

    def test_a_model_without_live_scores_shows_its_development_profile(self, api: Api) -> None:
        a, _ = browser(api, "risk_analyst", lang="zh_CN")
        starter = registry.list_model_versions(api.kit.uow_factory(), api.kit.principal("auditor"),
                                               status="champion")[0]
        page = a.get(f"/analyst/models/{starter.id}/monitoring")
        assert page.status_code == 200
        assert 'data-testid="distribution-chart"' in page.text and "模型监控" in page.text
        detail = a.get(f"/analyst/models/{starter.id}").text
        assert 'data-testid="report-frame"' in detail
        assert a.get(f"/analyst/models/{starter.id}/report").status_code == 200


class TestGatesAndUnseenPages:
    def test_the_gates_page_shows_the_gates_and_who_may_change_them(self, api: Api) -> None:
        validator, _ = browser(api, "model_validator")
        page = validator.get("/analyst/gates")
        assert page.status_code == 200 and 'data-testid="gates-table"' in page.text
        assert 'data-testid="gates-form"' not in page.text and ">0.6<" in page.text
        assert validator.post("/analyst/gates", data={**GATES, "min_test_auc": "0.7"}).status_code == 403
        admin, _ = browser(api, "admin", lang="zh_CN")
        assert 'data-testid="gates-form"' in admin.get("/analyst/gates").text
        refused = admin.post("/analyst/gates", data={**GATES, "min_rows": "many"})
        assert refused.status_code == 422 and "min_rows: expected a whole number" in refused.text
        saved = admin.post("/analyst/gates", data={**GATES, "min_test_auc": "0.7"}, follow_redirects=False)
        assert saved.status_code == 303 and saved.headers["location"] == "/analyst/gates?saved=1"
        assert registry.model_gates(api.kit.uow_factory(), api.kit.principal("auditor")).min_test_auc == 0.7
        assert "本行模型准入门槛已保存" in admin.get("/analyst/gates?saved=1").text

    def test_the_monitoring_page_counts_missing_and_unseen_values_per_feature(self, api: Api,
                                                                              trained_dir: Path) -> None:
        a, a_who = browser(api, "risk_analyst")
        vid = register(api, trained_dir, a_who)
        model = load_model(trained_dir).model
        categorical = next(c.name for c in model.characteristics if c.has_categories)
        numeric = next(c.name for c in model.characteristics if not c.has_categories)
        live = german_credit().frame.sample(100, random_state=5).reset_index(drop=True)
        live.loc[:11, categorical] = "a value never seen"
        live.loc[:6, numeric] = None
        a.post("/analyst/datasets", data={"name": "live"},
               files={"file": ("live.csv", live.to_csv(index=False).encode(), "text/csv")})
        page = a.get(f"/analyst/models/{vid}/monitoring?dataset=live").text
        assert f'data-testid="unseen-{categorical}">12<' in page and f'data-testid="missing-{numeric}">7<' in page
        assert f'data-testid="missing-{categorical}">0<' in page


GATES = {"min_rows": "200", "min_bads": "30", "min_test_auc": "0.6", "min_test_ks": "0.15", "max_auc_gap": "0.2",
         "max_oot_psi": "0.25"}
