"""The challenger report (冠军/挑战者报告): the champion and the challenger over the test window only (decisions
made since the challenger began), outcomes only of loans old enough to have matured, and a two-proportion
z-test with a confidence interval of the difference, on the approval rate and on the bad rate.

Maturity rule: an approved decision's outcome counts once the decision is at least `MATURITY_DAYS` days old
(its loan has been on book about that long); younger ones are reported as immature and left out of the bad
rate."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import NormalDist

from microlend.core.clock import utcnow
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.decisioning.deciding import ArmSummary, arm_summary
from microlend.decisioning.versions import policy_setup

MATURITY_DAYS = 90
CONFIDENCE = 0.95


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
    """None while either arm has no observations."""
    if n_champion <= 0 or n_challenger <= 0:
        return None
    p1, p2 = x_champion / n_champion, x_challenger / n_challenger
    pooled = (x_champion + x_challenger) / (n_champion + n_challenger)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_champion + 1 / n_challenger))
    diff = p2 - p1
    z = diff / se_pooled if se_pooled > 0 else 0.0
    p_value = math.erfc(abs(z) / math.sqrt(2))
    se = math.sqrt(p1 * (1 - p1) / n_champion + p2 * (1 - p2) / n_challenger)
    half = NormalDist().inv_cdf(0.5 + confidence / 2) * se
    return ProportionTest(p1, p2, diff, diff - half, diff + half, z, p_value, confidence)


@dataclass(frozen=True)
class ChallengerReport:
    window_start: datetime | None  # None: no challenger running; every decision counts
    maturity_days: int
    arms: list[ArmSummary]
    approval_test: ProportionTest | None
    bad_rate_test: ProportionTest | None


def _arm_total(arms: list[ArmSummary], arm: str) -> tuple[int, int, int, int]:
    rows = [a for a in arms if a.arm == arm]
    return (
        sum(a.approved for a in rows),
        sum(a.decisions for a in rows),
        sum(a.approved_bad for a in rows),
        sum(a.approved_with_outcome for a in rows),
    )


def challenger_report(
    uow: UnitOfWork,
    who: Principal,
    bad_by_decision: Mapping[int, bool] | None = None,
    *,
    now: datetime | None = None,
    maturity_days: int = MATURITY_DAYS,
) -> ChallengerReport:
    who.require(Permission.VIEW_DECISIONS)
    setup = policy_setup(uow, who)
    since = setup.challenger_started_at if setup.challenger_hash is not None else None
    mature_before = (now or utcnow()) - timedelta(days=maturity_days)
    arms = arm_summary(uow, who, bad_by_decision, since=since, mature_before=mature_before)
    other = "shadow" if setup.challenger_shadow else "challenger"
    a1, n1, b1, m1 = _arm_total(arms, "champion")
    a2, n2, b2, m2 = _arm_total(arms, other)
    return ChallengerReport(
        since, maturity_days, arms, two_proportion_test(a1, n1, a2, n2), two_proportion_test(b1, m1, b2, m2)
    )
