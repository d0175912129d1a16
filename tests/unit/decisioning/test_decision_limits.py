"""Limit review for existing borrowers: the shipped policy, one line at a time and a whole portfolio."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from microlend.cli.decisioning import app
from microlend.core.errors import ValidationError
from microlend.decisioning.golden import run_golden_tests
from microlend.decisioning.limits import LimitReviewInput, default_limit_review, review_line, review_portfolio
from microlend.decisioning.lint import lint_policy
from microlend.decisioning.policy import compile_policy, deep_merge, default_policy, golden_inputs

POLICY = default_limit_review()
COMPILED = compile_policy(POLICY)


def line(overrides: dict[str, Any] | None = None) -> LimitReviewInput:
    return LimitReviewInput.from_canonical(deep_merge(POLICY["test_base"], overrides or {}))


@pytest.mark.parametrize("name", [name for name, _, _ in golden_inputs(POLICY)])
def test_every_golden_test_of_the_limit_review_passes(name: str) -> None:
    result = next(r for r in run_golden_tests(POLICY) if r.name == name)
    assert result.passed, result.problems


def test_the_limit_review_policy_is_clean() -> None:
    assert lint_policy(POLICY).findings == ()


def test_a_limit_review_without_an_action_is_refused() -> None:
    doc = deep_merge(POLICY, {})
    doc["nodes"][6]["content"]["expressions"] = [
        x for x in doc["nodes"][6]["content"]["expressions"] if x["key"] != "action"
    ]
    report = lint_policy(doc, run_tests=False)
    assert [f.message for f in report.errors] == ["no node produces the required output 'action'"]


def test_a_freeze_keeps_the_limit_and_a_decrease_is_exact() -> None:
    frozen = review_line(COMPILED, line({"behaviour": {"current_dpd": 45, "max_dpd_6m": 45}}))
    assert (frozen.action, frozen.limit) == ("freeze", Decimal("50000.00"))
    lowered = review_line(COMPILED, line({"line": {"limit": "33333.33"}, "behaviour": {"max_dpd_6m": 3}}))
    assert lowered.limit == Decimal("23333.33")


def test_float_limits_are_refused() -> None:
    data = deep_merge(POLICY["test_base"], {})
    data["line"]["limit"] = 5000.5
    with pytest.raises(ValidationError, match=r"line\.limit"):
        LimitReviewInput.from_canonical(data)


def generated_lines(count: int, seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        rows.append(
            {
                "line.line_id": f"L{i}",
                "line.limit": str(rng.choice([100, 1000, 500]) * rng.randint(1, 2500)),
                "line.utilisation": str(
                    rng.choice([Decimal("0"), Decimal("0.49"), Decimal("0.5"), Decimal("0.93"), Decimal("1")])
                ),
                "line.months_on_book": rng.choice([0, 5, 6, 24]),
                "behaviour.current_dpd": rng.choice([0, 0, 0, 15, 30, 31, 95]),
                "behaviour.max_dpd_6m": rng.choice([0, 0, 0, 1, 30, 31]),
                "behaviour.on_time_ratio_12m": rng.choice([None, "0.9", "0.95", "1"]),
                "warning.blacklisted": rng.random() < 0.03,
                "warning.overdue_elsewhere": rng.random() < 0.05,
                "warning.turnover_drop": rng.random() < 0.1,
                "model.score": rng.choice([None, 559, 560, 619, 620, 659, 660, rng.randint(500, 750)]),
            }
        )
    return pd.DataFrame(rows)


def test_the_portfolio_review_agrees_with_the_engine_line_by_line() -> None:
    lines = generated_lines(1500, seed=11)
    batch = review_portfolio(POLICY, lines)
    assert set(batch["action"]) == {"increase", "keep", "decrease", "freeze"}
    assert set(batch["outcome"]) == {"approve", "refer"}
    for i, row in enumerate(lines.to_dict(orient="records")):
        nested: dict[str, dict[str, Any]] = {"line": {}, "behaviour": {}, "warning": {}, "model": {}}
        for key, value in row.items():
            top, _, rest = key.partition(".")
            nested[top][rest] = None if isinstance(value, float) and value != value else value
        expected = review_line(COMPILED, LimitReviewInput.from_canonical(nested))
        got = batch.iloc[i]
        assert (got["action"], got["outcome"], got["limit"], tuple(got["reasons"])) == (
            expected.action,
            expected.outcome,
            expected.limit,
            expected.reasons,
        ), row


def test_the_review_limits_command(tmp_path: Path) -> None:
    generated_lines(200, seed=5).to_csv(tmp_path / "lines.csv", index=False)
    result = CliRunner().invoke(
        app, ["review-limits", "--data", str(tmp_path / "lines.csv"), "--out", str(tmp_path / "out.csv")]
    )
    assert result.exit_code == 0, result.output
    assert "200 lines reviewed" in result.output
    written = pd.read_csv(tmp_path / "out.csv")
    assert list(written.columns) == ["line_id", "action", "outcome", "limit", "reasons"] and len(written) == 200


def test_a_credit_policy_is_not_a_limit_review(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(default_policy()), encoding="utf-8")
    result = CliRunner().invoke(
        app,
        ["review-limits", "--policy", str(path), "--data", str(tmp_path / "x.csv"), "--out", str(tmp_path / "o.csv")],
    )
    assert result.exit_code == 2 and "not a limit review policy" in result.output
