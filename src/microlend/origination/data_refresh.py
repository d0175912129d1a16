"""Periodic re-pulls of external data for post-loan monitoring (贷后管理数据更新): each active borrower's
credit report, tax declarations, merchant flows and enforcement record asked again through the data gateway
(cached, costed and recorded like every call, purpose `post_loan_monitoring`), so the early-warning scan
reads fresh answers instead of the ones of the decision going stale.

The cohort (rolling): a borrower of an open credit line or an active loan whose sources have no answer (found
or not, any purpose) within the bank's `every_days` (default 30) is due; the most stale first, then by
customer id. A run asks only the sources that are stale, `IN_FLIGHT` borrowers at a time, and stops before a
borrower whose calls would take it past the run's budget (`max_calls` calls, `max_cost` in the bank's
currency at the providers' prices, counted for every call it may make): the rest wait for the next run.
A source that fails is recorded by the gateway as its status (unavailable, data error ...), never raised;
a borrower whose identity the gateway refuses is counted failed.

The consent rule (授权), exactly as the borrower gave it. Consents are per scope (`credit_report` for the
bureau, `external_data` for tax, e-invoice and merchant data), have no expiry (a consent stands until it is
revoked) and carry the version of the text the borrower agreed to, which says what the data is for. A
source is re-pulled for post-loan monitoring only under a standing consent, given by the borrower, to a text
version that names post-loan management (`POST_LOAN_TEXTS`): the credit-report text `credit_report/2026-11`
does ("在办理本人贷款申请、贷后管理期间" - while handling the application and managing the loan); the
first external-data text `external_data/2026-11` does not (it authorises querying "为评估本人贷款申请", to assess
the application), so tax and merchant data are not re-pulled under it; its successor `external_data/2026-11-30`
does (the same providers "在办理本人贷款申请、贷后管理期间"), so a borrower who agreed to it is re-pulled.
Enforcement, a public record, is re-pulled only for a borrower with at least one consent covering post-loan
monitoring. A due borrower with none is
skipped and counted (`skipped_no_consent`); nothing is asked about them.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.errors import DomainError, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.tenancy import business_date
from microlend.core.uow import UnitOfWork
from microlend.data import queries as data_queries
from microlend.data.gateway import CallStatus, Gateway, GatheredData
from microlend.data.provider_service import provider_settings
from microlend.data.providers.kinds import CONSENT_SCOPE, SUBJECT_KINDS
from microlend.origination import business_data
from microlend.origination.tables import DataRefreshSettingsRow
from microlend.parties import consents as party_consents
from microlend.parties import queries as parties
from microlend.servicing import queries as loans

PURPOSE = "post_loan_monitoring"
#: The sources the early-warning signals read, re-pulled in this order.
REFRESH_KINDS: tuple[str, ...] = ("bureau", "tax", "merchant", "enforcement")
#: Per consent scope, the text versions whose words cover post-loan monitoring (see the module's docstring).
POST_LOAN_TEXTS: Mapping[str, frozenset[str]] = {
    "credit_report": frozenset({"credit_report/2026-11"}),
    "external_data": frozenset({"external_data/2026-11-30"}),
}
MAX_EVERY_DAYS = 365
MAX_CALLS = 1_000_000
MAX_COST = Decimal("10000000")
#: Borrowers asked at once (each borrower's sources go in parallel inside the gateway besides).
IN_FLIGHT = 8
_BILLED = (CallStatus.OK, CallStatus.NOT_FOUND, CallStatus.UNAVAILABLE, CallStatus.DATA_ERROR)


@dataclass(frozen=True)
class RefreshSettings:
    every_days: int = 30
    max_calls: int = 2_000
    max_cost: Decimal = Decimal("2000.00")
    updated_by: str | None = None
    updated_at: datetime | None = None


DEFAULT_SETTINGS = RefreshSettings()


@dataclass(frozen=True)
class RefreshRun:
    business_date: date
    borrowers: int  # active borrowers of the bank
    skipped_no_consent: int  # due but no consent covering post-loan monitoring: nothing asked
    fresh: int  # every source that may be re-pulled answered within `every_days`
    due: int
    refreshed: int  # asked this run
    deferred: int  # due, left for the next run by the budget
    failed: int  # refused by the gateway before any call (e.g. an identity it cannot query)
    calls: int  # calls made to providers (cached answers are not calls)
    cached: int
    cost: Decimal
    statuses: dict[str, int] = field(default_factory=dict)
    stopped_by_budget: bool = False

    def facts(self) -> dict[str, Any]:
        return {"business_date": self.business_date.isoformat(), "borrowers": self.borrowers,
                "skipped_no_consent": self.skipped_no_consent, "fresh": self.fresh, "due": self.due,
                "refreshed": self.refreshed, "deferred": self.deferred, "failed": self.failed, "calls": self.calls,
                "cached": self.cached, "cost": str(self.cost), "stopped_by_budget": self.stopped_by_budget,
                **{f"status_{k}": v for k, v in sorted(self.statuses.items())}}


# --- settings ------------------------------------------------------------------------------------------------


def refresh_settings(uow: UnitOfWork, who: Principal) -> RefreshSettings:
    """The bank's re-pull settings (the defaults until it sets its own)."""
    with uow.read_only():
        row = uow.session.get(DataRefreshSettingsRow, who.tenant_id)
        if row is None:
            return DEFAULT_SETTINGS
        return RefreshSettings(row.every_days, row.max_calls, row.max_cost, row.updated_by, row.updated_at)


def _check(s: RefreshSettings) -> None:
    for name, top in (("every_days", MAX_EVERY_DAYS), ("max_calls", MAX_CALLS)):
        value = getattr(s, name)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise ValidationError(f"{name}: a whole number from 1 to {top}", field=name)
    if not isinstance(s.max_cost, Decimal) or not s.max_cost.is_finite() or not 0 < s.max_cost <= MAX_COST:
        raise ValidationError(f"max_cost: above 0 and at most {MAX_COST}", field="max_cost")
    if s.max_cost != s.max_cost.quantize(Decimal("0.01")):
        raise ValidationError("max_cost: at most 2 decimals", field="max_cost")


def update_refresh_settings(uow: UnitOfWork, who: Principal, settings: RefreshSettings) -> RefreshSettings:
    """Set how often borrowers are re-pulled and the budget of a run (whoever manages the data sources and
    their cost; audited)."""
    who.require(Permission.MANAGE_DATA_SOURCES)
    _check(settings)
    with uow:
        s = uow.session
        row = s.get(DataRefreshSettingsRow, who.tenant_id)
        before = None if row is None else {"every_days": row.every_days, "max_calls": row.max_calls,
                                           "max_cost": str(row.max_cost)}
        if row is None:
            row = DataRefreshSettingsRow(tenant_id=who.tenant_id)
            s.add(row)
        row.every_days, row.max_calls, row.max_cost = settings.every_days, settings.max_calls, settings.max_cost
        row.updated_at, row.updated_by = utcnow(), who.username
        s.flush()
        audit.record(s, who, "data_refresh_settings.update", "data_refresh_settings", who.tenant_id, before=before,
                     after={"every_days": settings.every_days, "max_calls": settings.max_calls,
                            "max_cost": str(settings.max_cost)})
        uow.commit()
    return refresh_settings(uow, who)


# --- the rule (pure) ---------------------------------------------------------------------------------------


def post_loan_scopes(consents: list[party_consents.Consent]) -> set[str]:
    """The scopes whose standing consent covers post-loan monitoring by the text version agreed to."""
    return {c.scope for c in consents if c.active and c.text_version in POST_LOAN_TEXTS.get(c.scope, frozenset())}


def allowed_kinds(subject_kind: str, scopes: set[str]) -> tuple[str, ...]:
    """The sources re-pulled about a subject under these post-loan scopes (none without any)."""
    if not scopes:
        return ()
    return tuple(k for k in REFRESH_KINDS if subject_kind in SUBJECT_KINDS[k]
                 and (CONSENT_SCOPE[k] is None or CONSENT_SCOPE[k] in scopes))


def stale_kinds(kinds: tuple[str, ...], answered: Mapping[str, datetime], cutoff: datetime) -> tuple[str, ...]:
    """Of `kinds`, those without an answer recorded at or after `cutoff`."""
    return tuple(k for k in kinds if k not in answered or answered[k] < cutoff)


# --- a run ---------------------------------------------------------------------------------------------------


def _active_borrowers(uow: UnitOfWork, who: Principal) -> list[int]:
    return sorted({c for _, _, c, _, _, _ in loans.behaviour_subjects(uow, who) if c is not None})


def _ask(uow: UnitOfWork, who: Principal, customer: int, kinds: tuple[str, ...], scopes: set[str], on: date,
         gateway: Gateway) -> GatheredData | None:
    """One borrower's stale sources through the gateway, in a unit of work of its own (a worker thread);
    None when the gateway refuses the borrower's identity before any call."""
    try:
        subject, subject_kind = parties.query_subject(uow, who, customer)
        return gateway.fetch(uow, who, subject, subject_kind, kinds, consents=scopes, purpose=PURPOSE, as_of=on)
    except DomainError:
        return None


def refresh(uow: UnitOfWork, who: Principal, on: date | None = None, *,
            settings: RefreshSettings | None = None) -> RefreshRun:
    """One run over the bank's due borrowers as of `on` (the bank's business date by default) within the
    bank's budget (or `settings`)."""
    who.require(Permission.DECIDE)
    who.require(Permission.VIEW_CUSTOMERS)
    if on is None:
        with uow:
            on = business_date(uow.session, who.tenant_id)
    settings = settings or refresh_settings(uow, who)
    borrowers = _active_borrowers(uow, who)
    kinds_of = {int(i): k for i, k, _ in parties.customer_kinds_and_attributes(uow, who, borrowers)}
    active = set(borrowers)
    indexes = {c: i for c, i in parties.subject_indexes(uow, who).items() if c in active}
    answered: dict[int, dict[str, datetime]] = {}
    for (customer, kind), at in data_queries.newest_answers(uow, who, indexes, REFRESH_KINDS).items():
        answered.setdefault(customer, {})[kind] = at
    prices = {p.kind: p.cost_per_call for p in provider_settings(uow, who) if p.configured and p.enabled}
    cutoff = datetime.combine(on - timedelta(days=settings.every_days - 1), time.min, tzinfo=UTC)

    def stale(customer: int, scopes: set[str]) -> tuple[str, ...]:
        allowed = allowed_kinds(kinds_of.get(customer, "person"), scopes)
        return tuple(k for k in stale_kinds(allowed, answered.get(customer, {}), cutoff) if k in prices)

    # set-based first: only a borrower with a stale source some consent could cover has their consents read
    coverable = {scope for scope, versions in POST_LOAN_TEXTS.items() if versions}
    candidates = [c for c in borrowers if stale(c, coverable)]
    standing = set().union(*(parties.customers_with_consent(uow, who, scope) for scope in coverable))
    never = datetime.min.replace(tzinfo=UTC)
    due: list[tuple[datetime, int, tuple[str, ...]]] = []
    scopes: dict[int, set[str]] = {}
    skipped = 0
    fresh = len(borrowers) - len(candidates)
    for customer in candidates:
        got = post_loan_scopes(party_consents.list_consents(uow, who, customer)) if customer in standing else set()
        if not got:
            skipped += 1
            continue
        kinds = stale(customer, got)
        if not kinds:
            fresh += 1
            continue
        scopes[customer] = got
        oldest = min((answered.get(customer, {}).get(k, never) for k in kinds), default=never)
        due.append((oldest, customer, kinds))
    due.sort()
    calls = cached = refreshed = failed = deferred = 0
    cost = Decimal(0)
    statuses: dict[str, int] = {}
    stopped = False
    gateway = business_data.gateway()
    reserved_calls, reserved_cost = 0, Decimal(0)
    with ThreadPoolExecutor(max_workers=IN_FLIGHT, thread_name_prefix="refresh") as pool:
        asked: list[Future[GatheredData | None]] = []
        for n, (_, customer, kinds) in enumerate(due):
            price = sum((prices[k] for k in kinds), Decimal(0))
            if reserved_calls + len(kinds) > settings.max_calls or reserved_cost + price > settings.max_cost:
                stopped, deferred = True, len(due) - n
                break
            reserved_calls, reserved_cost = reserved_calls + len(kinds), reserved_cost + price
            asked.append(pool.submit(_ask, uow.fresh(), who, customer, kinds, scopes[customer], on, gateway))
        for future in asked:
            gathered = future.result()
            if gathered is None:
                failed += 1
                continue
            refreshed += 1
            for result in gathered.results.values():
                statuses[result.status.value] = statuses.get(result.status.value, 0) + 1
                if result.cached:
                    cached += 1
                elif result.status in _BILLED:
                    calls += 1
            cost += gathered.cost
    run = RefreshRun(on, len(borrowers), skipped, fresh, len(due), refreshed, deferred,
                     failed, calls, cached, cost, statuses, stopped)
    with uow:
        audit.record(uow.session, who, "data_refresh.run", "data_refresh", 0, after=run.facts())
        uow.commit()
    return run
