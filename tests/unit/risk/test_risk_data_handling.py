"""What a model validation team checks before it lets a model through: each of the data handling rules and
gates, on data these tests generate or on the German credit and Lending Club samples that ship in packages."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microlend.core.errors import ValidationError
from microlend.data.contracts import shipped_contract
from microlend.risk.artefacts import load_model
from microlend.risk.datasets import LabelledDataset, lending_club, out_of_time_split, stratified_split
from microlend.risk.development import develop_model
from microlend.risk.gates import ModelGates, evaluate, failures
from microlend.risk.gbdt import train_gbdt
from microlend.risk.monitoring import NOT_ENOUGH_OUTCOMES, monitor
from microlend.risk.report import render_html
from microlend.risk.scorecard import ScorecardConfig, ScorecardModel, train_scorecard
from microlend.risk.validation import auc

CREATED = datetime(2026, 3, 1, tzinfo=UTC)


def _applicants(n: int, seed: int) -> pd.DataFrame:
    """Applicants whose risk follows income and debt ratio, labelled good/bad."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(8.5, 0.5, n).round(0)
    debt_ratio = rng.uniform(0, 1, n).round(3)
    log_odds = -1.0 - 1.2 * (np.log(income) - 8.5) / 0.5 + 1.5 * (debt_ratio - 0.5)
    bad = rng.uniform(size=n) < 1 / (1 + np.exp(-log_odds))
    return pd.DataFrame({"income": income, "debt_ratio": debt_ratio,
                         "outcome": np.where(bad, "bad", "good")})


def _auc(model: ScorecardModel, frame: pd.DataFrame) -> float:
    return auc((frame["outcome"] == "bad").to_numpy(), model.score_batch(frame, with_reasons=False)["pd"])


class TestHighCardinality:
    """1. A job title with thousands of values must not become the top feature by memorising the sample."""

    def test_rare_titles_are_grouped_with_a_warning_and_do_not_overfit(self) -> None:
        frame = _applicants(3000, seed=1)
        rng = np.random.default_rng(2)
        frequent = rng.choice(["clerk", "driver", "farmer", "teacher"], size=3000)
        frame["job_title"] = np.where(rng.uniform(size=3000) < 0.2, frequent,
                                      [f"title {k}" for k in rng.integers(0, 2500, 3000)])
        train, test = stratified_split(frame, "outcome", "bad", seed=3)
        fit = train_scorecard(train, "outcome", "bad")
        assert any(w.startswith("job_title:") and "grouped as '(other)'" in w for w in fit.warnings)
        assert fit.iv["job_title"] < 0.1, fit.iv
        assert max(fit.iv, key=lambda f: fit.iv[f]) != "job_title"
        assert _auc(fit.model, train) - _auc(fit.model, test) < 0.05
        if "job_title" in fit.model.features:  # a seen rare title scores with the other rare ones
            c = fit.model.characteristics[fit.model.features.index("job_title")]
            assert c.rare and fit.model.unseen_features({"job_title": c.rare[0]}) == []


class TestOrdinalCategories:
    """2. Graded sub-grades declared in order in the contract get points that follow the grade."""

    def test_sub_grade_points_never_rise_with_the_grade(self) -> None:
        ds = lending_club()
        order = shipped_contract("lending_club").ordinal_columns()["sub_grade"]
        sample = ds.frame.sample(4000, random_state=5).reset_index(drop=True)
        config = ScorecardConfig(features=("sub_grade",), ordinal={"sub_grade": order}, min_iv=0.0)
        model = train_scorecard(sample, ds.target, ds.bad, config).model
        points = [model.score_one({"sub_grade": level})[1] for level in order]
        assert all(later <= earlier + 1e-9 for earlier, later in pairwise(points)), points
        best = points[0]
        for tail in ("E1", "F3", "F4", "G1"):
            assert points[order.index(tail)] < best

    def test_a_grade_outside_the_declared_order_is_refused_in_training(self) -> None:
        frame = pd.DataFrame({"grade": ["A", "B", "C", "Z"] * 50, "outcome": ["good", "bad"] * 100})
        config = ScorecardConfig(ordinal={"grade": ("A", "B", "C")})
        with pytest.raises(ValidationError, match="grade: values not among its declared ordered levels: Z"):
            train_scorecard(frame, "outcome", "bad", config)


def _never_missing_lending_club() -> tuple[ScorecardModel, pd.DataFrame]:
    ds = lending_club()
    train, test = stratified_split(ds.frame.sample(5000, random_state=8), ds.target, ds.bad, seed=8)
    return train_scorecard(train, ds.target, ds.bad).model, test


class TestMissingAndUnseen:
    """3. A blank field must never raise a score; 4. nor an unseen category, which is counted."""

    def test_blanking_a_field_never_raises_a_score_in_batch_or_one_case(self) -> None:
        model, test = _never_missing_lending_club()
        before = model.score_batch(test, with_reasons=False)["score"].to_numpy()
        for feature in model.features:
            blank = test.copy()
            blank[feature] = None
            after = model.score_batch(blank, with_reasons=False)["score"].to_numpy()
            assert (after <= before + 1e-9).all(), feature
            case = test.iloc[0].to_dict()
            one_before = model.score_one(case)[1]
            case[feature] = None
            assert model.score_one(case)[1] <= one_before + 1e-9, feature

    def test_an_unseen_category_never_raises_a_score_and_is_counted(self) -> None:
        model, test = _never_missing_lending_club()
        categorical = [c.name for c in model.characteristics if c.has_categories]
        assert categorical
        before = model.score_batch(test, with_reasons=False)["score"].to_numpy()
        changed = test.copy()
        changed[categorical[0]] = "a value never seen"
        out = model.score_batch(changed, with_reasons=False)
        assert (out["score"].to_numpy() <= before + 1e-9).all()
        assert (out["unseen"] == 1).all()
        assert model.unseen_counts(changed)[categorical[0]] == len(changed)
        assert model.unseen_features(changed.iloc[0].to_dict()) == [categorical[0]]


class TestMinimumSampleAndGates:
    """5. A 12-row file is refused before training; weak figures fail the gates."""

    def test_a_twelve_row_file_is_refused_before_training(self, tmp_path: Path) -> None:
        frame = _applicants(12, seed=4)
        frame.loc[:2, "outcome"] = "bad"
        with pytest.raises(ValidationError, match=r"12 rows with \d+ bads is too small .* at least 200 rows"):
            develop_model(frame, target="outcome", bad="bad", kind="scorecard", out_dir=tmp_path,
                          created_at=CREATED)
        assert not any(tmp_path.iterdir())

    def test_a_model_no_better_than_chance_fails_the_gates(self) -> None:
        metrics = {"train": {"auc": 0.9, "ks": 0.6, "count": 8.0, "bad_rate": 0.25},
                   "test": {"auc": 0.5, "ks": 0.0, "count": 4.0, "bad_rate": 0.25}}
        failed = failures(evaluate(metrics, ModelGates()))
        assert [f.split()[0] for f in failed] == ["min_rows", "min_bads", "min_test_auc", "min_test_ks",
                                                 "max_auc_gap"]

    def test_the_report_shows_every_gate_and_its_thresholds(self, tmp_path: Path) -> None:
        frame = _applicants(1200, seed=5)
        dev = develop_model(frame, target="outcome", bad="bad", kind="scorecard", out_dir=tmp_path,
                            created_at=CREATED, benchmark=False, gates=ModelGates(min_rows=300))
        gates = dev.report["gates"]
        assert gates["thresholds"]["min_rows"] == 300 and gates["passed"]
        assert {r["gate"] for r in gates["results"]} == {"min_rows", "min_bads", "min_test_auc", "min_test_ks",
                                                         "max_auc_gap", "max_oot_psi"}
        assert "Model gates" in (tmp_path / "report.html").read_text(encoding="utf-8")


class TestMonitoringWithoutBads:
    """6. Live outcomes with no bads still give PSI and CSI; performance waits for outcomes."""

    def test_zero_bads_gives_stability_and_marks_performance(self, german: LabelledDataset, tmp_path: Path) -> None:
        develop_model(german.frame, target=german.target, bad=german.bad, kind="scorecard", out_dir=tmp_path,
                      created_at=CREATED, benchmark=False)
        live = german.frame[german.frame[german.target] == "good"].head(200)
        result = monitor(load_model(tmp_path), live, date_column=None)
        assert result["score"]["psi"] >= 0 and result["characteristics"]
        assert all("unseen" in c for c in result["characteristics"])
        assert result["performance"]["status"] == NOT_ENOUGH_OUTCOMES and result["performance"]["bads"] == 0


class TestOutOfTime:
    """7. Monthly dates work for the out-of-time split; integers are not dates."""

    def test_three_issue_months_split_and_measure_stability(self, tmp_path: Path) -> None:
        frame = _applicants(1500, seed=6)
        frame["issue_month"] = np.repeat(["2016-01", "2016-02", "2016-03"], 500)
        development, oot = out_of_time_split(frame, "issue_month")
        assert set(oot["issue_month"]) == {"2016-03"} and len(development) == 1000
        dev = develop_model(frame, target="outcome", bad="bad", kind="scorecard", out_dir=tmp_path,
                            created_at=CREATED, benchmark=False, date_column="issue_month")
        assert "oot" in dev.artefact.metadata.metrics
        assert dev.artefact.metadata.metrics["stability"]["oot"] >= 0
        psi_gate = next(r for r in dev.report["gates"]["results"] if r["gate"] == "max_oot_psi")
        assert psi_gate["value"] is not None

    def test_an_integer_column_is_not_taken_for_dates(self) -> None:
        frame = pd.DataFrame({"issue_d": [201601] * 5 + [201602] * 5, "x": range(10)})
        with pytest.raises(ValidationError, match="issue_d: holds numbers, not dates"):
            out_of_time_split(frame, "issue_d")


class TestTypeDrift:
    """8. One typo in a numeric column is refused by row, not turned into categories."""

    def test_a_typo_in_income_is_refused_naming_the_row(self) -> None:
        frame = _applicants(400, seed=7)
        frame["income"] = frame["income"].astype(str)
        frame.loc[17, "income"] = "12O0"
        with pytest.raises(ValidationError, match=r"income: a numeric column with text in 1 rows: 18 \('12O0'\)"):
            train_scorecard(frame, "outcome", "bad")
        with pytest.raises(ValidationError, match="income: a numeric column with text"):
            train_gbdt(frame, "outcome", "bad")


class TestMissingBinInReports:
    """9. The Missing bin shows in the report with its count and points."""

    def test_missing_income_is_a_bin_of_its_own_in_the_report(self, tmp_path: Path) -> None:
        frame = _applicants(1500, seed=9)
        frame.loc[frame.sample(184, random_state=1).index, "income"] = np.nan
        dev = develop_model(frame, target="outcome", bad="bad", kind="scorecard", out_dir=tmp_path,
                            created_at=CREATED, benchmark=False)
        rows = dev.report["features"]["binning"]["income"]
        missing = next(r for r in rows if r["bin"] == "Missing")
        card = load_model(tmp_path).model
        assert isinstance(card, ScorecardModel)
        trained_missing = card.characteristics[card.features.index("income")].missing_count
        assert missing["count"] == trained_missing > 0
        table = card.points_table()
        row = table[(table["feature"] == "income") & (table["bin"] == "Missing")].iloc[0]
        assert row["count"] == trained_missing and missing["points"] == pytest.approx(row["points"])
        html = render_html(dev.report)
        assert f"<tr><td>Missing</td><td>{trained_missing}</td>" in html


def test_shipped_lending_club_contract_declares_sub_grade_in_order() -> None:
    order = shipped_contract("lending_club").ordinal_columns()["sub_grade"]
    assert order[:3] == ("A1", "A2", "A3") and order[-1] == "G5" and len(order) == 35

