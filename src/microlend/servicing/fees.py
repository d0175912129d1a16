"""Upfront fees by the effective-interest method (实际利率法摊销手续费), plain Python, no I/O.

A fee netted from the disbursement is not income at payout: it is deferred (未实现收益, account 1305) and
recognised into interest income over the loan's life. The effective interest rate (EIR) per period is the rate
that discounts the contractual cash flows (each installment's principal and interest) to the net carrying
amount at payout (principal less the fee). Period k then recognises ``carrying × EIR`` of which the contractual
interest is already income; the rest, ``carrying × EIR − interest``, is the fee amortised in that period. Each
period's amount is rounded to cents and the last period takes what is left, so the deferred fee reaches exactly
zero at maturity; close of business spreads a period's amount over its days like scheduled interest."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, localcontext

from microlend.core.errors import ValidationError
from microlend.core.money import DEFAULT_CURRENCY, round_half_up

ZERO = Decimal(0)
#: iterations of the bisection: the rate's bracket halves each time (2^-120 of a 100% bracket)
_ITERATIONS = 120
_PRECISION = 50


def present_value(rate: Decimal, flows: Sequence[Decimal]) -> Decimal:
    """Σ flows[k] / (1 + rate)^(k+1): the value at payout of one flow at the end of each period."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        factor, total = Decimal(1) / (1 + rate), ZERO
        discount = Decimal(1)
        for flow in flows:
            discount *= factor
            total += flow * discount
        return total


def periodic_effective_rate(net: Decimal, flows: Sequence[Decimal]) -> Decimal:
    """The rate per period that discounts ``flows`` (one at the end of each period) to ``net``: the root of
    ``present_value(i, flows) = net`` by bisection (the value falls as the rate rises)."""
    if net <= 0 or not flows or any(f < 0 for f in flows):
        raise ValidationError("fee: the cash flows cannot carry this fee")
    if sum(flows, ZERO) < net:
        raise ValidationError("fee: the cash flows are less than the net amount paid out")
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        low, high = ZERO, Decimal(1)
        while present_value(high, flows) > net:
            high *= 2
        for _ in range(_ITERATIONS):
            middle = (low + high) / 2
            if present_value(middle, flows) > net:
                low = middle
            else:
                high = middle
        return (low + high) / 2


def fee_amortisation(
    fee: Decimal, periods: Sequence[tuple[Decimal, Decimal]], currency: str = DEFAULT_CURRENCY
) -> list[Decimal]:
    """The fee recognised in each period (``periods``: each one's contractual principal and interest), in cents,
    never negative, adding up to ``fee`` exactly (the last period takes the rounding)."""
    if fee < 0:
        raise ValidationError("fee: must not be negative")
    if not periods:
        return []
    if fee == 0:
        return [ZERO] * len(periods)
    outstanding = sum((p for p, _ in periods), ZERO)
    rate = periodic_effective_rate(outstanding - fee, [p + i for p, i in periods])
    deferred, amounts = fee, []
    for k, (principal, interest) in enumerate(periods):
        if k == len(periods) - 1:
            amount = deferred
        else:
            with localcontext() as ctx:
                ctx.prec = _PRECISION
                earned = (outstanding - deferred) * rate - interest
            amount = min(max(round_half_up(earned, currency), ZERO), deferred)
        amounts.append(amount)
        deferred -= amount
        outstanding -= principal
    return amounts
