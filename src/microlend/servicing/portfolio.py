"""组合分析 (portfolio analytics): vintage curves, roll-rate matrices, flow and cure rates of a bank's loans,
month by month, from the installment history (see `portfolio_sql` for the states and their definitions).

The database counts; this module only turns the (small) counts into cumulative curves and ratios."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.servicing import queries
from microlend.servicing.portfolio_sql import OPEN_STATES, STATES, Window

#: Flow rates: from each bucket to the next worse one a month later (M3+ flows into write-off).
FLOWS = (("M0", "M1"), ("M1", "M2"), ("M2", "M3"), ("M3", "M3+"), ("M3+", "written_off"))
#: Delinquent buckets: a loan in one of them that is current or paid a month later is cured.
DELINQUENT = OPEN_STATES[1:]
CURED = ("M0", "paid")


def ensure_viewer(who: Principal) -> None:
    """Risk, operations and the bank's administrators see the portfolio's figures."""
    who.require(Permission.VIEW_PORTFOLIO)


def ratio(part: int, whole: int) -> Decimal | None:
    return None if whole == 0 else (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"))


@dataclass(frozen=True)
class Cohort:
    """The loans disbursed in one month; `ever_30[k]` of them had been 30+ past due by the end of their k-th
    month on book (k = 0 is the month of disbursement), up to the last month observed."""

    month: str
    loans: int
    ever_30: tuple[int, ...]
    ever_90: tuple[int, ...]

    @property
    def rate_30(self) -> tuple[Decimal | None, ...]:
        return tuple(ratio(n, self.loans) for n in self.ever_30)

    @property
    def rate_90(self) -> tuple[Decimal | None, ...]:
        return tuple(ratio(n, self.loans) for n in self.ever_90)


@dataclass(frozen=True)
class Vintages:
    as_of: date
    months: int
    cohorts: tuple[Cohort, ...]


def vintage_curves(window: Window, counts: list[tuple[int, int | None, int | None, int]]) -> tuple[Cohort, ...]:
    """Cumulate (cohort, month first 30+, month first 90+, loans) into each cohort's curves."""
    labels, n = window.labels, window.months
    loans: dict[int, int] = defaultdict(int)
    first30: dict[tuple[int, int], int] = defaultdict(int)
    first90: dict[tuple[int, int], int] = defaultdict(int)
    for c, k30, k90, count in counts:
        loans[c] += count
        if k30 is not None:
            first30[c, k30] += count
        if k90 is not None:
            first90[c, k90] += count
    cohorts = []
    for c in range(n):
        if not loans.get(c):
            continue
        e30, e90, s30, s90 = [], [], 0, 0
        for month in range(c, n):
            s30 += first30.get((c, month), 0)
            s90 += first90.get((c, month), 0)
            e30.append(s30)
            e90.append(s90)
        cohorts.append(Cohort(labels[c], loans[c], tuple(e30), tuple(e90)))
    return tuple(cohorts)


def vintages(uow: UnitOfWork, who: Principal, window: Window) -> Vintages:
    ensure_viewer(who)
    return Vintages(window.as_of, window.months, vintage_curves(window, queries.vintage_counts(uow, who, window)))


@dataclass(frozen=True)
class RollMatrix:
    """Loans open at `start` (one row per bucket) by their state at `end`; rates are shares of the row."""

    month: str
    start: date | None
    end: date
    counts: dict[str, dict[str, int]]

    def row_total(self, state: str) -> int:
        return sum(self.counts.get(state, {}).values())

    def rate(self, a: str, b: str) -> Decimal | None:
        return ratio(self.counts.get(a, {}).get(b, 0), self.row_total(a))

    @property
    def rates(self) -> dict[str, dict[str, Decimal | None]]:
        return {a: {b: self.rate(a, b) for b in STATES} for a in OPEN_STATES}

    @property
    def flow_rates(self) -> dict[str, Decimal | None]:
        return {f"{a}>{b}": self.rate(a, b) for a, b in FLOWS}

    @property
    def cure_rate(self) -> Decimal | None:
        cured = sum(self.counts.get(a, {}).get(b, 0) for a in DELINQUENT for b in CURED)
        return ratio(cured, sum(self.row_total(a) for a in DELINQUENT))


@dataclass(frozen=True)
class RollRates:
    as_of: date
    months: int
    transitions: tuple[RollMatrix, ...]  # month by month, oldest first
    total: RollMatrix  # every transition of the window together


def roll_matrices(window: Window, counts: list[tuple[int, str, str, int]]) -> RollRates:
    per: dict[int, dict[str, dict[str, int]]] = {j: {a: dict.fromkeys(STATES, 0) for a in OPEN_STATES}
                                                 for j in range(1, window.months)}
    total = {a: dict.fromkeys(STATES, 0) for a in OPEN_STATES}
    for j, a, b, n in counts:
        per[j][a][b] += n
        total[a][b] += n
    ends, labels = window.ends, window.labels
    transitions = tuple(RollMatrix(labels[j], ends[j - 1], ends[j], per[j]) for j in range(1, window.months))
    whole = RollMatrix(f"{labels[1]}..{labels[-1]}", ends[0], ends[-1], total)
    return RollRates(window.as_of, window.months, transitions, whole)


def roll_rates(uow: UnitOfWork, who: Principal, window: Window) -> RollRates:
    ensure_viewer(who)
    return roll_matrices(window, queries.roll_counts(uow, who, window))
