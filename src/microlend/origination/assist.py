"""Help for the people who review credit: model assistance on an application, the customer's 360 view,
the branch's portfolio and its dashboard. Every query works over sets of rows, never one loan at a time."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Float, String, and_, case, cast, func, select
from sqlalchemy.sql.elements import ColumnElement

from microlend.core.identity import Permission, Principal
from microlend.core.tables import AuditRow, UserRow
from microlend.core.tenancy import business_date
from microlend.core.uow import UnitOfWork
from microlend.data import gateway
from microlend.data.profile import BusinessProfile, business_profile
from microlend.origination import exposure as exposures
from microlend.origination import service as applications
from microlend.origination.applications import OPEN_REVIEW, Status
from microlend.origination.tables import ApplicationRow
from microlend.parties import customers as customer_svc
from microlend.parties import queries as parties
from microlend.servicing import queries as loans
from microlend.servicing.queries import RepaymentBehaviour

#: Applications within this many score points count as similar (相似客群).
SIMILAR_SCORE_BAND = Decimal(20)
#: A loan is bad once it is more than this many days past due, or written off.
BAD_DPD = loans.BAD_DAYS_PAST_DUE
#: Statuses after an offer was made: the application was approved, by the policy or by people.
APPROVED_STATUSES = (Status.APPROVED, Status.ACCEPTED, Status.CONTRACTED, Status.DISBURSED, Status.EXPIRED)
#: Statuses with a final credit decision (approved or declined).
DECIDED_STATUSES = (*APPROVED_STATUSES, Status.DECLINED)


def _rate(part: int, whole: int) -> Decimal | None:
    return None if whole == 0 else (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"))


# ---------------------------------------------------------------------------------------- model assistance


@dataclass(frozen=True)
class SimilarCases:
    """How past applications with a score close to this one fared."""

    score_from: Decimal
    score_to: Decimal
    count: int
    decided: int
    approved: int
    approval_rate: Decimal | None
    disbursed: int
    bad: int
    bad_rate: Decimal | None


@dataclass(frozen=True)
class Assistance:
    application: applications.Application
    score: Decimal | None
    pd: Decimal | None
    model_version: str
    reasons: list[dict[str, Any]]
    suggested_limit: Decimal | None
    suggested_rate: Decimal | None
    similar: SimilarCases | None
    exposure: exposures.Exposure | None = None  # the obligor group's, without this application
    record: exposures.OwnRecord | None = None  # the borrower's own record at this bank


def similar_cases(uow: UnitOfWork, who: Principal, score: Decimal, exclude_id: int | None = None,
                  band: Decimal = SIMILAR_SCORE_BAND) -> SimilarCases:
    """Count, approval rate and bad rate (dpd > 30 or written off) of past applications scored within
    ±band points: one grouped query here, one over their loans in servicing."""
    score_num = cast(ApplicationRow.score, Float)
    lo, hi = score - band, score + band
    cond = [ApplicationRow.tenant_id == who.tenant_id, ApplicationRow.score.is_not(None),
            score_num >= float(lo), score_num <= float(hi)]
    if exclude_id is not None:
        cond.append(ApplicationRow.id != exclude_id)
    decided = case((ApplicationRow.status.in_([s.value for s in DECIDED_STATUSES]), 1), else_=0)
    approved = case((ApplicationRow.status.in_([s.value for s in APPROVED_STATUSES]), 1), else_=0)
    with uow:
        row = uow.session.execute(
            select(func.count(ApplicationRow.id), func.sum(decided), func.sum(approved)).where(*cond)).one()
        count, n_decided, n_approved = (int(x or 0) for x in row)
        n_disbursed, n_bad = loans.count_bad(uow, who, select(ApplicationRow.loan_id).where(
            *cond, ApplicationRow.loan_id.is_not(None)))
    return SimilarCases(lo, hi, count, n_decided, n_approved, _rate(n_approved, n_decided), n_disbursed, n_bad,
                        _rate(n_bad, n_disbursed))


def model_assistance(uow: UnitOfWork, who: Principal, application_id: int, locale: str = "zh_CN") -> Assistance:
    """What the reviewer sees next to an application: score, PD, reasons, the policy's suggestion and how
    similar applicants performed."""
    who.require(Permission.VIEW_APPLICATIONS)
    applications.ensure_staff(who)
    app = applications.get(uow, who, application_id, locale)
    with uow:
        similar = (similar_cases(uow, who, app.score, exclude_id=app.id)
                   if app.score is not None else None)
        group = exposures.group_exposure(uow, who, app.customer_id, exclude_application=app.id)
        record = exposures.own_record(uow, who, list(group.group), app.customer_id,
                                      business_date(uow.session, who.tenant_id), exclude_application=app.id)
    return Assistance(app, app.score, app.pd, app.model_version, app.reasons, app.limit, app.annual_rate, similar,
                      group, record)


# ---------------------------------------------------------------------------------------- customer 360


@dataclass(frozen=True)
class LoanLine:
    id: int
    status: str
    method: str
    principal: Decimal
    outstanding: Decimal
    days_past_due: int
    bucket: str
    disbursed_on: date
    maturity_date: date
    customer_id: int | None = None
    customer_name: str = ""


@dataclass(frozen=True)
class Customer360:
    customer: customer_svc.Customer
    loans: list[LoanLine]
    applications: list[applications.Application]
    behaviour: RepaymentBehaviour
    profile: BusinessProfile


def _loan_lines(uow: UnitOfWork, who: Principal, lines: list[loans.LoanLine]) -> list[LoanLine]:
    """Servicing's loan lines with each customer's name."""
    names = parties.customer_names(uow, who, [x.customer_id for x in lines if x.customer_id is not None])
    return [LoanLine(x.id, x.status, x.method, x.principal, x.outstanding, x.days_past_due, x.bucket,
                     x.disbursed_on, x.maturity_date, x.customer_id,
                     names.get(x.customer_id, "") if x.customer_id is not None else "") for x in lines]


def customer_360(uow: UnitOfWork, who: Principal, customer_id: int, locale: str = "zh_CN") -> Customer360:
    """客户全景 one customer: masked facts, loans (status, dpd, outstanding), applications, repayment behaviour."""
    who.require(Permission.VIEW_CUSTOMERS)
    who.require(Permission.VIEW_LOANS)
    applications.ensure_staff(who)
    customer = customer_svc.get_customer(uow, who, customer_id)
    apps = applications.list_applications(uow, who, customer_id=customer_id, page_size=50, locale=locale).items
    with uow:
        on = business_date(uow.session, who.tenant_id)
        lines = _loan_lines(uow, who, loans.loan_lines(uow, who, customer_id=customer_id))
        behaviour = loans.repayment_behaviour(uow, who, customer_id, on)
    subject, _ = parties.query_subject(uow, who, customer_id)
    profile = business_profile(gateway.latest_snapshots(uow, who, subject), on)
    return Customer360(customer, lines, apps, behaviour, profile)


# ---------------------------------------------------------------------------------------- branch views


def staff_branch(uow: UnitOfWork, who: Principal) -> str:
    """The branch a member of staff works in; '' (every branch) for head office and the departments (风险管理部,
    审计部, ...): a user's branch narrows their views only when it is a branch the bank books customers in."""
    with uow:
        row = uow.session.get(UserRow, who.user_id)
        branch = row.branch if row is not None and row.tenant_id == who.tenant_id else ""
        if not branch:
            return ""
        booked = uow.session.execute(parties.ids_in_branch(who, branch).limit(1)).first()
        return branch if booked is not None else ""


def portfolio_figures(uow: UnitOfWork, who: Principal, branch: str = "") -> tuple[int, int]:
    """Active loans and the overdue ones among them, of a branch's customers (all when ''): the one query the
    dashboard, the portfolio page and the home page all show."""
    who.require(Permission.VIEW_LOANS)
    return loans.active_and_overdue(uow, who, parties.ids_in_branch(who, branch) if branch else None)


def branch_portfolio(uow: UnitOfWork, who: Principal, branch: str = "", limit: int = 200,
                     offset: int = 0) -> list[LoanLine]:
    """The loans of a branch's customers (all branches when ''), overdue first, then the largest dpd; a page
    of `limit` from `offset`."""
    who.require(Permission.VIEW_LOANS)
    applications.ensure_staff(who)
    customers = parties.ids_in_branch(who, branch) if branch else None
    with uow:
        return _loan_lines(uow, who, loans.loan_lines(uow, who, customers=customers, overdue_first=True,
                                                      limit=limit, offset=offset))


@dataclass(frozen=True)
class Dashboard:
    """分行看板 a branch's origination and portfolio figures over the last `days` days."""

    branch: str
    since: date
    until: date
    per_day: list[tuple[date, int]]
    submitted: int
    decided: int
    automatic: int
    stp_rate: Decimal | None
    approved: int
    approval_rate: Decimal | None
    median_decision_seconds: float | None
    p90_decision_seconds: float | None
    active_loans: int
    overdue_loans: int
    overdue_rate: Decimal | None
    waiting: int = 0  # submitted in the period and still in review (referred or recommended): not in the STP rate


def _day_of(column: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def branch_dashboard(uow: UnitOfWork, who: Principal, now: datetime, branch: str = "",
                     days: int = 30) -> Dashboard:
    """Applications per day, straight-through rate (decided with no person), approval rate, time to decision
    (median and p90; for reviewed applications up to the approver's final decision) and overdue rate."""
    who.require(Permission.VIEW_APPLICATIONS)
    applications.ensure_staff(who)
    since_at = now - timedelta(days=days)
    with uow:
        s = uow.session
        dialect = s.get_bind().dialect.name
        cond: list[ColumnElement[bool]] = [ApplicationRow.tenant_id == who.tenant_id,
                                           ApplicationRow.submitted_at >= since_at]
        if branch:
            cond.append(ApplicationRow.branch == branch)
        day = _day_of(ApplicationRow.submitted_at, dialect)
        per_day = {_as_date(d): int(n) for d, n in s.execute(
            select(day, func.count()).where(*cond).group_by(day))}
        decided_statuses = [st.value for st in DECIDED_STATUSES]
        approved_statuses = [st.value for st in APPROVED_STATUSES]
        open_statuses = [st.value for st in OPEN_REVIEW]
        submitted, decided, automatic, approved, waiting = (int(x or 0) for x in s.execute(select(
            func.count(),
            func.sum(case((ApplicationRow.status.in_(decided_statuses), 1), else_=0)),
            func.sum(case((and_(ApplicationRow.status.in_(decided_statuses), ApplicationRow.automatic), 1),
                          else_=0)),
            func.sum(case((ApplicationRow.status.in_(approved_statuses), 1), else_=0)),
            func.sum(case((ApplicationRow.status.in_(open_statuses), 1), else_=0)),
        ).where(*cond)).one())
        # when a person decided, the decision is the approver's last approve/decline in the audit trail
        final = (select(AuditRow.object_id.label("object_id"), func.max(AuditRow.at).label("at"))
                 .where(AuditRow.tenant_id == who.tenant_id, AuditRow.object_type == "application",
                        AuditRow.action.in_(["application.approve", "application.decline"]))
                 .group_by(AuditRow.object_id).subquery())
        rows = s.execute(
            select(ApplicationRow.submitted_at, ApplicationRow.decided_at, ApplicationRow.automatic,
                   ApplicationRow.decision_ms, final.c.at)
            .outerjoin(final, final.c.object_id == cast(ApplicationRow.id, String(60)))
            .where(*cond, ApplicationRow.status.in_(decided_statuses))).all()
        active, overdue = portfolio_figures(uow, who, branch) if who.can(Permission.VIEW_LOANS) else (0, 0)
    seconds: list[float] = []
    for submitted_at, decided_at, auto, decision_ms, final_at in rows:
        if auto and decision_ms is not None:
            seconds.append(decision_ms / 1000)
            continue
        end = final_at if final_at is not None else decided_at
        if end is not None:
            end = end if end.tzinfo else end.replace(tzinfo=UTC)
            seconds.append(max((end - submitted_at).total_seconds(), 0.0))
    first = since_at.date()
    series = [(first + timedelta(days=i), per_day.get(first + timedelta(days=i), 0)) for i in range(days + 1)]
    return Dashboard(branch, first, now.date(), series, submitted, decided, automatic, _rate(automatic, decided),
                     approved, _rate(approved, decided), percentile(seconds, 50), percentile(seconds, 90),
                     active, overdue, _rate(overdue, active), waiting)

