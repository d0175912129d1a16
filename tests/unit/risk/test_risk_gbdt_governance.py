"""The GBDT to a validator's standard: a missing value never seen in training and an unseen category get the
most conservative value (batch and single case, counted), monotone constraints follow the binned trend or the
dataset contract, and reasons name only features that raised the risk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microlend.core.errors import ValidationError
from microlend.data.contracts import DataContract
from microlend.risk.gbdt import GbdtConfig, GbdtFit, risk_trend, train_gbdt
from microlend.risk.reasons import missing_wording, reason_message

REGIONS = ("north", "south", "east", "west", "centre")


def applicants(n: int, seed: int) -> pd.DataFrame:
    """Risk falls with income and rises with utilisation and enquiries; the region matters a little. No value
    is missing, so at scoring a missing one was never seen in training."""
    rng = np.random.default_rng(seed)
    income = rng.uniform(2_000, 20_000, n)
    utilisation = rng.uniform(0, 1, n)
    enquiries = rng.poisson(2, n).astype(float)
    region = rng.choice(REGIONS, n)
    log_odds = (
        -1.2
        - 1.6 * (income - 11_000) / 9_000
        + 1.8 * (utilisation - 0.5)
        + 0.25 * (enquiries - 2)
        + np.where(region == "east", 0.6, 0.0)
        - np.where(region == "west", 0.4, 0.0)
        + rng.normal(0, 0.8, n)
    )
    bad = rng.uniform(size=n) < 1 / (1 + np.exp(-log_odds))
    return pd.DataFrame(
        {
            "income": income,
            "utilisation": utilisation,
            "enquiries": enquiries,
            "region": region,
            "status": np.where(bad, "bad", "good"),
        }
    )


@pytest.fixture(scope="module")
def fit() -> GbdtFit:
    return train_gbdt(applicants(3_000, 1), "status", "bad", GbdtConfig(max_rounds=300))


@pytest.fixture(scope="module")
def held_out() -> pd.DataFrame:
    return applicants(60, 2).drop(columns="status")


def seen_values(fit: GbdtFit, feature: str) -> list[object]:
    """Every value a feature took in training (the quantiles of a numeric one, which reach every branch)."""
    if feature == "region":
        return list(REGIONS)
    train = applicants(3_000, 1)[feature]
    return sorted(set(np.quantile(train, np.linspace(0, 1, 201)).tolist()))


class TestConservativeMissingAndUnseen:
    @settings(max_examples=25, deadline=None)
    @given(
        row=st.integers(0, 59),
        feature=st.sampled_from(["income", "utilisation", "enquiries", "region"]),
        unseen=st.booleans(),
    )
    def test_a_missing_or_unseen_value_never_scores_better_than_any_seen_value(
        self, fit: GbdtFit, held_out: pd.DataFrame, row: int, feature: str, unseen: bool
    ) -> None:
        model = fit.model
        case = held_out.iloc[row].to_dict()
        blank = {**case, feature: "a region never seen" if unseen and feature == "region" else None}
        pd_blank, score_blank, _ = model.score_one(blank)
        variants = pd.DataFrame([{**case, feature: v} for v in seen_values(fit, feature)])
        seen = model.score_batch(variants, with_reasons=False)
        assert score_blank <= seen["score"].min() + 1e-9
        assert pd_blank >= seen["pd"].max() - 1e-12
        batch = model.score_batch(pd.DataFrame([blank]))
        assert batch["score"].iloc[0] == pytest.approx(score_blank, abs=1e-9)

    def test_a_blank_field_never_raises_the_score_of_any_applicant(self, fit: GbdtFit, held_out: pd.DataFrame) -> None:
        """Case 3 for the GBDT: blanking a field never missing in training cannot help an applicant."""
        before = fit.model.score_batch(held_out)["score"]
        for feature in ("income", "utilisation", "enquiries"):
            after = fit.model.score_batch(held_out.assign(**{feature: np.nan}))["score"]
            assert (after <= before + 1e-9).all(), feature

    def test_an_unseen_category_never_raises_the_score_and_is_counted(
        self, fit: GbdtFit, held_out: pd.DataFrame
    ) -> None:
        """Case 4 for the GBDT, batch and single case; the count reaches the scoring result."""
        before = fit.model.score_batch(held_out)["score"]
        changed = held_out.assign(region="overseas")
        after = fit.model.score_batch(changed)
        assert (after["score"] <= before + 1e-9).all()
        assert (after["unseen"] == 1).all() and (fit.model.score_batch(held_out)["unseen"] == 0).all()
        assert fit.model.unseen_features(changed.iloc[0].to_dict()) == ["region"]
        counts = fit.model.missing_and_unseen(changed.assign(income=np.nan))
        assert counts["region"] == (0, 60) and counts["income"] == (60, 0) and counts["enquiries"] == (0, 0)

    def test_a_feature_missing_in_training_keeps_its_learnt_treatment(self) -> None:
        frame = applicants(3_000, 3)
        frame.loc[frame.index[:600], "income"] = np.nan
        model = train_gbdt(frame, "status", "bad", GbdtConfig(max_rounds=200)).model
        assert "income" in model.missing_learnt and "utilisation" not in model.missing_learnt
        case = {**frame.drop(columns="status").iloc[700].to_dict(), "income": None}
        x = model.matrix(pd.DataFrame([case]))
        raw = float(model.booster.predict(x, raw_score=True)[0])
        _, score, _ = model.score_one(case)
        assert score == pytest.approx(model.scaling.score_from_log_odds_bad(raw))


class TestMonotoneConstraints:
    def test_pd_falls_along_an_income_grid_for_every_held_out_applicant(
        self, fit: GbdtFit, held_out: pd.DataFrame
    ) -> None:
        """Case 10: with the binned trend monotone, risk never rises with income for anyone."""
        assert fit.monotone["income"] == "decreasing" and fit.monotone["utilisation"] == "increasing"
        grid = np.linspace(2_000, 20_000, 40)
        for _, applicant in held_out.iterrows():
            cases = pd.DataFrame([{**applicant.to_dict(), "income": g} for g in grid])
            pd_ = fit.model.score_batch(cases, with_reasons=False)["pd"].to_numpy()
            assert np.all(np.diff(pd_) <= 1e-12)

    def test_the_contract_overrides_the_trend_per_feature(self, held_out: pd.DataFrame) -> None:
        frame = applicants(3_000, 1)
        free = train_gbdt(frame, "status", "bad", GbdtConfig(max_rounds=300, monotone={"income": "none"}))
        assert "income" not in free.monotone and free.monotone["utilisation"] == "increasing"
        off = train_gbdt(frame, "status", "bad", GbdtConfig(max_rounds=300, monotone_from_trend=False))
        assert off.monotone == {}
        grid = np.linspace(2_000, 20_000, 40)
        wiggles = 0
        for _, applicant in held_out.iterrows():
            cases = pd.DataFrame([{**applicant.to_dict(), "income": g} for g in grid])
            steps = np.diff(off.model.score_batch(cases, with_reasons=False)["pd"].to_numpy())
            wiggles += int((steps > 1e-12).any() and (steps < -1e-12).any())
        assert wiggles > 0  # without constraints the trees do rise and fall along income

    def test_a_wrong_direction_is_refused_by_name(self) -> None:
        with pytest.raises(ValidationError, match="income: monotone must be one of"):
            GbdtConfig(monotone={"income": "up"})
        with pytest.raises(ValidationError, match="region: a monotone direction needs a numeric feature"):
            train_gbdt(applicants(500, 1), "status", "bad", GbdtConfig(monotone={"region": "increasing"}))

    def test_the_trend_of_a_peaked_or_flat_feature_is_no_direction(self) -> None:
        rng = np.random.default_rng(4)
        x = rng.uniform(-3, 3, 5_000)
        peaked = (rng.uniform(size=5_000) < 1 / (1 + np.exp(-(2 - x**2)))).astype(np.int8)
        assert risk_trend(x, peaked) == 0
        rising = (rng.uniform(size=5_000) < 1 / (1 + np.exp(-x))).astype(np.int8)
        assert risk_trend(x, rising) == 1 and risk_trend(-x, rising) == -1

    def test_the_contract_declares_monotone_and_reason_wording(self) -> None:
        contract = DataContract.from_dict(
            {
                "name": "apps",
                "columns": [
                    {
                        "name": "income",
                        "dtype": "float",
                        "monotone": "decreasing",
                        "reason": {"en": "income is low", "zh-CN": "收入偏低"},
                    },
                    {"name": "region", "dtype": "string"},
                ],
            }
        )
        assert contract.monotone_columns() == {"income": "decreasing"}
        assert contract.reason_wording() == {"income": {"en": "income is low", "zh-CN": "收入偏低"}}
        assert DataContract.from_dict(contract.to_dict()) == contract
        with pytest.raises(ValidationError, match=r"region\.monotone"):
            DataContract.from_dict(
                {"name": "apps", "columns": [{"name": "region", "dtype": "string", "monotone": "increasing"}]}
            )


class TestReasons:
    def test_gbdt_reasons_are_the_top_three_features_that_raised_the_risk(
        self, fit: GbdtFit, held_out: pd.DataFrame
    ) -> None:
        """Case 11 for the GBDT: at most three, each with a positive contribution, the largest first; every
        feature that raised the risk is named when fewer than three did."""
        model = fit.model
        contrib = model.contributions(model.matrix(held_out))[:, :-1]
        out = model.score_batch(held_out)
        for i, codes in enumerate(out["reasons"]):
            raised = [model.features[j] for j in np.argsort(-contrib[i], kind="stable") if contrib[i, j] > 0]
            assert (codes.split(";") if codes else []) == raised[:3]
            _, _, reasons = model.score_one(held_out.iloc[i].to_dict())
            assert [r.feature for r in reasons] == raised[:3] and all(r.impact > 0 for r in reasons)

    def test_wording_comes_from_the_contract_and_a_feature_without_it_is_named(self) -> None:
        wording = {"utilisation": {"en": "credit lines are stretched", "zh-CN": "授信使用偏高"}}
        assert reason_message("utilisation", "zh_CN", wording) == "utilisation：授信使用偏高"
        assert reason_message("utilisation", "en", wording) == "utilisation: credit lines are stretched"
        assert missing_wording(["utilisation", "enquiries", "credit_amount"], wording) == ["enquiries"]
        assert missing_wording(["enquiries"], {"enquiries": {"en": "many enquiries"}}) == ["enquiries"]
