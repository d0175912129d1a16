"""The default micro-loan policy, its golden tests, and how numbers cross the rule engine exactly."""

from __future__ import annotations

import copy
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microlend.core.errors import ValidationError
from microlend.decisioning.domain import DecisionInput, engine_json, engine_limit, engine_rate, exact_decimal
from microlend.decisioning.golden import run_golden_tests
from microlend.decisioning.policy import (
    compile_policy,
    deep_merge,
    default_policy,
    golden_inputs,
    policy_hash,
)
from microlend.decisioning.reasons import CATALOGUE, reason, tellable_reasons

POLICY = default_policy()
COMPILED = compile_policy(POLICY)


def application(overrides: dict[str, Any] | None = None) -> DecisionInput:
    return DecisionInput.from_canonical(deep_merge(POLICY["test_base"], overrides or {}))


@pytest.mark.parametrize("name", [name for name, _, _ in golden_inputs(POLICY)])
def test_every_golden_test_of_the_shipped_policy_passes(name: str) -> None:
    result = next(r for r in run_golden_tests(POLICY) if r.name == name)
    assert result.passed, result.problems


class TestGoldenRunner:
    def test_a_wrong_expectation_is_reported_with_what_was_got(self) -> None:
        doc = copy.deepcopy(POLICY)
        doc["tests"] = [{"name": "wrong", "input": {}, "expect": {"outcome": "decline", "limit": "1"}}]
        [result] = run_golden_tests(doc)
        assert not result.passed
        assert "outcome: expected 'decline', got 'approve'" in result.problems
        assert "limit: expected '1', got '50000.00'" in result.problems

    def test_an_invalid_test_input_fails_the_test_not_the_runner(self) -> None:
        doc = copy.deepcopy(POLICY)
        doc["tests"] = [{"name": "bad", "input": {"application": {"term_months": 0}}, "expect": {}}]
        [result] = run_golden_tests(doc)
        assert not result.passed and "term_months" in result.problems[0]


class TestPolicyVersionHash:
    def test_key_order_does_not_change_the_hash(self) -> None:
        reordered = dict(reversed(list(POLICY.items())))
        assert policy_hash(reordered) == policy_hash(POLICY)

    def test_any_edit_changes_the_hash(self) -> None:
        edited = copy.deepcopy(POLICY)
        edited["nodes"][4]["content"]["rules"][1]["g_score"] = "< 530"
        assert policy_hash(edited) != policy_hash(POLICY)
        assert len(policy_hash(POLICY)) == 64


class TestDecisionsWithMissingData:
    def test_no_features_at_all_is_a_thin_file_given_a_starter_limit_within_the_authority(self) -> None:
        data = POLICY["test_base"] | {"features": {}}
        result = COMPILED.evaluate(DecisionInput.from_canonical(data))
        assert result.outcome == "approve" and result.limit == Decimal("20000")

    def test_no_features_at_all_refers_as_a_thin_file_above_the_authority(self) -> None:
        data = deep_merge(POLICY["test_base"], {"application": {"amount": "250000"}}) | {"features": {}}
        result = COMPILED.evaluate(DecisionInput.from_canonical(data))
        assert result.outcome == "refer" and "THIN_FILE" in result.reasons

    def test_no_age_declines_for_missing_data(self) -> None:
        result = COMPILED.evaluate(application({"customer": {"age": None}}))
        assert result.outcome == "decline" and result.reasons == ("DATA_MISSING",)

    def test_an_engine_failure_becomes_a_referral_not_a_crash(self) -> None:
        doc = copy.deepcopy(POLICY)
        # a rule that compares a missing value makes the engine fail
        doc["nodes"][1]["content"]["expressions"].append(
            {"id": "bad", "key": "derived.bad", "value": "features.missing_feature > 3"}
        )
        result = compile_policy(doc).evaluate(application(), trace=True)
        assert result.outcome == "refer" and result.reasons == ("ENGINE_ERROR",)
        assert result.trace is not None and "error" in result.trace

    def test_the_trace_names_each_node(self) -> None:
        result = COMPILED.evaluate(application(), trace=True)
        assert result.trace is not None
        assert {"knockout", "grade", "limit", "pricing", "refer", "decide"} <= set(result.trace)


class TestExactNumbers:
    @settings(max_examples=60, deadline=None)
    @given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("150000"), places=2))
    def test_an_approved_amount_within_the_cap_comes_back_to_the_cent(self, amount: Decimal) -> None:
        result = COMPILED.evaluate(
            application(
                {
                    "application": {"amount": str(amount)},
                    "customer": {"annual_turnover": "5000000"},
                    "features": {"bank_inflow_12m": 5000000},
                    "model": {"score": "700"},
                }
            )
        )
        assert result.outcome == "approve"
        assert result.limit == amount

    def test_decimals_reach_the_engine_as_exact_numbers(self) -> None:
        assert engine_json({"a": Decimal("0.1"), "b": [Decimal("1E+3")]}) == '{"a":0.1,"b":[1000]}'

    def test_engine_numbers_are_rounded_half_up(self) -> None:
        assert engine_limit(1234.565) == Decimal("1234.57")
        assert engine_limit("0.005") == Decimal("0.01")
        assert engine_rate(0.0850000049) == Decimal("0.085000")
        assert engine_rate("0.0000005") == Decimal("0.000001")
        assert engine_rate(None) is None

    def test_a_non_number_from_the_engine_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="limit"):
            exact_decimal(True, "limit")
        with pytest.raises(ValidationError, match="negative"):
            engine_limit(-1)

    def test_float_amounts_are_refused_at_the_door(self) -> None:
        data = deep_merge(POLICY["test_base"], {})
        data["application"]["amount"] = 100.5
        with pytest.raises(ValidationError, match=r"application\.amount: .*decimal strings"):
            DecisionInput.from_canonical(data)

    def test_canonical_json_round_trips(self) -> None:
        original = application()
        assert DecisionInput.from_canonical(original.canonical()) == original


class TestReasonCatalogue:
    def test_every_reason_the_policy_can_give_is_catalogued(self) -> None:
        codes = {r["k_reason"].strip('"') for r in POLICY["nodes"][3]["content"]["rules"]}
        codes |= {r["f_reason"].strip('"') for r in POLICY["nodes"][7]["content"]["rules"]}
        assert codes <= set(CATALOGUE)

    def test_a_borrower_is_not_told_about_a_blacklist(self) -> None:
        told = tellable_reasons(["BLACKLISTED", "OVERDUE_ELSEWHERE"], locale="en")
        assert told == ["The applicant is currently overdue with another lender"]

    @pytest.mark.parametrize("code", sorted(CATALOGUE))
    def test_every_reason_has_a_chinese_and_an_english_message(self, code: str) -> None:
        zh, en = reason(code).message("zh_CN"), reason(code).message("en")
        assert zh and en and zh != en and code not in (zh, en)
        assert re.search(r"[\u4e00-\u9fff]", zh) and not re.search(r"[\u4e00-\u9fff]", en)
        assert "{" not in zh + en and "}" not in zh + en, "a placeholder was left unfilled"
        for name, _field in reason(code).params:  # a parameter the rule did not give reads as unknown
            assert "…" in zh and "…" in en, name

    def test_a_borrower_is_told_in_chinese_by_default_and_in_business_terms(self) -> None:
        given = {"AGE_BELOW_MIN": {"min_age": 18}}
        (zh,) = tellable_reasons(["AGE_BELOW_MIN"], values=given)
        (en,) = tellable_reasons(["AGE_BELOW_MIN"], locale="en", values=given)
        assert "年龄" in zh and "18" in zh
        assert "younger" in en and "18" in en

    def test_an_unknown_code_is_never_told(self) -> None:
        assert tellable_reasons(["NO_SUCH_CODE", "OVERDUE_ELSEWHERE"], locale="en") == [
            reason("OVERDUE_ELSEWHERE").en]


RATE_RANGES = {"MICRO_BIZ": (Decimal("0.04"), Decimal("0.18")), "MICRO_PERSONAL": (Decimal("0.06"), Decimal("0.24"))}
optional_money = st.one_of(st.none(), st.decimals(min_value=0, max_value=10_000_000, places=2).map(str))


class TestPolicyInvariants:
    @settings(max_examples=150, deadline=None)
    @given(
        amount=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("2000000"), places=2),
        term=st.integers(min_value=1, max_value=360),
        product=st.sampled_from(["MICRO_BIZ", "MICRO_PERSONAL", "OTHER"]),
        age=st.one_of(st.none(), st.integers(min_value=0, max_value=120)),
        turnover=optional_money,
        income=optional_money,
        score=st.one_of(st.none(), st.decimals(min_value=300, max_value=900, places=2).map(str)),
        flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
        history=st.one_of(st.none(), st.floats(min_value=0, max_value=600)),
        inflow=st.one_of(st.none(), st.floats(min_value=0, max_value=1e8)),
    )
    def test_any_application_gets_a_coherent_decision(
        self,
        amount: Decimal,
        term: int,
        product: str,
        age: int | None,
        turnover: str | None,
        income: str | None,
        score: str | None,
        flags: tuple[bool, bool, bool],
        history: float | None,
        inflow: float | None,
    ) -> None:
        decision_input = application(
            {
                "application": {"amount": str(amount), "term_months": term, "product_code": product},
                "customer": {
                    "age": age,
                    "annual_turnover": turnover,
                    "annual_income": income,
                    "blacklisted": flags[0],
                    "overdue_elsewhere": flags[1],
                    "bureau_data_present": flags[2],
                },
                "features": {"credit_history_months": history, "bank_inflow_12m": inflow},
                "model": {"score": score},
            }
        )
        result = COMPILED.evaluate(decision_input)
        assert result.reasons != ("ENGINE_ERROR",)
        if result.outcome == "decline":
            assert result.limit == 0 and result.annual_rate is None and result.reasons
        else:
            assert 0 < result.limit <= amount
            assert result.annual_rate is not None
            floor, cap = RATE_RANGES[product]
            assert floor <= result.annual_rate <= cap
        if result.outcome == "refer":
            assert result.reasons
        if result.outcome == "approve":
            assert result.reasons == () and amount <= 200000
