"""单笔贷款运营成本 what one loan costs the bank to run, measured: the external data calls (priced per call by
each provider's settings; declined applications' calls are paid too), the CPU time of the automated decisions
and of the closes of business that service the loans, and the time staff spent on referred cases.

CPU and staff time are measured or counted; what an hour of either costs is an assumption, stated with the
figures (`CostAssumptions`). A leading digital bank reports about 2.30 CNY of operating cost per micro-loan;
the figure is shown beside it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.errors import NotFound, ValidationError
from microlend.core.identity import Permission, Principal, system_principal
from microlend.core.uow import UnitOfWork
from microlend.data import provider_service
from microlend.origination.applications import Status
from microlend.origination.assist import DECIDED_STATUSES
from microlend.origination.service import ensure_staff
from microlend.origination.tables import ApplicationRow, UnitCostSettingsRow
from microlend.servicing import queries as loan_queries

_MS_PER_HOUR = Decimal(3_600_000)


@dataclass(frozen=True)
class CostAssumptions:
    """What an hour of CPU and of staff time costs, and how long each action on a referred case takes."""

    cpu_hour_cost: Decimal = Decimal("0.50")  # a cloud vCPU-hour, CNY
    staff_hour_cost: Decimal = Decimal("60")  # a loan officer's or approver's hour, CNY
    recommend_minutes: int = 20  # an officer's review and recommendation
    decide_minutes: int = 10  # each approval, or a person's decline
    field_visit_minutes: int = 60  # 实地走访
    reference_per_loan: Decimal = Decimal("2.30")  # a leading digital bank's reported cost per micro-loan
    days_per_month: Decimal = Decimal("30.4")
    updated_by: str | None = field(default=None, compare=False)
    updated_at: datetime | None = field(default=None, compare=False)

    def cpu_cost(self, cpu_ms: Decimal | int) -> Decimal:
        return Decimal(cpu_ms) * self.cpu_hour_cost / _MS_PER_HOUR

    def staff_cost(self, minutes: int) -> Decimal:
        return Decimal(minutes) * self.staff_hour_cost / 60


DEFAULT_ASSUMPTIONS = CostAssumptions()
#: The most an hour may be taken to cost, and the most minutes one action may take.
MAX_HOUR_COST = Decimal("100000")
MAX_MINUTES = 24 * 60
_MONEY_FIELDS = ("cpu_hour_cost", "staff_hour_cost", "reference_per_loan")
_MINUTE_FIELDS = ("recommend_minutes", "decide_minutes", "field_visit_minutes")


def _plain(value: Decimal) -> Decimal:
    """A stored amount without its trailing zeros ('120.0000' -> '120', '0.5000' -> '0.5')."""
    return Decimal(format(value.normalize(), "f"))


def cost_assumptions(uow: UnitOfWork, who: Principal) -> CostAssumptions:
    """The caller's bank's assumptions (the defaults until it sets its own)."""
    with uow.read_only():
        row = uow.session.get(UnitCostSettingsRow, who.tenant_id)
        if row is None:
            return DEFAULT_ASSUMPTIONS
        return CostAssumptions(
            cpu_hour_cost=_plain(row.cpu_hour_cost),
            staff_hour_cost=_plain(row.staff_hour_cost),
            recommend_minutes=row.recommend_minutes,
            decide_minutes=row.decide_minutes,
            field_visit_minutes=row.field_visit_minutes,
            reference_per_loan=_plain(row.reference_per_loan),
            updated_by=row.updated_by,
            updated_at=row.updated_at,
        )


def read_cost_settings(uow: UnitOfWork, who: Principal) -> CostAssumptions:
    """The bank's unit-cost assumptions, for staff who read its credit policies."""
    who.require(Permission.VIEW_POLICIES)
    return cost_assumptions(uow, who)


def _check(a: CostAssumptions) -> None:
    for name in _MONEY_FIELDS:
        value: Decimal = getattr(a, name)
        if not value.is_finite() or not Decimal(0) <= value <= MAX_HOUR_COST:
            raise ValidationError(f"{name}: must be between 0 and {MAX_HOUR_COST}", field=name)
        if value != value.quantize(Decimal("0.0001")):
            raise ValidationError(f"{name}: at most 4 decimals", field=name)
    if a.reference_per_loan <= 0:
        raise ValidationError("reference_per_loan: must be above 0", field="reference_per_loan")
    for name in _MINUTE_FIELDS:
        minutes = getattr(a, name)
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 0 <= minutes <= MAX_MINUTES:
            raise ValidationError(f"{name}: whole minutes between 0 and {MAX_MINUTES}", field=name)


def _settings_view(row: UnitCostSettingsRow) -> dict[str, Any]:
    return {**{n: str(getattr(row, n)) for n in _MONEY_FIELDS}, **{n: getattr(row, n) for n in _MINUTE_FIELDS}}


def update_cost_settings(uow: UnitOfWork, who: Principal, settings: CostAssumptions) -> CostAssumptions:
    """Set what the bank takes an hour of CPU and of staff time to cost, and the minutes per action on a
    referred case (audited); the unit cost reads them from now on, over any period."""
    who.require(Permission.PUBLISH_POLICIES)
    _check(settings)
    with uow:
        s = uow.session
        row = s.get(UnitCostSettingsRow, who.tenant_id)
        before = None if row is None else _settings_view(row)
        if row is None:
            row = UnitCostSettingsRow(tenant_id=who.tenant_id)
            s.add(row)
        for name in (*_MONEY_FIELDS, *_MINUTE_FIELDS):
            setattr(row, name, getattr(settings, name))
        row.updated_at, row.updated_by = utcnow(), who.username
        s.flush()
        audit.record(
            s,
            who,
            "unit_cost_settings.update",
            "unit_cost_settings",
            who.tenant_id,
            before=before,
            after=_settings_view(row),
        )
        uow.commit()
    return cost_assumptions(uow, who)


@dataclass(frozen=True)
class StaffActions:
    """What people did on referred cases: recommendations, approvals or declines, field visits."""

    cases: int = 0
    recommendations: int = 0
    decisions: int = 0
    field_visits: int = 0

    def minutes(self, a: CostAssumptions) -> int:
        return (
            self.recommendations * a.recommend_minutes
            + self.decisions * a.decide_minutes
            + self.field_visits * a.field_visit_minutes
        )

    def __add__(self, other: StaffActions) -> StaffActions:
        return StaffActions(
            self.cases + other.cases,
            self.recommendations + other.recommendations,
            self.decisions + other.decisions,
            self.field_visits + other.field_visits,
        )


def staff_actions(
    status: str,
    automatic: bool,
    recommended_by: int | None,
    approvals: list[int] | None,
    field_visit: dict[str, Any] | None,
) -> StaffActions:
    """The actions people took on one application, from what its row records."""
    if recommended_by is None:
        return StaffActions()
    declined_by_person = status == Status.DECLINED and not automatic
    return StaffActions(
        cases=1,
        recommendations=1,
        decisions=len(approvals or []) + (1 if declined_by_person else 0),
        field_visits=1 if field_visit else 0,
    )


@dataclass(frozen=True)
class UnitCost:
    """The bank's operating cost over [since, until) and per loan disbursed, with its parts."""

    since: datetime
    until: datetime
    currency: str
    assumptions: CostAssumptions
    applications: int
    decided: int
    loans_disbursed: int
    provider_calls: int
    provider_cost: Decimal
    provider_by_kind: dict[str, Decimal]
    decision_cpu_ms: int
    decision_cost: Decimal
    staff: StaffActions
    staff_minutes: int
    staff_cost: Decimal
    servicing_cpu_ms: int
    servicing_loan_days: int
    servicing_cost: Decimal
    parts: list[tuple[str, Decimal]] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return self.provider_cost + self.decision_cost + self.staff_cost + self.servicing_cost

    @property
    def per_loan(self) -> Decimal | None:
        """The cost per loan disbursed (None before the first loan)."""
        return self.total / self.loans_disbursed if self.loans_disbursed else None

    @property
    def cpu_ms_per_loan_month(self) -> Decimal | None:
        if not self.servicing_loan_days:
            return None
        return Decimal(self.servicing_cpu_ms) / self.servicing_loan_days * self.assumptions.days_per_month

    @property
    def servicing_cost_per_loan_month(self) -> Decimal | None:
        per = self.cpu_ms_per_loan_month
        return None if per is None else self.assumptions.cpu_cost(per)

    def share(self, part: Decimal) -> Decimal:
        """A part's share of the total, 0..1."""
        return part / self.total if self.total else Decimal(0)


def _parts(provider: Decimal, decision: Decimal, staff: Decimal, servicing: Decimal) -> list[tuple[str, Decimal]]:
    return [("provider", provider), ("decision", decision), ("staff", staff), ("servicing", servicing)]


def _check_period(since: datetime, until: datetime) -> None:
    if since.tzinfo is None or until.tzinfo is None:
        raise ValidationError("since: give moments with their time zone", field="since")
    if until <= since:
        raise ValidationError("until: must be after since", field="until")


def unit_cost(
    uow: UnitOfWork,
    who: Principal,
    since: datetime,
    until: datetime,
    assumptions: CostAssumptions | None = None,
) -> UnitCost:
    """The bank's cost over [since, until): provider calls made in it (every application's, declined ones
    too, and calls no application asked for), the decisions' CPU and staff time of applications submitted in
    it, and the CPU of the closes of business run in it; per loan disbursed in it."""
    who.require(Permission.VIEW_APPLICATIONS)
    ensure_staff(who)
    _check_period(since, until)
    a = assumptions or cost_assumptions(uow, who)
    system = system_principal(who.tenant_id, "unit-cost")
    costs = provider_service.provider_costs(uow, system, since=since, until=until)
    cob = loan_queries.close_of_business_cpu(uow, who, since=since, until=until)
    app = ApplicationRow
    mine = (app.tenant_id == who.tenant_id, app.submitted_at >= since, app.submitted_at < until)
    with uow.read_only():
        s = uow.session
        submitted, decided, cpu_ms = s.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((app.status.in_([st.value for st in DECIDED_STATUSES]), 1), else_=0)), 0),
                func.coalesce(func.sum(app.decision_cpu_ms), 0),
            ).where(*mine)
        ).one()
        disbursed = s.execute(
            select(func.count()).where(
                app.tenant_id == who.tenant_id, app.disbursed_at >= since, app.disbursed_at < until
            )
        ).scalar_one()
        staff = StaffActions()
        for row in s.execute(
            select(app.status, app.automatic, app.recommended_by, app.approvals, app.field_visit).where(
                *mine, app.recommended_by.is_not(None)
            )
        ):
            staff = staff + staff_actions(*row)
    minutes = staff.minutes(a)
    decision_cost, staff_cost = a.cpu_cost(int(cpu_ms)), a.staff_cost(minutes)
    servicing_cost = a.cpu_cost(cob.cpu_ms)
    return UnitCost(
        since=since,
        until=until,
        currency=costs.currency,
        assumptions=a,
        applications=int(submitted),
        decided=int(decided),
        loans_disbursed=int(disbursed),
        provider_calls=costs.calls,
        provider_cost=costs.total,
        provider_by_kind=costs.by_kind,
        decision_cpu_ms=int(cpu_ms),
        decision_cost=decision_cost,
        staff=staff,
        staff_minutes=minutes,
        staff_cost=staff_cost,
        servicing_cpu_ms=cob.cpu_ms,
        servicing_loan_days=cob.loan_days,
        servicing_cost=servicing_cost,
        parts=_parts(costs.total, decision_cost, staff_cost, servicing_cost),
    )


@dataclass(frozen=True)
class LoanCost:
    """What one application (and its loan, so far) has cost the bank."""

    application_id: int
    currency: str
    assumptions: CostAssumptions
    provider_cost: Decimal
    provider_by_kind: dict[str, Decimal]
    decision_cpu_ms: int | None
    decision_cost: Decimal
    staff: StaffActions
    staff_minutes: int
    staff_cost: Decimal
    loan_days: int
    cpu_ms_per_loan_day: Decimal | None
    servicing_cost: Decimal

    @property
    def months_on_book(self) -> Decimal:
        return Decimal(self.loan_days) / self.assumptions.days_per_month

    @property
    def total(self) -> Decimal:
        return self.provider_cost + self.decision_cost + self.staff_cost + self.servicing_cost


def loan_cost(
    uow: UnitOfWork, who: Principal, application_id: int, assumptions: CostAssumptions | None = None
) -> LoanCost:
    """One application's provider calls, its decision's CPU, the staff time on it, and its loan's servicing
    so far: the closes of business it went through × the bank's CPU per loan-day."""
    who.require(Permission.VIEW_APPLICATIONS)
    ensure_staff(who)
    a = assumptions or cost_assumptions(uow, who)
    with uow.read_only():
        row = uow.session.execute(
            select(
                ApplicationRow.status,
                ApplicationRow.automatic,
                ApplicationRow.recommended_by,
                ApplicationRow.approvals,
                ApplicationRow.field_visit,
                ApplicationRow.decision_cpu_ms,
                ApplicationRow.loan_id,
                ApplicationRow.credit_line_id,
            ).where(ApplicationRow.tenant_id == who.tenant_id, ApplicationRow.id == application_id)
        ).one_or_none()
    if row is None:
        raise NotFound(f"application {application_id} not found")
    status, automatic, recommended_by, approvals, field_visit, cpu_ms, loan_id, credit_line_id = row
    costs = provider_service.provider_costs(
        uow, system_principal(who.tenant_id, "unit-cost"), application_ids=[application_id]
    )
    staff = staff_actions(status, automatic, recommended_by, approvals, field_visit)
    days = loan_queries.loan_days(uow, who, loan_id=loan_id, credit_line_id=credit_line_id)
    cob = loan_queries.close_of_business_cpu(uow, who)
    per_day = Decimal(cob.cpu_ms) / cob.loan_days if cob.loan_days else None
    minutes = staff.minutes(a)
    return LoanCost(
        application_id=application_id,
        currency=costs.currency,
        assumptions=a,
        provider_cost=costs.total,
        provider_by_kind=costs.by_kind,
        decision_cpu_ms=cpu_ms,
        decision_cost=a.cpu_cost(cpu_ms or 0),
        staff=staff,
        staff_minutes=minutes,
        staff_cost=a.staff_cost(minutes),
        loan_days=days,
        cpu_ms_per_loan_day=per_day,
        servicing_cost=a.cpu_cost(per_day * days) if per_day is not None else Decimal(0),
    )
