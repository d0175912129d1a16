"""Loan products and the standard catalogue a new bank starts with."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from microlend.core.errors import ValidationError
from microlend.servicing.products import STANDARD_CATALOGUE
from microlend.servicing.schedules import RepaymentMethod

D = Decimal


class TestStandardCatalogue:
    def test_covers_every_repayment_method_once_with_a_standard_product(self) -> None:
        standard = [p for p in STANDARD_CATALOGUE if p.code.endswith("-STD")]
        assert sorted(p.method for p in standard) == sorted(RepaymentMethod)

    def test_offers_the_products_decided_on_small_business_data(self) -> None:
        by_code = {p.code: p for p in STANDARD_CATALOGUE}
        assert len(by_code) == len(STANDARD_CATALOGUE) == 8
        tax, flow, invoice = by_code["TAX_LOAN"], by_code["FLOW_LOAN"], by_code["INVOICE_LINE"]
        assert (tax.min_amount, tax.max_amount, tax.min_term_months, tax.max_term_months) == (
            D("10000"),
            D("500000"),
            3,
            12,
        )
        assert tax.method == RepaymentMethod.INTEREST_ONLY and tax.name_zh.startswith("税贷")
        assert (flow.min_amount, flow.max_amount, flow.min_term_months, flow.max_term_months) == (
            D("5000"),
            D("200000"),
            3,
            12,
        )
        assert flow.name_zh.startswith("流水贷")
        assert invoice.method == RepaymentMethod.BULLET and invoice.max_term_months == 6
        assert invoice.name_zh.startswith("发票贷")

    def test_the_default_policy_offers_every_product_of_the_catalogue(self) -> None:
        from microlend.decisioning.policy import default_policy

        product = next(n for n in default_policy()["nodes"] if n["id"] == "product")["content"]
        offered = {r["p_code"].strip('"') for r in product["rules"] if r["p_known"] == "true"}
        assert {p.code for p in STANDARD_CATALOGUE} <= offered

    def test_amounts_are_micro_loan_sized_and_rates_within_range(self) -> None:
        for p in STANDARD_CATALOGUE:
            assert D("1000") <= p.min_amount <= p.max_amount <= D("500000")
            assert p.min_rate <= p.annual_rate <= p.max_rate <= D("0.24")
            assert p.penalty_multiplier == D("1.5")
            assert p.name_zh


class TestOffers:
    def test_an_offer_outside_the_ranges_names_the_field(self) -> None:
        product = STANDARD_CATALOGUE[0]
        with pytest.raises(ValidationError) as err:
            product.check_offer(D("999"), 12, product.annual_rate)
        assert err.value.field == "amount"
        with pytest.raises(ValidationError) as err:
            product.check_offer(D("5000"), 48, product.annual_rate)
        assert err.value.field == "term_months"
        with pytest.raises(ValidationError) as err:
            product.check_offer(D("5000"), 12, D("0.30"))
        assert err.value.field == "annual_rate"
        product.check_offer(D("5000"), 12, product.annual_rate)

    def test_upfront_fee_is_a_rounded_share_of_the_principal(self) -> None:
        product = next(p for p in STANDARD_CATALOGUE if p.method == RepaymentMethod.INTEREST_ONLY)
        assert product.upfront_fee(D("12345.67")) == D("61.73")

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"code": "bad code"}, "code"),
            ({"min_amount": D("0")}, "min_amount"),
            ({"min_term_months": 0}, "min_term_months"),
            ({"penalty_multiplier": D("0.5")}, "penalty_multiplier"),
            ({"annual_rate": D("0.5")}, "annual_rate"),
            ({"grace_days": 99}, "grace_days"),
        ],
    )
    def test_bad_products_are_refused(self, change: dict[str, object], field: str) -> None:
        with pytest.raises(ValidationError) as err:
            replace(STANDARD_CATALOGUE[0], **change)  # type: ignore[arg-type]
        assert err.value.field == field
