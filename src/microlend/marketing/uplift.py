"""Uplift (增量响应) from past campaigns with control groups: whom did the campaign really move?

Two approaches on scikit-learn classifiers: the two-model approach (one model on the treated, one on the
control group; uplift = P(convert | treated) - P(convert | control)) and class transformation (Jaskowski
and Jaroszewicz: z = 1 for treated converters and control non-converters; uplift = 2 P(z = 1) - 1, with
sample weights that balance treatment and control when the control share is not one half).

Measures, as pure functions (customers ordered by predicted uplift, highest first). Customers with the same
score are one group: the curves have a point only where the score changes, so the input order of tied
customers never changes a figure (a model giving everyone one score is random targeting, exactly).
- Qini curve: Q(k) = Yt(k) - Yc(k) * Nt(k) / Nc(k) over the top k customers, where Yt, Yc count converters
  and Nt, Nc customers in treatment and control (the second term is 0 while Nc(k) = 0); Q(0) = 0. Its unit
  is incremental converters.
- Qini area (raw): the area under the Qini curve with the population share on [0, 1] (trapezoids), in
  incremental converters; the Qini coefficient subtracts the area under random targeting, the line from
  (0, 0) to (1, Q(n)). Both grow with the number of customers: they compare models on the same customers.
- Uplift curve: U(k) = (Yt(k)/Nt(k) - Yc(k)/Nc(k)) * k (a rate is 0 while its group is empty).
- AUUC, normalised: (area under the uplift curve - random) / (area under the perfect ranking's uplift
  curve - random), as scikit-uplift's `uplift_auc_score`: 1 for the perfect ranking, 0 for random
  targeting, below 0 for a ranking worse than random. Comparable across campaigns.
- Uplift at top k: conversion of the treated minus conversion of the control among the top k.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import polars as pl

from microlend.core.errors import ValidationError

FloatArray = npt.NDArray[np.float64]


def _arrays(score: Sequence[float] | FloatArray, treatment: Sequence[int] | npt.NDArray[Any],
            outcome: Sequence[int] | npt.NDArray[Any]) -> tuple[FloatArray, FloatArray, FloatArray]:
    s = np.asarray(score, dtype=np.float64)
    t = np.asarray(treatment, dtype=np.float64)
    y = np.asarray(outcome, dtype=np.float64)
    if not (len(s) == len(t) == len(y)):
        raise ValidationError("score, treatment and outcome must have the same length", field="score")
    if len(s) == 0:
        raise ValidationError("score: no customers", field="score")
    if not np.isin(t, (0, 1)).all() or not np.isin(y, (0, 1)).all():
        raise ValidationError("treatment and outcome must be 0 or 1", field="treatment")
    order = np.argsort(-s, kind="stable")
    return s[order], t[order], y[order]


def _groups(s: FloatArray, t: FloatArray, y: FloatArray
            ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Cumulative (k, Nt, Nc, Yt, Yc) at the end of each group of tied scores (scores in descending order)."""
    ends = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    nt = np.cumsum(t)[ends]
    yt = np.cumsum(y * t)[ends]
    k = (ends + 1).astype(np.float64)
    return k, nt, k - nt, yt, np.cumsum(y)[ends] - yt


def qini_curve(score: Sequence[float] | FloatArray, treatment: Sequence[int] | npt.NDArray[Any],
               outcome: Sequence[int] | npt.NDArray[Any]) -> tuple[FloatArray, FloatArray]:
    """(share of the population targeted, Qini value), from (0, 0) to (1, Q(n)), one point per group of tied
    scores."""
    s, t, y = _arrays(score, treatment, outcome)
    k, nt, nc, yt, yc = _groups(s, t, y)
    q = yt - yc * np.divide(nt, nc, out=np.zeros_like(nt), where=nc > 0)
    return np.r_[0.0, k / len(s)], np.r_[0.0, q]


def uplift_curve(score: Sequence[float] | FloatArray, treatment: Sequence[int] | npt.NDArray[Any],
                 outcome: Sequence[int] | npt.NDArray[Any]) -> tuple[FloatArray, FloatArray]:
    """(share of the population targeted, U(k) = (Yt/Nt - Yc/Nc) * k), one point per group of tied scores."""
    s, t, y = _arrays(score, treatment, outcome)
    k, nt, nc, yt, yc = _groups(s, t, y)
    rate_t = np.divide(yt, nt, out=np.zeros_like(yt), where=nt > 0)
    rate_c = np.divide(yc, nc, out=np.zeros_like(yc), where=nc > 0)
    return np.r_[0.0, k / len(s)], np.r_[0.0, (rate_t - rate_c) * k]


def _area(x: FloatArray, v: FloatArray) -> float:
    return float(np.sum((v[1:] + v[:-1]) / 2 * np.diff(x)))


def qini_area(score: Sequence[float] | FloatArray, treatment: Sequence[int] | npt.NDArray[Any],
              outcome: Sequence[int] | npt.NDArray[Any]) -> float:
    """The raw area under the Qini curve (population share on the x axis), in incremental converters."""
    return _area(*qini_curve(score, treatment, outcome))


def qini_coefficient(score: Sequence[float] | FloatArray, treatment: Sequence[int] | npt.NDArray[Any],
                     outcome: Sequence[int] | npt.NDArray[Any]) -> float:
    """The Qini area minus the area under random targeting (a straight line to the same end point)."""
    x, q = qini_curve(score, treatment, outcome)
    return _area(x, q) - float(q[-1]) / 2


def perfect_uplift_score(treatment: Sequence[int] | npt.NDArray[Any], outcome: Sequence[int] | npt.NDArray[Any]
                         ) -> FloatArray:
    """The ranking that knows the outcomes: treated converters and control non-converters first (as
    scikit-uplift's `perfect_uplift_curve`)."""
    t = np.asarray(treatment, dtype=np.float64)
    y = np.asarray(outcome, dtype=np.float64)
    control_converters = np.sum((y == 1) & (t == 0))
    treated_non_converters = np.sum((y == 0) & (t == 1))
    tiebreak = y if control_converters > treated_non_converters else t
    perfect: FloatArray = 2.0 * (y == t) + tiebreak
    return perfect


def auuc_normalised(score: Sequence[float] | FloatArray, treatment: Sequence[int] | npt.NDArray[Any],
                    outcome: Sequence[int] | npt.NDArray[Any]) -> float:
    """Area under the uplift curve between random targeting (0) and the perfect ranking (1); NaN when the
    perfect ranking is no better than random (nothing to rank)."""
    x, u = uplift_curve(score, treatment, outcome)
    px, pu = uplift_curve(perfect_uplift_score(treatment, outcome), treatment, outcome)
    random = float(pu[-1]) / 2
    perfect = _area(px, pu) - random
    if perfect <= 0:
        return float("nan")
    return (_area(x, u) - random) / perfect


def uplift_at_top_k(score: Sequence[float] | FloatArray, treatment: Sequence[int] | npt.NDArray[Any],
                    outcome: Sequence[int] | npt.NDArray[Any], fraction: float) -> float:
    """Treated conversion minus control conversion among the top `fraction` (ceil) of customers; customers
    tied with the last of them are in too."""
    if not 0 < fraction <= 1:
        raise ValidationError("fraction: must be in (0, 1]", field="fraction")
    s, t, y = _arrays(score, treatment, outcome)
    k = math.ceil(fraction * len(t))
    k = int(np.searchsorted(-s, -s[k - 1], side="right"))
    tk, yk = t[:k], y[:k]
    if tk.sum() == 0 or (1 - tk).sum() == 0:
        raise ValidationError(f"fraction: the top {k} hold no treated or no control customer", field="fraction")
    return float(yk[tk == 1].mean() - yk[tk == 0].mean())


# --- models -----------------------------------------------------------------------------------------------


class Classifier(Protocol):
    """The part of a scikit-learn (or LightGBM) classifier the uplift models use."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Any: ...  # noqa: N803

    def predict_proba(self, X: Any) -> Any: ...  # noqa: N803


def default_classifier() -> Classifier:
    from sklearn.linear_model import LogisticRegression

    model: Classifier = LogisticRegression(max_iter=1000)
    return model


def _positive(model: Classifier, X: Any) -> FloatArray:  # noqa: N803
    return np.asarray(model.predict_proba(X), dtype=np.float64)[:, 1]


def _check(X: Any, treatment: Any, outcome: Any) -> tuple[FloatArray, npt.NDArray[np.int64], npt.NDArray[np.int64]]:  # noqa: N803
    x = np.asarray(X, dtype=np.float64)
    t = np.asarray(treatment).astype(np.int64)
    y = np.asarray(outcome).astype(np.int64)
    if x.ndim != 2 or len(x) != len(t) or len(t) != len(y):
        raise ValidationError("features: one row per customer, as many as treatment and outcome", field="features")
    for arm in (0, 1):
        labels = y[t == arm]
        if len(labels) == 0 or labels.min() == labels.max():
            name = "treatment" if arm else "control"
            raise ValidationError(f"outcome: the {name} group needs both converters and non-converters",
                                  field="outcome")
    return x, t, y


@dataclass
class TwoModelUplift:
    """Two classifiers: P(convert | treated, x) and P(convert | control, x); uplift is their difference."""

    make: Callable[[], Classifier] = default_classifier
    kind: str = "two_model"

    def fit(self, X: Any, treatment: Any, outcome: Any) -> TwoModelUplift:  # noqa: N803
        x, t, y = _check(X, treatment, outcome)
        self.treated = self.make()
        self.treated.fit(x[t == 1], y[t == 1])
        self.control = self.make()
        self.control.fit(x[t == 0], y[t == 0])
        return self

    def predict(self, X: Any) -> FloatArray:  # noqa: N803
        x = np.asarray(X, dtype=np.float64)
        return _positive(self.treated, x) - _positive(self.control, x)


@dataclass
class ClassTransformationUplift:
    """One classifier on z = y*t + (1-y)*(1-t), weighted so treatment and control count equally."""

    make: Callable[[], Classifier] = default_classifier
    kind: str = "class_transformation"

    def fit(self, X: Any, treatment: Any, outcome: Any) -> ClassTransformationUplift:  # noqa: N803
        x, t, y = _check(X, treatment, outcome)
        z = (y * t + (1 - y) * (1 - t)).astype(np.int64)
        p = t.mean()
        weights = np.where(t == 1, 0.5 / p, 0.5 / (1 - p))
        self.model = self.make()
        self.model.fit(x, z, sample_weight=weights)
        return self

    def predict(self, X: Any) -> FloatArray:  # noqa: N803
        return 2 * _positive(self.model, np.asarray(X, dtype=np.float64)) - 1


class UpliftModel(Protocol):
    kind: str

    def predict(self, X: Any) -> FloatArray: ...  # noqa: N803


def rank_targets(model: UpliftModel, customers: pl.DataFrame, features: Sequence[str]) -> pl.DataFrame:
    """The next campaign's targets ranked by predicted uplift (rank 1 = most moved by a contact)."""
    missing = [f for f in features if f not in customers.columns]
    if missing:
        raise ValidationError(f"{missing[0]}: the customer data has no such column", field=missing[0])
    x = customers.select([pl.col(f).cast(pl.Float64).fill_null(0.0) for f in features]).to_numpy()
    scored = customers.select("customer_id").with_columns(pl.Series("uplift", model.predict(x)))
    return scored.sort("uplift", descending=True, maintain_order=True).with_row_index("rank", offset=1)


@dataclass(frozen=True)
class UpliftEvaluation:
    """How well a model ranks held-out customers: the raw Qini area and the Qini coefficient (incremental
    converters x population share), the normalised AUUC (0 random, 1 perfect), uplift at the top 10/20/50%,
    the Qini curve, and the customers it was measured on."""

    qini_area: float
    qini_coefficient: float
    auuc_normalised: float
    uplift_at: dict[str, float]
    curve: tuple[list[float], list[float]]
    customers: int = 0


def evaluate(score: FloatArray, treatment: Any, outcome: Any,
             fractions: Sequence[float] = (0.1, 0.2, 0.5)) -> UpliftEvaluation:
    x, q = qini_curve(score, treatment, outcome)
    at: dict[str, float] = {}
    for f in fractions:
        try:
            at[f"{f:.0%}"] = uplift_at_top_k(score, treatment, outcome, f)
        except ValidationError:
            at[f"{f:.0%}"] = float("nan")
    return UpliftEvaluation(qini_area(score, treatment, outcome), qini_coefficient(score, treatment, outcome),
                            auuc_normalised(score, treatment, outcome), at, (x.tolist(), q.tolist()),
                            len(np.asarray(score)))


def qini_chart(evaluation: UpliftEvaluation) -> str:
    """The Qini curve against random targeting, as a base64 PNG (matplotlib's Agg backend)."""
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, q = evaluation.curve
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(x, q, label="model")
    ax.plot([0, 1], [0, q[-1]], linestyle="--", color="grey", label="random")
    ax.set_xlabel("share of customers targeted")
    ax.set_ylabel("incremental conversions")
    ax.set_title(f"Qini curve (area {evaluation.qini_area:.3f}, coefficient {evaluation.qini_coefficient:.3f})")
    ax.legend()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def uplift_report_html(evaluation: UpliftEvaluation, *, title: str = "Uplift model") -> str:
    """One self-contained page: the Qini chart, AUUC, Qini coefficient and uplift at the top k."""
    from pathlib import Path

    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      autoescape=select_autoescape(["html"]))
    return env.get_template("uplift_report.html").render(title=title, ev=evaluation, chart=qini_chart(evaluation))


def holdout_mask(customer_ids: Sequence[int], share_bp: int = 3000, key: str = "uplift-holdout"
                 ) -> npt.NDArray[np.bool_]:
    """A stable random holdout (by sha256 of key and customer id) for evaluating an uplift model."""
    from microlend.marketing.campaigns import control_mask

    return control_mask(key, list(customer_ids), share_bp)
