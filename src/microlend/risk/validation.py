"""Model validation metrics (模型验证): discrimination, calibration and stability, as pure functions.

`y` is 1 for bad and 0 for good; `pd` is the predicted probability of bad (higher = riskier)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from microlend.core.errors import ValidationError

#: PSI / CSI alert levels: below WATCH is stable, from ACT on the model needs attention.
PSI_WATCH = 0.10
PSI_ACT = 0.25
_FLOOR = 1e-4  # share used for an empty bin so the logarithm stays finite


def _arrays(y: ArrayLike, p: ArrayLike) -> tuple[NDArray[np.int8], NDArray[np.float64]]:
    ya = np.asarray(y).astype(np.int8)
    pa = np.asarray(p, dtype=np.float64)
    if ya.shape != pa.shape or ya.ndim != 1:
        raise ValidationError("outcomes and predictions must be two columns of the same length")
    if ya.sum() == 0 or ya.sum() == len(ya):
        raise ValidationError("outcomes: need both good and bad cases to measure discrimination")
    return ya, pa


def auc(y: ArrayLike, pd_: ArrayLike) -> float:
    """Area under the ROC curve: the chance a random bad case is ranked riskier than a random good one."""
    ya, pa = _arrays(y, pd_)
    ranks = pd.Series(pa).rank(method="average").to_numpy()
    n_bad = int(ya.sum())
    n_good = len(ya) - n_bad
    return float((ranks[ya == 1].sum() - n_bad * (n_bad + 1) / 2) / (n_bad * n_good))


def gini(y: ArrayLike, pd_: ArrayLike) -> float:
    """Accuracy ratio: 2 * AUC - 1."""
    return 2 * auc(y, pd_) - 1


def _cumulative_shares(ya: NDArray[np.int8], pa: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
    """Cumulative bad and good shares, walking from the riskiest prediction down, one step per distinct pd."""
    order = np.argsort(-pa, kind="stable")
    ys, ps = ya[order], pa[order]
    last_of_group = np.r_[ps[1:] != ps[:-1], True]
    cum_bad = np.cumsum(ys)[last_of_group] / ys.sum()
    cum_good = np.cumsum(1 - ys)[last_of_group] / (len(ys) - ys.sum())
    return np.r_[0.0, cum_bad], np.r_[0.0, cum_good]


def ks(y: ArrayLike, pd_: ArrayLike) -> float:
    """Kolmogorov-Smirnov: the widest gap between the cumulative bad and good distributions."""
    ya, pa = _arrays(y, pd_)
    cum_bad, cum_good = _cumulative_shares(ya, pa)
    return float(np.max(np.abs(cum_bad - cum_good)))


def roc_points(y: ArrayLike, pd_: ArrayLike, max_points: int = 200) -> dict[str, list[float]]:
    """False- and true-positive rates for the ROC chart, thinned to at most `max_points`."""
    ya, pa = _arrays(y, pd_)
    tpr, fpr = _cumulative_shares(ya, pa)
    if len(tpr) > max_points:
        keep = np.unique(np.linspace(0, len(tpr) - 1, max_points).round().astype(int))
        tpr, fpr = tpr[keep], fpr[keep]
    return {"fpr": [round(float(v), 5) for v in fpr], "tpr": [round(float(v), 5) for v in tpr]}


def discrimination(y: ArrayLike, pd_: ArrayLike) -> dict[str, float]:
    """AUC, Gini, KS, count and bad rate of one sample."""
    ya, _ = _arrays(y, pd_)
    a = auc(y, pd_)
    return {"auc": a, "gini": 2 * a - 1, "ks": ks(y, pd_), "count": float(len(ya)), "bad_rate": float(ya.mean())}


def _equal_count_groups(pa: NDArray[np.float64], n_groups: int) -> NDArray[np.intp]:
    """Group 0 holds the riskiest tenth (for 10 groups), and so on; ties are split by order."""
    order = np.argsort(-pa, kind="stable")
    group = np.empty(len(pa), dtype=np.intp)
    for g, idx in enumerate(np.array_split(order, n_groups)):
        group[idx] = g
    return group


def gains_table(y: ArrayLike, pd_: ArrayLike, n_groups: int = 10) -> pd.DataFrame:
    """Gains and lift by decile, riskiest first: how many bads each slice of the book catches."""
    ya, pa = _arrays(y, pd_)
    group = _equal_count_groups(pa, n_groups)
    frame = pd.DataFrame({"group": group + 1, "bad": ya, "pd": pa})
    t = frame.groupby("group").agg(count=("bad", "size"), bads=("bad", "sum"), min_pd=("pd", "min"),
                                   max_pd=("pd", "max")).reset_index()
    overall = ya.mean()
    t["bad_rate"] = t["bads"] / t["count"]
    t["cum_population_share"] = t["count"].cumsum() / len(ya)
    t["cum_bad_share"] = t["bads"].cumsum() / ya.sum()
    t["lift"] = t["bad_rate"] / overall
    t["cum_lift"] = (t["bads"].cumsum() / t["count"].cumsum()) / overall
    return t.rename(columns={"group": "decile"})


def calibration_table(y: ArrayLike, pd_: ArrayLike, n_bands: int = 10) -> pd.DataFrame:
    """Predicted against observed bad rate per pd band (equal counts, riskiest first)."""
    ya, pa = _arrays(y, pd_)
    group = _equal_count_groups(pa, n_bands)
    frame = pd.DataFrame({"band": group + 1, "bad": ya, "pd": pa})
    return frame.groupby("band").agg(count=("bad", "size"), predicted_bad_rate=("pd", "mean"),
                                     observed_bad_rate=("bad", "mean")).reset_index()


def score_distribution(y: ArrayLike, score: ArrayLike, edges: Sequence[float] | None = None,
                       n_bins: int = 12) -> pd.DataFrame:
    """Counts of good and bad cases per score band (equal-width bands over the range unless given)."""
    ya = np.asarray(y).astype(np.int8)
    sa = np.asarray(score, dtype=np.float64)
    if edges is None:
        lo, hi = np.floor(sa.min()), np.ceil(sa.max())
        edges = np.linspace(lo, hi if hi > lo else lo + 1, n_bins + 1).tolist()
    e = np.asarray(edges, dtype=np.float64)
    band = np.clip(np.searchsorted(e, sa, side="right") - 1, 0, len(e) - 2)
    rows = []
    for b in range(len(e) - 1):
        in_band = band == b
        rows.append({"from": float(e[b]), "to": float(e[b + 1]), "good": int((in_band & (ya == 0)).sum()),
                     "bad": int((in_band & (ya == 1)).sum())})
    return pd.DataFrame(rows)


def psi_edges(expected: ArrayLike, n_bins: int = 10) -> list[float]:
    """Interior bin edges at the quantiles of the expected (development) values."""
    e = np.asarray(expected, dtype=np.float64)
    e = e[~np.isnan(e)]
    if e.size == 0:
        raise ValidationError("expected: no values to take bins from")
    qs = np.quantile(e, np.linspace(0, 1, n_bins + 1)[1:-1])
    return [float(v) for v in np.unique(qs)]


def bin_shares(values: ArrayLike, edges: Sequence[float]) -> NDArray[np.float64]:
    """Share of values in each bin: (-inf, e0), [e0, e1), ... [e_last, inf)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        raise ValidationError("values: nothing to measure")
    counts = np.bincount(np.searchsorted(np.asarray(edges, dtype=np.float64), v, side="right"),
                         minlength=len(edges) + 1)
    return np.asarray(counts / v.size, dtype=np.float64)


def psi_from_shares(expected: ArrayLike, actual: ArrayLike) -> float:
    """Population stability index: sum of (actual - expected) * ln(actual / expected) over bins."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), _FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), _FLOOR)
    if e.shape != a.shape:
        raise ValidationError("expected and actual need the same bins")
    return float(np.sum((a - e) * np.log(a / e)))


def psi(expected: ArrayLike, actual: ArrayLike, n_bins: int = 10) -> float:
    """PSI of `actual` against `expected`, with bins taken from `expected` (群体稳定性指标)."""
    edges = psi_edges(expected, n_bins)
    return psi_from_shares(bin_shares(expected, edges), bin_shares(actual, edges))


def psi_table(expected: ArrayLike, actual: ArrayLike, n_bins: int = 10) -> pd.DataFrame:
    edges = psi_edges(expected, n_bins)
    e, a = bin_shares(expected, edges), bin_shares(actual, edges)
    lows = [-np.inf, *edges]
    highs = [*edges, np.inf]
    ef, af = np.maximum(e, _FLOOR), np.maximum(a, _FLOOR)
    return pd.DataFrame({"from": lows, "to": highs, "expected_share": e, "actual_share": a,
                         "contribution": (af - ef) * np.log(af / ef)})


def stability_status(value: float) -> str:
    """'stable' below 0.10, 'watch' up to 0.25, 'act' from 0.25."""
    if value >= PSI_ACT:
        return "act"
    return "watch" if value >= PSI_WATCH else "stable"


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """A table as JSON-ready rows (infinite edges as None)."""
    clean = table.replace([np.inf, -np.inf], np.nan).astype(object)
    clean = clean.where(pd.notna(clean), None)
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in clean.to_dict("records")]


# --- what a validator signs: uncertainty and calibration tests --------------------------------------------

#: bootstrap resamples behind the confidence intervals of AUC, Gini and KS (seeded, so a report is repeatable)
BOOTSTRAP_RESAMPLES = 200


def bootstrap_intervals(y: ArrayLike, pd_: ArrayLike, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 42,
                        level: float = 0.95) -> dict[str, dict[str, float]]:
    """Percentile bootstrap intervals of AUC, Gini and KS: resample the cases with replacement (stratified,
    so every resample has goods and bads) and take the middle `level` of each figure."""
    ya, pa = _arrays(y, pd_)
    rng = np.random.default_rng(seed)
    bads, goods = np.flatnonzero(ya == 1), np.flatnonzero(ya == 0)
    aucs = np.empty(resamples)
    kss = np.empty(resamples)
    for i in range(resamples):
        idx = np.r_[rng.choice(bads, len(bads)), rng.choice(goods, len(goods))]
        aucs[i] = auc(ya[idx], pa[idx])
        kss[i] = ks(ya[idx], pa[idx])
    tail = (1 - level) / 2 * 100
    out: dict[str, dict[str, float]] = {}
    for name, values in (("auc", aucs), ("gini", 2 * aucs - 1), ("ks", kss)):
        low, high = np.percentile(values, [tail, 100 - tail])
        out[name] = {"low": float(low), "high": float(high), "width": float(high - low)}
    out["resamples"] = {"count": float(resamples), "seed": float(seed), "level": level}
    return out


def hosmer_lemeshow(y: ArrayLike, pd_: ArrayLike, n_groups: int = 10) -> dict[str, float]:
    """Hosmer-Lemeshow test over equal-count pd groups: chi-square of observed against expected bads and goods
    with groups - 2 degrees of freedom; a small p-value says the pds are not calibrated."""
    from scipy.stats import chi2

    ya, pa = _arrays(y, pd_)
    group = _equal_count_groups(pa, n_groups)
    statistic = 0.0
    used = 0
    for g in range(n_groups):
        member = group == g
        n = int(member.sum())
        if n == 0:
            continue
        used += 1
        expected = float(pa[member].sum())
        observed = float(ya[member].sum())
        variance = expected * (1 - expected / n)
        if variance > 0:
            statistic += (observed - expected) ** 2 / variance
    df = max(used - 2, 1)
    return {"statistic": statistic, "df": float(df), "p_value": float(chi2.sf(statistic, df)),
            "groups": float(used)}


def binomial_by_grade(y: ArrayLike, pd_: ArrayLike, n_grades: int = 10, alpha: float = 0.05) -> pd.DataFrame:
    """Per grade (equal-count pd band, riskiest first): the observed bads against a binomial with the grade's
    mean pd; `p_value` two-sided, and `result` 'too many bads', 'too few bads' or 'consistent' at `alpha`."""
    from scipy.stats import binomtest

    ya, pa = _arrays(y, pd_)
    group = _equal_count_groups(pa, n_grades)
    rows = []
    for g in range(n_grades):
        member = group == g
        n = int(member.sum())
        if n == 0:
            continue
        bads = int(ya[member].sum())
        mean_pd = float(np.clip(pa[member].mean(), 1e-9, 1 - 1e-9))
        p_value = float(binomtest(bads, n, mean_pd).pvalue)
        result = "consistent" if p_value >= alpha else ("too many bads" if bads > n * mean_pd else
                                                         "too few bads")
        rows.append({"grade": g + 1, "count": n, "bads": bads, "expected_bads": n * mean_pd,
                     "mean_pd": mean_pd, "observed_bad_rate": bads / n, "p_value": p_value, "result": result})
    return pd.DataFrame(rows, columns=["grade", "count", "bads", "expected_bads", "mean_pd", "observed_bad_rate",
                                       "p_value", "result"])
