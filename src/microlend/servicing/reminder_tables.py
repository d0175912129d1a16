"""Tables of repayment reminders (还款提醒): each bank's settings and templates, the reminders outbox and the
customers who asked for no reminders."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from microlend.core.db import Amount, Base, JSONText, UTCDateTime


class ReminderSettingsRow(Base):
    """A bank's reminder rules: days before a due date, overdue days that get a notice, quiet hours in the
    bank's time zone and its own wording of each message (per kind and language; the defaults otherwise)."""

    __tablename__ = "reminder_settings"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    days_before: Mapped[list[int]] = mapped_column(JSONText())
    overdue_days: Mapped[list[int]] = mapped_column(JSONText())
    quiet_start: Mapped[str] = mapped_column(String(5))
    quiet_end: Mapped[str] = mapped_column(String(5))
    timezone: Mapped[str] = mapped_column(String(60))
    templates: Mapped[dict[str, Any]] = mapped_column(JSONText())
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReminderRow(Base):
    """One text message to a borrower about a loan (before a due date, on it, overdue, a receipt): queued,
    then sent, suppressed (opted out) or failed. One per loan, kind, date, day count and repayment."""

    __tablename__ = "reminder_outbox"
    __table_args__ = (
        UniqueConstraint("tenant_id", "loan_id", "kind", "ref_date", "days", "ref_id", name="uq_reminder_outbox_key"),
        Index("ix_reminder_outbox_due", "tenant_id", "status", "scheduled_at"),
        Index("ix_reminder_outbox_customer", "tenant_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(Integer)
    loan_id: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))  # before_due | due_day | overdue | receipt
    ref_date: Mapped[date] = mapped_column(Date)  # the due date, the business date, the value date
    days: Mapped[int] = mapped_column(Integer)  # days before the due date, or past it
    ref_id: Mapped[int] = mapped_column(Integer)  # the repayment of a receipt (0 otherwise)
    amount: Mapped[Decimal] = mapped_column(Amount())
    locale: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20))  # queued | sent | suppressed | failed
    reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    message_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    body: Mapped[str | None] = mapped_column(Text, nullable=True)  # as sent
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReminderOptOutRow(Base):
    """A borrower who asked for no reminders on a channel (退订提醒); it holds until they opt back in."""

    __tablename__ = "reminder_opt_outs"
    __table_args__ = (UniqueConstraint("tenant_id", "customer_id", "channel", name="uq_reminder_opt_outs_channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(10))
    opted_out_at: Mapped[datetime] = mapped_column(UTCDateTime())
