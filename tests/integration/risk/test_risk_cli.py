from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from microlend.cli.risk import app
from microlend.risk.datasets import german_credit

runner = CliRunner()


@pytest.fixture(scope="module")
def german_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "german.csv"
    german_credit().frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def trained(german_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model")
    result = runner.invoke(app, ["train", "--data", str(german_csv), "--target", "creditability", "--bad", "bad",
                                 "--kind", "scorecard", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


class TestTrain:
    def test_writes_the_model_and_both_reports(self, trained: Path) -> None:
        names = {p.name for p in trained.iterdir()}
        assert {"model.json", "scorecard.json", "report.html", "report.json"} <= names
        meta = json.loads((trained / "model.json").read_text())
        assert meta["kind"] == "scorecard" and meta["target"] == "creditability"
        assert meta["metrics"]["test"]["auc"] > 0.75

    def test_gbdt_from_parquet_with_an_out_of_time_sample(self, tmp_path: Path) -> None:
        frame = german_credit().frame
        frame["applied_on"] = pd.date_range("2021-01-01", periods=len(frame), freq="D")
        data = tmp_path / "german.parquet"
        frame.to_parquet(data)
        result = runner.invoke(app, ["train", "--data", str(data), "--target", "creditability", "--bad", "bad",
                                     "--kind", "gbdt", "--out", str(tmp_path / "m"), "--date-column", "applied_on"])
        assert result.exit_code == 0, result.output
        report = json.loads((tmp_path / "m" / "report.json").read_text())
        assert set(report["samples"]) == {"train", "test", "oot"}

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--target", "default", "--bad", "bad"], "target: no column named 'default'"),
            (["--target", "creditability", "--bad", "BAD"], "no row has the bad value 'BAD'"),
            (["--target", "creditability", "--bad", "bad", "--date-column", "when"],
             "date_column: no column named 'when'"),
        ],
    )
    def test_bad_input_exits_2_with_a_clear_message(self, german_csv: Path, tmp_path: Path, args: list[str],
                                                   message: str) -> None:
        result = runner.invoke(app, ["train", "--data", str(german_csv), "--out", str(tmp_path), *args])
        assert result.exit_code == 2
        assert message in result.output
        assert "Traceback" not in result.output

    def test_missing_or_unreadable_files_exit_2(self, tmp_path: Path) -> None:
        common = ["--target", "y", "--bad", "1", "--out", str(tmp_path / "m")]
        result = runner.invoke(app, ["train", "--data", str(tmp_path / "nope.csv"), *common])
        assert result.exit_code == 2 and "not found" in result.output
        (tmp_path / "data.xlsx").write_text("x")
        result = runner.invoke(app, ["train", "--data", str(tmp_path / "data.xlsx"), *common])
        assert result.exit_code == 2 and "use a .csv or .parquet file" in result.output
        (tmp_path / "empty.csv").write_text("")
        result = runner.invoke(app, ["train", "--data", str(tmp_path / "empty.csv"), *common])
        assert result.exit_code == 2 and "cannot read 'empty.csv'" in result.output

    def test_unknown_kind_is_a_usage_error(self, german_csv: Path, tmp_path: Path) -> None:
        result = runner.invoke(app, ["train", "--data", str(german_csv), "--target", "creditability", "--bad", "bad",
                                     "--kind", "forest", "--out", str(tmp_path)])
        assert result.exit_code == 2


class TestScore:
    def test_unseen_categories_and_missing_values_are_scored(self, trained: Path, tmp_path: Path) -> None:
        frame = german_credit().frame.head(20).drop(columns=["creditability"])
        frame.loc[0, "purpose"] = "a purpose never seen"
        frame.loc[1, "credit_amount"] = np.nan
        frame.loc[2, "status_of_existing_checking_account"] = None
        data = tmp_path / "new.csv"
        frame.to_csv(data, index=False)
        out = tmp_path / "scored.csv"
        result = runner.invoke(app, ["score", "--model", str(trained), "--data", str(data), "--out", str(out),
                                     "--locale", "zh-CN"])
        assert result.exit_code == 0, result.output
        scored = pd.read_csv(out)
        assert len(scored) == 20
        assert list(scored.columns[: frame.shape[1]]) == list(frame.columns)
        assert scored["pd"].between(0, 1).all() and scored["score"].notna().all()
        assert scored["reasons"].fillna("").str.len().gt(0).sum() >= 15
        assert scored["reason_text"].dropna().str.contains("：").all()

    def test_parquet_out(self, trained: Path, german_csv: Path, tmp_path: Path) -> None:
        out = tmp_path / "scored.parquet"
        result = runner.invoke(app, ["score", "--model", str(trained), "--data", str(german_csv), "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert len(pd.read_parquet(out)) == 1000

    def test_a_missing_feature_column_exits_2_naming_it(self, trained: Path, tmp_path: Path) -> None:
        data = tmp_path / "thin.csv"
        german_credit().frame.drop(columns=["duration_in_month"]).to_csv(data, index=False)
        result = runner.invoke(app, ["score", "--model", str(trained), "--data", str(data),
                                     "--out", str(tmp_path / "o.csv")])
        assert result.exit_code == 2
        assert "duration_in_month: column is missing" in result.output

    def test_text_in_a_numeric_column_exits_2_naming_the_row(self, trained: Path, tmp_path: Path) -> None:
        frame = german_credit().frame.head(5).astype({"duration_in_month": object})
        frame.loc[3, "duration_in_month"] = "twelve"
        data = tmp_path / "typo.csv"
        frame.to_csv(data, index=False)
        result = runner.invoke(app, ["score", "--model", str(trained), "--data", str(data),
                                     "--out", str(tmp_path / "o.csv")])
        assert result.exit_code == 2
        assert "duration_in_month: expected numbers, found 'twelve' in row 4" in result.output

    def test_a_model_directory_that_is_not_one_exits_2(self, german_csv: Path, tmp_path: Path) -> None:
        result = runner.invoke(app, ["score", "--model", str(tmp_path), "--data", str(german_csv),
                                     "--out", str(tmp_path / "o.csv")])
        assert result.exit_code == 2 and "no model.json" in result.output


class TestReport:
    def test_validates_a_saved_model_on_labelled_data(self, trained: Path, german_csv: Path, tmp_path: Path) -> None:
        out = tmp_path / "check.html"
        result = runner.invoke(app, ["report", "--model", str(trained), "--data", str(german_csv), "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert out.read_text().count("data:image/png;base64,") >= 4
        assert json.loads(out.with_suffix(".json").read_text())["samples"]["data"]["metrics"]["count"] == 1000

    def test_unlabelled_data_exits_2(self, trained: Path, tmp_path: Path) -> None:
        data = tmp_path / "nolabel.csv"
        german_credit().frame.drop(columns=["creditability"]).to_csv(data, index=False)
        result = runner.invoke(app, ["report", "--model", str(trained), "--data", str(data),
                                     "--out", str(tmp_path / "r.html")])
        assert result.exit_code == 2 and "target column 'creditability' is missing" in result.output


class TestMonitor:
    def test_writes_score_psi_and_characteristic_csi(self, trained: Path, german_csv: Path, tmp_path: Path) -> None:
        out = tmp_path / "monitor.json"
        result = runner.invoke(app, ["monitor", "--model", str(trained), "--data", str(german_csv), "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert "score PSI" in result.output
        figures = json.loads(out.read_text())
        assert figures["score"]["status"] == "stable"
        assert figures["rows"] == 1000


class TestPointsTable:
    def test_exports_excel_and_refuses_a_gbdt(self, trained: Path, german_csv: Path, tmp_path: Path) -> None:
        out = tmp_path / "points.xlsx"
        result = runner.invoke(app, ["points", "--model", str(trained), "--out", str(out)])
        assert result.exit_code == 0, result.output
        table = pd.read_excel(out, engine="openpyxl")
        assert list(table.columns) == ["feature", "bin", "points", "woe", "count"]
        gbdt_dir = tmp_path / "gbdt"
        assert runner.invoke(app, ["train", "--data", str(german_csv), "--target", "creditability", "--bad", "bad",
                                   "--kind", "gbdt", "--out", str(gbdt_dir)]).exit_code == 0
        result = runner.invoke(app, ["points", "--model", str(gbdt_dir), "--out", str(tmp_path / "p.csv")])
        assert result.exit_code == 2 and "for scorecards, not for gbdt" in result.output
