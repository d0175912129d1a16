"""What an operator sees of a running server: a request id on every request (taken from `X-Request-ID` when
it is a sane value, made up otherwise, echoed in the response and carried by every log line of the request),
one log line per request, and Prometheus metrics (`/metrics`, see `api/ops.py`).

Requests are measured by route template (`/api/v1/applications/{application_id}`), never by raw path, so no
id or personal data becomes a label. The process's measurements from `core.metrics` (decisions, jobs,
providers) land in the same registry. One server process needs nothing more; with several worker processes,
set PROMETHEUS_MULTIPROC_DIR to a fresh folder shared by them and /metrics adds their figures up."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from microlend.core import logformat, metrics
from microlend.core.events import DomainEvent

log = logging.getLogger("microlend.request")

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
#: The label of a request no route answered (a 404): its raw path is never a label.
UNMATCHED = "<unmatched>"

REQUEST_SECONDS = Histogram(
    "microlend_http_request_duration_seconds", "Time to answer an HTTP request, by route template",
    ["method", "route", "status_class"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
DECISIONS = Counter(
    "microlend_decisions_total", "Credit decisions stored on applications, by outcome", ["outcome", "automatic"])
DOMAIN_EVENTS = Counter(
    "microlend_domain_events_total", "Domain events committed, by type", ["event_type"])
JOB_SECONDS = Histogram(
    "microlend_job_duration_seconds", "Time of one successful run of a job (close of business: one business date)",
    ["job"], buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0))
JOB_LAST_SUCCESS = Gauge(
    "microlend_job_last_success_timestamp_seconds", "When a job last finished a run, Unix time", ["job"],
    multiprocess_mode="max")
JOB_FAILURES = Counter(
    "microlend_job_failures_total",
    "Failed jobs or items of their work: event deliveries, close of business runs, marketing messages",
    ["job"])
PROVIDER_ERRORS = Counter(
    "microlend_provider_errors_total", "Errors raised by calls to external providers", ["provider", "error"])


class PrometheusSink:
    """Where `core.metrics` sends this process's measurements."""

    def events_committed(self, events: Sequence[DomainEvent]) -> None:
        for event in events:
            kind = type(event).__name__
            DOMAIN_EVENTS.labels(kind).inc()
            if kind == "ApplicationDecided":
                DECISIONS.labels(str(getattr(event, "status", "unknown")),
                                 "true" if getattr(event, "automatic", False) else "false").inc()

    def job_ran(self, job: str, seconds: float) -> None:
        JOB_SECONDS.labels(job).observe(seconds)
        JOB_LAST_SUCCESS.labels(job).set(time.time())

    def job_failed(self, job: str, count: int) -> None:
        JOB_FAILURES.labels(job).inc(count)

    def provider_error(self, provider: str, kind: str) -> None:
        PROVIDER_ERRORS.labels(provider, kind).inc()


def install_sink() -> None:
    metrics.install(PrometheusSink())
    for job in (metrics.CLOSE_OF_BUSINESS, metrics.EVENT_DELIVERY, metrics.MARKETING_DISPATCH):
        JOB_FAILURES.labels(job)  # a series at 0 from the start, so an alert on its increase sees the first one


def request_id_of(scope: Scope) -> str:
    """The caller's X-Request-ID if it is a sane token (letters, digits, . _ : -, at most 128), else a new one."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"x-request-id":
            text: str = bytes(value).decode("latin-1").strip()
            if _SANE_REQUEST_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if isinstance(path, str) and path else UNMATCHED


class RequestObserver:
    """ASGI middleware, outermost: request id in, out and in the logs; the request's line and its timing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_of(scope)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
            await send(message)

        with logformat.request_context(rid):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                self._record(scope, status, time.perf_counter() - started)

    @staticmethod
    def _record(scope: Scope, status: int, seconds: float) -> None:
        method, route = scope.get("method", ""), route_template(scope)
        REQUEST_SECONDS.labels(method, route, f"{status // 100}xx").observe(seconds)
        log.info("%s %s %d %.1f ms", method, scope.get("path", ""), status, seconds * 1000,
                 extra={"method": method, "route": route, "status": status,
                        "duration_ms": round(seconds * 1000, 1)})
