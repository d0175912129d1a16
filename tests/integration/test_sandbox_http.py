"""The provider sandbox as a process of its own, called over HTTP like a bank's gateway calls a provider: Bearer
keys, unknown subjects, point in time, forced and random faults, latency, many calls at once."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import random
import time
from collections.abc import Iterator
from datetime import date

import httpx
import pytest
from typer.testing import CliRunner

from microlend.cli.main import app as cli
from microlend.demo.sandbox import KINDS, PATHS, payload, subject_with
from microlend.demo.sandbox.process import SandboxProcess, start_sandbox

ANCHOR = date(2026, 11, 30)
AUTH = {"Authorization": "Bearer sandbox"}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    with start_sandbox(anchor=ANCHOR, keys=("sandbox", "second-key"), seed=3) as process:
        yield process


@pytest.fixture(scope="module")
def slow_sandbox() -> Iterator[SandboxProcess]:
    with start_sandbox(anchor=ANCHOR, latency_ms=(100, 200), error_rate=0.2, malformed_rate=0.2) as process:
        yield process


def url(base: str, kind: str) -> str:
    return f"{base}/v1/{kind}/{PATHS[kind]}"


def test_every_provider_answers_what_the_generator_says(sandbox: SandboxProcess) -> None:
    subject = subject_with("good", random.Random(1), seed=3)
    for kind in KINDS:
        response = httpx.get(
            url(sandbox.base_url, kind), params={"subject": subject, "as_of": "2026-06-30"}, headers=AUTH
        )
        assert response.status_code == 200, response.text
        assert response.json() == payload(kind, subject, date(2026, 6, 30), seed=3, anchor=ANCHOR)
    health = httpx.get(f"{sandbox.base_url}/healthz").json()
    assert health == {"status": "ok", "providers": list(KINDS), "seed": 3, "anchor": "2026-11-30"}


def test_a_key_is_required(sandbox: SandboxProcess) -> None:
    target = url(sandbox.base_url, "bureau")
    params = {"subject": "91330782MA2ABCDEF0"}
    assert httpx.get(target, params=params).status_code == 401
    assert httpx.get(target, params=params, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(target, params=params, headers={"Authorization": "Basic sandbox"}).status_code == 401
    assert httpx.get(target, params=params, headers={"Authorization": "Bearer second-key"}).status_code == 200


def test_an_unknown_subject_is_found_false(sandbox: SandboxProcess) -> None:
    person = subject_with("good", random.Random(2), kind="person", seed=3)
    for subject, kind in (("NOT-AN-ID", "bureau"), (person, "tax"), (person, "registry")):
        response = httpx.get(
            url(sandbox.base_url, kind), params={"subject": subject, "as_of": "2026-11-30"}, headers=AUTH
        )
        assert response.status_code == 200
        assert response.json() == {
            "subject": subject,
            "found": False,
            "as_of": "2026-11-30",
            "provider": f"sandbox-{kind}",
            "schema": f"{kind}/1",
        }


def test_bad_requests_say_what_is_wrong(sandbox: SandboxProcess) -> None:
    target = url(sandbox.base_url, "tax")
    missing = httpx.get(target, headers=AUTH)
    assert missing.status_code == 422 and "subject" in missing.json()["message"]
    bad_day = httpx.get(target, params={"subject": "x", "as_of": "2026-02-30"}, headers=AUTH)
    assert bad_day.status_code == 422 and "as_of" in bad_day.json()["message"]
    ancient = httpx.get(target, params={"subject": "x", "as_of": "0001-01-01"}, headers=AUTH)
    assert ancient.status_code == 422 and "as_of" in ancient.json()["message"]
    bad_fault = httpx.get(target, params={"subject": "x"}, headers={**AUTH, "X-Sandbox-Fault": "fire"})
    assert bad_fault.status_code == 400


def test_forced_faults(sandbox: SandboxProcess) -> None:
    subject = subject_with("good", random.Random(3), seed=3)
    target = url(sandbox.base_url, "einvoice")
    params = {"subject": subject}
    client = httpx.Client()
    error = client.get(target, params=params, headers={**AUTH, "X-Sandbox-Fault": "error"})
    assert error.status_code == 503 and error.json()["error"] == "unavailable"
    broken = set()
    for _ in range(30):
        response = client.get(target, params=params, headers={**AUTH, "X-Sandbox-Fault": "malformed"})
        assert response.status_code == 200
        try:
            body = response.json()
        except json.JSONDecodeError:
            broken.add("invalid_json")
            continue
        if "abc" in response.text:
            broken.add("bad_money")
        else:
            assert "months" not in body
            broken.add("missing_key")
    assert broken == {"invalid_json", "bad_money", "missing_key"}
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.get(target, params=params, headers={**AUTH, "X-Sandbox-Fault": "timeout"}, timeout=0.5)
    assert time.monotonic() - started < 2
    assert client.get(target, params=params, headers=AUTH, timeout=2).status_code == 200  # still serving
    client.close()


def test_latency_and_fault_rates_and_many_calls_at_once(slow_sandbox: SandboxProcess) -> None:
    rng = random.Random(4)
    subjects = [subject_with("good", rng) for _ in range(20)]

    async def call(client: httpx.AsyncClient, n: int) -> tuple[float, int, str, int]:
        kind = KINDS[n % len(KINDS)]
        started = time.monotonic()
        response = await client.get(
            url(slow_sandbox.base_url, kind),
            headers=AUTH,
            params={"subject": subjects[n % 20], "as_of": ANCHOR.isoformat()},
        )
        return time.monotonic() - started, response.status_code, response.text, n

    async def burst() -> tuple[float, list[tuple[float, int, str, int]]]:
        async with httpx.AsyncClient(timeout=5, limits=httpx.Limits(max_connections=200)) as client:
            started = time.monotonic()
            results = await asyncio.gather(*(call(client, n) for n in range(120)))
            return time.monotonic() - started, list(results)

    # in a thread of its own: an event loop another test left running in this one would refuse asyncio.run
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        wall, results = pool.submit(asyncio.run, burst()).result()
    assert all(elapsed >= 0.099 for elapsed, _, _, _ in results)
    assert wall < 8.0  # 120 calls of 100-200 ms each: one after another they would take 18 s or more
    errors = sum(1 for _, status, _, _ in results if status == 503)
    assert 8 <= errors <= 45  # 20 % of 120
    malformed = 0
    for _, status, text, n in results:
        if status == 200:
            expected = payload(KINDS[n % len(KINDS)], subjects[n % 20], ANCHOR, seed=0, anchor=ANCHOR)
            try:
                malformed += json.loads(text) != expected
            except json.JSONDecodeError:
                malformed += 1
    assert 6 <= malformed <= 45


def test_the_command_refuses_a_public_host_unless_asked() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["sandbox", "serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "--public" in result.output
    result = runner.invoke(cli, ["sandbox", "serve", "--latency-ms", "300-50"])
    assert result.exit_code == 2 and "latency-ms" in result.output
    result = runner.invoke(cli, ["sandbox", "serve", "--error-rate", "0.6", "--timeout-rate", "0.6"])
    assert result.exit_code == 2 and "together" in result.output
