"""Simulation on past applications: the Lending Club table, batch/engine agreement, metrics, swaps, report."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from microlend.core.errors import ValidationError
from microlend.decisioning.policy import default_policy
from microlend.decisioning.simulate import (
    applications_from_german_credit,
    applications_from_lending_club,
    evaluate_frame,
    evaluate_parquet,
    load_applications,
    render_html,
    simulate,
)

POLICY = default_policy()


@pytest.fixture(scope="module")
def lending_club() -> pd.DataFrame:
    return applications_from_lending_club()


def stricter() -> dict[str, Any]:
    doc = copy.deepcopy(POLICY)
    doc["metadata"]["name"] = "stricter"
    doc["nodes"][3]["content"]["rules"][-1]["k_score"] = "< 600"
    return doc


def test_lending_club_becomes_an_applications_table(lending_club: pd.DataFrame) -> None:
    assert len(lending_club) == 9857
    assert lending_club["outcome.bad"].isin([0.0, 1.0]).all()
    assert set(lending_club["application.product_code"]) == {"MICRO_BIZ", "MICRO_PERSONAL"}
    assert lending_club["model.score"].between(480, 660).all()


def test_batch_and_engine_agree_on_real_applications(lending_club: pd.DataFrame) -> None:
    sample = lending_club.sample(400, random_state=3).reset_index(drop=True)
    batch, mode = evaluate_frame(POLICY, sample)
    engine, engine_mode = evaluate_frame(POLICY, sample, mode="engine")
    assert (mode, engine_mode) == ("batch", "engine")
    assert [batch.row(i) for i in range(len(sample))] == [engine.row(i) for i in range(len(sample))]


def test_german_credit_is_evaluated_in_batch_and_agrees() -> None:
    frame = applications_from_german_credit().head(300)
    batch, mode = evaluate_frame(POLICY, frame)
    engine, _ = evaluate_frame(POLICY, frame, mode="engine")
    assert mode == "batch"
    assert [batch.row(i) for i in range(300)] == [engine.row(i) for i in range(300)]


def test_a_branching_policy_is_simulated_in_batch_and_agrees_on_the_whole_german_sample() -> None:
    from tests.unit.decisioning.branching_policy import branching_policy

    doc = branching_policy()
    frame = applications_from_german_credit()
    assert (frame["customer.age"] >= 60).any() and (frame["customer.age"] < 60).any()
    batch, mode = evaluate_frame(doc, frame)
    engine, engine_mode = evaluate_frame(doc, frame, mode="engine")
    assert (mode, engine_mode) == ("batch", "engine")
    mismatches = [i for i in range(len(frame)) if batch.row(i) != engine.row(i)]
    assert mismatches == []


def test_the_report_carries_the_money_against_the_baseline(lending_club: pd.DataFrame) -> None:
    report = simulate(stricter(), lending_club.head(3000), baseline=POLICY, charts=True)
    money = report.as_dict()["money"]
    assert money["overall"]["policy"]["approved"] == report.overall.approved
    assert money["overall"]["baseline"]["approved"] == report.baseline_overall.approved  # type: ignore[union-attr]
    assert {row["value"] for row in money["segments"]["product"]} == {"MICRO_BIZ", "MICRO_PERSONAL"}
    out = sum(x["applications"] for x in money["swap_reasons"]["swap_out"])
    assert out >= report.swap["swap_out"]["applications"] > 0  # type: ignore[index]
    assert "profit" in report.charts
    html = render_html(report)
    assert "Money over the expected life" in html and money["overall"]["delta"]["profit"] in html
    assert simulate(POLICY, lending_club.head(100), charts=False, money=None).money is None


class TestSimulationReport:
    def test_outcomes_add_up_and_segments_are_measured(self, lending_club: pd.DataFrame) -> None:
        report = simulate(POLICY, lending_club, charts=False)
        o = report.overall
        assert o.approved + o.referred + o.declined == o.applications == 9857
        assert o.known_outcomes == o.approved
        bad = lending_club["outcome.bad"].to_numpy()
        approved = evaluate_frame(POLICY, lending_club)[0].outcome == "approve"
        assert o.observed_bad_rate == pytest.approx(float(bad[approved].mean()))
        by_product = report.segments["segment.product"]
        assert sum(m.applications for m in by_product.values()) == 9857

    def test_a_stricter_policy_only_swaps_out(self, lending_club: pd.DataFrame) -> None:
        report = simulate(stricter(), lending_club, baseline=POLICY, charts=False)
        assert report.swap is not None
        assert report.swap["swap_in"]["applications"] == 0
        assert report.swap["swap_out"]["applications"] > 0
        assert report.baseline_overall is not None
        assert report.overall.approved == report.baseline_overall.approved - report.swap["swap_out"]["applications"]

    def test_the_html_report_is_self_contained(self, lending_club: pd.DataFrame) -> None:
        report = simulate(POLICY, lending_club.head(2000), baseline=stricter())
        html = render_html(report)
        assert "data:image/png;base64," in html and "default_micro_loan" in html
        assert "Swap-in" in html and "http" not in html.split("<body>")[1]
        data = json.loads(report.to_json())
        assert data["overall"]["applications"] == 2000 and data["mode"] == "batch"


class TestApplicationFiles:
    def test_csv_and_parquet_read_back_to_the_same_decisions(self, tmp_path: Path, lending_club: pd.DataFrame) -> None:
        frame = lending_club.head(500)
        frame.to_csv(tmp_path / "apps.csv", index=False)
        frame.to_parquet(tmp_path / "apps.parquet", index=False)
        from_csv = evaluate_frame(POLICY, load_applications(tmp_path / "apps.csv"))[0]
        from_parquet = evaluate_frame(POLICY, load_applications(tmp_path / "apps.parquet"))[0]
        assert np.array_equal(from_csv.outcome, from_parquet.outcome)
        assert np.array_equal(from_csv.limit, from_parquet.limit)

    def test_arrow_batches_from_parquet_give_the_same_decisions(
        self, tmp_path: Path, lending_club: pd.DataFrame
    ) -> None:
        lending_club.to_parquet(tmp_path / "apps.parquet", index=False)
        in_batches = evaluate_parquet(POLICY, tmp_path / "apps.parquet", batch_rows=1000)
        whole = evaluate_frame(POLICY, lending_club)[0]
        assert len(in_batches) == 9857
        for name in ("outcome", "limit", "reasons", "risk_grade"):
            assert np.array_equal(getattr(in_batches, name), getattr(whole, name)), name
        assert np.array_equal(in_batches.annual_rate, whole.annual_rate, equal_nan=True)

    def test_a_table_without_amounts_is_refused(self, tmp_path: Path) -> None:
        pd.DataFrame({"customer.customer_id": ["a"]}).to_csv(tmp_path / "x.csv", index=False)
        with pytest.raises(ValidationError, match=r"column 'application\.amount' is missing"):
            load_applications(tmp_path / "x.csv")

    def test_a_file_of_another_kind_is_refused(self, tmp_path: Path) -> None:
        (tmp_path / "x.xlsx").write_text("nothing")
        with pytest.raises(ValidationError, match=r"neither \.csv nor \.parquet"):
            load_applications(tmp_path / "x.xlsx")
