"""单笔贷款运营成本: what the bank spends to make and run a loan (external data, decision and servicing CPU,
staff time on referred cases), per loan disbursed, beside a leading digital bank's reported figure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from microlend.api.deps import CurrentPrincipal, UnitOfWorkDep
from microlend.api.routing import api_router
from microlend.api.schemas import DecimalStr, MoneyStr
from microlend.core.clock import utcnow
from microlend.origination import unit_cost as svc

router = api_router(prefix="/api/v1/unit-cost", tags=["unit cost"])


class AssumptionsPublic(BaseModel):
    """What an hour of CPU and of staff time is taken to cost, and the minutes per action on a referred case."""

    cpu_hour_cost: DecimalStr
    staff_hour_cost: DecimalStr
    recommend_minutes: int
    decide_minutes: int
    field_visit_minutes: int
    reference_per_loan: DecimalStr
    days_per_month: DecimalStr


class UnitCostPublic(BaseModel):
    """The bank's operating cost over [since, until): its parts, the total and the cost per loan disbursed
    (`cost_per_loan` is null before the first loan). Amounts are rounded to the cent on the wire only."""

    since: datetime
    until: datetime
    currency: str
    applications: int
    decided: int
    loans_disbursed: int
    provider_calls: int
    provider_cost: MoneyStr
    provider_by_kind: dict[str, MoneyStr]
    decision_cpu_ms: int
    decision_cost: MoneyStr
    referred_cases: int
    staff_recommendations: int
    staff_decisions: int
    staff_field_visits: int
    staff_minutes: int
    staff_cost: MoneyStr
    servicing_cpu_ms: int
    servicing_loan_days: int
    servicing_cpu_ms_per_loan_month: DecimalStr | None
    servicing_cost: MoneyStr
    total: MoneyStr
    cost_per_loan: DecimalStr | None
    reference_per_loan: DecimalStr
    assumptions: AssumptionsPublic

    @classmethod
    def of(cls, c: svc.UnitCost) -> UnitCostPublic:
        a = c.assumptions
        per_month = c.cpu_ms_per_loan_month
        return cls(
            since=c.since,
            until=c.until,
            currency=c.currency,
            applications=c.applications,
            decided=c.decided,
            loans_disbursed=c.loans_disbursed,
            provider_calls=c.provider_calls,
            provider_cost=c.provider_cost,
            provider_by_kind=c.provider_by_kind,
            decision_cpu_ms=c.decision_cpu_ms,
            decision_cost=c.decision_cost,
            referred_cases=c.staff.cases,
            staff_recommendations=c.staff.recommendations,
            staff_decisions=c.staff.decisions,
            staff_field_visits=c.staff.field_visits,
            staff_minutes=c.staff_minutes,
            staff_cost=c.staff_cost,
            servicing_cpu_ms=c.servicing_cpu_ms,
            servicing_loan_days=c.servicing_loan_days,
            servicing_cpu_ms_per_loan_month=None if per_month is None else per_month.quantize(Decimal("0.01")),
            servicing_cost=c.servicing_cost,
            total=c.total,
            cost_per_loan=None if c.per_loan is None else c.per_loan.quantize(Decimal("0.0001")),
            reference_per_loan=a.reference_per_loan,
            assumptions=AssumptionsPublic(
                cpu_hour_cost=a.cpu_hour_cost,
                staff_hour_cost=a.staff_hour_cost,
                recommend_minutes=a.recommend_minutes,
                decide_minutes=a.decide_minutes,
                field_visit_minutes=a.field_visit_minutes,
                reference_per_loan=a.reference_per_loan,
                days_per_month=a.days_per_month,
            ),
        )


class CostSettingsPublic(AssumptionsPublic):
    """The bank's unit-cost assumptions (`updated_by` null: the defaults, never set)."""

    updated_by: str | None
    updated_at: datetime | None

    @classmethod
    def of(cls, a: svc.CostAssumptions) -> CostSettingsPublic:
        return cls(
            cpu_hour_cost=a.cpu_hour_cost,
            staff_hour_cost=a.staff_hour_cost,
            recommend_minutes=a.recommend_minutes,
            decide_minutes=a.decide_minutes,
            field_visit_minutes=a.field_visit_minutes,
            reference_per_loan=a.reference_per_loan,
            days_per_month=a.days_per_month,
            updated_by=a.updated_by,
            updated_at=a.updated_at,
        )


class CostSettingsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cpu_hour_cost: Decimal = Field(description="CNY an hour of CPU costs (e.g. a cloud vCPU-hour: '0.50')")
    staff_hour_cost: Decimal = Field(description="CNY an hour of a loan officer's or approver's time costs")
    recommend_minutes: int = Field(description="minutes an officer's review and recommendation take")
    decide_minutes: int = Field(description="minutes each approval, or a person's decline, takes")
    field_visit_minutes: int = Field(description="minutes a field visit (实地走访) takes")
    reference_per_loan: Decimal = Field(description="the reference cost per loan shown beside the bank's")

    @field_validator("cpu_hour_cost", "staff_hour_cost", "reference_per_loan", mode="before")
    @classmethod
    def _no_float(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError("send amounts as decimal strings, not floating point")
        return value


@router.get("/settings")
def get_cost_settings(who: CurrentPrincipal, uow: UnitOfWorkDep) -> CostSettingsPublic:
    return CostSettingsPublic.of(svc.read_cost_settings(uow, who))


@router.put("/settings")
def put_cost_settings(body: CostSettingsUpdate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> CostSettingsPublic:
    """What the bank takes an hour of CPU and of staff time to cost, and the minutes per action on a
    referred case; the unit cost reads them from now on."""
    settings = svc.CostAssumptions(
        cpu_hour_cost=body.cpu_hour_cost,
        staff_hour_cost=body.staff_hour_cost,
        recommend_minutes=body.recommend_minutes,
        decide_minutes=body.decide_minutes,
        field_visit_minutes=body.field_visit_minutes,
        reference_per_loan=body.reference_per_loan,
    )
    return CostSettingsPublic.of(svc.update_cost_settings(uow, who, settings))


def _aware(moment: datetime | None) -> datetime | None:
    """A moment without a zone is read as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@router.get("")
def get_unit_cost(
    who: CurrentPrincipal,
    uow: UnitOfWorkDep,
    since: Annotated[datetime | None, Query(description="from this moment (default: 30 days before until)")] = None,
    until: Annotated[datetime | None, Query(description="up to this moment, excluded (default: now)")] = None,
) -> UnitCostPublic:
    """The bank's operating cost per loan disbursed over a period, with its parts and the assumptions."""
    end = _aware(until) or utcnow()
    start = _aware(since) or end - timedelta(days=30)
    return UnitCostPublic.of(svc.unit_cost(uow, who, start, end))
