"""A joint model in the bank's registry and in a live credit decision, on SQLite and PostgreSQL: registered under
its partnership as kind hetero-lr (the partner's features only as a count and aliases), validated against the
gates and approved with four eyes like any model; as champion, a decision asks the partner (a real HTTP server
on a free port) for its partial score, and with the partner stopped or the partnership suspended falls back to
the bank-only model with PARTNER_UNAVAILABLE in its stored inputs, so it replays."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import uvicorn
from sqlalchemy import select
from tests.partner_wire import InProcess
from tests.provider_server import free_port

from microlend.core.audit import AuditRow
from microlend.core.errors import Conflict, PermissionDenied
from microlend.core.tables import TenantRow
from microlend.decisioning import scored_decision
from microlend.decisioning import service as decisions
from microlend.decisioning.domain import ApplicationFacts, CustomerFacts
from microlend.decisioning.tables import DecisionRow
from microlend.decisioning.tenant_setup import setup_tenant as decisioning_setup
from microlend.risk import registry
from microlend.risk import service as risk_service
from microlend.risk.datasets import lending_club
from microlend.risk.federation.keys import PartnershipKey
from microlend.risk.federation.online import OnlinePartners, install_key
from microlend.risk.federation.partner import PartnerService
from microlend.risk.federation.partnerships import PartnershipCreate, register_partnership, set_status
from microlend.risk.federation.server import create_app
from microlend.risk.federation.training import JointModel, TrainingSettings, train_joint
from microlend.risk.joint_models import register_joint_model

from .conftest import Bank

BANK_FIELDS = ["funded_amnt", "term", "addr_state", "verification_status", "annual_inc", "emp_length"]
NEITHER = ["int_rate", "sub_grade"]
ROWS = 2400
KEY = PartnershipKey(bytes(range(32)))
TODAY = date.today()


def _id_number(i: int) -> str:
    return f"3301061988{(i % 12) + 1:02d}{(i % 28) + 1:02d}{i:04d}"


@dataclass
class Trained:
    model_dir: Path
    service: PartnerService
    state: Path
    bank: pd.DataFrame
    partner_features: list[str]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    base = tmp_path_factory.mktemp("joint")
    frame = lending_club().frame.iloc[:ROWS + 200].copy()
    frame.insert(0, "id_number", [_id_number(i) for i in range(len(frame))])
    bank = frame.iloc[:ROWS][["id_number", *BANK_FIELDS, "Class"]]
    partner = frame.iloc[200:].drop(columns=[*BANK_FIELDS, *NEITHER, "Class"])
    service = PartnerService(partner.reset_index(drop=True), "id_number", KEY, base / "partner-state")
    model = train_joint(bank.reset_index(drop=True), id_column="id_number", target="Class", bad="bad",
                        partner=InProcess(service), partner_url="http://127.0.0.1:1", key=KEY,
                        settings=TrainingSettings(key_bits=512, max_epochs=4, batch_size=400, learning_rate=0.3),
                        created_at="2026-11-30T12:00:00+00:00")
    model.save(base / "model")
    return Trained(base / "model", service, base / "partner-state", bank, model.partner_features)


def partnership(bank: Bank, url: str = "http://127.0.0.1:9", fingerprint: str | None = None) -> int:
    return register_partnership(bank.uow, bank.people["wang"], PartnershipCreate(
        name="telecom", endpoint_url=url, key_fingerprint=fingerprint or KEY.fingerprint, purpose="joint PD model",
        contract_ref="DP-7", valid_from=date(2026, 1, 1), valid_to=date(2030, 12, 31),
        features=("partner_feature",), consent_basis="partner_scoring consent")).id


def champion(bank: Bank, trained: Trained, partnership_id: int) -> registry.ModelVersion:
    v = register_joint_model(bank.uow, bank.people["wang"], trained.model_dir, partnership_id=partnership_id,
                             on=TODAY, store_root=bank.store)
    registry.mark_validated(bank.uow, bank.people["sun"], v.id)
    registry.approve_model(bank.uow, bank.people["li"], v.id, note="report read")
    return registry.promote_model(bank.uow, bank.people["li"], v.id, "champion")


def test_a_joint_model_is_registered_under_its_partnership_and_approved_like_any_model(bank: Bank,
                                                                                       trained: Trained) -> None:
    pid = partnership(bank)
    v = register_joint_model(bank.uow, bank.people["wang"], trained.model_dir, partnership_id=pid, on=TODAY,
                             store_root=bank.store)
    assert (v.kind, v.status, v.trained_by_name) == ("hetero-lr", "draft", bank.people["wang"].username)
    assert v.features == [*JointModel.load(trained.model_dir).features, "partner_data"]
    count = len(trained.partner_features)
    assert count >= 5 and v.parameters["partner_feature_count"] == count
    assert v.parameters["partner_feature_aliases"][0] == "partner_feature_1"
    assert v.parameters["partnership_id"] == pid
    recorded = json.dumps([v.features, v.parameters, v.metrics])
    assert not [f for f in trained.partner_features if f in recorded]  # the partner's names stay with it
    sides = v.metrics["sides"]
    assert sides["joint"]["auc"] > sides["bank_only"]["auc"]
    joint_gain = sides["joint"]["auc"] - sides["bank_only"]["auc"]
    assert v.metrics["contribution"]["partner_auc"] == pytest.approx(joint_gain)
    assert v.metrics["test"]["ks"] > 0 and v.metrics["train"]["count"] > v.metrics["test"]["count"]
    page = risk_service.report_html(bank.uow, bank.people["sun"], v.id)
    assert "Bank only / 仅本行数据" in page and "合作方贡献" in page
    figures = risk_service.report_json(bank.uow, bank.people["sun"], v.id)
    assert figures["samples"]["test bank only"]["metrics"] == sides["bank_only"]
    assert risk_service.report_workbook(bank.uow, bank.people["sun"], v.id)[:2] == b"PK"  # an xlsx

    with pytest.raises(PermissionDenied):
        registry.mark_validated(bank.uow, bank.people["wang"], v.id)
    registry.mark_validated(bank.uow, bank.people["sun"], v.id)
    with pytest.raises(PermissionDenied, match="four eyes"):
        registry.approve_model(bank.uow, bank.people["wang"], v.id)
    assert registry.approve_model(bank.uow, bank.people["li"], v.id).status == "approved"
    with pytest.raises(Conflict, match="already registered"):
        register_joint_model(bank.uow, bank.people["wang"], trained.model_dir, partnership_id=pid, on=TODAY,
                             store_root=bank.store)


def test_no_registration_under_a_suspended_partnership_or_another_key(bank: Bank, trained: Trained) -> None:
    pid = partnership(bank)
    set_status(bank.uow, bank.people["admin"], pid, "suspended", reason="contract review")
    with pytest.raises(Conflict, match="suspended"):
        register_joint_model(bank.uow, bank.people["wang"], trained.model_dir, partnership_id=pid, on=TODAY,
                             store_root=bank.store)
    other = register_partnership(bank.uow, bank.people["wang"], PartnershipCreate(
        name="tax", endpoint_url="http://127.0.0.1:9", key_fingerprint="00ff00ff00ff00ff", purpose="x",
        contract_ref="C", valid_from=date(2026, 1, 1), valid_to=date(2030, 1, 1),
        features=("partner_feature",), consent_basis="partner_scoring consent")).id
    with pytest.raises(Conflict, match="trained under key"):
        register_joint_model(bank.uow, bank.people["wang"], trained.model_dir, partnership_id=other, on=TODAY,
                             store_root=bank.store)
    assert [m.kind for m in registry.list_model_versions(bank.uow, bank.people["wang"])] == ["scorecard"]


class PartnerServer:
    """The partner's HTTP server (the app of `federation partner serve`) on a free port, in a thread."""

    def __init__(self, trained: Trained) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(trained.service, KEY, trained.state)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def joint_bank(bank: Bank, trained: Trained, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Bank, PartnerServer, int]]:
    server = PartnerServer(trained)
    with bank.uow as u:
        decisioning_setup(u.session, u.session.get(TenantRow, bank.tenant_id))  # the default credit policy
        u.commit()
    key_file = tmp_path / "partnership.key"
    key_file.write_text("microlend-federation-key-v1:" + KEY.secret.hex() + "\n")
    install_key(key_file, tmp_path / "keys")
    partners = OnlinePartners(keys=tmp_path / "keys", timeout=0.3)
    monkeypatch.setattr(scored_decision, "_scoring", registry.ScoringRuntime(partners))
    pid = partnership(bank, server.url)
    champion(bank, trained, pid)
    yield bank, server, pid
    server.stop()
    partners.close()


def decide(bank: Bank, trained: Trained, row: int) -> tuple[decisions.DecisionRecord, str]:
    case = trained.bank.iloc[row].drop(labels=["Class"]).to_dict()
    return scored_decision.decide_application(
        bank.uow, bank.people["zhao"], application=ApplicationFacts(amount=Decimal("20000.00"), term_months=12,
                                                                    product_code="micro"),
        customer=CustomerFacts(customer_id=f"C-{row}", age=40), features={}, model=None, profile=case,
        application_ref=f"application:{row}", locale="en")


def stored_model(bank: Bank, decision_id: int) -> dict[str, Any]:
    with bank.uow as u:
        row = u.session.execute(select(DecisionRow).where(DecisionRow.id == decision_id)).scalar_one()
        return {"inputs": row.inputs["model"], "versions": row.model_versions}


def test_a_live_decision_asks_the_partner_and_falls_back_when_it_is_stopped(
        joint_bank: tuple[Bank, PartnerServer, int], trained: Trained) -> None:
    bank, server, _ = joint_bank
    record, version = decide(bank, trained, 500)  # a shared customer
    assert not version.endswith("bank-only")
    model = stored_model(bank, record.id)["inputs"]
    assert "PARTNER_UNAVAILABLE" not in model["reason_codes"]
    assert Decimal(str(model["pd"])) > 0

    server.stop()
    started = time.perf_counter()
    fallback, fallback_version = decide(bank, trained, 500)
    assert time.perf_counter() - started < 5
    assert fallback_version.endswith("bank-only")
    stored = stored_model(bank, fallback.id)
    assert stored["inputs"]["reason_codes"][0] == "PARTNER_UNAVAILABLE"
    assert stored["versions"]["model"] == fallback_version
    assert stored["inputs"]["pd"] != model["pd"]  # the bank-only model gave its own answer
    assert decisions.replay(bank.uow, bank.people["zhao"], fallback.id).equal
    scores = registry.scores_of(bank.uow, bank.people["wang"], "decision_request", "application:500")
    assert [("PARTNER_UNAVAILABLE" in s.reasons) for s in scores] == [False, True]
    with bank.uow as u:
        why = u.session.execute(select(AuditRow.reason).where(AuditRow.tenant_id == bank.tenant_id,
                                                              AuditRow.action == "model.partner_unavailable")).all()
    assert len(why) == 1 and "not reachable" in why[0][0]


def test_a_suspended_partnership_is_not_asked(joint_bank: tuple[Bank, PartnerServer, int],
                                              trained: Trained) -> None:
    bank, _, pid = joint_bank
    log = trained.state / "requests.log"
    before = log.read_text().count('"type": "score"') if log.is_file() else 0
    set_status(bank.uow, bank.people["admin"], pid, "suspended", reason="consent basis under review")
    record, version = decide(bank, trained, 600)
    assert version.endswith("bank-only")
    assert stored_model(bank, record.id)["inputs"]["reason_codes"][0] == "PARTNER_UNAVAILABLE"
    assert (log.read_text().count('"type": "score"') if log.is_file() else 0) == before


def test_an_expired_partnership_is_not_asked_and_says_so(joint_bank: tuple[Bank, PartnerServer, int],
                                                         trained: Trained) -> None:
    from datetime import timedelta

    from microlend.risk.tables import PartnershipRow

    bank, _, pid = joint_bank
    log = trained.state / "requests.log"
    before = log.read_text().count('"type": "score"') if log.is_file() else 0
    with bank.uow as u:  # the contract ran out yesterday
        u.session.get(PartnershipRow, pid).valid_to = TODAY - timedelta(days=1)
        u.commit()
    record, version = decide(bank, trained, 610)
    assert version.endswith("bank-only")
    stored = stored_model(bank, record.id)
    assert stored["inputs"]["reason_codes"][0] == "PARTNER_UNAVAILABLE"
    partner = stored["versions"]["champion"]["partner"]
    assert partner["outcome"] == "unavailable" and "ended on" in partner["reason"] and partner["latency_ms"] is None
    assert (log.read_text().count('"type": "score"') if log.is_file() else 0) == before


def test_the_cli_registers_a_joint_model_under_its_named_partnership(trained: Trained, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from microlend.cli.main import app as main_app
    from microlend.core.settings import get_settings

    from .conftest import open_bank

    bank = open_bank(tmp_path, monkeypatch)
    monkeypatch.setenv("MICROLEND_DATABASE_URL", f"sqlite:///{tmp_path / 'microlend.db'}")
    monkeypatch.setenv("MICROLEND_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        partnership(bank)
        analyst = bank.people["wang"].username
        signed = runner.invoke(main_app, ["login", "--user", analyst, "--password-stdin"], input="correct-horse-9\n")
        assert signed.exit_code == 0, signed.output
        args = ["federation", "register", "--model", str(trained.model_dir), "--tenant", "rural-bank"]
        unknown = runner.invoke(main_app, [*args, "--partnership", "nobody"])
        assert unknown.exit_code != 0 and "not found" in unknown.output
        result = runner.invoke(main_app, [*args, "--partnership", "telecom", "--name", "joint-telecom"])
        assert result.exit_code == 0, result.output
        assert "joint-telecom v1" in result.output and "hetero-lr" in result.output and "draft" in result.output
    finally:
        get_settings.cache_clear()
        bank.engine.dispose()


def test_the_analyst_pages_show_a_joint_model_and_its_report(app_client: Any, new_tenant: Any, trained: Trained,
                                                            tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    from tests.conftest import sign_in_page

    app = app_client.app
    original = app.state.settings
    app.state.settings = original.model_copy(update={"data_dir": tmp_path})
    try:
        kit = new_tenant()
        analyst = kit.principal("risk_analyst")
        pid = register_partnership(kit.uow_factory(), analyst, PartnershipCreate(
            name="telecom", endpoint_url="http://127.0.0.1:9", key_fingerprint=KEY.fingerprint, purpose="joint",
            contract_ref="DP-7", valid_from=date(2026, 1, 1), valid_to=date(2030, 12, 31),
        features=("partner_feature",), consent_basis="partner_scoring consent")).id
        v = register_joint_model(kit.uow_factory(), analyst, trained.model_dir, partnership_id=pid, on=TODAY,
                                 store_root=tmp_path / "models")
        username, _ = kit.user("model_validator")
        client = TestClient(app, raise_server_exceptions=False)
        client.cookies.set("ml_lang", "en")
        sign_in_page(client, username)
        detail = client.get(f"/analyst/models/{v.id}")
        assert detail.status_code == 200 and "hetero-lr" in detail.text
        report = client.get(f"/analyst/models/{v.id}/report")
        assert report.status_code == 200 and "Partner only" in report.text
    finally:
        app.state.settings = original


def test_a_refusal_or_a_missing_key_is_told_apart_from_an_answer(joint_bank: tuple[Bank, PartnerServer, int],
                                                                 trained: Trained, tmp_path: Path) -> None:
    bank, _, pid = joint_bank
    ask = {"partnership_id": pid, "key_fingerprint": KEY.fingerprint, "on": TODAY}
    who = bank.people["zhao"]
    partners = OnlinePartners(keys=tmp_path / "keys", timeout=2.0)
    try:
        model_id = JointModel.load(trained.model_dir).model_id
        known = partners.partial(bank.uow, who, partner_model_id=model_id, id_number=_id_number(700), **ask)
        assert known.found and known.partial is not None and not known.unavailable
        stranger = partners.partial(bank.uow, who, partner_model_id=model_id, id_number=_id_number(99), **ask)
        assert (stranger.partial, stranger.found) == (0.0, False)  # not the partner's customer: neutral part
        refused = partners.partial(bank.uow, who, partner_model_id="f" * 32, id_number=_id_number(700), **ask)
        assert refused.partial is None and "holds no part of model" in refused.unavailable
        keyless = OnlinePartners(keys=tmp_path / "no-keys").partial(
            bank.uow, who, partner_model_id=model_id, id_number=_id_number(700), **ask)
        assert keyless.partial is None and "not installed" in keyless.unavailable
    finally:
        partners.close()


def test_a_partner_that_accepts_but_never_answers_is_given_up_after_the_timeout(bank: Bank, tmp_path: Path) -> None:
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel accepts the connection; nobody ever reads or answers
        pid = partnership(bank, f"http://127.0.0.1:{silent.getsockname()[1]}")
        key_file = tmp_path / "partnership.key"
        key_file.write_text("microlend-federation-key-v1:" + KEY.secret.hex() + "\n")
        install_key(key_file, tmp_path / "keys")
        partners = OnlinePartners(keys=tmp_path / "keys", timeout=0.3)
        try:
            started = time.perf_counter()
            answer = partners.partial(bank.uow, bank.people["zhao"], partnership_id=pid, partner_model_id="0" * 32,
                                      key_fingerprint=KEY.fingerprint, id_number=_id_number(700), on=TODAY)
            waited = time.perf_counter() - started
        finally:
            partners.close()
    assert answer.partial is None and "Timeout" in answer.unavailable
    assert 0.25 < waited < 2.0
