"""The one set of formats the pages use: money always with its currency's minor digits and grouping,
percentages with fixed digits and a dash for none, plain digits for measures, times in the bank's zone."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microlend.data.quality import default_bad, figure
from microlend.web import i18n
from microlend.web.templates import environment

amounts = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), allow_nan=False, allow_infinity=False,
                      places=4)


class TestMoney:
    @given(amounts)
    def test_cny_always_has_two_decimals_grouping_and_the_value(self, value: Decimal) -> None:
        for locale in ("en", "zh_CN"):
            text = i18n.amount(value, "CNY", locale)
            assert re.fullmatch(r"-?\d{1,3}(,\d{3})*\.\d\d", text), text
            back = Decimal(text.replace(",", ""))
            assert back == value.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP") + 0
            assert not text.startswith("-0.00")

    @given(amounts)
    def test_with_the_sign_the_digits_are_the_same(self, value: Decimal) -> None:
        plain = i18n.amount(value, "CNY", "en").lstrip("-")
        assert plain in i18n.money(value, "CNY", "en") and "e" not in i18n.money(value, "CNY", "en").lower()

    @pytest.mark.parametrize(("currency", "value", "expected"), [
        ("CNY", Decimal("1744.4"), "1,744.40"), ("CNY", Decimal("1744.345"), "1,744.35"),
        ("JPY", Decimal("1744.5"), "1,745"), ("KWD", Decimal("1.5"), "1.500"), ("CNY", Decimal("-0.004"), "0.00"),
        ("CNY", Decimal("18420"), "18,420.00"), ("CNY", 18420.0, "18,420.00")])
    def test_minor_units_by_currency(self, currency: str, value: Decimal, expected: str) -> None:
        assert i18n.amount(value, currency, "en") == expected

    def test_the_money_filter_keeps_trailing_zeros(self) -> None:
        render = environment("zh_CN").from_string("{{ a | money }} {{ a | amount }}").render
        assert render(a=Decimal("1744.4")) == "¥1,744.40 1,744.40"
        assert environment("en").from_string("{{ none | money }}").render() == ""


class TestPercentAndNumbers:
    @pytest.mark.parametrize(("value", "digits", "expected"), [
        (Decimal("0.3"), 1, "30.0%"), (Decimal("0.08500"), 2, "8.50%"), (None, 1, "—"), (0.1234, 0, "12%"),
        (Decimal("-0.00001"), 1, "0.0%"), (Decimal("12.5"), 1, "1,250.0%")])
    def test_fixed_digits_and_a_dash_for_nothing(self, value: Decimal | None, digits: int, expected: str) -> None:
        assert i18n.percent(value, "en", digits) == expected

    def test_a_signed_change(self) -> None:
        assert i18n.percent(Decimal("0.1127"), "en", 2, signed=True) == "+11.27%"
        assert i18n.percent(Decimal("-0.1346"), "en", 2, signed=True) == "-13.46%"

    @given(st.floats(min_value=-1e15, max_value=1e15, allow_nan=False))
    def test_numbers_are_never_in_scientific_notation(self, value: float) -> None:
        assert "e" not in i18n.number(value, "en").lower() and "E" not in figure(value)

    def test_a_decimal_keeps_its_digits(self) -> None:
        assert i18n.number(Decimal("1744.40"), "en") == "1,744.40" and i18n.number(18420, "en") == "18,420"
        assert figure(18420.0) == "18,420" and figure(0.123456) == "0.1235" and figure(3) == "3"


class TestTimes:
    def test_a_moment_is_shown_in_the_banks_time_zone(self) -> None:
        at = datetime(2026, 3, 1, 17, 30, tzinfo=UTC)  # 01:30 the next day in Shanghai
        assert "3/2/26" in i18n.moment(at, "en") and "1:30" in i18n.moment(at, "en")
        naive = datetime(2026, 3, 1, 17, 30)  # how SQLite gives a UTC moment back
        assert i18n.moment(naive, "en") == i18n.moment(at, "en")
        assert "12:30" in i18n.moment(at, "en", "Europe/London") or "5:30" in i18n.moment(at, "en", "Europe/London")
        assert i18n.day(at, "en") == i18n.day(date(2026, 3, 2), "en")

    def test_an_unknown_zone_falls_back_to_shanghai(self) -> None:
        at = datetime(2026, 3, 1, 17, 30, tzinfo=UTC)
        assert i18n.moment(at, "en", "Mars/Olympus") == i18n.moment(at, "en")

    def test_the_filter_reads_the_pages_bank_zone(self) -> None:
        at = datetime(2026, 3, 1, 17, 30, tzinfo=UTC)
        template = environment("en").from_string("{{ at | moment }}")
        assert template.render(at=at, bank_tz="Asia/Shanghai") != template.render(at=at, bank_tz="America/New_York")
        assert "1:30" in template.render(at=at, bank_tz="Asia/Shanghai")


class TestBadValue:
    @pytest.mark.parametrize(("categories", "expected"), [
        (["bad", "good"], "bad"), (["0", "1"], "1"), (["Good", "Bad"], "Bad"), (["1", "2"], None), (None, None)])
    def test_the_target_value_that_means_bad(self, categories: list[str] | None, expected: str | None) -> None:
        assert default_bad(categories) == expected
