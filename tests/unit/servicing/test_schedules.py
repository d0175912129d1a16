"""Schedules, APR, re-amortisation and revolving interest: numpy-financial references and properties."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal

import numpy_financial as npf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microlend.core.errors import ValidationError
from microlend.core.money import round_half_up
from microlend.servicing.apr import apr, apr_of_flows
from microlend.servicing.schedules import (
    FeeMode,
    LineMovement,
    PrepaymentMode,
    RepaymentMethod,
    Schedule,
    accrued_interest,
    add_months,
    annuity_payment,
    build_schedule,
    daily_interest,
    due_dates,
    reamortise,
    revolving_interest,
)

D = Decimal
CENT = D("0.01")
METHODS = [m for m in RepaymentMethod if m != RepaymentMethod.REVOLVING]


def reference_irr_apr(schedule: Schedule) -> Decimal:
    """numpy-financial's IRR of the same flows per payment period, × periods a year; the float stays inside
    this comparison helper."""
    cash = schedule.cash_flows()
    period = math.gcd(*[k for k, cf in enumerate(cash) if k and cf])
    flows = [float(cf) for cf in cash[::period]]
    return D(repr(npf.irr(flows) * 12 / period))


def reference_pmt(principal: str, annual_rate: str, months: int) -> Decimal:
    return D(repr(float(npf.pmt(float(annual_rate) / 12, months, -float(principal)))))


class TestEqualInstallment:
    @pytest.mark.parametrize(
        ("principal", "rate", "months"),
        [
            ("10000", "0.12", 12),
            ("50000", "0.0888", 24),
            ("300000", "0.0435", 36),
            ("1234.56", "0.18", 7),
            ("99999.99", "0.2399", 60),
            ("5000", "0.06", 1),
        ],
    )
    def test_payment_is_the_annuity_of_numpy_financial_to_the_cent(
        self, principal: str, rate: str, months: int
    ) -> None:
        payment = annuity_payment(D(principal), D(rate), months)
        assert abs(payment - reference_pmt(principal, rate, months)) <= D("0.005")
        schedule = build_schedule("equal-installment", D(principal), D(rate), months, date(2026, 1, 15))
        assert all(i.payment == payment for i in schedule.installments[:-1])

    def test_the_textbook_case_10000_at_12_percent_over_12_months(self) -> None:
        schedule = build_schedule("equal-installment", D("10000"), D("0.12"), 12, date(2026, 1, 15))
        first, last = schedule.installments[0], schedule.installments[-1]
        assert (first.principal, first.interest, first.payment) == (D("788.49"), D("100.00"), D("888.49"))
        assert last.balance == 0
        assert last.principal == D("879.67") and last.interest == D("8.80")
        assert schedule.total_interest == D("661.86")

    def test_each_interest_is_the_rounded_balance_times_the_monthly_rate(self) -> None:
        schedule = build_schedule("equal-installment", D("77777.77"), D("0.1314"), 18, date(2026, 3, 31))
        balance = schedule.principal
        for inst in schedule.installments:
            assert inst.interest == round_half_up(balance * D("0.1314") / 12)
            balance -= inst.principal
            assert inst.balance == balance

    def test_last_installment_takes_the_rounding(self) -> None:
        schedule = build_schedule("equal-installment", D("10000"), D("0.12"), 12, date(2026, 1, 15))
        level = schedule.installments[0].payment
        assert schedule.installments[-1].payment != level  # 888.47: the cents left over by rounding
        assert sum(i.principal for i in schedule.installments) == D("10000")

    def test_zero_rate_splits_principal_evenly(self) -> None:
        schedule = build_schedule("equal-installment", D("1000"), D("0"), 3, date(2026, 1, 1))
        assert [i.principal for i in schedule.installments] == [D("333.33"), D("333.33"), D("333.34")]
        assert schedule.total_interest == 0


class TestEqualPrincipal:
    def test_principal_is_amount_over_n_and_interest_falls(self) -> None:
        schedule = build_schedule("equal-principal", D("10000"), D("0.12"), 12, date(2026, 1, 15))
        parts = [i.principal for i in schedule.installments]
        assert parts[:-1] == [D("833.33")] * 11 and parts[-1] == D("833.37")
        interests = [i.interest for i in schedule.installments]
        assert interests == sorted(interests, reverse=True)
        assert interests[0] == D("100.00")
        for k, inst in enumerate(schedule.installments):  # interest of period k on the straight-line balance
            assert inst.interest == round_half_up((D("10000") - D("833.33") * k) * D("0.01"))
        assert abs(apr(schedule) - reference_irr_apr(schedule)) <= D("0.000001")


class TestInterestOnly:
    def test_interest_every_month_and_principal_at_the_end(self) -> None:
        schedule = build_schedule("interest-only", D("20000"), D("0.072"), 6, date(2026, 1, 10))
        assert [i.interest for i in schedule.installments] == [D("120.00")] * 6
        assert [i.principal for i in schedule.installments] == [D(0)] * 5 + [D("20000")]
        # the IRR of an interest-only loan without fees is its own monthly rate
        assert abs(apr(schedule) - D("0.072")) <= D("0.000001")


class TestBullet:
    def test_principal_plus_all_simple_interest_at_maturity(self) -> None:
        schedule = build_schedule("bullet", D("10000"), D("0.096"), 6, date(2026, 1, 31))
        (only,) = schedule.installments
        assert only.due_date == date(2026, 7, 31)
        assert only.interest == D("480.00") and only.payment == D("10480.00")
        assert abs(apr(schedule) - reference_irr_apr(schedule)) <= D("0.000001")


class TestDueDates:
    def test_month_end_is_clamped_and_recovers(self) -> None:
        assert due_dates(date(2026, 1, 31), 3) == [date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30)]

    def test_leap_february(self) -> None:
        assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
        assert add_months(date(2028, 1, 31), 2) == date(2028, 3, 31)

    def test_year_boundary(self) -> None:
        assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)

    def test_schedule_uses_the_disbursement_day(self) -> None:
        schedule = build_schedule("equal-principal", D("1200"), D("0.1"), 3, date(2026, 1, 31))
        assert [i.due_date for i in schedule.installments] == [
            date(2026, 2, 28),
            date(2026, 3, 31),
            date(2026, 4, 30),
        ]
        assert [i.period_start for i in schedule.installments] == [
            date(2026, 1, 31),
            date(2026, 2, 28),
            date(2026, 3, 31),
        ]


class TestApr:
    @pytest.mark.parametrize("method", METHODS)
    @pytest.mark.parametrize("fee_mode", list(FeeMode))
    def test_apr_equals_numpy_financial_irr_times_12(self, method: RepaymentMethod, fee_mode: FeeMode) -> None:
        schedule = build_schedule(
            method, D("10000"), D("0.12"), 12, date(2026, 1, 15), upfront_fee=D("200"), fee_mode=fee_mode
        )
        assert abs(apr(schedule) - reference_irr_apr(schedule)) <= D("0.000001")

    def test_a_fee_raises_the_apr_above_the_contract_rate(self) -> None:
        plain = build_schedule("equal-installment", D("10000"), D("0.12"), 12, date(2026, 1, 15))
        with_fee = build_schedule(
            "equal-installment", D("10000"), D("0.12"), 12, date(2026, 1, 15), upfront_fee=D("200")
        )
        assert abs(apr(plain) - D("0.12")) < D("0.0001")
        assert apr(with_fee) > D("0.15")

    def test_a_bullet_loan_without_fees_has_its_rate_as_apr(self) -> None:
        for months in (1, 3, 6, 12):
            schedule = build_schedule("bullet", D("10000"), D("0.18"), months, date(2026, 1, 15))
            assert apr(schedule) == D("0.180000"), months

    @pytest.mark.parametrize("method", METHODS)
    def test_a_zero_rate_without_fees_shows_zero(self, method: RepaymentMethod) -> None:
        schedule = build_schedule(method, D("10000"), D("0"), 12, date(2026, 1, 15))
        assert str(apr(schedule)) == "0.000000"

    def test_a_monthly_annuity_with_a_deducted_fee(self) -> None:
        """10,000 at 12 % over 12 months, 200 deducted: 888.49 a month on 9,800 received, monthly IRR × 12."""
        schedule = build_schedule(
            "equal-installment", D("10000"), D("0.12"), 12, date(2026, 1, 15), upfront_fee=D("200")
        )
        assert apr(schedule) == D("0.158546")
        assert abs(apr(schedule) - reference_irr_apr(schedule)) <= D("0.000001")

    def test_flows_without_payments_have_no_apr(self) -> None:
        with pytest.raises(ValidationError):
            apr_of_flows([D(100), D(0)])


class TestReamortisation:
    def _after_prepaying(self, mode: PrepaymentMode) -> tuple[Schedule, list[object], Decimal]:
        schedule = build_schedule("equal-installment", D("12000"), D("0.12"), 12, date(2026, 1, 15))
        paid = schedule.installments[2]
        balance = paid.balance - D("3000")
        rest = [i.due_date for i in schedule.installments[3:]]
        rows = reamortise(
            balance,
            D("0.12"),
            "equal-installment",
            rest,
            paid.due_date,
            mode,
            first_number=4,
            current_payment=schedule.installments[0].payment,
        )
        return schedule, list(rows), balance

    def test_reduce_installment_keeps_the_dates_and_lowers_the_payment(self) -> None:
        schedule, rows, balance = self._after_prepaying(PrepaymentMode.REDUCE_INSTALLMENT)
        assert len(rows) == 9
        assert rows[0].payment == annuity_payment(balance, D("0.12"), 9)  # type: ignore[attr-defined]
        assert rows[0].payment < schedule.installments[3].payment  # type: ignore[attr-defined]
        assert sum(r.principal for r in rows) == balance  # type: ignore[attr-defined]
        assert rows[-1].balance == 0  # type: ignore[attr-defined]

    def test_reduce_term_keeps_the_payment_and_ends_earlier(self) -> None:
        schedule, rows, balance = self._after_prepaying(PrepaymentMode.REDUCE_TERM)
        assert len(rows) < 9
        assert all(r.payment == schedule.installments[0].payment for r in rows[:-1])  # type: ignore[attr-defined]
        assert sum(r.principal for r in rows) == balance  # type: ignore[attr-defined]
        assert [r.number for r in rows] == list(range(4, 4 + len(rows)))  # type: ignore[attr-defined]

    def test_equal_principal_reduce_term_keeps_the_principal_part(self) -> None:
        rows = reamortise(
            D("5000"),
            D("0.1"),
            "equal-principal",
            due_dates(date(2026, 1, 1), 10),
            date(2026, 1, 1),
            "reduce-term",
            first_number=1,
            current_principal_part=D("1000"),
        )
        assert [r.principal for r in rows] == [D("1000")] * 5

    def test_prepaying_more_than_the_balance_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="amount"):
            reamortise(
                D("-1"),
                D("0.1"),
                "bullet",
                [date(2026, 5, 1)],
                date(2026, 1, 1),
                "reduce-term",
                first_number=1,
            )


class TestAccrual:
    def test_daily_accruals_sum_to_the_period_interest(self) -> None:
        interest, start, due = D("100.00"), date(2026, 1, 15), date(2026, 2, 15)
        accrued = [accrued_interest(interest, start, due, start + timedelta(days=k)) for k in range(-1, 32)]
        assert accrued[0] == 0
        assert accrued == sorted(accrued)
        assert accrued_interest(interest, start, due, due - timedelta(days=1)) == interest
        assert accrued[-1] == interest
        assert accrued_interest(interest, start, due, start) == round_half_up(D("100") / 31)


class TestRevolving:
    def test_daily_interest_is_annual_over_360(self) -> None:
        assert daily_interest(D("10000"), D("0.108")) == D("3.00")

    def test_interest_follows_drawdowns_and_repayments(self) -> None:
        moves = [LineMovement(date(2026, 3, 1), D("10000")), LineMovement(date(2026, 3, 11), D("-5000"))]
        total = revolving_interest(moves, D("0.108"), date(2026, 3, 1), date(2026, 3, 20))
        assert total == D("3.00") * 10 + D("1.50") * 10

    def test_a_small_balance_is_charged_the_balance_product_rounded_once(self) -> None:
        # 99.00 at 6 % is 0.0165 a day: rounded each day, 29 days cost 0.58; the product 99 × 29 × 0.06 / 360
        # is 0.4785, charged 0.48 at the settlement (按月结息) of February 20th
        moves = [LineMovement(date(2026, 1, 23), D("99.00"))]
        assert revolving_interest(moves, D("0.06"), date(2026, 1, 23), date(2026, 2, 20)) == D("0.48")
        # settled on the 20th of each month, each month rounded once
        assert revolving_interest(moves, D("0.06"), date(2026, 1, 23), date(2026, 3, 20)) == D("0.48") + D("0.46")

    def test_repaying_more_than_drawn_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="amount"):
            revolving_interest([LineMovement(date(2026, 3, 1), D("-1"))], D("0.1"), date(2026, 3, 1), date(2026, 3, 2))


class TestInputErrors:
    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"principal": D("0")}, "principal"),
            ({"principal": D("-5")}, "principal"),
            ({"principal": D("10.001")}, "principal"),
            ({"annual_rate": D("-0.1")}, "annual_rate"),
            ({"annual_rate": D("0.1234567")}, "annual_rate"),
            ({"term_months": 0}, "term_months"),
            ({"term_months": 361}, "term_months"),
            ({"upfront_fee": D("10000")}, "upfront_fee"),
            ({"method": "balloon"}, "method"),
            ({"method": "revolving"}, "method"),
            ({"fee_mode": "x"}, "fee_mode"),
        ],
    )
    def test_bad_terms_name_the_field(self, kwargs: dict[str, object], field: str) -> None:
        args: dict[str, object] = {
            "method": "equal-installment",
            "principal": D("10000"),
            "annual_rate": D("0.12"),
            "term_months": 12,
            "start": date(2026, 1, 1),
        }
        args.update(kwargs)
        with pytest.raises(ValidationError) as err:
            build_schedule(**args)  # type: ignore[arg-type]
        assert err.value.field == field

    def test_floats_are_refused(self) -> None:
        with pytest.raises(ValidationError):
            build_schedule("bullet", 1000.0, D("0.1"), 3, date(2026, 1, 1))  # type: ignore[arg-type]


amounts = st.decimals(min_value=D("100"), max_value=D("1000000"), places=2)
rates = st.decimals(min_value=D("0"), max_value=D("0.36"), places=4)
terms = st.integers(min_value=1, max_value=60)
starts = st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31))


class TestScheduleProperties:
    @settings(max_examples=300, deadline=None)
    @given(
        method=st.sampled_from(METHODS),
        principal=amounts,
        rate=rates,
        months=terms,
        start=starts,
        fee_mode=st.sampled_from(list(FeeMode)),
    )
    def test_principal_parts_sum_to_the_amount_and_balance_ends_at_zero(
        self,
        method: RepaymentMethod,
        principal: Decimal,
        rate: Decimal,
        months: int,
        start: date,
        fee_mode: FeeMode,
    ) -> None:
        fee = round_half_up(principal * D("0.01"))
        schedule = build_schedule(method, principal, rate, months, start, upfront_fee=fee, fee_mode=fee_mode)
        rows = schedule.installments
        assert sum(i.principal for i in rows) == principal
        assert rows[-1].balance == 0
        assert rows[-1].due_date == add_months(start, months)
        assert all(i.principal >= 0 and i.interest >= 0 and i.fee >= 0 for i in rows)
        assert all(i.principal == round_half_up(i.principal) and i.interest == round_half_up(i.interest) for i in rows)
        assert sum(i.fee for i in rows) == (fee if fee_mode == FeeMode.FIRST_INSTALLMENT else 0)
        dues = [i.due_date for i in rows]
        assert dues == sorted(set(dues))

    @settings(max_examples=100, deadline=None)
    @given(
        method=st.sampled_from(METHODS),
        principal=amounts,
        rate=st.decimals(D("0.01"), D("0.36"), places=4),
        months=st.integers(1, 36),
    )
    def test_apr_matches_numpy_financial(
        self, method: RepaymentMethod, principal: Decimal, rate: Decimal, months: int
    ) -> None:
        schedule = build_schedule(
            method,
            principal,
            rate,
            months,
            date(2026, 1, 15),
            upfront_fee=round_half_up(principal * D("0.02")),
        )
        assert abs(apr(schedule) - reference_irr_apr(schedule)) <= D("0.00001")

    @settings(max_examples=200, deadline=None)
    @given(
        method=st.sampled_from([RepaymentMethod.EQUAL_INSTALLMENT, RepaymentMethod.EQUAL_PRINCIPAL]),
        principal=amounts,
        rate=rates,
        months=st.integers(2, 36),
        data=st.data(),
        mode=st.sampled_from(list(PrepaymentMode)),
    )
    def test_reamortised_rows_repay_exactly_the_balance(
        self,
        method: RepaymentMethod,
        principal: Decimal,
        rate: Decimal,
        months: int,
        data: st.DataObject,
        mode: PrepaymentMode,
    ) -> None:
        schedule = build_schedule(method, principal, rate, months, date(2026, 1, 15))
        k = data.draw(st.integers(0, months - 2))
        after = schedule.installments[k]
        prepay = data.draw(st.decimals(D("0.01"), after.balance, places=2))
        balance = after.balance - prepay
        rows = reamortise(
            balance,
            rate,
            method,
            [i.due_date for i in schedule.installments[k + 1 :]],
            after.due_date,
            mode,
            first_number=k + 2,
            current_payment=schedule.installments[0].payment,
            current_principal_part=schedule.installments[0].principal,
        )
        assert sum(r.principal for r in rows) == balance
        assert not rows or rows[-1].balance == 0
        assert all(r.principal >= 0 for r in rows)
        assert len(rows) <= months - k - 1
