"""The rate cap (利率上限): the yearly rate above which courts do not protect a financial loan's interest,
penalty and fees together. A product's rates, its penalty rate and its APR with fees at the shortest term stay
within it, and so does every price an offer or a credit line is given."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_DOWN, Decimal

from microlend.core.errors import ValidationError
from microlend.servicing.apr import apr
from microlend.servicing.products import DEFAULT_RATE_CAP, Product
from microlend.servicing.schedules import RepaymentMethod, build_schedule

#: Any date: an APR depends on the months between payments, not on the calendar.
_REFERENCE_START = date(2026, 1, 15)
RATE_PLACES = Decimal("0.0001")


def check_cap(cap: Decimal) -> Decimal:
    """A bank's cap: above zero and not above the legal line (24 %)."""
    if not cap.is_finite() or not 0 < cap <= DEFAULT_RATE_CAP:
        raise ValidationError(f"rate_cap: must be above 0 and at most {DEFAULT_RATE_CAP}", field="rate_cap")
    return cap


def offer_apr(product: Product, amount: Decimal, rate: Decimal, term_months: int) -> Decimal:
    """The APR of an offer under ``product`` (a revolving line charges simple daily interest: its rate)."""
    if product.method == RepaymentMethod.REVOLVING:
        return rate
    schedule = build_schedule(
        product.method, amount, rate, term_months, _REFERENCE_START, upfront_fee=product.upfront_fee(amount),
        fee_mode=product.fee_mode, currency=product.currency,
    )
    return apr(schedule)


def highest_apr(product: Product) -> Decimal:
    """The product's dearest price: its highest rate at its shortest term, fees included (a fee weighs most
    when it is spread over the fewest months)."""
    return max(offer_apr(product, amount, product.max_rate, product.min_term_months)
               for amount in {product.min_amount, product.max_amount})


def check_product_within_cap(product: Product, cap: Decimal) -> None:
    """Refuse a product that could price above the bank's rate cap, naming the cap and what breaks it."""
    if product.max_rate > cap:
        raise ValidationError(
            f"max_rate: {product.max_rate} is above the bank's rate cap {cap}", field="max_rate"
        )
    if product.penalty_rate > cap:
        raise ValidationError(
            f"penalty_multiplier: the penalty rate {product.max_rate} × {product.penalty_multiplier} = "
            f"{product.penalty_rate.normalize()} is above the bank's rate cap {cap}",
            field="penalty_multiplier",
        )
    dearest = highest_apr(product)
    if dearest > cap:
        raise ValidationError(
            f"upfront_fee_rate: with fees the APR at {product.min_term_months} months and rate {product.max_rate} "
            f"is {dearest}, above the bank's rate cap {cap}",
            field="upfront_fee_rate",
        )


def price_within_cap(product: Product, amount: Decimal, rate: Decimal, term_months: int, cap: Decimal) -> Decimal:
    """The offered rate, lowered where needed so that neither it, its penalty rate nor the offer's APR with
    fees is above the cap (a lowered rate has four decimal places, rounded down)."""
    if _within(product, amount, rate, term_months, cap):
        return rate
    ceiling = min(rate, cap / product.penalty_multiplier, cap).quantize(RATE_PLACES, rounding=ROUND_DOWN)
    if offer_apr(product, amount, ceiling, term_months) <= cap:
        return ceiling
    low, high = Decimal(0), ceiling  # the APR rises with the rate: the highest rate whose APR is within
    if offer_apr(product, amount, low, term_months) > cap:
        raise ValidationError(
            f"annual_rate: the fees of product {product.code} alone price above the bank's rate cap {cap}",
            field="annual_rate",
        )
    while high - low > RATE_PLACES:
        middle = ((low + high) / 2).quantize(RATE_PLACES, rounding=ROUND_DOWN)
        if offer_apr(product, amount, middle, term_months) <= cap:
            low = middle
        else:
            high = middle
    return low


def _within(product: Product, amount: Decimal, rate: Decimal, term_months: int, cap: Decimal) -> bool:
    return (rate <= cap and rate * product.penalty_multiplier <= cap
            and offer_apr(product, amount, rate, term_months) <= cap)


def check_offer_within_cap(product: Product, amount: Decimal, rate: Decimal, term_months: int,
                           cap: Decimal) -> None:
    """Refuse a booking priced above the cap (its rate, penalty rate or APR with fees), naming the cap."""
    if not _within(product, amount, rate, term_months, cap):
        raise ValidationError(
            f"annual_rate: {rate} would price above the bank's rate cap {cap} (rate, penalty rate "
            f"× {product.penalty_multiplier} or APR with fees)",
            field="annual_rate",
        )
