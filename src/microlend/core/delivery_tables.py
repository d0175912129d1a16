"""Tables of message delivery: each bank's HTTP gateway per channel (SMS, push), credentials encrypted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from microlend.core.db import Base, UTCDateTime


class MessageGatewayRow(Base):
    """A bank's gateway for one channel: address, encrypted API key and signing secret, batch size,
    timeout and the most messages a second the bank sends through it."""

    __tablename__ = "message_gateways"
    __table_args__ = (UniqueConstraint("tenant_id", "channel", name="uq_message_gateways_channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    channel: Mapped[str] = mapped_column(String(10))
    url: Mapped[str] = mapped_column(String(300))
    api_key_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    secret_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    batch_size: Mapped[int] = mapped_column(Integer, default=100)
    timeout_ms: Mapped[int] = mapped_column(Integer, default=5000)
    throttle_per_s: Mapped[int] = mapped_column(Integer, default=200)
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
