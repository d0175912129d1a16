"""Model monitoring (模型监控): is the live population still the one the model was developed on, and does the
model still rank once outcomes are known? PSI on scores, CSI per characteristic, AUC/KS by month."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from microlend.core.errors import ValidationError
from microlend.risk.artefacts import Artefact, ScoringModel
from microlend.risk.columns import categorical_values, is_numeric_column, numeric_values
from microlend.risk.datasets import parse_dates
from microlend.risk.gbdt import GbdtModel
from microlend.risk.scorecard import ScorecardModel
from microlend.risk.validation import (
    PSI_ACT,
    PSI_WATCH,
    auc,
    bin_shares,
    ks,
    psi_edges,
    psi_from_shares,
    stability_status,
)


def score_stability(development: Mapping[str, Any], live_scores: np.ndarray) -> dict[str, Any]:
    """PSI of live scores against the development profile saved with the model (its bins and shares)."""
    if not development.get("score_edges"):
        raise ValidationError("model: it was saved without a development score profile", field="model")
    edges = development["score_edges"]
    live = bin_shares(live_scores, edges)
    value = psi_from_shares(development["score_shares"], live)
    return {"psi": value, "status": stability_status(value), "edges": list(edges),
            "development_shares": list(development["score_shares"]), "live_shares": live.tolist()}


def _shares_with_missing(values: pd.Series, reference: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Shares per bin of one feature in the reference and the live data, with missing as its own bin."""
    if is_numeric_column(reference):
        ref = numeric_values(reference, str(reference.name))
        live = numeric_values(values, str(values.name))
        present = ref[~np.isnan(ref)]
        edges = psi_edges(present) if present.size else []
        e = np.asarray(edges, dtype=np.float64)

        def shares(x: np.ndarray) -> np.ndarray:
            idx = np.where(np.isnan(x), len(e) + 1, np.searchsorted(e, np.nan_to_num(x), side="right"))
            return np.bincount(idx, minlength=len(e) + 2) / max(len(x), 1)

        return shares(ref), shares(live)
    ref_text, ref_missing = categorical_values(reference)
    live_text, live_missing = categorical_values(values)
    categories = sorted(set(ref_text[~ref_missing].tolist()))
    index = pd.Index(categories, dtype=object)

    def cat_shares(text: np.ndarray, missing: np.ndarray) -> np.ndarray:
        pos = index.get_indexer(text)
        pos = np.where(missing, len(categories), np.where(pos < 0, len(categories) + 1, pos))
        return np.bincount(pos, minlength=len(categories) + 2) / max(len(text), 1)

    return cat_shares(ref_text, ref_missing), cat_shares(live_text, live_missing)


def characteristic_stability(model: ScoringModel, live: pd.DataFrame,
                             development: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """CSI per feature: a scorecard compares live rows with its own bin counts from development; any model
    compares with a development sample when one is given."""
    rows: list[dict[str, Any]] = []
    if development is None:
        if not isinstance(model, ScorecardModel):
            raise ValidationError("development: give the development sample to compare a GBDT's features",
                                  field="development")
        idx = model.bin_indices(live)
        for j, c in enumerate(model.characteristics):
            expected = np.array([*c.counts, c.missing_count, 0], dtype=np.float64)
            expected /= expected.sum()
            counts = np.bincount(idx[:, j], minlength=len(expected))
            actual = counts / max(len(live), 1)
            value = psi_from_shares(expected, actual)
            rows.append({"feature": c.name, "csi": value, "status": stability_status(value),
                         "unseen": int(counts[-1]) if c.has_categories else 0})
    else:
        for f in model.features:
            if f not in live.columns:
                raise ValidationError(f"{f}: column is missing from the live data", field=f)
            expected, actual = _shares_with_missing(live[f].rename(f), development[f].rename(f))
            value = psi_from_shares(expected, actual)
            rows.append({"feature": f, "csi": value, "status": stability_status(value)})
    missing_unseen: dict[str, tuple[int, int]] = (
        model.missing_and_unseen(live) if isinstance(model, ScorecardModel | GbdtModel) else {})
    for row in rows:
        row["missing"], row["unseen"] = missing_unseen.get(row["feature"], (0, 0))
    return sorted(rows, key=lambda r: -r["csi"])


def performance_by_month(dates: pd.Series, y: np.ndarray, pd_: np.ndarray) -> pd.DataFrame:
    """AUC and KS per application month, once outcomes are known; months with one class only get NaN."""
    months = parse_dates(dates, str(dates.name or "dates"))
    frame = pd.DataFrame({"month": months.dt.strftime("%Y-%m").to_numpy(), "y": np.asarray(y), "pd": pd_})
    rows = []
    for month, g in frame.groupby("month", sort=True):
        both = 0 < g["y"].sum() < len(g)
        rows.append({"month": month, "count": len(g), "bad_rate": float(g["y"].mean()),
                     "auc": auc(g["y"], g["pd"]) if both else float("nan"),
                     "ks": ks(g["y"], g["pd"]) if both else float("nan")})
    return pd.DataFrame(rows, columns=["month", "count", "bad_rate", "auc", "ks"])


def monitor(artefact: Artefact, live: pd.DataFrame, *, date_column: str | None = None,
            development: pd.DataFrame | None = None) -> dict[str, Any]:
    """Stability of scores and characteristics, and performance by month when the live data has outcomes."""
    model, meta = artefact.model, artefact.metadata
    scored = model.score_batch(live, with_reasons=False)
    result: dict[str, Any] = {
        "rows": len(live),
        "score": score_stability(meta.development, scored["score"].to_numpy()),
        "characteristics": characteristic_stability(model, live, development),
    }
    if "unseen" in scored.columns:
        result["unseen_rows"] = int((scored["unseen"] > 0).sum())
    result["missing_unseen"] = [{"feature": r["feature"], "missing": r["missing"], "unseen": r["unseen"]}
                                for r in result["characteristics"] if r["missing"] or r["unseen"]]
    y, result["performance"] = performance(live, meta.target, meta.bad, scored["pd"].to_numpy())
    if y is not None and date_column is not None:
        if date_column not in live.columns:
            raise ValidationError(f"date_column: no column named '{date_column}'", field="date_column")
        table = performance_by_month(live[date_column], y, scored["pd"].to_numpy())
        result["performance_by_month"] = table.replace({np.nan: None}).to_dict("records")
    return result


#: performance status when the live outcomes hold only goods or only bads: stability is still measured
NOT_ENOUGH_OUTCOMES = "not enough outcomes"


def performance(live: pd.DataFrame, target: str, bad: str,
                pd_: np.ndarray) -> tuple[np.ndarray | None, dict[str, Any]]:
    """AUC and KS once outcomes are known; without both goods and bads the performance is marked
    'not enough outcomes' (and without a complete outcome column 'no outcomes') instead of failing."""
    if target not in live.columns or not live[target].notna().all():
        return None, {"status": "no outcomes", "count": len(live)}
    y = (live[target].astype(str).to_numpy() == str(bad)).astype(np.int8)
    bads = int(y.sum())
    figures: dict[str, Any] = {"count": len(y), "bads": bads, "goods": len(y) - bads}
    if bads == 0 or bads == len(y):
        return None, {**figures, "status": NOT_ENOUGH_OUTCOMES}
    return y, {**figures, "status": "measured", "auc": auc(y, pd_), "ks": ks(y, pd_)}


# --- the worker's monitoring of the models in use ---------------------------------------------------------------


@dataclass(frozen=True)
class MonitoringThresholds:
    """When a monitoring run raises an alert (预警阈值): PSI of the scores or CSI of a characteristic from `psi_watch`
    (watch) and from `psi_act` (act); AUC below `auc_floor` or more than `auc_drop` under the development AUC,
    KS below `ks_floor` (act); a score band whose observed bad rate is more than `band_bad_rate_ratio` times the
    PD the model gave it (watch). Performance is judged only on at least `min_outcomes` loans with both goods and
    bads, drift only on at least `min_cases` recent cases."""

    psi_watch: float = PSI_WATCH
    psi_act: float = PSI_ACT
    auc_floor: float = 0.60
    auc_drop: float = 0.05
    ks_floor: float = 0.20
    band_bad_rate_ratio: float = 2.0
    min_cases: int = 30
    min_outcomes: int = 30

    def psi_status(self, value: float) -> str:
        return "act" if value >= self.psi_act else "watch" if value >= self.psi_watch else "stable"


@dataclass(frozen=True)
class MonitoredCase:
    """One case a version scored live: when, its score and PD, what it saw, and (once known) whether it went bad."""

    scored_on: date
    score: float
    pd: float
    features: Mapping[str, Any]
    bad: bool | None = None


def _worst(statuses: Sequence[str]) -> str:
    return "act" if "act" in statuses else "watch" if "watch" in statuses else "stable"


def monitoring_run(recent: Sequence[MonitoredCase], reference: Sequence[MonitoredCase], features: Sequence[str], *,
                   judged: Sequence[MonitoredCase] | None = None, development: Mapping[str, Any] | None = None,
                   development_auc: float | None = None,
                   thresholds: MonitoringThresholds | None = None) -> dict[str, Any]:
    """Drift of the recent cases against the reference (the development profile of the scores when the model has
    one, else the reference cases: the model's first live months), CSI per feature the cases carry, and AUC, KS
    and bad rate by score band on the `judged` cases whose outcome is known (by default the recent and reference
    ones); with the alerts the thresholds raise."""
    t = thresholds or MonitoringThresholds()
    result: dict[str, Any] = {"cases": len(recent), "reference_cases": len(reference), "score": None,
                              "characteristics": [], "performance": None, "bands": [], "alerts": [],
                              "thresholds": asdict(t)}
    alerts: list[dict[str, Any]] = result["alerts"]
    scores = np.array([c.score for c in recent], dtype=np.float64)
    if len(recent) >= t.min_cases:
        if development and development.get("score_edges"):
            edges = list(development["score_edges"])
            expected = np.asarray(development["score_shares"], dtype=np.float64)
            result["reference"] = "development"
        elif len(reference) >= t.min_cases:
            ref_scores = np.array([c.score for c in reference], dtype=np.float64)
            edges = psi_edges(ref_scores)
            expected = bin_shares(ref_scores, edges)
            result["reference"] = "first_live_months"
        else:
            edges, expected = [], np.array([])
        if len(expected):
            value = psi_from_shares(expected, bin_shares(scores, edges))
            result["score"] = {"psi": value, "status": t.psi_status(value)}
            if value >= t.psi_watch:
                alerts.append({"what": "score_psi", "subject": "score", "value": value, "status": t.psi_status(value)})
        if len(reference) >= t.min_cases:
            recent_frame = pd.DataFrame([dict(c.features) for c in recent])
            ref_frame = pd.DataFrame([dict(c.features) for c in reference])
            for name in features:
                if name not in recent_frame.columns or name not in ref_frame.columns:
                    continue
                if ref_frame[name].isna().all():
                    continue
                try:
                    expected_f, actual_f = _shares_with_missing(recent_frame[name].rename(name),
                                                                ref_frame[name].rename(name))
                except ValidationError:  # a column of mixed kinds cannot be binned: not measured
                    continue
                value = psi_from_shares(expected_f, actual_f)
                result["characteristics"].append({"feature": name, "csi": value, "status": t.psi_status(value)})
                if value >= t.psi_watch:
                    alerts.append({"what": "csi", "subject": name, "value": value, "status": t.psi_status(value)})
            result["characteristics"].sort(key=lambda r: -r["csi"])
    known = [c for c in (judged if judged is not None else [*recent, *reference]) if c.bad is not None]
    y = np.array([1 if c.bad else 0 for c in known], dtype=np.int8)
    pd_ = np.array([c.pd for c in known], dtype=np.float64)
    figures: dict[str, Any] = {"count": len(known), "bads": int(y.sum()), "goods": int(len(y) - y.sum())}
    if len(known) < t.min_outcomes or y.sum() == 0 or y.sum() == len(y):
        result["performance"] = {**figures, "status": NOT_ENOUGH_OUTCOMES}
    else:
        auc_value, ks_value = auc(y, pd_), ks(y, pd_)
        floor = t.auc_floor if development_auc is None else max(t.auc_floor, development_auc - t.auc_drop)
        status = "act" if auc_value < floor or ks_value < t.ks_floor else "stable"
        result["performance"] = {**figures, "status": status, "auc": auc_value, "ks": ks_value,
                                 "bad_rate": float(y.mean()), "auc_floor": floor}
        if auc_value < floor:
            alerts.append({"what": "auc", "subject": "performance", "value": auc_value, "status": "act"})
        if ks_value < t.ks_floor:
            alerts.append({"what": "ks", "subject": "performance", "value": ks_value, "status": "act"})
        known_scores = np.array([c.score for c in known], dtype=np.float64)
        band_edges = [float(v) for v in np.unique(np.quantile(known_scores, [0.2, 0.4, 0.6, 0.8]))]
        band = np.searchsorted(np.asarray(band_edges), known_scores, side="right")
        lows, highs = [None, *band_edges], [*band_edges, None]
        for b in range(len(band_edges) + 1):
            members = band == b
            n = int(members.sum())
            if not n:
                continue
            observed, expected_pd = float(y[members].mean()), float(pd_[members].mean())
            row_status = ("watch" if expected_pd > 0 and observed > t.band_bad_rate_ratio * expected_pd
                          and int(y[members].sum()) >= 3 else "stable")
            result["bands"].append({"band": b + 1, "score_from": lows[b], "score_to": highs[b], "count": n,
                                    "bads": int(y[members].sum()), "bad_rate": observed, "mean_pd": expected_pd,
                                    "status": row_status})
            if row_status != "stable":
                alerts.append({"what": "band_bad_rate", "subject": f"band {b + 1}", "value": observed,
                               "status": row_status})
    result["status"] = _worst([a["status"] for a in alerts])
    return result
