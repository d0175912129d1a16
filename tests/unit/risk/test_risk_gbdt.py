from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from microlend.core.errors import ValidationError
from microlend.risk.gbdt import GbdtConfig, GbdtModel, train_gbdt
from microlend.risk.validation import auc


@pytest.fixture(scope="module")
def gbdt(german_split, german):  # type: ignore[no-untyped-def]
    train, _ = german_split
    return train_gbdt(train, german.target, german.bad)


class TestGbdtChallenger:
    def test_it_discriminates_on_the_test_sample(self, gbdt, german_split, german) -> None:  # type: ignore[no-untyped-def]
        _, test = german_split
        out = gbdt.model.score_batch(test)
        assert auc((test[german.target] == "bad").to_numpy(), out["pd"].to_numpy()) > 0.75

    def test_same_seed_same_model(self, german_split, german) -> None:  # type: ignore[no-untyped-def]
        train, _ = german_split
        a = train_gbdt(train, german.target, german.bad, GbdtConfig(seed=5))
        b = train_gbdt(train, german.target, german.bad, GbdtConfig(seed=5))
        assert a.model.model_text == b.model.model_text

    def test_score_is_on_the_scorecard_points_scale(self, gbdt, german) -> None:  # type: ignore[no-untyped-def]
        out = gbdt.model.score_batch(german.frame.head(20))
        odds_good = (1 - out["pd"]) / out["pd"]
        expected = 600 + 20 * np.log2(odds_good / 50)
        np.testing.assert_allclose(out["score"], expected, atol=1e-6)

    def test_reasons_are_the_features_that_pushed_risk_up_most(self, gbdt, german) -> None:  # type: ignore[no-untyped-def]
        row = german.frame.iloc[[4]]
        x = gbdt.model.matrix(row)
        contrib = gbdt.model.contributions(x)[0, :-1]
        _, _, reasons = gbdt.model.score_one(row.iloc[0].to_dict())
        top = [gbdt.model.features[j] for j in np.argsort(-contrib)[:3] if contrib[j] > 0]
        assert [r.feature for r in reasons] == top
        assert all(r.impact > 0 for r in reasons)

    def test_one_case_equals_the_batch(self, gbdt, german) -> None:  # type: ignore[no-untyped-def]
        batch = gbdt.model.score_batch(german.frame.head(30))
        for i, row in enumerate(german.frame.head(30).to_dict("records")):
            pd_, score, reasons = gbdt.model.score_one(row)
            assert pd_ == pytest.approx(batch["pd"].iloc[i], rel=1e-9)
            assert score == pytest.approx(batch["score"].iloc[i])
            assert ";".join(r.feature for r in reasons) == batch["reasons"].iloc[i]

    def test_unseen_categories_and_missing_values_still_score(self, gbdt, german) -> None:  # type: ignore[no-untyped-def]
        rows = german.frame.head(2).copy()
        rows["purpose"] = ["never seen", None]
        rows["credit_amount"] = [np.nan, 5000]
        out = gbdt.model.score_batch(rows)
        assert out["pd"].between(0, 1).all()
        pd_, _, _ = gbdt.model.score_one({"purpose": "never seen"})
        assert 0 < pd_ < 1

    def test_saved_text_scores_the_same(self, gbdt, german) -> None:  # type: ignore[no-untyped-def]
        m = gbdt.model
        again = GbdtModel(m.model_text, m.features, m.categories, m.scaling)
        pd.testing.assert_frame_equal(again.score_batch(german.frame), m.score_batch(german.frame))

    def test_text_in_a_numeric_feature_is_refused(self, gbdt) -> None:  # type: ignore[no-untyped-def]
        with pytest.raises(ValidationError, match="duration_in_month: expected a number"):
            gbdt.model.score_one({"duration_in_month": "long"})

    def test_pd_is_the_logistic_of_the_log_odds(self, gbdt, german) -> None:  # type: ignore[no-untyped-def]
        pd_, score, _ = gbdt.model.score_one(german.frame.iloc[0].to_dict())
        assert score == pytest.approx(gbdt.model.scaling.score_from_log_odds_bad(math.log(pd_ / (1 - pd_))))
