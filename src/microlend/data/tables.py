"""Tables of the credit data module: the metadata of imported datasets (the data itself is Parquet), the
bank's own accounts and their transactions (imported from core banking), and the external data providers'
settings and calls."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from microlend.core.db import Amount, Base, JSONText, UTCDateTime


class DatasetRow(Base):
    """One imported version of a tenant's dataset: where its Parquet file is, what it holds, its hash."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("tenant_id", "name", "version", name="uq_datasets_tenant_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer)
    columns: Mapped[list[dict[str, Any]]] = mapped_column(JSONText())
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    contract: Mapped[dict[str, Any]] = mapped_column(JSONText())
    source: Mapped[dict[str, Any]] = mapped_column(JSONText())
    path: Mapped[str] = mapped_column(Text)
    rejected_rows: Mapped[int] = mapped_column(Integer, default=0)
    rejected_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(100))


class BankAccountRow(Base):
    """An account the bank itself keeps (core banking export): whose it is and when it was open. The holder is
    known by the blind index of the ID number (and its masked form); `customer_id` is the bank's customer with
    that number when there was one at import time."""

    __tablename__ = "data_bank_accounts"
    __table_args__ = (UniqueConstraint("tenant_id", "account_no", name="uq_data_bank_accounts_tenant_account"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    account_no: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    holder_id_index: Mapped[str] = mapped_column(String(64), index=True)
    holder_id_masked: Mapped[str] = mapped_column(String(32))
    opened_on: Mapped[date] = mapped_column(Date)
    closed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    product: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BankTransactionRow(Base):
    """One booked movement of a bank account: signed amount (credit > 0), balance after it when known, its
    kind and the counterparty (masked). `txn_ref` is the core banking journal reference (unique per account)."""

    __tablename__ = "data_bank_transactions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "account_no", "txn_ref", name="uq_data_bank_transactions_ref"),
        Index("ix_data_bank_transactions_account_day", "tenant_id", "account_no", "booked_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    account_no: Mapped[str] = mapped_column(String(40))
    txn_ref: Mapped[str] = mapped_column(String(64))
    booked_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Amount())
    balance_after: Mapped[Decimal | None] = mapped_column(Amount(), nullable=True)
    kind: Mapped[str] = mapped_column(String(10))
    counterparty: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ProviderSettingsRow(Base):
    """How a bank reaches one kind of external data provider: where, with which key (encrypted), how patiently
    (timeout, retries, circuit breaker), how long an answer is reused, and what a call costs."""

    __tablename__ = "data_provider_settings"
    __table_args__ = (UniqueConstraint("tenant_id", "kind", name="uq_data_provider_settings_tenant_kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    kind: Mapped[str] = mapped_column(String(20))
    base_url: Mapped[str] = mapped_column(String(500))
    api_key: Mapped[str | None] = mapped_column(Text, nullable=True)  # microlend.core.crypto.encrypt
    timeout_ms: Mapped[int] = mapped_column(Integer)
    retries: Mapped[int] = mapped_column(Integer)
    breaker_failures: Mapped[int] = mapped_column(Integer)
    breaker_seconds: Mapped[int] = mapped_column(Integer)
    cache_ttl_seconds: Mapped[int] = mapped_column(Integer)
    cost_per_call: Mapped[Decimal] = mapped_column(Amount())
    currency: Mapped[str] = mapped_column(String(3))
    enabled: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(100))


class ProviderCallRow(Base):
    """One call of the gateway to a provider (or one the gateway decided not to make, with why): the subject
    only as a blind index and masked, the answer encrypted with its SHA-256, so a decision can be replayed."""

    __tablename__ = "data_provider_calls"
    __table_args__ = (
        Index("ix_data_provider_calls_tenant_at", "tenant_id", "at"),
        Index("ix_data_provider_calls_tenant_subject", "tenant_id", "subject_index"),
        Index("ix_data_provider_calls_tenant_application", "tenant_id", "application_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    kind: Mapped[str] = mapped_column(String(20))
    subject_index: Mapped[str] = mapped_column(String(64))  # microlend.core.crypto.blind_index
    subject_masked: Mapped[str] = mapped_column(String(40))
    subject_kind: Mapped[str] = mapped_column(String(10))  # person or business
    as_of: Mapped[date | None] = mapped_column(Date, nullable=True)
    purpose: Mapped[str] = mapped_column(String(200))
    application_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    called_by: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20))
    latency_ms: Mapped[int] = mapped_column(Integer)
    cost: Mapped[Decimal] = mapped_column(Amount())
    currency: Mapped[str] = mapped_column(String(3))
    cached: Mapped[bool] = mapped_column(Boolean)
    http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    payload: Mapped[str | None] = mapped_column(Text, nullable=True)  # the raw answer, encrypted
    payload_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AnswerFactsRow(Base):
    """What the whole-book jobs read of one recorded answer (a kept call of the tax, merchant, enforcement or
    credit-report source), extracted once when the answer arrives so nothing re-parses it: tax declarations
    and merchant takings as prefix sums over their months / days (`series_first`: the first month index or
    day ordinal; `series`, `counts`: little-endian int64 prefix sums of the amounts in cents and of the rows),
    the credit report's overdue accounts and worst overdue level, the enforcement cases (compact JSON, only
    when there are some)."""

    __tablename__ = "data_answer_facts"

    call_id: Mapped[int] = mapped_column(ForeignKey("data_provider_calls.id"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    subject_index: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    found: Mapped[bool] = mapped_column(Boolean)
    series_first: Mapped[int | None] = mapped_column(Integer, nullable=True)
    series: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    counts: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    overdue_now: Mapped[int | None] = mapped_column(Integer, nullable=True)
    overdue_level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cases: Mapped[str | None] = mapped_column(Text, nullable=True)


# the early-warning read ranks each subject's answers of a source newest first (`data.queries.answer_facts`): kept in
# that order, the database walks them without sorting
Index("ix_data_answer_facts_subject_newest", AnswerFactsRow.tenant_id, AnswerFactsRow.subject_index,
      AnswerFactsRow.kind, AnswerFactsRow.at.desc(), AnswerFactsRow.call_id.desc())
