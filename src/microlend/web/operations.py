"""The operations page of the bank's calendar (作业日历): the worker's jobs with their next run, the latest
runs with outcome and figures, the reminders' totals, and a button to run a job again."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from microlend.api.deps import Id, UnitOfWorkDep
from microlend.core import jobs
from microlend.core.errors import DomainError, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.servicing.service import reminders
from microlend.web.pages import current_principal, login_redirect, page

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


def _who(request: Request, uow: UnitOfWork) -> Principal | Response:
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    if not who.can(Permission.RUN_JOBS):
        return page(request, who, "error.html", status_code=403, message="forbidden")
    return who


def _page(request: Request, uow: UnitOfWork, who: Principal, *, status_code: int = 200, message: str = "",
          done: str = "") -> HTMLResponse:
    counts = reminders.counts(uow, who) if who.can(Permission.VIEW_LOANS) else None
    return page(request, who, "operations/jobs.html", status_code=status_code, jobs=jobs.list_jobs(uow, who),
                runs=jobs.list_runs(uow, who, limit=30), reminder_counts=counts, kinds=KIND_LABELS,
                cadences=CADENCE_LABELS, statuses=STATUS_LABELS, message=message,
                done=done)


@router.get("/operations/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, uow: UnitOfWorkDep, done: str = "") -> Response:
    who = _who(request, uow)
    if not isinstance(who, Principal):
        return who
    return _page(request, uow, who, done=done)


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
