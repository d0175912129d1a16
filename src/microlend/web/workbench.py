"""The workbench (工作台) of loan officers and approvers: task queue, application review with model
assistance, approver queue, customer 360, branch portfolio, the staff loan page and the branch dashboard."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from microlend.api.deps import Id, Page, UnitOfWorkDep
from microlend.core.errors import DomainError, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.money import parse_amount
from microlend.data.profile import bar_chart_svg
from microlend.origination import assist, exposure, unit_cost
from microlend.origination import service as applications
from microlend.origination.applications import ApprovalAuthority
from microlend.parties import consent_texts, consents
from microlend.parties import queries as parties_q
from microlend.servicing import service as servicing
from microlend.web import charts, i18n
from microlend.web.pages import current_principal, login_redirect, page
from microlend.web.templates import request_locale

router = APIRouter(include_in_schema=False)

NAV: list[tuple[str, str, Permission]] = [
    ("/workbench/queue", "Task queue", Permission.RECOMMEND),
    ("/workbench/approvals", "Approvals", Permission.APPROVE_CREDIT),
    ("/workbench/portfolio", "Portfolio", Permission.VIEW_LOANS),
    ("/workbench/dashboard", "Dashboard", Permission.VIEW_APPLICATIONS),
]

CSS = "/static/workbench.css"


def _now() -> datetime:
    return datetime.now(UTC)


def translate(request: Request, message: str) -> str:
    """A service message in the reader's language when the catalogue has it (refusals such as four eyes)."""
    return str(i18n.translations(request_locale(request)).gettext(message))


def _error(request: Request, who: Principal, exc: DomainError) -> HTMLResponse:
    return page(request, who, "error.html", status_code=exc.status_code, message=exc.message)


def _forbidden(request: Request, who: Principal, permission: Permission) -> HTMLResponse | None:
    if who.can(permission):
        return None
    return page(request, who, "error.html", status_code=403, message="forbidden")


def _percent(value: str, field: str) -> Decimal:
    """A rate typed as a percentage ('8.5') -> 0.085."""
    try:
        rate = Decimal(value.strip().rstrip("%")) / 100
    except InvalidOperation:
        raise ValidationError(f"{field}: '{value}' is not a percentage", field=field) from None
    return rate.quantize(Decimal("0.000001"))


# ------------------------------------------------------------------------------------------ queues


@router.get("/workbench/queue", response_class=HTMLResponse)
def queue(request: Request, uow: UnitOfWorkDep, scope: str = "branch") -> Response:
    """客户经理任务 referred and recommended applications of the officer's branch, oldest first."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    if (refused := _forbidden(request, who, Permission.VIEW_APPLICATIONS)) is not None:
        return refused
    try:
        applications.ensure_staff(who)
        branch = assist.staff_branch(uow, who) if scope == "branch" else ""
        items = applications.list_applications(uow, who, status=["referred", "recommended"], branch=branch or None,
                                               with_unbranched=True,
                                               page_size=100, locale=request_locale(request)).items
    except DomainError as exc:
        return _error(request, who, exc)
    return page(request, who, "workbench/queue.html", items=items, branch=branch, scope=scope,
                title="Task queue", now=_now())


@router.get("/workbench/approvals", response_class=HTMLResponse)
def approvals(request: Request, uow: UnitOfWorkDep) -> Response:
    """审批队列 recommended applications waiting for an approver, and accepted offers waiting for release."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    if (refused := _forbidden(request, who, Permission.APPROVE_CREDIT)) is not None:
        return refused
    try:
        loc = request_locale(request)
        waiting = applications.list_applications(uow, who, status=["recommended"], page_size=100, locale=loc).items
        release = applications.list_applications(uow, who, status=["accepted"], page_size=100, locale=loc).items
    except DomainError as exc:
        return _error(request, who, exc)
    return page(request, who, "workbench/approvals.html", items=waiting, release=release, now=_now(),
                single_approval_limit=ApprovalAuthority().single_approval_limit)


# ------------------------------------------------------------------------------------------ application


def _detail(request: Request, uow: UnitOfWorkDep, who: Principal, application_id: int, *,
            message: str = "", error: str = "", status_code: int = 200, fragment: bool = False,
            **extra: Any) -> HTMLResponse:
    help_ = assist.model_assistance(uow, who, application_id, request_locale(request))
    app = help_.application
    suggested = app.recommended_amount or (min(app.amount, app.limit) if app.limit else app.amount)
    template = "workbench/_actions.html" if fragment else "workbench/application.html"
    cost = None if fragment else unit_cost.loan_cost(uow, who, application_id)
    return page(request, who, template, status_code=status_code, app=app, help=help_, message=message, cost=cost,
                error=error, now=_now(), fragment=fragment,
                can_recommend=who.can(Permission.RECOMMEND) and app.status in ("referred", "recommended"),
                can_approve=who.can(Permission.APPROVE_CREDIT) and app.status == "recommended",
                can_disburse=who.can(Permission.DISBURSE) and app.status == "accepted",
                can_assist=who.can(Permission.ASSIST_SIGNING) and app.status == "approved" and app.offer is not None,
                default_amount=f"{suggested:.2f}",
                default_rate=((app.recommended_rate or app.annual_rate or Decimal("0.0850")) * 100).quantize(
                    Decimal("0.01")), **extra)


@router.get("/applications/{application_id}", response_class=HTMLResponse)
def application_detail(request: Request, uow: UnitOfWorkDep, application_id: Id) -> Response:
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        return _detail(request, uow, who, application_id)
    except DomainError as exc:
        return _error(request, who, exc)


def _act(request: Request, uow: UnitOfWorkDep, who: Principal | None, application_id: int, action: str,
         run: Any) -> Response:
    """Run one review step; htmx gets the action panel back (with the refusal shown), a plain form a page."""
    if who is None:
        return login_redirect(request)
    htmx = bool(request.headers.get("HX-Request"))
    try:
        run(who)
    except DomainError as exc:
        try:
            return _detail(request, uow, who, application_id, error=_refusal(request, exc), fragment=htmx,
                           status_code=200 if htmx else exc.status_code)
        except DomainError as again:
            return _error(request, who, again)
    if not htmx:
        return RedirectResponse(f"/applications/{application_id}", status_code=303)
    return _detail(request, uow, who, application_id, message=translate(request, action), fragment=True)


def _refusal(request: Request, exc: DomainError) -> str:
    """A refusal in the reader's language; above the exposure available, with the amounts."""
    if isinstance(exc, exposure.AboveAvailable):
        text = translate(request, "Cannot approve %(amount)s: the exposure cap leaves %(available)s %(currency)s "
                                  "available to the borrower's group")
        loc = request_locale(request)
        return text % {"amount": i18n.amount(exc.amount, exc.currency, loc),
                       "available": i18n.amount(exc.available, exc.currency, loc),
                       "currency": exc.currency}
    return translate(request, exc.message)


@router.post("/applications/{application_id}/recommend", response_class=HTMLResponse)
def recommend(
    request: Request, uow: UnitOfWorkDep, application_id: int, recommendation: Annotated[str, Form()],
    amount: Annotated[str, Form()] = "", annual_rate: Annotated[str, Form()] = "", notes: Annotated[str, Form()] = "",
    premises: Annotated[str, Form()] = "", stock_matches: Annotated[str, Form()] = "",
    findings: Annotated[str, Form()] = "",
) -> Response:
    """An officer's recommendation with notes and field-visit findings (实地调查)."""
    def run(who: Principal) -> None:
        approve = recommendation == "approve"
        value = parse_amount(amount, "amount") if approve and amount.strip() else None
        rate = _percent(annual_rate, "annual_rate") if approve and annual_rate.strip() else None
        visit = {k: v for k, v in {"premises": premises, "stock_matches": stock_matches,
                                   "findings": findings.strip()[:1000]}.items() if v}
        applications.recommend(uow, who, application_id, recommendation, value, rate, notes.strip(), visit)

    return _act(request, uow, current_principal(request, uow), application_id, "Recommendation recorded", run)


@router.post("/applications/{application_id}/approve", response_class=HTMLResponse)
def approve(request: Request, uow: UnitOfWorkDep, application_id: Id) -> Response:
    return _act(request, uow, current_principal(request, uow), application_id, "Approved",
                lambda who: applications.approve(uow, who, application_id))


@router.post("/applications/{application_id}/decline", response_class=HTMLResponse)
def decline(request: Request, uow: UnitOfWorkDep, application_id: Id,
            notes: Annotated[str, Form()] = "") -> Response:
    return _act(request, uow, current_principal(request, uow), application_id, "Declined",
                lambda who: applications.decline(uow, who, application_id, notes.strip()))


@router.post("/applications/{application_id}/disburse", response_class=HTMLResponse)
def disburse(request: Request, uow: UnitOfWorkDep, application_id: Id) -> Response:
    return _act(request, uow, current_principal(request, uow), application_id, "Funds released",
                lambda who: applications.disburse(uow, who, application_id))


# ------------------------------------------------------------------------------------------ customers, loans


@router.get("/customers/{customer_id}/360", response_class=HTMLResponse)
def customer_360(request: Request, uow: UnitOfWorkDep, customer_id: Id) -> Response:
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        return customer_page(request, uow, who, customer_id)
    except DomainError as exc:
        return _error(request, who, exc)


def customer_page(request: Request, uow: UnitOfWorkDep, who: Principal, customer_id: int, *, status_code: int = 200,
                  **extra: Any) -> HTMLResponse:
    """客户全景 with the customer's consents (授权) and, for an officer in the field, the code to give one."""
    view = assist.customer_360(uow, who, customer_id, request_locale(request))
    charts = {"sales_svg": bar_chart_svg(view.profile.tax.months, translate(request, "Monthly declared sales"))
              if view.profile.tax else "",
              "flows_svg": bar_chart_svg(view.profile.flows.months, translate(request, "Monthly acquiring amount"),
                                         highlight_last=3) if view.profile.flows else ""}
    return page(request, who, "workbench/customer360.html", status_code=status_code, view=view, c=view.customer,
                profile=view.profile, **charts,
                consents=consents.list_consents(uow, who, customer_id), scopes=consent_texts.SCOPES,
                can_assist=who.can(Permission.ASSIST_SIGNING), **extra)


#: Loans on one page of the portfolio list.
PORTFOLIO_PAGE = 100


@router.get("/workbench/portfolio", response_class=HTMLResponse)
def portfolio(request: Request, uow: UnitOfWorkDep, scope: str = "branch", page_no: Page = 1) -> Response:
    """The branch's loans, overdue first, a page at a time; the active and overdue counts are the dashboard's."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        branch = assist.staff_branch(uow, who) if scope == "branch" else ""
        page_no = max(page_no, 1)
        lines = assist.branch_portfolio(uow, who, branch, limit=PORTFOLIO_PAGE + 1,
                                        offset=(page_no - 1) * PORTFOLIO_PAGE)
        active, overdue = assist.portfolio_figures(uow, who, branch)
    except DomainError as exc:
        return _error(request, who, exc)
    return page(request, who, "workbench/portfolio.html", lines=lines[:PORTFOLIO_PAGE], branch=branch, scope=scope,
                active=active, overdue=overdue, page_no=page_no, has_next=len(lines) > PORTFOLIO_PAGE)


def _loan(request: Request, uow: UnitOfWorkDep, who: Principal, loan_id: int, *, message: str = "",
          error: str = "", status_code: int = 200) -> HTMLResponse:
    try:
        applications.ensure_staff(who)
        loan = servicing.get_loan(uow, who, loan_id)
        transactions = servicing.loan_transactions(uow, who, loan_id)
        restructures = servicing.list_restructures(uow, who, loan_id=loan_id, status="pending") if (
            who.can(Permission.RESTRUCTURE_LOANS) or who.can(Permission.APPROVE_RESTRUCTURE)) else []
    except DomainError as exc:
        return _error(request, who, exc)
    rows = [(t, sum((line.debit for line in t.lines), Decimal(0))) for t in transactions]
    names = parties_q.customer_names(uow, who, [loan.customer_id]) if loan.customer_id is not None else {}
    return page(request, who, "workbench/loan.html", status_code=status_code, loan=loan, transactions=rows,
                customer_name=names.get(loan.customer_id or 0, ""),
                can_repay=who.can(Permission.POST_REPAYMENT) and loan.status == "active", key=uuid.uuid4().hex,
                message=message, error=error, restructures=restructures)


@router.get("/loans/{loan_id}", response_class=HTMLResponse)
def loan_page(request: Request, uow: UnitOfWorkDep, loan_id: Id, paid: str = "") -> Response:
    """The staff loan page: status, bucket, schedule and every transaction posted to the ledger."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    message = f"{translate(request, 'Payment received')}: {paid[:20]}" if paid else ""
    return _loan(request, uow, who, loan_id, message=message)


@router.post("/loans/{loan_id}/repayments", response_class=HTMLResponse)
def loan_repayment(request: Request, uow: UnitOfWorkDep, loan_id: Id, amount: Annotated[str, Form()],
                   key: Annotated[str, Form()]) -> Response:
    """A repayment taken by staff (at the counter or in the field); the form's key makes a resubmit harmless."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        applications.ensure_staff(who)
        paid = servicing.post_repayment(uow, who, loan_id, parse_amount(amount, "amount"),
                                        idempotency_key=f"page-{who.user_id}-{key[:64]}")
    except DomainError as exc:
        return _loan(request, uow, who, loan_id, error=translate(request, exc.message), status_code=exc.status_code)
    return RedirectResponse(f"/loans/{loan_id}?paid={paid.amount:.2f}", status_code=303)


# ------------------------------------------------------------------------------------------ dashboard


def _bar_chart_svg(series: list[tuple[date, int]], label: str) -> str:
    """Applications per day as an inline SVG (scales to the phone's width; no image request)."""
    width, height, pad = 600, 180, 24
    peak = max((n for _, n in series), default=0) or 1
    step = (width - 2 * pad) / max(len(series), 1)
    bars = []
    for i, (day, n) in enumerate(series):
        h = (height - 2 * pad) * n / peak
        x, y = pad + i * step, height - pad - h
        bars.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(step - 2, 1):.1f}" height="{h:.1f}">'
                    f"<title>{day.isoformat()}: {n}</title></rect>")
    first, last = (series[0][0].strftime("%m-%d"), series[-1][0].strftime("%m-%d")) if series else ("", "")
    return (f'<svg class="chart bars" viewBox="0 0 {width} {height}" role="img" aria-label="{label}">'
            f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" class="axis"/>'
            f'{"".join(bars)}<text x="{pad}" y="{height - 6}">{first}</text>'
            f'<text x="{width - pad}" y="{height - 6}" text-anchor="end">{last}</text>'
            f'<text x="{pad}" y="14">{peak}</text></svg>')


#: The parts of a loan's cost, in the order the stacked bar draws them, with their labels.
COST_PARTS = {"provider": "External data", "decision": "Decision CPU", "staff": "Staff review",
              "servicing": "Servicing CPU"}


def _cost_bar_svg(request: Request, cost: unit_cost.UnitCost) -> str:
    """The parts of the bank's cost as one horizontal stacked bar (inline SVG; colours from the style sheet)."""
    width, height = 600, 28
    x = 0.0
    rects = []
    for name, amount in cost.parts:
        w = float(cost.share(amount)) * width
        if w <= 0:
            continue
        title = f"{translate(request, COST_PARTS[name])}: {i18n.money(amount, cost.currency, request_locale(request))}"
        rects.append(f'<rect class="cost-{name}" x="{x:.1f}" y="0" width="{w:.1f}" height="{height}">'
                     f"<title>{escape(title)}</title></rect>")
        x += w
    label = escape(translate(request, "Cost per loan"))
    return (f'<svg class="chart cost-bar" viewBox="0 0 {width} {height}" role="img" aria-label="{label}">'
            f'<rect class="cost-empty" x="0" y="0" width="{width}" height="{height}"/>{"".join(rects)}</svg>')


#: The dashboard's rates, in the order the chart draws them, with their labels.
RATES = (("stp_rate", "Straight-through rate"), ("approval_rate", "Approval rate"), ("overdue_rate", "Overdue rate"))


def _rates(request: Request, d: assist.Dashboard) -> list[tuple[str, Decimal | None]]:
    return [(translate(request, name), getattr(d, field)) for field, name in RATES]


@router.get("/workbench/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, uow: UnitOfWorkDep, scope: str = "branch") -> Response:
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        branch = assist.staff_branch(uow, who) if scope == "branch" else ""
        now = _now()
        d = assist.branch_dashboard(uow, who, now, branch)
        cost = unit_cost.unit_cost(uow, who, now - timedelta(days=30), now + timedelta(seconds=1))
    except DomainError as exc:
        return _error(request, who, exc)
    return page(request, who, "workbench/dashboard.html", d=d, branch=branch, scope=scope,
                per_day_svg=_bar_chart_svg(d.per_day, translate(request, "Applications per day")),
                rates=_rates(request, d),
                rates_svg=charts.rate_bars_svg(_rates(request, d), translate(request, "Rates")),
                cost=cost, cost_svg=_cost_bar_svg(request, cost))
