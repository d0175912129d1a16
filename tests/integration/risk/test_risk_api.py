"""Risk models through the HTTP API on SQLite and PostgreSQL: from a CSV to an approved champion with its
validation report, four eyes, scoring one case, monitoring, and the permission battery."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.battery import audit_count
from tests.conftest import Api, TenantKit

from microlend.core.identity import Principal
from microlend.risk import registry
from microlend.risk import service as risk_service
from microlend.risk.datasets import german_credit
from microlend.risk.development import develop_model


@pytest.fixture(scope="module")
def german_csv(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("german") / "german.csv"
    german_credit().frame.to_csv(path, index=False)
    return path.read_bytes()


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One scorecard trained once for the module; each bank registers its own copy."""
    out = tmp_path_factory.mktemp("model") / "scorecard"
    develop_model(german_credit().frame, target="creditability", bad="bad", kind="scorecard", out_dir=out,
                  created_at=datetime(2026, 1, 5, tzinfo=UTC), benchmark=False, name="german", seed=7)
    return out


@pytest.fixture(autouse=True)
def _data_dir(app_client: Any, tmp_path: Path) -> Iterator[Path]:
    app = app_client.app
    original = app.state.settings
    app.state.settings = original.model_copy(update={"data_dir": tmp_path})
    yield tmp_path
    app.state.settings = original


@pytest.fixture
def api(app_client: Any, new_tenant: Callable[[], TenantKit]) -> Api:
    """The HTTP API for a fresh bank (this folder's `bank` fixture is the registry's own)."""
    return Api(app_client, new_tenant())


@pytest.fixture
def other(app_client: Any, new_tenant: Callable[[], TenantKit]) -> Api:
    return Api(app_client, new_tenant())


def _store(api: Api) -> Path:
    root: Path = api.client.app.state.settings.data_dir  # type: ignore[attr-defined]
    return root / "models"


def register(api: Api, trained: Path, trainer: Principal | None = None) -> int:
    who = trainer or api.kit.principal("risk_analyst")
    return registry.register_model(api.kit.uow_factory(), who, trained, name="german", store_root=_store(api)).id


def in_status(status: str, trained: Path) -> Callable[[Api], int]:
    """make_object for the battery: a registered version moved to `status` by two analysts."""
    def make(api: Api) -> int:
        trainer = api.kit.principal("risk_analyst")
        vid = register(api, trained, trainer)
        if status in ("validated", "approved", "champion"):
            registry.mark_validated(api.kit.uow_factory(), api.kit.principal("model_validator"), vid)
        if status in ("approved", "champion"):
            registry.approve_model(api.kit.uow_factory(), api.kit.principal("risk_analyst"), vid)
        if status == "champion":
            registry.promote_model(api.kit.uow_factory(), trainer, vid, "champion")
        return vid
    return make


def snapshot(api: Api, vid: int) -> Any:
    return api.client.get(f"/api/v1/risk/models/{vid}", headers=api.token("auditor")).json()


def upload(api: Api, headers: dict[str, str], content: bytes, name: str = "german") -> None:
    r = api.client.post("/api/v1/datasets", data={"name": name}, files={"file": ("german.csv", content, "text/csv")},
                        headers=headers)
    assert r.status_code == 201, r.text


#: an applicant with a checking-account status the model never saw, no credit amount and no credit history
CASE = {"status_of_existing_checking_account": "a status the model never saw", "duration_in_month": 36,
        "credit_amount": None, "age_in_years": 23, "purpose": "car (new)"}


@pytest.mark.slow
class TestFromCsvToChampion:
    def test_analyst_a_trains_and_validates_analyst_b_approves_and_promotes(self, api: Api,
                                                                             german_csv: bytes) -> None:
        a_name, _ = api.kit.user("risk_analyst")
        b_name, _ = api.kit.user("risk_analyst")
        a, b = api.token_for(a_name), api.token_for(b_name)
        upload(api, a, german_csv)

        before = audit_count(api)
        r = api.client.post("/api/v1/risk/models", headers=a, json={
            "dataset": "german", "target": "creditability", "bad": "bad", "kind": "scorecard", "name": "german",
            "seed": 2026})  # seed 42 would give exactly the starter scorecard, which the bank already has
        assert r.status_code == 201, r.text
        model = r.json()
        vid = model["id"]
        assert model["status"] == "draft" and model["trained_by_name"] == a_name
        assert 0.70 < model["metrics"]["test"]["auc"] < 0.95
        assert model["metrics"]["benchmark"]["kind"] == "gbdt"
        assert audit_count(api) == before + 1

        report = api.client.get(f"/api/v1/risk/models/{vid}/report", headers=b)
        assert report.status_code == 200 and "data:image/png;base64," in report.text
        figures = api.client.get(f"/api/v1/risk/models/{vid}/report.json", headers=b).json()
        assert figures["samples"]["test"]["metrics"]["auc"] == pytest.approx(model["metrics"]["test"]["auc"])
        points = api.client.get(f"/api/v1/risk/models/{vid}/points", headers=b).json()
        assert {p["feature"] for p in points} == set(model["features"])
        csv = api.client.get(f"/api/v1/risk/models/{vid}/points?format=csv", headers=b)
        assert csv.text.startswith("feature,bin,points,woe,count")

        assert api.client.post(f"/api/v1/risk/models/{vid}/validate", headers=a).status_code == 403
        v = api.token("model_validator")
        gates = api.client.get(f"/api/v1/risk/models/{vid}/gates", headers=v).json()
        assert gates["passed"] and {g["gate"] for g in gates["results"]} >= {"min_rows", "min_test_auc"}
        validated = api.client.post(f"/api/v1/risk/models/{vid}/validate", headers=v).json()
        assert validated["status"] == "validated" and validated["validated_at"] is not None
        refused = api.client.post(f"/api/v1/risk/models/{vid}/approve", headers=a, json={})
        assert refused.status_code == 403 and "four eyes" in refused.json()["detail"]
        approved = api.client.post(f"/api/v1/risk/models/{vid}/approve", headers=b, json={"note": "report read"})
        assert approved.status_code == 200, approved.text
        assert approved.json()["approved_by_name"] == b_name
        champion = api.client.post(f"/api/v1/risk/models/{vid}/promote", headers=b, json={"role": "champion"})
        assert champion.json()["status"] == "champion"
        statuses = {m["name"]: m["status"] for m in api.client.get("/api/v1/risk/models", headers=b).json()}
        assert statuses["german"] == "champion" and list(statuses.values()).count("champion") == 1

        scored = api.client.post("/api/v1/risk/score", headers=a, json={
            "subject_type": "application", "subject_id": "A-1", "features": CASE, "locale": "zh-CN"}).json()
        assert scored["champion"]["model_version_id"] == vid and scored["challenger"] is None

    def test_a_gbdt_is_trained_from_a_stored_dataset_too(self, api: Api, german_csv: bytes) -> None:
        a = api.token("risk_analyst")
        upload(api, a, german_csv)
        r = api.client.post("/api/v1/risk/models", headers=a, json={
            "dataset": "german", "target": "creditability", "bad": "bad", "kind": "gbdt"})
        assert r.status_code == 201, r.text
        assert r.json()["kind"] == "gbdt" and r.json()["metrics"]["benchmark"]["kind"] == "scorecard"
        points = api.client.get(f"/api/v1/risk/models/{r.json()['id']}/points", headers=a)
        assert points.status_code == 404


class TestTrainingRefusals:
    def test_a_dataset_too_big_for_a_request_is_sent_to_the_cli(self, api: Api, german_csv: bytes,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(risk_service, "MAX_TRAINING_ROWS", 500)
        a = api.token("risk_analyst")
        upload(api, a, german_csv)
        r = api.client.post("/api/v1/risk/models", headers=a, json={
            "dataset": "german", "target": "creditability", "bad": "bad"})
        assert r.status_code == 422 and "microlend risk train" in r.json()["detail"]

    @pytest.mark.parametrize(("body", "field"), [
        ({"target": "no_such_column", "bad": "bad"}, "target"),
        ({"target": "creditability", "bad": "terrible"}, "creditability"),
        ({"target": "creditability", "bad": "bad", "kind": "forest"}, "kind"),
        ({"target": "creditability", "bad": "bad", "owner": "me"}, "owner"),
    ])
    def test_bad_training_input_is_422_naming_the_field(self, api: Api, german_csv: bytes, body: dict[str, Any],
                                                        field: str) -> None:
        a = api.token("risk_analyst")
        upload(api, a, german_csv)
        r = api.client.post("/api/v1/risk/models", headers=a, json={"dataset": "german", **body})
        assert r.status_code == 422, r.text
        assert r.json()["field"] == field

    def test_training_on_a_missing_dataset_is_404(self, api: Api) -> None:
        r = api.client.post("/api/v1/risk/models", headers=api.token("risk_analyst"), json={
            "dataset": "nothing-here", "target": "y", "bad": "1"})
        assert r.status_code == 404


class TestLifeCycle:
    def test_the_trainer_cannot_approve_and_nothing_changes(self, api: Api, trained_dir: Path) -> None:
        username, trainer = api.kit.user("risk_analyst")
        vid = register(api, trained_dir, trainer)
        registry.mark_validated(api.kit.uow_factory(), api.kit.principal("model_validator"), vid)
        before = audit_count(api)
        r = api.client.post(f"/api/v1/risk/models/{vid}/approve", headers=api.token_for(username), json={})
        assert r.status_code == 403
        assert f"{username} trained model version {vid}" in r.json()["detail"]
        assert snapshot(api, vid)["status"] == "validated" and audit_count(api) == before

    def test_an_approver_of_credit_cannot_approve_a_model(self, api: Api, trained_dir: Path) -> None:
        vid = in_status("validated", trained_dir)(api)
        r = api.client.post(f"/api/v1/risk/models/{vid}/approve", headers=api.token("approver"), json={})
        assert r.status_code == 403

    def test_a_draft_cannot_be_promoted(self, api: Api, trained_dir: Path) -> None:
        vid = register(api, trained_dir)
        r = api.client.post(f"/api/v1/risk/models/{vid}/promote", headers=api.token("risk_analyst"),
                            json={"role": "champion"})
        assert r.status_code == 409 and "not been approved" in r.json()["detail"]

    def test_a_challenger_then_retired(self, api: Api, trained_dir: Path) -> None:
        vid = in_status("approved", trained_dir)(api)
        h = api.token("risk_analyst")
        assert api.client.post(f"/api/v1/risk/models/{vid}/promote", headers=h,
                               json={"role": "challenger"}).json()["status"] == "challenger"
        r = api.client.post(f"/api/v1/risk/models/{vid}/retire", headers=h, json={"reason": "drift"})
        assert r.json()["status"] == "retired"
        again = api.client.post(f"/api/v1/risk/models/{vid}/retire", headers=h, json={})
        assert again.status_code == 409
        listed = api.client.get("/api/v1/risk/models?status=retired", headers=h).json()
        assert vid in [m["id"] for m in listed] and {m["status"] for m in listed} == {"retired"}


class TestScoring:
    def test_one_case_with_an_unseen_category_and_missing_values_scores_with_reasons(
            self, api: Api, trained_dir: Path) -> None:
        vid = register(api, trained_dir)
        features = set(registry.get_model_version(api.kit.uow_factory(), api.kit.principal("auditor"), vid).features)
        assert {"status_of_existing_checking_account", "credit_amount"} <= features
        h = api.token("credit_officer")
        zh = api.client.post(f"/api/v1/risk/models/{vid}/score", headers=h,
                             json={"features": CASE, "locale": "zh-CN"})
        assert zh.status_code == 200, zh.text
        s = zh.json()
        assert 0 < s["pd"] < 1 and s["score"] > 0 and 1 <= len(s["reasons"]) <= 3
        assert all(r["impact"] > 0 for r in s["reasons"])
        assert any("：" in r["message"] for r in s["reasons"])
        en = api.client.post(f"/api/v1/risk/models/{vid}/score", headers=h, json={"features": CASE}).json()
        assert en["score"] == s["score"] and "：" not in en["reasons"][0]["message"]
        empty = api.client.post(f"/api/v1/risk/models/{vid}/score", headers=h, json={"features": {}}).json()
        assert empty["score"] != s["score"]

    def test_a_wrong_type_for_a_number_is_422(self, api: Api, trained_dir: Path) -> None:
        vid = register(api, trained_dir)
        r = api.client.post(f"/api/v1/risk/models/{vid}/score", headers=api.token("risk_analyst"),
                            json={"features": {"duration_in_month": "long"}})
        assert r.status_code == 422 and r.json()["field"] == "duration_in_month"


class TestMonitoring:
    def test_live_scores_are_compared_with_development(self, api: Api, trained_dir: Path) -> None:
        vid = in_status("champion", trained_dir)(api)
        h = api.token("risk_analyst")
        frame = german_credit().frame
        risky = frame[frame["creditability"] == "bad"].head(40)
        for i, row in enumerate(risky.drop(columns=["creditability"]).to_dict("records")):
            r = api.client.post("/api/v1/risk/score", headers=h,
                                json={"subject_id": f"L-{i}", "features": row})
            assert r.status_code == 200, r.text
        m = api.client.get(f"/api/v1/risk/models/{vid}/monitoring", headers=h).json()
        assert m["live_count"] == 40
        assert m["score"]["psi"] > 0.10 and m["score"]["status"] in ("watch", "act")
        assert m["alerts"][0]["what"] == "score"
        assert len(m["by_month"]) == 1 and m["by_month"][0]["count"] == 40
        assert sum(m["score"]["live_shares"]) == pytest.approx(1.0)

    def test_a_stored_live_dataset_gives_csi_per_feature(self, api: Api, trained_dir: Path) -> None:
        vid = in_status("champion", trained_dir)(api)
        h = api.token("risk_analyst")
        frame = german_credit().frame
        r = api.client.post("/api/v1/datasets", data={"name": "live"}, headers=h,
                            files={"file": ("live.csv", frame.sample(300, random_state=1).to_csv(index=False),
                                            "text/csv")})
        assert r.status_code == 201, r.text
        m = api.client.get(f"/api/v1/risk/models/{vid}/monitoring?dataset=live", headers=h).json()
        assert m["live_count"] == 0 and m["dataset"]["rows"] == 300
        assert m["score"]["status"] == "stable"
        features = registry.get_model_version(api.kit.uow_factory(), api.kit.principal("auditor"), vid).features
        assert {c["feature"] for c in m["characteristics"]} == set(features)


def test_the_starter_champion_has_its_validation_report(api: Api) -> None:
    """A new bank's starter scorecard ships its report's figures; the report page is drawn from them."""
    h = api.token("risk_analyst")
    starter = api.client.get("/api/v1/risk/models?status=champion", headers=h).json()[0]
    assert starter["name"] == "starter-german-credit"
    html = api.client.get(f"/api/v1/risk/models/{starter['id']}/report", headers=h)
    assert html.status_code == 200 and "data:image/png;base64," in html.text
    figures = api.client.get(f"/api/v1/risk/models/{starter['id']}/report.json", headers=h).json()
    assert figures["samples"]["test"]["metrics"]["auc"] == pytest.approx(starter["metrics"]["test"]["auc"])
