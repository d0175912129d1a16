"""The worker (作业进程): runs each bank's calendar next to the web server. Every poll it claims the due jobs
one at a time (`core.jobs`: a lease, so any number of workers may run against one database and no job runs
twice at once), runs the job's function as the bank's system identity, and records the outcome; a failure is
retried later for the same business date.

The jobs of a bank's calendar: close of business at the cut-off (23:00 in the bank's time zone), month-end
provisioning after it (23:30 on the last day of the month), the re-pull of external data for the borrowers
due one (23:40, a rolling cohort: each borrower every 30 days by default), the early-warning scan of the book
after them (23:45), the day's repayment reminders in the morning (09:00), every hour the sending of queued
messages and of event deliveries still waiting and the campaigns' journey steps now due, and at month end,
after provisioning (23:45), the monitoring of the models in use (模型监控: drift and performance, with alerts), and
every hour the check of the audit chain (审计链校验) on from where the last one stopped."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select

from microlend.batch.engine import engine_named
from microlend.core import audit, jobs, outbox
from microlend.core.clock import utcnow
from microlend.core.identity import Principal, system_principal
from microlend.core.jobs import Claim, JobSpec
from microlend.core.tables import TenantRow
from microlend.core.uow import UnitOfWork
from microlend.marketing import service as marketing
from microlend.origination import data_refresh, early_warning
from microlend.origination import queries as application_queries
from microlend.risk import monitoring_runs
from microlend.servicing.cob import run_close_of_business
from microlend.servicing.cob_engine import bank_cob_engine, run_close_of_business_on
from microlend.servicing.provisions import run_provisioning
from microlend.servicing.service import collecting, reminders

log = logging.getLogger("microlend.worker")

CLOSE_OF_BUSINESS, PROVISIONING, REMINDERS, MESSAGES = "close_of_business", "provisioning", "reminders", "messages"
EARLY_WARNING, DATA_REFRESH = "early_warning", "data_refresh"
MODEL_MONITORING, JOURNEYS = "model_monitoring", "journeys"
AUDIT_CHECK = "audit_check"

#: The calendar every bank starts with (a bank may change times and time zone in its rows).
DEFAULT_CALENDAR = [
    JobSpec(CLOSE_OF_BUSINESS, jobs.DAILY, "23:00"),
    JobSpec(PROVISIONING, jobs.MONTH_END, "23:30"),
    JobSpec(DATA_REFRESH, jobs.DAILY, "23:40"),
    JobSpec(EARLY_WARNING, jobs.DAILY, "23:45"),
    JobSpec(REMINDERS, jobs.DAILY, "09:00"),
    JobSpec(MESSAGES, jobs.HOURLY, "00:00"),
    JobSpec(MODEL_MONITORING, jobs.MONTH_END, "23:45"),
    JobSpec(JOURNEYS, jobs.HOURLY, "00:00"),
    JobSpec(AUDIT_CHECK, jobs.HOURLY, "00:00"),
]

JobFunction = Callable[[UnitOfWork, Principal, date], dict[str, Any]]


def close_of_business(uow: UnitOfWork, who: Principal, on: date) -> dict[str, Any]:
    """Close every open business date through `on` (a date closed already is left alone), on the batch engine the
    bank's servicing settings name, in the database if none."""
    with uow.read_only():
        tenant = uow.session.get(TenantRow, who.tenant_id)
        open_date = tenant.business_date if tenant is not None else on
        engine = bank_cob_engine(uow.session, who.tenant_id)
    if on < open_date:
        return {"closed": 0, "open_business_date": open_date.isoformat()}
    if engine:  # the bank's settings name a batch engine: partition by partition, shared by the workers running it
        results = run_close_of_business_on(uow, who, engine_named(engine), through=on)
    else:
        results = run_close_of_business(uow, who, through=on)
    done = [r for r in results if not r.skipped]
    promises = {"promises_kept": 0, "promises_broken": 0}
    for result in done:  # promises to pay found kept or broken by each day's close
        for key, count in collecting.check_promises(uow, who, result.business_date).items():
            promises[key] += count
    return {"closed": len(done), "loans": sum(r.loans_active for r in done),
            "interest_accrued": str(sum((r.interest_accrued for r in done), start=0)),
            "newly_overdue": sum(r.newly_overdue for r in done),
            "bucket_changes": sum(r.bucket_changes for r in done), **promises}


def provisioning(uow: UnitOfWork, who: Principal, on: date) -> dict[str, Any]:
    """拨备计提 at month end, booked on the month's last day (after that day's close of business)."""
    run = run_provisioning(uow, who, on)
    return {"as_of": run.as_of.isoformat(), "loans": run.loans, "total": str(run.total), "change": str(run.change)}


def refresh_external_data(uow: UnitOfWork, who: Principal, on: date) -> dict[str, Any]:
    """贷后数据更新 before the scan: the borrowers whose external data is older than the bank's period asked again
    under their consents to post-loan monitoring, within the run's budget of calls and cost."""
    return data_refresh.refresh(uow, who, on).facts()


def early_warning_scan(uow: UnitOfWork, who: Principal, on: date) -> dict[str, Any]:
    """预警 after the day's close of business: the month's behaviour score of every active loan and line, and
    the early-warning scan of the whole book with the bank's published rules."""
    run = early_warning.scan(uow, who)
    return {"business_date": run.business_date.isoformat(), "subjects": run.subjects, "raised": run.raised,
            "new_alerts": run.new, "escalated": run.escalated, "rule_version": run.rule_version[:12]}


def queue_and_send_reminders(uow: UnitOfWork, who: Principal, on: date) -> dict[str, Any]:
    """The day's reminders queued for the whole book, then what may go now sent."""
    queued = reminders.queue_reminders(uow, who, on)
    sent = reminders.dispatch_reminders(uow, who)
    return {**queued.facts(), **{f"sent_{k}": v for k, v in sent.facts().items()}}


def send_messages(uow: UnitOfWork, who: Principal, on: date) -> dict[str, Any]:
    """Queued reminders and receipts whose time has come, the campaigns' due messages through the bank's
    gateways (throttled, retried with backoff), event deliveries still waiting for a retry, the open visit
    tasks of customers no longer eligible closed (with the reason), and each open campaign's interim report
    recomputed where its inputs changed or it is an hour old."""
    sent = reminders.dispatch_reminders(uow, who)
    campaign = marketing.dispatch_bank_outbox(uow, who, now=utcnow())
    delivered = outbox.deliver_due(uow, tenant_id=who.tenant_id)
    swept = marketing.close_ineligible_visit_tasks(uow, who, now=utcnow())
    reports = marketing.refresh_open_reports(uow, who, now=utcnow())
    return {**sent.facts(), "campaign_reports_refreshed": reports,
            **{f"visit_tasks_closed_{k}": v for k, v in swept.items()},
            "campaign_sent": campaign.sent, "campaign_failed": campaign.failed,
            "campaign_retrying": campaign.retrying, "campaign_deferred": campaign.deferred,
            "campaign_suppressed": sum(campaign.suppressed.values()),
            "deliveries_done": delivered.done, "deliveries_retrying": delivered.retrying}


def monitor_models(uow: UnitOfWork, who: Principal, on: date) -> dict[str, Any]:
    """模型监控: every model version in use measured on the applications it scored through `on` (the month's
    last day, closed), with what origination knows of their loans' outcomes; one stored run per version, alerts on
    the audit trail."""
    facts = {app_id: monitoring_runs.CaseFacts(features, bad)
             for app_id, (features, bad) in application_queries.monitoring_facts(uow, who, on).items()}
    runs = monitoring_runs.record_monitoring(uow, who, on, facts)
    return {"models": len(runs), "alerts": sum(len(r.alerts) for r in runs),
            "act": sum(1 for r in runs if r.status == "act"), "watch": sum(1 for r in runs if r.status == "watch")}
def advance_journeys(uow: UnitOfWork, who: Principal, on: date) -> dict[str, Any]:
    """客户旅程 the campaigns' follow-up steps now due: their messages queued (the messages job sends them)
    and their officers' visit tasks made."""
    with uow.read_only():
        tenant = uow.session.get(TenantRow, who.tenant_id)
        bank = tenant.display_name if tenant is not None else ""
    done = marketing.advance_journeys(uow, who, now=utcnow(), bank_name=bank)
    return {"journey_steps_done": done.steps_done, "journey_steps_stopped": done.steps_stopped,
            "journey_contacted": done.contacted, "journey_messages": done.messages,
            "journey_visit_tasks": done.visit_tasks}


def check_audit_chain(uow: UnitOfWork, who: Principal, on: date) -> dict[str, Any]:
    """审计链校验: the bank's audit chain verified on from where the last check stopped (walked whole once a
    day), the outcome stored for the audit trail's page."""
    check = audit.check_chain(uow, who)
    if not check.ok:
        log.error("the audit chain of bank %s is broken: %s", who.tenant_id, "; ".join(check.problems[:5]))
    return {"audit_records": check.records, "audit_verified": check.verified_now, "audit_chain_ok": check.ok}


JOBS: dict[str, JobFunction] = {
    CLOSE_OF_BUSINESS: close_of_business,
    PROVISIONING: provisioning,
    DATA_REFRESH: refresh_external_data,
    EARLY_WARNING: early_warning_scan,
    REMINDERS: queue_and_send_reminders,
    MESSAGES: send_messages,
    MODEL_MONITORING: monitor_models,
    JOURNEYS: advance_journeys,
    AUDIT_CHECK: check_audit_chain,
}


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


def ensure_calendars(uow: UnitOfWork, *, timezone: str = jobs.DEFAULT_TIMEZONE) -> int:
    """Give every bank the jobs of `DEFAULT_CALENDAR` it lacks, from its open business date; how many added."""
    added = 0
    with uow:
        for tenant in uow.session.execute(select(TenantRow).order_by(TenantRow.id)).scalars().all():
            added += jobs.ensure_calendar(uow.session, tenant.id, DEFAULT_CALENDAR, starting=tenant.business_date,
                                          timezone=timezone)
        uow.commit()
    return added


@dataclass(frozen=True)
class Outcome:
    claim: Claim
    ok: bool
    figures: dict[str, Any]
    error: str | None = None


class _Heartbeat:
    """Renews a claim's lease while its job runs, so a long close of business keeps it."""

    def __init__(self, uow: UnitOfWork, claim: Claim, every_s: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(uow.fresh(), claim, every_s), daemon=True,
                                        name=f"lease-{claim.job_id}")

    def _run(self, uow: UnitOfWork, claim: Claim, every_s: float) -> None:
        while not self._stop.wait(every_s):
            try:
                if not jobs.renew(uow, claim):
                    log.error("the lease of job %s (%s) was lost while it ran", claim.job_id, claim.kind)
                    return
            except Exception:  # the next beat tries again; the lease is long enough for a few misses
                log.exception("could not renew the lease of job %s", claim.job_id)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def run_claim(uow: UnitOfWork, claim: Claim, functions: dict[str, JobFunction] | None = None) -> Outcome:
    """Run one claimed job and record its outcome (a failure is recorded and retried later, never raised)."""
    function = (functions or JOBS).get(claim.kind)
    who = system_principal(claim.tenant_id, "worker")
    started = time.perf_counter()
    try:
        if function is None:
            raise LookupError(f"no function for job kind '{claim.kind}'")
        with _Heartbeat(uow, claim, jobs.LEASE.total_seconds() / 3):
            figures = function(uow, who, claim.business_date)
    except Exception as exc:  # a job's failure is recorded on its run and retried with backoff
        error = f"{type(exc).__name__}: {exc}"
        log.exception("job %s (%s) for %s failed", claim.job_id, claim.kind, claim.business_date)
        jobs.fail(uow, claim, error)
        return Outcome(claim, False, {}, error)
    figures = {**figures, "seconds": round(time.perf_counter() - started, 3)}
    jobs.succeed(uow, claim, figures)
    log.info("job %s (%s) for %s done: %s", claim.job_id, claim.kind, claim.business_date, figures)
    return Outcome(claim, True, figures)


def run_due(uow: UnitOfWork, *, worker: str | None = None, tenant_id: int | None = None, max_jobs: int = 1000,
            functions: dict[str, JobFunction] | None = None) -> list[Outcome]:
    """Run every job that is due now, one after another, until none is (or `max_jobs` ran)."""
    worker = worker or worker_name()
    outcomes: list[Outcome] = []
    while len(outcomes) < max_jobs:
        claim = jobs.claim_due(uow, worker, tenant_id=tenant_id, kinds=list((functions or JOBS).keys()))
        if claim is None:
            break
        outcomes.append(run_claim(uow, claim, functions))
    return outcomes


def serve(uow: UnitOfWork, *, poll_s: float = 30.0, stop: threading.Event | None = None,
          timezone: str = jobs.DEFAULT_TIMEZONE) -> None:
    """The worker process: keep every bank's calendar, run what is due, sleep `poll_s`, until `stop` is set."""
    stop = stop or threading.Event()
    worker = worker_name()
    log.info("worker %s started (poll every %ss)", worker, poll_s)
    while not stop.is_set():
        try:
            ensure_calendars(uow, timezone=timezone)
            for outcome in run_due(uow, worker=worker):
                log.info("%s %s %s", outcome.claim.kind, outcome.claim.business_date, "ok" if outcome.ok else "failed")
        except Exception:  # e.g. the database went away for a moment: try again at the next poll
            log.exception("worker poll failed at %s", utcnow().isoformat())
        stop.wait(poll_s)
    log.info("worker %s stopped", worker)
