"""The business profile (经营画像) an officer reads: what the external sources said about a business, aggregated
for display — monthly declared sales, invoices, acquiring flows, the registry entry, court enforcement and the
credit report summary — each with where it came from and when. Pure: built from the providers' payloads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from html import escape
from typing import Any

#: The order sources are shown in.
KINDS = ("tax", "einvoice", "merchant", "registry", "enforcement", "bureau")


@dataclass(frozen=True)
class SourceSnapshot:
    """The newest answer of one source for the subject: status as the gateway recorded it, the payload when ok."""

    kind: str
    status: str  # ok | not_found | unavailable | data_error | no_consent | not_configured | not_called
    fetched_at: datetime | None = None
    payload: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class MonthValue:
    period: str  # YYYY-MM
    value: Decimal


@dataclass(frozen=True)
class TaxSummary:
    grade: str | None
    months: tuple[MonthValue, ...]  # declared sales, oldest first
    sales_12m: Decimal
    sales_prev_12m: Decimal | None
    months_declared_24m: int

    @property
    def growth(self) -> Decimal | None:
        if not self.sales_prev_12m:
            return None
        return (self.sales_12m / self.sales_prev_12m - 1).quantize(Decimal("0.001"))


@dataclass(frozen=True)
class InvoiceSummary:
    issued_12m: Decimal
    received_12m: Decimal
    red_12m: Decimal
    counterparties_12m: int | None
    top_customer_12m: Decimal | None

    @property
    def red_ratio(self) -> Decimal | None:
        return (self.red_12m / self.issued_12m).quantize(Decimal("0.001")) if self.issued_12m else None

    @property
    def top_share(self) -> Decimal | None:
        if not self.issued_12m or self.top_customer_12m is None:
            return None
        return (self.top_customer_12m / self.issued_12m).quantize(Decimal("0.001"))


@dataclass(frozen=True)
class FlowSummary:
    amount_90d: Decimal
    count_90d: int
    active_days_90d: int
    months: tuple[MonthValue, ...]  # acquiring amount per calendar month, oldest first
    merchant_since: date | None


@dataclass(frozen=True)
class EnforcementCase:
    case_no: str
    filed_on: date | None
    amount: Decimal
    status: str
    dishonest: bool


@dataclass(frozen=True)
class BusinessProfile:
    as_of: date
    sources: tuple[SourceSnapshot, ...]
    tax: TaxSummary | None = None
    invoices: InvoiceSummary | None = None
    flows: FlowSummary | None = None
    registry: Mapping[str, Any] | None = None
    enforcement: tuple[EnforcementCase, ...] | None = None
    bureau: Mapping[str, Any] | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return all(s.status == "not_called" for s in self.sources)

    def source(self, kind: str) -> SourceSnapshot:
        return next((s for s in self.sources if s.kind == kind), SourceSnapshot(kind, "not_called"))


def _money(value: Any) -> Decimal:
    try:
        result = Decimal(str(value))
    except ArithmeticError:
        return Decimal(0)
    return result if result.is_finite() else Decimal(0)


def _period(value: Any) -> str:
    return str(value)[:7]


def _month_before(on: date, months: int) -> str:
    """The period `months` before the as-of month (1 = the previous month)."""
    index = on.year * 12 + on.month - 1 - months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _tax(payload: Mapping[str, Any], as_of: date) -> TaxSummary:
    last12 = {_month_before(as_of, k) for k in range(1, 13)}
    prev12 = {_month_before(as_of, k) for k in range(13, 25)}
    months = sorted(
        (MonthValue(_period(d.get("period")), _money(d.get("sales"))) for d in payload.get("declarations") or ()),
        key=lambda m: m.period)
    months = [m for m in months if m.period in last12 or m.period in prev12]
    prev = [m.value for m in months if m.period in prev12]
    return TaxSummary(grade=payload.get("credit_grade"), months=tuple(months),
                      sales_12m=sum((m.value for m in months if m.period in last12), Decimal(0)),
                      sales_prev_12m=sum(prev, Decimal(0)) if prev else None, months_declared_24m=len(months))


def _invoices(payload: Mapping[str, Any], as_of: date) -> InvoiceSummary:
    last12 = {_month_before(as_of, k) for k in range(1, 13)}
    months = [m for m in payload.get("months") or () if _period(m.get("period")) in last12]
    top = payload.get("top_customers_12m") or ()
    return InvoiceSummary(
        issued_12m=sum((_money(m.get("issued_amount")) for m in months), Decimal(0)),
        received_12m=sum((_money(m.get("received_amount")) for m in months), Decimal(0)),
        red_12m=sum((_money(m.get("red_amount")) for m in months), Decimal(0)),
        counterparties_12m=payload.get("counterparties_12m"),
        top_customer_12m=_money(top[0].get("amount")) if top else None)


def _flows(payload: Mapping[str, Any], as_of: date) -> FlowSummary:
    days = [(d, _date(d.get("date"))) for d in payload.get("days") or ()]
    recent = [(d, on) for d, on in days if on is not None and 0 < (as_of - on).days <= 90]
    by_month: dict[str, Decimal] = {}
    for d, on in days:
        if on is not None and on < as_of:
            by_month[on.isoformat()[:7]] = by_month.get(on.isoformat()[:7], Decimal(0)) + _money(d.get("amount"))
    return FlowSummary(
        amount_90d=sum((_money(d.get("amount")) for d, _ in recent), Decimal(0)),
        count_90d=sum(int(d.get("count") or 0) for d, _ in recent),
        active_days_90d=sum(1 for d, _ in recent if int(d.get("count") or 0) > 0),
        months=tuple(MonthValue(p, v) for p, v in sorted(by_month.items())),
        merchant_since=_date(payload.get("merchant_since")))


def _registry(payload: Mapping[str, Any], as_of: date) -> dict[str, Any]:
    registered = _date(payload.get("registered_on"))
    changes = [c for c in payload.get("changes") or () if (d := _date(c.get("date"))) and 0 <= (as_of - d).days <= 365]
    age = None
    if registered is not None:
        age = (as_of.year - registered.year) * 12 + as_of.month - registered.month - (as_of.day < registered.day)
    return {"name": payload.get("name"), "registered_on": registered, "age_months": age,
            "capital": _money(payload.get("capital")) if payload.get("capital") is not None else None,
            "status": payload.get("status"), "entity_type": payload.get("entity_type"),
            "industry_code": payload.get("industry_code"), "legal_representative": payload.get("legal_representative"),
            "changes_12m": [{"date": _date(c.get("date")), "item": c.get("item")} for c in changes]}


def _enforcement(payload: Mapping[str, Any]) -> tuple[EnforcementCase, ...]:
    cases = [EnforcementCase(case_no=str(c.get("case_no") or ""), filed_on=_date(c.get("filed_on")),
                             amount=_money(c.get("amount")), status=str(c.get("status") or ""),
                             dishonest=bool(c.get("dishonest"))) for c in payload.get("cases") or ()]
    return tuple(sorted(cases, key=lambda c: (c.status != "open", c.filed_on or date.min), reverse=False))


_BUREAU_FIELDS = ("credit_history_months", "open_accounts", "lenders_open", "total_balance", "overdue_accounts_now",
                  "overdue_months_24m", "max_overdue_level_24m", "inquiries_3m", "inquiries_12m", "guarantees_given",
                  "guarantee_amount", "bad_debt", "report_date")


def business_profile(snapshots: Mapping[str, SourceSnapshot], as_of: date) -> BusinessProfile:
    """The profile from the newest snapshot of each source; a source that did not answer shows its status."""
    sources = tuple(snapshots.get(k) or SourceSnapshot(k, "not_called") for k in KINDS)
    parts: dict[str, Any] = {}
    warnings: list[str] = []
    for snap in sources:
        payload = snap.payload
        if payload is None or not payload.get("found", True):  # an older answer is shown when the newest failed
            continue
        if snap.kind == "tax":
            parts["tax"] = _tax(payload, as_of)
        elif snap.kind == "einvoice":
            parts["invoices"] = _invoices(payload, as_of)
        elif snap.kind == "merchant":
            parts["flows"] = _flows(payload, as_of)
        elif snap.kind == "registry":
            parts["registry"] = _registry(payload, as_of)
        elif snap.kind == "enforcement":
            parts["enforcement"] = _enforcement(payload)
        elif snap.kind == "bureau":
            parts["bureau"] = {k: payload.get(k) for k in _BUREAU_FIELDS}
    tax, invoices = parts.get("tax"), parts.get("invoices")
    if tax is not None and tax.growth is not None and tax.growth < Decimal("-0.3"):
        warnings.append("Declared sales fell by more than 30% year on year")
    if invoices is not None and invoices.issued_12m > 0 and (tax is None or tax.sales_12m < invoices.issued_12m / 5):
        warnings.append("Invoices issued far exceed declared sales")
    if any(c.status == "open" for c in parts.get("enforcement") or ()):
        warnings.append("Open court enforcement case")
    registry = parts.get("registry")
    if registry is not None and registry.get("status") in ("吊销", "注销"):
        warnings.append("The business is not active in the registry")
    return BusinessProfile(as_of=as_of, sources=sources, warnings=tuple(warnings), **parts)


def bar_chart_svg(months: tuple[MonthValue, ...] | list[MonthValue], label: str, *, highlight_last: int = 12) -> str:
    """Monthly amounts as an inline SVG that scales to a phone's width; the last `highlight_last` months are the
    recent year (drawn darker). No image request, no script."""
    width, height, pad = 600, 180, 24
    peak = max((m.value for m in months), default=Decimal(0)) or Decimal(1)
    step = (width - 2 * pad) / max(len(months), 1)
    bars = []
    for i, m in enumerate(months):
        h = float((height - 2 * pad) * m.value / peak)
        x, y = pad + i * step, height - pad - h
        recent = ' class="recent"' if i >= len(months) - highlight_last else ""
        bars.append(f'<rect{recent} x="{x:.1f}" y="{y:.1f}" width="{max(step - 2, 1):.1f}" height="{h:.1f}">'
                    f"<title>{m.period}: {m.value:,.2f}</title></rect>")
    first, last = (months[0].period, months[-1].period) if months else ("", "")
    return (f'<svg class="chart bars" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
            f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" class="axis"/>'
            f'{"".join(bars)}<text x="{pad}" y="{height - 6}">{first}</text>'
            f'<text x="{width - pad}" y="{height - 6}" text-anchor="end">{last}</text>'
            f'<text x="{pad}" y="14">{peak:,.0f}</text></svg>')
