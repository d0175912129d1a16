"""Schedules for a whole portfolio at once: the rules of ``schedules.py`` vectorised over loans in integer
cents (numpy int64), for bulk work such as portfolio generation and migration. ``schedules.py`` stays the
reference; a test checks that every row here equals it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from microlend.core.errors import ValidationError
from microlend.servicing.schedules import (
    DAYS_PER_YEAR,
    MAX_TERM_MONTHS,
    RepaymentMethod,
    add_months,
    annuity_payment,
    first_due_on_day,
)

I64 = npt.NDArray[np.int64]
METHOD_CODES = {
    RepaymentMethod.EQUAL_INSTALLMENT: 0,
    RepaymentMethod.EQUAL_PRINCIPAL: 1,
    RepaymentMethod.INTEREST_ONLY: 2,
    RepaymentMethod.BULLET: 3,
}
RATE_SCALE = 10**6  # annual rates with at most six decimal places, as integers
_EPOCH = np.datetime64("0001-01-01", "D")


@dataclass(frozen=True)
class BatchSchedule:
    """Installment rows of many loans, flat: row i belongs to loan ``loan[i]`` (an index into the input)."""

    loan: I64
    number: I64
    start_day: I64  # date ordinals (date.toordinal())
    due_day: I64
    principal: I64  # cents
    interest: I64  # cents

    def __len__(self) -> int:
        return len(self.loan)


def _round_div(numerator: I64, denominator: int | I64) -> I64:
    """Half-up rounding of a non-negative integer division."""
    return (2 * numerator + denominator) // (2 * np.asarray(denominator, dtype=np.int64))


def _due_days(start_month_index: I64, start_day_of_month: I64, months: I64) -> I64:
    """Ordinals of a start date + ``months`` months, clamped to the month end (vectorised add_months);
    a start is given as year*12 + month-1 and its day of month."""
    month_index = start_month_index + months - 1970 * 12
    first = month_index.astype("datetime64[M]").astype("datetime64[D]")
    length = ((month_index + 1).astype("datetime64[M]").astype("datetime64[D]") - first).astype(np.int64)
    day = np.minimum(start_day_of_month, length)
    ordinals: I64 = ((first - _EPOCH).astype(np.int64) + day).astype(np.int64)
    return ordinals


def batch_schedules(
    principal_cents: I64, rate_e6: I64, term_months: I64, methods: I64, starts: list[date],
    repayment_days: I64 | None = None,
) -> BatchSchedule:
    """Schedules of many loans; ``methods`` holds METHOD_CODES values, ``repayment_days`` a fixed repayment day
    per loan (0: none; the first period is then broken, its interest on actual days / 360). Each loan's level
    payment and first due date come from the Decimal reference (one call per loan); every other step is integer
    arithmetic on arrays."""
    n = len(principal_cents)
    fixed_day = np.zeros(n, dtype=np.int64) if repayment_days is None else repayment_days.astype(np.int64)
    if not (len(rate_e6) == len(term_months) == len(methods) == len(starts) == len(fixed_day) == n):
        raise ValidationError("batch: every input array needs one value per loan")
    if n and (fixed_day.min() < 0 or fixed_day.max() > 28):
        raise ValidationError("batch: repayment days 1-28, or 0 for none")
    if n and bool(((fixed_day > 0) & (methods == METHOD_CODES[RepaymentMethod.BULLET])).any()):
        raise ValidationError("batch: a bullet loan has no repayment day")
    if n and (
        principal_cents.min() <= 0 or rate_e6.min() < 0 or term_months.min() < 1 or term_months.max() > MAX_TERM_MONTHS
    ):
        raise ValidationError("batch: principal must be positive, rates non-negative, terms 1-360 months")
    rows_per_loan = np.where(methods == METHOD_CODES[RepaymentMethod.BULLET], 1, term_months).astype(np.int64)
    total = int(rows_per_loan.sum())
    loan = np.repeat(np.arange(n, dtype=np.int64), rows_per_loan)
    first_row = np.concatenate(([0], np.cumsum(rows_per_loan)[:-1])).astype(np.int64)
    number = np.arange(total, dtype=np.int64) - first_row[loan] + 1
    # due dates: month k of each loan (bullet: month = term), grouped by start date for vectorised arithmetic
    month = np.where(methods[loan] == METHOD_CODES[RepaymentMethod.BULLET], term_months[loan], number)
    start_ord = np.array([s.toordinal() for s in starts], dtype=np.int64)
    # month arithmetic from a base date: the start (due k = start + k months) or, on a fixed repayment day, the
    # first due date (due k = first + k-1 months)
    bases = [s if not d else first_due_on_day(s, int(d)) for s, d in zip(starts, fixed_day, strict=True)]
    base_month = np.array([b.year * 12 + b.month - 1 for b in bases], dtype=np.int64)
    base_dom = np.array([b.day for b in bases], dtype=np.int64)
    shift = (fixed_day > 0).astype(np.int64)
    due_day = _due_days(base_month[loan], base_dom[loan], month - shift[loan])
    broken = np.array(
        [bool(d) and b != add_months(s, 1) for s, b, d in zip(starts, bases, fixed_day, strict=True)], dtype=bool
    )
    first_days = np.array([(b - s).days for s, b in zip(starts, bases, strict=True)], dtype=np.int64)
    start_day = np.where(number == 1, start_ord[loan], np.roll(due_day, 1))
    # level payments (equal installment) and level principal parts (equal principal) per loan
    level = np.zeros(n, dtype=np.int64)
    for i in np.flatnonzero(methods == METHOD_CODES[RepaymentMethod.EQUAL_INSTALLMENT]):
        payment = annuity_payment(
            Decimal(int(principal_cents[i])) / 100, Decimal(int(rate_e6[i])) / RATE_SCALE, int(term_months[i])
        )
        level[i] = int(payment * 100)
    ep = methods == METHOD_CODES[RepaymentMethod.EQUAL_PRINCIPAL]
    level[ep] = _round_div(principal_cents[ep], term_months[ep])
    principal = np.zeros(total, dtype=np.int64)
    interest = np.zeros(total, dtype=np.int64)
    balance = principal_cents.astype(np.int64).copy()
    max_rows = int(rows_per_loan.max()) if n else 0
    bullet = methods == METHOD_CODES[RepaymentMethod.BULLET]
    for k in range(max_rows):  # one pass per period across every loan still running
        live = np.flatnonzero(rows_per_loan > k)
        rows = first_row[live] + k
        owed = _round_div(balance[live] * rate_e6[live], 12 * RATE_SCALE)
        last = rows_per_loan[live] == k + 1
        method = methods[live]
        part = np.where(
            method == 0,
            np.clip(level[live] - owed, 0, balance[live]),
            np.where(method == 1, np.minimum(level[live], balance[live]), 0),
        )
        part = np.where(last, balance[live], part)
        is_bullet = bullet[live]
        owed = np.where(
            is_bullet, _round_div(principal_cents[live] * rate_e6[live] * term_months[live], 12 * RATE_SCALE), owed
        )
        if k == 0:  # a broken first period: interest on its actual days (the principal part as in a whole month)
            daily = _round_div(balance[live] * rate_e6[live] * first_days[live], DAYS_PER_YEAR * RATE_SCALE)
            owed = np.where(broken[live], daily, owed)
        principal[rows] = part
        interest[rows] = owed
        balance[live] -= part
    return BatchSchedule(loan, number, start_day.astype(np.int64), due_day, principal, interest)
