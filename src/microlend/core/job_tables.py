"""Tables of the bank's calendar (作业日历): the scheduled jobs of each bank and every run of them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from microlend.core.db import Base, JSONText, UTCDateTime


class ScheduledJobRow(Base):
    """One job of a bank's calendar: what (kind), when (cadence, local time, time zone), the next business date
    it runs for and when, and the lease a worker holds while it runs it (never two at once)."""

    __tablename__ = "scheduled_jobs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "kind", name="uq_scheduled_jobs_kind"),
        Index("ix_scheduled_jobs_due", "enabled", "next_run_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    kind: Mapped[str] = mapped_column(String(40))  # close_of_business, provisioning, reminders, ...
    cadence: Mapped[str] = mapped_column(String(20))  # daily | month_end
    local_time: Mapped[str] = mapped_column(String(5))  # HH:MM in the bank's time zone
    timezone: Mapped[str] = mapped_column(String(60))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_business_date: Mapped[date] = mapped_column(Date)
    next_run_at: Mapped[datetime] = mapped_column(UTCDateTime())
    failures: Mapped[int] = mapped_column(Integer, default=0)  # consecutive failed attempts of this date
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    rerun_date: Mapped[date | None] = mapped_column(Date, nullable=True)  # asked for by a person
    rerun_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class JobRunRow(Base):
    """One run of a job for a business date: who ran it, start, end, outcome and the figures it reported."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_job", "job_id", "id"), Index("ix_job_runs_tenant", "tenant_id", "id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("scheduled_jobs.id"))
    tenant_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(40))
    business_date: Mapped[date] = mapped_column(Date)
    attempt: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(20))  # schedule | rerun
    worker: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))  # running | succeeded | failed
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    figures: Mapped[dict[str, Any]] = mapped_column(JSONText(), default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    requested_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
