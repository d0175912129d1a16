"""Tables of the credit data module: the metadata of imported datasets (the data itself is Parquet)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from microlend.core.db import Base, JSONText, UTCDateTime


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
