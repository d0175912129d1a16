"""Each side's own binning: unsupervised quantile bins for numbers, frequent levels for categories, a bin
for missing values; and the weight of evidence of each bin from its event (bad) and non-event counts.

WoE here is ln(share of bads in the bin / share of goods in the bin), smoothed by half a count, so a riskier
bin has a larger WoE and the fitted weights are positive."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from microlend.core.errors import ValidationError
from microlend.risk.columns import categorical_values, is_numeric_column, numeric_values

OTHER = "(other)"
MAX_BINS = 10
#: a bin of fewer rows than this share of the sample is merged (numbers) or grouped into OTHER (categories)
MIN_BIN_SHARE = 0.05


@dataclass(frozen=True)
class FeatureBins:
    """How one feature's values fall into bins: numeric edges (bin i holds edges[i-1] <= x < edges[i]) or
    category groups; the last two bins are 'missing' and, for categories, 'other'."""

    name: str
    numeric: bool
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def n_bins(self) -> int:
        # regular bins, then missing, then (categories only) other
        return (len(self.edges) + 1 if self.numeric else len(self.categories) + 1) + 1

    def labels(self) -> list[str]:
        if self.numeric:
            bounds = [-math.inf, *self.edges, math.inf]
            regular = [f"[{lo:g}, {hi:g})" for lo, hi in itertools.pairwise(bounds)]
        else:
            regular = [*self.categories, OTHER]
        return [*regular, "missing"]

    def assign(self, series: pd.Series) -> NDArray[np.intp]:
        if self.numeric:
            x = numeric_values(series, self.name)
            idx = np.searchsorted(np.asarray(self.edges, dtype=np.float64), x, side="right").astype(np.intp)
            idx[np.isnan(x)] = self.n_bins - 1
            return idx
        values, missing = categorical_values(series)
        lookup = {c: i for i, c in enumerate(self.categories)}
        other = len(self.categories)
        idx = np.array([lookup.get(v, other) for v in values.tolist()], dtype=np.intp)
        idx[missing] = self.n_bins - 1
        return idx

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "numeric": self.numeric, "edges": list(self.edges),
                "categories": list(self.categories)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureBins:
        return cls(str(d["name"]), bool(d["numeric"]), tuple(float(e) for e in d["edges"]),
                   tuple(str(c) for c in d["categories"]))


def fit_bins(frame: pd.DataFrame, features: Sequence[str], *, max_bins: int = MAX_BINS,
             min_share: float = MIN_BIN_SHARE) -> list[FeatureBins]:
    """Bins from the feature values alone (no outcome): quantile edges, levels holding at least `min_share`."""
    out: list[FeatureBins] = []
    min_rows = max(1, math.ceil(min_share * len(frame)))
    for name in features:
        if name not in frame.columns:
            raise ValidationError(f"{name}: no such column in the data", field=name)
        series = frame[name]
        if is_numeric_column(series):
            x = numeric_values(series, name)
            x = x[~np.isnan(x)]
            if not x.size:
                continue
            qs = np.unique(np.quantile(x, np.linspace(0, 1, max_bins + 1)[1:-1], method="lower"))
            edges: list[float] = []
            for q in qs.tolist():  # an edge at q puts x >= q to the right; keep bins of at least min_rows
                left = int((x < q).sum()) - (int((x < edges[-1]).sum()) if edges else 0)
                if left >= min_rows and int((x >= q).sum()) >= min_rows:
                    edges.append(float(q))
            if not edges:
                continue
            out.append(FeatureBins(name, True, edges=tuple(edges)))
        else:
            values, missing = categorical_values(series)
            counts = pd.Series(values[~missing]).value_counts()
            frequent = sorted(str(v) for v in counts[counts >= min_rows].index)
            if len(frequent) < 1 or (len(frequent) == 1 and counts.sum() == counts.iloc[0]):
                continue
            out.append(FeatureBins(name, False, categories=tuple(frequent)))
    return out


def bin_matrix(frame: pd.DataFrame, bins: Sequence[FeatureBins]) -> NDArray[np.intp]:
    """Bin number of every row (rows) for every feature (columns)."""
    out = np.empty((len(frame), len(bins)), dtype=np.intp)
    for j, b in enumerate(bins):
        if b.name not in frame.columns:
            raise ValidationError(f"{b.name}: column is missing from the data", field=b.name)
        out[:, j] = b.assign(frame[b.name])
    return out


def woe_from_counts(events: Sequence[float], totals: Sequence[float]) -> list[float]:
    """WoE of each bin from its event count and row count (smoothed by 0.5); an empty bin gets 0."""
    ev = np.asarray(events, dtype=np.float64)
    tot = np.asarray(totals, dtype=np.float64)
    non = tot - ev
    all_ev, all_non = ev.sum(), non.sum()
    woe = np.log(((ev + 0.5) / (all_ev + 0.5)) / ((non + 0.5) / (all_non + 0.5)))
    woe[tot == 0] = 0.0
    return [float(w) for w in woe]


def woe_tables(idx: NDArray[np.intp], bins: Sequence[FeatureBins], y: NDArray[np.int8]) -> list[list[float]]:
    """WoE per bin for every feature, from clear labels (the bank's own features)."""
    tables = []
    for j, b in enumerate(bins):
        totals = np.bincount(idx[:, j], minlength=b.n_bins)
        events = np.bincount(idx[:, j], weights=y.astype(np.float64), minlength=b.n_bins)
        tables.append(woe_from_counts(events.tolist(), totals.tolist()))
    return tables


def woe_values(idx: NDArray[np.intp], tables: Sequence[Sequence[float]]) -> NDArray[np.float64]:
    out = np.empty(idx.shape, dtype=np.float64)
    for j, table in enumerate(tables):
        out[:, j] = np.asarray(table, dtype=np.float64)[idx[:, j]]
    return out


def features_of(frame: pd.DataFrame, exclude: Sequence[str]) -> list[str]:
    return [c for c in frame.columns if c not in set(exclude)]
