"""组合分析 pages: vintage curves (a line per cohort), roll-rate heat tables with flow and cure rates, collections
performance per collector (a kept-rate line per collector and the figures), and the same figures as an Excel
workbook. The figures are those of `GET /api/v1/portfolio/...`."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from html import escape

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from microlend.api.deps import UnitOfWorkDep
from microlend.core.clock import utcnow
from microlend.core.errors import DomainError, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.servicing import collections_performance as cp
from microlend.servicing import portfolio
from microlend.servicing.portfolio_sql import OPEN_STATES, STATES, Window
from microlend.web import i18n
from microlend.web.i18n import translations
from microlend.web.pages import current_principal, login_redirect, page
from microlend.web.templates import request_locale

router = APIRouter(include_in_schema=False)

NAV: list[tuple[str, str, Permission]] = [
    ("/portfolio/vintages", "Vintages", Permission.VIEW_PORTFOLIO),
    ("/portfolio/roll-rates", "Roll rates", Permission.VIEW_PORTFOLIO),
    ("/portfolio/collections", "Collections performance", Permission.VIEW_PORTFOLIO),
]

STATE_LABELS = {"M0": "Current", "M1": "1–30 days", "M2": "31–60 days", "M3": "61–90 days", "M3+": "Over 90 days",
                "written_off": "Written off", "paid": "Paid off"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: Colours of the cohorts' lines, newest last (presentation attributes, not styles: the pages allow no inline CSS).
PALETTE = ("#9db4cc", "#6f93b8", "#2f5d8a", "#1d3f63", "#b5651d", "#c0392b", "#7d3c98", "#16a085")


def _who(request: Request, uow: UnitOfWork) -> Principal | Response:
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    if not who.can(Permission.VIEW_PORTFOLIO):
        return page(request, who, "error.html", status_code=403, message="forbidden")
    return who


def _window(as_of: str, months: str, default: int) -> Window:
    try:
        on = date.fromisoformat(as_of) if as_of.strip() else utcnow().date()
    except ValueError:
        raise ValidationError(f"as_of: '{as_of[:20]}' is not a date YYYY-MM-DD", field="as_of") from None
    try:
        n = int(months) if months.strip() else default
    except ValueError:
        raise ValidationError(f"months: '{months[:20]}' is not a whole number", field="months") from None
    return Window(on, n)


def _pct(rate: Decimal | None) -> str:
    """A rate in a table cell or on an axis: the pages' one percentage format ('' where there is none)."""
    return "" if rate is None else i18n.percent(rate, "en")


def line_chart_svg(series: list[tuple[str, tuple[Decimal | None, ...]]], label: str, *, points: int,
                   ends: tuple[str, str] | None = None) -> str:
    """Rates (0..1) by months on book (or the months `ends` names the first and last of), a line per series, as an
    inline SVG that scales to a phone's width (the same frame as `data.profile.bar_chart_svg`); the last eight
    series are drawn, newest darkest."""
    width, height, pad = 600, 220, 28
    peak = max((v for _, values in series for v in values if v is not None), default=Decimal(0))
    peak = max(peak, Decimal("0.01"))
    step = (width - 2 * pad) / max(points - 1, 1)
    lines = []
    first, last = ends or ("0", str(points - 1))
    shown = series[-len(PALETTE):]
    for i, (name, values) in enumerate(shown):
        xy = " ".join(f"{pad + k * step:.1f},{height - pad - float((height - 2 * pad) * v / peak):.1f}"
                      for k, v in enumerate(values) if v is not None)
        colour = PALETTE[len(PALETTE) - len(shown) + i]
        lines.append(f'<polyline points="{xy}" fill="none" stroke="{colour}" stroke-width="2" '
                     f'data-cohort="{escape(name)}"><title>{escape(name)}</title></polyline>')
    return (f'<svg class="chart lines" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
            f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" class="axis"/>'
            f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" class="axis"/>{"".join(lines)}'
            f'<text x="{pad}" y="{height - 8}">{escape(first)}</text>'
            f'<text x="{width - pad}" y="{height - 8}" text-anchor="end">{escape(last)}</text>'
            f'<text x="{pad + 4}" y="{pad - 8}">{_pct(peak)}</text></svg>')


def legend(series: list[tuple[str, tuple[Decimal | None, ...]]]) -> list[tuple[str, str]]:
    """(colour, name) of the series `line_chart_svg` draws, in its colours."""
    shown = series[-len(PALETTE):]
    return [(PALETTE[len(PALETTE) - len(shown) + i], name) for i, (name, _) in enumerate(shown)]


def heat(rate: Decimal | None) -> str:
    """The heat class of a roll-rate cell: 0 (none) to 5 (almost all of the row)."""
    if rate is None or rate == 0:
        return "heat-0"
    for level, upper in enumerate((Decimal("0.05"), Decimal("0.15"), Decimal("0.35"), Decimal("0.65")), 1):
        if rate <= upper:
            return f"heat-{level}"
    return "heat-5"


@router.get("/portfolio/vintages", response_class=HTMLResponse)
def vintages_page(request: Request, uow: UnitOfWorkDep, as_of: str = "", months: str = "",
                  measure: str = "30") -> Response:
    who = _who(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        w = _window(as_of, months, 24)
        v = portfolio.vintages(uow, who, w)
    except DomainError as exc:
        return page(request, who, "error.html", status_code=exc.status_code, message=exc.message)
    measure = "90" if measure == "90" else "30"
    series = [(c.month, c.rate_90 if measure == "90" else c.rate_30) for c in v.cohorts]
    title = translations(request_locale(request)).gettext(
        "Share of loans ever more than 90 days past due" if measure == "90"
        else "Share of loans ever more than 30 days past due")
    return page(request, who, "portfolio/vintages.html", v=v, measure=measure, mobs=list(range(w.months)),
                chart=line_chart_svg(series, title, points=w.months), chart_title=title, pct=_pct)


@router.get("/portfolio/roll-rates", response_class=HTMLResponse)
def roll_rates_page(request: Request, uow: UnitOfWorkDep, as_of: str = "", months: str = "",
                    month: str = "") -> Response:
    who = _who(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        w = _window(as_of, months, 13)
        r = portfolio.roll_rates(uow, who, w)
    except DomainError as exc:
        return page(request, who, "error.html", status_code=exc.status_code, message=exc.message)
    chosen = next((t for t in r.transitions if t.month == month), r.total)
    return page(request, who, "portfolio/roll_rates.html", r=r, m=chosen, open_states=OPEN_STATES,
                states=STATES, labels=STATE_LABELS, flows=portfolio.FLOWS, pct=_pct, heat=heat)


#: The figures of the collections performance table and sheet, in their order: (attribute, heading).
COLLECTION_COLUMNS = (
    ("cases_worked", "Cases worked"), ("contacts", "Contacts"), ("promises_made", "Promises made"),
    ("promises_kept", "Kept"), ("promises_broken", "Broken"), ("promises_pending", "Pending"),
    ("promises_lapsed", "Lapsed"), ("kept_rate", "Kept rate"), ("promised_amount", "Amount promised"),
    ("amount_recovered", "Amount recovered"), ("cases_closed", "Cases closed"), ("cases_cured", "Cases cured"),
)
OUTCOME_LABELS = {"promise": "Promised to pay", "refused": "Refused", "no_answer": "No answer",
                  "wrong_number": "Wrong number"}


@router.get("/portfolio/collections", response_class=HTMLResponse)
def collections_page(request: Request, uow: UnitOfWorkDep, first: str = Query("", alias="from"), to: str = "",
                     month: str = "") -> Response:
    who = _who(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        period = cp.period_of(first, to, utcnow().date())
        c = cp.collections_performance(uow, who, period)
    except DomainError as exc:
        return page(request, who, "error.html", status_code=exc.status_code, message=exc.message)
    t = translations(request_locale(request)).gettext
    title = t("Promises kept, as a share of those kept or broken, by month")
    series = [(line.name, tuple(f.kept_rate for f in line.months)) for line in c.collectors]
    chart = line_chart_svg(series, title, points=len(c.months), ends=(c.months[0], c.months[-1]))
    if month in c.months:
        i = c.months.index(month)
        rows = [(line, line.months[i]) for line in c.collectors]
        everyone = c.by_month[i]
    else:
        month, rows, everyone = "", [(line, line.total) for line in c.collectors], c.total
    end = min(period.ends[-1], utcnow().date())  # the export's window never ends in days not yet lived
    return page(request, who, "portfolio/collections.html", c=c, period=period, month=month, rows=rows,
                everyone=everyone, chart=chart, chart_title=title, columns=COLLECTION_COLUMNS,
                outcome_labels=OUTCOME_LABELS, pct=_pct, legend=legend(series),
                export=f"as_of={end.isoformat()}&months={max(2, len(c.months))}")


def collections_sheet(ws: Worksheet, t: Callable[[str], str], c: cp.CollectionsPerformance) -> None:
    """Per collector month by month with the collector's whole period, then everyone's."""
    outcomes = list(OUTCOME_LABELS)
    ws.append([t("Collector"), t("Username"), t("Month"), *[t(h) for _, h in COLLECTION_COLUMNS],
               *[f"{t('Contacts')}: {t(OUTCOME_LABELS[o])}" for o in outcomes]])

    def row(name: str, username: str, month: str, f: cp.Figures) -> list[object]:
        return [name, username, month, *[getattr(f, a) for a, _ in COLLECTION_COLUMNS],
                *[f.contacts_by_outcome.get(o, 0) for o in outcomes]]

    for line in c.collectors:
        for label, f in zip(c.months, line.months, strict=True):
            ws.append(row(line.name, line.username, label, f))
        ws.append(row(line.name, line.username, t("All months"), line.total))
    for label, f in zip(c.months, c.by_month, strict=True):
        ws.append(row(t("All collectors"), "", label, f))
    ws.append(row(t("All collectors"), "", t("All months"), c.total))


def workbook(request: Request, v: portfolio.Vintages, r: portfolio.RollRates,
             perf: cp.CollectionsPerformance | None = None) -> bytes:
    """Vintages (30+ and 90+), the whole window's roll rates with counts, flow and cure rates by month, and the
    collections performance of the window's months."""
    t = translations(request_locale(request)).gettext
    wb = Workbook()
    for index, (measure, name) in enumerate((("30", t("Vintages 30+")), ("90", t("Vintages 90+")))):
        ws = wb.active if index == 0 else wb.create_sheet()
        assert ws is not None
        ws.title = name[:31]
        ws.append([t("Month disbursed"), t("Loans"), *[f"{t('MOB')} {k}" for k in range(v.months)]])
        for c in v.cohorts:
            ws.append([c.month, c.loans, *(c.rate_90 if measure == "90" else c.rate_30)])
    ws = wb.create_sheet(t("Roll rates")[:31])
    ws.append([f"{r.total.start} → {r.total.end}"])
    ws.append([t("From"), *[t(STATE_LABELS[s]) for s in STATES], t("Loans")])
    for a in OPEN_STATES:
        ws.append([t(STATE_LABELS[a]), *[r.total.rate(a, b) for b in STATES], r.total.row_total(a)])
    ws.append([])
    ws.append([t("From"), *[t(STATE_LABELS[s]) for s in STATES]])
    for a in OPEN_STATES:
        ws.append([t(STATE_LABELS[a]), *[r.total.counts[a][b] for b in STATES]])
    ws = wb.create_sheet(t("Flow and cure rates")[:31])
    ws.append([t("Month"), *[f"{a} → {b}" for a, b in portfolio.FLOWS], t("Cure rate")])
    for m in r.transitions:
        ws.append([m.month, *m.flow_rates.values(), m.cure_rate])
    if perf is not None:
        collections_sheet(wb.create_sheet(t("Collections performance")[:31]), t, perf)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@router.get("/portfolio/export.xlsx", response_class=Response)
def export(request: Request, uow: UnitOfWorkDep, as_of: str = "", months: str = "") -> Response:
    who = _who(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        w = _window(as_of, months, 24)
        v, r = portfolio.vintages(uow, who, w), portfolio.roll_rates(uow, who, w)
        first = w.starts[0]
        c = cp.collections_performance(uow, who, cp.Period((first.year, first.month), (w.as_of.year, w.as_of.month)))
    except DomainError as exc:
        return page(request, who, "error.html", status_code=exc.status_code, message=exc.message)
    return Response(workbook(request, v, r, c), media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="portfolio-{w.as_of.isoformat()}.xlsx"'})
