"""Regulatory and finance report pages (监管与财务报表): the five-category table by product and branch, NPL
formation and disposal, provision movement and the interest income reconciliation, each a table (scrolling on
a phone), an SVG chart and its Excel workbook; and the write-off queue, where a second person approves or
rejects a request (四眼)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from microlend.api.deps import Id, UnitOfWorkDep
from microlend.core.errors import DomainError, NotFound, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.data.profile import MonthValue, bar_chart_svg
from microlend.servicing import reports, service
from microlend.web import i18n
from microlend.web.pages import current_principal, login_redirect, page
from microlend.web.templates import request_locale

router = APIRouter(include_in_schema=False)

NAV: list[tuple[str, str, Permission]] = [
    ("/reports/five-category", "Finance reports", Permission.VIEW_LEDGER),
    ("/workbench/write-offs", "Write-off queue", Permission.APPROVE_WRITE_OFF),
]

REPORTS = {
    "five-category": "Five-category table",
    "npl-movement": "NPL formation and disposal",
    "provision-movement": "Provision movement",
    "interest-income": "Interest income reconciliation",
}
CLASS_LABELS = {"normal": "Normal", "special_mention": "Special mention", "substandard": "Substandard",
                "doubtful": "Doubtful", "loss": "Loss"}
LINES = {
    "npl-movement": [("opening", "Opening NPL"), ("new", "New NPL (downgrades)"), ("cured", "Cures and upgrades"),
                     ("collections", "Collections"), ("written_off", "Write-offs"), ("other", "Other"),
                     ("closing", "Closing NPL")],
    "provision-movement": [("opening", "Opening allowance"), ("charge", "Charge (6702)"),
                           ("written_off", "Used by write-offs"), ("recoveries", "Recoveries"),
                           ("releases", "Releases"), ("other", "Other"), ("closing", "Closing allowance (1304)")],
    "income": [("opening", "Opening"), ("accrued", "Accrued to income"), ("reversed", "Reversed on non-accrual"),
               ("cash_basis", "Recognised on the cash basis"), ("other", "Other"), ("closing", "Closing")],
    "memo": [("opening", "Opening"), ("accrued_off_balance", "Accrued off-balance"),
             ("moved_from_income", "Moved from income"), ("collected", "Collected"), ("other", "Other"),
             ("closing", "Closing")],
}
PARTS = {"interest": "Interest", "penalty": "Penalty interest"}


def translate(request: Request, message: str) -> str:
    return str(i18n.translations(request_locale(request)).gettext(message))


def _who(request: Request, uow: UnitOfWork, permission: Permission) -> Principal | Response:
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    if not who.can(permission):
        return page(request, who, "error.html", status_code=403, message="forbidden")
    return who


def _date(value: str, field: str) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(f"{field}: '{value}' is not a date YYYY-MM-DD", field=field) from None


def _run(uow: UnitOfWork, who: Principal, name: str, on: str, start: str, end: str) -> dict[str, Any]:
    if name == "five-category":
        return reports.five_category(uow, who, _date(on, "date"))
    run = {"npl-movement": reports.npl_movement, "provision-movement": reports.provision_movement,
           "interest-income": reports.interest_income}[name]
    return run(uow, who, _date(start, "from"), _date(end, "to"))


def _chart(request: Request, name: str, report: dict[str, Any]) -> str:
    def t(message: str) -> str:
        return translate(request, message)

    if name == "five-category":
        bars = [MonthValue(t(CLASS_LABELS[c]), Decimal(report["total"]["balance"][c])) for c in reports.CLASSES]
        label = t("Balance by class")
    elif name == "interest-income":
        bars = [MonthValue(f'{t(PARTS[p])}: {t(lbl)}', Decimal(report["income"][p][k]))
                for p in PARTS for k, lbl in LINES["income"][1:4]]
        label = t("Income movements")
    else:
        bars = [MonthValue(t(lbl), abs(Decimal(report[k]))) for k, lbl in LINES[name]]
        label = t(REPORTS[name])
    return bar_chart_svg(bars, label, highlight_last=len(bars))


@router.get("/reports/{name}", response_class=HTMLResponse)
def report_page(request: Request, uow: UnitOfWorkDep, name: str, on: str = "", start: str = "",
                end: str = "") -> Response:
    who = _who(request, uow, Permission.VIEW_LEDGER)
    if not isinstance(who, Principal):
        return who
    if name.endswith(".xlsx") and name[:-5] in REPORTS:
        try:
            report = _run(uow, who, name[:-5], on, start, end)
        except DomainError as exc:
            return page(request, who, "error.html", status_code=exc.status_code, message=exc.message)
        body = reports.to_xlsx(name[:-5], reports.sheets(name[:-5], report))
        return Response(body, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    if name not in REPORTS:
        return page(request, who, "error.html", status_code=404, message=NotFound("no such report").message)
    try:
        report = _run(uow, who, name, on, start, end)
    except DomainError as exc:
        return page(request, who, "reports/report.html", status_code=exc.status_code, message=exc.message,
                    name=name, reports=REPORTS, report=None, on=on, start=start, end=end, query="")
    query = request.url.query
    return page(request, who, "reports/report.html", name=name, reports=REPORTS, report=report, message="",
                chart_svg=_chart(request, name, report), classes=reports.CLASSES, class_labels=CLASS_LABELS,
                lines=LINES, parts=PARTS, on=on, start=start, end=end, query=query)


# --- the write-off queue (核销审批) ----------------------------------------------------------------------------


def _queue(request: Request, uow: UnitOfWork, who: Principal, *, status_code: int = 200, message: str = "",
           done: str = "") -> HTMLResponse:
    pending = service.list_write_offs(uow, who, status="pending")
    return page(request, who, "reports/write_offs.html", status_code=status_code, pending=pending,
                message=message, done=done, class_labels=CLASS_LABELS)


@router.get("/workbench/write-offs", response_class=HTMLResponse)
def write_off_queue(request: Request, uow: UnitOfWorkDep, done: str = "") -> Response:
    who = _who(request, uow, Permission.APPROVE_WRITE_OFF)
    if not isinstance(who, Principal):
        return who
    return _queue(request, uow, who, done=done)


@router.post("/workbench/write-offs/{write_off_id}/approve", response_class=HTMLResponse)
def approve(request: Request, uow: UnitOfWorkDep, write_off_id: Id) -> Response:
    who = _who(request, uow, Permission.APPROVE_WRITE_OFF)
    if not isinstance(who, Principal):
        return who
    try:
        service.approve_write_off(uow, who, write_off_id)
    except DomainError as exc:
        return _queue(request, uow, who, status_code=exc.status_code, message=exc.message)
    return RedirectResponse("/workbench/write-offs?done=approved", status_code=303)


@router.post("/workbench/write-offs/{write_off_id}/reject", response_class=HTMLResponse)
def reject(request: Request, uow: UnitOfWorkDep, write_off_id: Id,
           reason: Annotated[str, Form(max_length=500)] = "") -> Response:
    who = _who(request, uow, Permission.APPROVE_WRITE_OFF)
    if not isinstance(who, Principal):
        return who
    try:
        service.reject_write_off(uow, who, write_off_id, reason)
    except DomainError as exc:
        return _queue(request, uow, who, status_code=exc.status_code, message=exc.message)
    return RedirectResponse("/workbench/write-offs?done=rejected", status_code=303)


# --- the judgement downgrade on the loan page (人工下调) ---------------------------------------------------------


@router.post("/loans/{loan_id}/classification", response_class=HTMLResponse)
def downgrade(request: Request, uow: UnitOfWorkDep, loan_id: Id, to_class: Annotated[str, Form(max_length=20)],
              reason: Annotated[str, Form(max_length=500)] = "") -> Response:
    """An officer downgrades the loan's class by judgement, with the reason (the class changes now)."""
    who = _who(request, uow, Permission.CLASSIFY_LOANS)
    if not isinstance(who, Principal):
        return who
    try:
        service.downgrade_loan(uow, who, loan_id, to_class, reason)
    except DomainError as exc:
        return page(request, who, "error.html", status_code=exc.status_code,
                    message=translate(request, exc.message))
    return RedirectResponse(f"/loans/{loan_id}", status_code=303)
