"""The bank's reason-code catalogue page (原因码目录): every code with what a borrower and staff are told in
both languages and the parameters its texts take; an analyst adds or edits a code (audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from microlend.api.deps import UnitOfWorkDep
from microlend.core.errors import DomainError, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.decisioning import service as svc
from microlend.web.pages import current_principal, login_redirect, page

router = APIRouter(include_in_schema=False)

NAV: list[tuple[str, str, Permission]] = []


def _who(request: Request, uow: UnitOfWorkDep, permission: Permission) -> Principal | Response:
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    if not who.can(permission):
        return page(request, who, "error.html", status_code=403, message="forbidden")
    return who


def parse_params(text: str) -> dict[str, str]:
    """`name = input.field` lines (blank lines ignored)."""
    params: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, field = line.partition("=")
        if not sep or not name.strip() or not field.strip():
            raise ValidationError(f"params: '{line.strip()}' is not name = input.field", field="params")
        params[name.strip()] = field.strip()
    return params


@router.get("/reason-codes", response_class=HTMLResponse)
def reason_codes(request: Request, uow: UnitOfWorkDep, done: str = "") -> Response:
    who = _who(request, uow, Permission.VIEW_POLICIES)
    if not isinstance(who, Principal):
        return who
    return page(request, who, "policies/reason_codes.html", codes=svc.list_reason_codes(uow, who),
                can_edit=who.can(Permission.EDIT_POLICIES), done=done)


@router.get("/reason-codes/new", response_class=HTMLResponse)
def new_code(request: Request, uow: UnitOfWorkDep) -> Response:
    who = _who(request, uow, Permission.EDIT_POLICIES)
    if not isinstance(who, Principal):
        return who
    return page(request, who, "policies/reason_code.html", code=None, form={}, new=True)


@router.get("/reason-codes/{code}", response_class=HTMLResponse)
def edit_code(request: Request, uow: UnitOfWorkDep, code: str) -> Response:
    who = _who(request, uow, Permission.VIEW_POLICIES)
    if not isinstance(who, Principal):
        return who
    try:
        found = svc.get_reason_code(uow, who, code)
    except DomainError as exc:
        return page(request, who, "error.html", status_code=exc.status_code, message=exc.message)
    form = {**found.as_dict(), "params": "\n".join(f"{n} = {f}" for n, f in found.params)}
    return page(request, who, "policies/reason_code.html", code=found, form=form, new=False,
                can_edit=who.can(Permission.EDIT_POLICIES))


@router.post("/reason-codes", response_class=HTMLResponse)
def save_code(request: Request, uow: UnitOfWorkDep, code: Annotated[str, Form()] = "",
              borrower_zh: Annotated[str, Form()] = "", borrower_en: Annotated[str, Form()] = "",
              staff_zh: Annotated[str, Form()] = "", staff_en: Annotated[str, Form()] = "",
              tellable: Annotated[str, Form()] = "", params: Annotated[str, Form()] = "",
              new: Annotated[str, Form()] = "") -> Response:
    """Add or change a code; a bad entry is shown again with the reason (422), nothing is written."""
    who = _who(request, uow, Permission.EDIT_POLICIES)
    if not isinstance(who, Principal):
        return who
    form = {"code": code, "borrower_zh": borrower_zh, "borrower_en": borrower_en, "staff_zh": staff_zh,
            "staff_en": staff_en, "tellable": bool(tellable), "params": params}
    try:
        saved = svc.save_reason_code(uow, who, code, borrower_zh=borrower_zh, borrower_en=borrower_en,
                                     staff_zh=staff_zh, staff_en=staff_en, tellable=bool(tellable),
                                     params=parse_params(params), create=bool(new))
    except DomainError as exc:
        return page(request, who, "policies/reason_code.html", status_code=exc.status_code, code=None, form=form,
                    new=bool(new), error=exc.message, can_edit=True)
    return RedirectResponse(f"/reason-codes?done={saved.code}", status_code=303)
