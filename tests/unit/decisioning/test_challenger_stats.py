"""The statistics of the challenger report: the two-proportion z-test, Wilson intervals, outcomes only of loans
on book for the whole outcome window, the survival curve and the money per arm."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal
from statistics import NormalDist

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microlend.decisioning.challenger_report import (
    Decided,
    add_months,
    arm_stats,
    months_on_book,
    survival_curve,
    two_proportion_test,
    wilson_interval,
)
from microlend.decisioning.queries import LoanPerformance


def test_a_known_difference() -> None:
    t = two_proportion_test(50, 100, 60, 100)
    assert t is not None
    assert t.difference == pytest.approx(0.10)
    assert t.z == pytest.approx(1.4213, abs=1e-4)
    assert t.p_value == pytest.approx(0.1552, abs=1e-4)
    assert (t.ci_low, t.ci_high) == (pytest.approx(-0.0372, abs=1e-4), pytest.approx(0.2372, abs=1e-4))
    assert not t.significant


def test_a_large_difference_is_significant() -> None:
    t = two_proportion_test(400, 1000, 500, 1000)
    assert t is not None and t.significant and t.ci_low > 0


def test_an_empty_arm_has_no_test() -> None:
    assert two_proportion_test(0, 0, 5, 10) is None


def test_no_event_in_either_arm_or_only_events_has_no_test() -> None:
    # a month after the split no loan can be 30 days past due yet: nothing to compare, not "no difference"
    assert two_proportion_test(0, 11, 0, 17) is None
    assert two_proportion_test(11, 11, 17, 17) is None
    one = two_proportion_test(0, 11, 1, 17)
    assert one is not None and one.ci_low < one.difference < one.ci_high and one.p_value < 1


# --- Wilson intervals, maturity by months on book, survival, money per arm ------------------------------------



def _score_bound(x: int, n: int, z: float, upper: bool) -> float:
    """The Wilson bound by its definition, found by bisection: the p at which the score statistic
    |x/n - p| / sqrt(p(1-p)/n) equals z, on the side of x/n asked for."""
    phat = x / n
    lo, hi = (phat, 1.0) if upper else (0.0, phat)
    if (upper and x == n) or (not upper and x == 0):
        return phat

    def excess(p: float) -> float:
        return abs(phat - p) - z * math.sqrt(p * (1 - p) / n)

    for _ in range(200):
        mid = (lo + hi) / 2
        inside = excess(mid) < 0
        if upper:
            lo, hi = (mid, hi) if inside else (lo, mid)
        else:
            lo, hi = (lo, mid) if inside else (mid, hi)
    return (lo + hi) / 2


class TestWilsonInterval:
    @pytest.mark.parametrize(("x", "n"), [(0, 10), (1, 10), (5, 10), (10, 10), (37, 400), (3, 1000), (999, 1000)])
    def test_equals_the_score_test_inversion(self, x: int, n: int) -> None:
        z = NormalDist().inv_cdf(0.975)
        ci = wilson_interval(x, n)
        assert ci is not None
        assert ci[0] == pytest.approx(_score_bound(x, n, z, upper=False), abs=1e-9)
        assert ci[1] == pytest.approx(_score_bound(x, n, z, upper=True), abs=1e-9)

    def test_a_textbook_value(self) -> None:
        # 0 successes in 10 at 95 %: [0, 0.2775] (Wilson 1927; Newcombe 1998, table I)
        ci = wilson_interval(0, 10)
        assert ci is not None and ci[0] == 0.0 and ci[1] == pytest.approx(0.2775, abs=1e-4)

    def test_no_observations_no_interval(self) -> None:
        assert wilson_interval(0, 0) is None


class TestMonthsOnBook:
    def test_whole_months_only(self) -> None:
        assert months_on_book(date(2026, 1, 31), date(2026, 2, 28)) == 1  # the month's last day
        assert months_on_book(date(2026, 1, 15), date(2026, 4, 14)) == 2
        assert months_on_book(date(2026, 1, 15), date(2026, 4, 15)) == 3
        assert add_months(date(2025, 11, 30), 3) == date(2026, 2, 28)


ON = date(2026, 11, 30)


def decided(i: int, outcome: str = "approve", limit: str = "10000.00", rate: str | None = "0.12",
            pd: str | None = "0.05", term: int | None = 12) -> Decided:
    return Decided(i, "challenger", "h", outcome, Decimal(limit), None if rate is None else Decimal(rate),
                   None if pd is None else Decimal(pd), term)


class TestArmStats:
    def test_only_loans_on_book_for_the_whole_window_are_outcomes(self) -> None:
        perf = {
            1: LoanPerformance(date(2026, 5, 1), None),  # 6 months: mature, good
            2: LoanPerformance(date(2026, 5, 1), date(2026, 6, 20)),  # bad within 3 months
            3: LoanPerformance(date(2026, 1, 1), date(2026, 6, 1)),  # bad, but after its first 3 months: good
            4: LoanPerformance(date(2026, 10, 1), date(2026, 11, 5)),  # 2 months on book: immature, even if bad
        }
        stats = arm_stats("challenger", [decided(i) for i in (1, 2, 3, 4, 5)] + [decided(6, "decline")], perf, ON,
                          outcome_months=3)
        assert (stats.loans, stats.mature, stats.immature, stats.bad) == (4, 3, 1, 1)
        assert stats.bad_rate == pytest.approx(1 / 3)
        assert stats.bad_ci == wilson_interval(1, 3)
        assert stats.approval_ci == wilson_interval(5, 6)

    def test_money_is_exact(self) -> None:
        rows = [decided(1, limit="10000.00", rate="0.12", pd="0.05", term=12),
                decided(2, limit="20000.00", rate="0.18", pd=None, term=6), decided(3, "refer", limit="0")]
        stats = arm_stats("challenger", rows, {}, ON, lgd=Decimal("0.45"))
        assert stats.approved_amount == Decimal("30000.00")
        assert stats.average_limit == Decimal("15000.00")
        assert stats.average_rate == Decimal("0.150000")
        assert stats.expected_loss == Decimal("225.00")  # 0.05 x 0.45 x 10,000; the second has no PD
        assert stats.without_pd == 1
        # 10,000 x 0.12 x 13/24 + 20,000 x 0.18 x 7/24
        assert stats.interest_income == Decimal("650.00") + Decimal("1050.00")
        assert stats.profit == stats.interest_income - stats.expected_loss

    @given(st.lists(st.tuples(st.integers(1, 10_000_000), st.integers(0, 400), st.integers(1, 1000),
                              st.integers(1, 60)), min_size=1, max_size=30))
    def test_profit_is_income_less_expected_loss_to_the_cent(self, loans: list[tuple[int, int, int, int]]) -> None:
        rows = [decided(i, limit=str(Decimal(c) / 100), rate=str(Decimal(r) / 1000), pd=str(Decimal(p) / 1000),
                        term=t) for i, (c, r, p, t) in enumerate(loans)]
        stats = arm_stats("challenger", rows, {}, ON, lgd=Decimal("0.45"))
        assert all(isinstance(v, Decimal) for v in (stats.expected_loss, stats.interest_income, stats.profit))
        assert stats.profit == stats.interest_income - stats.expected_loss
        assert stats.expected_loss.as_tuple().exponent == -2
        assert stats.approved_amount == sum((d.limit for d in rows), Decimal(0))


class TestSurvival:
    def test_kaplan_meier_with_young_loans_censored(self) -> None:
        loans = [
            LoanPerformance(date(2026, 5, 1), None),  # observed 6 months, good
            LoanPerformance(date(2026, 5, 1), date(2026, 6, 15)),  # bad in month 2
            LoanPerformance(date(2026, 10, 15), None),  # observed 1 month: censored after it
            LoanPerformance(date(2026, 5, 1), date(2026, 8, 10)),  # bad in month 4
        ]
        curve = {p.month: p for p in survival_curve(loans, ON, months=6)}
        assert (curve[1].at_risk, curve[1].went_bad, curve[1].still_good) == (4, 0, 1.0)
        assert (curve[2].at_risk, curve[2].went_bad) == (3, 1)  # the young loan has left the risk set
        assert curve[2].still_good == pytest.approx(2 / 3)
        assert (curve[4].at_risk, curve[4].went_bad) == (2, 1)
        assert curve[4].still_good == pytest.approx(2 / 3 * 1 / 2)
        assert curve[6].still_good == pytest.approx(1 / 3) and 7 not in curve
