"""Web sessions held on the server. The browser's cookie carries a random secret; the database keeps only its
SHA-256, who it belongs to, when it was last used and when it ends at the latest. Signing out deletes the row,
so the cookie stops working at once; so does deactivating the user or changing their password or roles
(`end_all`). A session also ends after `session_idle_minutes` without a request and `session_lifetime_minutes`
after sign-in, whichever comes first. Every page form carries `csrf_token(...)` of the session."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from microlend.core.clock import utcnow
from microlend.core.errors import AuthenticationFailed
from microlend.core.identity import Principal, Role
from microlend.core.settings import Settings
from microlend.core.tables import UserRow, WebSessionRow
from microlend.core.uow import UnitOfWork

#: the last-used time is written at most this often per session (not on every request)
TOUCH_EVERY = timedelta(seconds=60)
_EXPIRED = "the session has ended; sign in again"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def start(uow: UnitOfWork, who: Principal, settings: Settings) -> str:
    """Open a session for `who` (just authenticated) and return the secret for the cookie."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with uow:
        uow.session.add(WebSessionRow(
            token_hash=_hash(token), tenant_id=who.tenant_id, user_id=who.user_id, created_at=now,
            last_seen_at=now, expires_at=now + timedelta(minutes=settings.session_lifetime_minutes)))
        # sessions that have ended on their own go when someone signs in: the table holds live ones only
        idle = timedelta(minutes=settings.session_idle_minutes)
        uow.session.execute(delete(WebSessionRow).where(
            or_(WebSessionRow.expires_at <= now, WebSessionRow.last_seen_at <= now - idle)))
        uow.commit()
    return token


def resolve(uow: UnitOfWork, token: str, settings: Settings) -> Principal:
    """The signed-in user of a session cookie, re-read (an inactive user or an ended session is refused)."""
    if not token or len(token) > 200:
        raise AuthenticationFailed(_EXPIRED)
    now = utcnow()
    with uow.read_only():
        row = uow.session.connection().execute(_SESSION_USER, {"h": _hash(token)}).one_or_none()
    idle = timedelta(minutes=settings.session_idle_minutes)
    if (row is None or not row.active or row.user_tenant != row.tenant_id or row.expires_at <= now
            or row.last_seen_at + idle <= now):
        raise AuthenticationFailed(_EXPIRED)
    if now - row.last_seen_at >= TOUCH_EVERY:
        _touch(uow, row.session_id, now)
    return Principal(user_id=row.user_id, tenant_id=row.tenant_id, username=row.username,
                     roles=frozenset(Role(r) for r in row.roles), customer_id=row.customer_id)


def _touch(uow: UnitOfWork, session_id: int, now: datetime) -> None:
    with uow:
        uow.session.execute(update(WebSessionRow).where(WebSessionRow.id == session_id).values(last_seen_at=now))
        uow.commit()


def end(uow: UnitOfWork, token: str) -> None:
    """Sign out: the session's row goes, and with it every copy of the cookie."""
    if not token or len(token) > 200:
        return
    with uow:
        uow.session.execute(delete(WebSessionRow).where(WebSessionRow.token_hash == _hash(token)))
        uow.commit()


def end_all(session: Session, user_id: int) -> int:
    """End every session of a user inside an open transaction; the number ended."""
    return session.connection().execute(delete(WebSessionRow).where(WebSessionRow.user_id == user_id)).rowcount


def csrf_token(secret_key: str, session_token: str) -> str:
    """The anti-forgery token of a session: what every form and htmx request of its pages sends back. Derived
    from the session's secret, so another site (which cannot read the cookie) cannot know it."""
    return hmac.new(secret_key.encode(), b"csrf:" + session_token.encode("utf-8", "replace"),
                    hashlib.sha256).hexdigest()


def csrf_matches(secret_key: str, session_token: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(csrf_token(secret_key, session_token), sent or "")


# every page request runs this: the session and its user in one statement built once
_SESSION_USER = (
    select(WebSessionRow.id.label("session_id"), WebSessionRow.tenant_id, WebSessionRow.last_seen_at,
           WebSessionRow.expires_at, UserRow.id.label("user_id"), UserRow.tenant_id.label("user_tenant"),
           UserRow.username, UserRow.roles, UserRow.customer_id, UserRow.active)
    .join(UserRow, UserRow.id == WebSessionRow.user_id)
    .where(WebSessionRow.token_hash == bindparam("h"))
)
