"""Use cases around the external data providers: their settings per bank (the administrator sets them up),
the calls the gateway made (subjects masked) and what they cost."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Select, case, func, select, type_coerce

from microlend.core import audit, crypto
from microlend.core.clock import utcnow
from microlend.core.db import Amount
from microlend.core.errors import ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.money import MAX_AMOUNT, minor_unit
from microlend.core.tables import TenantRow
from microlend.core.uow import UnitOfWork
from microlend.data.gateway import CallStatus
from microlend.data.providers import KINDS
from microlend.data.tables import ProviderCallRow, ProviderSettingsRow

#: What a new provider starts with until the administrator says otherwise.
DEFAULTS: dict[str, Any] = {
    "timeout_ms": 3000,
    "retries": 1,
    "breaker_failures": 5,
    "breaker_seconds": 30,
    "cache_ttl_seconds": 600,
    "cost_per_call": Decimal(0),
    "enabled": True,
}
#: The bounds of each number a bank may set: (least, most).
BOUNDS: dict[str, tuple[int, int]] = {
    "timeout_ms": (50, 30_000),
    "retries": (0, 3),
    "breaker_failures": (1, 100),
    "breaker_seconds": (1, 3600),
    "cache_ttl_seconds": (0, 86_400),
}
MAX_COST_PER_CALL = Decimal("100000")


@dataclass(frozen=True)
class ProviderSetting:
    """A kind's settings as staff see them: whether an API key is set, never the key."""

    kind: str
    configured: bool
    base_url: str | None
    api_key_set: bool
    timeout_ms: int
    retries: int
    breaker_failures: int
    breaker_seconds: int
    cache_ttl_seconds: int
    cost_per_call: Decimal
    currency: str
    enabled: bool
    updated_at: datetime | None
    updated_by: str | None


@dataclass(frozen=True)
class ProviderChanges:
    """What to change (None: leave as it is). `api_key=""` removes the key."""

    base_url: str | None = None
    api_key: str | None = None
    timeout_ms: int | None = None
    retries: int | None = None
    breaker_failures: int | None = None
    breaker_seconds: int | None = None
    cache_ttl_seconds: int | None = None
    cost_per_call: Decimal | None = None
    enabled: bool | None = None


@dataclass(frozen=True)
class ProviderCall:
    id: int
    kind: str
    subject: str  # masked
    subject_kind: str
    as_of: Any
    purpose: str
    application_id: int | None
    called_by: str
    at: datetime
    status: str
    latency_ms: int
    cost: Decimal
    currency: str
    cached: bool
    http_status: int | None
    error: str | None
    has_payload: bool


@dataclass(frozen=True)
class CallFilters:
    kind: str | None = None
    status: str | None = None
    subject_id: str | None = None  # the full ID number; matched through its blind index
    application_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class CallPage:
    items: list[ProviderCall]
    total: int
    page: int
    page_size: int


@dataclass(frozen=True)
class KindUsage:
    """Calls of one kind since a moment: how many by status, cached, the cost, latency of real calls."""

    kind: str
    calls: int
    cached: int
    by_status: dict[str, int]
    cost: Decimal
    currency: str
    p50_latency_ms: int | None
    p99_latency_ms: int | None


def _currency(uow: UnitOfWork, tenant_id: int) -> str:
    return str(uow.session.execute(select(TenantRow.currency).where(TenantRow.id == tenant_id)).scalar_one())


def _view(kind: str, row: ProviderSettingsRow | None, currency: str) -> ProviderSetting:
    if row is None:
        return ProviderSetting(
            kind=kind,
            configured=False,
            base_url=None,
            api_key_set=False,
            currency=currency,
            updated_at=None,
            updated_by=None,
            **DEFAULTS,
        )
    return ProviderSetting(
        kind=kind,
        configured=True,
        base_url=row.base_url,
        api_key_set=bool(row.api_key),
        timeout_ms=row.timeout_ms,
        retries=row.retries,
        breaker_failures=row.breaker_failures,
        breaker_seconds=row.breaker_seconds,
        cache_ttl_seconds=row.cache_ttl_seconds,
        cost_per_call=row.cost_per_call,
        currency=row.currency,
        enabled=row.enabled,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def provider_settings(uow: UnitOfWork, who: Principal) -> list[ProviderSetting]:
    """Every kind, set up or not, in the usual order."""
    who.require(Permission.VIEW_DATA_SOURCES)
    with uow.read_only():
        rows = {
            r.kind: r
            for r in uow.session.execute(
                select(ProviderSettingsRow).where(ProviderSettingsRow.tenant_id == who.tenant_id)
            ).scalars()
        }
        currency = _currency(uow, who.tenant_id)
        return [_view(kind, rows.get(kind), currency) for kind in KINDS]


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValidationError(f"kind: unknown provider kind '{kind}' (one of {', '.join(KINDS)})", field="kind")


def _check_url(url: str) -> str:
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValidationError("base_url: not a valid address", field="base_url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("base_url: must be an http:// or https:// address with a host", field="base_url")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValidationError(
            "base_url: no query, fragment or credentials in the address (the API key goes in api_key)", field="base_url"
        )
    if len(url) > 500:
        raise ValidationError("base_url: at most 500 characters", field="base_url")
    return url.rstrip("/")


def _check_changes(changes: ProviderChanges, currency: str) -> None:
    for name, (low, high) in BOUNDS.items():
        value = getattr(changes, name)
        if value is not None and (isinstance(value, bool) or not low <= value <= high):
            raise ValidationError(f"{name}: must be between {low} and {high}", field=name)
    cost = changes.cost_per_call
    if cost is not None:
        if not cost.is_finite() or cost < 0 or cost > min(MAX_COST_PER_CALL, MAX_AMOUNT):
            raise ValidationError(f"cost_per_call: must be between 0 and {MAX_COST_PER_CALL}", field="cost_per_call")
        if cost != cost.quantize(Decimal(1).scaleb(-minor_unit(currency))):
            raise ValidationError(
                f"cost_per_call: at most {minor_unit(currency)} decimals in {currency}", field="cost_per_call"
            )
    key = changes.api_key
    if key is not None and (len(key) > 500 or key != key.strip() or any(c in key for c in "\r\n")):
        raise ValidationError(
            "api_key: at most 500 characters, no spaces around it and no line breaks", field="api_key"
        )


def _audit_view(row: ProviderSettingsRow) -> dict[str, Any]:
    return {
        "base_url": row.base_url,
        "api_key_set": bool(row.api_key),
        "timeout_ms": row.timeout_ms,
        "retries": row.retries,
        "breaker_failures": row.breaker_failures,
        "breaker_seconds": row.breaker_seconds,
        "cache_ttl_seconds": row.cache_ttl_seconds,
        "cost_per_call": str(row.cost_per_call),
        "currency": row.currency,
        "enabled": row.enabled,
    }


def set_provider(uow: UnitOfWork, who: Principal, kind: str, changes: ProviderChanges) -> ProviderSetting:
    """Set up or change how the bank reaches one kind of provider (audited; the key is stored encrypted and
    only whether one is set is ever shown)."""
    who.require(Permission.MANAGE_DATA_SOURCES)
    _check_kind(kind)
    base_url = None if changes.base_url is None else _check_url(changes.base_url)
    with uow:
        s = uow.session
        currency = _currency(uow, who.tenant_id)
        _check_changes(changes, currency)
        row = s.execute(
            select(ProviderSettingsRow).where(
                ProviderSettingsRow.tenant_id == who.tenant_id, ProviderSettingsRow.kind == kind
            )
        ).scalar_one_or_none()
        before = None if row is None else _audit_view(row)
        if row is None:
            if base_url is None:
                raise ValidationError("base_url: a new provider needs its address", field="base_url")
            row = ProviderSettingsRow(
                tenant_id=who.tenant_id, kind=kind, base_url=base_url, api_key=None, currency=currency, **DEFAULTS
            )
            s.add(row)
        for f in fields(ProviderChanges):
            value = getattr(changes, f.name)
            if value is None or f.name in ("base_url", "api_key"):
                continue
            setattr(row, f.name, value)
        if base_url is not None:
            row.base_url = base_url
        if changes.api_key is not None:
            row.api_key = crypto.encrypt(changes.api_key) if changes.api_key else None
        row.updated_at, row.updated_by = utcnow(), who.username
        s.flush()
        after = _audit_view(row)
        if changes.api_key is not None:
            after["api_key_changed"] = True
        audit.record(s, who, "data_provider.update", "data_provider", kind, before=before, after=after)
        view = _view(kind, row, currency)
        uow.commit()
    return view


def _call_view(row: ProviderCallRow) -> ProviderCall:
    return ProviderCall(
        id=row.id,
        kind=row.kind,
        subject=row.subject_masked,
        subject_kind=row.subject_kind,
        as_of=row.as_of,
        purpose=row.purpose,
        application_id=row.application_id,
        called_by=row.called_by,
        at=row.at,
        status=row.status,
        latency_ms=row.latency_ms,
        cost=row.cost,
        currency=row.currency,
        cached=row.cached,
        http_status=row.http_status,
        error=row.error,
        has_payload=row.payload is not None,
    )


def provider_calls(
    uow: UnitOfWork, who: Principal, filters: CallFilters | None = None, page: int = 1, page_size: int = 50
) -> CallPage:
    """The calls made, newest first, subjects masked (a full ID number finds its calls through the index)."""
    who.require(Permission.VIEW_DATA_SOURCES)
    f = filters or CallFilters()
    if not 1 <= page_size <= 200:
        raise ValidationError("page_size: must be between 1 and 200", field="page_size")
    if page < 1:
        raise ValidationError("page: must be 1 or more", field="page")
    if f.kind is not None:
        _check_kind(f.kind)
    if f.status is not None and f.status not in {s.value for s in CallStatus}:
        raise ValidationError(f"status: one of {', '.join(s.value for s in CallStatus)}", field="status")
    cond = [ProviderCallRow.tenant_id == who.tenant_id]
    if f.kind:
        cond.append(ProviderCallRow.kind == f.kind)
    if f.status:
        cond.append(ProviderCallRow.status == f.status)
    if f.subject_id:
        cond.append(ProviderCallRow.subject_index == crypto.blind_index(f.subject_id))
    if f.application_id is not None:
        cond.append(ProviderCallRow.application_id == f.application_id)
    if f.since is not None:
        cond.append(ProviderCallRow.at >= f.since)
    if f.until is not None:
        cond.append(ProviderCallRow.at < f.until)
    with uow.read_only():
        total = uow.session.execute(select(func.count()).select_from(ProviderCallRow).where(*cond)).scalar_one()
        rows = uow.session.execute(
            select(ProviderCallRow)
            .where(*cond)
            .order_by(ProviderCallRow.at.desc(), ProviderCallRow.id.desc())
            .offset((page - 1) * page_size)
            .limit(page_size)
        ).scalars()
        return CallPage([_call_view(r) for r in rows], int(total), page, page_size)


def _percentile(sorted_values: list[int], q: float) -> int | None:
    """The nearest-rank percentile."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * q // 1))  # ceil(n * q)
    return sorted_values[int(rank) - 1]


def provider_usage(uow: UnitOfWork, who: Principal, since: datetime) -> list[KindUsage]:
    """Per kind since a moment: calls, cached answers, calls by status, cost, p50/p99 latency of the calls
    that went out (cached answers and calls not made are left out of the latency)."""
    who.require(Permission.VIEW_DATA_SOURCES)
    mine = (ProviderCallRow.tenant_id == who.tenant_id, ProviderCallRow.at >= since)
    sent = [CallStatus.OK.value, CallStatus.NOT_FOUND.value, CallStatus.UNAVAILABLE.value, CallStatus.DATA_ERROR.value]
    c = ProviderCallRow
    with uow.read_only():
        currency = _currency(uow, who.tenant_id)
        groups = uow.session.execute(
            select(c.kind, c.status, c.cached, func.count(), type_coerce(func.sum(c.cost), Amount()))
            .where(*mine)
            .group_by(c.kind, c.status, c.cached)
        ).all()
        # the latencies of the calls that went out, for the percentiles
        latencies: dict[str, list[int]] = {kind: [] for kind in KINDS}
        for kind, latency in uow.session.execute(
            select(c.kind, c.latency_ms).where(*mine, c.cached.is_(False), c.status.in_(sent), c.latency_ms > 0)
        ):
            latencies.setdefault(kind, []).append(int(latency))
    out = []
    for kind in KINDS:
        by_status: dict[str, int] = {}
        calls = cached = 0
        cost = Decimal(0)
        for _, status, was_cached, n, total in (g for g in groups if g[0] == kind):
            by_status[status] = by_status.get(status, 0) + int(n)
            calls += int(n or 0)
            cached += int(n) if was_cached else 0
            cost += total or Decimal(0)
        ordered = sorted(latencies[kind])
        out.append(
            KindUsage(
                kind=kind,
                calls=calls,
                cached=cached,
                by_status=by_status,
                cost=cost,
                currency=currency,
                p50_latency_ms=_percentile(ordered, 0.5),
                p99_latency_ms=_percentile(ordered, 0.99),
            )
        )
    return out


@dataclass(frozen=True)
class ProviderCosts:
    """What the bank's calls to external providers cost over a period: in all, by kind and by application
    (calls not linked to an application count in the total and by kind only). `calls` counts the calls
    made or answered from the cache, not the ones the gateway did not make (no consent, not set up)."""

    total: Decimal
    calls: int
    by_kind: dict[str, Decimal]
    by_application: dict[int, Decimal]
    currency: str


_SENT = [s.value for s in (CallStatus.OK, CallStatus.NOT_FOUND, CallStatus.UNAVAILABLE, CallStatus.DATA_ERROR)]


def provider_costs(
    uow: UnitOfWork,
    who: Principal,
    *,
    application_ids: Sequence[int] | Select[Any] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> ProviderCosts:
    """The cost of the caller's bank's provider calls in [since, until), of the given applications only when
    `application_ids` is given (a list or a sub-select of the caller's own): one grouped query."""
    who.require(Permission.VIEW_DATA_SOURCES)
    c = ProviderCallRow
    cond = [c.tenant_id == who.tenant_id]
    if since is not None:
        cond.append(c.at >= since)
    if until is not None:
        cond.append(c.at < until)
    if application_ids is not None:
        ids = application_ids if isinstance(application_ids, Select) else sorted({int(i) for i in application_ids})
        cond.append(c.application_id.in_(ids))
    with uow.read_only():
        currency = _currency(uow, who.tenant_id)
        groups = uow.session.execute(
            select(c.kind, c.application_id, func.sum(case((c.status.in_(_SENT), 1), else_=0)),
                   type_coerce(func.sum(c.cost), Amount()))
            .where(*cond)
            .group_by(c.kind, c.application_id)
        ).all()
    by_kind: dict[str, Decimal] = {}
    by_application: dict[int, Decimal] = {}
    total, calls = Decimal(0), 0
    for kind, application_id, n, cost in groups:
        cost = cost or Decimal(0)
        total += cost
        calls += int(n or 0)
        by_kind[kind] = by_kind.get(kind, Decimal(0)) + cost
        if application_id is not None:
            by_application[int(application_id)] = by_application.get(int(application_id), Decimal(0)) + cost
    return ProviderCosts(total, calls, by_kind, by_application, currency)
