"""Typed dependencies that make a handler's authority visible in its signature."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from microlend.core.errors import AuthenticationFailed, ValidationError
from microlend.core.identity import Principal
from microlend.core.settings import Settings
from microlend.core.tenancy import principal_from_token
from microlend.core.uow import UnitOfWork

SESSION_COOKIE = "ml_session"
_bearer = HTTPBearer(auto_error=False)


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session_factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


def get_uow(factory: Annotated[sessionmaker[Session], Depends(get_session_factory)]) -> Iterator[UnitOfWork]:
    yield UnitOfWork(factory)


UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_uow)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_principal(
    request: Request, uow: UnitOfWorkDep, settings: SettingsDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """A bearer token (API clients) or the session cookie (web pages) identifies the caller."""
    token = creds.credentials if creds else request.cookies.get(SESSION_COOKIE)
    if not token:
        raise AuthenticationFailed("sign in first: send 'Authorization: Bearer <token>'")
    return principal_from_token(uow, token, settings)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def idempotency_key(idempotency_key: Annotated[str | None, Header()] = None) -> str | None:
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
        raise ValidationError("Idempotency-Key: must be 1-255 characters", field="Idempotency-Key")
    return idempotency_key


IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]
