"""The table editor's edit: cells, notes, new and removed rows change; nothing else does."""

from __future__ import annotations

import copy

import pytest

from microlend.core.errors import NotFound, ValidationError
from microlend.decisioning.lint import lint_policy
from microlend.decisioning.policy import default_policy, policy_hash
from microlend.decisioning.table_edit import edit_table, table_node

DEFAULT = default_policy()


def grade_rows() -> list[dict[str, str]]:
    rules = table_node(DEFAULT, "grade")["content"]["rules"]
    return [{"_id": r["_id"], "g_score": r["g_score"], "g_grade": r["g_grade"],
             "_description": r.get("_description", "")} for r in rules]


def test_unchanged_rows_give_the_same_document() -> None:
    assert policy_hash(edit_table(DEFAULT, "grade", grade_rows())) == policy_hash(DEFAULT)


def test_a_cell_changes_and_the_original_does_not() -> None:
    before = copy.deepcopy(DEFAULT)
    rows = grade_rows()
    rows[6]["g_score"] = ">= 680"
    new = edit_table(DEFAULT, "grade", rows)
    assert table_node(new, "grade")["content"]["rules"][6]["g_score"] == ">= 680"
    assert before == DEFAULT
    assert [n for n in new["nodes"] if n["id"] != "grade"] == [n for n in DEFAULT["nodes"] if n["id"] != "grade"]
    assert new["tests"] == DEFAULT["tests"]


def test_a_row_is_added_and_one_removed() -> None:
    rows = [*grade_rows(), {"_id": "", "g_score": "> 900", "g_grade": '"A"', "_description": "new"}]
    new = edit_table(DEFAULT, "grade", rows, delete={1})
    rules = table_node(new, "grade")["content"]["rules"]
    assert [r["_id"] for r in rules][:1] == ["r2"] and len(rules) == 7
    assert rules[-1]["g_score"] == "> 900" and rules[-1]["_id"] not in {"r1", "r2", "r3", "r4", "r5", "r6", "r7"}


def test_an_edit_that_breaks_a_golden_test_is_found_by_lint() -> None:
    rows = grade_rows()
    rows[6]["g_grade"] = '"B"'  # 660 and above no longer grade A
    report = lint_policy(edit_table(DEFAULT, "grade", rows))
    assert not report.ok and "golden_test_failed" in report.kinds()


@pytest.mark.parametrize(("node_id", "rows", "error"), [
    ("decide", [{"_id": "x"}], NotFound),
    ("grade", [], ValidationError),
    ("grade", [{"_id": "r1", "g_score": "<\n1", "g_grade": ""}], ValidationError),
])
def test_bad_edits_are_refused(node_id: str, rows: list[dict[str, str]], error: type[Exception]) -> None:
    with pytest.raises(error):
        edit_table(DEFAULT, node_id, rows)
