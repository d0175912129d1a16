from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pandas as pd
import pytest

from microlend.core.errors import ValidationError
from microlend.risk.development import develop_model, validate_on

CREATED = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def developed(german, tmp_path_factory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("scorecard")
    steps: list[str] = []
    dev = develop_model(german.frame, target=german.target, bad=german.bad, kind="scorecard", out_dir=out,
                        created_at=CREATED, progress=steps.append)
    return dev, out, steps


class TestValidationReport:
    def test_every_step_runs_in_order(self, developed) -> None:  # type: ignore[no-untyped-def]
        _, _, steps = developed
        assert steps == ["split", "train", "benchmark", "validate", "save", "report"]

    def test_the_report_renders_with_its_charts_and_no_network(self, developed) -> None:  # type: ignore[no-untyped-def]
        dev, out, _ = developed
        html = (out / "report.html").read_text()
        images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]{100,})"', html)
        # ROC, distribution, gains, calibration and one binning chart per characteristic
        assert len(images) == 4 + len(dev.artefact.model.features)
        assert not re.search(r'(src|href)="https?://', html)
        assert "Benchmark against the gbdt model" in html

    def test_json_holds_the_same_figures(self, developed) -> None:  # type: ignore[no-untyped-def]
        dev, out, _ = developed
        report = json.loads((out / "report.json").read_text())
        test = report["samples"]["test"]["metrics"]
        assert test["count"] == 300 and test["bad_rate"] == pytest.approx(0.3)
        assert 0.7 < test["auc"] < 0.9
        assert test["gini"] == pytest.approx(2 * test["auc"] - 1)
        assert len(report["gains"]) == 10
        assert sum(r["count"] for r in report["calibration"]) == 300
        assert report["stability"][0]["from"] == "train" and report["stability"][0]["to"] == "test"
        assert report["benchmark"]["kind"] == "gbdt"
        assert {r["feature"] for r in report["features"]["iv"]} == set(dev.artefact.model.features)
        assert dev.artefact.metadata.metrics["test"]["auc"] == pytest.approx(test["auc"])

    def test_out_of_time_sample_when_a_date_column_exists(self, german, tmp_path) -> None:  # type: ignore[no-untyped-def]
        frame = german.frame.copy()
        frame["applied_on"] = pd.date_range("2020-01-01", periods=len(frame), freq="D").astype(str)
        dev = develop_model(frame, target=german.target, bad=german.bad, kind="gbdt", out_dir=tmp_path,
                            created_at=CREATED, date_column="applied_on", benchmark=False)
        assert dev.report["samples"]["oot"]["metrics"]["count"] == 200
        assert "applied_on" not in dev.artefact.model.features
        assert [r["to"] for r in dev.report["stability"]] == ["test", "oot"]
        assert "Out of time" in (tmp_path / "report.html").read_text()

    def test_a_saved_model_is_validated_on_new_data_against_its_development_scores(
        self, developed, german, tmp_path  # type: ignore[no-untyped-def]
    ) -> None:
        dev, _, _ = developed
        report = validate_on(dev.artefact, german.frame.sample(400, random_state=1), tmp_path / "r.html")
        assert report["stability"][0]["from"] == "development"
        assert report["stability"][0]["psi"] < 0.1
        assert (tmp_path / "r.html").read_text().count("data:image/png;base64,") >= 4

    def test_unknown_kind_and_target_are_refused(self, german, tmp_path) -> None:  # type: ignore[no-untyped-def]
        with pytest.raises(ValidationError, match="kind: must be one of scorecard, gbdt"):
            develop_model(german.frame, target=german.target, bad="bad", kind="forest", out_dir=tmp_path,
                          created_at=CREATED)
        with pytest.raises(ValidationError, match="target: no column named 'default'"):
            develop_model(german.frame, target="default", bad="bad", kind="gbdt", out_dir=tmp_path,
                          created_at=CREATED)
