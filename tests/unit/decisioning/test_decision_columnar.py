"""The batch evaluator agrees with the rule engine row by row, boundaries and missing values included."""

from __future__ import annotations

import copy
import random
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from microlend.decisioning.columnar import ColumnarPolicy, NotCompilable, column, columns_from_inputs, parse_expression
from microlend.decisioning.domain import DecisionInput
from microlend.decisioning.policy import compile_policy, default_policy

POLICY = default_policy()


def generated_inputs(count: int, seed: int) -> list[DecisionInput]:
    """Applications drawn mostly from the policy's boundaries, with missing values everywhere allowed."""
    rng = random.Random(seed)

    def pick(*options: Any) -> Any:
        return rng.choice(options)

    def money(*edges: str) -> str:
        return str(pick(*edges, str(Decimal(rng.randint(1, 600_000_000)) / 100)))

    inputs = []
    for i in range(count):
        data = {
            "application": {
                "amount": money("1", "50000", "199999.99", "200000", "200000.01"),
                "term_months": pick(1, 3, 12, 24, 25, 36, 48),
                "product_code": pick("MICRO_BIZ", "MICRO_BIZ", "MICRO_PERSONAL", "MORTGAGE"),
                "purpose": "working_capital",
            },
            "customer": {
                "customer_id": f"c{i}",
                "age": pick(None, 17, 18, 30, 45, 65, 66, rng.randint(16, 80)),
                "industry": pick(None, "retail", "farming"),
                "years_in_business": pick(None, "0", "2", "14", "30", str(rng.randint(0, 40))),
                "annual_turnover": pick(None, "0", "299999.99", "300000", "999999.99", "1000000", "3000000", money()),
                "annual_income": pick(None, "120000", "300000", money()),
                "blacklisted": rng.random() < 0.05,
                "overdue_elsewhere": rng.random() < 0.05,
                "bureau_data_present": rng.random() < 0.9,
            },
            "features": {
                "credit_history_months": pick(None, 0, 5, 6, 5.99, 48) if rng.random() < 0.9 else None,
                "bank_inflow_12m": pick(None, 0, 60000, 200000, float(rng.randint(1, 5_000_000))),
            },
            "model": {
                "model_version": "test",
                "score": pick(
                    None,
                    "519",
                    "519.99",
                    "520",
                    "559.99",
                    "560",
                    "589",
                    "590",
                    "619",
                    "620",
                    "659.5",
                    "660",
                    "700",
                    str(rng.randint(400, 800)),
                ),
                "pd": "0.05",
            },
        }
        if rng.random() < 0.1:
            data["features"] = {}
        inputs.append(DecisionInput.from_canonical(data))
    return inputs


def assert_agrees(doc: dict[str, Any], inputs: list[DecisionInput]) -> None:
    batch = ColumnarPolicy(doc).evaluate(columns_from_inputs(inputs), len(inputs))
    engine = compile_policy(doc)
    disagreements = []
    for i, decision_input in enumerate(inputs):
        expected = engine.evaluate(decision_input).outputs()
        got = batch.row(i)
        if got != expected:
            disagreements.append((decision_input.canonical(), expected, got))
    assert not disagreements, disagreements[:3]


def test_the_default_policy_agrees_with_the_engine_on_generated_applications() -> None:
    inputs = generated_inputs(3000, seed=20261128)
    outcomes = {o for o in (compile_policy(POLICY).evaluate(x).outcome for x in inputs[:300])}
    assert outcomes == {"approve", "decline", "refer"}
    assert_agrees(POLICY, inputs)


def test_rows_where_the_engine_fails_are_referred_in_batch_too() -> None:
    doc = copy.deepcopy(POLICY)
    doc["nodes"][1]["content"]["expressions"].append(
        {"id": "x9", "key": "derived.risky_inflow", "value": "features.bank_inflow_12m > 100000"}
    )
    inputs = generated_inputs(400, seed=7)
    assert any(x.features.get("bank_inflow_12m") is None for x in inputs)
    assert_agrees(doc, inputs)


class TestWhatIsNotCompiled:
    def test_a_code_node_is_left_to_the_engine(self) -> None:
        doc = copy.deepcopy(POLICY)
        doc["nodes"][1]["type"] = "functionNode"
        with pytest.raises(NotCompilable, match="functionNode"):
            ColumnarPolicy(doc)

    def test_an_unknown_function_is_left_to_the_engine(self) -> None:
        doc = copy.deepcopy(POLICY)
        doc["nodes"][1]["content"]["expressions"][0]["value"] = "sum(features.x)"
        policy = ColumnarPolicy(doc)
        with pytest.raises(NotCompilable, match="sum"):
            policy.evaluate({}, 1)

    def test_an_expression_table_cell_is_left_to_the_engine(self) -> None:
        doc = copy.deepcopy(POLICY)
        doc["nodes"][4]["content"]["rules"][2]["g_score"] = "$ > customer.age"
        with pytest.raises(NotCompilable, match="cell"):
            ColumnarPolicy(doc)


class TestExpressions:
    def test_precedence_and_parentheses(self) -> None:
        assert parse_expression("a + b * 2 > 3 and not c") == (
            "bin",
            "and",
            ("bin", ">", ("bin", "+", ("path", "a"), ("bin", "*", ("path", "b"), ("num", 2.0))), ("num", 3.0)),
            ("not", ("path", "c")),
        )

    def test_columns_read_none_and_nan_as_null(self) -> None:
        col = column(np.array([1.5, np.nan, 3.0]), 3)
        assert col.kind == "num" and col.null.tolist() == [False, True, False]
        text = column(np.array(["A", None], dtype=object), 2)
        assert text.kind == "str" and text.null.tolist() == [False, True]


class TestBranchingPolicies:
    """A switchNode policy is evaluated in batch by routing row subsets, and agrees with the engine."""

    def test_every_branch_agrees_with_the_engine(self) -> None:
        from tests.unit.decisioning.branching_policy import branching_policy

        doc = branching_policy()
        policy = ColumnarPolicy(doc)
        assert policy.branching
        inputs = generated_inputs(3000, seed=20261130)
        products = {x.application.product_code for x in inputs}
        assert {"MICRO_BIZ", "MICRO_PERSONAL"} <= products
        assert any((x.customer.age or 0) >= 60 and x.application.product_code != "MICRO_BIZ" for x in inputs)
        assert_agrees(doc, inputs)

    def test_rows_no_statement_takes_are_engine_errors_in_batch_too(self) -> None:
        from tests.unit.decisioning.branching_policy import branching_policy

        doc = branching_policy(default_statement=False)
        inputs = generated_inputs(1500, seed=11)
        result = ColumnarPolicy(doc).evaluate(columns_from_inputs(inputs), len(inputs))
        unrouted = [i for i, x in enumerate(inputs)
                    if x.application.product_code != "MICRO_BIZ" and (x.customer.age is None or x.customer.age < 60)]
        assert unrouted
        assert all(result.reasons[i] == ("ENGINE_ERROR",) for i in unrouted)
        assert_agrees(doc, inputs)

    def test_a_collect_switch_is_left_to_the_engine(self) -> None:
        from tests.unit.decisioning.branching_policy import branching_policy

        doc = branching_policy()
        next(n for n in doc["nodes"] if n["id"] == "route")["content"]["hitPolicy"] = "collect"
        with pytest.raises(NotCompilable):
            ColumnarPolicy(doc)

    def test_a_condition_that_fails_or_is_not_a_boolean_takes_no_row(self) -> None:
        from tests.unit.decisioning.branching_policy import branching_policy

        doc = branching_policy()
        statements = next(n for n in doc["nodes"] if n["id"] == "route")["content"]["statements"]
        statements[0]["condition"] = "features.bank_inflow_12m + 1 > 100000"  # fails where the inflow is missing
        statements[1]["condition"] = "application.product_code"  # a string, never true
        inputs = generated_inputs(1500, seed=3)
        assert any(x.features.get("bank_inflow_12m") is None for x in inputs)
        assert_agrees(doc, inputs)
