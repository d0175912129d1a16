from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from microlend.core.errors import ValidationError
from microlend.marketing.uplift import (
    ClassTransformationUplift,
    TwoModelUplift,
    auuc,
    evaluate,
    qini_coefficient,
    qini_curve,
    rank_targets,
    uplift_at_top_k,
)

# Eight customers, already in score order; treated and control alternate.
SCORE = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
TREAT = [1, 0, 1, 0, 1, 0, 1, 0]
OUTCOME = [1, 0, 1, 1, 0, 0, 0, 1]


class TestQiniByHand:
    def test_curve(self) -> None:
        # k: Yt Nt Yc Nc -> Q = Yt - Yc*Nt/Nc
        # 1: 1 1 0 0 -> 1;   2: 1 1 0 1 -> 1;   3: 2 2 0 1 -> 2;   4: 2 2 1 2 -> 1
        # 5: 2 3 1 2 -> 0.5; 6: 2 3 1 3 -> 1;   7: 2 4 1 3 -> 2/3; 8: 2 4 2 4 -> 0
        x, q = qini_curve(SCORE, TREAT, OUTCOME)
        assert x.tolist() == [k / 8 for k in range(9)]
        assert q == pytest.approx([0, 1, 1, 2, 1, 0.5, 1, 2 / 3, 0])

    def test_auuc_is_the_trapezoid_area(self) -> None:
        # trapezoids of width 1/8: (0.5 + 1 + 1.5 + 1.5 + 0.75 + 0.75 + 5/6 + 1/3) / 8 = 43/48
        assert auuc(SCORE, TREAT, OUTCOME) == pytest.approx(43 / 48)
        assert qini_coefficient(SCORE, TREAT, OUTCOME) == pytest.approx(43 / 48)  # Q(n) = 0: random line is flat

    def test_qini_coefficient_subtracts_the_random_line(self) -> None:
        outcome = [1, 0, 1, 0, 1, 0, 0, 0]  # Q: 1,1,2,2,3,3,3,3 -> Q(n)=3
        area = (0.5 + 1 + 1.5 + 2 + 2.5 + 3 + 3 + 3) / 8
        assert auuc(SCORE, TREAT, outcome) == pytest.approx(area)
        assert qini_coefficient(SCORE, TREAT, outcome) == pytest.approx(area - 1.5)

    @pytest.mark.parametrize(("fraction", "expected"), [(0.25, 1.0), (0.5, 0.5), (1.0, 0.0), (0.3, 1.0)])
    def test_uplift_at_top_k(self, fraction: float, expected: float) -> None:
        # top 2: treated {1}, control {0} -> 1; top 4: treated {1,1}, control {0,1} -> 0.5
        # all: treated 2/4, control 2/4 -> 0; 30% of 8 = 2.4 -> top 3: treated {1,1}, control {0} -> 1
        assert uplift_at_top_k(SCORE, TREAT, OUTCOME, fraction) == pytest.approx(expected)

    def test_order_comes_from_the_score_not_the_input(self) -> None:
        perm = [7, 2, 5, 0, 3, 6, 1, 4]
        s = [SCORE[i] for i in perm]
        t = [TREAT[i] for i in perm]
        y = [OUTCOME[i] for i in perm]
        assert auuc(s, t, y) == pytest.approx(43 / 48)

    def test_top_k_without_a_control_is_refused(self) -> None:
        with pytest.raises(ValidationError):
            uplift_at_top_k(SCORE, TREAT, OUTCOME, 0.125)

    def test_bad_inputs_are_refused(self) -> None:
        with pytest.raises(ValidationError):
            qini_curve([0.1, 0.2], [1, 2], [0, 1])
        with pytest.raises(ValidationError):
            qini_curve([0.1], [1, 0], [0, 1])


def _campaign(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Customers with x > 0 respond to a contact (base 10% -> 30%); others do not (10% either way)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    t = (rng.random(n) < 0.5).astype(int)
    p = 0.1 + 0.2 * t * (x[:, 0] > 0)
    y = (rng.random(n) < p).astype(int)
    return x, t, y


class TestUpliftModels:
    @pytest.mark.parametrize("model", [TwoModelUplift, ClassTransformationUplift])
    def test_a_model_finds_the_persuadable_customers(self, model: type) -> None:
        x, t, y = _campaign(6000, 1)
        fitted = model().fit(x, t, y)
        xv, tv, yv = _campaign(6000, 2)
        score = fitted.predict(xv)
        result = evaluate(score, tv, yv)
        assert result.qini_coefficient > 0
        assert result.uplift_at["20%"] > 0.1  # the top fifth is the persuadable half's best
        random_score = np.random.default_rng(3).random(len(yv))
        assert qini_coefficient(score, tv, yv) > qini_coefficient(random_score, tv, yv)

    def test_rank_targets_puts_the_most_moved_first(self) -> None:
        x, t, y = _campaign(4000, 4)
        fitted = TwoModelUplift().fit(x, t, y)
        customers = pl.DataFrame({"customer_id": [1, 2, 3], "a": [2.0, -2.0, 0.5], "b": [0.0, 0.0, 0.0]})
        ranked = rank_targets(fitted, customers, ["a", "b"])
        assert ranked.get_column("customer_id").to_list()[0] == 1
        assert ranked.get_column("rank").to_list() == [1, 2, 3]

    def test_a_campaign_without_converters_in_control_cannot_be_learned(self) -> None:
        with pytest.raises(ValidationError):
            TwoModelUplift().fit(np.zeros((4, 1)), [1, 1, 0, 0], [1, 0, 0, 0])
