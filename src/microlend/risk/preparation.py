"""How training reads categories, as explicit rules that the report lists: a cap on the number of categories
of a column (rare levels grouped, with a warning naming the column), and ordinal categories declared in the
dataset contract (在契约中声明顺序), which are binned on their rank so their points follow the order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from microlend.core.errors import ValidationError
from microlend.risk.columns import categorical_values, numeric_values

#: the level that rare categories of a column over the category cap are grouped into
RARE_LABEL = "(other)"


@dataclass(frozen=True)
class CategoryRules:
    """A column with more than `max_categories` levels keeps its most frequent ones (each with at least
    `min_category_rows` rows, at most `max_categories - 1` of them) and groups the rest as RARE_LABEL."""

    max_categories: int = 50
    min_category_rows: int = 30
    ordinal: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_categories < 2:
            raise ValidationError("max_categories: must be at least 2", field="max_categories")
        if self.min_category_rows < 1:
            raise ValidationError("min_category_rows: must be at least 1", field="min_category_rows")
        for name, levels in self.ordinal.items():
            if len(levels) < 2 or len(set(map(str, levels))) != len(levels):
                raise ValidationError(f"{name}: an ordinal column needs at least two distinct levels in order",
                                      field=name)


@dataclass(frozen=True)
class Preparation:
    """What the rules decided for one training sample: rare levels per column, ordinal orders, warnings."""

    rare: dict[str, tuple[str, ...]]
    ordinal: dict[str, tuple[str, ...]]
    warnings: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"rare": {k: len(v) for k, v in self.rare.items()}, "ordinal": {k: list(v) for k, v in
                                                                                 self.ordinal.items()},
                "warnings": list(self.warnings)}


def plan(frame: pd.DataFrame, categorical: Sequence[str], rules: CategoryRules) -> Preparation:
    """Decide the rare levels of every categorical column over the cap, and check ordinal columns' levels."""
    rare: dict[str, tuple[str, ...]] = {}
    ordinal: dict[str, tuple[str, ...]] = {}
    warnings: list[str] = []
    for name in categorical:
        values, missing = categorical_values(frame[name])
        if name in rules.ordinal:
            order = tuple(str(v) for v in rules.ordinal[name])
            undeclared = sorted(set(values[~missing].tolist()) - set(order))
            if undeclared:
                raise ValidationError(
                    f"{name}: values not among its declared ordered levels: {', '.join(undeclared[:10])}",
                    field=name)
            ordinal[name] = order
            continue
        counts = pd.Series(values[~missing]).value_counts(sort=True)
        if len(counts) <= rules.max_categories:
            continue
        frequent = counts[counts >= rules.min_category_rows].index[: rules.max_categories - 1]
        grouped = tuple(sorted(str(v) for v in counts.index.difference(frequent)))
        rare[name] = grouped
        warnings.append(
            f"{name}: {len(counts):,} categories is over the cap of {rules.max_categories}; {len(frequent)} "
            f"kept, {len(grouped):,} rare ones ({int(counts[list(grouped)].sum()):,} rows) grouped as "
            f"'{RARE_LABEL}'")
    return Preparation(rare=rare, ordinal=ordinal, warnings=warnings)


def training_matrix(frame: pd.DataFrame, features: Sequence[str], categorical: set[str],
                    prep: Preparation | None = None) -> pd.DataFrame:
    """Numbers as float, categories as text (NaN where missing), rare levels grouped, ordinal levels as ranks."""
    prep = prep or Preparation({}, {}, [])
    cols: dict[str, Any] = {}
    for f in features:
        if f in prep.ordinal:
            values, is_missing = categorical_values(frame[f])
            rank = {level: float(i) for i, level in enumerate(prep.ordinal[f])}
            cols[f] = np.array([np.nan if m else rank.get(v, np.nan) for v, m in
                                zip(values.tolist(), is_missing.tolist(), strict=True)], dtype=np.float64)
        elif f in categorical:
            values, is_missing = categorical_values(frame[f])
            arr = values.astype(object)
            if f in prep.rare:
                arr[pd.Index(prep.rare[f], dtype=object).get_indexer(arr) >= 0] = RARE_LABEL
            arr[is_missing] = np.nan
            cols[f] = arr
        else:
            cols[f] = numeric_values(frame[f], f)
    return pd.DataFrame(cols, index=frame.index)


def ordinal_groups(order: Sequence[str], splits: Sequence[float]) -> tuple[tuple[str, ...], ...]:
    """The declared levels in each bin of splits on their rank (a level falls in the bin of its rank)."""
    edges = np.asarray(splits, dtype=np.float64)
    bins = np.searchsorted(edges, np.arange(len(order), dtype=np.float64), side="right")
    return tuple(tuple(str(order[int(i)]) for i in np.flatnonzero(bins == b)) for b in range(len(edges) + 1))


def ordinal_label(group: Sequence[str]) -> str:
    if not group:
        return "(no level)"
    return group[0] if len(group) == 1 else f"{group[0]} to {group[-1]}"
