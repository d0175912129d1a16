"""The bank's calendar (作业日历): each bank's scheduled jobs, which a worker claims, runs and records.

A job runs for one business date at a local time in the bank's time zone (close of business at the cut-off,
provisioning at month end, reminders in the morning). A worker claims a due job by taking its lease with a
conditional UPDATE (on PostgreSQL the candidates are picked with `FOR UPDATE SKIP LOCKED`, so workers never
wait on each other); only the holder of an unexpired lease may run the job or record its outcome, so two
workers never run the same job at once. Every run is a row (start, end, outcome, figures); a failed run is
tried again after a growing wait, for the same business date; a person may ask for a job to run again.
What each kind of job does is not known here: the worker maps kinds to functions."""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.db import is_postgres
from microlend.core.errors import NotFound, ValidationError
from microlend.core.identity import Permission, Principal, system_principal
from microlend.core.job_tables import JobRunRow, ScheduledJobRow
from microlend.core.uow import UnitOfWork

DEFAULT_TIMEZONE = "Asia/Shanghai"
DAILY, MONTH_END, HOURLY = "daily", "month_end", "hourly"
CADENCES = (DAILY, MONTH_END, HOURLY)
RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
#: How long a claim holds without being renewed; a worker that died lets its job go after this.
LEASE = timedelta(minutes=10)
#: The wait after the first failure; it doubles with every further failure, up to `LONGEST_WAIT`.
FIRST_RETRY = timedelta(minutes=1)
LONGEST_WAIT = timedelta(hours=2)


@dataclass(frozen=True)
class JobSpec:
    """A job every bank's calendar holds unless the bank changed it: kind, cadence and local time."""

    kind: str
    cadence: str
    local_time: str


# --- the calendar's rules (pure) -------------------------------------------------------------------------------


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"timezone: '{name}' is not a time zone (e.g. Asia/Shanghai)", field="timezone") from exc


def local_time_of(text: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError as exc:
        raise ValidationError(f"local_time: '{text}' is not a time of day HH:MM", field="local_time") from exc


def month_end_on_or_after(on: date) -> date:
    return date(on.year, on.month, calendar.monthrange(on.year, on.month)[1])


def first_business_date(cadence: str, on_or_after: date) -> date:
    """The first business date a job of this cadence runs for, not before `on_or_after`."""
    return month_end_on_or_after(on_or_after) if cadence == MONTH_END else on_or_after


def following_business_date(cadence: str, after: date) -> date:
    """The business date a job runs for next after it ran for `after`."""
    return first_business_date(cadence, after + timedelta(days=1))


def run_at(business_date: date, local_time: str, timezone: str) -> datetime:
    """When (UTC) a job runs for `business_date`: its local time that day in the bank's time zone."""
    local = datetime.combine(business_date, local_time_of(local_time), tzinfo=zone(timezone))
    return local.astimezone(UTC)


def next_run(cadence: str, business_date: date, local_time: str, timezone: str, now: datetime
             ) -> tuple[date, datetime]:
    """The business date and moment of a job's next run after it ran for `business_date` at `now`: the next
    day's (or month end's) local time; an hourly job runs at the next full hour, for that hour's local date."""
    if cadence == HOURLY:
        at = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        return at.astimezone(zone(timezone)).date(), at
    following = following_business_date(cadence, business_date)
    return following, run_at(following, local_time, timezone)


def backoff(failures: int) -> timedelta:
    """The wait before the next try after `failures` failures in a row: 1, 2, 4 ... minutes, at most 2 h."""
    return min(FIRST_RETRY * (1 << min(max(failures - 1, 0), 20)), LONGEST_WAIT)


# --- setting up a bank's calendar ------------------------------------------------------------------------------


def ensure_calendar(session: Session, tenant_id: int, specs: Sequence[JobSpec], *, starting: date,
                    timezone: str = DEFAULT_TIMEZONE, now: datetime | None = None) -> int:
    """Add the jobs of `specs` the bank does not have yet, the first running for `starting` (or the first
    month end from it); returns how many were added. A job the bank has keeps its settings."""
    zone(timezone)
    have = set(session.execute(select(ScheduledJobRow.kind).where(ScheduledJobRow.tenant_id == tenant_id)).scalars())
    added = 0
    for spec in specs:
        if spec.kind in have:
            continue
        if spec.cadence not in CADENCES:
            raise ValidationError(f"cadence: '{spec.cadence}' is not one of {', '.join(CADENCES)}", field="cadence")
        first = first_business_date(spec.cadence, starting)
        session.add(ScheduledJobRow(
            tenant_id=tenant_id, kind=spec.kind, cadence=spec.cadence, local_time=spec.local_time,
            timezone=timezone, enabled=True, next_business_date=first,
            next_run_at=run_at(first, spec.local_time, timezone), failures=0, updated_at=now or utcnow()))
        added += 1
    session.flush()
    return added


# --- claiming, running and recording ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A job a worker holds the lease of, and the run it recorded as started."""

    job_id: int
    run_id: int
    tenant_id: int
    kind: str
    business_date: date
    attempt: int
    trigger: str
    worker: str


def claim_due(uow: UnitOfWork, worker: str, *, now: datetime | None = None, lease: timedelta = LEASE,
              tenant_id: int | None = None, kinds: Sequence[str] | None = None) -> Claim | None:
    """Take the lease of the most overdue job whose time has come and nobody holds, and record its run as
    started; None when there is nothing to do. Safe with any number of workers on one database."""
    now = now or utcnow()
    with uow:
        s = uow.session
        free = or_(ScheduledJobRow.lease_until.is_(None), ScheduledJobRow.lease_until < now)
        q = select(ScheduledJobRow.id).where(ScheduledJobRow.enabled.is_(True), ScheduledJobRow.next_run_at <= now,
                                             free)
        if tenant_id is not None:
            q = q.where(ScheduledJobRow.tenant_id == tenant_id)
        if kinds is not None:
            q = q.where(ScheduledJobRow.kind.in_(list(kinds)))
        q = q.order_by(ScheduledJobRow.next_run_at, ScheduledJobRow.id)
        # PostgreSQL: one row, locked, so another worker skips it and takes the next job meanwhile; SQLite has one
        # writer at a time, and a candidate taken meanwhile fails the conditional update below
        q = q.limit(1).with_for_update(skip_locked=True) if is_postgres(s) else q.limit(5)
        for job_id in s.execute(q).scalars().all():
            taken = s.connection().execute(
                update(ScheduledJobRow).where(ScheduledJobRow.id == job_id, free)
                .values(lease_owner=worker, lease_until=now + lease)).rowcount
            if taken != 1:
                continue
            job = s.execute(select(ScheduledJobRow).where(ScheduledJobRow.id == job_id)).scalar_one()
            rerun = job.rerun_date is not None
            business_date = job.rerun_date if job.rerun_date is not None else job.next_business_date
            run = JobRunRow(job_id=job.id, tenant_id=job.tenant_id, kind=job.kind, business_date=business_date,
                            attempt=job.failures + 1, trigger="rerun" if rerun else "schedule", worker=worker,
                            status=RUNNING, started_at=now, figures={},
                            requested_by=job.rerun_by if rerun else None)
            s.add(run)
            s.flush()
            claim = Claim(job.id, run.id, job.tenant_id, job.kind, business_date, run.attempt, run.trigger, worker)
            uow.commit()
            return claim
        return None


def renew(uow: UnitOfWork, claim: Claim, *, now: datetime | None = None, lease: timedelta = LEASE) -> bool:
    """Extend the lease of a job still running; False if the lease was lost (it expired and another took it)."""
    now = now or utcnow()
    with uow:
        held = uow.session.connection().execute(
            update(ScheduledJobRow)
            .where(ScheduledJobRow.id == claim.job_id, ScheduledJobRow.lease_owner == claim.worker,
                   ScheduledJobRow.lease_until >= now)
            .values(lease_until=now + lease)).rowcount
        uow.commit()
    return bool(held)


def _held(s: Session, claim: Claim) -> ScheduledJobRow | None:
    job = s.execute(select(ScheduledJobRow).where(ScheduledJobRow.id == claim.job_id).with_for_update()).scalar_one()
    return job if job.lease_owner == claim.worker else None


def succeed(uow: UnitOfWork, claim: Claim, figures: dict[str, Any], *, now: datetime | None = None) -> bool:
    """Record the run as succeeded with its figures, move the job to its next business date (a re-run leaves
    the schedule as it was) and let the lease go; False if the lease had been lost meanwhile."""
    now = now or utcnow()
    with uow:
        s = uow.session
        job = _held(s, claim)
        run = s.get(JobRunRow, claim.run_id)
        assert run is not None
        run.finished_at, run.figures = now, _jsonable(figures)
        if job is None:
            run.status, run.error = FAILED, "the lease was lost before the run finished; its work may stand"
            uow.commit()
            return False
        run.status = SUCCEEDED
        if claim.trigger == "rerun":
            job.rerun_date = job.rerun_by = None
            job.next_run_at = run_at(job.next_business_date, job.local_time, job.timezone)
        else:
            job.next_business_date, job.next_run_at = next_run(job.cadence, claim.business_date, job.local_time,
                                                               job.timezone, now)
        job.failures, job.last_error = 0, None
        job.lease_owner = job.lease_until = None
        job.updated_at = now
        if job.rerun_date is not None:  # a run again asked for while this one ran: at the next look
            job.next_run_at = now
        audit.record(s, system_principal(claim.tenant_id, "worker"), "job.run", "scheduled_job", claim.job_id,
                     after={"kind": claim.kind, "business_date": claim.business_date.isoformat(),
                            "trigger": claim.trigger, "run_id": claim.run_id, "figures": run.figures})
        uow.commit()
    return True


def fail(uow: UnitOfWork, claim: Claim, error: str, *, now: datetime | None = None) -> datetime | None:
    """Record the run as failed and set the job to try the same business date again after `backoff`; returns
    when (None if the lease had been lost meanwhile)."""
    now = now or utcnow()
    with uow:
        s = uow.session
        job = _held(s, claim)
        run = s.get(JobRunRow, claim.run_id)
        assert run is not None
        run.status, run.finished_at, run.error = FAILED, now, error[:2000]
        if job is None:
            uow.commit()
            return None
        job.failures += 1
        job.last_error = error[:2000]
        job.next_run_at = now + backoff(job.failures)
        if job.rerun_date is not None and claim.trigger != "rerun":  # asked for while this one ran
            job.next_run_at = now
        job.lease_owner = job.lease_until = None
        job.updated_at = now
        audit.record(s, system_principal(claim.tenant_id, "worker"), "job.fail", "scheduled_job", claim.job_id,
                     after={"kind": claim.kind, "business_date": claim.business_date.isoformat(),
                            "attempt": claim.attempt, "run_id": claim.run_id, "error": error[:500],
                            "next_try": job.next_run_at.isoformat()})
        retry_at = job.next_run_at
        uow.commit()
    return retry_at


def _jsonable(figures: dict[str, Any]) -> dict[str, Any]:
    return {str(k): v if isinstance(v, (int, str, bool, type(None))) else str(v) for k, v in figures.items()}


# --- what operations see and do --------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobView:
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
    lease_owner: str | None


@dataclass(frozen=True)
class RunView:
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
    figures: dict[str, Any]
    error: str | None
    requested_by: str | None

    @property
    def seconds(self) -> float | None:
        return None if self.finished_at is None else round((self.finished_at - self.started_at).total_seconds(), 3)


def _job_view(r: ScheduledJobRow, now: datetime) -> JobView:
    running = r.lease_until is not None and r.lease_until >= now
    return JobView(r.id, r.kind, r.cadence, r.local_time, r.timezone, r.enabled, r.next_business_date, r.next_run_at,
                   r.failures, r.last_error, r.rerun_date, running, r.lease_owner if running else None)


def _run_view(r: JobRunRow) -> RunView:
    return RunView(r.id, r.job_id, r.kind, r.business_date, r.attempt, r.trigger, r.worker, r.status, r.started_at,
                   r.finished_at, dict(r.figures or {}), r.error, r.requested_by)


def list_jobs(uow: UnitOfWork, who: Principal, *, now: datetime | None = None) -> list[JobView]:
    """The caller's bank's calendar."""
    who.require(Permission.RUN_JOBS)
    now = now or utcnow()
    with uow.read_only():
        rows = uow.session.execute(select(ScheduledJobRow).where(ScheduledJobRow.tenant_id == who.tenant_id)
                                   .order_by(ScheduledJobRow.next_run_at, ScheduledJobRow.id)).scalars().all()
        return [_job_view(r, now) for r in rows]


def list_runs(uow: UnitOfWork, who: Principal, *, job_id: int | None = None, status: str | None = None,
              limit: int = 50) -> list[RunView]:
    """The bank's runs, newest first; of one job and one outcome if given."""
    who.require(Permission.RUN_JOBS)
    if status is not None and status not in (RUNNING, SUCCEEDED, FAILED):
        raise ValidationError(f"status: '{status}' is not one of running, succeeded, failed", field="status")
    if not 1 <= limit <= 500:
        raise ValidationError("limit: between 1 and 500", field="limit")
    with uow.read_only():
        q = select(JobRunRow).where(JobRunRow.tenant_id == who.tenant_id)
        if job_id is not None:
            q = q.where(JobRunRow.job_id == job_id)
        if status is not None:
            q = q.where(JobRunRow.status == status)
        rows = uow.session.execute(q.order_by(JobRunRow.id.desc()).limit(limit)).scalars().all()
        return [_run_view(r) for r in rows]


def request_rerun(uow: UnitOfWork, who: Principal, job_id: int, business_date: date | None = None, *,
                  now: datetime | None = None) -> JobView:
    """Ask the worker to run a job of the caller's bank now, for `business_date` (default: the date of its
    latest run, or its next one if it never ran). A date after the job's next business date is refused."""
    who.require(Permission.RUN_JOBS)
    now = now or utcnow()
    with uow:
        s = uow.session
        job = s.get(ScheduledJobRow, job_id)
        if job is None or job.tenant_id != who.tenant_id:
            raise NotFound(f"job {job_id} not found", field="job_id")
        if business_date is None:
            last = s.execute(select(JobRunRow.business_date).where(JobRunRow.job_id == job.id)
                             .order_by(JobRunRow.id.desc()).limit(1)).scalar_one_or_none()
            business_date = last or job.next_business_date
        if business_date > job.next_business_date:
            raise ValidationError(f"business_date: {business_date} is after the job's next business date "
                                  f"{job.next_business_date}", field="business_date")
        before = {"rerun_date": job.rerun_date.isoformat() if job.rerun_date else None}
        job.rerun_date, job.rerun_by = business_date, who.username
        job.next_run_at, job.failures, job.updated_at = now, 0, now
        audit.record(s, who, "job.rerun_requested", "scheduled_job", job.id, before=before,
                     after={"kind": job.kind, "business_date": business_date.isoformat()})
        uow.commit()
        return _job_view(job, now)


# --- the bank's time zone -------------------------------------------------------------------------------------


def bank_timezone(session: Session, tenant_id: int) -> str:
    """The time zone a bank works in: its calendar's (close of business first), else `DEFAULT_TIMEZONE`.
    People see times in it."""
    rows = session.execute(select(ScheduledJobRow.kind, ScheduledJobRow.timezone)
                           .where(ScheduledJobRow.tenant_id == tenant_id)).all()
    zones = sorted(rows, key=lambda r: (r.kind != "close_of_business", r.kind))
    return str(zones[0].timezone) if zones else DEFAULT_TIMEZONE
