from __future__ import annotations

from pathlib import Path

import numpy as np

from microlend.risk.artefacts import load_model
from microlend.risk.starter import STARTER_DIR, build_starter
from microlend.risk.validation import auc


class TestStarterScorecard:
    def test_ships_as_plain_json_with_a_matching_hash(self) -> None:
        artefact = load_model(STARTER_DIR)
        assert sorted(p.name for p in STARTER_DIR.iterdir()) == ["model.json", "scorecard.json"]
        assert artefact.metadata.kind == "scorecard"
        assert artefact.metadata.metrics["test"]["auc"] > 0.75

    def test_scores_german_credit_applicants(self, german) -> None:  # type: ignore[no-untyped-def]
        model = load_model(STARTER_DIR).model
        out = model.score_batch(german.frame)
        assert auc(german.bad_flag(), out["pd"].to_numpy()) > 0.78

    def test_is_what_development_produces_today(self, german, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
        shipped = load_model(STARTER_DIR).model
        fresh = load_model(build_starter(tmp_path)).model
        assert fresh.features == shipped.features
        np.testing.assert_allclose(fresh.score_batch(german.frame)["score"], shipped.score_batch(german.frame)["score"],
                                   atol=1e-6)
