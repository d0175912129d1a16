"""Properties that hold for any data, checked with generated examples."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from microlend.risk.validation import auc, ks, psi

outcomes_and_predictions = st.integers(min_value=2, max_value=60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n).filter(lambda y: 0 < sum(y) < len(y)),
        st.lists(st.floats(0, 1, allow_nan=False), min_size=n, max_size=n),
    )
)


class TestMetricProperties:
    @given(outcomes_and_predictions)
    def test_auc_and_ks_lie_between_zero_and_one(self, data: tuple[list[int], list[float]]) -> None:
        y, p = data
        assert 0.0 <= auc(y, p) <= 1.0
        assert 0.0 <= ks(y, p) <= 1.0

    @given(outcomes_and_predictions)
    def test_reversing_the_ranking_mirrors_the_auc(self, data: tuple[list[int], list[float]]) -> None:
        y, p = data
        assert abs(auc(y, p) + auc(y, [-v for v in p]) - 1.0) < 1e-12

    @given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=5, max_size=200),
           st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=5, max_size=200))
    def test_psi_is_never_negative(self, expected: list[float], actual: list[float]) -> None:
        assert psi(expected, actual) >= -1e-12


@settings(max_examples=60, deadline=None)
@given(st.fixed_dictionaries({}, optional={
    "credit_amount": st.one_of(st.none(), st.floats(0, 50_000), st.just(float("nan")), st.integers(0, 50_000)),
    "duration_in_month": st.one_of(st.none(), st.integers(1, 80)),
    "purpose": st.one_of(st.none(), st.sampled_from(["car (new)", "business", "retraining"]), st.text(max_size=8)),
    "age_in_years": st.one_of(st.none(), st.integers(18, 90)),
}))
def test_one_case_and_a_batch_of_one_always_agree(german_scorecard, case: dict[str, object]) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    model = german_scorecard.model
    full = {f: case.get(f) for f in model.features}
    pd_, score, reasons = model.score_one(full)
    batch = model.score_batch(pd.DataFrame([full]).astype(
        {f: "float64" for f in model.features if f in ("credit_amount", "duration_in_month", "age_in_years")}))
    assert abs(score - batch["score"].iloc[0]) < 1e-9  # same points, summed in another order
    assert ";".join(r.feature for r in reasons) == batch["reasons"].iloc[0]
    assert 0.0 < pd_ < 1.0


@settings(max_examples=80, deadline=None)
@given(row=st.integers(0, 999), feature=st.integers(0, 30), unseen=st.text(min_size=1, max_size=12))
def test_a_missing_or_unseen_value_never_scores_above_the_most_conservative_bin(  # type: ignore[no-untyped-def]
        german_scorecard, german, row: int, feature: int, unseen: str) -> None:
    """A value the model never saw in training (missing, or an unseen category) scores no better than the
    characteristic's lowest bin, so blanking or mistyping a field can never raise an applicant's score."""
    model = german_scorecard.model
    c = model.characteristics[feature % len(model.characteristics)]
    case = german.frame.iloc[row].to_dict()
    lowest = min(model.score_one({**case, c.name: v})[1] for v in _one_value_per_bin(c))
    if c.missing_count == 0:
        assert model.score_one({**case, c.name: None})[1] <= lowest + 1e-9
    if c.has_categories and unseen not in {v for group in c.categories for v in group}:
        assert model.score_one({**case, c.name: unseen})[1] <= lowest + 1e-9
    assert model.score_one({**case, c.name: None})[1] <= model.score_one(case)[1] + 1e-9


def _one_value_per_bin(c):  # type: ignore[no-untyped-def]
    if c.has_categories:
        return [group[0] for group in c.categories if group]
    s = list(c.splits)
    return [s[0] - 1.0, *[(a + b) / 2 for a, b in pairwise(s)], s[-1] + 1.0] if s else [0.0]


@settings(max_examples=100, deadline=None)
@given(woe=st.lists(st.floats(-3, 3, allow_nan=False), min_size=1, max_size=8),
       coefficient=st.floats(-2, -0.05), missing_woe=st.floats(-3, 3, allow_nan=False),
       missing_count=st.integers(0, 1))
def test_any_card_scores_an_unseen_missing_value_at_its_lowest_bin(
        woe: list[float], coefficient: float, missing_woe: float, missing_count: int) -> None:
    from microlend.risk.scorecard import Characteristic, ScorecardModel

    groups = tuple((f"c{i}",) for i in range(len(woe)))
    c = Characteristic(name="x", kind="categorical", labels=tuple(g[0] for g in groups), woe=tuple(woe),
                       counts=(10,) * len(woe), event_rates=(0.1,) * len(woe), coefficient=coefficient, iv=0.1,
                       categories=groups, missing_woe=missing_woe, missing_count=missing_count)
    card = ScorecardModel([c], intercept=-1.0)
    lowest = min(card.score_one({"x": g[0]})[1] for g in groups)
    assert card.score_one({"x": "never seen"})[1] <= lowest + 1e-9
    if missing_count == 0:
        assert card.score_one({})[1] <= lowest + 1e-9
