"""Journeys (客户旅程), message variants (A/B 文案) and campaign budgets as pure rules.

A journey is a campaign's follow-up steps: N days after the previous step, the customers that step reached
whose outcome meets a condition (no click, no application, clicked but no application) get the next action
(an SMS, a push, or an officer's visit task). A campaign's treatment arm may carry two or more message
variants with weights; each treated customer's variant is stable by hash. A budget caps what the campaign's
contacts may cost. No I/O, no clock: the service passes instants and figures in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import numpy.typing as npt
import polars as pl

from microlend.core.errors import Conflict, ValidationError
from microlend.marketing.campaigns import BUCKETS, control_bucket
from microlend.marketing.intervals import newcombe_difference, wilson_interval

#: what the previous step's customers must (not) have done for the next step to reach them
NO_CLICK, NO_APPLICATION, CLICKED_NO_APPLICATION = "no_click", "no_application", "clicked_no_application"
CONDITIONS = (NO_CLICK, NO_APPLICATION, CLICKED_NO_APPLICATION)
ACTIONS = ("sms", "push", "visit")
MAX_STEPS = 5
MAX_VARIANTS = 5
#: why a journey step stopped without acting (stored on the step)
STOPPED_BUDGET = "budget"


@dataclass(frozen=True)
class StepSpec:
    """One follow-up step: `after_days` after the previous step (the launch for the first), to the previous
    step's customers meeting `condition`, do `action` (with `template`, the campaign's default when None)."""

    after_days: int
    condition: str
    action: str
    template: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.after_days <= 90:
            raise ValidationError("after_days: 1 to 90 days", field="after_days")
        if self.condition not in CONDITIONS:
            raise ValidationError(f"condition: one of {', '.join(CONDITIONS)}", field="condition")
        if self.action not in ACTIONS:
            raise ValidationError(f"action: one of {', '.join(ACTIONS)}", field="action")
        if self.template is not None and len(self.template) > 1000:
            raise ValidationError("template: at most 1000 characters", field="template")


def step_due(previous_done_at: datetime | None, after_days: int, now: datetime) -> bool:
    """A step is due once its previous step (or the launch) is done and `after_days` have passed."""
    return previous_done_at is not None and now >= previous_done_at + timedelta(days=after_days)


def meets(condition: str, *, clicked: bool, applied: bool) -> bool:
    """Whether a customer's outcome since the previous step meets the step's condition."""
    if condition == NO_CLICK:
        return not clicked
    if condition == NO_APPLICATION:
        return not applied
    if condition == CLICKED_NO_APPLICATION:
        return clicked and not applied
    raise ValidationError(f"condition: one of {', '.join(CONDITIONS)}", field="condition")


def select_next(previous: pl.DataFrame, clicked: pl.DataFrame, applied: pl.DataFrame, condition: str,
                blocked: pl.DataFrame | None = None) -> pl.DataFrame:
    """The customers the next step reaches: those the previous step reached meeting `condition`, less the
    blocked (opted out, capped, held out). Set-based: frames of `customer_id` in (anti/semi joins), the
    chosen ids out, sorted."""
    if condition not in CONDITIONS:
        raise ValidationError(f"condition: one of {', '.join(CONDITIONS)}", field="condition")
    prev = previous.select(pl.col("customer_id").cast(pl.Int64)).unique()
    clicked_ids = clicked.select(pl.col("customer_id").cast(pl.Int64)).unique()
    applied_ids = applied.select(pl.col("customer_id").cast(pl.Int64)).unique()
    if condition == NO_CLICK:
        chosen = prev.join(clicked_ids, on="customer_id", how="anti")
    elif condition == NO_APPLICATION:
        chosen = prev.join(applied_ids, on="customer_id", how="anti")
    else:
        chosen = prev.join(clicked_ids, on="customer_id", how="semi").join(applied_ids, on="customer_id", how="anti")
    if blocked is not None and blocked.height:
        chosen = chosen.join(blocked.select(pl.col("customer_id").cast(pl.Int64)), on="customer_id", how="anti")
    return chosen.sort("customer_id")


def id_frame(ids: Iterable[int]) -> pl.DataFrame:
    return pl.DataFrame({"customer_id": [int(i) for i in ids]}, schema={"customer_id": pl.Int64})


# --- variants ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """A message variant of the treatment arm: its key (A, B, ...), weight and template."""

    key: str
    weight: int
    template: str

    def __post_init__(self) -> None:
        if not (1 <= len(self.key) <= 20 and self.key.replace("_", "").replace("-", "").isalnum()):
            raise ValidationError("variant key: 1-20 letters, digits, - or _", field="variants")
        if not 1 <= self.weight <= 100:
            raise ValidationError("variant weight: 1 to 100", field="variants")
        if not self.template.strip() or len(self.template) > 1000:
            raise ValidationError("variant template: 1-1000 characters", field="variants")


def check_variants(variants: Sequence[Variant]) -> list[Variant]:
    """None or 2..MAX_VARIANTS variants with distinct keys."""
    if not variants:
        return []
    if not 2 <= len(variants) <= MAX_VARIANTS:
        raise ValidationError(f"variants: 2 to {MAX_VARIANTS}, or none", field="variants")
    if len({v.key for v in variants}) != len(variants):
        raise ValidationError("variants: each needs its own key", field="variants")
    return list(variants)


def variant_key(campaign_key: str) -> str:
    """The hash key of a campaign's variants: independent of its control group's."""
    return f"variant:{campaign_key}"


def _bounds(variants: Sequence[Variant]) -> npt.NDArray[np.int64]:
    weights = np.array([v.weight for v in variants], dtype=np.int64)
    return (np.cumsum(weights) * BUCKETS) // int(weights.sum())


def variant_of(campaign_key: str, customer_id: int, variants: Sequence[Variant]) -> str:
    """The customer's variant, the same on every run: its hash bucket falls in a weight's share of 0..9999."""
    bucket = control_bucket(variant_key(campaign_key), customer_id)
    return variants[int(np.searchsorted(_bounds(variants), bucket, side="right"))].key


def assign_variants(campaign_key: str, customer_ids: Sequence[int] | npt.NDArray[np.int64],
                    variants: Sequence[Variant]) -> list[str]:
    """`variant_of` for many customers at once."""
    if not variants:
        return []
    key = variant_key(campaign_key)
    buckets = np.fromiter((control_bucket(key, int(c)) for c in customer_ids), dtype=np.int64,
                          count=len(customer_ids))
    index = np.searchsorted(_bounds(variants), buckets, side="right")
    keys = [v.key for v in variants]
    return [keys[int(i)] for i in index]


@dataclass(frozen=True)
class VariantResult:
    """One variant's treated customers, responders (clicked) and converters (applied), with Wilson
    intervals; and against the first variant, the difference of conversion rates with Newcombe's interval."""

    key: str
    treated: int
    responded: int
    converted: int
    response_rate: float
    response_ci: tuple[float, float]
    conversion_rate: float
    conversion_ci: tuple[float, float]
    difference: tuple[float, float, float] | None  # (conversion rate minus the first variant's, low, high)


def variant_results(counts: Mapping[str, tuple[int, int, int]], order: Sequence[str], confidence: float = 0.95
                    ) -> list[VariantResult]:
    """Per variant in `order`: counts (treated, responded, converted) to rates, intervals and differences."""
    results: list[VariantResult] = []
    base: tuple[int, int] | None = None
    for key in order:
        n, r, c = counts.get(key, (0, 0, 0))
        diff = None
        if base is None:
            base = (c, n)
        else:
            diff = newcombe_difference(c, n, base[0], base[1], confidence)
        results.append(VariantResult(key, n, r, c, r / n if n else 0.0, wilson_interval(r, n, confidence),
                                     c / n if n else 0.0, wilson_interval(c, n, confidence), diff))
    return results


# --- budget -----------------------------------------------------------------------------------------------


def check_budget(value: Decimal | None) -> Decimal | None:
    if value is not None and not Decimal(0) <= value <= Decimal("100000000"):
        raise ValidationError("budget: between 0 and 100,000,000", field="budget")
    return value


def budget_left(budget: Decimal | None, spent: Decimal) -> Decimal | None:
    return None if budget is None else budget - spent


def refuse_over_budget(budget: Decimal | None, spent: Decimal, contacts: int, unit_cost: Decimal, *,
                       what: str) -> Decimal:
    """The cost of `contacts` more at `unit_cost`; a Conflict naming the figures when it would take the
    spend over the budget."""
    cost = unit_cost * contacts
    if budget is not None and spent + cost > budget:
        raise Conflict(f"budget: {what} would cost {cost} for {contacts} contact(s); {spent} of the budget of "
                       f"{budget} is spent, {budget - spent} is left", field="budget")
    return cost
