"""`microlend policy` commands: lint, test, hash, sample-data and simulate; bad input exits 2 without a traceback."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from microlend.cli.decisioning import app
from microlend.decisioning.policy import default_policy, policy_hash

runner = CliRunner()


@pytest.fixture
def default_file(tmp_path: Path) -> Path:
    path = tmp_path / "default.json"
    path.write_text(json.dumps(default_policy(), ensure_ascii=False), encoding="utf-8")
    return path


def write(tmp_path: Path, name: str, doc: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


class TestLint:
    def test_the_default_policy_is_clean(self, default_file: Path) -> None:
        result = runner.invoke(app, ["lint", str(default_file)])
        assert result.exit_code == 0, result.output
        assert "0 error(s), 0 warning(s)" in result.output

    def test_a_code_node_fails_with_exit_1(self, tmp_path: Path) -> None:
        doc = copy.deepcopy(default_policy())
        doc["nodes"][1]["type"] = "functionNode"
        result = runner.invoke(app, ["lint", str(write(tmp_path, "p.json", doc))])
        assert result.exit_code == 1
        assert "[code_node] node 'Derived facts'" in result.output

    def test_findings_as_json(self, tmp_path: Path) -> None:
        doc = copy.deepcopy(default_policy())
        doc["nodes"][4]["content"]["rules"][3]["g_score"] = "[561..590)"
        result = runner.invoke(app, ["lint", "--json", "--no-tests", str(write(tmp_path, "p.json", doc))])
        assert result.exit_code == 0
        [finding] = json.loads(result.output)
        assert finding["kind"] == "table_gap" and "[560, 561)" in finding["message"]

    def test_a_missing_file_exits_2_with_a_clear_message(self, tmp_path: Path) -> None:
        result = runner.invoke(app, ["lint", str(tmp_path / "nope.json")])
        assert result.exit_code == 2
        assert "cannot read the policy file" in result.output and "Traceback" not in result.output

    def test_a_file_that_is_not_json_exits_2(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.json"
        path.write_text("{nodes:", encoding="utf-8")
        result = runner.invoke(app, ["lint", str(path)])
        assert result.exit_code == 2 and "not valid JSON" in result.output

    def test_json_that_is_not_a_policy_exits_2(self, tmp_path: Path) -> None:
        result = runner.invoke(app, ["lint", str(write(tmp_path, "x.json", [1, 2]))])
        assert result.exit_code == 2 and "'nodes' and 'edges'" in result.output


class TestGoldenTestsCommand:
    def test_passing_tests(self, default_file: Path) -> None:
        result = runner.invoke(app, ["test", str(default_file)])
        assert result.exit_code == 0
        assert f"{len(default_policy()['tests'])} passed, 0 failed" in result.output

    def test_a_failing_test_exits_1_and_says_why(self, tmp_path: Path) -> None:
        doc = copy.deepcopy(default_policy())
        doc["tests"][0]["expect"]["limit"] = "1"
        result = runner.invoke(app, ["test", str(write(tmp_path, "p.json", doc))])
        assert result.exit_code == 1
        assert "limit: expected '1', got '50000.00'" in result.output


def test_hash_prints_the_version_identity(default_file: Path) -> None:
    result = runner.invoke(app, ["hash", str(default_file)])
    assert result.output.strip() == policy_hash(default_policy())


class TestSimulate:
    @pytest.mark.slow
    def test_sample_data_then_simulate_against_a_baseline(self, tmp_path: Path, default_file: Path) -> None:
        data = tmp_path / "apps.parquet"
        made = runner.invoke(app, ["sample-data", "--source", "german_credit", "--out", str(data)])
        assert made.exit_code == 0, made.output
        stricter = copy.deepcopy(default_policy())
        stricter["nodes"][3]["content"]["rules"][-1]["k_score"] = "< 600"
        out = tmp_path / "report.html"
        result = runner.invoke(
            app,
            [
                "simulate",
                "--policy",
                str(write(tmp_path, "s.json", stricter)),
                "--baseline",
                str(default_file),
                "--data",
                str(data),
                "--out",
                str(out),
            ],
        )
        assert result.exit_code == 0, result.output
        assert "1000 applications" in result.output
        assert out.read_text(encoding="utf-8").startswith("<!doctype html>")
        report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
        assert report["swap"]["swap_in"]["applications"] == 0
        assert "segment.housing" in report["segments"]

    def test_an_unknown_sample_source_exits_2(self, tmp_path: Path) -> None:
        result = runner.invoke(app, ["sample-data", "--source", "nowhere", "--out", str(tmp_path / "a.csv")])
        assert result.exit_code == 2 and "not a known dataset" in result.output

    def test_data_without_the_needed_columns_exits_2(self, tmp_path: Path, default_file: Path) -> None:
        data = tmp_path / "apps.csv"
        data.write_text("customer.customer_id\nc1\n", encoding="utf-8")
        result = runner.invoke(
            app, ["simulate", "--policy", str(default_file), "--data", str(data), "--out", str(tmp_path / "r.html")]
        )
        assert result.exit_code == 2 and "application.amount" in result.output

    def test_a_report_name_that_is_not_html_exits_2(self, tmp_path: Path, default_file: Path) -> None:
        result = runner.invoke(
            app,
            [
                "simulate",
                "--policy",
                str(default_file),
                "--data",
                str(tmp_path / "a.csv"),
                "--out",
                str(tmp_path / "r.pdf"),
            ],
        )
        assert result.exit_code == 2 and "should end in .html" in result.output


def test_simulating_a_limit_review_policy_exits_2(tmp_path: Path) -> None:
    from microlend.decisioning.limits import default_limit_review

    path = write(tmp_path, "review.json", default_limit_review())
    result = runner.invoke(
        app, ["simulate", "--policy", str(path), "--data", str(tmp_path / "a.csv"), "--out", str(tmp_path / "r.html")]
    )
    assert result.exit_code == 2 and "simulate runs credit-decision policies" in result.output
