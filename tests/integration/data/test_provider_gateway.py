"""The provider gateway against a real HTTP server on loopback (tests/provider_server.py), on SQLite and
PostgreSQL: parallel calls, consent gating, faults (503, too slow, malformed, contract broken, refused
connection, refused key), the circuit breaker, the cache, the call rows and what is encrypted at rest."""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text
from tests.provider_server import KIND_PATHS, ProviderServer, free_port, payload

from microlend.core.clock import utcnow
from microlend.core.errors import NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Principal, Role, system_principal
from microlend.core.uow import UnitOfWork
from microlend.data import provider_service as svc
from microlend.data.gateway import CallStatus, Gateway, link_calls, payload_of
from microlend.data.providers import KINDS, BureauReport, EnforcementRecord, MerchantFlows, TaxRecord
from microlend.data.tables import ProviderCallRow
from microlend.demo import identities

ALL_CONSENTS = {"credit_report", "external_data"}
AS_OF = date(2026, 11, 30)
_rng = random.Random(14)


@pytest.fixture(scope="module")
def server() -> Iterator[ProviderServer]:
    s = ProviderServer().start()
    yield s
    s.stop()


@pytest.fixture
def provider(server: ProviderServer) -> ProviderServer:
    """The shared server, its faults and counters reset for this test."""
    server.faults.clear()
    server.calls.clear()
    server.unknown.clear()
    server.latency_ms = (0, 0)
    return server


@pytest.fixture
def admin(tenant_id: int) -> Principal:
    return system_principal(tenant_id, "admin")


@pytest.fixture
def officer(tenant_id: int) -> Principal:
    return Principal(user_id=3, tenant_id=tenant_id, username="officer", roles=frozenset({Role.CREDIT_OFFICER}))


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    g = Gateway()
    yield g
    g.close()


def set_up(uow: UnitOfWork, admin: Principal, base_url: str, **changes: Any) -> None:
    settings: dict[str, Any] = {
        "base_url": base_url,
        "api_key": "sandbox",
        "cost_per_call": Decimal("1.50"),
        "timeout_ms": 2000,
        "retries": 0,
        **changes,
    }
    for kind in KINDS:
        svc.set_provider(uow, admin, kind, svc.ProviderChanges(**settings))


def business() -> str:
    return identities.uscc(_rng)


def person() -> str:
    return identities.resident_id(_rng, date(1985, 5, 17))


def calls(uow: UnitOfWork) -> list[ProviderCallRow]:
    with uow:
        return list(uow.session.execute(select(ProviderCallRow).order_by(ProviderCallRow.id)).scalars())


def test_six_providers_are_called_in_parallel(
    uow: UnitOfWork, admin: Principal, officer: Principal, provider: ProviderServer, gateway: Gateway
) -> None:
    set_up(uow, admin, provider.base_url)
    provider.latency_ms = (200, 200)
    gateway.fetch(
        uow, officer, business(), "business", KINDS, consents=ALL_CONSENTS, purpose="warm-up", as_of=AS_OF
    )  # connections opened once, as a running process has them
    subject = business()
    started = time.perf_counter()
    got = gateway.fetch(
        uow,
        officer,
        subject,
        "business",
        KINDS,
        consents=ALL_CONSENTS,
        purpose="application",
        application_id=12,
        as_of=AS_OF,
    )
    elapsed = time.perf_counter() - started
    assert {k: r.status for k, r in got.results.items()} == dict.fromkeys(KINDS, CallStatus.OK)
    assert elapsed < 0.5, f"six providers of 200 ms took {elapsed:.3f} s: not in parallel"
    assert all(r.latency_ms >= 200 for r in got.results.values())
    bureau, tax = got.record("bureau"), got.record("tax")
    assert isinstance(bureau, BureauReport) and bureau.total_balance == Decimal("123000.00")
    assert (
        isinstance(tax, TaxRecord) and len(tax.declarations) == 24 and tax.declarations[-1].period == date(2026, 10, 1)
    )
    assert isinstance(got.record("merchant"), MerchantFlows)
    assert got.cost == Decimal("9.00")
    payloads = got.payloads()
    assert set(payloads) == set(KINDS) and payloads["tax"] == payload("tax", subject, AS_OF)
    rows = [r for r in calls(uow) if r.purpose == "application"]
    assert [r.kind for r in rows] == list(KINDS)
    assert all(
        r.status == "ok"
        and r.cost == Decimal("1.50")
        and r.application_id == 12
        and not r.cached
        and r.called_by == "officer"
        and r.http_status == 200
        for r in rows
    )
    assert {r.subject_masked for r in rows} == {subject[:4] + "*" * 10 + subject[-4:]}
    assert [got.results[k].call_id for k in KINDS] == [r.id for r in rows]


def test_a_kind_without_its_consent_is_not_called(
    uow: UnitOfWork, admin: Principal, officer: Principal, provider: ProviderServer, gateway: Gateway
) -> None:
    set_up(uow, admin, provider.base_url)
    got = gateway.fetch(
        uow, officer, business(), "business", KINDS, consents={"external_data"}, purpose="application", as_of=AS_OF
    )
    statuses = {k: r.status for k, r in got.results.items()}
    assert statuses == {
        "bureau": CallStatus.NO_CONSENT,
        "tax": CallStatus.OK,
        "einvoice": CallStatus.OK,
        "merchant": CallStatus.OK,
        "registry": CallStatus.OK,
        "enforcement": CallStatus.OK,
    }
    assert (
        "bureau" not in provider.calls and got.results["bureau"].error == "no 'credit_report' consent from the subject"
    )
    got = gateway.fetch(uow, officer, business(), "business", KINDS, consents=set(), purpose="prescreen", as_of=AS_OF)
    assert {k for k, r in got.results.items() if r.status is CallStatus.OK} == {"registry", "enforcement"}
    assert set(provider.calls) == {"tax", "einvoice", "merchant", "registry", "enforcement"}
    assert provider.calls["tax"] == 1  # only the first fetch, which had the consent
    rows = [r for r in calls(uow) if r.purpose == "prescreen"]
    assert len(rows) == 6
    assert all(r.cost == 0 and r.payload is None for r in rows if r.status == "no_consent")


def test_faults_become_statuses_and_never_raise(
    uow: UnitOfWork, admin: Principal, officer: Principal, provider: ProviderServer, gateway: Gateway
) -> None:
    set_up(uow, admin, provider.base_url, timeout_ms=300)
    svc.set_provider(uow, admin, "bureau", svc.ProviderChanges(retries=1))
    svc.set_provider(uow, admin, "registry", svc.ProviderChanges(base_url=f"http://127.0.0.1:{free_port()}"))
    provider.faults.update({"bureau": "error", "tax": "timeout", "einvoice": "malformed", "merchant": "broken"})
    started = time.perf_counter()
    got = gateway.fetch(
        uow, officer, business(), "business", KINDS, consents=ALL_CONSENTS, purpose="faults", as_of=AS_OF
    )
    elapsed = time.perf_counter() - started
    r = got.results
    assert r["bureau"].status is CallStatus.UNAVAILABLE and r["bureau"].http_status == 503
    assert provider.calls["bureau"] == 2, "a 503 is retried once"
    assert r["tax"].status is CallStatus.UNAVAILABLE and "no answer within 0.3 s" in (r["tax"].error or "")
    assert r["einvoice"].status is CallStatus.DATA_ERROR and r["einvoice"].error == "einvoice: payload: not valid JSON"
    assert r["merchant"].status is CallStatus.DATA_ERROR
    assert r["merchant"].error == (
        "merchant: days[1].amount: an amount is a string with 2 decimals ('123.45'), got '12.3'"
    )
    assert r["registry"].status is CallStatus.UNAVAILABLE and "cannot reach" in (r["registry"].error or "")
    assert r["enforcement"].status is CallStatus.OK and isinstance(got.record("enforcement"), EnforcementRecord)
    assert got.record("merchant") is None
    assert set(got.payloads()) == {"enforcement"}, "an answer that broke its contract is not handed on"
    assert elapsed < 1.5
    # billed when the provider answered: a broken answer is still an answer
    assert {k: x.cost for k, x in r.items()} == {
        "bureau": 0,
        "tax": 0,
        "einvoice": Decimal("1.50"),
        "merchant": Decimal("1.50"),
        "registry": 0,
        "enforcement": Decimal("1.50"),
    }
    rows = {row.kind: row for row in calls(uow) if row.purpose == "faults"}
    assert rows["merchant"].payload is not None and rows["bureau"].payload is None
    assert rows["tax"].status == "unavailable" and rows["tax"].latency_ms >= 300


def test_an_unknown_subject_and_a_refused_key(
    uow: UnitOfWork, admin: Principal, officer: Principal, provider: ProviderServer, gateway: Gateway
) -> None:
    set_up(uow, admin, provider.base_url)
    svc.set_provider(uow, admin, "enforcement", svc.ProviderChanges(api_key="wrong"))
    subject = person()
    provider.unknown.add(subject)
    got = gateway.fetch(
        uow, officer, subject, "person", KINDS, consents=ALL_CONSENTS, purpose="application", as_of=AS_OF
    )
    statuses = {k: r.status for k, r in got.results.items()}
    assert statuses == {
        "bureau": CallStatus.NOT_FOUND,
        "tax": CallStatus.NOT_FOUND,
        "einvoice": CallStatus.NOT_FOUND,
        "merchant": CallStatus.NOT_FOUND,
        "registry": CallStatus.NOT_FOUND,
        "enforcement": CallStatus.UNAVAILABLE,
    }
    assert "tax" not in provider.calls, "tax knows only businesses: a person is not sent"
    assert got.results["enforcement"].error == "the provider refused the API key (HTTP 401)"
    assert got.results["bureau"].cost == Decimal("1.50") and got.results["tax"].cost == 0
    assert got.payloads()["bureau"]["found"] is False and "enforcement" not in got.payloads()


def test_not_configured_and_disabled_kinds_are_not_called(
    uow: UnitOfWork, admin: Principal, officer: Principal, provider: ProviderServer, gateway: Gateway
) -> None:
    svc.set_provider(
        uow, admin, "registry", svc.ProviderChanges(base_url=provider.base_url, api_key="sandbox", enabled=False)
    )
    got = gateway.fetch(
        uow, officer, business(), "business", ["bureau", "registry"], consents=ALL_CONSENTS, purpose="application"
    )
    assert got.results["bureau"].status is CallStatus.NOT_CONFIGURED
    assert got.results["registry"].status is CallStatus.NOT_CONFIGURED
    assert got.results["registry"].error == "provider disabled" and not provider.calls


def test_the_breaker_opens_after_repeated_failures(
    uow: UnitOfWork, admin: Principal, officer: Principal, provider: ProviderServer, gateway: Gateway
) -> None:
    set_up(uow, admin, provider.base_url, breaker_failures=2, breaker_seconds=60)
    provider.faults["bureau"] = "error"
    for _ in range(2):
        got = gateway.fetch(
            uow, officer, business(), "business", ["bureau"], consents=ALL_CONSENTS, purpose="application"
        )
        assert got.results["bureau"].http_status == 503
    got = gateway.fetch(uow, officer, business(), "business", ["bureau"], consents=ALL_CONSENTS, purpose="application")
    assert got.results["bureau"].status is CallStatus.UNAVAILABLE and got.results["bureau"].http_status is None
    assert "circuit open" in (got.results["bureau"].error or "")
    assert provider.calls["bureau"] == 2, "an open breaker does not call the provider"


def test_a_repeat_is_answered_from_the_cache_quickly_and_free(
    uow: UnitOfWork, admin: Principal, officer: Principal, provider: ProviderServer, gateway: Gateway
) -> None:
    set_up(uow, admin, provider.base_url)
    provider.latency_ms = (50, 50)
    subject = business()
    first = gateway.fetch(uow, officer, subject, "business", KINDS, consents=ALL_CONSENTS, purpose="first", as_of=AS_OF)
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        again = gateway.fetch(
            uow, officer, subject, "business", KINDS, consents=ALL_CONSENTS, purpose="again", as_of=AS_OF
        )
        timings.append(time.perf_counter() - started)
    assert min(timings) < 0.05, f"a cached repeat took {min(timings) * 1000:.1f} ms"
    assert all(r.cached and r.cost == 0 and r.status is CallStatus.OK for r in again.results.values())
    assert again.record("tax") == first.record("tax")
    assert all(n == 1 for n in provider.calls.values())
    rows = [r for r in calls(uow) if r.purpose == "again"]
    assert len(rows) == 30 and all(r.cached and r.cost == 0 and r.payload is not None for r in rows)
    # another day is another question
    other = gateway.fetch(
        uow,
        officer,
        subject,
        "business",
        ["bureau"],
        consents=ALL_CONSENTS,
        purpose="first",
        as_of=AS_OF - timedelta(days=1),
    )
    assert not other.results["bureau"].cached and provider.calls["bureau"] == 2


def test_the_key_and_the_answers_are_encrypted_at_rest(
    uow: UnitOfWork, admin: Principal, officer: Principal, provider: ProviderServer, gateway: Gateway, tenant_id: int
) -> None:
    set_up(uow, admin, provider.base_url)
    svc.set_provider(uow, admin, "bureau", svc.ProviderChanges(api_key="bureau-secret-key-123"))
    subject = business()
    got = gateway.fetch(
        uow, officer, subject, "business", ["bureau", "tax"], consents=ALL_CONSENTS, purpose="application", as_of=AS_OF
    )
    with uow:
        db = uow.session
        key = db.execute(text("SELECT api_key FROM data_provider_settings WHERE kind = 'bureau'")).scalar_one()
        raw = db.execute(
            text(
                "SELECT payload, payload_sha256, subject_index, subject_masked FROM data_provider_calls WHERE id = :id"
            ),
            {"id": got.results["tax"].call_id},
        ).one()
    assert "bureau-secret-key-123" not in key and len(key) > 40
    assert subject not in raw.payload and "declarations" not in raw.payload
    assert subject not in raw.subject_index and subject not in raw.subject_masked
    sent = json.dumps(payload("tax", subject, AS_OF))
    replay = payload_of(uow, officer, got.results["tax"].call_id)
    assert json.loads(replay.text) == json.loads(sent) and not replay.masked
    assert raw.payload_sha256 == hashlib.sha256(replay.text.encode()).hexdigest() == replay.sha256
    auditor = Principal(user_id=9, tenant_id=tenant_id, username="aud", roles=frozenset({Role.AUDITOR}))
    masked = payload_of(uow, auditor, got.results["tax"].call_id)
    assert masked.masked and subject not in masked.text and json.loads(masked.text)["declarations"]
    marketer = Principal(user_id=10, tenant_id=tenant_id, username="mkt", roles=frozenset({Role.MARKETER}))
    with pytest.raises(PermissionDenied):
        payload_of(uow, marketer, got.results["tax"].call_id)
    other_bank = system_principal(tenant_id + 1000)
    with pytest.raises(NotFound):
        payload_of(uow, other_bank, got.results["tax"].call_id)
    # the settings never show the key, only that one is set
    shown = {s.kind: s for s in svc.provider_settings(uow, admin)}
    assert shown["bureau"].api_key_set and "bureau-secret-key-123" not in repr(shown)


def test_rows_join_the_callers_unit_of_work(
    uow: UnitOfWork, admin: Principal, officer: Principal, provider: ProviderServer, gateway: Gateway
) -> None:
    set_up(uow, admin, provider.base_url)
    with uow:
        gateway.fetch(uow, officer, business(), "business", ["registry"], consents=set(), purpose="rolled back")
        # the caller leaves without commit: its rows go with it
    with uow:
        gateway.fetch(uow, officer, business(), "business", ["registry"], consents=set(), purpose="kept")
        uow.commit()
    assert [r.purpose for r in calls(uow)] == ["kept"]


def test_calls_made_before_the_application_are_linked_to_it_once(
    uow: UnitOfWork, admin: Principal, officer: Principal, provider: ProviderServer, gateway: Gateway
) -> None:
    set_up(uow, admin, provider.base_url)
    with uow:
        gateway.fetch(uow, officer, business(), "business", ["registry", "tax"], consents=ALL_CONSENTS,
                      purpose="credit application", as_of=AS_OF)
        uow.commit()
    made = [r.id for r in calls(uow)]
    assert len(made) == 2
    system = system_principal(officer.tenant_id, "origination")
    assert link_calls(uow, system, [*made, 999_999], 41) == 2
    assert [r.application_id for r in calls(uow)] == [41, 41]
    assert link_calls(uow, system, made, 42) == 0  # a call already tied to an application keeps it
    assert link_calls(uow, system, [], 42) == 0
    assert [r.application_id for r in calls(uow)] == [41, 41]


def test_calls_and_usage_for_reviewers(
    uow: UnitOfWork, admin: Principal, officer: Principal, provider: ProviderServer, gateway: Gateway, tenant_id: int
) -> None:
    set_up(uow, admin, provider.base_url)
    subject = business()
    gateway.fetch(
        uow,
        officer,
        subject,
        "business",
        KINDS,
        consents=ALL_CONSENTS,
        purpose="application",
        application_id=5,
        as_of=AS_OF,
    )
    gateway.fetch(
        uow,
        officer,
        subject,
        "business",
        KINDS,
        consents=ALL_CONSENTS,
        purpose="application",
        application_id=5,
        as_of=AS_OF,
    )
    gateway.fetch(uow, officer, business(), "business", ["bureau"], consents=set(), purpose="application")
    analyst = Principal(user_id=4, tenant_id=tenant_id, username="ana", roles=frozenset({Role.RISK_ANALYST}))
    page = svc.provider_calls(uow, analyst, svc.CallFilters(subject_id=subject), page=1, page_size=5)
    assert page.total == 12 and len(page.items) == 5
    assert all(c.subject == subject[:4] + "*" * 10 + subject[-4:] for c in page.items)
    assert svc.provider_calls(uow, analyst, svc.CallFilters(status="no_consent")).total == 1
    assert svc.provider_calls(uow, analyst, svc.CallFilters(application_id=5, kind="tax")).total == 2
    usage = {u.kind: u for u in svc.provider_usage(uow, analyst, utcnow() - timedelta(hours=1))}
    assert usage["bureau"].calls == 3 and usage["bureau"].cached == 1
    assert usage["bureau"].by_status == {"ok": 2, "no_consent": 1}
    assert usage["tax"].cost == Decimal("1.50") and usage["tax"].p50_latency_ms is not None
    assert usage["tax"].p99_latency_ms is not None and usage["tax"].p99_latency_ms >= usage["tax"].p50_latency_ms
    with pytest.raises(PermissionDenied):
        svc.provider_calls(uow, officer)


def test_settings_are_checked_and_audited(
    uow: UnitOfWork, admin: Principal, officer: Principal, tenant_id: int
) -> None:
    with pytest.raises(ValidationError, match="base_url: a new provider needs its address"):
        svc.set_provider(uow, admin, "tax", svc.ProviderChanges(timeout_ms=100))
    for changes, field in [
        (svc.ProviderChanges(base_url="ftp://x.cn"), "base_url"),
        (svc.ProviderChanges(base_url="https://x.cn", timeout_ms=49), "timeout_ms"),
        (svc.ProviderChanges(base_url="https://x.cn", timeout_ms=30_001), "timeout_ms"),
        (svc.ProviderChanges(base_url="https://x.cn", retries=4), "retries"),
        (svc.ProviderChanges(base_url="https://x.cn", cost_per_call=Decimal("0.001")), "cost_per_call"),
        (svc.ProviderChanges(base_url="https://x.cn", cost_per_call=Decimal("-1")), "cost_per_call"),
    ]:
        with pytest.raises(ValidationError) as err:
            svc.set_provider(uow, admin, "tax", changes)
        assert err.value.field == field
    with pytest.raises(ValidationError, match="kind: unknown provider kind"):
        svc.set_provider(uow, admin, "weather", svc.ProviderChanges(base_url="https://x.cn"))
    with pytest.raises(PermissionDenied):
        svc.set_provider(uow, officer, "tax", svc.ProviderChanges(base_url="https://x.cn"))
    view = svc.set_provider(
        uow,
        admin,
        "tax",
        svc.ProviderChanges(base_url="https://tax.example.cn/", api_key="k1", cost_per_call=Decimal("0.80")),
    )
    assert view.base_url == "https://tax.example.cn" and view.api_key_set and view.currency == "CNY"
    view = svc.set_provider(uow, admin, "tax", svc.ProviderChanges(api_key=""))
    assert not view.api_key_set and view.cost_per_call == Decimal("0.80")
    with uow:
        actions = uow.session.execute(
            text("SELECT action, after FROM audit_log WHERE tenant_id = :t ORDER BY seq"), {"t": tenant_id}
        ).all()
    assert [a.action for a in actions][-2:] == ["data_provider.update", "data_provider.update"]
    assert "k1" not in actions[-2].after


def test_bad_requests_are_refused_before_any_call(
    uow: UnitOfWork, admin: Principal, officer: Principal, provider: ProviderServer, gateway: Gateway, tenant_id: int
) -> None:
    set_up(uow, admin, provider.base_url)
    with pytest.raises(ValidationError, match="subject_id"):
        gateway.fetch(uow, officer, "123", "business", KINDS, consents=ALL_CONSENTS, purpose="x")
    with pytest.raises(ValidationError, match="kinds: unknown provider kind 'weather'"):
        gateway.fetch(uow, officer, business(), "business", ["weather"], consents=ALL_CONSENTS, purpose="x")
    with pytest.raises(ValidationError, match="purpose"):
        gateway.fetch(uow, officer, business(), "business", KINDS, consents=ALL_CONSENTS, purpose=" ")
    marketer = Principal(user_id=10, tenant_id=tenant_id, username="mkt", roles=frozenset({Role.MARKETER}))
    with pytest.raises(PermissionDenied):
        gateway.fetch(uow, marketer, business(), "business", KINDS, consents=ALL_CONSENTS, purpose="x")
    assert not provider.calls and not calls(uow)
    assert set(KIND_PATHS) == set(KINDS)
