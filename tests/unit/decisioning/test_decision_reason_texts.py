"""Reason codes as data: a code without text refuses the policy; a parameterised text says what the rule that
fired says; the plain trace numbers rows as the policy page does (from 1) with the values they matched."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from microlend.decisioning.domain import DecisionInput
from microlend.decisioning.lint import lint_policy
from microlend.decisioning.policy import CompiledPolicy, compact_trace, deep_merge, default_policy
from microlend.decisioning.reasons import CATALOGUE, Reason, tellable_reasons
from microlend.decisioning.trace_view import plain_cell, plain_trace, reason_values, trace_json

DEFAULT = default_policy()


def knockout(doc: dict[str, Any]) -> dict[str, Any]:
    return next(n for n in doc["nodes"] if n["id"] == "knockout")


def with_age_limit(limit: int) -> dict[str, Any]:
    """The default policy with the oldest age it lends to lowered from 65."""
    doc = copy.deepcopy(DEFAULT)
    rule = next(r for r in knockout(doc)["content"]["rules"] if r["k_reason"] == '"AGE_ABOVE_MAX"')
    rule["k_age"] = f"> {limit}"
    return doc


def decide(doc: dict[str, Any], overrides: dict[str, Any]) -> tuple[Any, Any]:
    result = CompiledPolicy(doc).evaluate(DecisionInput.from_canonical(deep_merge(doc["test_base"], overrides)),
                                          trace=True)
    return result, compact_trace(result.trace)


class TestACodeWithoutText:
    def test_a_code_missing_from_the_bank_s_catalogue_refuses_the_policy(self) -> None:
        doc = copy.deepcopy(DEFAULT)
        knockout(doc)["content"]["rules"][0]["k_reason"] = '"AGE_AT_MATURITY"'
        report = lint_policy(doc, run_tests=False)
        assert not report.ok
        [finding] = report.errors
        assert finding.kind == "unknown_reason" and finding.where == "node 'Knock-out rules' row 1"
        assert "'AGE_AT_MATURITY' is not in the bank's reason catalogue" in finding.message

    def test_a_code_whose_borrower_text_is_empty_refuses_the_policy(self) -> None:
        catalogue = dict(CATALOGUE)
        catalogue["BLACKLISTED"] = replace(CATALOGUE["BLACKLISTED"], en=" ", staff_en="On a blacklist")
        report = lint_policy(DEFAULT, run_tests=False, catalogue=catalogue)
        assert [(f.kind, f.message.split(" the bank")[0]) for f in report.errors] == [
            ("unknown_reason", "reason code 'BLACKLISTED' has no borrower_en text in")]

    def test_the_same_policy_is_clean_against_a_catalogue_that_has_the_code(self) -> None:
        doc = copy.deepcopy(DEFAULT)
        knockout(doc)["content"]["rules"][0]["k_reason"] = '"AGE_AT_MATURITY"'
        catalogue = {**CATALOGUE, "AGE_AT_MATURITY": Reason("AGE_AT_MATURITY", "到期年龄过大", "Too old at maturity",
                                                             True)}
        assert lint_policy(doc, run_tests=False, catalogue=catalogue).ok

    def test_a_parameterised_code_on_a_row_without_its_bound_is_refused(self) -> None:
        doc = copy.deepcopy(DEFAULT)
        rule = next(r for r in knockout(doc)["content"]["rules"] if r["_id"] == "age2")
        rule["k_reason"] = '"AGE_ABOVE_MAX"'  # reused on the age-at-maturity row, which tests no age cell
        [finding] = lint_policy(doc, run_tests=False).errors
        assert finding.kind == "reason_parameter" and "{max_age}" in finding.message


class TestParameterisedAgeText:
    def test_a_64_year_old_is_told_the_limit_the_rule_has_not_the_text_s(self) -> None:
        doc = with_age_limit(60)
        result, trace = decide(doc, {"customer": {"age": 64}, "capacity": {"age_at_maturity": 65}})
        assert result.outcome == "decline" and result.reasons == ("AGE_ABOVE_MAX",)
        values = reason_values(doc, trace)
        assert values == {"AGE_ABOVE_MAX": {"max_age": "60"}}
        (en,) = tellable_reasons(result.reasons, locale="en", values=values)
        (zh,) = tellable_reasons(result.reasons, values=values)
        assert en == "The applicant is older than the product allows (60)"
        assert zh == "申请人年龄超过产品上限（60周岁）"
        assert "65" not in en + zh

    def test_the_shipped_limit_is_told_from_the_shipped_rule(self) -> None:
        result, trace = decide(DEFAULT, {"customer": {"age": 70}, "capacity": {"age_at_maturity": 71}})
        en = tellable_reasons(result.reasons, locale="en", values=reason_values(DEFAULT, trace))[0]
        assert result.reasons[0] == "AGE_ABOVE_MAX" and en.endswith("(65)")

    def test_the_youngest_age_comes_from_its_rule(self) -> None:
        doc = copy.deepcopy(DEFAULT)
        rule = next(r for r in knockout(doc)["content"]["rules"] if r["k_reason"] == '"AGE_BELOW_MIN"')
        rule["k_age"] = "< 20"
        result, trace = decide(doc, {"customer": {"age": 19, "years_in_business": "2"}})
        (en,) = tellable_reasons(result.reasons, locale="en", values=reason_values(doc, trace))
        assert en == "The applicant is younger than 20"


class TestPlainTrace:
    def test_rows_are_numbered_from_1_with_the_values_they_matched(self) -> None:
        _, trace = decide(DEFAULT, {"model": {"score": "530"}, "customer": {"age": 70},
                                         "capacity": {"age_at_maturity": 71}})
        steps = {s.name: s for s in plain_trace(DEFAULT, trace)}
        grade = steps["Score cut-offs and risk grade"]
        [row] = grade.rows
        assert row.row == 3 and row.rule_id == "r3"  # the engine's index 2
        assert [(c.column, c.test, c.value) for c in row.matched] == [("Score", "[520..560)", 530)]
        assert [(o.name, o.value) for o in row.outputs] == [("Risk grade", "E")]
        ko = steps["Knock-out rules"].rows[0]
        assert (ko.row, [(c.field, c.test, c.value) for c in ko.matched]) == (3, [("customer.age", "> 65", 70)])
        assert [(o.name, o.value) for o in ko.outputs] == [("Reason", "AGE_ABOVE_MAX")]
        order = [s.order for s in plain_trace(DEFAULT, trace)]
        assert order == sorted(order) and "Application" not in steps and "Decision" not in steps

    def test_expressions_show_their_results_plainly(self) -> None:
        _, trace = decide(DEFAULT, {})
        outcome = next(s for s in plain_trace(DEFAULT, trace) if s.name == "Outcome")
        assert ("outcome", "approve") in [(o.name, o.value) for o in outcome.results]

    def test_the_json_form_keeps_the_page_s_numbering(self) -> None:
        _, trace = decide(DEFAULT, {"model": {"score": "700"}})
        grade = next(s for s in trace_json(plain_trace(DEFAULT, trace)) if s["node_id"] == "grade")
        assert [r["row"] for r in grade["rows"]] == [7]
        assert grade["rows"][0]["matched"] == [{"column": "Score", "field": "model.score", "test": ">= 660",
                                                "value": 700}]

    def test_cells_read_plainly(self) -> None:
        assert plain_cell('"X"') == "X"
        assert plain_cell('"A","B"') == "A, B"
        assert plain_cell("") == "-"
        assert plain_cell("[520..560)") == "[520..560)"
        assert plain_cell("> 65") == "> 65"


class TestTheStarterPolicySaysWhatItDoes:
    def test_grade_e_is_referred_whatever_the_amount_as_its_note_says(self) -> None:
        grade = next(n for n in DEFAULT["nodes"] if n["id"] == "grade")
        [row] = [r for r in grade["content"]["rules"] if r["g_grade"] == '"E"']
        assert "referred" in row["_description"]
        for score in ("520", "540", "559"):
            for amount in ("10000", "100000", "200000"):
                result, _ = decide(DEFAULT, {"model": {"score": score}, "application": {"amount": amount},
                                             "customer": {"annual_turnover": "2000000"},
                                             "features": {"bank_inflow_12m": 2500000}})
                assert (result.outcome, result.risk_grade) == ("refer", "E"), (score, amount, result)
                assert "SCORE_GREY_BAND" in result.reasons
