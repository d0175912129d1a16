"""Scorecards (评分卡): optimal binning, WoE, IV and correlation selection, logistic regression, PDO points.

Training uses optbinning and scikit-learn; scoring uses only the points table held here (numpy for a batch,
plain Python for one case), so a saved scorecard scores without either library and without pickle."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from microlend.core.errors import ValidationError
from microlend.risk.columns import categorical_values, numeric_values, refuse_type_drift, split_kinds
from microlend.risk.datasets import bad_flag
from microlend.risk.preparation import (
    RARE_LABEL,
    CategoryRules,
    Preparation,
    ordinal_groups,
    ordinal_label,
    plan,
    training_matrix,
)
from microlend.risk.reasons import Reason, top_reason_codes

NUMERIC = "numeric"
CATEGORICAL = "categorical"
#: categories declared in a risk order (the dataset contract's `ordered`), binned monotonically on their rank
ORDINAL = "ordinal"


# --- points scaling (刻度): pure functions ---------------------------------------------------------------

def factor(pdo: float) -> float:
    """Points per unit of ln(odds): doubling the odds adds `pdo` points."""
    if pdo <= 0:
        raise ValidationError("pdo: must be positive", field="pdo")
    return pdo / math.log(2)


def offset(base_points: float, base_odds: float, pdo: float) -> float:
    """Score at odds 1:1, so that odds `base_odds` (good:bad) score exactly `base_points`."""
    if base_odds <= 0:
        raise ValidationError("base_odds: must be positive", field="base_odds")
    return base_points - factor(pdo) * math.log(base_odds)


@dataclass(frozen=True)
class PointsScaling:
    """PDO scaling: `base_points` at good:bad odds `base_odds`, `pdo` points to double the odds."""

    base_points: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0

    def __post_init__(self) -> None:
        factor(self.pdo)
        offset(self.base_points, self.base_odds, self.pdo)

    @property
    def factor(self) -> float:
        return factor(self.pdo)

    @property
    def offset(self) -> float:
        return offset(self.base_points, self.base_odds, self.pdo)

    def score_from_log_odds_bad(self, log_odds_bad: float) -> float:
        """Higher is safer: score = offset + factor * ln(good:bad odds)."""
        return self.offset - self.factor * log_odds_bad

    def pd_from_score(self, score: float) -> float:
        return 1.0 / (1.0 + math.exp((score - self.offset) / self.factor))

    def to_dict(self) -> dict[str, float]:
        return {"base_points": self.base_points, "base_odds": self.base_odds, "pdo": self.pdo}


# --- feature selection: pure functions --------------------------------------------------------------------

def select_by_iv(iv: Mapping[str, float], min_iv: float = 0.02) -> list[str]:
    """Features whose information value reaches `min_iv`, strongest first."""
    return [name for name, value in sorted(iv.items(), key=lambda kv: (-kv[1], kv[0])) if value >= min_iv]


def select_by_correlation(
    woe: pd.DataFrame, iv: Mapping[str, float], max_correlation: float = 0.7
) -> tuple[list[str], dict[str, str]]:
    """Walk features from the highest IV down; drop one whose |corr| with a kept feature exceeds the limit."""
    ordered = sorted(woe.columns, key=lambda c: (-iv[c], c))
    corr = woe[ordered].corr().abs().fillna(0.0)
    kept: list[str] = []
    dropped: dict[str, str] = {}
    for name in ordered:
        clash = next((k for k in kept if corr.loc[name, k] > max_correlation), None)
        if clash is None:
            kept.append(name)
        else:
            dropped[name] = f"|corr| {corr.loc[name, clash]:.2f} with {clash} (IV {iv[clash]:.3f})"
    return kept, dropped


# --- the scorecard ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Characteristic:
    """One feature of a scorecard with its bins (分箱) and the WoE of each; points follow from the model."""

    name: str
    kind: str
    labels: tuple[str, ...]
    woe: tuple[float, ...]
    counts: tuple[int, ...]
    event_rates: tuple[float, ...]
    coefficient: float
    iv: float
    splits: tuple[float, ...] = ()
    categories: tuple[tuple[str, ...], ...] = ()
    missing_woe: float = 0.0
    missing_count: int = 0
    unseen_woe: float = 0.0
    missing_event_rate: float = 0.0
    rare: tuple[str, ...] = ()  # levels grouped into RARE_LABEL's bin (a column over the category cap)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "name": self.name, "kind": self.kind, "labels": list(self.labels), "woe": list(self.woe),
            "counts": list(self.counts), "event_rates": list(self.event_rates),
            "coefficient": self.coefficient, "iv": self.iv, "splits": list(self.splits),
            "categories": [list(c) for c in self.categories], "missing_woe": self.missing_woe,
            "missing_count": self.missing_count, "unseen_woe": self.unseen_woe,
        }
        if self.missing_count:
            out["missing_event_rate"] = self.missing_event_rate
        if self.rare:
            out["rare"] = list(self.rare)
        return out

    @property
    def has_categories(self) -> bool:
        return self.kind != NUMERIC

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Characteristic:
        return cls(
            name=str(d["name"]), kind=str(d["kind"]), labels=tuple(d["labels"]),
            woe=tuple(float(w) for w in d["woe"]), counts=tuple(int(c) for c in d["counts"]),
            event_rates=tuple(float(r) for r in d["event_rates"]), coefficient=float(d["coefficient"]),
            iv=float(d["iv"]), splits=tuple(float(s) for s in d["splits"]),
            categories=tuple(tuple(str(x) for x in c) for c in d["categories"]),
            missing_woe=float(d["missing_woe"]), missing_count=int(d["missing_count"]),
            unseen_woe=float(d["unseen_woe"]), missing_event_rate=float(d.get("missing_event_rate", 0.0)),
            rare=tuple(str(x) for x in d.get("rare", ())),
        )


@dataclass
class _Lookup:
    """Precomputed scoring tables of one characteristic: points per bin, then missing, then unseen."""

    name: str
    numeric: bool
    points: NDArray[np.float64]
    points_list: list[float]
    splits: NDArray[np.float64]
    splits_list: list[float]
    category_index: pd.Index
    category_bins: NDArray[np.intp]
    category_map: dict[str, int]
    max_points: float


class ScorecardModel:
    """A fitted scorecard: sum of points per characteristic; pd from the same log-odds."""

    kind = "scorecard"

    def __init__(self, characteristics: Sequence[Characteristic], intercept: float,
                 scaling: PointsScaling | None = None) -> None:
        if not characteristics:
            raise ValidationError("features: a scorecard needs at least one characteristic")
        self.characteristics = list(characteristics)
        self.intercept = float(intercept)
        self.scaling = scaling or PointsScaling()
        self.features = [c.name for c in self.characteristics]
        share = (self.scaling.offset - self.scaling.factor * self.intercept) / len(self.characteristics)
        self.base_share = share
        self._lookups = [self._lookup(c, share) for c in self.characteristics]
        self._max_total = float(sum(lk.max_points for lk in self._lookups))

    def _lookup(self, c: Characteristic, share: float) -> _Lookup:
        """Points per bin; a missing value not seen in training and an unseen category get the lowest points
        of the characteristic (the most conservative), never the neutral ones."""
        def pts(woe: float) -> float:
            return -self.scaling.factor * c.coefficient * woe + share

        regular = [pts(w) for w in c.woe]
        worst = min(regular)
        missing = pts(c.missing_woe) if c.missing_count > 0 else worst
        points = np.array([*regular, missing, worst], dtype=np.float64)
        categories: list[str] = []
        bins: list[int] = []
        for b, group in enumerate(c.categories):
            for cat in group:
                categories.append(cat)
                bins.append(b)
                if cat == RARE_LABEL:
                    categories.extend(c.rare)
                    bins.extend([b] * len(c.rare))
        splits = np.array(c.splits, dtype=np.float64)
        return _Lookup(
            name=c.name, numeric=c.kind == NUMERIC, points=points, points_list=points.tolist(),
            splits=splits, splits_list=splits.tolist(), category_index=pd.Index(categories, dtype=object),
            category_bins=np.array(bins, dtype=np.intp),
            category_map=dict(zip(categories, bins, strict=True)),
            max_points=float(points[: len(c.woe)].max()),
        )

    # -- bins and points --------------------------------------------------------------------------------

    def bin_indices(self, frame: pd.DataFrame) -> NDArray[np.intp]:
        """Bin number per row and characteristic; n_bins means missing and n_bins + 1 an unseen category."""
        missing_cols = [f for f in self.features if f not in frame.columns]
        if missing_cols:
            raise ValidationError(f"{missing_cols[0]}: column is missing from the data "
                                  f"(the model needs: {', '.join(missing_cols)})", field=missing_cols[0])
        out = np.empty((len(frame), len(self._lookups)), dtype=np.intp)
        for j, lk in enumerate(self._lookups):
            n_bins = len(lk.points) - 2
            if lk.numeric:
                x = numeric_values(frame[lk.name], lk.name)
                idx = np.searchsorted(lk.splits, x, side="right")
                idx[np.isnan(x)] = n_bins
            else:
                values, is_missing = categorical_values(frame[lk.name])
                pos = lk.category_index.get_indexer(values)
                idx = np.where(pos >= 0, lk.category_bins[np.maximum(pos, 0)] if len(lk.category_bins) else 0,
                               n_bins + 1)
                idx[is_missing] = n_bins
            out[:, j] = idx
        return out

    def _points(self, idx: NDArray[np.intp]) -> NDArray[np.float64]:
        pts = np.empty(idx.shape, dtype=np.float64)
        for j, lk in enumerate(self._lookups):
            pts[:, j] = lk.points[idx[:, j]]
        return pts

    def points_matrix(self, frame: pd.DataFrame) -> NDArray[np.float64]:
        return self._points(self.bin_indices(frame))

    def _unseen_mask(self, idx: NDArray[np.intp]) -> NDArray[np.bool_]:
        unseen_bin = np.array([len(lk.points) - 1 for lk in self._lookups], dtype=np.intp)
        mask: NDArray[np.bool_] = idx == unseen_bin
        return mask

    def unseen_counts(self, frame: pd.DataFrame) -> dict[str, int]:
        """Rows per characteristic whose category was never seen in training (scored at its lowest points)."""
        mask = self._unseen_mask(self.bin_indices(frame))
        return {lk.name: int(mask[:, j].sum()) for j, lk in enumerate(self._lookups) if not lk.numeric}

    def missing_and_unseen(self, frame: pd.DataFrame) -> dict[str, tuple[int, int]]:
        """Per characteristic: rows with a missing value and rows with a category never seen in training."""
        idx = self.bin_indices(frame)
        out: dict[str, tuple[int, int]] = {}
        for j, lk in enumerate(self._lookups):
            n_bins = len(lk.points) - 2
            out[lk.name] = (int((idx[:, j] == n_bins).sum()), int((idx[:, j] == n_bins + 1).sum()))
        return out

    def unseen_features(self, case: Mapping[str, Any]) -> list[str]:
        """The characteristics of one case whose category was never seen in training."""
        out = []
        for lk in self._lookups:
            value = case.get(lk.name)
            if lk.numeric or value is None or (isinstance(value, float) and value != value):
                continue
            if _category_text(value) not in lk.category_map:
                out.append(lk.name)
        return out

    def score_batch(self, frame: pd.DataFrame, *, top_n: int = 3, with_reasons: bool = True) -> pd.DataFrame:
        """pd, score, reason codes ("a;b;c": the characteristics furthest below their neutral points, the points
        of a WoE of 0, i.e. of the average applicant; none at or above it) and `unseen`,
        how many of a row's characteristics had a category never seen in training."""
        idx = self.bin_indices(frame)
        pts = self._points(idx)
        score = pts.sum(axis=1)
        pd_ = 1.0 / (1.0 + np.exp((score - self.scaling.offset) / self.scaling.factor))
        out = pd.DataFrame({"pd": pd_, "score": score, "unseen": self._unseen_mask(idx).sum(axis=1)},
                           index=frame.index)
        if with_reasons:
            out["reasons"] = top_reason_codes(self.base_share - pts, self.features, top_n)
        return out

    def score_one(self, case: Mapping[str, Any], *, top_n: int = 3) -> tuple[float, float, list[Reason]]:
        """One applicant (a dict of feature values; absent keys count as missing) -> (pd, score, reasons)."""
        total = 0.0
        shortfalls: list[tuple[float, int, str]] = []
        for j, lk in enumerate(self._lookups):
            value = case.get(lk.name)
            n_bins = len(lk.points_list) - 2
            if value is None or (isinstance(value, float) and value != value):
                idx = n_bins
            elif lk.numeric:
                try:
                    x = float(value)
                except (TypeError, ValueError):
                    raise ValidationError(f"{lk.name}: expected a number, got {value!r}",
                                          field=lk.name) from None
                idx = n_bins if x != x else bisect_right(lk.splits_list, x)
            else:
                idx = lk.category_map.get(_category_text(value), n_bins + 1)
            p = lk.points_list[idx]
            total += p
            lost = self.base_share - p
            if lost > 0:
                shortfalls.append((-lost, j, lk.name))
        shortfalls.sort()
        reasons = [Reason(name, -neg) for neg, _, name in shortfalls[:top_n]]
        pd_ = 1.0 / (1.0 + math.exp((total - self.scaling.offset) / self.scaling.factor))
        return pd_, total, reasons

    # -- tables and persistence -------------------------------------------------------------------------

    def points_table(self) -> pd.DataFrame:
        """One row per characteristic and bin (with Missing and Unseen), the table a bank prints and files."""
        rows: list[dict[str, Any]] = []
        for c, lk in zip(self.characteristics, self._lookups, strict=True):
            labels = [*c.labels, "Missing"] + (["Unseen category"] if c.has_categories else [])
            woes = [*c.woe, c.missing_woe, c.unseen_woe]
            counts = [*c.counts, c.missing_count, 0]
            for b, label in enumerate(labels):
                rows.append({"feature": c.name, "bin": label, "points": round(float(lk.points[b]), 2),
                             "woe": round(woes[b], 6), "count": counts[b]})
        return pd.DataFrame(rows, columns=["feature", "bin", "points", "woe", "count"])

    def export_points_table(self, path: str | Path) -> Path:
        """Write the points table as .csv or .xlsx (by the file's suffix)."""
        path = Path(path)
        table = self.points_table()
        if path.suffix.lower() == ".csv":
            table.to_csv(path, index=False)
        elif path.suffix.lower() == ".xlsx":
            table.to_excel(path, index=False, sheet_name="points", engine="openpyxl")
        else:
            raise ValidationError(f"out: use a .csv or .xlsx file name, not '{path.name}'", field="out")
        return path

    def iv_table(self) -> pd.DataFrame:
        return pd.DataFrame(
            [{"feature": c.name, "iv": c.iv, "coefficient": c.coefficient, "bins": len(c.labels)}
             for c in self.characteristics]
        ).sort_values("iv", ascending=False, ignore_index=True)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "intercept": self.intercept, "scaling": self.scaling.to_dict(),
                "characteristics": [c.to_dict() for c in self.characteristics]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScorecardModel:
        return cls([Characteristic.from_dict(c) for c in d["characteristics"]], float(d["intercept"]),
                   PointsScaling(**{k: float(v) for k, v in d["scaling"].items()}))


def _category_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- training -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScorecardConfig:
    """How to develop a scorecard; the defaults are the bank's standard. `ordinal` maps a column to its levels
    in risk order (from the dataset contract); `max_categories` caps a column's levels (rare ones grouped)."""

    scaling: PointsScaling = field(default_factory=PointsScaling)
    min_iv: float = 0.02
    max_correlation: float = 0.7
    monotonic_trend: str = "auto_asc_desc"
    max_n_prebins: int = 20
    min_prebin_size: float = 0.05
    regularisation_c: float = 1.0
    features: tuple[str, ...] | None = None
    max_categories: int = 50
    min_category_rows: int = 30
    ordinal: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"scaling": self.scaling.to_dict(), "min_iv": self.min_iv,
                "max_correlation": self.max_correlation,
                "monotonic_trend": self.monotonic_trend, "max_n_prebins": self.max_n_prebins,
                "min_prebin_size": self.min_prebin_size, "regularisation_c": self.regularisation_c,
                "max_categories": self.max_categories, "min_category_rows": self.min_category_rows,
                "ordinal": {k: list(v) for k, v in self.ordinal.items()}}

    def rules(self) -> CategoryRules:
        return CategoryRules(self.max_categories, self.min_category_rows, self.ordinal)


@dataclass
class ScorecardFit:
    """The scorecard plus what training learnt on the way (for the report and the reference path)."""

    model: ScorecardModel
    binning_process: Any
    iv: dict[str, float]
    dropped: dict[str, str]
    binning_tables: dict[str, pd.DataFrame]
    preparation: Preparation = field(default_factory=lambda: Preparation({}, {}, []))

    @property
    def warnings(self) -> list[str]:
        return list(self.preparation.warnings)

    def reference_scores(self, frame: pd.DataFrame) -> NDArray[np.float64]:
        """Scores through optbinning's own WoE transform: the slow path the fast tables must equal."""
        m = self.model
        names = list(self.binning_process.variable_names)
        categorical = set(self.binning_process.categorical_variables or [])
        matrix = training_matrix(frame, names, categorical, self.preparation)
        woe = self.binning_process.transform(matrix, metric="woe")
        coef = np.array([c.coefficient for c in m.characteristics])
        log_odds_bad = m.intercept + woe[m.features].to_numpy(dtype=np.float64) @ coef
        return np.asarray(m.scaling.offset - m.scaling.factor * log_odds_bad, dtype=np.float64)


def _fit_signs(woe: pd.DataFrame, y: NDArray[np.int8], kept: list[str], dropped: dict[str, str],
               c: float) -> tuple[Any, dict[str, float]]:
    """Fit the regression; with WoE = ln(good share / bad share), a sensible feature has a negative
    coefficient on P(bad); a reversed sign comes from collinearity and would reward risk, so such a feature
    is dropped and the regression refitted."""
    from sklearn.linear_model import LogisticRegression

    while True:
        lr = LogisticRegression(C=c, max_iter=2000)
        lr.fit(woe[kept].to_numpy(dtype=np.float64), y)
        coefs = dict(zip(kept, lr.coef_[0].tolist(), strict=True))
        reversed_ = [f for f in kept if coefs[f] > 0]
        if not reversed_ or len(kept) == 1:
            return lr, coefs
        worst = max(reversed_, key=lambda f: coefs[f])
        kept.remove(worst)
        dropped[worst] = f"coefficient sign reversed ({coefs[worst]:+.3f}) next to stronger features"


def train_scorecard(
    frame: pd.DataFrame, target: str, bad: object, config: ScorecardConfig | None = None
) -> ScorecardFit:
    """Bin every feature, keep the informative and non-redundant ones, fit the regression, scale to points."""
    from optbinning import BinningProcess

    config = config or ScorecardConfig()
    if target not in frame.columns:
        raise ValidationError(f"{target}: no such column", field="target")
    y = bad_flag(frame[target], bad, column=target)
    features = list(config.features) if config.features else [c for c in frame.columns if c != target]
    refuse_type_drift(frame, features)
    numeric, categorical = split_kinds(frame, features)
    ordinal = [f for f in features if f in config.ordinal]
    categorical = [f for f in categorical if f not in config.ordinal]
    prep = plan(frame, [*categorical, *ordinal], config.rules())
    x = training_matrix(frame, features, set(categorical), prep)
    bp = BinningProcess(
        variable_names=features, categorical_variables=categorical or None,
        max_n_prebins=config.max_n_prebins, min_prebin_size=config.min_prebin_size,
        binning_fit_params={f: {"monotonic_trend": config.monotonic_trend} for f in [*numeric, *ordinal]},
    )
    bp.fit(x, y)
    tables = {f: bp.get_binned_variable(f).binning_table.build() for f in features}
    iv = {f: float(tables[f].loc["Totals", "IV"]) for f in features}
    by_iv = select_by_iv(iv, config.min_iv)
    dropped = {f: f"IV {iv[f]:.4f} below {config.min_iv}" for f in features if f not in by_iv}
    if not by_iv:
        raise ValidationError(f"features: no feature reaches the minimum IV of {config.min_iv}")
    woe = bp.transform(x, metric="woe")[by_iv]
    kept, corr_dropped = select_by_correlation(woe, iv, config.max_correlation)
    dropped.update(corr_dropped)
    lr, coefs = _fit_signs(woe, y, kept, dropped, config.regularisation_c)
    characteristics = [
        _characteristic(bp.get_binned_variable(f), tables[f], f, _kind(f, categorical, prep), coefs[f], iv[f],
                        prep)
        for f in kept
    ]
    model = ScorecardModel(characteristics, float(lr.intercept_[0]), config.scaling)
    return ScorecardFit(model=model, binning_process=bp, iv=iv, dropped=dropped, binning_tables=tables,
                        preparation=prep)


def _kind(name: str, categorical: Sequence[str], prep: Preparation) -> str:
    if name in prep.ordinal:
        return ORDINAL
    return CATEGORICAL if name in categorical else NUMERIC


def _characteristic(ob: Any, table: pd.DataFrame, name: str, kind: str, coefficient: float,
                    iv: float, prep: Preparation) -> Characteristic:
    regular = table.drop(index="Totals")
    labels = [str(b) for b in regular["Bin"]]
    n_regular = len(labels) - 2  # the last two rows are Special and Missing
    body = regular.iloc[:n_regular]
    missing = regular.iloc[n_regular + 1]
    splits: tuple[float, ...] = ()
    categories: tuple[tuple[str, ...], ...] = ()
    if kind == NUMERIC:
        splits = tuple(float(s) for s in ob.splits)
        bin_labels = tuple(labels[:n_regular])
    elif kind == ORDINAL:
        categories = ordinal_groups(prep.ordinal[name], [float(s) for s in ob.splits])
        bin_labels = tuple(ordinal_label(group) for group in categories)
    else:
        categories = tuple(tuple(str(v) for v in group) for group in ob.splits)
        bin_labels = tuple(", ".join(group) for group in categories)
    missing_rate = float(missing["Event rate"]) if int(missing["Count"]) else 0.0
    return Characteristic(
        name=name, kind=kind, labels=bin_labels, woe=tuple(float(w) for w in body["WoE"]),
        counts=tuple(int(c) for c in body["Count"]), event_rates=tuple(float(r) for r in body["Event rate"]),
        coefficient=coefficient, iv=iv, splits=splits, categories=categories,
        missing_woe=float(missing["WoE"]), missing_count=int(missing["Count"]), unseen_woe=0.0,
        missing_event_rate=missing_rate if missing_rate == missing_rate else 0.0,
        rare=prep.rare.get(name, ()),
    )
