"""The sandbox as an ASGI app: the six providers under `/v1/<kind>/<what>` and `/healthz`, behind a Bearer key,
with the latency and the faults (errors, timeouts, malformed bodies) a bank's gateway must survive."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from microlend.demo.sandbox.profiles import DEFAULT_SEED
from microlend.demo.sandbox.providers import KINDS, PATHS, Payload, payload
from microlend.demo.sandbox.world import today_in_china

FAULTS = ("error", "timeout", "malformed")
FAULT_HEADER = "X-Sandbox-Fault"
#: The days a sandbox can serve data as of.
EARLIEST, LATEST = date(2000, 1, 1), date(2099, 12, 31)
_MONEY = re.compile(r"^-?\d+\.\d{2}$")


@dataclass(frozen=True)
class SandboxOptions:
    """How the sandbox behaves. `anchor` is the day its simulated world is built around (default: the day it
    starts); rates are per call; `latency_ms` is a uniform range; `timeout_s` is how long a timeout sleeps."""

    seed: int = DEFAULT_SEED
    anchor: date | None = None
    latency_ms: tuple[int, int] = (0, 0)
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    malformed_rate: float = 0.0
    keys: tuple[str, ...] = ("sandbox",)
    timeout_s: float = 10.0
    fault_seed: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        lo, hi = self.latency_ms
        if not 0 <= lo <= hi <= 60_000:
            raise ValueError(f"latency_ms: need 0 <= low <= high <= 60000, got {lo}-{hi}")
        for name in ("error_rate", "timeout_rate", "malformed_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: a rate is between 0 and 1, got {getattr(self, name)}")
        if self.error_rate + self.timeout_rate + self.malformed_rate > 1.0:
            raise ValueError("error_rate, timeout_rate, malformed_rate: together at most 1")
        if not [k for k in self.keys if k.strip()]:
            raise ValueError("keys: at least one non-empty API key")
        if self.timeout_s < 0:
            raise ValueError("timeout_s: cannot be negative")


def parse_latency(text: str) -> tuple[int, int]:
    """`"50-300"` -> (50, 300); `"100"` -> (100, 100)."""
    parts = text.strip().split("-")
    try:
        lo, hi = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (-1, -1)
    except ValueError:
        lo, hi = -1, -1
    if not 0 <= lo <= hi:
        raise ValueError(f"latency-ms: '{text}' is not a range of milliseconds like 50-300")
    return lo, hi


def _error(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status, headers=headers)


def _corrupt(body: Payload, kind: str, rng: random.Random) -> Response:
    """A body that breaks the contract: not JSON at all, a money field that is no number, or a missing key."""
    variant = rng.choice(("invalid_json", "bad_money", "missing_key"))
    if variant == "invalid_json":
        text = json.dumps(body, ensure_ascii=False)
        return Response(text[: max(len(text) // 2, 10)], media_type="application/json")
    if variant == "bad_money" and _break_money(body):
        return JSONResponse(body)
    specific = [k for k in body if k not in ("subject", "found", "as_of", "provider", "schema")]
    body.pop(specific[0] if specific else "found")
    return JSONResponse(body)


def _break_money(node: Any) -> bool:
    """Replace the first money string in `node` by "abc"; False if there is none."""
    items: list[tuple[Any, Any]] = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
    for key, value in items:
        if isinstance(value, str) and _MONEY.match(value):
            node[key] = "abc"
            return True
        if isinstance(value, dict | list) and _break_money(value):
            return True
    return False


@dataclass(frozen=True)
class Call:
    """A request the sandbox admitted: whom it is about, as of which day, and the fault drawn for it."""

    subject: str
    as_of: date
    fault: str | None


class Sandbox:
    """The six providers' answers with their checks (key, subject, day) and drawn faults, whatever carries the
    request: the ASGI app below, or `transport.SandboxTransport` in the caller's own process. Latency and the
    timeout fault are waits the carrier makes (`latency_s`, `options.timeout_s`)."""

    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.options = options or SandboxOptions()
        self.anchor = self.options.anchor or today_in_china()
        self.keys = frozenset(k.strip() for k in self.options.keys if k.strip())
        self._rng = random.Random(self.options.fault_seed)

    def _draw_fault(self, forced: str | None) -> str | None:
        if forced is not None:
            return forced.strip().lower()
        u = self._rng.random()
        opts = self.options
        for fault, rate in zip(FAULTS, (opts.error_rate, opts.timeout_rate, opts.malformed_rate), strict=True):
            if u < rate:
                return fault
            u -= rate
        return None

    def admit(self, kind: str, headers: Mapping[str, str], params: Mapping[str, str]) -> Call | Response:
        """The request's subject, day and fault, or the refusal to send back (401, 422, 400)."""
        auth = headers.get("Authorization", "")
        scheme, _, key = auth.partition(" ")
        if scheme.lower() != "bearer" or key.strip() not in self.keys:
            return _error(
                401,
                "unauthorized",
                "Authorization: a Bearer key of this sandbox is required",
                {"WWW-Authenticate": "Bearer"},
            )
        subject = params.get("subject", "").strip()
        if not subject:
            return _error(422, "invalid_request", "subject: required (a resident ID or a USCC)")
        as_of_text = params.get("as_of")
        try:
            as_of = date.fromisoformat(as_of_text) if as_of_text else today_in_china()
        except ValueError:
            return _error(422, "invalid_request", f"as_of: '{as_of_text}' is not an ISO date (YYYY-MM-DD)")
        if not EARLIEST <= as_of <= LATEST:
            return _error(422, "invalid_request", f"as_of: must be between {EARLIEST} and {LATEST}")
        fault = self._draw_fault(headers.get(FAULT_HEADER))
        if fault is not None and fault not in FAULTS:
            return _error(400, "invalid_request", f"{FAULT_HEADER}: one of {', '.join(FAULTS)}")
        return Call(subject, as_of, fault)

    def latency_s(self) -> float:
        """How long this answer takes (drawn from `latency_ms`)."""
        lo, hi = self.options.latency_ms
        return self._rng.uniform(lo, hi) / 1000 if hi > 0 else 0.0

    def answer(self, kind: str, call: Call) -> Response:
        """The answer to an admitted call (after its wait): a 503, a corrupted body or the payload."""
        if call.fault == "error":
            return _error(
                503, "unavailable", f"sandbox-{kind}: the service is temporarily unavailable", {"Retry-After": "1"}
            )
        body = payload(kind, call.subject, call.as_of, seed=self.options.seed, anchor=self.anchor)
        if call.fault == "malformed":
            return _corrupt(body, kind, self._rng)
        return JSONResponse(body)

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "providers": list(KINDS), "seed": self.options.seed, "anchor": self.anchor.isoformat()}


def create_app(options: SandboxOptions | None = None) -> Starlette:
    """The sandbox serving all six providers (see the module docstring of `microlend.demo.sandbox`)."""
    sandbox = Sandbox(options)

    def endpoint(kind: str) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            call = sandbox.admit(kind, request.headers, request.query_params)
            if isinstance(call, Response):
                return call
            wait = sandbox.latency_s()
            if wait > 0:
                await asyncio.sleep(wait)
            if call.fault == "timeout":
                await asyncio.sleep(sandbox.options.timeout_s)
            return sandbox.answer(kind, call)

        return serve

    async def healthz(request: Request) -> Response:
        return JSONResponse(sandbox.health())

    routes = [Route("/healthz", healthz)]
    routes += [Route(f"/v1/{kind}/{PATHS[kind]}", endpoint(kind)) for kind in KINDS]
    return Starlette(routes=routes)
