"""催收 the collector's phone pages: the queue (my cases, then the unassigned ones), a case with its history,
and forms to take the case, log a contact (refused with the conduct rule's name when a rule forbids it) and
record a promise to pay; the bank's strategy and conduct rules (read by collectors, changed by an administrator).
zh-CN and en through the `collections.po` and `aftercare.po` catalogues."""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from microlend.api.deps import Id, UnitOfWorkDep
from microlend.api.routers.collections import attachment_response
from microlend.core.errors import Conflict, DomainError, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.servicing import collection_rules as rules
from microlend.servicing.service import collecting
from microlend.web import i18n
from microlend.web.pages import current_principal, login_redirect, page
from microlend.web.templates import request_locale

router = APIRouter(include_in_schema=False)

NAV: list[tuple[str, str, Permission]] = [
    ("/collections", "Collections", Permission.COLLECT),
    ("/collections/settings", "Collections rules", Permission.MANAGE_PRODUCTS),
]

DONE = {"contact": "Contact recorded", "promise": "Promise to pay recorded", "taken": "The case is yours",
        "attached": "Attachment saved"}
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
    "kind:escalation": "Escalation", "kind:attachment": "Attachment", "kind:assign": "Assignment",
    "kind:reroute": "Re-routed",
    "kind:close": "Closed",
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
        attachments = collecting.list_attachments(uow, who, case_id)
    except DomainError as exc:
        return _error(request, who, exc)
    return page(request, who, "collections/case.html", case=found.case, actions=list(reversed(found.actions)),
                attachments=attachments,
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


@router.post("/collections/cases/{case_id}/attachment", response_class=HTMLResponse)
def attach(request: Request, uow: UnitOfWorkDep, case_id: Id, file: Annotated[UploadFile, File()]) -> Response:
    """A photo taken on the phone or a PDF, attached to the case."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        collecting.add_attachment(uow, who, case_id, filename=file.filename or "",
                                  content=file.file.read(collecting.MAX_ATTACHMENT_BYTES + 1))
    except DomainError as exc:
        return _error(request, who, exc)
    return RedirectResponse(f"/collections/cases/{case_id}?done=attached", status_code=303)


@router.get("/collections/attachments/{attachment_id}", response_class=Response)
def attachment(request: Request, uow: UnitOfWorkDep, attachment_id: Id) -> Response:
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        view, content = collecting.attachment_content(uow, who, attachment_id)
    except DomainError as exc:
        return _error(request, who, exc)
    return attachment_response(view, content)


@router.get("/collections/settings", response_class=HTMLResponse)
def settings_page(request: Request, uow: UnitOfWorkDep, saved: str = "") -> Response:
    """The bank's strategy (bucket -> queue and actions) and conduct rules; a form for an administrator."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        current = collecting.collection_settings(uow, who)
    except DomainError as exc:
        return _error(request, who, exc)
    return page(request, who, "collections/settings.html", s=current, saved=bool(saved), labels=LABELS,
                can_edit=who.can(Permission.MANAGE_PRODUCTS))


def _time(text: str, name: str) -> time:
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"{name}: '{text[:10]}' is not a time HH:MM", field=name) from None


@router.post("/collections/settings", response_class=HTMLResponse)
async def save_settings_page(request: Request, uow: UnitOfWorkDep) -> Response:
    """Save the form: one queue, actions (comma separated), large amount and its queue per bucket group, the hours,
    contacts per day and each template's zh and en text."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    if not who.can(Permission.MANAGE_PRODUCTS):  # before the form is read: nothing of it matters then
        return page(request, who, "error.html", status_code=403, message="forbidden")
    form = await request.form()

    def field(name: str) -> str:
        value = form.get(name, "")
        return value if isinstance(value, str) else ""

    try:
        current = collecting.collection_settings(uow, who)
        routes = []
        for i, r in enumerate(current.routes):
            try:
                large = Decimal(field(f"large_amount_{i}").strip() or "0")
            except InvalidOperation:
                raise ValidationError(f"large_amount: '{field(f'large_amount_{i}')[:20]}' is not an amount",
                                      field="large_amount") from None
            actions = tuple(a.strip() for a in field(f"actions_{i}").replace("，", ",").split(",") if a.strip())
            routes.append(rules.Route(r.bucket, field(f"queue_{i}").strip()[:40], actions, large,
                                      field(f"large_queue_{i}").strip()[:40]))
        try:
            per_day = int(field("max_contacts_per_day"))
        except ValueError:
            raise ValidationError("max_contacts_per_day: a whole number", field="max_contacts_per_day") from None
        templates = {name: {"zh": field(f"template_{name}_zh"), "en": field(f"template_{name}_en")}
                     for name in current.templates}
        collecting.save_settings(uow, who, rules.CollectionSettings(
            routes=tuple(routes), allowed_start=_time(field("allowed_start"), "allowed_start"),
            allowed_end=_time(field("allowed_end"), "allowed_end"), timezone=current.timezone,
            max_contacts_per_day=per_day, templates=templates, branch_queues=current.branch_queues))
    except DomainError as exc:
        return _error(request, who, exc)
    return RedirectResponse("/collections/settings?saved=1", status_code=303)
