"""Borrower pages (借款人自助, under /b/): register, sign in, apply with consent, see the decision and the
offer with its APR and schedule, accept, see the loan and repay. A borrower only ever sees their own data."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from microlend.api.deps import Id, SettingsDep, UnitOfWorkDep, request_evidence
from microlend.api.security import report_page
from microlend.core import tenancy
from microlend.core.errors import DomainError, ValidationError
from microlend.core.identity import Permission, Principal, Role
from microlend.core.money import parse_amount
from microlend.origination import acceptance, borrowers
from microlend.origination import service as applications
from microlend.origination.contracts import printable
from microlend.parties import consent_texts, consents
from microlend.web import labels
from microlend.web.pages import current_principal, login_redirect, sign_in
from microlend.web.templates import render, request_locale
from microlend.web.workbench import translate

router = APIRouter(include_in_schema=False)

#: Borrowers have their own menu inside these pages; nothing is added to the staff menu.
NAV: list[tuple[str, str, Permission]] = []

#: Sensible defaults so the path from the first page to a decision takes a minute or two.
DEFAULT_PRODUCT, DEFAULT_AMOUNT, DEFAULT_TERM = "EI-STD", "30000", 12
DEFAULT_PURPOSE = {"zh_CN": "进货", "en": "stock"}


def _page(request: Request, who: Principal | None, template: str, status_code: int = 200,
          **ctx: object) -> HTMLResponse:
    nav = [("/b/home", "My loans"), ("/b/apply", "Apply")] if who is not None else []
    return render(request, template, status_code=status_code, who=who, nav=nav, **ctx)


def _borrower(request: Request, uow: UnitOfWorkDep) -> Principal | None:
    who = current_principal(request, uow)
    return who if who is not None and who.has_role(Role.BORROWER) and who.customer_id is not None else None


def _not_borrower(request: Request, uow: UnitOfWorkDep) -> Response:
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    return _page(request, None, "error.html", status_code=403,
                 message=translate(request, "these pages are for borrowers"))


# ------------------------------------------------------------------------------------------ register, sign in


@router.get("/b/{bank}/register", response_class=HTMLResponse)
def register_form(request: Request, bank: str) -> HTMLResponse:
    return _page(request, None, "borrower/register.html", bank=bank, form={}, error=None, field=None)


@router.post("/b/{bank}/register", response_class=HTMLResponse)
def register(
    request: Request, uow: UnitOfWorkDep, settings: SettingsDep, bank: str,
    name: Annotated[str, Form()], id_number: Annotated[str, Form()], mobile: Annotated[str, Form()],
    password: Annotated[str, Form()], kind: Annotated[str, Form()] = "person",
    industry: Annotated[str, Form()] = "", annual_turnover: Annotated[str, Form()] = "",
    years_in_business: Annotated[str, Form()] = "", owner_id_number: Annotated[str, Form()] = "",
) -> Response:
    form = {"name": name, "id_number": id_number, "mobile": mobile, "kind": kind, "industry": industry,
            "annual_turnover": annual_turnover, "years_in_business": years_in_business,
            "owner_id_number": owner_id_number}
    try:
        reg = borrowers.register(uow, borrowers.Registration(
            bank=bank, kind=kind, name=name, id_number=id_number.strip().upper(), mobile=mobile, password=password,
            industry=industry,
            annual_turnover=parse_amount(annual_turnover, "annual_turnover") if annual_turnover.strip() else None,
            years_in_business=parse_amount(years_in_business, "years_in_business")
            if years_in_business.strip() else None, owner_id_number=owner_id_number))
    except DomainError as exc:
        return _page(request, None, "borrower/register.html", status_code=exc.status_code, bank=bank, form=form,
                     error=_explain(request, exc), field=exc.field)
    return sign_in(request, RedirectResponse("/b/apply", status_code=303), uow, reg.principal, settings)


def _explain(request: Request, exc: DomainError) -> str:
    """What went wrong, in the borrower's language, naming the field as the form does (never its code)."""
    return labels.error_message(exc.message, exc.field, request_locale(request))


@router.get("/b/{bank}/login", response_class=HTMLResponse)
def login_form(request: Request, bank: str) -> HTMLResponse:
    return _page(request, None, "borrower/login.html", bank=bank, mobile="", error=None)


@router.post("/b/{bank}/login", response_class=HTMLResponse)
def login(request: Request, uow: UnitOfWorkDep, settings: SettingsDep, bank: str,
          mobile: Annotated[str, Form()], password: Annotated[str, Form()]) -> Response:
    """Borrowers sign in with their mobile; the session cookie is the same as the staff pages'."""
    try:
        who = tenancy.authenticate(uow, borrowers.borrower_username(mobile.strip(), bank), password, settings,
                                  client=request.client.host if request.client else None)
    except DomainError as exc:
        return _page(request, None, "borrower/login.html", status_code=exc.status_code, bank=bank, mobile=mobile,
                     error=_explain(request, exc))
    return sign_in(request, RedirectResponse("/b", status_code=303), uow, who, settings)


# ------------------------------------------------------------------------------------------ home, apply


def landing(request: Request, uow: UnitOfWorkDep) -> HTMLResponse:
    """The borrowers' front door (/b/): open an account or sign in at the bank — the one bank of the platform,
    or the bank the borrower chooses when there are several."""
    banks = tenancy.list_tenants(uow)
    return _page(request, None, "borrower/landing.html", banks=banks)


@router.get("/b", response_class=HTMLResponse)
@router.get("/b/home", response_class=HTMLResponse)
def home(request: Request, uow: UnitOfWorkDep) -> Response:
    who = _borrower(request, uow)
    if who is None:
        if current_principal(request, uow) is None:
            return landing(request, uow)
        return _not_borrower(request, uow)
    try:
        apps = applications.list_applications(uow, who, page_size=20, locale=request_locale(request)).items
        loans = borrowers.my_loans(uow, who)
        assert who.customer_id is not None
        newest_first = [c for c in consents.list_consents(uow, who, who.customer_id) if c.active]
        given = list({c.scope: c for c in reversed(newest_first)}.values())  # the latest of each scope
    except DomainError as exc:
        return _page(request, who, "error.html", status_code=exc.status_code, message=_explain(request, exc))
    return _page(request, who, "borrower/home.html", apps=apps, loans=loans, consents=given,
                 texts={t.version: t for t in consent_texts.catalogue()})


@router.post("/b/consents/{scope}/revoke", response_class=HTMLResponse)
def revoke_consent(request: Request, uow: UnitOfWorkDep, scope: str) -> Response:
    """撤回授权: the borrower withdraws a consent; it no longer counts for any decision."""
    who = _borrower(request, uow)
    if who is None:
        return _not_borrower(request, uow)
    try:
        assert who.customer_id is not None
        consents.revoke_consent(uow, who, who.customer_id, scope[:40], evidence=request_evidence(request))
    except DomainError as exc:
        return _page(request, who, "error.html", status_code=exc.status_code, message=_explain(request, exc))
    return RedirectResponse("/b", status_code=303)


def _apply_page(request: Request, uow: UnitOfWorkDep, who: Principal, status_code: int = 200,
                error: str | None = None, form: dict[str, str] | None = None,
                consents: tuple[tuple[str, ...], list[str]] | None = None) -> HTMLResponse:
    """The application form; `consents` are the ones `_apply_consents` already read for a refused post."""
    products = borrowers.products_on_offer(uow, who)
    form = form or {"product_code": DEFAULT_PRODUCT, "amount": DEFAULT_AMOUNT, "term_months": str(DEFAULT_TERM),
                    "purpose": DEFAULT_PURPOSE.get(request_locale(request), "")}
    asked, partners = consents or _apply_consents(uow, who)
    return _page(request, who, "borrower/apply.html", status_code=status_code, products=products, form=form,
                 error=error, consent_texts=[consent_texts.current(scope) for scope in asked], partners=partners)


#: What a borrower authorises when applying: the credit report (required) and the external business data
#: (tax, e-invoices, merchant flows), without which a data-based product cannot be decided; and, when the bank
#: scores with a data partner, scoring with that partner (without it the bank's own model decides alone).
APPLY_CONSENTS = ("credit_report", "external_data")
PARTNER_SCORING = "partner_scoring"


def _apply_consents(uow: UnitOfWorkDep, who: Principal) -> tuple[tuple[str, ...], list[str]]:
    """The consents this borrower's application asks for, and the data partners it names."""
    partners = borrowers.scoring_partners_on_offer(uow, who)
    return ((*APPLY_CONSENTS, PARTNER_SCORING) if partners else APPLY_CONSENTS), partners


@router.get("/b/apply", response_class=HTMLResponse)
def apply_form(request: Request, uow: UnitOfWorkDep) -> Response:
    who = _borrower(request, uow)
    if who is None:
        return _not_borrower(request, uow)
    return _apply_page(request, uow, who)


def _campaign_cookie(request: Request) -> int | None:
    """The campaign whose tracked link brought the borrower here (set by /t/{token}), for attribution."""
    value = request.cookies.get("ml_campaign", "")
    return int(value) if value.isdigit() and len(value) <= 9 else None


@router.post("/b/apply", response_class=HTMLResponse)
def apply(
    request: Request, uow: UnitOfWorkDep, product_code: Annotated[str, Form()], amount: Annotated[str, Form()],
    term_months: Annotated[str, Form()], purpose: Annotated[str, Form()] = "",
    consent: Annotated[list[str] | None, Form()] = None,
) -> Response:
    who = _borrower(request, uow)
    if who is None:
        return _not_borrower(request, uow)
    form = {"product_code": product_code, "amount": amount, "term_months": term_months, "purpose": purpose}
    consents = _apply_consents(uow, who)
    asked = consents[0]
    given = tuple(sorted(set(consent or ()) & set(asked)))
    try:
        if "credit_report" not in given:
            raise ValidationError("consent: please authorise the credit report query (授权查询征信) to apply",
                                  field="consent")
        if not term_months.strip().isdigit():
            raise ValidationError("term_months: choose a term in months", field="term_months")
        assert who.customer_id is not None
        app = applications.submit(uow, who, applications.NewApplication(
            customer_id=who.customer_id, product_code=product_code, amount=parse_amount(amount, "amount"),
            term_months=int(term_months), purpose=purpose, consents=given, channel="borrower",
            campaign_id=_campaign_cookie(request), locale=request_locale(request),
            evidence=request_evidence(request)))
    except DomainError as exc:
        return _apply_page(request, uow, who, exc.status_code, _explain(request, exc), form, consents)
    return RedirectResponse(f"/b/applications/{app.id}", status_code=303)


# ------------------------------------------------------------------------------------------ decision, offer


@router.get("/b/applications/{application_id}", response_class=HTMLResponse)
def application(request: Request, uow: UnitOfWorkDep, application_id: Id) -> Response:
    who = _borrower(request, uow)
    if who is None:
        return _not_borrower(request, uow)
    try:
        app = applications.get(uow, who, application_id, request_locale(request))
        preview = applications.schedule_preview(uow, who, application_id) if app.status == "approved" else None
        contract = (acceptance.contract(uow, who, application_id, request_locale(request))
                    if app.status == "approved" and app.offer else None)
    except DomainError as exc:
        return _page(request, who, "error.html", status_code=exc.status_code, message=_explain(request, exc))
    told = [r["message"] for r in app.reasons if r["tellable"]][:3]
    return _page(request, who, "borrower/application.html", app=app, preview=preview, reasons=told,
                 contract=contract, error=request.query_params.get("error"))


@router.get("/b/applications/{application_id}/contract", response_class=HTMLResponse)
def contract_page(request: Request, uow: UnitOfWorkDep, application_id: Id) -> Response:
    """借款合同: the draft to read before accepting, or the signed contract, printable."""
    who = _borrower(request, uow)
    if who is None:
        return _not_borrower(request, uow)
    try:
        view = acceptance.contract(uow, who, application_id, request_locale(request))
    except DomainError as exc:
        return _page(request, who, "error.html", status_code=exc.status_code, message=_explain(request, exc))
    return report_page(printable(view.document, view.locale, v=view, borrower=view.borrower))


@router.post("/b/applications/{application_id}/accept", response_class=HTMLResponse)
def accept(request: Request, uow: UnitOfWorkDep, application_id: Id, agree: Annotated[str, Form()] = "",
           contract_sha256: Annotated[str, Form()] = "") -> Response:
    """The borrower signs the contract they read, in their own session (the hash of what they read is sent)."""
    who = _borrower(request, uow)
    if who is None:
        return _not_borrower(request, uow)
    try:
        if agree != "yes":
            raise ValidationError("agree: read the loan contract and tick that you agree to sign it", field="agree")
        app = acceptance.accept(uow, who, application_id, locale=request_locale(request),
                                evidence=request_evidence(request), shown_sha256=contract_sha256[:64])
    except DomainError as exc:
        return _page(request, who, "error.html", status_code=exc.status_code, message=_explain(request, exc))
    target = f"/b/loans/{app.loan_id}" if app.loan_id else f"/b/applications/{application_id}"
    return RedirectResponse(target, status_code=303)


# ------------------------------------------------------------------------------------------ loan, repay


def _loan_page(request: Request, uow: UnitOfWorkDep, who: Principal, loan_id: int, *, status_code: int = 200,
               message: str | None = None, error: str | None = None) -> HTMLResponse:
    loan = borrowers.my_loan(uow, who, loan_id)
    due = next((i for i in loan.installments if i.outstanding > 0), None)
    return _page(request, who, "borrower/loan.html", status_code=status_code, loan=loan, due=due,
                 key=uuid.uuid4().hex, message=message, error=error,
                 balance=loan.outstanding_principal + loan.interest_receivable - loan.interest_paid_ahead
                 + loan.penalty_due)


@router.get("/b/loans/{loan_id}", response_class=HTMLResponse)
def loan(request: Request, uow: UnitOfWorkDep, loan_id: Id, paid: str = "") -> Response:
    who = _borrower(request, uow)
    if who is None:
        return _not_borrower(request, uow)
    try:
        return _loan_page(request, uow, who, loan_id, message=paid or None)
    except DomainError as exc:
        return _page(request, who, "error.html", status_code=exc.status_code, message=_explain(request, exc))


@router.post("/b/loans/{loan_id}/repay", response_class=HTMLResponse)
def repay(request: Request, uow: UnitOfWorkDep, loan_id: Id, amount: Annotated[str, Form()],
          key: Annotated[str, Form()]) -> Response:
    """还款; the key was generated when the form was shown, so pressing twice pays once."""
    who = _borrower(request, uow)
    if who is None:
        return _not_borrower(request, uow)
    try:
        paid = borrowers.repay(uow, who, loan_id, amount, key[:64])
    except DomainError as exc:
        try:
            return _loan_page(request, uow, who, loan_id, status_code=exc.status_code,
                              error=_explain(request, exc))
        except DomainError as again:
            return _page(request, who, "error.html", status_code=again.status_code, message=again.message)
    return RedirectResponse(f"/b/loans/{loan_id}?paid={paid.amount:.2f}", status_code=303)


