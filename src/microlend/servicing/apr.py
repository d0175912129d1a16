"""APR disclosure (年化利率): the IRR of the borrower's real cash flows per payment period, annualised by the
number of periods in a year (monthly: × 12; a 12-month bullet: × 1), in Decimal."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, localcontext
from functools import reduce
from math import gcd

from microlend.core.errors import ValidationError
from microlend.servicing.schedules import Schedule

APR_PLACES = Decimal("0.000001")
_TOLERANCE = Decimal("1e-20")


def _npv_and_slope(flows: Sequence[Decimal], rate: Decimal) -> tuple[Decimal, Decimal]:
    """NPV(r) = Σ cf_k (1+r)^-k and its derivative, by Horner's rule in v = 1/(1+r)."""
    v = 1 / (1 + rate)
    npv = Decimal(0)
    slope = Decimal(0)  # d/dv of Σ cf_k v^k
    for cf in reversed(flows):
        slope = slope * v + npv
        npv = npv * v + cf
    # dNPV/dr = dNPV/dv × dv/dr, dv/dr = -v²
    return npv, -slope * v * v


def monthly_irr(flows: Sequence[Decimal]) -> Decimal:
    """The periodic rate r with Σ cf_k / (1+r)^k = 0, for flows with one sign change (receive, then pay).

    Newton's method from a bracket, falling back to bisection whenever a step leaves the bracket."""
    if not flows or flows[0] <= 0 or all(cf >= 0 for cf in flows[1:]):
        raise ValidationError("cash flows: need money received first and payments after it")
    with localcontext() as ctx:
        ctx.prec = 40
        low, high = Decimal("-0.99"), Decimal(1)
        while _npv_and_slope(flows, high)[0] < 0:  # NPV rises with r: widen until it is positive
            high *= 2
            if high > 10**6:
                raise ValidationError("cash flows: the payments imply no finite rate of return")
        rate = Decimal("0.01")
        for _ in range(200):
            npv, slope = _npv_and_slope(flows, rate)
            if abs(npv) < _TOLERANCE:
                break
            if npv > 0:
                high = rate  # NPV rises with r, so a positive NPV means the rate is too high
            else:
                low = rate
            step = rate - npv / slope if slope != 0 else None
            rate = step if step is not None and low < step < high else (low + high) / 2
            if high - low < _TOLERANCE:
                break
        return +rate


def payment_period(flows: Sequence[Decimal]) -> int:
    """Months between payments: the greatest common divisor of the months in which something is paid
    (1 for monthly schedules, the term for a bullet loan)."""
    months = [k for k, cf in enumerate(flows) if k > 0 and cf != 0]
    return reduce(gcd, months) if months else 1


def apr_of_flows(flows: Sequence[Decimal]) -> Decimal:
    """The IRR per payment period × periods a year, to six decimal places (0.126825 = 12.6825%). Flows that
    sum to zero (nothing paid beyond what was received) have an APR of exactly 0."""
    with localcontext() as ctx:
        ctx.prec = 40
        if flows and sum(flows, Decimal(0)) == 0 and flows[0] > 0:
            return Decimal(0).quantize(APR_PLACES)
        period = payment_period(flows)
        per_period = list(flows[::period])
        if any(cf != 0 for k, cf in enumerate(flows) if k % period):
            per_period = list(flows)  # irregular payments: keep monthly periods
            period = 1
        annual = (monthly_irr(per_period) * Decimal(12) / Decimal(period)).quantize(APR_PLACES)
        return annual.copy_abs() if annual == 0 else annual  # never '-0.000000'


def apr(schedule: Schedule) -> Decimal:
    """The disclosed APR of a schedule: net amount received, every payment and fee, annualised by its
    payment period."""
    return apr_of_flows(schedule.cash_flows())
