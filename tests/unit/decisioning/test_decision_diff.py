"""What a checker sees before publishing: the changes between two policy versions."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from typer.testing import CliRunner

from microlend.cli.decisioning import app
from microlend.decisioning.diff import policy_diff
from microlend.decisioning.policy import default_policy

OLD = default_policy()


def test_the_same_policy_has_no_changes() -> None:
    assert policy_diff(OLD, copy.deepcopy(OLD)) == []


def test_a_raised_cut_off_shows_the_cell_and_the_adjusted_test() -> None:
    new = copy.deepcopy(OLD)
    new["nodes"][3]["content"]["rules"][-1]["k_score"] = "< 540"
    new["tests"][3]["expect"] = {"outcome": "refer"}
    assert policy_diff(OLD, new) == [
        "table 'Knock-out rules': row 25 (r7) Score: '< 520' -> '< 540'",
        "golden test 'score 519 is declined' changed",
    ]


def test_rows_added_removed_and_expressions_changed() -> None:
    new = copy.deepcopy(OLD)
    refer = new["nodes"][7]["content"]
    refer["rules"].append(
        {"_id": "r5", "f_amount": "", "f_thin": "", "f_conflict": "", "f_grade": '"D"', "f_reason": '"SCORE_GREY_BAND"'}
    )
    grade = new["nodes"][4]["content"]
    del grade["rules"][0]
    new["nodes"][1]["content"]["expressions"][0]["value"] = "customer.annual_turnover ?? 0"
    changes = policy_diff(OLD, new)
    assert 'table \'Refer rules\': row 14 (r5) added: Risk grade "D", Reason "SCORE_GREY_BAND"' in changes
    assert "table 'Score cut-offs and risk grade': row 1 (r1) removed" in changes
    assert any(c.startswith("expressions 'Derived facts': derived.revenue: ") for c in changes)


def test_the_diff_command(tmp_path: Path) -> None:
    new = copy.deepcopy(OLD)
    new["nodes"][6]["content"]["rules"][0]["r_rate"] = "0.0480"
    for name, doc in (("old.json", OLD), ("new.json", new)):
        (tmp_path / name).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    result = CliRunner().invoke(app, ["diff", str(tmp_path / "old.json"), str(tmp_path / "new.json")])
    assert result.exit_code == 0
    assert "table 'Pricing': row 1 (r1) Annual rate: '0.0450' -> '0.0480'" in result.output
    assert "1 change(s)" in result.output
