"""Journey step selection, variant assignment and budgets as pure rules (no database)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microlend.core.errors import Conflict, ValidationError
from microlend.marketing.journeys import (
    StepSpec,
    Variant,
    assign_variants,
    check_variants,
    id_frame,
    meets,
    refuse_over_budget,
    select_next,
    step_due,
    variant_of,
    variant_results,
)

PREVIOUS = id_frame(range(1, 11))
CLICKED = id_frame([2, 4, 6, 99])  # 99 clicked but was not reached by the previous step
APPLIED = id_frame([4, 5])


def _ids(frame: pl.DataFrame) -> list[int]:
    return [int(c) for c in frame.get_column("customer_id").to_list()]


class TestStepSelection:
    def test_no_click_takes_the_non_clickers_of_the_previous_step(self) -> None:
        assert _ids(select_next(PREVIOUS, CLICKED, APPLIED, "no_click")) == [1, 3, 5, 7, 8, 9, 10]

    def test_no_application(self) -> None:
        assert _ids(select_next(PREVIOUS, CLICKED, APPLIED, "no_application")) == [1, 2, 3, 6, 7, 8, 9, 10]

    def test_clicked_but_did_not_apply(self) -> None:
        assert _ids(select_next(PREVIOUS, CLICKED, APPLIED, "clicked_no_application")) == [2, 6]

    def test_the_blocked_are_left_out(self) -> None:
        assert _ids(select_next(PREVIOUS, CLICKED, APPLIED, "no_click", id_frame([1, 3]))) == [5, 7, 8, 9, 10]

    def test_an_unknown_condition_is_refused(self) -> None:
        with pytest.raises(ValidationError):
            select_next(PREVIOUS, CLICKED, APPLIED, "bored")

    @settings(deadline=None)
    @given(st.sets(st.integers(1, 200)), st.sets(st.integers(1, 200)), st.sets(st.integers(1, 200)),
           st.sampled_from(["no_click", "no_application", "clicked_no_application"]))
    def test_agrees_with_the_rule_per_customer(self, prev: set[int], clicked: set[int], applied: set[int],
                                               condition: str) -> None:
        chosen = _ids(select_next(id_frame(prev), id_frame(clicked), id_frame(applied), condition))
        assert chosen == sorted(c for c in prev if meets(condition, clicked=c in clicked, applied=c in applied))

    def test_a_step_is_due_after_its_days_from_the_previous(self) -> None:
        t = datetime(2026, 3, 2, tzinfo=UTC)
        assert not step_due(t, 3, t + timedelta(days=2, hours=23))
        assert step_due(t, 3, t + timedelta(days=3))
        assert not step_due(None, 3, t + timedelta(days=30))

    @pytest.mark.parametrize(("days", "condition", "action"), [(0, "no_click", "sms"), (3, "x", "sms"),
                                                               (3, "no_click", "email")])
    def test_a_bad_step_is_refused(self, days: int, condition: str, action: str) -> None:
        with pytest.raises(ValidationError):
            StepSpec(days, condition, action)


class TestVariants:
    VARIANTS = (Variant("A", 70, "a"), Variant("B", 30, "b"))

    def test_assignment_is_stable(self) -> None:
        ids = list(range(1, 2001))
        first = assign_variants("7:12", ids, self.VARIANTS)
        assert first == assign_variants("7:12", ids, self.VARIANTS)
        assert first[:50] == [variant_of("7:12", c, self.VARIANTS) for c in ids[:50]]

    def test_assignment_follows_the_weights(self) -> None:
        counts = Counter(assign_variants("7:12", list(range(1, 20001)), self.VARIANTS))
        assert abs(counts["A"] / 20000 - 0.7) < 0.02 and abs(counts["B"] / 20000 - 0.3) < 0.02

    def test_another_campaign_draws_anew(self) -> None:
        ids = list(range(1, 501))
        assert assign_variants("7:12", ids, self.VARIANTS) != assign_variants("7:13", ids, self.VARIANTS)

    @pytest.mark.parametrize("variants", [[Variant("A", 1, "a")], [Variant("A", 1, "a"), Variant("A", 1, "b")]])
    def test_one_variant_or_a_repeated_key_is_refused(self, variants: list[Variant]) -> None:
        with pytest.raises(ValidationError):
            check_variants(variants)

    def test_results_carry_intervals_and_the_difference_to_the_first(self) -> None:
        a, b = variant_results({"A": (100, 20, 10), "B": (100, 40, 25)}, ["A", "B"])
        assert (a.conversion_rate, b.conversion_rate) == (0.10, 0.25)
        assert a.conversion_ci[0] < 0.10 < a.conversion_ci[1]
        assert a.difference is None and b.difference is not None
        d, low, high = b.difference
        assert d == pytest.approx(0.15) and 0 < low < d < high


class TestBudget:
    def test_within_budget_gives_the_cost(self) -> None:
        assert refuse_over_budget(Decimal("10"), Decimal("4"), 120, Decimal("0.05"), what="x") == Decimal("6.00")

    def test_over_budget_is_refused_with_the_figures(self) -> None:
        with pytest.raises(Conflict, match="4 of the budget of 10"):
            refuse_over_budget(Decimal("10"), Decimal("4"), 121, Decimal("0.05"), what="x")

    def test_no_budget_never_refuses(self) -> None:
        assert refuse_over_budget(None, Decimal("1E6"), 10, Decimal("30"), what="x") == Decimal("300")
