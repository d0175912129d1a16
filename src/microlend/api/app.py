"""The FastAPI application: routers of every module, error mapping, the web pages, static assets."""

from __future__ import annotations

import gc
import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from microlend import __version__
from microlend.api import errors, observability, ops
from microlend.api.deps import SESSION_COOKIE
from microlend.api.guard import RequestGuard
from microlend.api.observability import RequestObserver
from microlend.api.security import CsrfGuard, SecurityHeaders
from microlend.bootstrap import ROUTERS, WEB_PAGES, load_modules
from microlend.core import logformat, logs, migrate
from microlend.core.db import make_engine, make_session_factory
from microlend.core.settings import Settings, get_settings
from microlend.data.service import MAX_UPLOAD_BYTES

#: the routes that take a dataset file: their bodies may be as large as an upload is allowed to be
UPLOAD_PATHS = frozenset({"/api/v1/datasets", "/api/v1/data/bank-accounts/import", "/analyst/datasets"})


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or get_settings()
    load_modules()
    engine = engine or make_engine(settings.database_url)
    app = FastAPI(
        title="Microlend", version=__version__,
        description="Digital lending to micro and small businesses: customers, credit data, risk models, "
                    "decisions, origination, servicing and marketing.",
        docs_url=None, redoc_url=None, openapi_url="/openapi.json" if settings.api_docs else None,
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    errors.install(app)
    # outermost last: headers on every answer (a refusal too), the size limit before the forgery check
    app.add_middleware(CsrfGuard, settings=settings, cookie=SESSION_COOKIE)
    app.add_middleware(RequestGuard, max_bytes=settings.max_request_bytes,
                       upload_bytes=MAX_UPLOAD_BYTES + 64 * 1024, upload_paths=UPLOAD_PATHS)
    app.add_middleware(SecurityHeaders, settings=settings)
    app.add_middleware(RequestObserver)  # added last: the outermost, so it sees every answer, a 413 too
    for module, attr in ROUTERS:
        app.include_router(getattr(importlib.import_module(module), attr))

    for module in WEB_PAGES:
        app.include_router(importlib.import_module(module).router)
    app.mount("/static", StaticFiles(packages=[("microlend.web", "static")]), name="static")

    if settings.api_docs:
        @app.get("/docs", include_in_schema=False)
        def docs() -> HTMLResponse:
            """Swagger UI from the vendored bundle (no CDN at run time), started by a script file of ours."""
            return HTMLResponse(DOCS_PAGE)

    app.include_router(ops.router)
    _logging(settings)
    observability.install_sink()
    return app


def _logging(settings: Settings) -> None:
    logging.getLogger("microlend").setLevel(logging.INFO)
    logformat.configure(settings.log_format)
    logs.install()


DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Microlend API</title>
<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml"></head>
<body><div id="swagger-ui"></div>
<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script></body></html>
"""


_FROZEN: list[bool] = []


def _freeze_startup_objects() -> None:
    """What is alive at the first start (modules, app, routes: ~200,000 objects) lives as long as the process:
    out of the collector's sight, a full collection during a request takes a millisecond instead of ~100-300.
    Once per process, so objects of a later app (tests build many) stay collectable."""
    if not _FROZEN:
        _FROZEN.append(True)
        gc.collect()
        gc.freeze()


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    _logging(app.state.settings)  # again: uvicorn configures its log handlers after the app is built
    migrate.code_heads()  # read the migration scripts now, so the first /readyz answers as fast as the next
    _freeze_startup_objects()
    yield
