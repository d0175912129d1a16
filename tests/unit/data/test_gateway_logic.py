"""The gateway's own logic with a fake clock and an in-process transport: the circuit breaker, the TTL cache,
and retries (only on 5xx, timeouts and refused connections, with growing pauses)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import httpx
import pytest
from tests.provider_server import payload

from microlend.data.gateway import CallStatus, CircuitBreaker, Gateway, ProviderConfig, TTLCache

USCC = "91330102MA2H8B3X4A"


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class TestCircuitBreaker:
    def test_opens_after_consecutive_failures_for_its_seconds(self) -> None:
        clock = FakeClock()
        b = CircuitBreaker(clock)
        b.failure(3, 30)
        b.failure(3, 30)
        assert b.allow() and not b.is_open
        b.failure(3, 30)
        assert not b.allow() and b.is_open and b.seconds_left() == 30
        clock.t += 29.9
        assert not b.allow()
        clock.t += 0.2
        assert b.allow(), "after its seconds one trial call goes through"
        assert not b.allow(), "only one trial at a time"

    def test_a_success_resets_the_count(self) -> None:
        b = CircuitBreaker(FakeClock())
        b.failure(2, 10)
        b.success()
        b.failure(2, 10)
        assert b.allow()

    def test_a_failed_trial_opens_it_again_and_a_good_one_closes_it(self) -> None:
        clock = FakeClock()
        b = CircuitBreaker(clock)
        b.failure(1, 10)
        clock.t += 11
        assert b.allow()
        b.failure(1, 10)
        assert not b.allow() and b.seconds_left() == 10
        clock.t += 11
        assert b.allow()
        b.success()
        assert b.allow() and b.allow() and not b.is_open


class TestTTLCache:
    def test_an_entry_lives_for_its_ttl(self) -> None:
        clock = FakeClock()
        cache = TTLCache(clock)
        cache.put(("k",), CallStatus.OK, None, "{}", 60)
        assert cache.get(("k",)) is not None
        clock.t += 59.9
        assert cache.get(("k",)) is not None
        clock.t += 0.1
        assert cache.get(("k",)) is None and len(cache) == 0

    def test_a_ttl_of_zero_keeps_nothing(self) -> None:
        cache = TTLCache(FakeClock())
        cache.put(("k",), CallStatus.OK, None, "{}", 0)
        assert cache.get(("k",)) is None

    def test_the_least_recently_used_leave_first(self) -> None:
        cache = TTLCache(FakeClock(), max_entries=2)
        cache.put(("a",), CallStatus.OK, None, "a", 60)
        cache.put(("b",), CallStatus.OK, None, "b", 60)
        assert cache.get(("a",)) is not None
        cache.put(("c",), CallStatus.OK, None, "c", 60)
        assert cache.get(("b",)) is None and cache.get(("a",)) is not None and cache.get(("c",)) is not None


def config(**changes: object) -> ProviderConfig:
    base = {
        "kind": "bureau",
        "base_url": "http://bureau.test",
        "api_key": "sandbox",
        "timeout_ms": 500,
        "retries": 2,
        "breaker_failures": 3,
        "breaker_seconds": 30,
        "cache_ttl_seconds": 60,
        "cost_per_call": Decimal("1.00"),
        "currency": "CNY",
    }
    return ProviderConfig(**{**base, **changes})  # type: ignore[arg-type]


class Scripted:
    """A transport answering from a list: a status code, or an exception class to raise."""

    def __init__(self, *script: int | type[Exception]) -> None:
        self.script = list(script)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script.pop(0)
        if isinstance(step, type):
            raise step("scripted", request=request)  # type: ignore[call-arg]
        body = json.dumps(payload("bureau", USCC, date(2026, 11, 30))) if step == 200 else "{}"
        return httpx.Response(step, text=body)


def gateway_with(script: Scripted) -> tuple[Gateway, list[float]]:
    pauses: list[float] = []
    return Gateway(now=FakeClock(), sleep=pauses.append, transport=httpx.MockTransport(script)), pauses


def test_5xx_and_timeouts_are_retried_with_growing_pauses() -> None:
    script = Scripted(503, httpx.ReadTimeout, 200)
    gw, pauses = gateway_with(script)
    breaker = gw.breaker(1, "bureau", "http://bureau.test")
    answer = gw._call(config(), breaker, USCC, date(2026, 11, 30))
    assert answer.status is CallStatus.OK and answer.billed and len(script.requests) == 3
    assert len(pauses) == 2 and 0.05 <= pauses[0] <= 0.06 and 0.1 <= pauses[1] <= 0.12
    request = script.requests[0]
    assert request.headers["authorization"] == "Bearer sandbox"
    assert request.url.path == "/v1/bureau/report" and request.url.params["as_of"] == "2026-11-30"
    assert request.url.params["subject"] == USCC


@pytest.mark.parametrize("status", [400, 401, 404])
def test_a_refusal_is_not_retried_and_does_not_trip_the_breaker(status: int) -> None:
    script = Scripted(status)
    gw, pauses = gateway_with(script)
    breaker = gw.breaker(1, "bureau", "http://bureau.test")
    answer = gw._call(config(breaker_failures=1), breaker, USCC, None)
    assert answer.status is CallStatus.UNAVAILABLE and answer.http_status == status and not answer.billed
    assert len(script.requests) == 1 and not pauses and not breaker.is_open
    assert "as_of" not in script.requests[0].url.params


def test_a_refused_connection_after_every_retry_counts_once_for_the_breaker() -> None:
    script = Scripted(httpx.ConnectError, httpx.ConnectError)
    gw, _ = gateway_with(script)
    breaker = gw.breaker(1, "bureau", "http://bureau.test")
    answer = gw._call(config(retries=1, breaker_failures=2), breaker, USCC, None)
    assert answer.status is CallStatus.UNAVAILABLE and answer.error == "cannot reach the provider: ConnectError"
    assert not breaker.is_open
    script.script.append(503)
    gw._call(config(retries=0, breaker_failures=2), breaker, USCC, None)
    assert breaker.is_open


def test_a_contract_failure_is_a_data_error_not_an_exception() -> None:
    gw, _ = gateway_with(Scripted())
    gw._http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"found": 1})))
    answer = gw._call(config(), gw.breaker(1, "bureau", "x"), USCC, None)
    assert answer.status is CallStatus.DATA_ERROR and answer.billed and answer.text == '{"found":1}'


def test_a_half_open_trial_answered_with_a_refusal_closes_the_breaker() -> None:
    """The provider is up when it answers at all: a trial refused (401) must not leave the breaker stuck."""
    clock = FakeClock()
    script = Scripted(401)
    gw = Gateway(now=clock, sleep=lambda _: None, transport=httpx.MockTransport(script))
    breaker = gw.breaker(1, "bureau", "http://bureau.test")
    breaker.failure(1, 10)
    clock.t += 11
    assert breaker.allow()  # this caller is the trial
    gw._call(config(retries=0), breaker, USCC, None)
    assert breaker.allow() and breaker.allow() and not breaker.is_open
