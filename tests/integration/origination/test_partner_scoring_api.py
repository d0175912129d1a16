"""An application scored by a joint model, through the HTTP API on SQLite and PostgreSQL, with the partner's real
HTTP server on a free port: the partner is asked about the applicant (by the keyed hash of the ID number) only
when the applicant gave the partner_scoring consent; otherwise the bank-only model decides with
PARTNER_NO_CONSENT and the partner receives nothing. The decision records the versions that scored and the
partner call's outcome and latency."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import uvicorn
from tests.conftest import Api
from tests.partner_wire import InProcess
from tests.provider_server import free_port
from tests.signing import consent_by_code

from microlend.demo import identities
from microlend.origination import service as origination
from microlend.risk import registry
from microlend.risk.datasets import lending_club
from microlend.risk.federation.keys import PartnershipKey
from microlend.risk.federation.online import OnlinePartners, install_key
from microlend.risk.federation.partner import PartnerService
from microlend.risk.federation.partnerships import PartnershipCreate, register_partnership
from microlend.risk.federation.server import create_app
from microlend.risk.federation.training import TrainingSettings, train_joint
from microlend.risk.joint_models import register_joint_model

BANK_FIELDS = ["funded_amnt", "term", "addr_state", "verification_status", "annual_inc", "emp_length"]
NEITHER = ["int_rate", "sub_grade"]
ROWS = 2000
KEY = PartnershipKey(bytes(range(1, 33)))


@dataclass
class Joint:
    model_dir: Path
    state: Path
    bank: pd.DataFrame
    server_url: str


@pytest.fixture(scope="module")
def joint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Joint]:
    """A joint model trained on valid resident ID numbers, and the partner's HTTP server holding its part."""
    base = tmp_path_factory.mktemp("joint-api")
    rng = random.Random(18)
    frame = lending_club().frame.iloc[:ROWS + 100].copy()
    ids: list[str] = []
    while len(ids) < len(frame):
        candidate = identities.resident_id(rng, identities.birth_date_for_age(rng, 40, date(2026, 1, 1)))
        if candidate not in ids:
            ids.append(candidate)
    frame.insert(0, "id_number", ids)
    bank = frame.iloc[:ROWS][["id_number", *BANK_FIELDS, "Class"]].reset_index(drop=True)
    partner = frame.iloc[100:].drop(columns=[*BANK_FIELDS, *NEITHER, "Class"]).reset_index(drop=True)
    service = PartnerService(partner, "id_number", KEY, base / "partner-state", workers=1)
    model = train_joint(bank, id_column="id_number", target="Class", bad="bad", partner=InProcess(service),
                        partner_url="http://127.0.0.1:1", key=KEY,
                        settings=TrainingSettings(key_bits=512, max_epochs=3, batch_size=400, learning_rate=0.3,
                                                  workers=1), created_at="2026-11-30T12:00:00+00:00")
    model.save(base / "model")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(service, KEY, base / "partner-state"), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield Joint(base / "model", base / "partner-state", bank, f"http://127.0.0.1:{port}")
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def joint_api(api: Api, joint: Joint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """The bank's champion is the joint model, under a partnership with the partner's server."""
    key_file = tmp_path / "partnership.key"
    key_file.write_text("microlend-federation-key-v1:" + KEY.secret.hex() + "\n")
    install_key(key_file, tmp_path / "keys")
    # a generous timeout: the shared test machine is busy (the 300 ms limit has its own test)
    partners = OnlinePartners(keys=tmp_path / "keys", timeout=5.0)
    monkeypatch.setattr(origination, "_scoring", registry.ScoringRuntime(partners))
    analyst, other = api.kit.principal("risk_analyst"), api.kit.principal("risk_analyst")
    pid = register_partnership(api.kit.uow_factory(), analyst, PartnershipCreate(
        name="telecom", endpoint_url=joint.server_url, key_fingerprint=KEY.fingerprint, purpose="joint PD model",
        contract_ref="DP-18", valid_from=date(2026, 1, 1), valid_to=date(2099, 12, 31),
        features=("partner_feature",), consent_basis="partner_scoring consent")).id
    v = register_joint_model(api.kit.uow_factory(), analyst, joint.model_dir, partnership_id=pid,
                             on=date.today(), store_root=tmp_path / "models")
    registry.mark_validated(api.kit.uow_factory(), api.kit.principal("model_validator"), v.id)
    registry.approve_model(api.kit.uow_factory(), other, v.id, note="report read")
    registry.promote_model(api.kit.uow_factory(), other, v.id, "champion")
    yield api
    partners.close()


def _customer(api: Api, joint: Joint, row: int) -> int:
    r = joint.bank.iloc[row]
    attributes = {f: (r[f].item() if hasattr(r[f], "item") else r[f]) for f in BANK_FIELDS}
    body = {"kind": "person", "name": "周老板", "id_number": r["id_number"],
            "phone": identities.mobile(random.Random(row)), "industry": "retail", "branch": "城关支行",
            "attributes": {**attributes, "annual_turnover": "600000", "years_in_business": 8}}
    created = api.client.post("/api/v1/customers", json=body, headers=api.token("credit_officer"))
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def _apply(api: Api, customer_id: int, consents: tuple[str, ...]) -> dict[str, Any]:
    for scope in consents:
        consent_by_code(api, customer_id, scope)
    r = api.client.post("/api/v1/applications", headers=api.token("credit_officer"), json={
        "customer_id": customer_id, "product_code": "EI-STD", "amount": "30000.00", "term_months": 12,
        "purpose": "进货", "consents": list(consents)})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _decision(api: Api, decision_id: int) -> dict[str, Any]:
    r = api.client.get(f"/api/v1/decisions/{decision_id}", headers=api.token("risk_analyst"))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _score_requests(joint: Joint) -> int:
    log = joint.state / "requests.log"
    return log.read_text().count('"type": "score"') if log.is_file() else 0


def test_with_the_consent_the_partner_is_asked_by_the_hashed_id_and_the_decision_records_the_call(
        joint_api: Api, joint: Joint) -> None:
    api = joint_api
    before = _score_requests(joint)
    app = _apply(api, _customer(api, joint, 300), ("credit_report", "partner_scoring"))  # a shared customer
    assert _score_requests(joint) == before + 1
    d = _decision(api, app["decision"]["id"])
    assert d["model_versions"]["model"].startswith("joint-telecom") and "bank-only" not in d["model_versions"]["model"]
    champion = d["model_versions"]["champion"]
    assert champion["kind"] == "hetero-lr" and champion["label"] == d["model_versions"]["model"]
    assert champion["partner"]["outcome"] == "joint" and champion["partner"]["reason"] == ""
    assert 0 < champion["partner"]["latency_ms"] < 5000
    assert d["model_versions"]["challenger"] is None
    codes = d["inputs"]["model"]["reason_codes"]
    assert "PARTNER_UNAVAILABLE" not in codes and "PARTNER_NO_CONSENT" not in codes
    # the partner's log and transcript hold the keyed hash, never the ID number
    number = joint.bank.iloc[300]["id_number"]
    for name in ("requests.log", "transcript.jsonl"):
        path = joint.state / name
        assert not path.is_file() or number not in path.read_text()
    replay = api.client.post(f"/api/v1/decisions/{d['id']}/replay", headers=api.token("risk_analyst"))
    assert replay.status_code == 200 and replay.json()["equal"] is True


def test_without_the_consent_the_partner_is_not_asked_and_the_bank_only_model_decides(
        joint_api: Api, joint: Joint) -> None:
    api = joint_api
    before = _score_requests(joint)
    app = _apply(api, _customer(api, joint, 301), ("credit_report",))
    assert _score_requests(joint) == before  # nothing about this applicant reached the partner
    d = _decision(api, app["decision"]["id"])
    assert d["model_versions"]["model"].endswith("bank-only")
    partner = d["model_versions"]["champion"]["partner"]
    assert partner["outcome"] == "no_consent" and partner["latency_ms"] is None
    assert "partner_scoring" in partner["reason"]
    assert d["inputs"]["model"]["reason_codes"][0] == "PARTNER_NO_CONSENT"

    # a revoked consent no longer counts
    cid = _customer(api, joint, 302)
    consent_by_code(api, cid, "partner_scoring")
    officer = api.token("credit_officer")
    revoked = api.client.delete(f"/api/v1/customers/{cid}/consents/partner_scoring", headers=officer)
    assert revoked.status_code in (200, 204), revoked.text
    app = _apply(api, cid, ("credit_report",))
    d = _decision(api, app["decision"]["id"])
    assert d["model_versions"]["champion"]["partner"]["outcome"] == "no_consent"
    assert _score_requests(joint) == before


def test_with_the_consent_but_the_partner_down_the_reason_is_unavailable(joint_api: Api, joint: Joint,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    api = joint_api
    with api.kit.uow_factory() as u:  # the partnership now points at a port nobody listens on
        from microlend.risk.tables import PartnershipRow

        row = u.session.query(PartnershipRow).filter_by(tenant_id=api.kit.tenant.id).one()
        row.endpoint_url = f"http://127.0.0.1:{free_port()}"
        u.commit()
    app = _apply(api, _customer(api, joint, 303), ("credit_report", "partner_scoring"))
    d = _decision(api, app["decision"]["id"])
    partner = d["model_versions"]["champion"]["partner"]
    assert partner["outcome"] == "unavailable" and "not reachable" in partner["reason"]
    assert partner["latency_ms"] is not None
    assert d["inputs"]["model"]["reason_codes"][0] == "PARTNER_UNAVAILABLE"


def _consents(api: Api, customer_id: int) -> set[str]:
    r = api.client.get(f"/api/v1/customers/{customer_id}/consents", headers=api.token("credit_officer"))
    assert r.status_code == 200, r.text
    return {c["scope"] for c in r.json() if c.get("active", True)}


def test_a_borrower_applying_online_is_asked_for_the_partner_scoring_consent_only_while_a_partnership_runs(
        joint_api: Api, joint: Joint) -> None:
    from tests.integration.origination.test_workbench_pages import as_borrower, register

    from microlend.core import sessions
    from microlend.risk.tables import PartnershipRow

    api = joint_api
    token, _ = register(api)
    h = as_borrower(api, token)
    form = api.client.get("/b/apply", headers=h)
    assert form.status_code == 200 and 'data-testid="consent-partner_scoring"' in form.text
    assert "telecom" in form.text and "partner_scoring/2026-11-30" in form.text  # the partner named, the text shown
    zh = api.client.get("/b/apply", headers={**h, "Cookie": h["Cookie"].replace("ml_lang=en", "ml_lang=zh_CN")})
    assert "数据合作方（telecom）" in zh.text
    r = api.client.post("/b/apply", headers=h, follow_redirects=False, data={
        "product_code": "EI-STD", "amount": "30000", "term_months": "12", "purpose": "stock",
        "consent": ["credit_report", "partner_scoring"]})
    assert r.status_code in (303, 422), r.text
    who = sessions.resolve(api.kit.uow_factory(), token, api.client.app.state.settings)  # type: ignore[attr-defined]
    assert who.customer_id is not None
    assert "partner_scoring" in _consents(api, who.customer_id)

    # a suspended partnership asks nobody's consent, and a consent posted anyway is not recorded
    with api.kit.uow_factory() as u:
        u.session.query(PartnershipRow).filter_by(tenant_id=api.kit.tenant.id).update({"status": "suspended"})
        u.commit()
    token2, _ = register(api)
    h2 = as_borrower(api, token2)
    assert 'data-testid="consent-partner_scoring"' not in api.client.get("/b/apply", headers=h2).text
    api.client.post("/b/apply", headers=h2, follow_redirects=False, data={
        "product_code": "EI-STD", "amount": "30000", "term_months": "12", "purpose": "stock",
        "consent": ["credit_report", "partner_scoring"]})
    who2 = sessions.resolve(api.kit.uow_factory(), token2, api.client.app.state.settings)  # type: ignore[attr-defined]
    assert who2.customer_id is not None
    assert "partner_scoring" not in _consents(api, who2.customer_id)


def test_a_bank_without_a_data_partner_asks_no_partner_scoring_consent(api: Api) -> None:
    from tests.integration.origination.test_workbench_pages import as_borrower, register

    token, _ = register(api)
    form = api.client.get("/b/apply", headers=as_borrower(api, token))
    assert form.status_code == 200 and 'data-testid="consent-partner_scoring"' not in form.text
