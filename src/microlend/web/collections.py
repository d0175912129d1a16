"""催收 the collector's phone pages: the queue (my cases, then the unassigned ones), a case with its history,
and forms to take the case, log a contact (refused with the conduct rule's name when a rule forbids it) and
record a promise to pay. zh-CN and en through the `collections.po` catalogue."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from microlend.api.deps import Id, UnitOfWorkDep
from microlend.core.errors import Conflict, DomainError
from microlend.core.identity import Permission, Principal
from microlend.servicing import collection_rules as rules
from microlend.servicing.service import collecting
from microlend.web import i18n
from microlend.web.pages import current_principal, login_redirect, page
from microlend.web.templates import request_locale

router = APIRouter(include_in_schema=False)

NAV: list[tuple[str, str, Permission]] = [
    ("/collections", "Collections", Permission.COLLECT),
]

DONE = {"contact": "Contact recorded", "promise": "Promise to pay recorded", "taken": "The case is yours"}
RULES = {rules.ALLOWED_HOURS: "Outside the allowed hours", rules.DAILY_LIMIT: "Too many contacts today",
         rules.ALLOWED_PARTY: "Only the borrower and registered contacts", rules.TEMPLATE: "Use an approved template"}

LABELS = {
    "action:reminder": "Send a reminder", "action:call": "Call the borrower", "action:officer_call": "Officer's call",
    "action:visit": "Visit", "action:field_visit": "Field visit", "action:legal": "Legal action",
    "action:promise_follow_up": "Follow up the promise", "action:broken_promise_call": "Call about the broken promise",
    "action:": "None",
    "status:open": "Open", "status:closed": "Closed",
    "channel:call": "Phone call", "channel:sms": "Text message", "channel:visit": "Visit", "channel:letter": "Letter",
    "outcome:promise": "Promised to pay", "outcome:refused": "Refused", "outcome:no_answer": "No answer",
    "outcome:wrong_number": "Wrong number",
    "template:reminder": "Overdue reminder", "template:promise_follow_up": "Promise follow-up",
    "kind:contact": "Contact", "kind:blocked": "Contact refused", "kind:promise": "Promise to pay", "kind:note": "Note",
    "kind:escalation": "Escalation", "kind:assign": "Assignment", "kind:close": "Closed",
    "promise:pending": "Pending", "promise:kept": "Kept", "promise:broken": "Broken", "promise:closed": "Closed",
}


def _t(request: Request, message: str) -> str:
    return str(i18n.translations(request_locale(request)).gettext(message))


def _error(request: Request, who: Principal, exc: DomainError) -> HTMLResponse:
    return page(request, who, "error.html", status_code=exc.status_code, message=_t(request, exc.message))


@router.get("/collections", response_class=HTMLResponse)
def queue(request: Request, uow: UnitOfWorkDep) -> Response:
    """My open cases, then the open cases nobody has taken yet."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    if not who.can(Permission.COLLECT):
        return page(request, who, "error.html", status_code=403, message="forbidden")
    mine = collecting.list_cases(uow, who, assignee=who.username, limit=100)
    unassigned = collecting.list_cases(uow, who, unassigned=True, limit=50)
    return page(request, who, "collections/queue.html", mine=mine, unassigned=unassigned, labels=LABELS)


@router.get("/collections/cases/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, uow: UnitOfWorkDep, case_id: Id, done: str = "", rule: str = "") -> Response:
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        found = collecting.get_case(uow, who, case_id)
    except DomainError as exc:
        return _error(request, who, exc)
    return page(request, who, "collections/case.html", case=found.case, actions=list(reversed(found.actions)),
                done=DONE.get(done, ""), refused=RULES.get(rule, ""), rule=rule if rule in RULES else "",
                channels=rules.CHANNELS, outcomes=rules.OUTCOMES,
                parties=[rules.BORROWER, *found.case.registered_contacts], labels=LABELS)


@router.post("/collections/cases/{case_id}/take", response_class=HTMLResponse)
def take(request: Request, uow: UnitOfWorkDep, case_id: Id) -> Response:
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        collecting.assign(uow, who, case_id, who.username)
    except DomainError as exc:
        return _error(request, who, exc)
    return RedirectResponse(f"/collections/cases/{case_id}?done=taken", status_code=303)


@router.post("/collections/cases/{case_id}/contact", response_class=HTMLResponse)
def contact(request: Request, uow: UnitOfWorkDep, case_id: Id, channel: Annotated[str, Form()],
            party: Annotated[str, Form()], outcome: Annotated[str, Form()], template: Annotated[str, Form()] = "",
            note: Annotated[str, Form()] = "") -> Response:
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        collecting.log_contact(uow, who, case_id, channel=channel, party=party, outcome=outcome,
                               template=template or None, note=note)
    except Conflict as exc:
        if exc.field in RULES:
            return RedirectResponse(f"/collections/cases/{case_id}?rule={exc.field}", status_code=303)
        return _error(request, who, exc)
    except DomainError as exc:
        return _error(request, who, exc)
    return RedirectResponse(f"/collections/cases/{case_id}?done=contact", status_code=303)


@router.post("/collections/cases/{case_id}/promise", response_class=HTMLResponse)
def promise(request: Request, uow: UnitOfWorkDep, case_id: Id, amount: Annotated[str, Form()],
            promise_date: Annotated[str, Form()], note: Annotated[str, Form()] = "") -> Response:
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        on = date.fromisoformat(promise_date)
    except ValueError:
        return page(request, who, "error.html", status_code=422, message=_t(request, "Enter the promised date"))
    try:
        collecting.record_promise(uow, who, case_id, amount=amount, promise_date=on, note=note)
    except DomainError as exc:
        return _error(request, who, exc)
    return RedirectResponse(f"/collections/cases/{case_id}?done=promise", status_code=303)
