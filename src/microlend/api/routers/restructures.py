"""Extension and restructuring API (展期/重组) with four eyes: an officer asks, a second person with the authority
approves (the new schedule replaces the remaining one) or rejects. Thin: parse, call the service, shape the
answer."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from microlend.api.deps import CurrentPrincipal, Id, Limit, Offset, OptionalId, UnitOfWorkDep
from microlend.api.routers.servicing import AmountStr, ReasonBody
from microlend.api.routing import api_router
from microlend.api.schemas import DecimalStr, MoneyStr, PublicSchema
from microlend.core.money import parse_amount
from microlend.servicing import service
from microlend.servicing.restructuring import RestructureKind, RestructureTerms

router = api_router(prefix="/api/v1", tags=["servicing"])


class RestructureCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["extension", "restructure"] = Field(description="extension (展期) or restructure (重组)")
    term_months: int = Field(ge=1, le=360, description="installments of the new schedule, from the approval day")
    annual_rate: AmountStr | None = Field(default=None, description="a new yearly rate; omit to keep the loan's")
    capitalise_arrears: bool = Field(default=False, description="欠息转本: overdue principal, interest and "
                                     "penalty join the new principal")
    reason: str = Field(min_length=1, max_length=500)

    def terms(self) -> RestructureTerms:
        rate = parse_amount(self.annual_rate, "annual_rate") if self.annual_rate is not None else None
        return RestructureTerms(RestructureKind(self.kind), self.term_months, rate, self.capitalise_arrears)


class RestructurePublic(PublicSchema):
    id: int
    loan_id: int
    kind: str = Field(description="extension | restructure")
    status: str = Field(description="pending | approved | rejected")
    term_months: int
    annual_rate: DecimalStr | None
    capitalise_arrears: bool
    reason: str
    loan_class: str
    days_past_due: int
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str
    effective_on: date | None
    restructured: bool = Field(description="counts as a restructured loan (重组): at least substandard until "
                               "observe_until")
    observe_until: date | None
    principal: MoneyStr
    capitalised: MoneyStr
    maturity_before: date | None
    maturity_after: date | None
    journal_entry_id: int | None


@router.post("/loans/{loan_id}/restructure", status_code=202)
def request_restructure(loan_id: Id, body: RestructureCreate, who: CurrentPrincipal,
                        uow: UnitOfWorkDep) -> RestructurePublic:
    """Ask for a loan to be extended or restructured: 202, a pending request a second person decides."""
    return RestructurePublic.of(service.request_restructure(uow, who, loan_id, body.terms(), body.reason))


@router.get("/restructures")
def list_restructures(
    who: CurrentPrincipal, uow: UnitOfWorkDep, limit: Limit = 100, offset: Offset = 0,
    status: Literal["pending", "approved", "rejected"] | None = Query(default=None),
    loan_id: OptionalId = None,
) -> list[RestructurePublic]:
    return [RestructurePublic.of(v) for v in service.list_restructures(uow, who, status=status, loan_id=loan_id,
                                                                       limit=limit, offset=offset)]


@router.get("/restructures/{restructure_id}")
def get_restructure(restructure_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> RestructurePublic:
    return RestructurePublic.of(service.get_restructure(uow, who, restructure_id))


@router.post("/restructures/{restructure_id}/approve", status_code=201)
def approve_restructure(restructure_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> RestructurePublic:
    """四眼 a second person with the authority approves: the new schedule replaces the remaining one today."""
    return RestructurePublic.of(service.approve_restructure(uow, who, restructure_id))


@router.post("/restructures/{restructure_id}/reject", status_code=201)
def reject_restructure(restructure_id: Id, body: ReasonBody, who: CurrentPrincipal,
                       uow: UnitOfWorkDep) -> RestructurePublic:
    return RestructurePublic.of(service.reject_restructure(uow, who, restructure_id, body.reason))
