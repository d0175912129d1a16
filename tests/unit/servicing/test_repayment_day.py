"""固定还款日 a fixed repayment day: every installment on day D, a broken first period charged on its actual days
(annual / 360), checked against a worked example in cents and an independent computation in exact fractions."""

from __future__ import annotations

import calendar
from datetime import date
from decimal import Decimal
from fractions import Fraction
from math import floor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microlend.core.errors import ValidationError
from microlend.servicing.apr import apr
from microlend.servicing.schedules import RepaymentMethod, build_schedule, first_due_on_day

D = Decimal
METHODS = [RepaymentMethod.EQUAL_INSTALLMENT, RepaymentMethod.EQUAL_PRINCIPAL, RepaymentMethod.INTEREST_ONLY]


def cents(x: Fraction) -> Fraction:
    """Half-up to the cent, on exact fractions."""
    return Fraction(floor(x * 100 + Fraction(1, 2)), 100)


def next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, d.day)


def reference(method: RepaymentMethod, principal: Fraction, rate: Fraction, n: int, start: date,
              day: int) -> list[tuple[date, date, Fraction, Fraction]]:
    """The rules written out once more, independently: (period start, due, principal, interest) per row."""
    due = date(start.year, start.month, day)
    while (due - start).days < 15:
        due = next_month(due)
    year, month = start.year + start.month // 12, start.month % 12 + 1
    month_later = date(year, month, min(start.day, calendar.monthrange(year, month)[1]))  # 31 Jan → 28 Feb
    broken = due != month_later
    r = rate / 12
    if method == RepaymentMethod.EQUAL_INSTALLMENT:
        level = cents(principal / n) if r == 0 else cents(principal * r * (1 + r) ** n / ((1 + r) ** n - 1))
    elif method == RepaymentMethod.EQUAL_PRINCIPAL:
        level = cents(principal / n)
    rows = []
    balance, prev = principal, start
    for k in range(n):
        monthly = cents(balance * r)
        interest = cents(balance * rate * (due - prev).days / 360) if k == 0 and broken else monthly
        if k == n - 1:
            part = balance
        elif method == RepaymentMethod.EQUAL_INSTALLMENT:
            part = min(max(level - monthly, Fraction(0)), balance)
        elif method == RepaymentMethod.EQUAL_PRINCIPAL:
            part = min(level, balance)
        else:
            part = Fraction(0)
        rows.append((prev, due, part, interest))
        balance -= part
        prev, due = due, next_month(due)
    return rows


class TestFirstDueDate:
    @pytest.mark.parametrize(
        ("start", "day", "first"),
        [
            (date(2026, 1, 10), 25, date(2026, 1, 25)),  # 15 days: a short first period
            (date(2026, 1, 20), 25, date(2026, 2, 25)),  # 5 days would be too short: 36 days
            (date(2026, 1, 10), 10, date(2026, 2, 10)),  # the disbursement day: a whole month
            (date(2026, 1, 28), 1, date(2026, 3, 1)),  # 1 Feb is 4 days away
            (date(2026, 12, 20), 5, date(2027, 1, 5)),  # across the year end
        ],
    )
    def test_the_first_day_d_at_least_fifteen_days_on(self, start: date, day: int, first: date) -> None:
        assert first_due_on_day(start, day) == first

    @pytest.mark.parametrize("day", [0, 29, 31, -1])
    def test_a_day_every_month_does_not_have_is_refused(self, day: int) -> None:
        with pytest.raises(ValidationError, match="repayment_day"):
            build_schedule(RepaymentMethod.EQUAL_INSTALLMENT, D("12000"), D("0.12"), 12, date(2026, 1, 10),
                           repayment_day=day)

    def test_a_bullet_loan_takes_no_repayment_day(self) -> None:
        with pytest.raises(ValidationError, match="bullet"):
            build_schedule(RepaymentMethod.BULLET, D("12000"), D("0.12"), 3, date(2026, 1, 10), repayment_day=20)


class TestBrokenFirstPeriod:
    def test_the_worked_example_in_cents(self) -> None:
        """12,000 at 12 % over 12 equal installments, paid out 10 Jan, repaid on the 25th: the first period is
        15 days, interest 12,000 × 0.12 / 360 × 15 = 60.00; the level payment 1,066.19 repays 946.19 principal
        as in a whole month (1,066.19 − 120.00); then 11,053.81 × 1 % = 110.54 on 25 Feb."""
        s = build_schedule(RepaymentMethod.EQUAL_INSTALLMENT, D("12000"), D("0.12"), 12, date(2026, 1, 10),
                           repayment_day=25)
        first, second = s.installments[0], s.installments[1]
        assert (first.period_start, first.due_date) == (date(2026, 1, 10), date(2026, 1, 25))
        assert (first.principal, first.interest) == (D("946.19"), D("60.00"))
        assert (second.due_date, second.principal + second.interest) == (date(2026, 2, 25), D("1066.19"))
        assert second.interest == D("110.54")
        assert s.broken_first_period and s.maturity_date == date(2026, 12, 25)

    def test_a_long_first_period_charges_its_extra_days(self) -> None:
        s = build_schedule(RepaymentMethod.INTEREST_ONLY, D("100000"), D("0.072"), 6, date(2026, 1, 20),
                           repayment_day=25)
        assert s.installments[0].due_date == date(2026, 2, 25)
        assert s.installments[0].interest == D("720.00")  # 100,000 × 0.072 / 360 × 36 days
        assert [i.interest for i in s.installments[1:]] == [D("600.00")] * 5

    def test_the_disbursement_day_as_repayment_day_is_the_ordinary_schedule(self) -> None:
        for method in METHODS:
            plain = build_schedule(method, D("50000"), D("0.0888"), 24, date(2026, 3, 9))
            fixed = build_schedule(method, D("50000"), D("0.0888"), 24, date(2026, 3, 9), repayment_day=9)
            assert fixed.installments == plain.installments and not fixed.broken_first_period

    def test_a_month_end_start_due_on_the_clamped_day_is_a_whole_month(self) -> None:
        s = build_schedule(RepaymentMethod.INTEREST_ONLY, D("10000"), D("0.12"), 3, date(2026, 1, 31),
                           repayment_day=28)
        assert s.installments[0].due_date == date(2026, 2, 28) and s.installments[0].interest == D("100.00")

    def test_a_first_due_two_calendar_months_on_keeps_the_apr_computable(self) -> None:
        s = build_schedule(RepaymentMethod.EQUAL_PRINCIPAL, D("30000"), D("0.10"), 12, date(2026, 1, 28),
                           repayment_day=1)
        assert s.installments[0].due_date == date(2026, 3, 1)
        assert len(s.cash_flows()) == 14 and apr(s) > 0

    @settings(max_examples=150, deadline=None)
    @given(
        method=st.sampled_from(METHODS),
        cents_amount=st.integers(100_000, 50_000_000),
        rate_bp=st.integers(0, 2400),
        term=st.integers(1, 60),
        start=st.dates(date(2024, 1, 1), date(2030, 12, 31)),
        day=st.integers(1, 28),
    )
    def test_every_row_equals_the_independent_computation(
        self, method: RepaymentMethod, cents_amount: int, rate_bp: int, term: int, start: date, day: int
    ) -> None:
        principal, rate = D(cents_amount) / 100, D(rate_bp) / 10_000
        s = build_schedule(method, principal, rate, term, start, repayment_day=day)
        expected = reference(method, Fraction(cents_amount, 100), Fraction(rate_bp, 10_000), term, start, day)
        got = [(i.period_start, i.due_date, Fraction(i.principal), Fraction(i.interest)) for i in s.installments]
        assert got == expected
        # properties: principal sums to the amount, interest never negative, every due date on day D
        assert sum(i.principal for i in s.installments) == principal
        assert all(i.interest >= 0 and i.principal >= 0 for i in s.installments)
        assert all(i.due_date.day == day for i in s.installments)
        assert 15 <= (s.installments[0].due_date - start).days <= 46
        assert s.installments[-1].balance == 0
