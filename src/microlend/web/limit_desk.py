"""增信提额 the limit management desk in the browser: the officer's candidate list with the model's evidence
and a recommendation form, the approver's queue and the case page to approve or reject (four eyes,
authority by amount). Phone-friendly cards; zh-CN and en through the `limit_desk.po` catalogue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from microlend.api.deps import Id, UnitOfWorkDep
from microlend.core.errors import DomainError
from microlend.core.identity import Permission, Principal
from microlend.origination import limit_desk as desk
from microlend.web import i18n
from microlend.web.pages import current_principal, login_redirect, page
from microlend.web.templates import request_locale

router = APIRouter(include_in_schema=False)

NAV: list[tuple[str, str, Permission]] = [
    ("/limit-desk/candidates", "Limit desk", Permission.RECOMMEND),
    ("/limit-desk/approvals", "Limit approvals", Permission.MANAGE_CREDIT_LINES),
]

DONE = {"recommended": "Your recommendation is recorded", "approved": "Limit change approved and applied",
        "rejected": "Limit change rejected"}


def _t(request: Request, message: str) -> str:
    return str(i18n.translations(request_locale(request)).gettext(message))


def _error(request: Request, who: Principal, exc: DomainError) -> HTMLResponse:
    return page(request, who, "error.html", status_code=exc.status_code, message=_t(request, exc.message))


def _may_see(who: Principal) -> bool:
    return who.can(Permission.RECOMMEND) or who.can(Permission.MANAGE_CREDIT_LINES)


@router.get("/limit-desk/candidates", response_class=HTMLResponse)
def candidates(request: Request, uow: UnitOfWorkDep, done: str = "") -> Response:
    """The officer's customers' candidates with the behaviour score's evidence and a recommendation form."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    if not _may_see(who):
        return page(request, who, "error.html", status_code=403, message="forbidden")
    try:
        items = desk.officer_candidates(uow, who, request_locale(request))
    except DomainError as exc:
        return _error(request, who, exc)
    return page(request, who, "limit_desk/candidates.html", items=items, done=DONE.get(done, ""),
                can_recommend=who.can(Permission.RECOMMEND))


@router.get("/limit-desk/approvals", response_class=HTMLResponse)
def approvals(request: Request, uow: UnitOfWorkDep, done: str = "") -> Response:
    """The approver's queue: every pending change, recommended ones first."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    if not who.can(Permission.MANAGE_CREDIT_LINES):
        return page(request, who, "error.html", status_code=403, message="forbidden")
    try:
        items = desk.approver_queue(uow, who, request_locale(request))
    except DomainError as exc:
        return _error(request, who, exc)
    return page(request, who, "limit_desk/approvals.html", items=items, done=DONE.get(done, ""))


@router.get("/limit-desk/cases/{change_id}", response_class=HTMLResponse)
def case_page(request: Request, uow: UnitOfWorkDep, change_id: Id, done: str = "", error: str = "") -> Response:
    """One case: the line, its history, the behaviour score's factors, proposed against current limit and
    the officer's note; the approver's decision form."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        found = desk.case(uow, who, change_id, request_locale(request))
    except DomainError as exc:
        return _error(request, who, exc)
    return page(request, who, "limit_desk/case.html", case=found, c=found.candidate, done=DONE.get(done, ""),
                can_recommend=who.can(Permission.RECOMMEND) and found.candidate.change.status == "pending",
                can_decide=found.candidate.can_decide, is_approver=who.can(Permission.MANAGE_CREDIT_LINES))


@router.post("/limit-desk/cases/{change_id}/recommend", response_class=HTMLResponse)
def recommend(request: Request, uow: UnitOfWorkDep, change_id: Id, recommendation: Annotated[str, Form()],
              note: Annotated[str, Form()] = "", back: Annotated[str, Form()] = "case") -> Response:
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        desk.recommend(uow, who, change_id, recommendation, note)
    except DomainError as exc:
        return _error(request, who, exc)
    target = "/limit-desk/candidates" if back == "list" else f"/limit-desk/cases/{change_id}"
    return RedirectResponse(f"{target}?done=recommended", status_code=303)


@router.post("/limit-desk/cases/{change_id}/decide", response_class=HTMLResponse)
def decide(request: Request, uow: UnitOfWorkDep, change_id: Id, decision: Annotated[str, Form()],
           note: Annotated[str, Form()] = "") -> Response:
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    if decision not in ("approve", "reject"):
        return page(request, who, "error.html", status_code=422, message=_t(request, "Choose approve or reject"))
    try:
        desk.decide(uow, who, change_id, decision == "approve", note.strip())
    except DomainError as exc:
        return _error(request, who, exc)
    done = "approved" if decision == "approve" else "rejected"
    return RedirectResponse(f"/limit-desk/approvals?done={done}", status_code=303)
