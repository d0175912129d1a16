"""Staff pages: sign-in, language switch, customers. Server-rendered with htmx for partial updates."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from microlend.api.deps import SESSION_COOKIE, Id, Page, SettingsDep, UnitOfWorkDep
from microlend.core import jobs, logformat, sessions, tenancy
from microlend.core.errors import AuthenticationFailed, DomainError
from microlend.core.identity import Permission, Principal, Role
from microlend.core.settings import Settings
from microlend.parties import customers as customer_svc
from microlend.web import access, i18n
from microlend.web.templates import render

router = APIRouter(include_in_schema=False)

#: The navigation: (path, label msgid, permission needed). Modules append their pages here.
NAV: list[tuple[str, str, Permission]] = [
    ("/customers", "Customers", Permission.VIEW_CUSTOMERS),
    ("/audit", "Audit trail", Permission.VIEW_AUDIT),
]


def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


def current_principal(request: Request, uow: UnitOfWorkDep) -> Principal | None:
    """The user of the request's web session, or None (no cookie, or the session has ended)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        who = sessions.resolve(uow, token, request.app.state.settings)
    except AuthenticationFailed:
        return None
    logformat.identify(who.tenant_id, who.user_id)  # the page's own log lines carry the bank and user
    with uow:
        request.state.bank_tz = jobs.bank_timezone(uow.session, who.tenant_id)  # times on its pages
    return who


def sign_in(request: Request, response: Response, uow: UnitOfWorkDep, who: Principal, settings: Settings) -> Response:
    """Start a web session for `who` on `response`; a session the browser held before ends (a fresh id at
    every sign-in)."""
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:
        sessions.end(uow, previous)
    response.set_cookie(SESSION_COOKIE, sessions.start(uow, who, settings), httponly=True, samesite="strict",
                        secure=settings.mode == "production", max_age=settings.session_lifetime_minutes * 60)
    return response


def login_redirect(request: Request) -> RedirectResponse:
    nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(nxt)}", status_code=303)


def navigation() -> list[tuple[str, str, Permission]]:
    """The menu: this module's entries, then every page module's, in the order of `WEB_PAGES`."""
    import importlib

    from microlend.bootstrap import WEB_PAGES

    items: list[tuple[str, str, Permission]] = []
    for module in WEB_PAGES:
        items.extend(getattr(importlib.import_module(module), "NAV", []))
    return items


def page(request: Request, who: Principal, template: str, status_code: int = 200, **ctx: object) -> HTMLResponse:
    """Render a staff page inside the layout, with the menu the caller's roles allow. A refusal (the error
    page with 403) becomes the refusal page: what was tried, which roles may, and a way back."""
    menu = navigation()
    # a page open to several permissions is listed once per permission: the caller sees it once
    nav = list({path: (path, label) for path, label, perm in menu if who.can(perm)}.values())
    if template == "error.html" and status_code == 403:
        return render(request, "forbidden.html", status_code=403, who=who, nav=nav,
                      refusal=access.refusal(request, who, menu, ctx.get("message")),
                      role_labels=access.ROLE_LABELS, permission_labels=access.PERMISSION_LABELS)
    return render(request, template, status_code=status_code, who=who, nav=nav, **ctx)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, uow: UnitOfWorkDep) -> Response:
    who = current_principal(request, uow)
    if who is None:
        return RedirectResponse("/login", status_code=303)
    if who.has_role(Role.BORROWER) and who.customer_id is not None:
        return RedirectResponse("/b", status_code=303)
    return RedirectResponse("/home", status_code=303)  # staff start on their own work (web/home.py)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", next=_safe_next(next), error=None, username="")


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request, uow: UnitOfWorkDep, settings: SettingsDep,
    username: Annotated[str, Form()], password: Annotated[str, Form()], next: Annotated[str, Form()] = "/",
) -> Response:
    try:
        who = tenancy.authenticate(uow, username, password, settings,
                                  client=request.client.host if request.client else None)
    except DomainError as exc:
        return render(request, "login.html", status_code=exc.status_code, next=_safe_next(next),
                      error=exc.message, username=username)
    return sign_in(request, RedirectResponse(_safe_next(next), status_code=303), uow, who, settings)


@router.post("/logout")
def logout(request: Request, uow: UnitOfWorkDep, settings: SettingsDep) -> Response:
    """Sign out: the session ends on the server, so a copy of the cookie is worth nothing afterwards."""
    sessions.end(uow, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict", secure=settings.mode == "production")
    return response


@router.get("/lang/{code}")
def switch_language(code: str, next: str = "/") -> Response:
    response = RedirectResponse(_safe_next(next), status_code=303)
    if code in i18n.LOCALES:
        response.set_cookie(i18n.LANG_COOKIE, code, max_age=365 * 24 * 3600, samesite="lax")
    return response


@router.get("/customers", response_class=HTMLResponse)
def customers(request: Request, uow: UnitOfWorkDep, q: str = "", page_no: Page = 1) -> Response:
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        result = customer_svc.list_customers(uow, who, page=max(page_no, 1), page_size=20, q=q[:100])
    except DomainError as exc:
        return page(request, who, "error.html", status_code=exc.status_code, message=exc.message)
    template = "customers_rows.html" if request.headers.get("HX-Request") else "customers.html"
    return page(request, who, template, result=result, q=q)


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer_detail(request: Request, uow: UnitOfWorkDep, customer_id: Id) -> Response:
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        customer = customer_svc.get_customer(uow, who, customer_id)
    except DomainError as exc:
        return page(request, who, "error.html", status_code=exc.status_code, message=exc.message)
    return page(request, who, "customer.html", customer=customer,
                can_reveal=who.can(Permission.VIEW_PERSONAL_DATA))


@router.get("/customers/{customer_id}/reveal", response_class=HTMLResponse)
def customer_reveal(request: Request, uow: UnitOfWorkDep, customer_id: Id) -> Response:
    """An htmx fragment with the unmasked ID number and phone; every call is audited."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        customer = customer_svc.get_customer(uow, who, customer_id, reveal=True)
    except DomainError as exc:
        return HTMLResponse(f'<p class="error">{exc.message}</p>', status_code=exc.status_code)
    return page(request, who, "customer_identity.html", customer=customer)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, uow: UnitOfWorkDep) -> Response:
    from microlend.core import audit

    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    if not who.can(Permission.VIEW_AUDIT):
        return page(request, who, "error.html", status_code=403, message="forbidden")
    with uow.read_only(streamed=True):  # one snapshot: the records shown and the chain's check agree
        rows = audit.read(uow.session, who, limit=200)
        chain = audit.chain_status(uow.session, who.tenant_id)
    return page(request, who, "audit.html", rows=rows, chain=chain)


@router.post("/audit/check", response_class=HTMLResponse)
def audit_check(request: Request, uow: UnitOfWorkDep) -> Response:
    """Verify the chain now, on from where its stored check stopped, and store the outcome."""
    from microlend.core import audit

    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    if not who.can(Permission.VIEW_AUDIT):
        return page(request, who, "error.html", status_code=403, message="forbidden")
    audit.check_chain(uow, who)
    return RedirectResponse("/audit", status_code=303)
