"""预警 early warning in the browser: the queue of alerts with filters and the action buttons (htmx swaps the
alert's card for what was done), and the officer's visits with a form for the outcome. Phone-sized cards;
zh-CN and en through the `early_warning.po` catalogue."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from microlend.api.deps import Id, UnitOfWorkDep
from microlend.core.errors import DomainError, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.decisioning import early_warning as rules
from microlend.origination import early_warning as ew
from microlend.web import i18n
from microlend.web.pages import current_principal, login_redirect, page
from microlend.web.templates import request_locale

router = APIRouter(include_in_schema=False)

NAV: list[tuple[str, str, Permission]] = [  # the officer's customers; the approver's and risk team's whole queue
    ("/early-warning", "Early warning", Permission.RECOMMEND),
    ("/early-warning", "Early warning", Permission.MANAGE_CREDIT_LINES),
    ("/early-warning", "Early warning", Permission.EDIT_POLICIES),
    ("/early-warning/visits", "My visits", Permission.RECOMMEND),
]

ACTION_LABELS = {"freeze": "Freeze drawdowns", "reduce_limit": "Reduce the limit", "visit": "Ask for a visit",
                 "collections_case": "Open a collections case", "dismiss": "Dismiss"}


def _t(request: Request, message: str) -> str:
    return str(i18n.translations(request_locale(request)).gettext(message))


def _error(request: Request, who: Principal, exc: DomainError) -> HTMLResponse:
    return page(request, who, "error.html", status_code=exc.status_code, message=_t(request, exc.message))


def _labels(request: Request) -> dict[str, str]:
    locale = request_locale(request)
    return {s: rules.signal_label(s, locale) for s in rules.SIGNALS}


def _may_act(who: Principal) -> bool:
    return who.can(Permission.MANAGE_CREDIT_LINES) or who.can(Permission.EDIT_POLICIES)


@router.get("/early-warning", response_class=HTMLResponse)
def queue(request: Request, uow: UnitOfWorkDep, status: str = "open", severity: str = "", signal: str = "",
          done: str = "") -> Response:
    """The queue: highest severity first, filtered by status, severity and signal."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        items = ew.list_alerts(uow, who, status=status or None, severity=severity or None, signal=signal or None)
        counts = ew.count_open(uow, who)
    except DomainError as exc:
        return _error(request, who, exc)
    return page(request, who, "early_warning/queue.html", items=items, counts=counts, labels=_labels(request),
                actions=ACTION_LABELS, can_act=_may_act(who), status=status, severity=severity, signal=signal,
                signals=rules.SIGNALS, severities=rules.SEVERITIES, done=_t(request, "Action recorded") if done else "",
                can_scan=_may_act(who))


@router.post("/early-warning/alerts/{alert_id}/act", response_class=HTMLResponse)
def act(request: Request, uow: UnitOfWorkDep, alert_id: Id, action: Annotated[str, Form(max_length=20)],
        note: Annotated[str, Form(max_length=1000)] = "", new_limit: Annotated[str, Form(max_length=20)] = "",
        due_on: Annotated[str, Form(max_length=10)] = "") -> Response:
    """Take an action on an alert; htmx swaps its card for the result."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    htmx = bool(request.headers.get("HX-Request"))
    try:
        limit = _amount(new_limit) if new_limit.strip() else None
        due = _day(due_on) if due_on.strip() else None
        ew.act(uow, who, alert_id, action, note, new_limit=limit, due_on=due)
        alert = ew.get_alert(uow, who, alert_id)
    except DomainError as exc:
        if htmx and exc.status_code not in (401, 403, 404):
            alert = ew.get_alert(uow, who, alert_id)
            return page(request, who, "early_warning/_alert.html", status_code=exc.status_code, a=alert,
                        labels=_labels(request), actions=ACTION_LABELS, can_act=_may_act(who),
                        error=_t(request, exc.message))
        return _error(request, who, exc)
    if htmx:
        return page(request, who, "early_warning/_alert.html", a=alert, labels=_labels(request),
                    actions=ACTION_LABELS, can_act=False, error="")
    return RedirectResponse("/early-warning?done=1", status_code=303)


@router.post("/early-warning/scan", response_class=HTMLResponse)
def scan(request: Request, uow: UnitOfWorkDep) -> Response:
    """Scan the book now with the published rules."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        ew.scan(uow, who, keep_scores=False)
    except DomainError as exc:
        return _error(request, who, exc)
    return RedirectResponse("/early-warning", status_code=303)


@router.get("/early-warning/visits", response_class=HTMLResponse)
def visits(request: Request, uow: UnitOfWorkDep, status: str = "open") -> Response:
    """My visits: the ones assigned to me, soonest due first."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        items = ew.list_visits(uow, who, status=status or None, mine=True)
    except DomainError as exc:
        return _error(request, who, exc)
    return page(request, who, "early_warning/visits.html", items=items, status=status)


@router.post("/early-warning/visits/{visit_id}/outcome", response_class=HTMLResponse)
def visit_outcome(request: Request, uow: UnitOfWorkDep, visit_id: Id,
                  outcome: Annotated[str, Form(max_length=2000)] = "",
                  status: Annotated[str, Form(max_length=10)] = "done") -> Response:
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        ew.record_visit_outcome(uow, who, visit_id, outcome, status)
    except DomainError as exc:
        return _error(request, who, exc)
    return RedirectResponse("/early-warning/visits", status_code=303)


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        raise ValidationError("new_limit: not an amount", field="new_limit") from None
    if not value.is_finite():
        raise ValidationError("new_limit: not an amount", field="new_limit")
    return value


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError("due_on: a date as YYYY-MM-DD", field="due_on") from None
