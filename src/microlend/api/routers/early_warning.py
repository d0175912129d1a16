"""Early warning (贷后预警) over HTTP: the queue of alerts with filters, one alert with its actions, an action
on an alert (freeze, reduce_limit, visit, collections_case, dismiss), an on-demand scan of the book; and the
officers' visit tasks with their outcome."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from microlend.api.deps import CurrentPrincipal, Id, UnitOfWorkDep
from microlend.api.references import CustomerQuery
from microlend.api.routing import api_router
from microlend.origination import early_warning as ew

router = api_router(prefix="/api/v1", tags=["early warning"])

Severity = Literal["high", "medium", "low"]
Signal = Literal["dpd_transition", "behaviour_score", "tax_sales_drop", "merchant_flow_drop", "enforcement_case",
                 "bureau_overdue", "limit_exhausted"]


class ActionPublic(BaseModel):
    id: int
    action: str
    actor: str
    at: datetime
    note: str
    result: dict[str, Any]

    @classmethod
    def of(cls, a: ew.ActionView) -> ActionPublic:
        return cls(id=a.id, action=a.action, actor=a.actor, at=a.at, note=a.note, result=a.result)


class AlertPublic(BaseModel):
    id: int
    subject_kind: str
    subject_id: int
    customer_id: int | None
    customer_name: str
    signal: str
    severity: str
    rule_version: str
    inputs: dict[str, Any]
    status: str
    raised_on: date
    last_seen_on: date
    actions: list[ActionPublic]

    @classmethod
    def of(cls, a: ew.AlertView) -> AlertPublic:
        return cls(id=a.id, subject_kind=a.subject_kind, subject_id=a.subject_id, customer_id=a.customer_id,
                   customer_name=a.customer_name, signal=a.signal, severity=a.severity, rule_version=a.rule_version,
                   inputs=a.inputs, status=a.status, raised_on=a.raised_on, last_seen_on=a.last_seen_on,
                   actions=[ActionPublic.of(x) for x in a.actions])


class AlertAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["freeze", "reduce_limit", "visit", "collections_case", "dismiss"]
    note: str = Field(min_length=1, max_length=1000, description="why")
    new_limit: Decimal | None = Field(default=None, ge=0, le=Decimal("1000000000000"), decimal_places=2,
                                      description="reduce_limit: the new, lower limit")
    due_on: date | None = Field(default=None, description="visit: when it is due (default: in 7 days)")


class ScanPublic(BaseModel):
    business_date: date
    rule_version: str
    subjects: int
    raised: int
    new: int
    escalated: int
    by_signal: dict[str, dict[str, int]]


class VisitPublic(BaseModel):
    id: int
    officer_user_id: int | None
    customer_id: int
    customer_name: str
    due_on: date
    reason: str
    source: str
    source_id: int | None
    status: str
    outcome: str | None
    created_by: str
    done_by: str | None
    done_at: datetime | None

    @classmethod
    def of(cls, v: ew.VisitView) -> VisitPublic:
        return cls(id=v.id, officer_user_id=v.officer_user_id, customer_id=v.customer_id,
                   customer_name=v.customer_name, due_on=v.due_on, reason=v.reason, source=v.source,
                   source_id=v.source_id, status=v.status, outcome=v.outcome, created_by=v.created_by,
                   done_by=v.done_by, done_at=v.done_at)


class VisitOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: str = Field(min_length=1, max_length=2000)
    status: Literal["done", "cancelled"] = "done"


@router.get("/early-warning/alerts")
def list_alerts(who: CurrentPrincipal, uow: UnitOfWorkDep,
                status: Literal["open", "acted", "dismissed"] | None = "open", severity: Severity | None = None,
                signal: Signal | None = None, customer_id: CustomerQuery = None,
                limit: int = Query(200, ge=1, le=500)) -> list[AlertPublic]:
    """The queue, highest severity first (an officer: their customers' alerts)."""
    return [AlertPublic.of(a) for a in ew.list_alerts(uow, who, status=status, severity=severity, signal=signal,
                                                      customer_id=customer_id, limit=limit)]


@router.get("/early-warning/alerts/{alert_id}")
def get_alert(alert_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> AlertPublic:
    return AlertPublic.of(ew.get_alert(uow, who, alert_id))


@router.post("/early-warning/alerts/{alert_id}/actions", status_code=201)
def act(alert_id: Id, body: AlertAction, who: CurrentPrincipal, uow: UnitOfWorkDep) -> ActionPublic:
    """Act on an open alert, saying why: a freeze or reduction goes through the limit desk (four eyes above
    the caller's authority), a visit lands with the customer's officer, a collections case opens early."""
    return ActionPublic.of(ew.act(uow, who, alert_id, body.action, body.note, new_limit=body.new_limit,
                                  due_on=body.due_on))


@router.post("/early-warning/scan", status_code=201)
def scan(who: CurrentPrincipal, uow: UnitOfWorkDep) -> ScanPublic:
    """Scan the whole active book now with the bank's published rules (the monthly scores are kept by the
    nightly job, not here)."""
    run = ew.scan(uow, who, keep_scores=False)
    return ScanPublic(business_date=run.business_date, rule_version=run.rule_version, subjects=run.subjects,
                      raised=run.raised, new=run.new, escalated=run.escalated, by_signal=run.by_signal)


@router.get("/visits")
def list_visits(who: CurrentPrincipal, uow: UnitOfWorkDep,
                status: Literal["open", "done", "cancelled"] | None = "open", mine: bool = False,
                limit: int = Query(200, ge=1, le=500)) -> list[VisitPublic]:
    """Visit tasks, soonest first (an officer: the ones assigned to them)."""
    return [VisitPublic.of(v) for v in ew.list_visits(uow, who, status=status, mine=mine, limit=limit)]


@router.post("/visits/{visit_id}/outcome")
def visit_outcome(visit_id: Id, body: VisitOutcome, who: CurrentPrincipal, uow: UnitOfWorkDep) -> VisitPublic:
    """What the visit found (done), or why it will not happen (cancelled)."""
    return VisitPublic.of(ew.record_visit_outcome(uow, who, visit_id, body.outcome, body.status))
