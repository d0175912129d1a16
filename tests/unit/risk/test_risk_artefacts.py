from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pytest

from microlend.core.errors import ValidationError
from microlend.risk.artefacts import ScoringModel, dataset_hash, load_model, save_model
from microlend.risk.gbdt import train_gbdt

CREATED = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


class TestDatasetHash:
    def test_same_data_same_hash_whatever_the_column_order(self, german) -> None:  # type: ignore[no-untyped-def]
        frame = german.frame
        assert dataset_hash(frame) == dataset_hash(frame[list(reversed(frame.columns))])

    def test_one_changed_value_changes_the_hash(self, german) -> None:  # type: ignore[no-untyped-def]
        changed = german.frame.copy()
        changed.loc[0, "credit_amount"] += 1
        assert dataset_hash(changed) != dataset_hash(german.frame)


class TestSavedScorecard:
    def test_round_trip_scores_the_same_without_pickle(self, german_scorecard, german, tmp_path) -> None:  # type: ignore[no-untyped-def]
        model = german_scorecard.model
        meta = save_model(model, tmp_path, target=german.target, bad=german.bad, created_at=CREATED,
                          data_hash=dataset_hash(german.frame), metrics={"test": {"auc": 0.8}},
                          development_scores=model.score_batch(german.frame)["score"])
        assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "scorecard.json"]
        loaded = load_model(tmp_path)
        assert isinstance(loaded.model, ScoringModel)
        pd.testing.assert_frame_equal(loaded.model.score_batch(german.frame), model.score_batch(german.frame))
        assert loaded.metadata == meta
        assert meta.created_at == "2026-03-01T09:30:00+00:00"
        assert meta.kind == "scorecard" and meta.features == model.features
        assert len(meta.development["score_shares"]) == len(meta.development["score_edges"]) + 1

    def test_an_edited_points_table_is_refused(self, german_scorecard, german, tmp_path) -> None:  # type: ignore[no-untyped-def]
        save_model(german_scorecard.model, tmp_path, target=german.target, bad=german.bad, created_at=CREATED,
                   data_hash="x")
        card = json.loads((tmp_path / "scorecard.json").read_text())
        card["intercept"] += 0.5
        (tmp_path / "scorecard.json").write_text(json.dumps(card))
        with pytest.raises(ValidationError, match=r"scorecard\.json changed after the model was saved"):
            load_model(tmp_path)

    def test_a_directory_without_a_model_is_refused(self, tmp_path) -> None:  # type: ignore[no-untyped-def]
        with pytest.raises(ValidationError, match=r"no model\.json"):
            load_model(tmp_path)

    def test_the_content_hash_follows_the_model_not_the_time(self, german_scorecard, german, tmp_path) -> None:  # type: ignore[no-untyped-def]
        a = save_model(german_scorecard.model, tmp_path / "a", target="t", bad="b", created_at=CREATED,
                       data_hash="x")
        b = save_model(german_scorecard.model, tmp_path / "b", target="t", bad="b",
                       created_at=datetime(2027, 1, 1, tzinfo=UTC), data_hash="x")
        assert a.content_hash == b.content_hash

    def test_naive_timestamps_are_refused(self, german_scorecard, tmp_path) -> None:  # type: ignore[no-untyped-def]
        with pytest.raises(ValidationError, match="created_at"):
            save_model(german_scorecard.model, tmp_path, target="t", bad="b", created_at=datetime(2026, 1, 1),
                       data_hash="x")


class TestSavedGbdt:
    def test_round_trip_from_lightgbm_text_and_category_maps(self, german_split, german, tmp_path) -> None:  # type: ignore[no-untyped-def]
        train, test = german_split
        model = train_gbdt(train, german.target, german.bad).model
        save_model(model, tmp_path, target=german.target, bad=german.bad, created_at=CREATED, data_hash="x")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["gbdt_categories.json", "gbdt_model.txt",
                                                              "model.json"]
        loaded = load_model(tmp_path).model
        pd.testing.assert_frame_equal(loaded.score_batch(test), model.score_batch(test))
        assert loaded.score_one(test.iloc[0].to_dict()) == model.score_one(test.iloc[0].to_dict())
