from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from microlend.core.errors import ValidationError
from microlend.risk.artefacts import load_model, save_model
from microlend.risk.gbdt import train_gbdt
from microlend.risk.monitoring import characteristic_stability, monitor, performance_by_month, score_stability


class TestScoreStability:
    def test_live_scores_against_the_development_profile(self) -> None:
        development = {"score_edges": [500.0], "score_shares": [0.5, 0.5]}
        result = score_stability(development, np.array([450.0, 480, 490, 520, 530, 540, 550, 560, 570, 580]))
        assert result["live_shares"] == [0.3, 0.7]
        assert result["psi"] == pytest.approx(0.16946, abs=1e-5)
        assert result["status"] == "watch"


class TestCharacteristicStability:
    def test_the_development_population_is_stable_against_itself(self, german_scorecard, german_split) -> None:  # type: ignore[no-untyped-def]
        train, _ = german_split
        rows = characteristic_stability(german_scorecard.model, train)
        assert {r["feature"] for r in rows} == set(german_scorecard.model.features)
        assert all(r["csi"] < 1e-9 for r in rows)

    def test_a_shifted_feature_is_flagged_for_action(self, german_scorecard, german_split) -> None:  # type: ignore[no-untyped-def]
        _, test = german_split
        shifted = test.copy()
        shifted["duration_in_month"] = 60
        rows = characteristic_stability(german_scorecard.model, shifted)
        assert rows[0]["feature"] == "duration_in_month" and rows[0]["status"] == "act"

    def test_gbdt_needs_the_development_sample_and_compares_with_it(self, german_split, german) -> None:  # type: ignore[no-untyped-def]
        train, test = german_split
        model = train_gbdt(train, german.target, german.bad).model
        with pytest.raises(ValidationError, match="give the development sample"):
            characteristic_stability(model, test)
        shifted = test.copy()
        shifted["purpose"] = "a purpose never seen"
        rows = characteristic_stability(model, shifted, development=train)
        assert rows[0]["feature"] == "purpose" and rows[0]["status"] == "act"
        assert next(r for r in rows if r["feature"] == "age_in_years")["csi"] < 0.1

    def test_missing_and_unseen_values_are_counted_per_feature(self, german_split, german, german_scorecard,
                                                              tmp_path) -> None:  # type: ignore[no-untyped-def]
        """Conservatively scored values show in monitoring, for a GBDT and a scorecard alike."""
        train, test = german_split
        live = test.head(50).copy()
        live["purpose"] = ["a purpose never seen"] * 20 + list(live["purpose"].iloc[20:])
        live["credit_amount"] = [np.nan] * 7 + list(live["credit_amount"].iloc[7:])
        gbdt = train_gbdt(train, german.target, german.bad).model
        rows = {r["feature"]: r for r in characteristic_stability(gbdt, live, development=train)}
        assert (rows["purpose"]["unseen"], rows["purpose"]["missing"]) == (20, 0)
        assert (rows["credit_amount"]["missing"], rows["age_in_years"]["missing"]) == (7, 0)
        card = german_scorecard.model
        save_model(card, tmp_path, target=german.target, bad=german.bad, created_at=datetime(2026, 1, 1, tzinfo=UTC),
                   data_hash="x", development_scores=card.score_batch(train)["score"])
        result = monitor(load_model(tmp_path), live)
        counted = {r["feature"]: (r["missing"], r["unseen"]) for r in result["missing_unseen"]}
        assert counted.get("purpose") == (0, 20) and result["unseen_rows"] == 20
        if "credit_amount" in card.features:
            assert counted["credit_amount"] == (7, 0)


class TestPerformanceByMonth:
    def test_auc_and_ks_per_month_by_hand(self) -> None:
        dates = pd.Series(["2026-01-05", "2026-01-20", "2026-01-28", "2026-02-03", "2026-02-10"])
        y = np.array([1, 0, 0, 1, 1])
        pd_ = np.array([0.9, 0.2, 0.95, 0.5, 0.6])
        t = performance_by_month(dates, y, pd_)
        assert t["month"].tolist() == ["2026-01", "2026-02"]
        assert t.loc[0, "auc"] == pytest.approx(0.5)  # bad 0.9 beats 0.2, loses to 0.95
        assert np.isnan(t.loc[1, "auc"])  # only bads in February
        assert t["count"].tolist() == [3, 2]


class TestMonitor:
    def test_everything_in_one_answer(self, german_scorecard, german_split, german, tmp_path) -> None:  # type: ignore[no-untyped-def]
        train, test = german_split
        model = german_scorecard.model
        save_model(model, tmp_path, target=german.target, bad=german.bad, created_at=datetime(2026, 1, 1, tzinfo=UTC),
                   data_hash="x", development_scores=model.score_batch(train)["score"])
        live = test.copy()
        live["applied_on"] = pd.date_range("2026-01-01", periods=len(live), freq="D").astype(str)
        result = monitor(load_model(tmp_path), live, date_column="applied_on")
        assert result["score"]["status"] == "stable"
        assert len(result["characteristics"]) == len(model.features)
        assert result["performance_by_month"][0]["month"] == "2026-01"
