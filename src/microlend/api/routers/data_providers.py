"""External data providers API (外部数据源): how the bank reaches each kind (the administrator sets it up;
the API key goes in and never comes out), the calls the gateway made, and what they cost."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from microlend.api.deps import CurrentPrincipal, Id, Page, PageSize, UnitOfWorkDep
from microlend.api.references import ApplicationQuery
from microlend.api.routing import api_router
from microlend.api.schemas import MoneyStr, PublicSchema
from microlend.core.clock import utcnow
from microlend.data import provider_service as svc
from microlend.data.gateway import payload_of

router = api_router(prefix="/api/v1/data", tags=["data providers"])

Kind = Literal["bureau", "tax", "einvoice", "merchant", "registry", "enforcement"]
Status = Literal["ok", "not_found", "unavailable", "data_error", "no_consent", "not_configured"]


class ProviderPublic(PublicSchema):
    kind: str
    configured: bool
    base_url: str | None
    api_key_set: bool
    timeout_ms: int
    retries: int
    breaker_failures: int
    breaker_seconds: int
    cache_ttl_seconds: int
    cost_per_call: MoneyStr
    currency: str
    enabled: bool
    updated_at: datetime | None
    updated_by: str | None


class ProviderUpdate(BaseModel):
    """What to change; a field left out stays as it is. `api_key: ""` removes the key."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(default=None, max_length=500, description="http:// or https:// address")
    api_key: str | None = Field(default=None, max_length=500, description="write-only: never shown again")
    timeout_ms: int | None = Field(default=None, ge=50, le=30_000)
    retries: int | None = Field(default=None, ge=0, le=3)
    breaker_failures: int | None = Field(default=None, ge=1, le=100)
    breaker_seconds: int | None = Field(default=None, ge=1, le=3600)
    cache_ttl_seconds: int | None = Field(default=None, ge=0, le=86_400)
    cost_per_call: Decimal | None = Field(default=None, ge=0, le=100_000, description="in the bank's currency")
    enabled: bool | None = None

    @field_validator("cost_per_call", mode="before")
    @classmethod
    def _no_float(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError("send amounts as decimal strings, not floating point")
        return value


class CallPublic(PublicSchema):
    id: int
    kind: str
    subject: str
    subject_kind: str
    as_of: date | None
    purpose: str
    application_id: int | None
    called_by: str
    at: datetime
    status: str
    latency_ms: int
    cost: MoneyStr
    currency: str
    cached: bool
    http_status: int | None
    error: str | None
    has_payload: bool


class CallPagePublic(BaseModel):
    items: list[CallPublic]
    total: int
    page: int
    page_size: int


class UsagePublic(PublicSchema):
    kind: str
    calls: int
    cached: int
    by_status: dict[str, int]
    cost: MoneyStr
    currency: str
    p50_latency_ms: int | None
    p99_latency_ms: int | None


@router.get("/providers")
def list_providers(who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[ProviderPublic]:
    """Every kind, set up or not; whether an API key is set, never the key."""
    return [ProviderPublic.of(p) for p in svc.provider_settings(uow, who)]


@router.get("/providers/{kind}")
def get_provider(kind: Kind, who: CurrentPrincipal, uow: UnitOfWorkDep) -> ProviderPublic:
    return ProviderPublic.of(next(p for p in svc.provider_settings(uow, who) if p.kind == kind))


@router.put("/providers/{kind}")
def put_provider(kind: Kind, body: ProviderUpdate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> ProviderPublic:
    """Set up or change one kind's provider (a new one needs `base_url`)."""
    changes = svc.ProviderChanges(**body.model_dump(exclude_unset=True))
    return ProviderPublic.of(svc.set_provider(uow, who, kind, changes))


@router.get("/provider-calls")
def list_provider_calls(
    who: CurrentPrincipal,
    uow: UnitOfWorkDep,
    kind: Kind | None = None,
    status: Status | None = None,
    subject: Annotated[str | None, Query(max_length=18, description="a full ID number or USCC")] = None,
    application_id: ApplicationQuery = None,
    since: datetime | None = None,
    until: datetime | None = None,
    page: Page = 1,
    page_size: PageSize = 50,
) -> CallPagePublic:
    """The calls the gateway made (and the ones it did not make, with why), newest first; subjects masked."""
    filters = svc.CallFilters(
        kind=kind,
        status=status,
        subject_id=subject,
        application_id=application_id,
        since=_aware(since),
        until=_aware(until),
    )
    result = svc.provider_calls(uow, who, filters, page, page_size)
    return CallPagePublic(
        items=[CallPublic.of(c) for c in result.items], total=result.total, page=result.page, page_size=result.page_size
    )


class PayloadPublic(BaseModel):
    """A call's recorded answer exactly as the provider sent it (`masked`: ID numbers and mobiles masked for a
    caller who may not see personal data), with the SHA-256 recorded when it arrived."""

    call_id: int
    kind: str
    sha256: str
    masked: bool
    payload: str


@router.get("/provider-calls/{call_id}/payload")
def provider_call_payload(call_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> PayloadPublic:
    """Replay what a provider answered in a call (to re-run a decision or settle a dispute)."""
    p = payload_of(uow, who, call_id)
    return PayloadPublic(call_id=p.call_id, kind=p.kind, sha256=p.sha256, masked=p.masked, payload=p.text)


@router.get("/provider-usage")
def provider_usage(
    who: CurrentPrincipal,
    uow: UnitOfWorkDep,
    since: Annotated[datetime | None, Query(description="from this moment (default: 30 days ago)")] = None,
) -> list[UsagePublic]:
    """Per kind: calls, cached answers, calls by status, cost and p50/p99 latency."""
    start = _aware(since) or utcnow() - timedelta(days=30)
    return [UsagePublic.of(u) for u in svc.provider_usage(uow, who, start)]


def _aware(moment: datetime | None) -> datetime | None:
    """A moment without a zone is read as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
