"""The rate cap (利率上限): no product, offer or limit review prices above it — rate, penalty rate (rate ×
multiplier) and APR with fees at the shortest term. Properties over generated products and requests."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from tests.unit.servicing.fakes import FakeUnitOfWork, give_credit_line, staff, stock_catalogue

from microlend.core.errors import ValidationError
from microlend.servicing import service
from microlend.servicing.products import DEFAULT_RATE_CAP, STANDARD_CATALOGUE, Product
from microlend.servicing.rate_cap import (
    check_cap,
    check_product_within_cap,
    highest_apr,
    offer_apr,
    price_within_cap,
)
from microlend.servicing.schedules import FeeMode, RepaymentMethod

D = Decimal
CAP = DEFAULT_RATE_CAP
rates = st.decimals(D("0"), D("0.60"), places=4)
caps = st.decimals(D("0.05"), D("0.24"), places=4)
methods = st.sampled_from(list(RepaymentMethod))


@st.composite
def products(draw: st.DrawFn) -> Product:
    low = draw(st.decimals(D("0"), D("0.40"), places=4))
    high = draw(st.decimals(low, D("0.60"), places=4))
    min_amount = draw(st.decimals(D("100"), D("100000"), places=2))
    min_term = draw(st.integers(1, 24))
    return Product(
        "P-1", "generated", draw(methods), min_amount, min_amount * draw(st.integers(1, 50)), min_term,
        draw(st.integers(min_term, 36)), low, low, high,
        penalty_multiplier=draw(st.decimals(D("1"), D("3"), places=2)),
        upfront_fee_rate=draw(st.decimals(D("0"), D("0.19"), places=3)),
        fee_mode=draw(st.sampled_from(list(FeeMode))),
    )


class TestProducts:
    def test_the_standard_catalogue_is_within_the_legal_cap(self) -> None:
        for product in STANDARD_CATALOGUE:
            check_product_within_cap(product, CAP)
            assert product.penalty_rate <= CAP and highest_apr(product) <= CAP

    def test_the_found_product_is_refused_naming_the_cap(self) -> None:
        """35.9 % with a 19 % fee and a 3× penalty: refused, and the message names the cap."""
        product = replace(STANDARD_CATALOGUE[0], annual_rate=D("0.359"), max_rate=D("0.359"),
                          upfront_fee_rate=D("0.19"), penalty_multiplier=D("3"))
        with pytest.raises(ValidationError, match=r"rate cap 0\.24") as err:
            check_product_within_cap(product, CAP)
        assert err.value.field == "max_rate"

    def test_a_penalty_multiplier_that_prices_above_the_cap_is_named(self) -> None:
        product = replace(STANDARD_CATALOGUE[0], max_rate=D("0.18"))  # 0.18 × 1.5 = 0.27
        with pytest.raises(ValidationError, match=r"0.18 × 1.5 = 0.27 is above the bank's rate cap 0.24"):
            check_product_within_cap(product, CAP)

    def test_a_fee_that_prices_above_the_cap_at_the_shortest_term_is_named(self) -> None:
        product = replace(STANDARD_CATALOGUE[0], upfront_fee_rate=D("0.05"))  # 5 % over 3 months
        with pytest.raises(ValidationError, match="APR at 3 months") as err:
            check_product_within_cap(product, CAP)
        assert err.value.field == "upfront_fee_rate"

    def test_a_cap_above_the_legal_line_or_zero_is_refused(self) -> None:
        for bad in (D("0.25"), D("0"), D("-0.1"), D("NaN")):
            with pytest.raises(ValidationError):
                check_cap(bad)
        assert check_cap(D("0.18")) == D("0.18")

    @settings(max_examples=150, deadline=None)
    @given(product=products(), cap=caps, data=st.data())
    def test_no_accepted_product_prices_above_the_cap(self, product: Product, cap: Decimal,
                                                      data: st.DataObject) -> None:
        try:
            check_product_within_cap(product, cap)
        except ValidationError:
            return
        amount = data.draw(st.decimals(product.min_amount, product.max_amount, places=2))
        term = data.draw(st.integers(product.min_term_months, product.max_term_months))
        rate = data.draw(st.decimals(product.min_rate, product.max_rate, places=4))
        assert rate <= cap and rate * product.penalty_multiplier <= cap
        assert offer_apr(product, amount, rate, term) <= cap + D("0.0005")  # a cent's rounding on a small loan


class TestOffers:
    @settings(max_examples=150, deadline=None)
    @given(product=products(), cap=caps, requested=rates, data=st.data())
    def test_no_offer_prices_above_the_cap(self, product: Product, cap: Decimal, requested: Decimal,
                                           data: st.DataObject) -> None:
        amount = data.draw(st.decimals(product.min_amount, product.max_amount, places=2))
        term = data.draw(st.integers(product.min_term_months, product.max_term_months))
        try:
            priced = price_within_cap(product, amount, requested, term, cap)
        except ValidationError as e:  # the fees alone are dearer than the cap: no offer at all
            assert "fees" in str(e) and offer_apr(product, amount, D(0), term) > cap
            return
        assert priced <= requested and priced <= cap
        assert priced * product.penalty_multiplier <= cap
        assert offer_apr(product, amount, priced, term) <= cap

    def test_an_offer_within_the_cap_keeps_its_rate(self) -> None:
        product = STANDARD_CATALOGUE[0]
        assert price_within_cap(product, D("10000"), D("0.123456"), 12, CAP) == D("0.123456")

    def test_an_offer_above_the_cap_is_lowered(self) -> None:
        product = STANDARD_CATALOGUE[0]  # penalty × 1.5: the rate may be at most 0.16
        assert price_within_cap(product, D("10000"), D("0.30"), 12, CAP) == D("0.16")


class TestLimitReviews:
    @settings(max_examples=60, deadline=None)
    @given(rate=rates, raise_by=st.integers(1, 1000))
    def test_a_line_priced_above_the_cap_is_never_raised(self, rate: Decimal, raise_by: int) -> None:
        uow = FakeUnitOfWork()
        stock_catalogue(uow)
        line = give_credit_line(uow, "10000")
        uow.loans.state.credit_lines[line.id] = replace(line, annual_rate=rate)
        new_limit = D(10000 + raise_by)
        assume(new_limit <= D("300000"))
        if rate > CAP:
            with pytest.raises(ValidationError, match="rate cap"):
                service.change_credit_line_limit(uow, staff(), line.id, new_limit, "review")
        else:
            view = service.change_credit_line_limit(uow, staff(), line.id, new_limit, "review")
            assert view.limit == new_limit and view.annual_rate <= CAP
