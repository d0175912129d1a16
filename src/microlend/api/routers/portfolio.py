"""组合分析: vintage curves and roll-rate matrices (with flow and cure rates) of the caller's bank, as JSON;
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
