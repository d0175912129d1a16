"""Tables of the credit data module: the metadata of imported datasets (the data itself is Parquet) and the
bank's own accounts and their transactions (imported from core banking)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
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
