"""Repayment schedules: pure functions from loan terms to installments (no I/O, no clock).

Rules, for every method: the monthly rate is ``annual_rate / 12``; each period's interest is the
outstanding principal times the monthly rate, rounded half-up to the cent; the last installment takes all
remaining principal; due dates fall on the disbursement day-of-month, clamped to the month end.

固定还款日 fixed repayment day: a product (or a loan at booking) may put every installment on day D of the month
(1..28). The first due date is then the first day D at least ``MIN_FIRST_PERIOD_DAYS`` days after disbursement,
so the first period is broken (不足月/超月, 15 to 46 days); its interest is the daily rate (annual / 360) times its
actual days, rounded half-up once. A first period that happens to be exactly one month keeps the monthly rule.
The rest of the schedule is the one the method builds without a broken period: equal installment keeps the
level payment of ``term_months`` periods and installment 1 repays the principal it would have repaid in a whole
month (so only its interest differs); equal principal and interest-only are unchanged apart from that interest.
A bullet loan has a single period ending at maturity and takes no repayment day.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, localcontext
from enum import StrEnum

from microlend.core.errors import ValidationError
from microlend.core.money import DEFAULT_CURRENCY, quantum, round_half_up

ZERO = Decimal(0)
MONTHS_PER_YEAR = 12
DAYS_PER_YEAR = 360  # the usual day-count for loan interest: daily rate = annual / 360
MAX_TERM_MONTHS = 360
MAX_RATE_PLACES = 6
MAX_REPAYMENT_DAY = 28  # a day every month has
MIN_FIRST_PERIOD_DAYS = 15


class RepaymentMethod(StrEnum):
    """How a loan is repaid (还款方式)."""

    EQUAL_INSTALLMENT = "equal-installment"  # 等额本息
    EQUAL_PRINCIPAL = "equal-principal"  # 等额本金
    INTEREST_ONLY = "interest-only"  # 先息后本
    BULLET = "bullet"  # 到期一次还本付息
    REVOLVING = "revolving"  # 随借随还


class FeeMode(StrEnum):
    """Where an upfront fee (手续费) is collected: netted from the disbursement, or with installment 1."""

    DEDUCT = "deduct"
    FIRST_INSTALLMENT = "first-installment"


class PrepaymentMode(StrEnum):
    """What a partial early repayment (部分提前还款) changes: the number of periods or the installment."""

    REDUCE_TERM = "reduce-term"
    REDUCE_INSTALLMENT = "reduce-installment"


@dataclass(frozen=True, slots=True)
class Installment:
    """One row of a schedule; ``balance`` is the principal outstanding after this installment."""

    number: int
    period_start: date
    due_date: date
    principal: Decimal
    interest: Decimal
    fee: Decimal
    balance: Decimal

    @property
    def payment(self) -> Decimal:
        return self.principal + self.interest + self.fee

    @property
    def days(self) -> int:
        return (self.due_date - self.period_start).days

    @property
    def broken_period(self) -> bool:
        return is_broken_period(self.period_start, self.due_date)


@dataclass(frozen=True)
class Schedule:
    """A loan's repayment plan (还款计划) as offered and contracted."""

    principal: Decimal
    annual_rate: Decimal
    term_months: int
    method: RepaymentMethod
    start_date: date
    installments: tuple[Installment, ...]
    upfront_fee: Decimal = ZERO
    fee_mode: FeeMode = FeeMode.DEDUCT
    currency: str = DEFAULT_CURRENCY
    repayment_day: int | None = None  # 固定还款日, None: the disbursement day-of-month

    @property
    def broken_first_period(self) -> bool:
        """The first period is not a whole month (a fixed repayment day)."""
        first = self.installments[0]
        return self.repayment_day is not None and first.due_date != add_months(first.period_start, 1)

    @property
    def total_interest(self) -> Decimal:
        return sum((i.interest for i in self.installments), ZERO)

    @property
    def total_payment(self) -> Decimal:
        return sum((i.payment for i in self.installments), ZERO)

    @property
    def net_disbursed(self) -> Decimal:
        """What the borrower actually receives on the disbursement day."""
        return self.principal - self.upfront_fee if self.fee_mode == FeeMode.DEDUCT else self.principal

    @property
    def maturity_date(self) -> date:
        return self.installments[-1].due_date

    def cash_flows(self) -> list[Decimal]:
        """The borrower's monthly cash flows: +net received at month 0, -payment at each due month."""
        months = [months_between(self.start_date, inst.due_date) for inst in self.installments]
        flows = [ZERO] * (max([self.term_months, *months]) + 1)
        flows[0] = self.net_disbursed
        for inst, month in zip(self.installments, months, strict=True):
            flows[month] -= inst.payment
        return flows


# ---------------------------------------------------------------------------------------------- dates


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def days_in_month(year: int, month: int) -> int:
    if month == 2 and calendar.isleap(year):
        return 29
    return _MONTH_DAYS[month - 1]


def add_months(start: date, months: int) -> date:
    """The same day-of-month ``months`` later, clamped to the month end (31 Jan + 1 → 28/29 Feb)."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, days_in_month(year, month)))


def due_dates(start: date, term_months: int) -> list[date]:
    """Monthly due dates on the disbursement day-of-month: 15 Jan → 15 Feb, 15 Mar, ..."""
    return [add_months(start, k) for k in range(1, term_months + 1)]


def is_broken_period(period_start: date, due_date: date) -> bool:
    """A period that is not a whole number of months (不足月/超月: a fixed repayment day's first period, or one
    cut short by an early repayment)."""
    months = months_between(period_start, due_date)
    return months < 1 or add_months(period_start, months) != due_date


def check_repayment_day(repayment_day: int | None) -> None:
    """A fixed repayment day is a day every month has (1..28), or None."""
    if repayment_day is None:
        return
    if isinstance(repayment_day, bool) or not isinstance(repayment_day, int) or not (
        1 <= repayment_day <= MAX_REPAYMENT_DAY
    ):
        raise ValidationError(f"repayment_day: a day of the month from 1 to {MAX_REPAYMENT_DAY}", field="repayment_day")


def first_due_on_day(start: date, repayment_day: int) -> date:
    """The first day ``repayment_day`` at least MIN_FIRST_PERIOD_DAYS days after ``start`` (the broken period's
    end): 10 Jan on day 25 → 25 Jan; 20 Jan on day 25 → 25 Feb; 10 Jan on day 10 → 10 Feb."""
    check_repayment_day(repayment_day)
    candidate = date(start.year, start.month, repayment_day)
    while (candidate - start).days < MIN_FIRST_PERIOD_DAYS:
        candidate = add_months(candidate, 1)
    return candidate


def schedule_due_dates(start: date, term_months: int, repayment_day: int | None = None) -> list[date]:
    """The due dates of ``term_months`` installments: on the disbursement day-of-month, or on a fixed repayment
    day from its first due date on."""
    if repayment_day is None:
        return due_dates(start, term_months)
    first = first_due_on_day(start, repayment_day)
    return [add_months(first, k) for k in range(term_months)]


def broken_period_interest(
    balance: Decimal, annual_rate: Decimal, days: int, currency: str = DEFAULT_CURRENCY
) -> Decimal:
    """A broken period's interest: balance × annual / 360 × actual days, rounded half-up once."""
    return round_half_up(balance * annual_rate * days / DAYS_PER_YEAR, currency)


def months_between(start: date, due: date) -> int:
    """Whole months from ``start`` to a due date produced by ``add_months``."""
    return (due.year - start.year) * 12 + due.month - start.month


# ---------------------------------------------------------------------------------------------- input


def check_terms(
    principal: Decimal,
    annual_rate: Decimal,
    term_months: int,
    currency: str = DEFAULT_CURRENCY,
    upfront_fee: Decimal = ZERO,
) -> None:
    """Refuse terms no schedule can be built from, naming the field at fault."""
    if not isinstance(principal, Decimal) or not isinstance(annual_rate, Decimal):
        raise ValidationError("principal and annual_rate must be Decimal, never float")
    if not principal.is_finite() or principal <= 0:
        raise ValidationError("principal: must be a positive amount", field="principal")
    if round_half_up(principal, currency) != principal:
        raise ValidationError(f"principal: must be a whole number of {quantum(currency)}", field="principal")
    if not annual_rate.is_finite() or annual_rate < 0 or annual_rate >= 10:
        raise ValidationError("annual_rate: must be a ratio between 0 and 10 (0.12 means 12%)", field="annual_rate")
    exponent = annual_rate.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_RATE_PLACES:
        raise ValidationError(f"annual_rate: at most {MAX_RATE_PLACES} decimal places", field="annual_rate")
    if isinstance(term_months, bool) or not isinstance(term_months, int) or not (1 <= term_months <= MAX_TERM_MONTHS):
        raise ValidationError(f"term_months: must be between 1 and {MAX_TERM_MONTHS}", field="term_months")
    if not isinstance(upfront_fee, Decimal) or not upfront_fee.is_finite() or upfront_fee < 0:
        raise ValidationError("upfront_fee: must be zero or a positive amount", field="upfront_fee")
    if round_half_up(upfront_fee, currency) != upfront_fee:
        raise ValidationError("upfront_fee: too many decimal places", field="upfront_fee")
    if upfront_fee >= principal:
        raise ValidationError("upfront_fee: must be less than the principal", field="upfront_fee")


def monthly_rate(annual_rate: Decimal) -> Decimal:
    """月利率 monthly rate = annual / 12, exact to 28 significant digits."""
    with localcontext() as ctx:
        ctx.prec = 34
        return annual_rate / MONTHS_PER_YEAR


def annuity_payment(
    principal: Decimal, annual_rate: Decimal, periods: int, currency: str = DEFAULT_CURRENCY
) -> Decimal:
    """The level payment P·r / (1 − (1 + r)^−n) on r = annual/12, rounded half-up to the cent."""
    if periods <= 0:
        raise ValidationError("term_months: must be at least 1", field="term_months")
    if annual_rate == 0:
        return round_half_up(principal / periods, currency)
    with localcontext() as ctx:
        ctx.prec = 34
        r = annual_rate / MONTHS_PER_YEAR
        growth = (1 + r) ** periods
        exact = principal * r * growth / (growth - 1)
    return round_half_up(exact, currency)


def _interest(balance: Decimal, annual_rate: Decimal, currency: str) -> Decimal:
    # balance × annual / 12 rounded once: identical to balance × (annual/12) for the rates we accept
    return round_half_up(balance * annual_rate / MONTHS_PER_YEAR, currency)


# ---------------------------------------------------------------------------------------------- methods


def _fee_for(number: int, upfront_fee: Decimal, fee_mode: FeeMode) -> Decimal:
    return upfront_fee if number == 1 and fee_mode == FeeMode.FIRST_INSTALLMENT else ZERO


def _level_rows(
    balance: Decimal,
    annual_rate: Decimal,
    dates: list[date],
    period_start: date,
    first_number: int,
    principal_part: Decimal | None,
    payment: Decimal | None,
    currency: str,
    upfront_fee: Decimal = ZERO,
    fee_mode: FeeMode = FeeMode.DEDUCT,
    stop_when_repaid: bool = False,
    broken_first: bool = False,
) -> list[Installment]:
    """Rows with either a level payment (annuity) or a level principal part; the last row takes the rest. With
    ``broken_first`` the first row's interest is on its actual days (its principal part as in a whole month)."""
    rows: list[Installment] = []
    prev = period_start
    last = len(dates) - 1
    for k, due in enumerate(dates):
        interest = _interest(balance, annual_rate, currency)
        charged = interest
        if k == 0 and broken_first:
            charged = broken_period_interest(balance, annual_rate, (due - period_start).days, currency)
        if k == last:
            part = balance
        elif payment is not None:
            part = min(max(payment - interest, ZERO), balance)
        else:
            assert principal_part is not None
            part = min(principal_part, balance)
        balance -= part
        number = first_number + k
        rows.append(Installment(number, prev, due, part, charged, _fee_for(number, upfront_fee, fee_mode), balance))
        prev = due
        if stop_when_repaid and balance == 0:
            break
    return rows


def _periodic(
    method: RepaymentMethod,
    principal: Decimal,
    annual_rate: Decimal,
    term_months: int,
    start: date,
    principal_part: Decimal | None,
    payment: Decimal | None,
    upfront_fee: Decimal,
    fee_mode: FeeMode,
    currency: str,
    repayment_day: int | None,
) -> Schedule:
    dates = schedule_due_dates(start, term_months, repayment_day)
    broken = repayment_day is not None and dates[0] != add_months(start, 1)
    rows = _level_rows(
        principal,
        annual_rate,
        dates,
        start,
        1,
        principal_part,
        payment,
        currency,
        upfront_fee,
        fee_mode,
        broken_first=broken,
    )
    return Schedule(
        principal,
        annual_rate,
        term_months,
        method,
        start,
        tuple(rows),
        upfront_fee,
        fee_mode,
        currency,
        repayment_day,
    )


def equal_installment(
    principal: Decimal,
    annual_rate: Decimal,
    term_months: int,
    start: date,
    *,
    upfront_fee: Decimal = ZERO,
    fee_mode: FeeMode = FeeMode.DEDUCT,
    currency: str = DEFAULT_CURRENCY,
    repayment_day: int | None = None,
) -> Schedule:
    """等额本息 equal installment: annuity on annual_rate/12; the last installment takes the rest."""
    check_terms(principal, annual_rate, term_months, currency, upfront_fee)
    check_repayment_day(repayment_day)
    payment = annuity_payment(principal, annual_rate, term_months, currency)
    return _periodic(RepaymentMethod.EQUAL_INSTALLMENT, principal, annual_rate, term_months, start, None, payment,
                     upfront_fee, fee_mode, currency, repayment_day)


def equal_principal(
    principal: Decimal,
    annual_rate: Decimal,
    term_months: int,
    start: date,
    *,
    upfront_fee: Decimal = ZERO,
    fee_mode: FeeMode = FeeMode.DEDUCT,
    currency: str = DEFAULT_CURRENCY,
    repayment_day: int | None = None,
) -> Schedule:
    """等额本金 equal principal: principal/n rounded half-up each period, interest on the falling balance."""
    check_terms(principal, annual_rate, term_months, currency, upfront_fee)
    check_repayment_day(repayment_day)
    part = round_half_up(principal / term_months, currency)
    return _periodic(RepaymentMethod.EQUAL_PRINCIPAL, principal, annual_rate, term_months, start, part, None,
                     upfront_fee, fee_mode, currency, repayment_day)


def interest_only(
    principal: Decimal,
    annual_rate: Decimal,
    term_months: int,
    start: date,
    *,
    upfront_fee: Decimal = ZERO,
    fee_mode: FeeMode = FeeMode.DEDUCT,
    currency: str = DEFAULT_CURRENCY,
    repayment_day: int | None = None,
) -> Schedule:
    """先息后本 interest-only: interest every month, all principal with the last installment."""
    check_terms(principal, annual_rate, term_months, currency, upfront_fee)
    check_repayment_day(repayment_day)
    return _periodic(RepaymentMethod.INTEREST_ONLY, principal, annual_rate, term_months, start, ZERO, None,
                     upfront_fee, fee_mode, currency, repayment_day)


def bullet(
    principal: Decimal,
    annual_rate: Decimal,
    term_months: int,
    start: date,
    *,
    upfront_fee: Decimal = ZERO,
    fee_mode: FeeMode = FeeMode.DEDUCT,
    currency: str = DEFAULT_CURRENCY,
    repayment_day: int | None = None,
) -> Schedule:
    """到期一次还本付息 bullet: one installment at maturity: principal plus simple interest."""
    check_terms(principal, annual_rate, term_months, currency, upfront_fee)
    if repayment_day is not None:
        raise ValidationError(
            "repayment_day: a bullet loan is repaid once at maturity; it has no monthly repayment day",
            field="repayment_day",
        )
    interest = round_half_up(principal * annual_rate * term_months / MONTHS_PER_YEAR, currency)
    maturity = add_months(start, term_months)
    row = Installment(1, start, maturity, principal, interest, _fee_for(1, upfront_fee, fee_mode), ZERO)
    return Schedule(
        principal,
        annual_rate,
        term_months,
        RepaymentMethod.BULLET,
        start,
        (row,),
        upfront_fee,
        fee_mode,
        currency,
    )


def build_schedule(
    method: RepaymentMethod | str,
    principal: Decimal,
    annual_rate: Decimal,
    term_months: int,
    start: date,
    *,
    upfront_fee: Decimal = ZERO,
    fee_mode: FeeMode | str = FeeMode.DEDUCT,
    currency: str = DEFAULT_CURRENCY,
    repayment_day: int | None = None,
) -> Schedule:
    """The schedule for any instalment method by name (on a fixed repayment day, when one is given); revolving
    lines have no schedule."""
    try:
        method = RepaymentMethod(method)
    except ValueError:
        allowed = ", ".join(m.value for m in RepaymentMethod if m != RepaymentMethod.REVOLVING)
        raise ValidationError(
            f"method: unknown repayment method '{method}' (one of: {allowed})", field="method"
        ) from None
    try:
        fee_mode = FeeMode(fee_mode)
    except ValueError:
        raise ValidationError(
            f"fee_mode: must be 'deduct' or 'first-installment', got '{fee_mode}'", field="fee_mode"
        ) from None
    if method == RepaymentMethod.REVOLVING:
        raise ValidationError(
            "method: a revolving line has no schedule; interest accrues daily on drawdowns", field="method"
        )
    builder = _BUILDERS[method]
    return builder(
        principal,
        annual_rate,
        term_months,
        start,
        upfront_fee=upfront_fee,
        fee_mode=fee_mode,
        currency=currency,
        repayment_day=repayment_day,
    )


_BUILDERS = {
    RepaymentMethod.EQUAL_INSTALLMENT: equal_installment,
    RepaymentMethod.EQUAL_PRINCIPAL: equal_principal,
    RepaymentMethod.INTEREST_ONLY: interest_only,
    RepaymentMethod.BULLET: bullet,
}


# ---------------------------------------------------------------------------------------------- accrual


def accrued_interest(
    interest: Decimal, period_start: date, due_date: date, through: date, currency: str = DEFAULT_CURRENCY
) -> Decimal:
    """Interest of one period earned by the end of day ``through`` (days from period start, inclusive),
    rounded half-up; it reaches exactly the scheduled interest on the day before the due date."""
    days = (due_date - period_start).days
    if days <= 0:
        return interest
    elapsed = min(max((through - period_start).days + 1, 0), days)
    return round_half_up(interest * elapsed / days, currency)


# ------------------------------------------------------------------------------------------ early repayment


def reamortise(
    balance: Decimal,
    annual_rate: Decimal,
    method: RepaymentMethod | str,
    remaining_due_dates: list[date],
    period_start: date,
    mode: PrepaymentMode | str,
    *,
    first_number: int,
    current_payment: Decimal | None = None,
    current_principal_part: Decimal | None = None,
    currency: str = DEFAULT_CURRENCY,
) -> list[Installment]:
    """New installments after a partial early repayment (部分提前还款) leaves ``balance`` outstanding.

    Reduce-installment keeps the remaining due dates and recomputes the payment (or principal part);
    reduce-term keeps the payment (or principal part) and drops the periods no longer needed. Interest-only
    and bullet loans keep their dates either way: only the interest falls with the balance."""
    method = RepaymentMethod(method)
    mode = PrepaymentMode(mode)
    if balance < 0:
        raise ValidationError("amount: an early repayment cannot exceed the outstanding principal", field="amount")
    if not remaining_due_dates:
        raise ValidationError("loan: no installments remain to re-amortise", field="loan")
    if balance == 0:
        return []
    n = len(remaining_due_dates)
    if method == RepaymentMethod.EQUAL_INSTALLMENT:
        if mode == PrepaymentMode.REDUCE_INSTALLMENT or current_payment is None:
            payment = annuity_payment(balance, annual_rate, n, currency)
        else:
            payment = current_payment
        return _level_rows(
            balance,
            annual_rate,
            remaining_due_dates,
            period_start,
            first_number,
            None,
            payment,
            currency,
            stop_when_repaid=True,
        )
    if method == RepaymentMethod.EQUAL_PRINCIPAL:
        if mode == PrepaymentMode.REDUCE_INSTALLMENT or current_principal_part is None:
            part = round_half_up(balance / n, currency)
        else:
            part = current_principal_part
        return _level_rows(
            balance,
            annual_rate,
            remaining_due_dates,
            period_start,
            first_number,
            part,
            None,
            currency,
            stop_when_repaid=True,
        )
    if method == RepaymentMethod.INTEREST_ONLY:
        return _level_rows(balance, annual_rate, remaining_due_dates, period_start, first_number, ZERO, None, currency)
    if method == RepaymentMethod.BULLET:
        due = remaining_due_dates[-1]
        months = max(months_between(period_start, due), 1)
        interest = round_half_up(balance * annual_rate * months / MONTHS_PER_YEAR, currency)
        return [Installment(first_number, period_start, due, balance, interest, ZERO, ZERO)]
    raise ValidationError("method: a revolving line is repaid freely, not re-amortised", field="method")


# ---------------------------------------------------------------------------------------------- revolving


def daily_interest(outstanding: Decimal, annual_rate: Decimal, currency: str = DEFAULT_CURRENCY) -> Decimal:
    """日利息 one day's interest on a revolving balance: outstanding × annual_rate / 360, rounded half-up."""
    return round_half_up(outstanding * annual_rate / DAYS_PER_YEAR, currency)


@dataclass(frozen=True, slots=True)
class LineMovement:
    """A drawdown (positive) or a principal repayment (negative) on a revolving line, from that day."""

    on: date
    principal: Decimal


def revolving_interest(
    movements: list[LineMovement],
    annual_rate: Decimal,
    start: date,
    end: date,
    currency: str = DEFAULT_CURRENCY,
    settlement_day: int | None = 20,
) -> Decimal:
    """随借随还 interest over days ``start``..``end`` inclusive on the daily-balance product (积数计息): each
    day's outstanding after that day's movements adds to the product; at each monthly settlement (结息日, the
    ``settlement_day`` of each month, none when None) and at ``end`` the product × annual/360 is rounded half up
    once and starts again. A balance may never go negative."""
    if end < start:
        raise ValidationError("end: must not be before start", field="end")
    by_day: dict[date, Decimal] = {}
    outstanding = ZERO
    for m in sorted(movements, key=lambda m: m.on):
        if m.on < start:
            outstanding += m.principal
        else:
            by_day[m.on] = by_day.get(m.on, ZERO) + m.principal
    total = product = ZERO
    day = start
    one = date.resolution
    while day <= end:
        outstanding += by_day.get(day, ZERO)
        if outstanding < 0:
            raise ValidationError(f"amount: repayment on {day} exceeds the outstanding principal", field="amount")
        product += outstanding
        if day == end or day.day == settlement_day:
            total += round_half_up(product * annual_rate / DAYS_PER_YEAR, currency)
            product = ZERO
        day += one
    return total
