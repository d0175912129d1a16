"""An officer assisting a borrower in the field (外拓): the bank texts the borrower a one-time code, the
borrower reads it out, and the officer enters it — the borrower signs the loan contract without being
signed in, and it is the borrower's phone, not the officer, that proves it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from microlend.api.deps import Id, UnitOfWorkDep, request_evidence
from microlend.api.security import report_page
from microlend.core.errors import DomainError
from microlend.core.identity import Permission
from microlend.origination import acceptance
from microlend.origination import service as applications
from microlend.origination.contracts import printable
from microlend.parties import consents
from microlend.web.pages import current_principal, login_redirect, page
from microlend.web.templates import request_locale
from microlend.web.workbench import _detail, _error, customer_page, translate

router = APIRouter(include_in_schema=False)
NAV: list[tuple[str, str, Permission]] = []


@router.post("/applications/{application_id}/signing-code", response_class=HTMLResponse)
def send_signing_code(request: Request, uow: UnitOfWorkDep, application_id: Id) -> Response:
    """Text the borrower the code that signs this application's contract; the panel then asks for it."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    htmx = bool(request.headers.get("HX-Request"))
    try:
        sent = acceptance.request_signing_code(uow, who, application_id, request_locale(request))
    except DomainError as exc:
        try:
            return _detail(request, uow, who, application_id, error=translate(request, exc.message), fragment=htmx,
                           status_code=200 if htmx else exc.status_code)
        except DomainError as again:
            return _error(request, who, again)
    return _detail(request, uow, who, application_id, message=translate(request, "Code sent"), fragment=htmx,
                   code_sent=sent)


@router.post("/applications/{application_id}/accept", response_class=HTMLResponse)
def accept_with_code(request: Request, uow: UnitOfWorkDep, application_id: Id, code: Annotated[str, Form()] = "",
                     challenge_id: Annotated[str, Form()] = "") -> Response:
    """The officer enters the code the borrower read out: the borrower signs, and a small loan is paid out."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    htmx = bool(request.headers.get("HX-Request"))
    try:
        applications.ensure_staff(who)
        acceptance.accept(uow, who, application_id, locale=request_locale(request),
                          evidence=request_evidence(request), code=code.strip()[:12],
                          challenge_id=_challenge(challenge_id))
    except DomainError as exc:
        try:
            return _detail(request, uow, who, application_id, error=translate(request, exc.message), fragment=htmx,
                           status_code=200 if htmx else exc.status_code)
        except DomainError as again:
            return _error(request, who, again)
    if not htmx:
        return RedirectResponse(f"/applications/{application_id}", status_code=303)
    return _detail(request, uow, who, application_id, message=translate(request, "Contract signed"), fragment=True)


@router.get("/applications/{application_id}/contract", response_class=HTMLResponse)
def contract_page(request: Request, uow: UnitOfWorkDep, application_id: Id) -> Response:
    """The application's loan contract, printable: the draft while the offer is open, then the signed one."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        applications.ensure_staff(who)
        view = acceptance.contract(uow, who, application_id, request_locale(request))
    except DomainError as exc:
        return page(request, who, "error.html", status_code=exc.status_code, message=translate(request, exc.message))
    return report_page(printable(view.document, view.locale, v=view, borrower=view.borrower))


def _challenge(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) <= 9 else None


@router.post("/customers/{customer_id}/consent-code", response_class=HTMLResponse)
def send_consent_code(request: Request, uow: UnitOfWorkDep, customer_id: Id,
                      scope: Annotated[str, Form()]) -> Response:
    """Text the borrower the code that gives the consent `scope` (the current text, in the reader's language)."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        applications.ensure_staff(who)
        sent = consents.request_code(uow, who, customer_id, scope[:40], locale=request_locale(request))
        return customer_page(request, uow, who, customer_id, code_sent=sent, message=translate(request, "Code sent"))
    except DomainError as exc:
        return _refused_on_customer(request, uow, customer_id, exc)


@router.post("/customers/{customer_id}/consents", response_class=HTMLResponse)
def give_consent(request: Request, uow: UnitOfWorkDep, customer_id: Id, scope: Annotated[str, Form()],
                 code: Annotated[str, Form()] = "", challenge_id: Annotated[str, Form()] = "") -> Response:
    """The officer enters the code the borrower read out: the consent is the borrower's, with the evidence."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        applications.ensure_staff(who)
        consents.give_consent(uow, who, customer_id, scope[:40], locale=request_locale(request),
                              evidence=request_evidence(request), code=code.strip()[:12],
                              challenge_id=_challenge(challenge_id))
    except DomainError as exc:  # a wrong code: the form stays, to try again
        return _refused_on_customer(request, uow, customer_id, exc, retry_scope=scope[:40],
                                    retry_challenge=challenge_id[:9])
    return RedirectResponse(f"/customers/{customer_id}/360", status_code=303)


def _refused_on_customer(request: Request, uow: UnitOfWorkDep, customer_id: int, exc: DomainError,
                         **retry: str) -> Response:
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        return customer_page(request, uow, who, customer_id, status_code=exc.status_code,
                             error=translate(request, exc.message), **retry)
    except DomainError as again:
        return _error(request, who, again)
