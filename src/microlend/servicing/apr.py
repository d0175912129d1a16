"""APR disclosure (年化利率): the IRR of the borrower's real cash flows, monthly IRR × 12, in Decimal."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, localcontext

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


def apr_of_flows(flows: Sequence[Decimal]) -> Decimal:
    """Monthly IRR × 12, to six decimal places (0.126825 = 12.6825%)."""
    with localcontext() as ctx:
        ctx.prec = 40
        return (monthly_irr(flows) * 12).quantize(APR_PLACES)


def apr(schedule: Schedule) -> Decimal:
    """The disclosed APR of a schedule: net amount received, every payment and fee, monthly IRR × 12."""
    return apr_of_flows(schedule.cash_flows())
