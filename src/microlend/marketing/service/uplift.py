"""Uplift training (增量响应模型): learn from past campaigns with control groups whom a contact really moves,
on 70% of their customers, and measure the ranking on the held-out 30% (Qini curve, AUUC, uplift at top k).
The API, the pages and the CLI all train through `train_uplift`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from microlend.core.errors import DomainError, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.marketing.service.attribution import campaign_outcomes
from microlend.marketing.uplift import (
    ClassTransformationUplift,
    TwoModelUplift,
    UpliftEvaluation,
    UpliftModel,
    evaluate,
    holdout_mask,
)

UPLIFT_METHODS = ("two_model", "class_transformation")


@dataclass(frozen=True)
class UpliftTraining:
    """A trained and measured uplift model, or why there is none: `problem` is "too_few" (too few
    customers or no features), "no_contrast" (an arm without both converters and non-converters) or the
    model's own refusal, and `detail` says it in words."""

    stage: str
    method: str
    features: list[str]
    customers: int  # targeted customers of the campaigns found in the customer data
    control: int
    held_out: int
    model: UpliftModel | None = None
    evaluation: UpliftEvaluation | None = None
    problem: str = ""
    detail: str = ""


def uplift_problem(message: str) -> str:
    """The short name of a model's refusal: "no_contrast" when an arm lacks converters or non-converters."""
    return "no_contrast" if "converters" in message else message


def train_uplift(uow: UnitOfWork, who: Principal, campaign_ids: Sequence[int], customers: pl.DataFrame,
                 features: Sequence[str], *, stage: str = "disbursed", method: str = "two_model",
                 min_customers: int = 0) -> UpliftTraining:
    """Train an uplift model on the outcomes of `campaign_ids` (converted at `stage`) with the customers'
    `features`, holding out a stable 30% of customers to evaluate it."""
    who.require(Permission.VIEW_CAMPAIGNS)
    if method not in UPLIFT_METHODS:
        raise ValidationError("method: two_model or class_transformation", field="method")
    names = list(features)
    missing = [f for f in names if f not in customers.columns]
    if missing:
        raise ValidationError(f"{missing[0]}: the customer data has no such column", field=missing[0])
    data = campaign_outcomes(uow, who, campaign_ids, stage=stage).join(
        customers.select("customer_id", *names), on="customer_id", how="inner")
    control = int((data.get_column("treated") == 0).sum())
    if not names or data.height < min_customers:
        detail = (f"customers: {data.height} with features, at least {min_customers} needed" if names
                  else "features: none given")
        return UpliftTraining(stage, method, names, data.height, control, 0, problem="too_few", detail=detail)
    held = holdout_mask(data.get_column("customer_id").to_list())
    x = data.select([pl.col(f).cast(pl.Float64, strict=False).fill_null(0.0) for f in names]).to_numpy()
    t = data.get_column("treated").to_numpy()
    y = data.get_column("converted").to_numpy()
    try:
        model = (TwoModelUplift() if method == "two_model" else ClassTransformationUplift()).fit(
            x[~held], t[~held], y[~held])
        evaluation = evaluate(model.predict(x[held]), t[held], y[held])
    except DomainError as exc:
        return UpliftTraining(stage, method, names, data.height, control, int(held.sum()),
                              problem=uplift_problem(exc.message), detail=exc.message)
    return UpliftTraining(stage, method, names, data.height, control, int(held.sum()), model, evaluation)
