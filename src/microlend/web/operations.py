"""The operations page of the bank's calendar (作业日历): the worker's jobs with their next run, the latest
runs with outcome and figures, the reminders' totals, a button to run a job again, and how the nightly close of
business runs (in the database, on the local engine or on Spark), which an administrator changes."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from microlend.api.deps import Id, UnitOfWorkDep
from microlend.core import jobs
from microlend.core.errors import DomainError, PermissionDenied, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.servicing import cob_engine
from microlend.servicing.service import reminders
from microlend.web.i18n import translations
from microlend.web.pages import current_principal, login_redirect, page
from microlend.web.templates import request_locale

router = APIRouter(include_in_schema=False)

NAV: list[tuple[str, str, Permission]] = [
    ("/operations/jobs", "Scheduled jobs", Permission.RUN_JOBS),
]

KIND_LABELS = {"close_of_business": "Close of business", "provisioning": "Month-end provisioning",
               "reminders": "Repayment reminders", "messages": "Sending messages",
               "data_refresh": "Re-pull of external data", "early_warning": "Early-warning scan",
               "model_monitoring": "Model monitoring", "journeys": "Campaign journey steps",
               "audit_check": "Audit chain check"}
CADENCE_LABELS = {jobs.DAILY: "Daily", jobs.MONTH_END: "Month end", jobs.HOURLY: "Hourly"}
STATUS_LABELS = {jobs.RUNNING: "Running", jobs.SUCCEEDED: "Succeeded", jobs.FAILED: "Failed"}
ENGINE_LABELS = {"database": "In the database", "local": "Local engine (DuckDB, in the worker)",
                 "spark": "Spark (a cluster, or this server's cores)"}


def _who(request: Request, uow: UnitOfWork) -> Principal | Response:
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    if not who.can(Permission.RUN_JOBS):
        return page(request, who, "error.html", status_code=403, message="forbidden")
    return who


def _page(request: Request, uow: UnitOfWork, who: Principal, *, status_code: int = 200, message: str = "",
          done: str = "", engine_message: str = "", engine_saved: bool = False) -> HTMLResponse:
    counts = reminders.counts(uow, who) if who.can(Permission.VIEW_LOANS) else None
    return page(request, who, "operations/jobs.html", status_code=status_code, jobs=jobs.list_jobs(uow, who),
                runs=jobs.list_runs(uow, who, limit=30), reminder_counts=counts, kinds=KIND_LABELS,
                cadences=CADENCE_LABELS, statuses=STATUS_LABELS, message=message,
                done=done, cob_engine=cob_engine.cob_engine_choice(uow, who), engines=ENGINE_LABELS,
                can_set_engine=who.can(Permission.MANAGE_PRODUCTS), engine_message=engine_message,
                engine_saved=engine_saved)


def _engine_refusal(request: Request, exc: DomainError) -> str:
    """Why the engine was not set, in the reader's language: an unknown engine, or Spark missing here and what
    to install (the service's words after the field's name)."""
    t = translations(request_locale(request))
    if isinstance(exc, PermissionDenied):
        return str(t.gettext("You may not change how close of business runs."))
    if exc.message.startswith(cob_engine.SPARK_UNAVAILABLE):
        problem = exc.message[len(cob_engine.SPARK_UNAVAILABLE):]
        return str(t.gettext("Spark cannot run on this server: %(problem)s")) % {"problem": t.gettext(problem)}
    if exc.field == "engine":
        return str(t.gettext("Choose how close of business runs: in the database, on the local engine or on Spark."))
    return str(t.gettext(exc.message))


@router.get("/operations/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, uow: UnitOfWorkDep, done: str = "", engine: str = "") -> Response:
    who = _who(request, uow)
    if not isinstance(who, Principal):
        return who
    return _page(request, uow, who, done=done, engine_saved=engine == "saved")


@router.post("/operations/cob-engine", response_class=HTMLResponse)
def set_cob_engine(request: Request, uow: UnitOfWorkDep, engine: Annotated[str, Form()] = "") -> Response:
    """The administrator's choice of how the nightly close of business runs (from its next run)."""
    who = _who(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        cob_engine.set_cob_engine(uow, who, engine)
    except DomainError as exc:
        return _page(request, uow, who, status_code=exc.status_code, engine_message=_engine_refusal(request, exc))
    return RedirectResponse("/operations/jobs?engine=saved", status_code=303)


@router.post("/operations/jobs/{job_id}/rerun", response_class=HTMLResponse)
def rerun(request: Request, uow: UnitOfWorkDep, job_id: Id,
          business_date: Annotated[str, Form()] = "") -> Response:
    who = _who(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        try:
            on = date.fromisoformat(business_date) if business_date.strip() else None
        except ValueError:
            raise ValidationError(f"business_date: '{business_date}' is not a date YYYY-MM-DD",
                                  field="business_date") from None
        jobs.request_rerun(uow, who, job_id, on)
    except DomainError as exc:
        return _page(request, uow, who, status_code=exc.status_code, message=exc.message)
    return RedirectResponse(f"/operations/jobs?done={job_id}", status_code=303)
