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
    def test_covers_every_repayment_method_once(self) -> None:
        assert sorted(p.method for p in STANDARD_CATALOGUE) == sorted(RepaymentMethod)

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
