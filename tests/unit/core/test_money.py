from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microlend.core.errors import ValidationError
from microlend.core.money import Money, from_storage, parse_amount, round_half_up, to_storage


class TestRounding:
    @pytest.mark.parametrize(("raw", "expected"), [
        ("888.485", "888.49"), ("888.484", "888.48"), ("0.005", "0.01"), ("-0.005", "-0.01"), ("2.675", "2.68"),
    ])
    def test_half_up_to_the_cent(self, raw: str, expected: str) -> None:
        assert round_half_up(Decimal(raw)) == Decimal(expected)

    def test_currency_without_minor_unit_rounds_to_whole(self) -> None:
        assert round_half_up(Decimal("100.5"), "JPY") == Decimal("101")

    def test_unknown_currency_is_refused_by_name(self) -> None:
        with pytest.raises(ValidationError, match="XYZ"):
            Money(Decimal(1), "XYZ")


class TestMoney:
    def test_floats_never_become_money(self) -> None:
        with pytest.raises(TypeError):
            Money(1.1, "CNY")  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="decimal strings"):
            parse_amount(1.1)

    def test_currencies_do_not_mix(self) -> None:
        with pytest.raises(ValidationError, match="CNY with USD"):
            Money.of("1") + Money.of("1", "USD")

    def test_arithmetic_keeps_precision_until_rounded(self) -> None:
        m = Money.of("10") * Decimal("0.0003333")
        assert m.amount == Decimal("0.0033330")
        assert m.rounded().amount == Decimal("0.00")

    @pytest.mark.parametrize("bad", ["abc", "", "1e", "NaN", "Infinity"])
    def test_bad_amounts_are_named(self, bad: str) -> None:
        with pytest.raises(ValidationError, match="amount"):
            parse_amount(bad)


class TestStorage:
    @given(st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=4, allow_nan=False))
    def test_round_trip_is_exact(self, amount: Decimal) -> None:
        assert from_storage(to_storage(amount)) == amount

    def test_more_precision_than_stored_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="decimal places"):
            to_storage(Decimal("0.00001"))
