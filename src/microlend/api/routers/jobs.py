"""The bank's calendar for operations: the worker's jobs, their runs, and asking for a run again; and the
repayment reminders the worker queued and sent."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Literal

from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field

from microlend.api.deps import CurrentPrincipal, Id, Limit, OptionalId, UnitOfWorkDep
from microlend.api.references import CustomerRef
from microlend.api.routing import api_router
from microlend.api.schemas import PublicSchema
from microlend.core import jobs
from microlend.core.errors import ValidationError
from microlend.servicing.reminders import ReminderSettings
from microlend.servicing.service import reminders

router = api_router(prefix="/api/v1", tags=["operations"])


class JobPublic(PublicSchema):
    id: int
    kind: str
    cadence: str
    local_time: str
    timezone: str
    enabled: bool
    next_business_date: date
    next_run_at: datetime
    failures: int
    last_error: str | None
    rerun_date: date | None
    running: bool


class RunPublic(PublicSchema):
    id: int
    job_id: int
    kind: str
    business_date: date
    attempt: int
    trigger: str
    worker: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    seconds: float | None
    figures: dict[str, Any]
    error: str | None
    requested_by: str | None


class RerunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    business_date: date | None = None


class ReminderPublic(PublicSchema):
    id: int
    loan_id: int
    kind: str
    ref_date: date
    days: int
    amount: Decimal
    status: str
    reason: str | None
    scheduled_at: datetime
    sent_at: datetime | None


@router.get("/jobs")
def list_jobs(who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[JobPublic]:
    """The bank's calendar: each job with its next business date and run, failures and whether it runs now."""
    return [JobPublic.of(j) for j in jobs.list_jobs(uow, who)]


@router.get("/jobs/runs")
def list_runs(who: CurrentPrincipal, uow: UnitOfWorkDep, job_id: OptionalId = None,
              status: Literal["running", "succeeded", "failed"] | None = None, limit: Limit = 50) -> list[RunPublic]:
    """Runs of the bank's jobs, newest first: business date, start and end, outcome and figures."""
    return [RunPublic.of(r) for r in jobs.list_runs(uow, who, job_id=job_id, status=status, limit=min(limit, 500))]


@router.post("/jobs/{job_id}/rerun", status_code=202)
def rerun(job_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep, body: RerunCreate | None = None) -> JobPublic:
    """Ask the worker to run the job again at its next look, for a business date (default: its latest run's)."""
    return JobPublic.of(jobs.request_rerun(uow, who, job_id, body.business_date if body else None))


@router.get("/reminders")
def list_reminders(who: CurrentPrincipal, uow: UnitOfWorkDep, loan_id: OptionalId = None,
                   status: Literal["queued", "sent", "suppressed", "failed"] | None = None,
                   limit: Limit = 100) -> list[ReminderPublic]:
    """Reminders and receipts to borrowers, newest first (of one loan, of one status)."""
    return [ReminderPublic.of(r) for r in reminders.list_reminders(uow, who, loan_id=loan_id, status=status,
                                                                    limit=limit)]


class ReminderSettingsBody(BaseModel):
    """A bank's reminder rules: days before a due date, overdue days with a notice, quiet hours (local time in
    `timezone`), and its own wording per kind (before_due, due_day, overdue, receipt) and language (zh_CN, en)
    with the fields {bank} {loan} {amount} {due_date} {days}."""

    model_config = ConfigDict(extra="forbid")

    days_before: list[int] = Field(default=[3], max_length=5)
    overdue_days: list[int] = Field(default=[1, 7, 15, 30], max_length=20)
    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)
    timezone: str = Field(default="Asia/Shanghai", max_length=60)
    templates: dict[str, dict[str, str]] = Field(default_factory=dict)

    def to_domain(self) -> ReminderSettings:
        if any(len(text) > 500 for by_locale in self.templates.values() for text in by_locale.values()):
            raise ValidationError("templates: at most 500 characters each", field="templates")
        return ReminderSettings(tuple(self.days_before), tuple(self.overdue_days), self.quiet_start, self.quiet_end,
                                self.timezone, self.templates)



class ReminderSettingsPublic(BaseModel):
    """A bank's reminder rules as stored; quiet hours as local "HH:MM" in `timezone`."""

    days_before: list[int]
    overdue_days: list[int]
    quiet_start: str = Field(examples=["21:00"])
    quiet_end: str = Field(examples=["08:00"])
    timezone: str
    templates: dict[str, dict[str, str]]

    @classmethod
    def of(cls, s: ReminderSettings) -> ReminderSettingsPublic:
        return cls(days_before=list(s.days_before), overdue_days=list(s.overdue_days),
                   quiet_start=s.quiet_start.strftime("%H:%M"), quiet_end=s.quiet_end.strftime("%H:%M"),
                   timezone=s.timezone, templates=s.templates)


@router.get("/reminders/settings")
def get_reminder_settings(who: CurrentPrincipal, uow: UnitOfWorkDep) -> ReminderSettingsPublic:
    """The bank's reminder rules and wording (the defaults until it sets its own)."""
    return ReminderSettingsPublic.of(reminders.reminder_settings(uow, who))


@router.put("/reminders/settings")
def put_reminder_settings(body: ReminderSettingsBody, who: CurrentPrincipal, uow: UnitOfWorkDep
                          ) -> ReminderSettingsPublic:
    """Set the bank's reminder rules and wording (checked: a template with an unknown field is refused)."""
    return ReminderSettingsPublic.of(reminders.set_reminder_settings(uow, who, body.to_domain()))


class ReminderOptOutCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerRef


@router.post("/reminders/opt-outs", status_code=204)
def reminder_opt_out(body: ReminderOptOutCreate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> Response:
    """The borrower asked for no more reminders by text (e.g. replied T); queued ones are not sent."""
    reminders.opt_out(uow, who, body.customer_id)
    return Response(status_code=204)
