"""The default policy on small-business data: data knock-outs, the sources each product needs, limits on the
verified figures; inputs stored before the data section still read back and decide as before."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microlend.core.errors import ValidationError
from microlend.decisioning.columnar import ColumnarPolicy, columns_from_inputs
from microlend.decisioning.domain import SOURCE_STATUSES, DataFacts, DecisionInput
from microlend.decisioning.golden import run_golden_tests
from microlend.decisioning.lint import lint_policy
from microlend.decisioning.policy import compile_policy, deep_merge, default_policy
from microlend.decisioning.reasons import CATALOGUE

POLICY = default_policy()
ENGINE = compile_policy(POLICY)
D = Decimal

#: A business asking for a tax-data loan (税贷), every source answered and nothing adverse in it.
TAX_LOAN: dict[str, Any] = {
    "application": {"product_code": "TAX_LOAN", "amount": "200000", "term_months": 12},
    "capacity": {"tax_loan_fraction": "0.3", "verified_sales_12m": "600001.01"},
    "data": {"sources": {"tax": "ok", "registry": "ok", "enforcement": "ok", "bureau": "ok"}},
    "features": {
        "tax_sales_12m": 600001.01,
        "tax_sales_growth_yoy": 0.1,
        "reg_status_active": 1,
        "enf_cases_open": 0,
        "enf_dishonest": 0,
        "bur_overdue_now": 0,
        "bur_bad_debt": 0,
        "inv_sales_gap": 0.05,
    },
}


def decide(*overrides: dict[str, Any]) -> dict[str, Any]:
    data = POLICY["test_base"]
    for override in overrides:
        data = deep_merge(data, override)
    return ENGINE.evaluate(DecisionInput.from_canonical(data)).outputs()


class TestTaxLoan:
    def test_a_good_applicant_gets_the_fraction_of_declared_sales_floored_to_100(self) -> None:
        # 0.3 x 600,001.01 = 180,000.303 -> 180,000, under the grade B matrix's 200,000 at 800,000 turnover
        out = decide(TAX_LOAN)
        assert (out["outcome"], out["limit"], out["reasons"]) == ("approve", "180000.00", ["CAPACITY_LIMIT"])
        assert out["exposure_cap"] == "180000.00"

    def test_the_matrix_binds_below_the_formula(self) -> None:
        out = decide(TAX_LOAN, {"capacity": {"verified_sales_12m": "5000000"}})
        assert (out["outcome"], out["limit"], out["exposure_cap"]) == ("approve", "200000.00", "200000.00")
        assert out["reasons"] == []

    def test_without_the_banks_fraction_the_policy_lends_30_percent(self) -> None:
        out = decide(TAX_LOAN, {"capacity": {"tax_loan_fraction": None, "verified_sales_12m": "100000"}})
        assert (out["outcome"], out["limit"]) == ("approve", "30000.00")

    def test_the_tax_feature_stands_in_for_unverified_sales(self) -> None:
        out = decide(TAX_LOAN, {"capacity": {"verified_sales_12m": None}, "features": {"tax_sales_12m": 100099.0}})
        assert out["limit"] == "30000.00"

    def test_no_declared_sales_is_no_capacity(self) -> None:
        out = decide(TAX_LOAN, {"capacity": {"verified_sales_12m": "0"}})
        assert (out["outcome"], out["reasons"]) == ("decline", ["CAPACITY_LIMIT"])

    @pytest.mark.parametrize(
        ("status", "outcome", "reasons"),
        [
            ("unavailable", "refer", ["DATA_SOURCE_UNAVAILABLE"]),
            ("data_error", "refer", ["DATA_SOURCE_UNAVAILABLE"]),
            ("not_configured", "refer", ["DATA_SOURCE_UNAVAILABLE"]),
            ("not_found", "decline", ["NO_TAX_RECORD"]),
            ("no_consent", "decline", ["CONSENT_MISSING"]),
        ],
    )
    def test_what_the_tax_source_said_decides_the_route(self, status: str, outcome: str, reasons: list[str]) -> None:
        out = decide(TAX_LOAN, {"data": {"sources": {"tax": status}}})
        assert (out["outcome"], out["reasons"]) == (outcome, reasons)

    def test_a_person_needs_no_registry_record(self) -> None:
        person = {
            "application": {"amount": "100000"},
            "capacity": {"borrower_kind": "person"},
            "data": {"sources": {"registry": "unavailable"}},
        }
        out = decide(TAX_LOAN, person)
        assert (out["outcome"], out["limit"], out["reasons"]) == ("approve", "100000.00", [])
        out = decide(TAX_LOAN, person, {"capacity": {"borrower_kind": "business"}})
        assert (out["outcome"], out["reasons"]) == ("refer", ["DATA_SOURCE_UNAVAILABLE"])


class TestKnockOuts:
    @pytest.mark.parametrize(
        ("features", "reason"),
        [
            ({"enf_dishonest": 1}, "ENFORCEMENT_DISHONEST"),
            ({"enf_cases_open": 1}, "ENFORCEMENT_CASES"),
            ({"reg_status_active": 0}, "BUSINESS_NOT_ACTIVE"),
            ({"bur_overdue_now": 1}, "OVERDUE_ELSEWHERE"),
            ({"bur_bad_debt": 1}, "BUREAU_BAD_DEBT"),
            ({"tax_sales_growth_yoy": -0.5}, "SALES_DECLINING"),
            ({"inv_sales_gap": 0.81}, "INVOICES_WITHOUT_SALES"),
        ],
    )
    def test_each_adverse_fact_declines_any_product(self, features: dict[str, float], reason: str) -> None:
        for product in ({}, TAX_LOAN):
            out = decide(product, {"features": features})
            assert (out["outcome"], out["reasons"], out["limit"]) == ("decline", [reason], "0.00")

    @pytest.mark.parametrize(
        "features",
        [
            {
                "enf_dishonest": 0,
                "enf_cases_open": 0,
                "reg_status_active": 1,
                "bur_overdue_now": 0,
                "bur_bad_debt": 0,
                "tax_sales_growth_yoy": -0.3,
                "inv_sales_gap": 0.8,
            },
            {
                "enf_dishonest": None,
                "enf_cases_open": None,
                "reg_status_active": None,
                "bur_overdue_now": None,
                "bur_bad_debt": None,
                "tax_sales_growth_yoy": None,
                "inv_sales_gap": None,
            },
        ],
    )
    def test_clean_values_at_the_edges_and_nulls_never_fire(self, features: dict[str, float | None]) -> None:
        out = decide({"features": features})
        assert (out["outcome"], out["reasons"], out["limit"]) == ("approve", [], "50000.00")


class TestOtherProducts:
    def test_a_merchant_flow_loan_is_limited_to_a_fifth_of_annualised_flows(self) -> None:
        out = decide(
            {
                "application": {"product_code": "FLOW_LOAN", "amount": "60000", "term_months": 12},
                "data": {"sources": {"merchant": "ok"}},
                "features": {"mer_flow_3m": 50049.99},
            }
        )
        # 0.2 x 4 x 50,049.99 = 40,039.992 -> 40,000
        assert (out["outcome"], out["limit"], out["reasons"]) == ("approve", "40000.00", ["CAPACITY_LIMIT"])

    def test_an_invoice_loan_is_limited_to_a_fifth_of_invoiced_sales(self) -> None:
        out = decide(
            {
                "application": {"product_code": "INVOICE_LINE", "amount": "60000", "term_months": 3},
                "data": {"sources": {"einvoice": "ok"}},
                "features": {"inv_issued_12m": 250000.0},
            }
        )
        assert (out["outcome"], out["limit"], out["reasons"]) == ("approve", "50000.00", ["CAPACITY_LIMIT"])

    @pytest.mark.parametrize(
        ("product", "kind", "reason"),
        [("FLOW_LOAN", "merchant", "NO_MERCHANT_FLOWS"), ("INVOICE_LINE", "einvoice", "NO_INVOICES")],
    )
    def test_the_products_source_is_required(self, product: str, kind: str, reason: str) -> None:
        base = {"application": {"product_code": product, "term_months": 6}}
        assert decide(base, {"data": {"sources": {kind: "not_found"}}})["reasons"] == [reason]
        assert decide(base, {"data": {"sources": {kind: "no_consent"}}})["reasons"] == ["CONSENT_MISSING"]
        assert decide(base, {"data": {"unavailable": [kind]}})["outcome"] == "refer"
        assert decide(base)["reasons"] == ["DATA_SOURCE_UNAVAILABLE"]

    def test_existing_products_ignore_the_data_sources(self) -> None:
        down = {"data": {"sources": dict.fromkeys(("tax", "merchant", "einvoice", "registry"), "unavailable")}}
        for code in ("MICRO_BIZ", "EI-STD", "IO-STD"):
            out = decide({"application": {"product_code": code}}, down)
            assert (out["outcome"], out["limit"], out["reasons"]) == ("approve", "50000.00", [])


class TestThePolicyDocument:
    def test_every_golden_test_passes_and_lint_is_clean(self) -> None:
        results = run_golden_tests(POLICY)
        assert [r.problems for r in results if not r.passed] == []
        assert len(results) >= 72
        assert lint_policy(POLICY).findings == ()

    def test_every_reason_the_policy_gives_is_in_the_catalogue(self) -> None:
        text = json.dumps(POLICY)
        for code in (
            "ENFORCEMENT_DISHONEST",
            "ENFORCEMENT_CASES",
            "BUSINESS_NOT_ACTIVE",
            "BUREAU_BAD_DEBT",
            "SALES_DECLINING",
            "INVOICES_WITHOUT_SALES",
            "NO_TAX_RECORD",
            "NO_MERCHANT_FLOWS",
            "NO_INVOICES",
            "CONSENT_MISSING",
            "DATA_SOURCE_UNAVAILABLE",
        ):
            assert f'\\"{code}\\"' in text
            assert CATALOGUE[code].zh_cn and CATALOGUE[code].en

    def test_a_shell_is_not_told_why(self) -> None:
        assert not CATALOGUE["INVOICES_WITHOUT_SALES"].tellable


class TestInputs:
    def test_an_input_stored_before_the_data_section_reads_back_to_the_same_form(self) -> None:
        # what a decision stored before the data section holds: every capacity fact of the time, no data section
        stored = deep_merge(POLICY["test_base"], {"capacity": {"product_min_amount": None}})
        assert "data" not in stored and "tax_loan_fraction" not in stored["capacity"]
        decision_input = DecisionInput.from_canonical(stored)
        assert decision_input.canonical() == stored
        assert decision_input.data == DataFacts()

    def test_the_new_facts_are_kept_when_given(self) -> None:
        data = deep_merge(POLICY["test_base"], TAX_LOAN)
        canonical = DecisionInput.from_canonical(data).canonical()
        assert canonical["capacity"]["tax_loan_fraction"] == "0.3"
        assert canonical["data"] == {"sources": TAX_LOAN["data"]["sources"], "unavailable": []}
        assert DecisionInput.from_canonical(canonical).canonical() == canonical

    def test_an_unavailable_kind_reads_as_unavailable_unless_it_gave_bad_data(self) -> None:
        facts = DataFacts.model_validate(
            {"sources": {"tax": "ok", "merchant": "data_error"}, "unavailable": ["tax", "merchant", "registry"]}
        )
        assert facts.sources == {"tax": "unavailable", "merchant": "data_error", "registry": "unavailable"}

    def test_an_unknown_status_is_refused_naming_the_field(self) -> None:
        with pytest.raises(ValidationError) as err:
            DecisionInput.from_canonical(deep_merge(POLICY["test_base"], {"data": {"sources": {"tax": "maybe"}}}))
        assert err.value.field == "data.sources"

    def test_amounts_are_not_floats(self) -> None:
        with pytest.raises(ValidationError):
            DecisionInput.from_canonical(deep_merge(POLICY["test_base"], {"capacity": {"verified_sales_12m": 1.5}}))

    @settings(max_examples=60, deadline=None)
    @given(
        sales=st.decimals(min_value=0, max_value=D("99999999.99"), places=2),
        fraction=st.decimals(min_value=D("0.01"), max_value=1, places=2),
    )
    def test_the_tax_limit_is_the_floored_share_of_sales(self, sales: Decimal, fraction: Decimal) -> None:
        out = decide(
            TAX_LOAN,
            {
                "application": {"amount": "1000"},
                "customer": {"annual_turnover": "3000000"},
                "features": {"bank_inflow_12m": 3e6},
                "capacity": {"verified_sales_12m": str(sales), "tax_loan_fraction": str(fraction)},
            },
        )
        formula = (fraction * sales / 100).to_integral_value(rounding="ROUND_FLOOR") * 100
        cap = min(formula, D(800000), D("1500000"))  # the grade B matrix at 3,000,000; half the turnover
        if cap < 1000:
            assert (out["outcome"], out["reasons"]) == ("decline", ["CAPACITY_LIMIT"])
        else:
            assert D(out["exposure_cap"]) == cap and D(out["limit"]) == 1000


def generated(count: int, seed: int) -> list[DecisionInput]:
    """Small-business applications around every new rule's boundary, sources in every state, nulls anywhere."""
    rng = random.Random(seed)

    def pick(*options: Any) -> Any:
        return rng.choice(options)

    statuses = (*SOURCE_STATUSES, None)
    inputs = []
    for i in range(count):
        sources = {k: s for k in ("tax", "registry", "merchant", "einvoice") if (s := pick(*statuses)) is not None}
        data = deep_merge(
            POLICY["test_base"],
            {
                "application": {
                    "product_code": pick("TAX_LOAN", "FLOW_LOAN", "INVOICE_LINE", "MICRO_BIZ"),
                    "amount": pick("1000", "50000", "180000", "250000"),
                    "term_months": pick(3, 6, 12, 24),
                },
                "customer": {"customer_id": f"b{i}"},
                "model": {"score": pick("500", "530", "600", "640", "700")},
                "capacity": {
                    "borrower_kind": pick("business", "person", None),
                    "tax_loan_fraction": pick(None, "0.3", "0.25", "1"),
                    "verified_sales_12m": pick(
                        None, "0", "99999.99", "512345.67", str(Decimal(rng.randint(0, 10**9)) / 100)
                    ),
                },
                "data": {"sources": sources, "unavailable": [k for k in ("tax", "merchant") if rng.random() < 0.1]},
                "features": {
                    "tax_sales_12m": pick(None, 0.0, 300000.0, 512345.67),
                    "tax_sales_growth_yoy": pick(None, -0.31, -0.3, 0.0, 0.4),
                    "inv_sales_gap": pick(None, 0.8, 0.81, -1.0),
                    "inv_issued_12m": pick(None, 0.0, 345678.9, 2e6),
                    "mer_flow_3m": pick(None, 0.0, 123456.78, 5e5),
                    "enf_dishonest": pick(None, 0, 1),
                    "enf_cases_open": pick(None, 0, 2),
                    "reg_status_active": pick(None, 0, 1),
                    "bur_overdue_now": pick(None, 0, 1),
                    "bur_bad_debt": pick(None, 0, 1),
                },
            },
        )
        inputs.append(DecisionInput.from_canonical(data))
    return inputs


def test_batch_simulation_agrees_with_the_engine_on_small_business_applications() -> None:
    inputs = generated(1500, seed=20261130)
    batch = ColumnarPolicy(POLICY).evaluate(columns_from_inputs(inputs), len(inputs))
    disagreements = []
    for i, decision_input in enumerate(inputs):
        expected = ENGINE.evaluate(decision_input).outputs()
        if batch.row(i) != expected:
            disagreements.append((decision_input.canonical(), expected, batch.row(i)))
    assert not disagreements, disagreements[:2]
    reasons = {r for i in range(len(inputs)) for r in batch.row(i)["reasons"]}
    assert {"DATA_SOURCE_UNAVAILABLE", "NO_TAX_RECORD", "CONSENT_MISSING", "SALES_DECLINING"} <= reasons
    assert "ENGINE_ERROR" not in reasons
