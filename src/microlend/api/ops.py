"""The routes an operator's tools call: liveness (`/healthz`), readiness (`/readyz`: the database answers and
its schema is this version's) and Prometheus metrics (`/metrics`). No sign-in and no personal data; metrics
need the scraper's token (MICROLEND_METRICS_TOKEN) or, without one, a client on this machine."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from sqlalchemy import Engine, text

from microlend import __version__
from microlend.api.errors import problem
from microlend.core.migrate import schema_state
from microlend.core.settings import Settings

log = logging.getLogger("microlend.api")
router = APIRouter(include_in_schema=False)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive (nothing else is checked: a load balancer restarts what fails this)."""
    return {"status": "ok", "version": __version__}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """200 when the database answers and every module's schema is at this version's head; 503 naming what
    is not (details of a database error go to the log, not to the unauthenticated caller)."""
    checks = readiness(request.app.state.engine)
    ready = all(c["ok"] for c in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)


def readiness(engine: Engine) -> dict[str, dict[str, Any]]:
    database: dict[str, Any] = {"ok": False}
    migrations: dict[str, Any] = {"ok": False, "detail": "not checked: the database is not reachable"}
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            database = {"ok": True}
            state = schema_state(connection)
    except Exception as exc:  # any reason the database cannot be used makes this process not ready
        log.warning("readiness: the database is not reachable: %s", exc)
        database["detail"] = "not reachable" if not database["ok"] else "cannot read the schema version"
        return {"database": database, "migrations": migrations}
    if state.current:
        migrations = {"ok": True}
    else:
        problems = [f"behind on {', '.join(state.behind)}"] if state.behind else []
        if state.unknown:
            problems.append(f"holds revisions this version does not know: {', '.join(state.unknown)}")
        migrations = {"ok": False, "detail": "; ".join(problems) + " (run `microlend db upgrade`)",
                      "behind": list(state.behind)}
    return {"database": database, "migrations": migrations}


@router.get("/metrics")
def prometheus_metrics(request: Request) -> Response:
    """This process's metrics in the Prometheus text format (all processes' with PROMETHEUS_MULTIPROC_DIR)."""
    settings: Settings = request.app.state.settings
    refusal = _refusal(request, settings)
    if refusal is not None:
        return refusal
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _refusal(request: Request, settings: Settings) -> Response | None:
    if settings.metrics_token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), settings.metrics_token.encode()):
            return None
        return problem(401, "metrics: send 'Authorization: Bearer <MICROLEND_METRICS_TOKEN>'",
                       headers={"WWW-Authenticate": "Bearer"})
    if settings.mode == "production":
        return problem(403, "metrics: set MICROLEND_METRICS_TOKEN to read them in production")
    if not _local(request.client.host if request.client else ""):
        return problem(403, "metrics: answered only to this machine unless MICROLEND_METRICS_TOKEN is set")
    return None


def _local(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
