"""组合分析: vintage curves, roll-rate matrices (with flow and cure rates) and collections performance of the
caller's bank, as JSON;
the portfolio pages show the same figures. Risk, operations and administrators only."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Query
from pydantic import BaseModel

from microlend.api.deps import CurrentPrincipal, UnitOfWorkDep
from microlend.api.routing import api_router
from microlend.api.schemas import DecimalStr
from microlend.core.clock import utcnow
from microlend.servicing import collections_performance as cp
from microlend.servicing import portfolio
from microlend.servicing.portfolio_sql import MAX_MONTHS, STATES, Window

router = api_router(prefix="/api/v1/portfolio", tags=["portfolio"])


class CohortPublic(BaseModel):
    """Loans disbursed in `month`; `ever_30[k]`: how many had been more than 30 days past due (or written off)
    by the end of their k-th month on book (k = 0: the month of disbursement); `rate_30[k]` their share."""

    month: str
    loans: int
    ever_30: list[int]
    ever_90: list[int]
    rate_30: list[DecimalStr | None]
    rate_90: list[DecimalStr | None]

    @classmethod
    def of(cls, c: portfolio.Cohort) -> CohortPublic:
        return cls(month=c.month, loans=c.loans, ever_30=list(c.ever_30), ever_90=list(c.ever_90),
                   rate_30=list(c.rate_30), rate_90=list(c.rate_90))


class VintagesPublic(BaseModel):
    as_of: date
    months: int
    cohorts: list[CohortPublic]


class RollMatrixPublic(BaseModel):
    """Loans open at `start` by bucket (rows) and their state at `end` (columns: the buckets, `written_off`,
    `paid`); `rates` are shares of the row; flow rates from each bucket to the next worse; the cure rate is the
    share of loans in M1..M3+ that were current or paid a month later."""

    month: str
    start: date | None
    end: date
    counts: dict[str, dict[str, int]]
    rates: dict[str, dict[str, DecimalStr | None]]
    flow_rates: dict[str, DecimalStr | None]
    cure_rate: DecimalStr | None

    @classmethod
    def of(cls, m: portfolio.RollMatrix) -> RollMatrixPublic:
        return cls(month=m.month, start=m.start, end=m.end, counts=m.counts, rates=m.rates,
                   flow_rates=m.flow_rates, cure_rate=m.cure_rate)


class RollRatesPublic(BaseModel):
    as_of: date
    months: int
    states: list[str]
    transitions: list[RollMatrixPublic]
    total: RollMatrixPublic


AsOf = Annotated[date | None, Query(description="the last day observed (default today)")]


def window(as_of: date | None, months: int) -> Window:
    return Window(as_of or utcnow().date(), months)


@router.get("/vintages")
def vintages(who: CurrentPrincipal, uow: UnitOfWorkDep, as_of: AsOf = None,
             months: Annotated[int, Query(ge=2, le=MAX_MONTHS)] = 24) -> VintagesPublic:
    """The cohorts of loans disbursed in each of the `months` months up to `as_of`, with their ever-30+ and
    ever-90+ curves by months on book."""
    v = portfolio.vintages(uow, who, window(as_of, months))
    return VintagesPublic(as_of=v.as_of, months=v.months, cohorts=[CohortPublic.of(c) for c in v.cohorts])


@router.get("/roll-rates")
def roll_rates(who: CurrentPrincipal, uow: UnitOfWorkDep, as_of: AsOf = None,
               months: Annotated[int, Query(ge=2, le=MAX_MONTHS)] = 13) -> RollRatesPublic:
    """Month-to-month roll-rate matrices between the buckets over the `months` months up to `as_of`, and
    the whole window's."""
    r = portfolio.roll_rates(uow, who, window(as_of, months))
    return RollRatesPublic(as_of=r.as_of, months=r.months, states=list(STATES),
                           transitions=[RollMatrixPublic.of(t) for t in r.transitions],
                           total=RollMatrixPublic.of(r.total))


class CollectionFiguresPublic(BaseModel):
    """A collector's (or everyone's) figures for a month or the period (see `servicing.collections_performance`
    for the definitions): `kept_rate` = kept / (kept + broken), null while none is decided; `amount_recovered`:
    posted repayments on the case's loan while the case was assigned to the collector."""

    cases_worked: int
    contacts: int
    contacts_by_outcome: dict[str, int]
    promises_made: int
    promises_kept: int
    promises_broken: int
    promises_pending: int
    promises_lapsed: int
    kept_rate: DecimalStr | None
    promised_amount: DecimalStr
    kept_amount: DecimalStr
    repayments: int
    amount_recovered: DecimalStr
    cases_closed: int
    cases_cured: int

    @classmethod
    def of(cls, f: cp.Figures) -> CollectionFiguresPublic:
        return cls(cases_worked=f.cases_worked, contacts=f.contacts, contacts_by_outcome=dict(f.contacts_by_outcome),
                   promises_made=f.promises_made, promises_kept=f.promises_kept, promises_broken=f.promises_broken,
                   promises_pending=f.promises_pending, promises_lapsed=f.promises_lapsed, kept_rate=f.kept_rate,
                   promised_amount=f.promised_amount, kept_amount=f.kept_amount, repayments=f.repayments,
                   amount_recovered=f.amount_recovered, cases_closed=f.cases_closed, cases_cured=f.cases_cured)


class CollectorPublic(BaseModel):
    """A collector (a staff user: username and display name), month by month in the order of `months`."""

    username: str
    name: str
    months: list[CollectionFiguresPublic]
    total: CollectionFiguresPublic


class CollectionsPerformancePublic(BaseModel):
    months: list[str]
    collectors: list[CollectorPublic]
    by_month: list[CollectionFiguresPublic]
    total: CollectionFiguresPublic

    @classmethod
    def of(cls, r: cp.CollectionsPerformance) -> CollectionsPerformancePublic:
        f = CollectionFiguresPublic.of
        return cls(months=list(r.months), by_month=[f(m) for m in r.by_month], total=f(r.total),
                   collectors=[CollectorPublic(username=c.username, name=c.name, months=[f(m) for m in c.months],
                                               total=f(c.total)) for c in r.collectors])


Month = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$", description="a month YYYY-MM")]


@router.get("/collections-performance")
def collections_performance(who: CurrentPrincipal, uow: UnitOfWorkDep, from_: Annotated[
        str | None, Query(alias="from", pattern=r"^\d{4}-\d{2}$", description="the first month YYYY-MM "
                          "(default: five months before `to`)")] = None,
                            to: Month = None) -> CollectionsPerformancePublic:
    """Per collector and month from `from` to `to` (at most 60 months; default the last six up to this month):
    cases worked, contacts (by outcome), promises to pay made and kept / broken / pending / lapsed with the kept
    rate, amounts promised and recovered, cases closed and cured; and the same for everyone."""
    period = cp.period_of(from_ or "", to or "", utcnow().date())
    return CollectionsPerformancePublic.of(cp.collections_performance(uow, who, period))
