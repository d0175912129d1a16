"""The sandbox answered in process (an httpx transport): the same payloads, refusals and faults as the sandbox
over HTTP, with no socket; the bank's gateway gathers through it as it would over the network."""

from __future__ import annotations

import json
import random
import time
from datetime import date

import httpx
import pytest

from microlend.demo.sandbox import KINDS, PATHS, SandboxOptions, payload, subject_with
from microlend.demo.sandbox.transport import IN_PROCESS_URL, SandboxTransport

ANCHOR = date(2026, 11, 30)
AUTH = {"Authorization": "Bearer sandbox"}


def url(kind: str) -> str:
    return f"{IN_PROCESS_URL}/v1/{kind}/{PATHS[kind]}"


def client(**options: object) -> httpx.Client:
    return httpx.Client(transport=SandboxTransport(SandboxOptions(anchor=ANCHOR, **options)))  # type: ignore[arg-type]


def test_every_provider_answers_what_the_generator_says() -> None:
    subject = subject_with("good", random.Random(1), seed=3)
    with client(seed=3) as http:
        for kind in KINDS:
            response = http.get(url(kind), params={"subject": subject, "as_of": "2026-06-30"}, headers=AUTH)
            assert response.status_code == 200, response.text
            assert response.json() == payload(kind, subject, date(2026, 6, 30), seed=3, anchor=ANCHOR)
        assert http.get(f"{IN_PROCESS_URL}/healthz").json() == {
            "status": "ok", "providers": list(KINDS), "seed": 3, "anchor": "2026-11-30"}
        assert http.get(f"{IN_PROCESS_URL}/v1/bureau/nothing", headers=AUTH).status_code == 404


def test_refusals_say_what_is_wrong() -> None:
    with client(keys=("sandbox", "second-key")) as http:
        target = url("tax")
        assert http.get(target, params={"subject": "x"}).status_code == 401
        assert http.get(target, params={"subject": "x"}, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert http.get(target, params={"subject": "x"},
                        headers={"Authorization": "Bearer second-key"}).status_code == 200
        missing = http.get(target, headers=AUTH)
        assert missing.status_code == 422 and "subject" in missing.json()["message"]
        bad_day = http.get(target, params={"subject": "x", "as_of": "2026-02-30"}, headers=AUTH)
        assert bad_day.status_code == 422 and "as_of" in bad_day.json()["message"]
        bad_fault = http.get(target, params={"subject": "x"}, headers={**AUTH, "X-Sandbox-Fault": "fire"})
        assert bad_fault.status_code == 400


def test_forced_faults_and_a_timeout_the_client_gives_up_on() -> None:
    subject = subject_with("good", random.Random(3))
    with client(timeout_s=5.0) as http:
        target, params = url("einvoice"), {"subject": subject}
        error = http.get(target, params=params, headers={**AUTH, "X-Sandbox-Fault": "error"})
        assert error.status_code == 503 and error.json()["error"] == "unavailable"
        broken = set()
        for _ in range(30):
            response = http.get(target, params=params, headers={**AUTH, "X-Sandbox-Fault": "malformed"})
            assert response.status_code == 200
            try:
                body = response.json()
            except json.JSONDecodeError:
                broken.add("invalid_json")
                continue
            broken.add("bad_money" if "abc" in response.text else "missing_key")
            assert "abc" in response.text or "months" not in body
        assert broken == {"invalid_json", "bad_money", "missing_key"}
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            http.get(target, params=params, headers={**AUTH, "X-Sandbox-Fault": "timeout"}, timeout=0.2)
        assert 0.19 <= time.monotonic() - started < 2  # it waited as long as the client would, not timeout_s


def test_a_timeout_shorter_than_the_client_s_patience_is_a_late_answer() -> None:
    with client(timeout_s=0.1) as http:
        started = time.monotonic()
        late = http.get(url("bureau"), params={"subject": "x"}, headers={**AUTH, "X-Sandbox-Fault": "timeout"},
                        timeout=2)
        assert late.status_code == 200 and time.monotonic() - started >= 0.099


def test_latency_and_fault_rates() -> None:
    rng = random.Random(4)
    subjects = [subject_with("good", rng) for _ in range(20)]
    with client(latency_ms=(5, 10), error_rate=0.2, fault_seed=1) as http:
        started = time.monotonic()
        statuses = [http.get(url(KINDS[n % 6]), params={"subject": subjects[n % 20]}, headers=AUTH).status_code
                    for n in range(100)]
        assert time.monotonic() - started >= 100 * 0.005
    assert 8 <= statuses.count(503) <= 35 and statuses.count(200) == 100 - statuses.count(503)
