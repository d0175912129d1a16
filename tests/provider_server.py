"""Provider answers shaped as the shared design lays them out (all six kinds), and a real HTTP server serving
them on loopback in a background thread (uvicorn), with faults on demand: the header `X-Sandbox-Fault:
error|timeout|malformed`, or per kind in `ProviderServer.faults`. Used by the gateway's tests and benchmark."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

KIND_PATHS = {
    "bureau": "/v1/bureau/report",
    "tax": "/v1/tax/declarations",
    "einvoice": "/v1/einvoice/summary",
    "merchant": "/v1/merchant/flows",
    "registry": "/v1/registry/company",
    "enforcement": "/v1/enforcement/cases",
}


def _months_before(as_of: date, n: int) -> list[str]:
    first = as_of.replace(day=1)
    out = []
    for _ in range(n):
        first = (first - timedelta(days=1)).replace(day=1)
        out.append(f"{first:%Y-%m}")
    return out


def payload(kind: str, subject: str, as_of: date, *, found: bool = True) -> dict[str, Any]:
    """A plausible answer of `kind` about `subject` as of a day (deterministic per subject)."""
    env = {"subject": subject, "as_of": as_of.isoformat(), "provider": f"test-{kind}", "schema": f"{kind}/1"}
    if not found:
        return {**env, "found": False}
    rng = random.Random(hashlib.sha256(f"{kind}:{subject}".encode()).hexdigest())
    if kind == "bureau":
        body: dict[str, Any] = {
            "report_date": as_of.isoformat(),
            "credit_history_months": 62,
            "open_accounts": 3,
            "lenders_open": 2,
            "total_balance": "123000.00",
            "overdue_accounts_now": 0,
            "overdue_months_24m": 0,
            "max_overdue_level_24m": 0,
            "inquiries_3m": 1,
            "inquiries_12m": 3,
            "guarantees_given": 0,
            "guarantee_amount": "0.00",
            "bad_debt": False,
        }
    elif kind == "tax":
        body = {
            "credit_grade": "A",
            "declarations": [
                {
                    "period": p,
                    "sales": f"{rng.randint(50_000, 150_000)}.{rng.randint(0, 99):02d}",
                    "vat_paid": f"{rng.randint(500, 4_000)}.00",
                }
                for p in _months_before(as_of, 24)
            ],
        }
    elif kind == "einvoice":
        body = {
            "months": [
                {
                    "period": p,
                    "issued_count": rng.randint(10, 40),
                    "issued_amount": f"{rng.randint(40_000, 160_000)}.00",
                    "received_count": rng.randint(5, 20),
                    "received_amount": f"{rng.randint(10_000, 90_000)}.00",
                    "red_count": 1,
                    "red_amount": "500.00",
                    "cancelled_count": 0,
                }
                for p in _months_before(as_of, 24)
            ],
            "counterparties_12m": 23,
            "top_customers_12m": [
                {"counterparty": hashlib.sha256(f"c{i}".encode()).hexdigest(), "amount": f"{100_000 - i * 10_000}.00"}
                for i in range(5)
            ],
        }
    elif kind == "merchant":
        days = [as_of - timedelta(days=d) for d in range(1, 181) if rng.random() < 0.8]
        body = {
            "merchant_since": "2021-04-01",
            "days": [
                {"date": d.isoformat(), "count": rng.randint(1, 40), "amount": f"{rng.randint(100, 9_000)}.00"}
                for d in sorted(days)
            ],
        }
    elif kind == "registry":
        body = {
            "name": "城关五金店",
            "registered_on": "2015-03-01",
            "capital": "500000.00",
            "status": "存续",
            "legal_representative": "王*",
            "industry_code": "F5211",
            "entity_type": "个体工商户",
            "changes": [{"date": "2025-06-01", "item": "address"}],
        }
    else:
        body = {
            "cases": [
                {
                    "case_no": "(2024)浙0102执123号",
                    "filed_on": "2024-05-01",
                    "amount": "50000.00",
                    "status": "closed",
                    "dishonest": False,
                }
            ]
        }
    return {**env, "found": True, **body}


@dataclass
class ProviderServer:
    """A provider server on a free loopback port. `latency_ms`: (low, high) per call; `faults`: kind -> fault
    ("error", "timeout", "malformed", "broken" - a contract-breaking answer); `unknown`: subjects no provider
    knows; `answers`: (kind, subject) -> fields given instead of the usual ones (an enforcement case filed since
the last call); `calls` counts requests per kind."""

    latency_ms: tuple[int, int] = (0, 0)
    timeout_sleep_s: float = 10.0
    keys: frozenset[str] = frozenset({"sandbox"})
    faults: dict[str, str] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)
    answers: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    port: int = 0
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> Starlette:
        async def serve(request: Request) -> Response:
            kind = request.url.path.split("/")[2]
            self.calls[kind] = self.calls.get(kind, 0) + 1
            auth = request.headers.get("authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in self.keys:
                return JSONResponse({"error": "unauthorized"}, status_code=401)
            low, high = self.latency_ms
            if high:
                await asyncio.sleep(random.uniform(low, high) / 1000)
            fault = request.headers.get("x-sandbox-fault") or self.faults.get(kind)
            if fault == "error":
                return JSONResponse({"error": "unavailable"}, status_code=503)
            if fault == "timeout":
                await asyncio.sleep(self.timeout_sleep_s)
            if fault == "malformed":
                return PlainTextResponse('{"found": tru', media_type="application/json")
            subject = request.query_params.get("subject", "")
            as_of = date.fromisoformat(request.query_params.get("as_of") or date.today().isoformat())
            body = payload(kind, subject, as_of, found=subject not in self.unknown)
            if body["found"] and (kind, subject) in self.answers:
                body = {**body, **self.answers[(kind, subject)]}
            if fault == "broken":
                body = breaking(kind, body)
            return JSONResponse(body)

        async def healthz(_: Request) -> Response:
            return PlainTextResponse("ok")

        routes = [Route(path, serve) for path in KIND_PATHS.values()] + [Route("/healthz", healthz)]
        return Starlette(routes=routes)

    def start(self) -> ProviderServer:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app(), log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the provider server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)


def breaking(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """The answer with one contract broken: an amount sent as a number, a table row with a negative count."""
    broken: dict[str, Any] = json.loads(json.dumps(body))
    if kind == "bureau":
        broken["total_balance"] = 123000.5
    elif kind == "tax":
        broken["declarations"][3]["sales"] = 12.5
    elif kind == "einvoice":
        broken["months"][2]["issued_count"] = -1
    elif kind == "merchant":
        broken["days"][1]["amount"] = "12.3"
    elif kind == "registry":
        broken["status"] = "unknown"
    else:
        broken["cases"][0]["status"] = "pending"
    return broken


@contextmanager
def provider_server(**kwargs: Any) -> Iterator[ProviderServer]:
    server = ProviderServer(**kwargs).start()
    try:
        yield server
    finally:
        server.stop()


def free_port() -> int:
    """A loopback port nobody listens on (for 'connection refused')."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
