"""The six provider payloads (SPEC: bureau, tax, einvoice, merchant, registry, enforcement) of a subject as of a
day, read from the simulated world. Pure functions: same subject, seed, anchor and day, same payload."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from microlend.demo.sandbox.world import (
    CENT,
    INDUSTRY_CODES,
    INVOICE_TICKET,
    TAX_GRADES,
    Business,
    business_of,
    money,
    month_index,
    period,
)

Payload = dict[str, Any]
KINDS = ("bureau", "tax", "einvoice", "merchant", "registry", "enforcement")
#: The query path of each provider under `/v1/<kind>/`.
PATHS = {
    "bureau": "report",
    "tax": "declarations",
    "einvoice": "summary",
    "merchant": "flows",
    "registry": "company",
    "enforcement": "cases",
}
#: Kinds keyed by a USCC only: a resident ID is not found there.
BUSINESS_ONLY = frozenset({"tax", "einvoice", "registry"})
MONTHS = 24
MERCHANT_DAYS = 180


def envelope(kind: str, subject: str, as_of: date, found: bool) -> Payload:
    return {
        "subject": subject,
        "found": found,
        "as_of": as_of.isoformat(),
        "provider": f"sandbox-{kind}",
        "schema": f"{kind}/1",
    }


def payload(kind: str, subject: str, as_of: date, *, seed: int, anchor: date) -> Payload:
    """The response body of provider `kind` for `subject` as of `as_of`."""
    business = business_of(subject.strip().upper(), seed, anchor)
    body: Payload | None = None
    if business is not None and not (kind in BUSINESS_ONLY and business.kind != "business"):
        body = BUILDERS[kind](business, as_of)
    shown = business.subject if business is not None else subject.strip()
    return {**envelope(kind, shown, as_of, body is not None), **(body or {})}


def _months_before(as_of: date) -> range:
    """The month indexes of the 24 months before `as_of`'s month, oldest first."""
    current = month_index(as_of)
    return range(current - MONTHS, current)


def bureau(b: Business, as_of: date) -> Payload | None:
    first = b.first_credit()
    if first is None or first > as_of:
        return None
    loans = [loan for loan in b.loans() if loan.opened <= as_of < loan.due]
    now = month_index(as_of)
    levels: dict[int, int] = {}
    for spell in b.overdue_spells():
        for n in range(spell.months):
            if spell.start + n <= now:
                levels[spell.start + n] = max(levels.get(spell.start + n, 0), min(n + 1, 7))
    window = [levels.get(m, 0) for m in range(now - 23, now + 1)]
    inquiries = [d for m in range(now - 12, now + 1) for d in b.inquiries(m) if d <= as_of]
    guarantees = [g for g in b.guarantees() if g.opened <= as_of < g.due]
    history = (as_of.year - first.year) * 12 + as_of.month - first.month - (as_of.day < first.day)
    return {
        "report_date": as_of.isoformat(),
        "credit_history_months": max(history, 0),
        "open_accounts": len(loans),
        "lenders_open": len({loan.lender for loan in loans}),
        "total_balance": money(sum((loan.balance(as_of) for loan in loans), Decimal(0))),
        "overdue_accounts_now": 1 if levels.get(now, 0) > 0 else 0,
        "overdue_months_24m": sum(1 for level in window if level > 0),
        "max_overdue_level_24m": max(window),
        "inquiries_3m": sum(1 for d in inquiries if d > as_of - timedelta(days=91)),
        "inquiries_12m": sum(1 for d in inquiries if d > as_of - timedelta(days=365)),
        "guarantees_given": len(guarantees),
        "guarantee_amount": money(sum((g.amount for g in guarantees), Decimal(0))),
        "bad_debt": any(level >= 6 for level in levels.values()),
    }


def tax(b: Business, as_of: date) -> Payload | None:
    if b.registered_on > as_of:
        return None
    declarations = []
    for m in _months_before(as_of):
        sales = b.declared_sales(m)
        if sales is not None:
            declarations.append({"period": period(m), "sales": money(sales), "vat_paid": money(b.vat_paid(sales))})
    grade = "M" if (as_of - b.registered_on).days < 365 else b.draws.choice(TAX_GRADES[b.profile], "grade")
    return {"credit_grade": grade, "declarations": declarations}


def einvoice(b: Business, as_of: date) -> Payload | None:
    if b.registered_on > as_of:
        return None
    d = b.draws
    months = []
    red_rate = {"shell": (0.5, 0.10, 0.40), "average": (0.2, 0.01, 0.08)}.get(b.profile, (0.1, 0.01, 0.05))
    ticket = INVOICE_TICKET[b.industry] * d.uniform(0.6, 1.5, "invoice-ticket")
    issued_12m, count_12m = Decimal(0), 0
    for m in _months_before(as_of):
        issued, received = b.issued_amount(m), b.received_amount(m)
        if m >= month_index(as_of) - 12:
            issued_12m, count_12m = issued_12m + issued, count_12m + _count(issued, ticket)
        red = Decimal("0.00")
        if issued > 0 and d.unit("red", m) < red_rate[0]:
            share = Decimal(str(round(d.uniform(red_rate[1], red_rate[2], "red-share", m), 4)))
            red = (issued * share).quantize(CENT)
        months.append(
            {
                "period": period(m),
                "issued_count": _count(issued, ticket),
                "issued_amount": money(issued),
                "received_count": _count(received, ticket * 0.6),
                "received_amount": money(received),
                "red_count": d.integer(1, 3, "red-count", m) if red > 0 else 0,
                "red_amount": money(red),
                "cancelled_count": d.integer(1, 2, "cancelled", m) if issued > 0 and d.unit("cancel", m) < 0.15 else 0,
            }
        )
    weights = [Decimal(str(round(w, 6))) for w in b.customer_weights()[:count_12m]]
    total_weight = sum(weights, Decimal(0))
    # each customer's part rounded down to the cent, so the top five never add up to more than was issued
    top = [
        {"counterparty": b.customer(n), "amount": money((issued_12m * w / total_weight).quantize(CENT, ROUND_DOWN))}
        for n, w in enumerate(weights[:5])
    ]
    return {"months": months, "counterparties_12m": len(weights), "top_customers_12m": top}


def _count(amount: Decimal, ticket: float) -> int:
    return 0 if amount <= 0 else max(round(float(amount) / ticket), 1)


def merchant(b: Business, as_of: date) -> Payload | None:
    if b.merchant_since is None or b.merchant_since > as_of:
        return None
    days = []
    sales: dict[int, Decimal] = {}
    for n in range(MERCHANT_DAYS, 0, -1):
        day = as_of - timedelta(days=n)
        month = month_index(day)
        if month not in sales:
            sales[month] = b.monthly_sales(month)
        takings = b.daily_takings(day, sales[month])
        if takings is not None:
            days.append({"date": day.isoformat(), "count": takings[0], "amount": money(takings[1])})
    return {"merchant_since": b.merchant_since.isoformat(), "days": days}


def registry(b: Business, as_of: date) -> Payload | None:
    if b.registered_on > as_of:
        return None
    d = b.draws
    revoked = b.revoked_on()
    active = "在业" if b.individual else "存续"  # 个体工商户 are "in business", companies "subsisting"
    status = "吊销" if revoked is not None and revoked <= as_of else active
    if b.profile == "shell":
        capital = d.integer(10, 100, "capital") * 100_000
    elif b.individual:
        capital = d.integer(1, 30, "capital") * 10_000
    else:
        capital = d.integer(1, 50, "capital") * 100_000
    owner = b.owner_name()
    return {
        "name": b.name(),
        "registered_on": b.registered_on.isoformat(),
        "capital": money(Decimal(capital)),
        "status": status,
        "legal_representative": owner[0] + "*" * (len(owner) - 1),
        "industry_code": d.choice(INDUSTRY_CODES[b.industry], "industry-code"),
        "entity_type": "个体工商户" if b.individual else "有限责任公司",
        "changes": [{"date": day.isoformat(), "item": item} for day, item in b.registry_changes() if day <= as_of],
    }


def enforcement(b: Business, as_of: date) -> Payload | None:
    cases = []
    for case in b.cases():
        if case.filed_on > as_of:
            continue
        is_open = case.closed_on is None or case.closed_on > as_of
        cases.append(
            {
                "case_no": case.case_no,
                "filed_on": case.filed_on.isoformat(),
                "amount": money(case.amount),
                "status": "open" if is_open else "closed",
                "dishonest": is_open and b.profile == "enforcement",
            }
        )
    return {"cases": sorted(cases, key=lambda c: str(c["filed_on"]))}


BUILDERS: dict[str, Callable[[Business, date], Payload | None]] = {
    "bureau": bureau,
    "tax": tax,
    "einvoice": einvoice,
    "merchant": merchant,
    "registry": registry,
    "enforcement": enforcement,
}
