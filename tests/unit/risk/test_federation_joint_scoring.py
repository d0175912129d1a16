"""The registry's joint model (hetero-lr) scores one case jointly with the partner's partial log-odds, and with
its bank-only model when the partner could not be asked (PARTNER_UNAVAILABLE first among its reasons)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from microlend.core.errors import ValidationError
from microlend.risk.federation.binning import fit_bins
from microlend.risk.federation.joint_scoring import PARTNER_FEATURE, PARTNER_UNAVAILABLE, HeteroLrModel
from microlend.risk.reasons import messages_for_codes
from microlend.risk.scorecard import PointsScaling


def model() -> HeteroLrModel:
    frame = pd.DataFrame({"annual_inc": [float(v) for v in range(100)],
                          "term": ["36" if v % 3 else "60" for v in range(100)]})
    bins = fit_bins(frame, ["annual_inc", "term"], max_bins=4, min_share=0.05)
    woe = [[0.5 - 0.3 * i for i in range(b.n_bins)] for b in bins]
    return HeteroLrModel("hetero-lr", [b.name for b in bins], PointsScaling(), bins, woe, [0.8, 0.6], -3.0,
                         [1.1, 0.7], -2.9, {"model_id": "0" * 32, "feature_count": 4}, "id_number")


def test_a_joint_case_adds_the_partners_part_and_names_it_among_the_reasons() -> None:
    m = model()
    case = {"annual_inc": 1.0, "term": "60"}
    pd_alone, _, _ = m.score_one(case, partner_partial=0.0)
    pd_joint, score, reasons = m.score_one(case, partner_partial=2.0)
    assert pd_joint > pd_alone
    assert math.isclose(score, m.scaling.offset - m.scaling.factor * math.log(pd_joint / (1 - pd_joint)))
    assert reasons[0].feature == PARTNER_FEATURE and reasons[0].impact == pytest.approx(2.0)


def test_without_the_partner_the_bank_only_model_scores_and_says_so() -> None:
    m = model()
    case = {"annual_inc": 1.0, "term": "60"}
    pd_, _, reasons = m.score_one(case, partner_partial=None)
    x = [m.woe[j][int(b)] for j, b in enumerate(
        [m.bins[0].assign(pd.Series([1.0]))[0], m.bins[1].assign(pd.Series(["60"]))[0]])]
    expected = -2.9 + 1.1 * x[0] + 0.7 * x[1]
    assert pd_ == pytest.approx(1 / (1 + math.exp(-expected)))
    assert reasons[0].feature == PARTNER_UNAVAILABLE and PARTNER_FEATURE not in [r.feature for r in reasons]
    batch = m.score_batch(pd.DataFrame([case]))
    assert batch["pd"].iloc[0] == pytest.approx(pd_)
    assert "could not be asked" in messages_for_codes(PARTNER_UNAVAILABLE, "en")
    assert "合作方" in messages_for_codes(PARTNER_UNAVAILABLE, "zh-CN")


def test_a_partial_score_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(ValidationError):
        model().score_one({"annual_inc": 1.0}, partner_partial=float("nan"))


def test_it_reads_back_from_its_file() -> None:
    m = model()
    again = HeteroLrModel.from_dict(m.to_dict())
    case = {"annual_inc": 55.0, "term": "36"}
    assert again.score_one(case, partner_partial=0.4)[0] == m.score_one(case, partner_partial=0.4)[0]
    with pytest.raises(ValidationError, match="damaged"):
        HeteroLrModel.from_dict({"bank": {}})
