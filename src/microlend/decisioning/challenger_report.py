"""The challenger report (冠军/挑战者报告): the champion against the split challenger over the challenger's test
window, and the shadow against the decisions it shadowed over the shadow's window; per arm the volume, limits,
rates, expected loss and profit, the approval and bad rates with Wilson confidence intervals, and a
two-proportion z-test of each rate against the champion.

Outcome rule (表现期): a loan is bad when it was more than 30 days past due (or written off) within
`outcome_months` months of being paid out; it counts as an outcome only once it has been on book at least that
long (mature). Younger loans are counted as immature and left out of the bad rate. The survival curve (Kaplan-
Meier by months on book) uses every loan, each as long as it has been observed.

Money per approved decision: EAD is its limit; expected loss PD x LGD x EAD (PD as the model gave it for the
applicant, LGD the bank's provisioning parameter); interest income limit x annual rate x (term + 1) / 24, the
interest of a loan repaid in equal principal parts over its term (average balance (n + 1) / 2n of the limit);
profit is income minus expected loss. Every amount is a Decimal rounded half up to the cent."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from statistics import NormalDist
from typing import Any

from sqlalchemy import select

from microlend.core.clock import utcnow
from microlend.core.db import json_decimal, json_scalar
from microlend.core.errors import ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.money import round_half_up
from microlend.core.uow import UnitOfWork
from microlend.decisioning.deciding import ArmSummary, arm_summaries
from microlend.decisioning.queries import LoanPerformance
from microlend.decisioning.tables import DecisionRow
from microlend.decisioning.versions import policy_setup

OUTCOME_MONTHS = 3
SURVIVAL_MONTHS = 12
CONFIDENCE = 0.95
DEFAULT_LGD = Decimal("0.45")
_RATE_PLACES = Decimal("0.000001")


# --- statistics -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProportionTest:
    """Challenger minus champion: the difference of two proportions, its confidence interval (unpooled
    standard error) and the two-sided p-value of the pooled z-test of no difference."""

    champion_rate: float
    challenger_rate: float
    difference: float
    ci_low: float
    ci_high: float
    z: float
    p_value: float
    confidence: float

    @property
    def significant(self) -> bool:
        return self.p_value < 1 - self.confidence


def two_proportion_test(
    x_champion: int, n_champion: int, x_challenger: int, n_challenger: int, confidence: float = CONFIDENCE
) -> ProportionTest | None:
    """None while either arm has no observations, or while the two arms together have no event or nothing but
    events (no bad loan yet in either arm, say): there is no variation to test, and a zero-width interval at
    p = 1 would read as proof that the arms are the same."""
    if n_champion <= 0 or n_challenger <= 0:
        return None
    events = x_champion + x_challenger
    if events in (0, n_champion + n_challenger):
        return None
    p1, p2 = x_champion / n_champion, x_challenger / n_challenger
    pooled = events / (n_champion + n_challenger)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_champion + 1 / n_challenger))
    diff = p2 - p1
    z = diff / se_pooled
    p_value = math.erfc(abs(z) / math.sqrt(2))
    se = math.sqrt(p1 * (1 - p1) / n_champion + p2 * (1 - p2) / n_challenger)
    half = NormalDist().inv_cdf(0.5 + confidence / 2) * se
    return ProportionTest(p1, p2, diff, diff - half, diff + half, z, p_value, confidence)


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (sound for small counts and rates near 0 or 1); None for n = 0."""
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n ({n}), got {successes}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def add_months(start: date, months: int) -> date:
    """The same day `months` later, or the month's last day when it is shorter."""
    month0 = start.month - 1 + months
    year, month = start.year + month0 // 12, month0 % 12 + 1
    for day in (start.day, 30, 29, 28):
        try:
            return date(year, month, min(start.day, day))
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def months_on_book(disbursed_on: date, on: date) -> int:
    """Whole months from paying out to `on` (0 in the first month, or before it)."""
    months = max(0, (on.year - disbursed_on.year) * 12 + on.month - disbursed_on.month)
    while months > 0 and add_months(disbursed_on, months) > on:
        months -= 1
    return months


@dataclass(frozen=True)
class SurvivalPoint:
    """Month `month` on book: loans observed through it still good at its start (`at_risk`), those that went
    bad in it, and the share still good at its end (Kaplan-Meier)."""

    month: int
    at_risk: int
    went_bad: int
    still_good: float


def survival_curve(loans: Iterable[LoanPerformance], on: date, months: int = SURVIVAL_MONTHS) -> list[SurvivalPoint]:
    """The share of loans still good by months on book; a loan observed for fewer months leaves the risk set
    after them (censored), so young loans never count as good for longer than they have lived."""
    observed = [(months_on_book(p.disbursed_on, on), p) for p in loans]
    curve: list[SurvivalPoint] = []
    share = 1.0
    for m in range(1, months + 1):
        at_risk = went_bad = 0
        for lived, p in observed:
            month_start, month_end = add_months(p.disbursed_on, m - 1), add_months(p.disbursed_on, m)
            if p.bad_on is not None and p.bad_on < month_start:
                continue  # bad before this month: no longer at risk
            if p.bad_on is not None and p.bad_on < month_end:
                at_risk, went_bad = at_risk + 1, went_bad + 1
            elif lived >= m:
                at_risk += 1
        if at_risk == 0:
            break
        share *= 1 - went_bad / at_risk
        curve.append(SurvivalPoint(m, at_risk, went_bad, share))
    return curve


# --- one arm ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decided:
    """A stored decision as the report reads it."""

    id: int
    arm: str
    policy_hash: str
    outcome: str
    limit: Decimal
    annual_rate: Decimal | None
    pd: Decimal | None
    term_months: int | None


@dataclass(frozen=True)
class ArmStats:
    arm: str
    policy_hashes: tuple[str, ...]
    decisions: int
    approved: int
    declined: int
    referred: int
    approval_ci: tuple[float, float] | None
    approved_amount: Decimal
    average_limit: Decimal | None
    average_rate: Decimal | None
    loans: int  # approved decisions that became loans
    mature: int
    immature: int
    bad: int  # among the mature
    bad_ci: tuple[float, float] | None
    expected_loss: Decimal
    interest_income: Decimal
    profit: Decimal
    without_pd: int  # approved decisions without a model PD: no expected loss counted for them
    survival: tuple[SurvivalPoint, ...] = field(default=())

    @property
    def approval_rate(self) -> float | None:
        return self.approved / self.decisions if self.decisions else None

    @property
    def bad_rate(self) -> float | None:
        return self.bad / self.mature if self.mature else None


def _money(value: Decimal) -> Decimal:
    return round_half_up(value)


def arm_stats(arm: str, decided: list[Decided], performance: Mapping[int, LoanPerformance], on: date, *,
              outcome_months: int = OUTCOME_MONTHS, lgd: Decimal = DEFAULT_LGD,
              confidence: float = CONFIDENCE) -> ArmStats:
    """Volume, money, rates with their intervals and the survival curve of one arm's decisions."""
    approved = [d for d in decided if d.outcome == "approve"]
    amount = sum((d.limit for d in approved), Decimal(0))
    rated = [d.annual_rate for d in approved if d.annual_rate is not None]
    average_rate = (sum(rated, Decimal(0)) / len(rated)).quantize(_RATE_PLACES, ROUND_HALF_UP) if rated else None
    expected_loss = income = Decimal(0)
    without_pd = 0
    for d in approved:
        if d.pd is None:
            without_pd += 1
        else:
            expected_loss += _money(d.pd * lgd * d.limit)
        if d.annual_rate is not None and d.term_months:
            income += _money(d.limit * d.annual_rate * (d.term_months + 1) / 24)
    loans = [performance[d.id] for d in approved if d.id in performance]
    mature = [p for p in loans if add_months(p.disbursed_on, outcome_months) <= on]
    bad = sum(1 for p in mature if p.bad_on is not None and p.bad_on < add_months(p.disbursed_on, outcome_months))
    return ArmStats(
        arm=arm,
        policy_hashes=tuple(sorted({d.policy_hash for d in decided})),
        decisions=len(decided),
        approved=len(approved),
        declined=sum(d.outcome == "decline" for d in decided),
        referred=sum(d.outcome == "refer" for d in decided),
        approval_ci=wilson_interval(len(approved), len(decided), confidence),
        approved_amount=_money(amount),
        average_limit=_money(amount / len(approved)) if approved else None,
        average_rate=average_rate,
        loans=len(loans),
        mature=len(mature),
        immature=len(loans) - len(mature),
        bad=bad,
        bad_ci=wilson_interval(bad, len(mature), confidence),
        expected_loss=_money(expected_loss),
        interest_income=_money(income),
        profit=_money(income - expected_loss),
        without_pd=without_pd,
        survival=tuple(survival_curve(loans, on)),
    )


@dataclass(frozen=True)
class Comparison:
    """One test: the split challenger against the champion since it began, or the shadow against the acted
    decisions it shadowed since it began."""

    arm: str  # challenger or shadow
    window_start: datetime | None
    baseline: ArmStats
    candidate: ArmStats
    approval_test: ProportionTest | None
    bad_rate_test: ProportionTest | None


def compare(arm: str, window_start: datetime | None, baseline: ArmStats, candidate: ArmStats,
            confidence: float = CONFIDENCE) -> Comparison:
    return Comparison(
        arm, window_start, baseline, candidate,
        two_proportion_test(baseline.approved, baseline.decisions, candidate.approved, candidate.decisions,
                            confidence),
        two_proportion_test(baseline.bad, baseline.mature, candidate.bad, candidate.mature, confidence),
    )


# --- the report -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChallengerReport:
    window_start: datetime | None  # the split challenger's (or else the shadow's); None: nothing on test
    outcome_months: int
    as_of: date
    lgd: Decimal
    arms: list[ArmSummary]  # decisions per arm and version since `window_start`, mature outcomes only
    comparisons: list[Comparison]
    approval_test: ProportionTest | None  # of the first comparison (the challenger's, else the shadow's)
    bad_rate_test: ProportionTest | None


#: what the report reads of a decision's stored inputs, picked out by the database (the inputs are never decoded)
_PD = json_scalar(DecisionRow.inputs, "model.pd").label("pd")
_TERM = json_scalar(DecisionRow.inputs, "application.term_months").label("term_months")


def _decided(rows: Iterable[Any]) -> list[Decided]:
    out = []
    for r in rows:
        term = json_decimal(r.term_months)
        out.append(Decided(int(r.id), str(r.arm), str(r.policy_hash), str(r.outcome), Decimal(r.limit),
                           None if r.annual_rate is None else Decimal(r.annual_rate), json_decimal(r.pd),
                           None if term is None else int(term)))
    return out


def challenger_report(
    uow: UnitOfWork,
    who: Principal,
    performance: Mapping[int, LoanPerformance] | None = None,
    *,
    now: datetime | None = None,
    outcome_months: int = OUTCOME_MONTHS,
    lgd: Decimal = DEFAULT_LGD,
    confidence: float = CONFIDENCE,
) -> ChallengerReport:
    """`performance` (decision id -> its loan's paid-out and first bad days, as origination and servicing
    know them) gives the outcomes; without it every arm has volume and money but no outcomes yet."""
    who.require(Permission.VIEW_DECISIONS)
    if not 1 <= outcome_months <= 36:
        raise ValidationError("outcome_months: between 1 and 36", field="outcome_months")
    performance = performance or {}
    as_of = (now or utcnow()).date()
    setup = policy_setup(uow, who)
    challenger_since = setup.challenger_started_at if setup.challenger_hash is not None else None
    shadow_since = setup.shadow_started_at if setup.shadow_hash is not None else None
    if setup.challenger_hash is not None and setup.challenger_shadow:  # a set-up from before the shadow slot
        shadow_since, challenger_since = challenger_since, None
    starts = [s for s in (challenger_since, shadow_since) if s is not None]
    earliest = min(starts) if starts else None
    columns = (DecisionRow.id, DecisionRow.arm, DecisionRow.policy_hash, DecisionRow.outcome, DecisionRow.limit,
               DecisionRow.annual_rate, _PD, _TERM, DecisionRow.shadow_of, DecisionRow.created_at)
    where = [DecisionRow.tenant_id == who.tenant_id]
    if earliest is not None:
        where.append(DecisionRow.created_at >= earliest)
    with uow:
        rows = uow.session.execute(select(*columns).where(*where).order_by(DecisionRow.id)).all()
    decided = {d.id: d for d in _decided(rows)}
    created = {int(r.id): r.created_at for r in rows}
    shadow_of = {int(r.id): int(r.shadow_of) for r in rows if r.shadow_of is not None}

    def stats(arm: str, ids: Iterable[int]) -> ArmStats:
        return arm_stats(arm, [decided[i] for i in ids], performance, as_of, outcome_months=outcome_months, lgd=lgd,
                         confidence=confidence)

    def since(start: datetime | None) -> list[int]:
        return [i for i in decided if start is None or created[i] >= start]

    comparisons: list[Comparison] = []
    if challenger_since is not None or not starts:
        window = since(challenger_since)
        champion = stats("champion", [i for i in window if decided[i].arm == "champion"])
        if challenger_since is not None:
            challenger = stats("challenger", [i for i in window if decided[i].arm == "challenger"])
            comparisons.append(compare("challenger", challenger_since, champion, challenger, confidence))
        else:
            comparisons.append(Comparison("champion", None, champion, champion, None, None))
    if shadow_since is not None:
        shadows = [i for i in since(shadow_since) if decided[i].arm == "shadow"]
        acted = [shadow_of[i] for i in shadows if i in shadow_of and shadow_of[i] in decided]
        comparisons.append(compare("shadow", shadow_since, stats("acted", acted), stats("shadow", shadows),
                                   confidence))
    mature_bad = {
        i: p.bad_on is not None and p.bad_on < add_months(p.disbursed_on, outcome_months)
        for i, p in performance.items() if add_months(p.disbursed_on, outcome_months) <= as_of
    }
    arms = arm_summaries(rows, mature_bad)  # the window's decisions, read above
    first = next((c for c in comparisons if c.arm in ("challenger", "shadow")), None)
    return ChallengerReport(
        window_start=challenger_since or shadow_since,
        outcome_months=outcome_months,
        as_of=as_of,
        lgd=lgd,
        arms=arms,
        comparisons=comparisons,
        approval_test=first.approval_test if first else None,
        bad_rate_test=first.bad_rate_test if first else None,
    )
