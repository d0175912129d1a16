"""Tables of collections (催收): each bank's strategy and conduct settings, the cases opened on overdue loans, and
every action taken on a case (contacts, refused contacts with the rule, promises to pay, notes, escalations,
assignments, closure)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from microlend.core.db import Amount, Base, JSONText, UTCDateTime


class CollectionSettingsRow(Base):
    """A bank's collections strategy (routes by bucket, amount and branch) and conduct rules."""

    __tablename__ = "collection_settings"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    strategy: Mapped[dict[str, Any]] = mapped_column(JSONText())
    allowed_start: Mapped[str] = mapped_column(String(5))
    allowed_end: Mapped[str] = mapped_column(String(5))
    timezone: Mapped[str] = mapped_column(String(60))
    max_contacts_per_day: Mapped[int] = mapped_column(Integer)
    templates: Mapped[dict[str, Any]] = mapped_column(JSONText())
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CollectionCaseRow(Base):
    """One collections case on an overdue loan: open until the loan is cured or written off."""

    __tablename__ = "collection_cases"
    __table_args__ = (
        Index("ix_collection_cases_open", "tenant_id", "status", "id"),
        Index("ix_collection_cases_queue", "tenant_id", "status", "queue", "id"),
        Index("ix_collection_cases_assignee", "tenant_id", "status", "assignee", "id"),
        Index("ix_collection_cases_loan", "tenant_id", "loan_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    loan_id: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    branch: Mapped[str] = mapped_column(String(60), default="")
    status: Mapped[str] = mapped_column(String(20))  # open | closed
    bucket: Mapped[str] = mapped_column(String(10))
    days_past_due: Mapped[int] = mapped_column(Integer)
    amount_overdue: Mapped[Decimal] = mapped_column(Amount())
    queue: Mapped[str] = mapped_column(String(60))
    next_action: Mapped[str] = mapped_column(String(40))
    assignee: Mapped[str | None] = mapped_column(String(100), nullable=True)
    escalation: Mapped[int] = mapped_column(Integer, default=0)
    #: names of the borrower's registered contacts (who besides the borrower may be contacted)
    registered_contacts: Mapped[list[str]] = mapped_column(JSONText())
    opened_on: Mapped[date] = mapped_column(Date)
    closed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    close_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)  # cured | written_off
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CollectionActionRow(Base):
    """Something done on a case, as it happened: a contact, a contact refused by a conduct rule (with the rule),
    a promise to pay (pending, kept or broken at a close of business), a note, an escalation, an assignment."""

    __tablename__ = "collection_actions"
    __table_args__ = (
        Index("ix_collection_actions_case", "tenant_id", "case_id", "id"),
        Index("ix_collection_actions_promises", "tenant_id", "kind", "promise_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    case_id: Mapped[int] = mapped_column(ForeignKey("collection_cases.id"))
    kind: Mapped[str] = mapped_column(String(20))  # contact | blocked | promise | note | escalation | assign | close
    channel: Mapped[str | None] = mapped_column(String(20), nullable=True)
    party: Mapped[str | None] = mapped_column(String(100), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    template: Mapped[str | None] = mapped_column(String(40), nullable=True)
    rule: Mapped[str | None] = mapped_column(String(40), nullable=True)
    amount: Mapped[Decimal | None] = mapped_column(Amount(), nullable=True)
    promise_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    promise_status: Mapped[str | None] = mapped_column(String(20), nullable=True)  # pending | kept | broken
    promised_on: Mapped[date | None] = mapped_column(Date, nullable=True)  # the business date it was made
    text: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class CollectionAttachmentRow(Base):
    """A photo or PDF attached to a case from the collector's phone (a visit's photo, a signed letter), kept in the
    database with the bank's other records; read back only within the bank."""

    __tablename__ = "collection_attachments"
    __table_args__ = (Index("ix_collection_attachments_case", "tenant_id", "case_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    case_id: Mapped[int] = mapped_column(ForeignKey("collection_cases.id"))
    filename: Mapped[str] = mapped_column(String(120))
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
