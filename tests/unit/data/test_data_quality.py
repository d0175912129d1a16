"""Data quality report: hand-checked statistics, bad rates, drift, and a self-contained HTML file."""

from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest

from microlend.core.errors import ValidationError
from microlend.data.quality import MISSING, OTHER, psi, quality_report, render_html


def applicants() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "income": [10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 100.0, None],
            "industry": ["retail"] * 5 + ["farming"] * 3 + ["mining", None],
            "bad": [0, 0, 0, 1, 0, 1, 1, 0, 1, 0],
        }
    )


class TestColumnProfile:
    def test_missing_rate_distinct_count_and_kind(self) -> None:
        report = quality_report(applicants())
        income, industry = report.column("income"), report.column("industry")
        assert (income.kind, income.missing, income.missing_rate, income.distinct) == ("numeric", 1, 0.1, 9)
        assert (industry.kind, industry.missing, industry.distinct) == ("categorical", 1, 3)

    def test_outliers_by_the_iqr_rule(self) -> None:
        income = quality_report(applicants()).column("income")
        # quartiles of 10..17,100 are 12 and 16: fences 6 and 22, so only 100 is an outlier
        assert (income.q1, income.median, income.q3) == (12.0, 14.0, 16.0)
        assert income.outliers == 1
        assert income.outlier_rate == pytest.approx(1 / 9)

    def test_histogram_covers_every_row_with_missing_apart(self) -> None:
        income = quality_report(applicants(), bins=5).column("income")
        assert sum(b.count for b in income.distribution) == 10
        assert income.distribution[-1].label == MISSING and income.distribution[-1].count == 1
        assert income.distribution[0].count == 8  # 10..17 fall in the first fifth of 10..100

    def test_top_categories_then_other_then_missing(self) -> None:
        industry = quality_report(applicants(), top=2).column("industry")
        assert [(b.label, b.count) for b in industry.distribution] == [
            ("retail", 5),
            ("farming", 3),
            (OTHER, 1),
            (MISSING, 1),
        ]


class TestBadRateByFeature:
    def test_overall_and_per_category_bad_rate(self) -> None:
        report = quality_report(applicants(), target="bad", bad=1)
        assert (report.bad_rows, report.bad_rate) == (4, 0.4)
        rates = {b.label: (b.count, b.bad, b.bad_rate) for b in report.column("industry").target_rate}
        assert rates["retail"] == (5, 1, 0.2)
        assert rates["farming"] == (3, 2, pytest.approx(2 / 3))
        assert rates["mining"] == (1, 1, 1.0)

    def test_information_value_on_a_hand_example(self) -> None:
        # retail 4 good/1 bad, farming 1/2, mining 0/1, missing 1/0: goods 6, bads 4
        iv = quality_report(applicants(), target="bad", bad=1).column("industry").information_value
        goods = [4 / 6, 1 / 6, 1e-4, 1 / 6]
        bads = [1 / 4, 2 / 4, 1 / 4, 1e-4]
        expected = sum((g - b) * math.log(g / b) for g, b in zip(goods, bads, strict=True))
        assert iv == pytest.approx(expected)

    def test_numeric_bins_hold_every_row_and_every_bad(self) -> None:
        bins = quality_report(applicants(), target="bad", bad="1", bins=4).column("income").target_rate
        assert sum(b.count for b in bins) == 10
        assert sum(b.bad or 0 for b in bins) == 4

    def test_unknown_target_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="target"):
            quality_report(applicants(), target="default_flag", bad=1)


class TestDrift:
    def test_psi_formula_on_a_hand_example(self) -> None:
        expected = 0.1 * math.log(0.6 / 0.5) + (-0.1) * math.log(0.4 / 0.5)
        assert psi([0.5, 0.5], [0.6, 0.4]) == pytest.approx(expected)

    def test_the_same_data_has_no_drift_and_shifted_data_does(self) -> None:
        base = pd.DataFrame({"x": [float(i) for i in range(1000)], "c": ["a", "b"] * 500})
        shifted = pd.DataFrame({"x": [float(i) + 500 for i in range(1000)], "c": ["a"] * 900 + ["b"] * 100})
        same = quality_report(base, against=base)
        moved = quality_report(base, against=shifted)
        assert same.column("x").psi == pytest.approx(0.0)
        assert same.column("c").psi == pytest.approx(0.0)
        assert moved.column("x").psi > 0.25 and moved.column("x").drift_level == "act"
        assert moved.column("c").psi > 0.25

    def test_a_category_only_in_the_comparison_counts_as_drift(self) -> None:
        base = pd.DataFrame({"c": ["a"] * 50 + ["b"] * 50})
        other = pd.DataFrame({"c": ["a"] * 50 + ["z"] * 50})
        col = quality_report(base, against=other).column("c")
        assert {d.label for d in col.drift} == {"a", "b", OTHER}
        assert col.psi is not None and col.psi > 1


class TestOutputs:
    def test_json_is_strict_json(self) -> None:
        report = quality_report(pd.DataFrame({"x": [1.0, 1.0, 1.0]}), against=pd.DataFrame({"x": [1.0]}))
        parsed = json.loads(report.to_json())
        assert parsed["columns"][0]["std"] == 0.0
        assert "NaN" not in report.to_json()

    def test_html_is_self_contained_with_a_chart_per_column(self) -> None:
        report = quality_report(applicants(), name="applicants", target="bad", bad=1, against=applicants())
        html = render_html(report)
        assert html.count("data:image/png;base64,") == 3
        assert not re.search(r"(src|href)=\"https?://", html)
        assert "<script" not in html
        assert "applicants" in html and "bad rate 40.00%" in html
