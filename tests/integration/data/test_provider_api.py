"""The providers API as staff use it: the administrator sets a provider up (the key goes in and never comes
out), reviewers list calls with subjects masked, and a recorded answer is replayed, masked for an auditor."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import date

import pytest
from tests.conftest import Api
from tests.provider_server import ProviderServer

from microlend.core.identity import Principal, Role
from microlend.data.gateway import Gateway
from microlend.demo import identities


@pytest.fixture(scope="module")
def server() -> Iterator[ProviderServer]:
    s = ProviderServer().start()
    yield s
    s.stop()


def test_set_up_call_list_and_replay(api: Api, server: ProviderServer) -> None:
    admin = api.token("admin")
    r = api.client.put(
        "/api/v1/data/providers/tax",
        headers=admin,
        json={"base_url": server.base_url, "api_key": "sandbox", "cost_per_call": "0.80"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["api_key_set"] is True and "api_key" not in r.json() and r.json()["cost_per_call"] == "0.80"
    r = api.client.put("/api/v1/data/providers/tax", headers=admin, json={"timeout_ms": 10})
    assert r.status_code == 422 and r.json()["field"] == "timeout_ms", r.text
    r = api.client.put("/api/v1/data/providers/tax", headers=admin, json={"cost_per_call": 0.8})
    assert r.status_code == 422, r.text
    r = api.client.put("/api/v1/data/providers/weather", headers=admin, json={"base_url": "https://x.cn"})
    assert r.status_code == 422, r.text
    listed = api.client.get("/api/v1/data/providers", headers=api.token("auditor"))
    assert listed.status_code == 200 and "sandbox" not in listed.text
    assert [p["kind"] for p in listed.json() if p["configured"]] == ["tax"]

    subject = identities.uscc(random.Random(5))
    officer = Principal(
        user_id=1, tenant_id=api.kit.tenant.id, username="officer", roles=frozenset({Role.CREDIT_OFFICER})
    )
    gateway = Gateway()
    try:
        got = gateway.fetch(
            api.kit.uow_factory(),
            officer,
            subject,
            "business",
            ["tax", "bureau"],
            consents={"external_data"},
            purpose="application",
            as_of=date(2026, 11, 30),
        )
    finally:
        gateway.close()
    calls = api.client.get(
        "/api/v1/data/provider-calls", headers=api.token("risk_analyst"), params={"subject": subject}
    )
    assert calls.status_code == 200 and calls.json()["total"] == 2, calls.text
    assert subject not in calls.text and {c["status"] for c in calls.json()["items"]} == {"ok", "no_consent"}
    call_id = got.results["tax"].call_id
    masked = api.client.get(f"/api/v1/data/provider-calls/{call_id}/payload", headers=api.token("auditor"))
    assert masked.status_code == 200 and masked.json()["masked"] is True and subject not in masked.text
    raw = api.client.get(f"/api/v1/data/provider-calls/{call_id}/payload", headers=api.token("credit_officer"))
    assert raw.status_code == 200 and json.loads(raw.json()["payload"])["subject"] == subject
    none = api.client.get(
        f"/api/v1/data/provider-calls/{got.results['bureau'].call_id}/payload", headers=api.token("auditor")
    )
    assert none.status_code == 404, none.text
    usage = api.client.get("/api/v1/data/provider-usage", headers=api.token("risk_analyst"))
    tax = next(u for u in usage.json() if u["kind"] == "tax")
    assert tax["calls"] == 1 and tax["cost"] == "0.80" and tax["by_status"] == {"ok": 1}
