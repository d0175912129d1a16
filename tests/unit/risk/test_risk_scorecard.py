from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from microlend.core.errors import ValidationError
from microlend.risk.scorecard import (
    Characteristic,
    PointsScaling,
    ScorecardConfig,
    ScorecardModel,
    factor,
    offset,
    select_by_correlation,
    select_by_iv,
    train_scorecard,
)


class TestPointsScaling:
    def test_factor_is_pdo_over_ln2(self) -> None:
        # 20 / 0.693147... = 28.8539
        assert factor(20) == pytest.approx(28.853900817779268)

    def test_offset_puts_600_points_at_odds_50(self) -> None:
        # 600 - 28.8539 * ln(50) = 600 - 28.8539 * 3.912023 = 487.1229
        assert offset(600, 50, 20) == pytest.approx(487.1228762045055)

    def test_doubling_the_odds_adds_pdo_points(self) -> None:
        s = PointsScaling()
        assert s.score_from_log_odds_bad(-math.log(50)) == pytest.approx(600)
        assert s.score_from_log_odds_bad(-math.log(100)) == pytest.approx(620)
        assert s.score_from_log_odds_bad(-math.log(25)) == pytest.approx(580)

    def test_configurable_scaling(self) -> None:
        s = PointsScaling(base_points=500, base_odds=20, pdo=50)
        assert s.score_from_log_odds_bad(-math.log(40)) == pytest.approx(550)
        assert s.pd_from_score(500) == pytest.approx(1 / 21)

    def test_non_positive_pdo_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="pdo"):
            PointsScaling(pdo=0)


def _one_feature_card() -> ScorecardModel:
    # intercept -1, coefficient -1, WoE 0.5 / -0.5 split at 10
    c = Characteristic(name="x", kind="numeric", labels=("(-inf, 10)", "[10, inf)"), woe=(0.5, -0.5),
                       counts=(5, 5), event_rates=(0.1, 0.3), coefficient=-1.0, iv=0.1, splits=(10.0,))
    return ScorecardModel([c], intercept=-1.0)


class TestPointsFromBins:
    def test_points_of_each_bin_by_hand(self) -> None:
        card = _one_feature_card()
        # share = offset - factor * intercept = 487.12288 + 28.85390 = 515.97678
        # bin 0: 28.85390 * 0.5 + 515.97678 = 530.40373; bin 1: 501.54983; missing (never seen in training):
        # the lowest bin's 501.54983, not the neutral 515.97678
        table = card.points_table()
        assert table["points"].tolist() == [530.4, 501.55, 501.55]

    def test_a_value_on_a_split_falls_in_the_upper_bin(self) -> None:
        card = _one_feature_card()
        out = card.score_batch(pd.DataFrame({"x": [9.99, 10.0, np.nan]}))
        assert out["score"].round(4).tolist() == [530.4037, 501.5498, 501.5498]

    def test_pd_follows_the_score(self) -> None:
        card = _one_feature_card()
        pd_, score, _ = card.score_one({"x": 3})
        # log-odds of bad = -1 + (-1)(0.5) = -1.5
        assert pd_ == pytest.approx(1 / (1 + math.exp(1.5)))
        assert score == pytest.approx(487.1228762 + 28.8539008 * 1.5)


class TestFeatureSelection:
    def test_iv_threshold_keeps_strong_features_strongest_first(self) -> None:
        assert select_by_iv({"a": 0.01, "b": 0.30, "c": 0.02, "d": 0.1}) == ["b", "d", "c"]

    def test_the_weaker_of_a_correlated_pair_is_dropped(self) -> None:
        rng = np.random.default_rng(0)
        base = rng.normal(size=200)
        woe = pd.DataFrame({"strong": base, "echo": base + rng.normal(scale=0.1, size=200),
                            "other": rng.normal(size=200)})
        kept, dropped = select_by_correlation(woe, {"strong": 0.5, "echo": 0.2, "other": 0.1})
        assert kept == ["strong", "other"]
        assert list(dropped) == ["echo"]
        assert "with strong" in dropped["echo"]


class TestBinningOnASmallExample:
    def test_two_bins_with_hand_computed_woe_and_iv(self) -> None:
        # 50 applicants with x = 1 (20 bad), 50 with x = 3 (10 bad): one split, between 1 and 3
        x = np.repeat([1, 3], 50)
        bad = np.r_[np.arange(50) < 20, np.arange(50) < 10]
        frame = pd.DataFrame({"x": x, "y": np.where(bad, "bad", "good")})
        fit = train_scorecard(frame, "y", "bad", ScorecardConfig(min_iv=0.0))
        (c,) = fit.model.characteristics
        assert c.counts == (50, 50)
        # WoE = ln(good share / bad share): ln((30/70)/(20/30)) and ln((40/70)/(10/30))
        assert c.woe == pytest.approx((math.log((30 / 70) / (20 / 30)), math.log((40 / 70) / (10 / 30))))
        assert c.iv == pytest.approx(0.23353, abs=1e-4)
        assert 1 < c.splits[0] <= 3


class TestScorecardOnGermanCredit:
    def test_weak_features_are_dropped_with_their_reason(self, german_scorecard) -> None:  # type: ignore[no-untyped-def]
        fit = german_scorecard
        assert "foreign_worker" not in fit.model.features
        assert fit.dropped["foreign_worker"].startswith("IV ")
        assert all(fit.iv[f] >= 0.02 for f in fit.model.features)

    def test_every_coefficient_rewards_good_woe(self, german_scorecard) -> None:  # type: ignore[no-untyped-def]
        assert all(c.coefficient < 0 for c in german_scorecard.model.characteristics)

    def test_fast_tables_equal_the_optbinning_transform(self, german_scorecard, german) -> None:  # type: ignore[no-untyped-def]
        fast = german_scorecard.model.score_batch(german.frame, with_reasons=False)["score"].to_numpy()
        reference = german_scorecard.reference_scores(german.frame)
        np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-9)

    def test_one_case_equals_the_batch(self, german_scorecard, german) -> None:  # type: ignore[no-untyped-def]
        model = german_scorecard.model
        batch = model.score_batch(german.frame.head(50))
        for i, row in enumerate(german.frame.head(50).to_dict("records")):
            pd_, score, reasons = model.score_one(row)
            assert score == pytest.approx(batch["score"].iloc[i], abs=1e-9)
            assert pd_ == pytest.approx(batch["pd"].iloc[i])
            assert ";".join(r.feature for r in reasons) == batch["reasons"].iloc[i]

    def test_missing_values_and_unseen_categories_score_at_the_lowest_points(
        self, german_scorecard, german  # type: ignore[no-untyped-def]
    ) -> None:
        model = german_scorecard.model
        rows = german.frame.head(3).copy()
        rows["purpose"] = ["a purpose never seen", None, "car (new)"]
        rows["credit_amount"] = [np.nan, 1000, 1000]
        out = model.score_batch(rows)
        assert out["score"].notna().all() and out["unseen"].tolist() == [1, 0, 0]
        j = model.features.index("purpose")
        table = model.points_table()
        lowest = table[(table["feature"] == "purpose") & ~table["bin"].isin(["Missing", "Unseen category"])][
            "points"].min()
        pts = model.points_matrix(rows)
        assert round(pts[0, j], 2) == lowest and round(pts[1, j], 2) == lowest
        assert pts[2, j] > pts[0, j]
        worst = model.points_matrix(german.frame).min(axis=0).sum()
        assert model.score_one({})[1] == pytest.approx(worst)

    def test_text_in_a_numeric_column_is_refused_by_row(self, german_scorecard, german) -> None:  # type: ignore[no-untyped-def]
        rows = german.frame.head(3).astype({"credit_amount": object})
        rows.loc[1, "credit_amount"] = "lots"
        with pytest.raises(ValidationError, match="credit_amount: expected numbers, found 'lots' in row 2"):
            german_scorecard.model.score_batch(rows)
        with pytest.raises(ValidationError, match="credit_amount: expected a number"):
            german_scorecard.model.score_one({"credit_amount": "lots"})

    def test_a_missing_column_is_refused_by_name(self, german_scorecard, german) -> None:  # type: ignore[no-untyped-def]
        with pytest.raises(ValidationError, match="purpose: column is missing"):
            german_scorecard.model.score_batch(german.frame.drop(columns=["purpose"]))

    def test_higher_score_means_lower_pd(self, german_scorecard, german) -> None:  # type: ignore[no-untyped-def]
        out = german_scorecard.model.score_batch(german.frame).sort_values("score")
        assert out["pd"].is_monotonic_decreasing

    def test_reasons_name_the_characteristics_furthest_below_their_neutral_points(
        self, german_scorecard, german  # type: ignore[no-untyped-def]
    ) -> None:
        model = german_scorecard.model
        for i in range(20):
            row = german.frame.iloc[i].to_dict()
            _, _, reasons = model.score_one(row, top_n=3)
            pts = model.points_matrix(german.frame.iloc[[i]])[0]
            below = model.base_share - pts  # points at WoE 0: the average applicant's
            order = np.argsort(-below, kind="stable")[:3]
            expected = [model.features[j] for j in order if below[j] > 0]
            assert [r.feature for r in reasons] == expected

    def test_no_reason_names_a_characteristic_scored_at_or_above_neutral(
        self, german_scorecard, german_split  # type: ignore[no-untyped-def]
    ) -> None:
        """Case 11: a reason is a characteristic that truly lowered the score, never one above average."""
        model = german_scorecard.model
        _, test = german_split
        out = model.score_batch(test)
        pts = model.points_matrix(test)
        named = 0
        for i, codes in enumerate(out["reasons"]):
            for code in filter(None, codes.split(";")):
                named += 1
                assert pts[i, model.features.index(code)] < model.base_share, (i, code)
        assert named > len(test)


class TestPointsTableExport:
    def test_csv_and_excel_hold_the_same_table(self, german_scorecard, tmp_path) -> None:  # type: ignore[no-untyped-def]
        model = german_scorecard.model
        csv = model.export_points_table(tmp_path / "points.csv")
        xlsx = model.export_points_table(tmp_path / "points.xlsx")
        from_csv = pd.read_csv(csv)
        from_xlsx = pd.read_excel(xlsx, engine="openpyxl")
        assert list(from_csv.columns) == ["feature", "bin", "points", "woe", "count"]
        assert from_csv["points"].tolist() == from_xlsx["points"].tolist()
        assert set(from_csv["feature"]) == set(model.features)

    def test_other_formats_are_refused(self, german_scorecard, tmp_path) -> None:  # type: ignore[no-untyped-def]
        with pytest.raises(ValidationError, match=r"\.csv or \.xlsx"):
            german_scorecard.model.export_points_table(tmp_path / "points.pdf")

    def test_round_trip_through_plain_data(self, german_scorecard, german) -> None:  # type: ignore[no-untyped-def]
        model = german_scorecard.model
        again = ScorecardModel.from_dict(model.to_dict())
        pd.testing.assert_frame_equal(again.score_batch(german.frame), model.score_batch(german.frame))


class TestFastPathEqualsOptbinning:
    def test_on_lending_club_with_its_many_categories(self) -> None:
        from microlend.risk.datasets import lending_club

        ds = lending_club()
        fit = train_scorecard(ds.frame, ds.target, ds.bad)
        fast = fit.model.score_batch(ds.frame, with_reasons=False)["score"].to_numpy()
        np.testing.assert_allclose(fast, fit.reference_scores(ds.frame), rtol=0, atol=1e-9)

    def test_with_missing_values_and_unseen_categories(self, german_scorecard, german) -> None:  # type: ignore[no-untyped-def]
        # optbinning gives a missing value never seen in training and an unseen category WoE 0 (neutral points);
        # the scorecard gives them the lowest points instead, so those rows score below optbinning's path
        rows = german.frame.head(50).copy()
        rows.loc[0:9, "purpose"] = "a purpose never seen"
        rows.loc[10:19, "purpose"] = None
        rows.loc[20:29, "credit_amount"] = np.nan
        rows.loc[30:39, "status_of_existing_checking_account"] = "unknown status"
        fast = german_scorecard.model.score_batch(rows, with_reasons=False)["score"].to_numpy()
        reference = german_scorecard.reference_scores(rows)
        np.testing.assert_allclose(fast[40:], reference[40:], rtol=0, atol=1e-9)
        assert (fast[:40] < reference[:40]).all()
