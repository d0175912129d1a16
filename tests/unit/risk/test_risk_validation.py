from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from microlend.core.errors import ValidationError
from microlend.risk.validation import (
    auc,
    bin_shares,
    calibration_table,
    discrimination,
    gains_table,
    gini,
    ks,
    psi,
    psi_edges,
    psi_from_shares,
    psi_table,
    score_distribution,
    stability_status,
)

# six applicants: bads have pd 0.9, 0.8, 0.6; goods 0.7, 0.5, 0.2
Y6 = [1, 1, 0, 1, 0, 0]
P6 = [0.9, 0.8, 0.7, 0.6, 0.5, 0.2]


class TestDiscriminationOnSixApplicants:
    def test_auc_counts_correctly_ordered_pairs(self) -> None:
        # of 9 bad/good pairs, only (0.6 bad, 0.7 good) is out of order: 8/9
        assert auc(Y6, P6) == pytest.approx(8 / 9)

    def test_gini_is_twice_auc_minus_one(self) -> None:
        assert gini(Y6, P6) == pytest.approx(7 / 9)

    def test_ks_is_the_widest_gap_of_cumulative_shares(self) -> None:
        # after 0.9, 0.8: 2/3 of bads and 0 goods -> 0.667
        assert ks(Y6, P6) == pytest.approx(2 / 3)

    def test_tied_predictions_count_half(self) -> None:
        assert auc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
        assert ks([1, 0], [0.5, 0.5]) == pytest.approx(0.0)

    def test_agrees_with_scikit_learn_on_random_data(self) -> None:
        rng = np.random.default_rng(1)
        y = rng.integers(0, 2, 500)
        p = np.round(rng.random(500) * 0.5 + y * 0.2, 2)  # rounding makes ties
        assert auc(y, p) == pytest.approx(roc_auc_score(y, p))

    def test_one_class_only_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="both good and bad"):
            auc([0, 0, 0], [0.1, 0.2, 0.3])

    def test_summary_holds_count_and_bad_rate(self) -> None:
        d = discrimination(Y6, P6)
        assert d["count"] == 6 and d["bad_rate"] == 0.5


class TestGainsAndCalibration:
    def test_gains_by_thirds_by_hand(self) -> None:
        t = gains_table(Y6, P6, n_groups=3)
        assert t["bads"].tolist() == [2, 1, 0]
        assert t["cum_bad_share"].round(4).tolist() == [0.6667, 1.0, 1.0]
        # lift of the first third: bad rate 1.0 / overall 0.5
        assert t["lift"].tolist() == [2.0, 1.0, 0.0]

    def test_calibration_compares_mean_pd_and_observed_rate(self) -> None:
        t = calibration_table(Y6, P6, n_bands=2)
        assert t["predicted_bad_rate"].round(4).tolist() == [0.8, 0.4333]
        assert t["observed_bad_rate"].round(4).tolist() == [0.6667, 0.3333]

    def test_score_distribution_counts_each_class_per_band(self) -> None:
        t = score_distribution([1, 0, 0, 1], [500, 560, 590, 510], edges=[500, 550, 600])
        assert t[["good", "bad"]].to_numpy().tolist() == [[0, 2], [2, 0]]


class TestPopulationStability:
    def test_psi_by_hand_from_shares(self) -> None:
        # (0.3-0.5)ln(0.3/0.5) + (0.7-0.5)ln(0.7/0.5) = 0.10217 + 0.06729
        assert psi_from_shares([0.5, 0.5], [0.3, 0.7]) == pytest.approx(0.16946, abs=1e-5)

    def test_bins_come_from_the_expected_sample(self) -> None:
        expected = [1, 1, 1, 1, 2, 2, 2, 2]
        actual = [1, 1, 1, 2, 2, 2, 2, 2, 2, 2]
        assert psi_edges(expected, n_bins=2) == [1.5]
        assert bin_shares(actual, [1.5]).tolist() == [0.3, 0.7]
        assert psi(expected, actual, n_bins=2) == pytest.approx(0.16946, abs=1e-5)

    def test_same_population_is_stable(self) -> None:
        values = np.arange(1000.0)
        assert psi(values, values) == pytest.approx(0.0)
        assert stability_status(psi(values, values)) == "stable"

    def test_empty_bins_stay_finite(self) -> None:
        value = psi([1, 2, 3, 4], [10, 10, 10, 10], n_bins=4)
        assert math.isfinite(value) and value > 0.25
        assert stability_status(value) == "act"
        assert stability_status(0.1) == "watch"

    def test_table_contributions_add_up_to_the_index(self) -> None:
        rng = np.random.default_rng(3)
        a, b = rng.normal(size=2000), rng.normal(0.3, 1, size=2000)
        assert psi_table(a, b)["contribution"].sum() == pytest.approx(psi(a, b))
