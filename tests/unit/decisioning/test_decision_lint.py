"""Policy lint: each defect kind is caught on a small broken policy; the shipped policy is clean."""

from __future__ import annotations

import copy
from typing import Any

from microlend.decisioning.cells import Interval, holes, parse_cell
from microlend.decisioning.lint import lint_policy
from microlend.decisioning.policy import default_policy

BASE_INPUT = default_policy()["test_base"]


def tiny_policy(score_rows: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """Input -> a score table (first hit) -> an outcome expression -> output, with one golden test."""
    rows = score_rows or [("< 520", '"decline"'), (">= 520", '"approve"')]
    return {
        "nodes": [
            {"id": "in", "type": "inputNode", "name": "in"},
            {
                "id": "t",
                "type": "decisionTableNode",
                "name": "Cut-off",
                "content": {
                    "hitPolicy": "first",
                    "inputs": [{"id": "s", "name": "Score", "field": "model.score"}],
                    "outputs": [{"id": "o", "name": "Outcome", "field": "outcome"}],
                    "rules": [{"_id": f"r{i + 1}", "s": c, "o": o} for i, (c, o) in enumerate(rows)],
                    "passThrough": True,
                    "inputField": None,
                    "outputPath": None,
                    "executionMode": "single",
                },
            },
            {
                "id": "x",
                "type": "expressionNode",
                "name": "Outputs",
                "content": {
                    "expressions": [
                        {"id": "1", "key": "limit", "value": "0"},
                        {"id": "2", "key": "annual_rate", "value": "null"},
                        {"id": "3", "key": "reasons", "value": "[]"},
                    ],
                    "passThrough": True,
                    "inputField": None,
                    "outputPath": None,
                    "executionMode": "single",
                },
            },
            {"id": "out", "type": "outputNode", "name": "out"},
        ],
        "edges": [
            {"id": "e1", "sourceId": "in", "targetId": "t"},
            {"id": "e2", "sourceId": "t", "targetId": "x"},
            {"id": "e3", "sourceId": "x", "targetId": "out"},
        ],
        "test_base": BASE_INPUT,
        "tests": [{"name": "640 is approved", "input": {}, "expect": {"outcome": "approve"}}],
    }


def test_the_tiny_policy_is_clean() -> None:
    report = lint_policy(tiny_policy())
    assert report.ok and report.findings == ()


def test_the_shipped_default_policy_is_clean() -> None:
    report = lint_policy(default_policy())
    assert report.ok and report.findings == ()


def test_a_policy_without_the_required_outputs_is_refused() -> None:
    doc = tiny_policy()
    doc["nodes"][2]["content"]["expressions"] = doc["nodes"][2]["content"]["expressions"][:1]
    report = lint_policy(doc)
    assert not report.ok
    messages = [f.message for f in report.findings if f.kind == "missing_output"]
    assert messages == [
        "no node produces the required output 'annual_rate'",
        "no node produces the required output 'reasons'",
    ]


def test_a_code_node_is_refused() -> None:
    doc = tiny_policy()
    doc["nodes"].insert(
        2,
        {
            "id": "js",
            "type": "functionNode",
            "name": "Script",
            "content": {"source": "export const handler = async (input) => input;"},
        },
    )
    doc["edges"] = [
        {"id": "e1", "sourceId": "in", "targetId": "t"},
        {"id": "e2", "sourceId": "t", "targetId": "js"},
        {"id": "e3", "sourceId": "js", "targetId": "x"},
        {"id": "e4", "sourceId": "x", "targetId": "out"},
    ]
    report = lint_policy(doc)
    assert not report.ok and report.kinds() == {"code_node"}


def test_a_row_shadowed_by_an_earlier_row_is_unreachable() -> None:
    doc = tiny_policy([("< 520", '"decline"'), ("[500..510]", '"refer"'), (">= 520", '"approve"')])
    [finding] = lint_policy(doc).findings
    assert finding.kind == "unreachable_rule"
    assert finding.where == "node 'Cut-off' row 2 (r2)"


def test_a_row_only_partly_covered_is_reachable() -> None:
    doc = tiny_policy([("< 520", '"decline"'), ("[500..530)", '"refer"'), (">= 520", '"approve"')])
    assert "unreachable_rule" not in lint_policy(doc).kinds()


def test_a_hole_between_score_bands_is_a_gap() -> None:
    doc = tiny_policy([("[0..500]", '"decline"'), ("[520..999]", '"approve"')])
    [finding] = lint_policy(doc).findings
    assert finding.kind == "table_gap"
    assert finding.message == "values in (500, 520) match no row (rows 1, 2)"


def test_a_single_missing_point_is_a_gap() -> None:
    doc = tiny_policy([("< 520", '"decline"'), ("> 520", '"approve"')])
    [finding] = lint_policy(doc).findings
    assert "[520, 520]" in finding.message


def test_a_node_off_the_path_is_unconnected() -> None:
    doc = tiny_policy()
    doc["nodes"].append(
        {
            "id": "lost",
            "type": "expressionNode",
            "name": "Forgotten",
            "content": {
                "expressions": [],
                "passThrough": True,
                "inputField": None,
                "outputPath": None,
                "executionMode": "single",
            },
        }
    )
    report = lint_policy(doc)
    assert not report.ok
    assert [f.where for f in report.findings] == ["node 'Forgotten'"]
    assert report.findings[0].kind == "unconnected_node"


def test_an_edge_to_nowhere_is_reported() -> None:
    doc = tiny_policy()
    doc["edges"].append({"id": "e9", "sourceId": "x", "targetId": "ghost"})
    assert "unconnected_node" in lint_policy(doc).kinds()


def test_a_failing_golden_test_is_refused() -> None:
    doc = tiny_policy()
    doc["tests"][0]["expect"] = {"outcome": "decline"}
    report = lint_policy(doc)
    assert not report.ok and report.kinds() == {"golden_test_failed"}
    assert "expected 'decline', got 'approve'" in report.findings[0].message


def test_a_policy_without_golden_tests_is_warned() -> None:
    doc = tiny_policy()
    doc["tests"] = []
    report = lint_policy(doc)
    assert report.ok and report.kinds() == {"no_golden_tests"}


def test_a_reason_code_outside_the_catalogue_is_an_error() -> None:
    doc = copy.deepcopy(default_policy())
    doc["nodes"][3]["content"]["rules"][0]["k_reason"] = '"MADE_UP"'
    report = lint_policy(doc, run_tests=False)
    assert not report.ok and [f.kind for f in report.errors] == ["unknown_reason"]


def test_a_graph_the_engine_refuses_is_invalid() -> None:
    doc = tiny_policy()
    doc["nodes"][1]["content"]["hitPolicy"] = "priority"
    [finding] = lint_policy(doc).findings
    assert finding.kind == "invalid_policy" and finding.severity == "error"
    assert "unknown variant `priority`, expected `first` or `collect`" in finding.message


def test_a_misspelt_field_is_warned() -> None:
    doc = tiny_policy()
    doc["nodes"][1]["content"]["inputs"][0]["field"] = "model.scroe"
    doc["tests"] = []
    findings = [f for f in lint_policy(doc).findings if f.kind == "unknown_field"]
    assert [f.message for f in findings] == [
        "'model.scroe' is not a decision input, a feature or a value any node produces"
    ]


class TestCells:
    def test_forms_are_understood(self) -> None:
        cell = parse_cell('"A", "B"')
        assert cell is not None and cell.values == ("A", "B")
        interval = parse_cell("[520..560)")
        assert interval is not None and interval.intervals == (Interval(520, 560, True, False),)
        nulls = parse_cell("null")
        assert nulls is not None and nulls.null
        assert parse_cell("$ > customer.age") is None

    def test_touching_intervals_leave_no_hole(self) -> None:
        assert holes([Interval(0, 5, True, False), Interval(5, 9, True, True)]) == []
