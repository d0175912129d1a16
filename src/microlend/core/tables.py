"""Tables of the shared kernel: tenants, users, web sessions, login throttles, the audit chain, idempotency
keys and the event outbox."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from microlend.core.db import Base, JSONText, UTCDateTime


class TenantRow(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    locale: Mapped[str] = mapped_column(String(10), default="zh_CN")
    business_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[str]] = mapped_column(JSONText())
    branch: Mapped[str] = mapped_column(String(100), default="")
    customer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CredentialsVersionRow(Base):
    """How often a user's password, roles or active flag have changed (no row: never). A bearer token names
    the version it was issued under and stops working when the version moves on."""

    __tablename__ = "credentials_versions"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebSessionRow(Base):
    """A signed-in browser: the cookie holds a random secret, this row its SHA-256. Signing out deletes the
    row; so does deactivating the user or changing their password or roles."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    tenant_id: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LoginThrottleRow(Base):
    """Sign-in failures of one account ('account:<username>') or one client ('client:<address>'), counted
    until it has been quiet for the window; `next_attempt_at` is when an account in backoff takes another try."""

    __tablename__ = "login_throttles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AuditHeadRow(Base):
    """The newest link of each tenant's audit chain; updating it serialises audit writers. `mac` signs
    (tenant, seq, hash, keyed_from) with the audit key, so a head moved back over a deleted tail is caught;
    records from `keyed_from` on are HMACs, the ones before it plain SHA-256 written before the key existed
    (0: a chain not yet sealed with the key)."""

    __tablename__ = "audit_heads"

    tenant_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64), default="")
    keyed_from: Mapped[int] = mapped_column(Integer, default=1)
    mac: Mapped[str] = mapped_column(String(64), default="")


class AuditCheckRow(Base):
    """Each tenant's stored verification of its audit chain: verified through record `seq` (whose hash was
    `hash`), when, and the outcome, so a check goes on from there instead of walking the chain again.
    `full_at` is when the chain was last walked from its first record; `mac` signs the row with the audit
    key, so a row rewritten to claim a clean chain is caught."""

    __tablename__ = "audit_checks"

    tenant_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64), default="")
    ok: Mapped[bool] = mapped_column(Boolean, default=True)
    problems: Mapped[Any] = mapped_column(JSONText(), default=list)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    full_at: Mapped[datetime] = mapped_column(UTCDateTime())
    mac: Mapped[str] = mapped_column(String(64), default="")


class AuditRow(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        UniqueConstraint("tenant_id", "seq", name="uq_audit_log_tenant_seq"),
        Index("ix_audit_log_object", "tenant_id", "object_type", "object_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_user_id: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100))
    object_type: Mapped[str] = mapped_column(String(60))
    object_id: Mapped[str] = mapped_column(String(60))
    before: Mapped[Any] = mapped_column(JSONText(), nullable=True)
    after: Mapped[Any] = mapped_column(JSONText(), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class IdempotencyKeyRow(Base):
    """A stored answer to a money request, replayed for a repeated key (Stripe semantics)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("tenant_id", "key", name="uq_idempotency_keys_tenant_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    endpoint: Mapped[str] = mapped_column(String(200))
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response: Mapped[Any] = mapped_column(JSONText(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EventOutboxRow(Base):
    """One delivery of a domain event to one handler: written with the commit that recorded the event, done
    when the handler's own unit of work commits, retried with backoff while it fails (see `core.outbox`)."""

    __tablename__ = "event_outbox"
    __table_args__ = (
        UniqueConstraint("event_id", "handler", name="uq_event_outbox_event_handler"),
        Index("ix_event_outbox_due", "status", "next_attempt_at"),
        Index("ix_event_outbox_tenant", "tenant_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(32))
    tenant_id: Mapped[int] = mapped_column(Integer)
    event_type: Mapped[str] = mapped_column(String(100))
    handler: Mapped[str] = mapped_column(String(200))
    payload: Mapped[Any] = mapped_column(JSONText())
    status: Mapped[str] = mapped_column(String(10))  # pending, done, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
