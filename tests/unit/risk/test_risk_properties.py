"""Properties that hold for any data, checked with generated examples."""

from __future__ import annotations

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
