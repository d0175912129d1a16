"""Joint training runs in the bank's records, on SQLite and PostgreSQL: `federation train --partnership` against a
real partner process records its run as it goes (phase, epoch, batches, each in its own transaction, so a page
sees it live) through to succeeded with the joint and bank-only validation figures; a run whose partner is down
or past its deadline is recorded failed with the error; the analyst's pages show the runs of a partnership (with a
progress bar polled while one runs) and a run's comparison in both languages, to that bank only."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import sign_in_page
from tests.provider_server import free_port
from typer.testing import CliRunner

from microlend.cli.main import app as main_app
from microlend.core.errors import NotFound, PermissionDenied
from microlend.core.settings import get_settings
from microlend.risk.federation.keys import PartnershipKey
from microlend.risk.federation.partnerships import PartnershipCreate, get_partnership, register_partnership
from microlend.risk.federation.runs import RunRecorder, get_run, link_model_version, list_runs, start_run
from microlend.risk.joint_models import register_joint_model
from microlend.risk.tables import TrainingRunRow

from .test_federation_e2e import SETTINGS, partner_url, split  # noqa: F401  (the real partner process)

runner = CliRunner()
TODAY = date.today()


@pytest.fixture
def cli_db(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """The CLI on the test's database (SQLite or PostgreSQL)."""
    monkeypatch.setenv("MICROLEND_DATABASE_URL", db_url)
    monkeypatch.setenv("MICROLEND_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _partnership(kit: Any, who: Any, url: str, fingerprint: str, name: str = "城关电信") -> int:
    return register_partnership(kit.uow_factory(), who, PartnershipCreate(
        name=name, endpoint_url=url, key_fingerprint=fingerprint, purpose="joint PD model", contract_ref="DP-7",
        valid_from=TODAY - timedelta(days=30), valid_to=TODAY + timedelta(days=365), features=("tenure_months",),
        consent_basis="partner_scoring consent")).id


def _train_args(split: dict[str, Path], url: str, out: Path) -> list[str]:  # noqa: F811
    return ["federation", "train", "--partner", url, "--key-file", str(split["key"]), "--data", str(split["bank"]),
            "--id-column", "id_number", "--target", "Class", "--bad", "bad", "--out", str(out),
            "--key-bits", str(SETTINGS["key_bits"]), "--epochs", str(SETTINGS["max_epochs"]), "--batch-size",
            str(SETTINGS["batch_size"]), "--learning-rate", str(SETTINGS["learning_rate"])]


def _reader(app_client: TestClient, username: str, lang: str) -> TestClient:
    client = TestClient(app_client.app, raise_server_exceptions=False)
    client.cookies.set("ml_lang", lang)
    sign_in_page(client, username)
    return client


def test_a_training_run_is_recorded_as_it_goes_and_its_page_compares_joint_and_bank_only(
        split: dict[str, Path], partner_url: str, cli_db: None, new_tenant: Callable[..., Any],  # noqa: F811
        app_client: TestClient, tmp_path: Path) -> None:
    kit = new_tenant()
    username, analyst = kit.user("risk_analyst")
    key = PartnershipKey.load(split["key"])
    pid = _partnership(kit, analyst, partner_url, key.fingerprint)
    out = tmp_path / "model"
    outcome: dict[str, Any] = {}

    def train() -> None:
        outcome["result"] = runner.invoke(main_app, [*_train_args(split, partner_url, out), "--partnership", "城关电信",
                                                     "--tenant", kit.tenant.name, "--user", username])

    thread = threading.Thread(target=train)
    thread.start()
    seen: list[tuple[str, str, int, int]] = []
    while thread.is_alive():  # what a page polling the database sees while the run goes on
        for run in list_runs(kit.uow_factory(), analyst, pid):
            seen.append((run.status, run.phase, run.epoch, run.batches_done))
        time.sleep(0.05)
    thread.join()
    result = outcome["result"]
    assert result.exit_code == 0, result.output
    assert ("running", "epochs") in {(s, p) for s, p, _, _ in seen}
    assert any(s == "running" and p == "epochs" and done > 0 for s, p, _, done in seen)
    assert seen.index(next(x for x in seen if x[1] == "epochs")) > 0  # the PSI or set-up was seen first

    [run] = list_runs(kit.uow_factory(), analyst, pid)
    model = json.loads((out / "model.json").read_text())
    assert (run.status, run.phase, run.error, run.started_by_name) == ("succeeded", "finished", "", username)
    assert run.shared_ids == model["metrics"]["shared_ids"] == 2200
    assert run.model_id == model["model_id"] and run.ended_at is not None and run.percent == 100
    joint, alone = run.figures("joint"), run.figures("bank_only")
    assert joint["auc"] == pytest.approx(model["metrics"]["sides"]["joint"]["auc"])
    assert alone["auc"] == pytest.approx(model["metrics"]["valid_auc_bank_only"])
    assert joint["auc"] is not None and alone["auc"] is not None and joint["auc"] > alone["auc"]
    assert run.result["contribution"]["partner_auc"] == pytest.approx(joint["auc"] - alone["auc"])
    assert f"training run {run.id} recorded" in result.output

    pages = {}
    for lang in ("en", "zh_CN"):
        validator, _ = kit.user("model_validator")
        client = _reader(app_client, validator, lang)
        listed = client.get(f"/analyst/partnerships/{pid}/runs")
        assert listed.status_code == 200 and f'data-testid="run-{run.id}"' in listed.text
        assert 'data-polling="no"' in listed.text  # nothing runs: the list is not polled
        detail = client.get(f"/analyst/partnerships/{pid}/runs/{run.id}")
        assert detail.status_code == 200
        assert f"{joint['auc']:.4f}" in detail.text and f"{alone['auc']:.4f}" in detail.text
        assert '<svg class="chart hbars"' in detail.text and 'data-testid="comparison-table"' in detail.text
        assert f"{run.result['contribution']['partner_auc']:+.4f}" in detail.text
        pages[lang] = detail.text + listed.text
    assert "Joint model against bank only" in pages["en"] and "Succeeded" in pages["en"]
    assert "联合模型与仅本行数据对比" in pages["zh_CN"] and "成功" in pages["zh_CN"]
    assert "Joint model against bank only" not in pages["zh_CN"]

    v = register_joint_model(kit.uow_factory(), analyst, out, partnership_id=pid, on=TODAY,
                             store_root=tmp_path / "store")
    linked = link_model_version(kit.uow_factory(), analyst, model_id=model["model_id"], version_id=v.id)
    assert linked is not None and get_run(kit.uow_factory(), analyst, run.id).model_version_id == v.id
    shown = _reader(app_client, username, "en").get(f"/analyst/partnerships/{pid}/runs/{run.id}").text
    assert f'href="/analyst/models/{v.id}"' in shown

    other = new_tenant()
    outsider_name, outsider = other.user("risk_analyst")
    with pytest.raises(NotFound):
        get_run(other.uow_factory(), outsider, run.id)
    with pytest.raises(NotFound):
        list_runs(other.uow_factory(), outsider, pid)
    stranger = _reader(app_client, outsider_name, "en")
    assert stranger.get(f"/analyst/partnerships/{pid}/runs/{run.id}").status_code == 404
    assert stranger.get(f"/analyst/partnerships/{pid}/runs").status_code == 404
    marketer, _ = kit.user("marketer")
    assert _reader(app_client, marketer, "en").get(f"/analyst/partnerships/{pid}/runs/{run.id}").status_code == 403


@pytest.fixture
def silent() -> Iterator[str]:
    """A port whose kernel accepts connections that nobody ever reads or answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def test_a_run_whose_partner_is_down_or_past_its_deadline_is_recorded_failed_with_the_error(
        cli_db: None, new_tenant: Callable[..., Any], app_client: TestClient, tmp_path: Path, silent: str) -> None:
    kit = new_tenant()
    username, analyst = kit.user("risk_analyst")
    key_file = tmp_path / "partnership.key"
    key_file.write_text("microlend-federation-key-v1:" + bytes(range(32)).hex() + "\n")
    key_file.chmod(0o600)
    fingerprint = PartnershipKey.load(key_file).fingerprint
    data = tmp_path / "bank.csv"
    data.write_text("id_number,x,y\n1,1,good\n2,2,bad\n")
    down = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    cases = {"down": (down, [], "is not reachable"), "hung": (silent, ["--deadline", "0.02"], "passed its deadline")}
    for name, (url, extra, why) in cases.items():
        pid = _partnership(kit, analyst, url, fingerprint, name=name)
        result = runner.invoke(main_app, [
            "federation", "train", "--partner", url, "--key-file", str(key_file), "--data", str(data), "--id-column",
            "id_number", "--target", "y", "--bad", "bad", "--out", str(tmp_path / name), "--partnership", name,
            "--tenant", kit.tenant.name, "--user", username, *extra])
        assert result.exit_code != 0 and why in result.output, result.output
        [run] = list_runs(kit.uow_factory(), analyst, pid)
        assert run.status == "failed" and why in run.error and run.ended_at is not None
        assert run.model_id is None and run.result == {}
        client = _reader(app_client, kit.user("risk_analyst")[0], "zh_CN")
        listed = client.get(f"/analyst/partnerships/{pid}/runs")
        assert listed.status_code == 200 and "失败" in listed.text and why in listed.text
        detail = client.get(f"/analyst/partnerships/{pid}/runs/{run.id}")
        assert detail.status_code == 200 and 'data-testid="run-failed"' in detail.text
        assert 'data-testid="comparison-chart"' not in detail.text


def test_a_running_run_shows_its_progress_and_is_polled_until_it_ends(
        new_tenant: Callable[..., Any], app_client: TestClient) -> None:
    kit = new_tenant()
    username, analyst = kit.user("risk_analyst")
    pid = _partnership(kit, analyst, "http://10.0.0.5:8700", "0a1b2c3d4e5f6071")
    p = get_partnership(kit.uow_factory(), analyst, pid)
    run = start_run(kit.uow_factory(), analyst, p, settings={"max_epochs": 4})
    now = [0.0]
    recorder = RunRecorder(kit.uow_factory(), analyst, run.id, every=1.0, clock=lambda: now[0])
    recorder("private set intersection", 1, 1)
    recorder("shared IDs", 1800, 2000)
    recorder("encrypted set-up", 1, 1)
    recorder("epoch 2 of 4", 5, 16)
    now[0] = 0.2
    recorder("epoch 2 of 4", 6, 16)  # within a second of the last write, same epoch: not written
    seen = get_run(kit.uow_factory(), analyst, run.id)
    assert (seen.phase, seen.epoch, seen.epochs, seen.batches_done, seen.shared_ids) == ("epochs", 2, 4, 5, 1800)
    now[0] = 1.5
    recorder("epoch 2 of 4", 7, 16)
    assert get_run(kit.uow_factory(), analyst, run.id).batches_done == 7

    client = _reader(app_client, username, "en")
    listed = client.get(f"/analyst/partnerships/{pid}/runs")
    assert listed.status_code == 200 and 'data-polling="yes"' in listed.text
    assert "Epoch 2 of 4, batch 7 of 16" in listed.text and "<progress" in listed.text
    polled = client.get(f"/analyst/partnerships/{pid}/runs", headers={"HX-Request": "true"})
    assert polled.status_code == 200 and polled.text.lstrip().startswith('<div id="training-runs"')
    zh = _reader(app_client, username, "zh_CN").get(f"/analyst/partnerships/{pid}/runs/{run.id}")
    assert zh.status_code == 200 and "第 2/4 轮，批次 7/16" in zh.text and 'data-polling="yes"' in zh.text
    assert "1,800" in zh.text

    with kit.uow_factory() as u:  # its process killed: no news for longer than the deadline allows
        row = u.session.get(TrainingRunRow, run.id)
        assert row is not None
        row.updated_at = row.updated_at - timedelta(hours=3)
        u.commit()
    stalled = client.get(f"/analyst/partnerships/{pid}/runs")
    assert 'data-polling="no"' in stalled.text and 'data-testid="run-stalled"' in stalled.text
    assert get_run(kit.uow_factory(), analyst, run.id).status == "running"  # a page never rewrites the record

    other = new_tenant()
    with pytest.raises(PermissionDenied):
        start_run(other.uow_factory(), other.principal("marketer"), p, settings={})
    with pytest.raises(NotFound):
        start_run(other.uow_factory(), other.principal("risk_analyst"), p, settings={})
