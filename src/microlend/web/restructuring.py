"""Extension and restructuring on the staff loan page (展期/重组): an officer asks for new terms; a second person
with the authority approves or rejects the request waiting on the loan (四眼)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from microlend.api.deps import Id, UnitOfWorkDep
from microlend.core.errors import DomainError, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.money import parse_amount
from microlend.servicing import service
from microlend.servicing.restructuring import RestructureKind, RestructureTerms
from microlend.web.pages import page
from microlend.web.reports import _who, translate

router = APIRouter(include_in_schema=False)

#: no menu entry: the requests live on the loan page
NAV: list[tuple[str, str, Permission]] = []


def _failed(request: Request, who: Principal, exc: DomainError) -> HTMLResponse:
    return page(request, who, "error.html", status_code=exc.status_code, message=translate(request, exc.message))


def _terms(kind: str, term_months: str, annual_rate: str, capitalise_arrears: str) -> RestructureTerms:
    if kind not in {k.value for k in RestructureKind}:
        raise ValidationError("kind: extension or restructure", field="kind")
    if not term_months.strip().isdigit():
        raise ValidationError("term_months: a whole number of months", field="term_months")
    rate = parse_amount(annual_rate.strip(), "annual_rate") / 100 if annual_rate.strip() else None
    return RestructureTerms(RestructureKind(kind), int(term_months.strip()[:4]), rate, capitalise_arrears == "yes")


@router.post("/loans/{loan_id}/restructure", response_class=HTMLResponse)
def request_restructure(
    request: Request, uow: UnitOfWorkDep, loan_id: Id, kind: Annotated[str, Form(max_length=20)],
    term_months: Annotated[str, Form(max_length=6)], reason: Annotated[str, Form(max_length=500)] = "",
    annual_rate: Annotated[str, Form(max_length=12)] = "", capitalise_arrears: Annotated[str, Form(max_length=3)] = "",
) -> Response:
    """An officer asks for an extension or a restructuring (the new rate in percent, e.g. 8.5)."""
    who = _who(request, uow, Permission.RESTRUCTURE_LOANS)
    if not isinstance(who, Principal):
        return who
    try:
        service.request_restructure(uow, who, loan_id, _terms(kind, term_months, annual_rate, capitalise_arrears),
                                    reason)
    except DomainError as exc:
        return _failed(request, who, exc)
    return RedirectResponse(f"/loans/{loan_id}", status_code=303)


@router.post("/loans/{loan_id}/restructures/{restructure_id}/approve", response_class=HTMLResponse)
def approve(request: Request, uow: UnitOfWorkDep, loan_id: Id, restructure_id: Id) -> Response:
    who = _who(request, uow, Permission.APPROVE_RESTRUCTURE)
    if not isinstance(who, Principal):
        return who
    try:
        service.approve_restructure(uow, who, restructure_id)
    except DomainError as exc:
        return _failed(request, who, exc)
    return RedirectResponse(f"/loans/{loan_id}", status_code=303)


@router.post("/loans/{loan_id}/restructures/{restructure_id}/reject", response_class=HTMLResponse)
def reject(request: Request, uow: UnitOfWorkDep, loan_id: Id, restructure_id: Id,
           reason: Annotated[str, Form(max_length=500)] = "") -> Response:
    who = _who(request, uow, Permission.APPROVE_RESTRUCTURE)
    if not isinstance(who, Principal):
        return who
    try:
        service.reject_restructure(uow, who, restructure_id, reason)
    except DomainError as exc:
        return _failed(request, who, exc)
    return RedirectResponse(f"/loans/{loan_id}", status_code=303)
