"""Tenants (banks), their users, and authentication. A new tenant gets every module's defaults at once."""

from __future__ import annotations

import re
import secrets
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any, Protocol

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from microlend.core import audit, login_throttle, references, sessions
from microlend.core.clock import utcnow
from microlend.core.crypto import redact
from microlend.core.errors import AuthenticationFailed, Conflict, NotFound, ValidationError
from microlend.core.identity import Permission, Principal, Role, system_principal
from microlend.core.money import minor_unit
from microlend.core.passwords import check_password
from microlend.core.settings import Settings, get_settings
from microlend.core.tables import CredentialsVersionRow, TenantRow, UserRow
from microlend.core.uow import UnitOfWork


class PasswordHasherLike(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, hash: str, password: str) -> bool: ...


_hasher: PasswordHasherLike = PasswordHasher()


_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,99}$")

#: Hooks run when a tenant is created, so it "moves in with a suitcase": modules append their defaults.
TenantSetup = Callable[[Session, TenantRow], None]
TENANT_SETUP: list[TenantSetup] = []


def register_tenant_setup(hook: TenantSetup) -> None:
    if hook not in TENANT_SETUP:
        TENANT_SETUP.append(hook)


@dataclass(frozen=True)
class Tenant:
    id: int
    name: str
    display_name: str
    currency: str
    locale: str
    business_date: date

    @classmethod
    def from_row(cls, row: TenantRow) -> Tenant:
        return cls(row.id, row.name, row.display_name, row.currency, row.locale, row.business_date)


@dataclass(frozen=True)
class User:
    id: int
    tenant_id: int
    username: str
    display_name: str
    roles: list[str]
    branch: str
    active: bool
    customer_id: int | None

    @classmethod
    def from_row(cls, row: UserRow) -> User:
        return cls(row.id, row.tenant_id, row.username, row.display_name, list(row.roles), row.branch,
                   row.active, row.customer_id)


def create_tenant(
    uow: UnitOfWork, name: str, *, display_name: str | None = None, currency: str = "CNY",
    locale: str = "zh_CN", business_date: date | None = None,
) -> Tenant:
    """Create a bank with every module's defaults. Platform operation (CLI), not a tenant user's."""
    if not _NAME.match(name):
        raise ValidationError("name: use 2-64 lowercase letters, digits, '-' or '_'", field="name")
    minor_unit(currency)
    if locale not in ("zh_CN", "en"):
        raise ValidationError("locale: must be 'zh_CN' or 'en'", field="locale")
    with uow:
        s = uow.session
        if s.execute(select(TenantRow.id).where(TenantRow.name == name)).first():
            raise Conflict(f"name: a tenant named '{name}' already exists", field="name")
        row = TenantRow(name=name, display_name=display_name or name, currency=currency, locale=locale,
                        business_date=business_date or utcnow().date(), created_at=utcnow())
        s.add(row)
        s.flush()
        # the first record of the bank's audit chain: a bank with no chain at all has lost it
        audit.record(s, system_principal(row.id), "tenant.create", "tenant", row.id,
                     after={"name": name, "currency": currency, "locale": locale})
        for hook in TENANT_SETUP:
            hook(s, row)
        tenant = Tenant.from_row(row)
        uow.commit()
    return tenant


def get_tenant(uow: UnitOfWork, tenant_id: int) -> Tenant:
    with uow:
        row = uow.session.get(TenantRow, tenant_id)
        if row is None:
            raise NotFound(f"tenant {tenant_id} not found")
        return Tenant.from_row(row)


def tenant_by_name(uow: UnitOfWork, name: str) -> Tenant:
    with uow:
        row = uow.session.execute(select(TenantRow).where(TenantRow.name == name)).scalar_one_or_none()
        if row is None:
            raise NotFound(f"tenant '{name}' not found")
        return Tenant.from_row(row)


def list_tenants(uow: UnitOfWork) -> list[Tenant]:
    with uow:
        return [Tenant.from_row(r) for r in uow.session.execute(select(TenantRow).order_by(TenantRow.id)).scalars()]


def _check_roles(roles: list[str]) -> list[str]:
    if not roles:
        raise ValidationError("roles: give at least one role", field="roles")
    known = {r.value for r in Role}
    for r in roles:
        if r not in known or r == Role.SYSTEM:
            allowed = ", ".join(x.value for x in Role if x != Role.SYSTEM)
            raise ValidationError(f"roles: unknown role '{r}' (one of: {allowed})", field="roles")
    return sorted(set(roles))


def hash_password(password: str) -> str:
    """The stored form of `password` (argon2, the platform's one setting)."""
    return _hasher.hash(password)


def add_user(
    session: Session, tenant_id: int, username: str, password: str, roles: list[str], *,
    display_name: str = "", branch: str = "", customer_id: int | None = None, password_hash: str | None = None,
) -> UserRow:
    """Insert a user inside an open transaction (used by the service functions and by demo seeding).
    `password_hash`, when given, is `hash_password(password)` made once for users who share a published
    password (the demo's staff): one hashing instead of one per user, at the same strength."""
    if not _USERNAME.match(username):
        raise ValidationError("username: 2-100 letters, digits, '.', '_', '-' or '@'", field="username")
    check_password(password, username)
    roles = _check_roles(roles)
    if session.execute(select(UserRow.id).where(UserRow.username == username)).first():
        raise Conflict(f"username: '{username}' is taken", field="username")
    row = UserRow(tenant_id=tenant_id, username=username, display_name=display_name or username,
                  password_hash=password_hash or _hasher.hash(password), roles=roles, branch=branch,
                  customer_id=customer_id, active=True, created_at=utcnow())
    session.add(row)
    session.flush()
    return row


def create_user_platform(
    uow: UnitOfWork, tenant_name: str, username: str, password: str, roles: list[str], **kw: Any
) -> User:
    """Platform operator (CLI) creates a user in a tenant."""
    with uow:
        t = uow.session.execute(select(TenantRow).where(TenantRow.name == tenant_name)).scalar_one_or_none()
        if t is None:
            raise NotFound(f"tenant '{tenant_name}' not found")
        row = add_user(uow.session, t.id, username, password, roles, **kw)
        audit.record(uow.session, system_principal(t.id), "user.create", "user", row.id,
                     after={"username": username, "roles": row.roles})
        user = User.from_row(row)
        uow.commit()
    return user


def create_user(uow: UnitOfWork, who: Principal, username: str, password: str, roles: list[str],
                **kw: Any) -> User:
    """A tenant admin creates a user in their own tenant."""
    who.require(Permission.MANAGE_USERS)
    with uow:
        row = add_user(uow.session, who.tenant_id, username, password, roles, **kw)
        audit.record(uow.session, who, "user.create", "user", row.id,
                     after={"username": username, "roles": row.roles})
        user = User.from_row(row)
        uow.commit()
    return user


def list_users(uow: UnitOfWork, who: Principal) -> list[User]:
    """The bank's users; a borrower's username (their mobile) is masked unless the caller may see personal
    data."""
    who.require(Permission.MANAGE_USERS)
    with uow:
        rows = uow.session.execute(
            select(UserRow).where(UserRow.tenant_id == who.tenant_id).order_by(UserRow.id)
        ).scalars()
        users = [User.from_row(r) for r in rows]
    if who.can(Permission.VIEW_PERSONAL_DATA):
        return users
    return [replace(u, username=redact(u.username), display_name=redact(u.display_name)) for u in users]


def update_user(uow: UnitOfWork, who: Principal, user_id: int, *, active: bool | None = None,
                roles: list[str] | None = None, password: str | None = None) -> User:
    """A tenant admin deactivates (or reactivates) a user, or changes their roles or password. Any change ends
    the user's web sessions and bearer tokens at once: they sign in again with what they may now do."""
    who.require(Permission.MANAGE_USERS)
    with uow:
        row = uow.session.get(UserRow, user_id)
        if row is None or row.tenant_id != who.tenant_id:
            raise NotFound(f"user {user_id} not found")
        before = {"active": row.active, "roles": list(row.roles)}
        if user_id == who.user_id and (active is False or (roles is not None and "admin" not in roles)):
            raise ValidationError("you cannot deactivate yourself or take away your own admin role",
                                  field="active" if active is False else "roles")
        if roles is not None:
            row.roles = _check_roles(roles)
        if active is not None:
            row.active = active
        if password is not None:
            check_password(password, row.username)
            row.password_hash = _hasher.hash(password)
        after = {"active": row.active, "roles": list(row.roles), "password_changed": password is not None}
        _next_credentials_version(uow.session, user_id)
        ended = sessions.end_all(uow.session, user_id)
        audit.record(uow.session, who, "user.update", "user", user_id, before=before,
                     after={**after, "sessions_ended": ended})
        user = User.from_row(row)
        uow.commit()
    for trusted in list(_ALL_TRUSTED):
        trusted.forget_user(user_id)
    return user


def _next_credentials_version(session: Session, user_id: int) -> None:
    row = session.get(CredentialsVersionRow, user_id, with_for_update=True)
    if row is None:
        session.add(CredentialsVersionRow(user_id=user_id, version=1, changed_at=utcnow()))
    else:
        row.version += 1
        row.changed_at = utcnow()


class _UserColumns(Protocol):
    id: int
    tenant_id: int
    username: str
    roles: list[str]
    customer_id: int | None


def principal_for(row: UserRow | _UserColumns) -> Principal:
    return Principal(user_id=row.id, tenant_id=row.tenant_id, username=row.username,
                     roles=frozenset(Role(r) for r in row.roles), customer_id=row.customer_id)


_dummy_hashes: dict[int, str] = {}


def _dummy_hash(hasher: PasswordHasherLike) -> str:
    """A hash of a random secret, checked for an unknown or inactive user so that a wrong password costs the
    same time whether the username exists or not (made once per hasher, with its parameters)."""
    if id(hasher) not in _dummy_hashes:
        _dummy_hashes[id(hasher)] = hasher.hash(secrets.token_urlsafe(32))
    return _dummy_hashes[id(hasher)]


def _password_matches(row: UserRow | None, password: str) -> bool:
    hasher = _hasher
    real = row is not None and row.active
    try:
        ok = hasher.verify(row.password_hash if row is not None and real else _dummy_hash(hasher), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return ok and real


def authenticate(uow: UnitOfWork, username: str, password: str, settings: Settings | None = None,
                 client: str | None = None) -> Principal:
    """Check a password from `client` (the caller's address). The attempt is counted per account and per
    client before the hash is checked, and refused with 429 and a Retry-After when the account is in backoff
    for this client or the client has failed too often (see `core.login_throttle`)."""
    settings = settings or get_settings()
    with uow:
        login_throttle.reserve(uow.session, username, client, utcnow(), settings)
        uow.commit()
    with uow.read_only():
        row = uow.session.execute(select(UserRow).where(UserRow.username == username)).scalar_one_or_none()
    if not _password_matches(row, password) or row is None:
        raise AuthenticationFailed("wrong username or password")
    with uow:
        login_throttle.forgive(uow.session, username, client)
        uow.commit()
    return principal_for(row)


def issue_token(who: Principal, settings: Settings | None = None, *, uow: UnitOfWork | None = None) -> str:
    """A bearer token for the API. It names the user's credentials version (read through `uow`; 0 without
    one), so it stops working when their password, roles or active flag change."""
    settings = settings or get_settings()
    version = 0
    if uow is not None:
        with uow.read_only():
            version = uow.session.execute(select(CredentialsVersionRow.version)
                                          .where(CredentialsVersionRow.user_id == who.user_id)).scalar() or 0
    now = utcnow()
    expires = now + timedelta(minutes=settings.access_token_minutes)
    claims = {"sub": str(who.user_id), "tid": who.tenant_id, "usr": who.username,
              "roles": sorted(who.roles), "cid": who.customer_id, "ver": version,
              "iat": int(now.timestamp()), "exp": int(expires.timestamp())}
    return jwt.encode(claims, settings.secret_key, algorithm="HS256")


def principal_from_token(uow: UnitOfWork, token: str, settings: Settings | None = None,
                         trusted: TrustedTokens | None = None) -> Principal:
    """Decode a bearer token and re-read the user, so a deactivated user or changed roles apply at once.
    With `trusted`, the principal is remembered there (the caller consults it before coming here)."""
    settings = settings or get_settings()
    read_at = trusted.now() if trusted is not None else 0.0  # the trust window starts before the read
    try:
        claims = jwt.decode(token, settings.secret_key, algorithms=["HS256"],
                            options={"require": ["exp", "sub", "tid"]})
    except jwt.ExpiredSignatureError:
        raise AuthenticationFailed("the session has expired; sign in again") from None
    except jwt.PyJWTError:
        raise AuthenticationFailed("the access token is not valid") from None
    subject = str(claims["sub"])
    if not subject.isdigit() or not 0 < int(subject) < 2**31:  # a user id, never beyond the column's range
        raise AuthenticationFailed("the access token is not valid")
    with uow.read_only():
        row = uow.session.connection().execute(_TOKEN_USER, {"uid": int(subject)}).one_or_none()
    if (row is None or not row.active or row.tenant_id != claims["tid"]
            or claims.get("ver", 0) != row.version):
        raise AuthenticationFailed("the access token is not valid")
    who = principal_for(row)
    if trusted is not None:
        trusted.put(token, who, read_at, read_at + (float(claims["exp"]) - time.time()))
    return who


# every authenticated request runs this: the columns a principal needs, as a statement built once
_TOKEN_USER = (select(UserRow.id, UserRow.tenant_id, UserRow.username, UserRow.roles, UserRow.customer_id,
                      UserRow.active, func.coalesce(CredentialsVersionRow.version, 0).label("version"))
               .outerjoin(CredentialsVersionRow, CredentialsVersionRow.user_id == UserRow.id)
               .where(UserRow.id == bindparam("uid")))


class TrustedTokens:
    """The principals a server process has re-read for bearer tokens, trusted for `seconds` (and never
    past the token's expiry) so a burst of requests with one token reads the user once, not per request.
    Bounded: when full it starts afresh. `now` is the monotonic clock it is read with (a fake one in tests)."""

    def __init__(self, seconds: float, max_entries: int = 10_000,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self.now = now
        self._entries: dict[str, tuple[Principal, float]] = {}
        _ALL_TRUSTED.add(self)

    def get(self, token: str, now: float) -> Principal | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if entry[1] <= now:
            self._entries.pop(token, None)
            return None
        return entry[0]

    def put(self, token: str, who: Principal, now: float, token_expires_at: float) -> None:
        if self.seconds <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries = {}
        self._entries[token] = (who, min(now + self.seconds, token_expires_at))

    def forget_user(self, user_id: int) -> None:
        """Trust none of this user's tokens any more (their credentials changed in this process)."""
        self._entries = {t: e for t, e in self._entries.items() if e[0].user_id != user_id}


#: every trust cache of this process, so a change of a user's credentials here clears it at once
_ALL_TRUSTED: weakref.WeakSet[TrustedTokens] = weakref.WeakSet()


def business_date(session: Session, tenant_id: int, *, hold: bool = False) -> date:
    """The tenant's open business date. ``hold``: the date holds until the caller's transaction ends, for money
    moved on it: the bank's row is read ``FOR KEY SHARE`` on PostgreSQL, so a close of business (which locks the
    row for update before it starts and moves the date as it ends) waits for the transaction, and a transaction
    that starts while a close runs waits for it and moves money on the next date. Shared holds never wait for
    one another. (SQLite: a writing transaction holds the database's write lock from its start.)"""
    if hold:
        held = session.execute(
            select(TenantRow.business_date).where(TenantRow.id == tenant_id).with_for_update(read=True, key_share=True)
        ).scalar_one_or_none()
        if held is None:
            raise NotFound(f"tenant {tenant_id} not found")
        return held
    row = session.get(TenantRow, tenant_id)
    if row is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return row.business_date




def users_of_bank(uow: UnitOfWork, who: Principal, user_ids: Sequence[int]) -> set[int]:
    """The ids among `user_ids` that are users of the caller's bank (an officer named in a request)."""
    return references.of_bank(uow, who, UserRow.id, UserRow.tenant_id, user_ids)
