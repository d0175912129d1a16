"""Typed dependencies that make a handler's authority visible in its signature."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from microlend.core import logformat, sessions
from microlend.core.errors import AuthenticationFailed, ValidationError
from microlend.core.idempotency import MAX_KEY_LENGTH
from microlend.core.identity import Principal
from microlend.core.settings import Settings
from microlend.core.tenancy import TrustedTokens, principal_from_token
from microlend.core.uow import UnitOfWork
from microlend.parties.consents import Evidence

T = TypeVar("T")

#: the largest id a table holds: integer columns are 32-bit on PostgreSQL
MAX_ID = 2**31 - 1
#: the last page a listing serves: beyond it the offset would be larger than any table
MAX_PAGE = 1_000_000

# Every id and paging parameter of the API and the pages is one of these, so a value no column can hold is
# a 422 naming the parameter instead of a database error.
Id = Annotated[int, Path(ge=1, le=MAX_ID, description="an id")]
OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Version = Annotated[int | None, Query(ge=1, le=MAX_ID, description="a version number (the newest if left out)")]
Limit = Annotated[int, Query(ge=1, le=500, description="at most this many rows")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="rows to skip")]
Page = Annotated[int, Query(ge=1, le=MAX_PAGE, description="the page, from 1")]
PageSize = Annotated[int, Query(ge=1, le=200, description="rows on a page")]
Count = Annotated[int, Query(ge=0, le=MAX_ID)]
OptionalCount = Annotated[int | None, Query(ge=0, le=MAX_ID)]
SESSION_COOKIE = "ml_session"
_bearer = HTTPBearer(auto_error=False)


# The dependencies that do no I/O are coroutines: FastAPI runs them on the event loop instead of handing
# each one to the thread pool, which would cost a thread switch per dependency on every request.


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session_factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


async def get_uow(factory: Annotated[sessionmaker[Session], Depends(get_session_factory)]) -> UnitOfWork:
    return UnitOfWork(factory, deliver_in_background=True)  # a request does not wait for event handlers


UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_uow)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_principal(
    request: Request, settings: SettingsDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """A bearer token (API clients) or the session cookie (web pages) identifies the caller. A token this
    process has checked in the last `user_recheck_seconds` is answered without a thread or a query; a session
    is looked up every time (signing out ends it at once)."""
    token = creds.credentials if creds else None
    if not token:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise AuthenticationFailed("sign in first: send 'Authorization: Bearer <token>'")
        session_uow = UnitOfWork(request.app.state.session_factory)
        who = await run_in_threadpool(sessions.resolve, session_uow, cookie, settings)
    else:
        trusted = per_app(request, "trusted_tokens", lambda: TrustedTokens(settings.user_recheck_seconds))
        cached = trusted.get(token, trusted.now())
        if cached is None:
            uow = UnitOfWork(request.app.state.session_factory)
            cached = await run_in_threadpool(principal_from_token, uow, token, settings, trusted)
        who = cached
    logformat.identify(who.tenant_id, who.user_id)  # the request's log lines carry the bank and user from here
    return who


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def per_app(request: Request, name: str, make: Callable[[], T]) -> T:
    """Something one application keeps for all its requests, made on first use (so an application
    assembled from a few routers, as tests do, has it too)."""
    found: T | None = getattr(request.app.state, name, None)
    if found is None:
        found = make()
        setattr(request.app.state, name, found)
    return found


async def idempotency_key(idempotency_key: Annotated[str | None, Header()] = None) -> str | None:
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_KEY_LENGTH:
        raise ValidationError(f"Idempotency-Key: must be 1-{MAX_KEY_LENGTH} characters", field="Idempotency-Key")
    return idempotency_key


IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]


def request_evidence(request: Request) -> Evidence:
    """Who signed, as the request shows it: a fingerprint of the session token (never the token), the
    address and the browser — kept with a consent or a signature."""
    auth = request.headers.get("authorization", "")
    token = auth[7:] if auth.lower().startswith("bearer ") else request.cookies.get(SESSION_COOKIE, "")
    session_id = hashlib.sha256(token.encode()).hexdigest()[:16] if token else ""
    return Evidence(session_id=session_id, ip=request.client.host if request.client else "",
                    user_agent=request.headers.get("user-agent", ""))
