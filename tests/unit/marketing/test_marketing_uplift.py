from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from microlend.core.errors import ValidationError
from microlend.marketing.uplift import (
    ClassTransformationUplift,
    TwoModelUplift,
    auuc_normalised,
    evaluate,
    qini_area,
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

    def test_the_qini_area_is_the_trapezoid_area(self) -> None:
        # trapezoids of width 1/8: (0.5 + 1 + 1.5 + 1.5 + 0.75 + 0.75 + 5/6 + 1/3) / 8 = 43/48
        assert qini_area(SCORE, TREAT, OUTCOME) == pytest.approx(43 / 48)
        assert qini_coefficient(SCORE, TREAT, OUTCOME) == pytest.approx(43 / 48)  # Q(n) = 0: random line is flat

    def test_qini_coefficient_subtracts_the_random_line(self) -> None:
        outcome = [1, 0, 1, 0, 1, 0, 0, 0]  # Q: 1,1,2,2,3,3,3,3 -> Q(n)=3
        area = (0.5 + 1 + 1.5 + 2 + 2.5 + 3 + 3 + 3) / 8
        assert qini_area(SCORE, TREAT, outcome) == pytest.approx(area)
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
        assert qini_area(s, t, y) == pytest.approx(43 / 48)

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


class TestNamedMeasures:
    """The raw Qini area and the normalised AUUC are different figures with different names."""

    def test_normalised_auuc_by_hand(self) -> None:
        # uplift curve U(k) = (Yt/Nt - Yc/Nc) * k: 1, 2, 3, 2, 5/6, 2, 7/6, 0 -> area 12/8 = 1.5; random: U(n)/2 = 0
        # perfect ranking (treated converters, control non-converters, treated non-converters, control converters
        # in tied pairs): U = 2, 4, 3, 0 at k = 2, 4, 6, 8 -> area (1 + 3 + 3.5 + 1.5) / 4 = 2.25
        assert auuc_normalised(SCORE, TREAT, OUTCOME) == pytest.approx(1.5 / 2.25)

    def test_the_perfect_ranking_scores_one_and_its_reverse_below_zero(self) -> None:
        from microlend.marketing.uplift import perfect_uplift_score

        perfect = perfect_uplift_score(TREAT, OUTCOME)
        assert auuc_normalised(perfect, TREAT, OUTCOME) == pytest.approx(1.0)
        assert auuc_normalised(-perfect, TREAT, OUTCOME) < 0

    def test_the_evaluation_names_each_figure(self) -> None:
        result = evaluate(np.asarray(SCORE), TREAT, OUTCOME)
        assert result.qini_area == pytest.approx(43 / 48)
        assert result.auuc_normalised == pytest.approx(1.5 / 2.25)
        assert result.customers == 8


class TestTiedScores:
    """Customers with one score are one group: their input order never changes a figure."""

    def test_one_score_for_everyone_is_random_targeting(self) -> None:
        flat = [0.5] * 8
        x, q = qini_curve(flat, TREAT, [1, 0, 1, 0, 1, 0, 0, 0])
        assert x.tolist() == [0.0, 1.0] and q.tolist() == [0.0, 3.0]
        assert qini_coefficient(flat, TREAT, [1, 0, 1, 0, 1, 0, 0, 0]) == pytest.approx(0.0)
        assert auuc_normalised(flat, TREAT, [1, 0, 1, 0, 1, 0, 0, 0]) == pytest.approx(0.0)

    def test_reordering_tied_customers_changes_nothing(self) -> None:
        rng = np.random.default_rng(5)
        score = rng.integers(0, 4, 300).astype(float)  # four distinct scores: many ties
        t = rng.integers(0, 2, 300)
        y = (rng.random(300) < 0.2 + 0.1 * t * (score > 1)).astype(int)
        perm = rng.permutation(300)
        for measure in (qini_area, qini_coefficient, auuc_normalised):
            assert measure(score, t, y) == pytest.approx(measure(score[perm], t[perm], y[perm]), abs=1e-12)
        assert uplift_at_top_k(score, t, y, 0.1) == pytest.approx(uplift_at_top_k(score[perm], t[perm], y[perm], 0.1))

    def test_the_curves_match_a_threshold_by_threshold_reference(self) -> None:
        rng = np.random.default_rng(11)
        score = np.round(rng.random(200), 1)
        t = rng.integers(0, 2, 200)
        y = (rng.random(200) < 0.3).astype(int)
        xs, qs, us = [0.0], [0.0], [0.0]
        for threshold in sorted(set(score.tolist()), reverse=True):  # everyone scoring >= threshold is targeted
            top = score >= threshold
            nt, nc = int((top & (t == 1)).sum()), int((top & (t == 0)).sum())
            yt, yc = int((top & (t == 1) & (y == 1)).sum()), int((top & (t == 0) & (y == 1)).sum())
            xs.append(top.sum() / 200)
            qs.append(yt - (yc * nt / nc if nc else 0.0))
            us.append(((yt / nt if nt else 0.0) - (yc / nc if nc else 0.0)) * top.sum())
        from microlend.marketing.uplift import uplift_curve

        x, q = qini_curve(score, t, y)
        assert x == pytest.approx(xs) and q == pytest.approx(qs)
        assert uplift_curve(score, t, y)[1] == pytest.approx(us)
        area = sum((qs[i] + qs[i - 1]) / 2 * (xs[i] - xs[i - 1]) for i in range(1, len(xs)))
        assert qini_area(score, t, y) == pytest.approx(area)
