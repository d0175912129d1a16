"""The model gates and the three people of a model's approval, on SQLite and PostgreSQL: a tiny file is refused
at training (CLI exit code 2, API 422), a model failing a gate cannot be validated, the validator is neither
the trainer nor the approver, and each bank sets its own gates."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.conftest import Api, TenantKit
from typer.testing import CliRunner

from microlend.cli.risk import app
from microlend.core.errors import Conflict, PermissionDenied
from microlend.core.settings import get_settings
from microlend.core.tables import AuditRow
from microlend.risk.datasets import german_credit
from microlend.risk.development import develop_model
from microlend.risk.gates import ModelGates
from microlend.risk.registry import (
    approve_model,
    get_model_version,
    list_model_versions,
    mark_validated,
    model_gates,
    promote_model,
    register_model,
    set_model_gates,
)

from .conftest import Bank, open_bank

runner = CliRunner()
CREATED = datetime(2026, 2, 1, tzinfo=UTC)


def _twelve_rows(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.csv"
    german_credit().frame.groupby("creditability").head(6).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scorecard a trainer developed on 120 rows with gates relaxed on their own machine."""
    out = tmp_path_factory.mktemp("small")
    frame = german_credit().frame.sample(120, random_state=11).reset_index(drop=True)
    develop_model(frame, target="creditability", bad="bad", kind="scorecard", out_dir=out, created_at=CREATED,
                  benchmark=False, gates=ModelGates(min_rows=10, min_bads=5), name="small")
    return out


@pytest.fixture(scope="module")
def german_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("german")
    develop_model(german_credit().frame, target="creditability", bad="bad", kind="scorecard", out_dir=out,
                  created_at=CREATED, benchmark=False, seed=5, name="german")
    return out


@pytest.fixture
def bank_api(app_client: Any, new_tenant: Callable[[], TenantKit], tmp_path: Path) -> Iterator[Api]:
    """The HTTP API for a fresh bank whose data lives under this test's directory."""
    app_ = app_client.app
    original = app_.state.settings
    app_.state.settings = original.model_copy(update={"data_dir": tmp_path})
    yield Api(app_client, new_tenant())
    app_.state.settings = original


class TestTrainingRefusesATinySample:
    def test_the_cli_refuses_a_twelve_row_file_with_exit_code_2(self, tmp_path: Path) -> None:
        result = runner.invoke(app, ["train", "--data", str(_twelve_rows(tmp_path)), "--target", "creditability",
                                     "--bad", "bad", "--out", str(tmp_path / "m")])
        assert result.exit_code == 2, result.output
        assert "12 rows with 6 bads is too small" in result.output and "at least 200 rows" in result.output
        assert not (tmp_path / "m" / "model.json").exists()

    def test_the_api_refuses_it_with_422(self, app_client: Any, bank_api: Api, tmp_path: Path) -> None:
        headers = bank_api.token("risk_analyst")
        r = app_client.post("/api/v1/datasets", data={"name": "tiny"}, headers=headers,
                            files={"file": ("tiny.csv", _twelve_rows(tmp_path).read_bytes(), "text/csv")})
        assert r.status_code == 201, r.text
        r = app_client.post("/api/v1/risk/models", headers=headers,
                            json={"dataset": "tiny", "target": "creditability", "bad": "bad"})
        assert r.status_code == 422 and "too small to develop a model" in r.json()["detail"], r.text
        assert r.json()["field"] == "data"


class TestValidation:
    def test_a_model_failing_a_gate_cannot_be_validated_nor_become_champion(
            self, bank: Bank, small_model: Path) -> None:
        v = register_model(bank.uow, bank.people["wang"], small_model, store_root=bank.store)
        with pytest.raises(Conflict, match=r"fails the bank's model gates: min_rows 120 \(needs at least 200\)"):
            mark_validated(bank.uow, bank.people["sun"], v.id)
        with pytest.raises(Conflict):
            approve_model(bank.uow, bank.people["li"], v.id)
        with pytest.raises(Conflict, match="has not been approved"):
            promote_model(bank.uow, bank.people["li"], v.id, "champion")
        assert get_model_version(bank.uow, bank.people["li"], v.id).status == "draft"
        (champion,) = list_model_versions(bank.uow, bank.people["li"], status="champion")
        assert champion.trained_by_name == "microlend"  # the starter is still in use

    def test_the_trainer_cannot_validate_and_an_analyst_has_no_validation_right(
            self, bank: Bank, german_model: Path) -> None:
        admin = bank.people["admin"]
        v = register_model(bank.uow, admin, german_model, store_root=bank.store)
        with pytest.raises(PermissionDenied, match="an independent validator must validate it"):
            mark_validated(bank.uow, admin, v.id)
        with pytest.raises(PermissionDenied, match="validate_models"):
            mark_validated(bank.uow, bank.people["wang"], v.id)

    def test_the_validator_cannot_approve_a_third_person_does_and_who_when_is_recorded(
            self, bank: Bank, german_model: Path) -> None:
        wang, admin, li = bank.people["wang"], bank.people["admin"], bank.people["li"]
        v = register_model(bank.uow, wang, german_model, store_root=bank.store)
        validated = mark_validated(bank.uow, admin, v.id, note="gates and report checked")
        assert (validated.validated_by_name, validated.status) == (admin.username, "validated")
        with pytest.raises(PermissionDenied, match=r"validated model version .* a third person must approve it"):
            approve_model(bank.uow, admin, v.id)
        approved = approve_model(bank.uow, li, v.id)
        assert approved.approved_by_name == li.username and approved.approved_at is not None
        assert approved.validated_at is not None and approved.validated_at <= approved.approved_at
        with bank.uow:
            rows = bank.uow.session.execute(select(AuditRow.action, AuditRow.actor).where(
                AuditRow.object_type == "model_version", AuditRow.object_id == str(v.id))
                .order_by(AuditRow.seq)).all()
        assert [tuple(r) for r in rows] == [("model.register", wang.username), ("model.validated", admin.username),
                                            ("model.approved", li.username)]

    def test_a_bank_sets_its_own_gates_and_validation_follows_them(self, bank: Bank, german_model: Path) -> None:
        assert model_gates(bank.uow, bank.people["wang"]) == ModelGates()
        with pytest.raises(PermissionDenied, match="manage_model_gates"):
            set_model_gates(bank.uow, bank.people["sun"], {"min_test_auc": 0.95})
        stricter = set_model_gates(bank.uow, bank.people["admin"], {"min_test_auc": 0.95})
        assert stricter.min_test_auc == 0.95 and stricter.min_rows == ModelGates().min_rows
        v = register_model(bank.uow, bank.people["wang"], german_model, store_root=bank.store)
        with pytest.raises(Conflict, match=r"min_test_auc 0\.\d+ \(needs at least 0\.9500\)"):
            mark_validated(bank.uow, bank.people["sun"], v.id)
        set_model_gates(bank.uow, bank.people["admin"], {"min_test_auc": 0.6})
        assert mark_validated(bank.uow, bank.people["sun"], v.id).status == "validated"


def test_the_gates_over_http(app_client: Any, bank_api: Api) -> None:
    r = app_client.get("/api/v1/risk/gates", headers=bank_api.token("model_validator"))
    assert r.status_code == 200 and r.json()["min_rows"] == 200
    refused = app_client.put("/api/v1/risk/gates", headers=bank_api.token("model_validator"), json={"min_rows": 1})
    assert refused.status_code == 403
    bad = app_client.put("/api/v1/risk/gates", headers=bank_api.token("admin"), json={"min_test_auc": 0.2})
    assert bad.status_code == 422
    ok = app_client.put("/api/v1/risk/gates", headers=bank_api.token("admin"), json={"min_rows": 500})
    assert ok.status_code == 200 and ok.json()["min_rows"] == 500 and ok.json()["min_bads"] == 30


@pytest.fixture
def cli_bank(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bank]:
    bank = open_bank(tmp_path, monkeypatch)
    monkeypatch.setenv("MICROLEND_DATABASE_URL", f"sqlite:///{tmp_path / 'microlend.db'}")
    monkeypatch.setenv("MICROLEND_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield bank
    get_settings.cache_clear()


def test_the_gates_from_the_cli(cli_bank: Bank) -> None:
    who = ["--tenant", "rural-bank"]
    result = runner.invoke(app, ["gates", *who, "--user", "admin@rural-bank", "--set", "min_rows=400"])
    assert result.exit_code == 0 and "min_rows = 400" in result.output, result.output
    result = runner.invoke(app, ["gates", *who, "--user", "wang@rural-bank", "--set", "min_rows=1"])
    assert result.exit_code == 2 and "manage_model_gates" in result.output
    result = runner.invoke(app, ["gates", *who, "--user", "wang@rural-bank"])
    assert result.exit_code == 0 and "min_rows = 400" in result.output
