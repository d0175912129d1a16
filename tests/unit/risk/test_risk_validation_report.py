"""The report a validator signs: bootstrap intervals, calibration tests, a logistic-regression challenger,
coefficients with standard errors, per-bin IV, contributions and partial dependence, CSI; built once and
stored with its hash; fits a phone; its tables export to Excel."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from openpyxl import load_workbook

from microlend.risk.artefacts import read_metadata
from microlend.risk.datasets import german_credit
from microlend.risk.development import develop_model
from microlend.risk.report import render_html, report_workbook
from microlend.risk.validation import auc, binomial_by_grade, bootstrap_intervals, hosmer_lemeshow

CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def _calibrated(n: int = 3_000, seed: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.6, n)
    return (rng.uniform(size=n) < p).astype(np.int8), p


class TestStatistics:
    def test_bootstrap_intervals_hold_the_figure_and_repeat_with_the_seed(self) -> None:
        y, p = _calibrated()
        ci = bootstrap_intervals(y, p)
        assert ci["auc"]["low"] < auc(y, p) < ci["auc"]["high"]
        assert 0 < ci["auc"]["width"] < 0.1 and ci["gini"]["width"] == pytest.approx(2 * ci["auc"]["width"])
        assert bootstrap_intervals(y, p) == ci and bootstrap_intervals(y, p, seed=1) != ci
        small = bootstrap_intervals(y[:300], p[:300])
        assert small["auc"]["width"] > ci["auc"]["width"]

    def test_hosmer_lemeshow_passes_calibrated_pds_and_rejects_halved_ones(self) -> None:
        y, p = _calibrated()
        assert hosmer_lemeshow(y, p)["p_value"] > 0.05
        halved = hosmer_lemeshow(y, p / 2)
        assert halved["p_value"] < 1e-6 and halved["df"] == 8

    def test_binomial_test_per_grade_names_the_grades_with_too_many_bads(self) -> None:
        y, p = _calibrated()
        assert set(binomial_by_grade(y, p)["result"]) == {"consistent"}
        halved = binomial_by_grade(y, p / 2)["result"]
        assert "too few bads" not in set(halved) and (halved == "too many bads").sum() >= 8


@pytest.fixture(scope="module")
def developed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    frame = german_credit().frame
    frame = frame.assign(applied=np.repeat(["2025-01", "2025-02", "2025-03", "2025-04", "2025-05"], 200))
    out = {}
    for kind in ("scorecard", "gbdt"):
        out[kind] = tmp_path_factory.mktemp(kind)
        develop_model(
            frame,
            target="creditability",
            bad="bad",
            kind=kind,
            out_dir=out[kind],
            created_at=CREATED,
            benchmark=False,
            date_column="applied",
            name=kind,
        )
    return out


class TestTheStoredReport:
    def test_hold_out_and_out_of_time_get_intervals_gains_calibration_and_tests(self, developed) -> None:  # type: ignore[no-untyped-def]
        report = json.loads((developed["scorecard"] / "report.json").read_text())
        assert set(report["by_sample"]) == {"test", "oot"}
        for sample in ("test", "oot"):
            t = report["by_sample"][sample]
            assert t["ci"]["auc"]["low"] <= report["samples"][sample]["metrics"]["auc"] <= t["ci"]["auc"]["high"]
            assert len(t["gains"]) == 10 and len(t["calibration"]) == 10 and len(t["binomial"]) == 10
            assert 0 <= t["hosmer_lemeshow"]["p_value"] <= 1
        assert set(report["csi"]) == {"test", "oot"} and report["gates"]["results"]
        assert report["challenger"]["kind"] == "logistic regression"
        assert 0.6 < report["challenger"]["samples"]["test"]["auc"] < 0.9

    def test_scorecard_coefficients_have_standard_errors_and_bins_their_iv(self, developed) -> None:  # type: ignore[no-untyped-def]
        report = json.loads((developed["scorecard"] / "report.json").read_text())
        coefficients = {r["feature"]: r for r in report["coefficients"]}
        assert "(intercept)" in coefficients
        assert all(r["std_error"] > 0 and r["p_value"] <= 1 for r in coefficients.values())
        for feature, rows in report["features"]["binning"].items():
            assert rows[-1]["bin"] in ("Missing", "Unseen category")
            iv = next(r["iv"] for r in report["features"]["iv"] if r["feature"] == feature)
            assert sum(r.get("iv", 0.0) for r in rows) == pytest.approx(iv, rel=0.05, abs=1e-3)

    def test_gbdt_has_a_contribution_summary_and_partial_dependence(self, developed) -> None:  # type: ignore[no-untyped-def]
        report = json.loads((developed["gbdt"] / "report.json").read_text())
        contributions = report["contributions"]
        assert contributions[0]["mean_abs_contribution"] >= contributions[-1]["mean_abs_contribution"] > -1
        assert report["partial_dependence"]
        for rows in report["partial_dependence"].values():
            assert all(0 < r["mean_pd"] < 1 for r in rows) and len(rows) >= 2

    def test_the_report_is_stored_once_with_its_hashes_in_the_model_metadata(self, developed) -> None:  # type: ignore[no-untyped-def]
        folder = developed["scorecard"]
        hashes = read_metadata(folder).parameters["report_sha256"]
        for name in ("report.html", "report.json"):
            assert hashes[name] == hashlib.sha256((folder / name).read_bytes()).hexdigest()

    def test_it_fits_a_phone_and_speaks_both_languages(self, developed) -> None:  # type: ignore[no-untyped-def]
        html = (developed["gbdt"] / "report.html").read_text()
        assert 'name="viewport" content="width=device-width' in html and "max-width: 100%" in html
        assert html.count("<table") == html.count('<div class="table-wrap"><table')
        for words in ("Confidence intervals", "置信区间", "Hosmer–Lemeshow", "逻辑回归挑战者模型", "部分依赖"):
            assert words in html
        assert render_html(json.loads((developed["gbdt"] / "report.json").read_text())) == html

    def test_the_tables_export_to_excel(self, developed) -> None:  # type: ignore[no-untyped-def]
        report = json.loads((developed["scorecard"] / "report.json").read_text())
        book = load_workbook(io.BytesIO(report_workbook(report)))
        for sheet in (
            "discrimination",
            "intervals",
            "gains test",
            "binomial oot",
            "hosmer-lemeshow",
            "psi",
            "csi oot",
            "binning",
            "coefficients",
            "challenger",
            "gates",
        ):
            assert sheet in book.sheetnames
        binning = book["binning"]
        assert [c.value for c in binning[1]][:3] == ["feature", "bin", "count"]
        assert any(row[1] == "Missing" for row in binning.iter_rows(values_only=True))
