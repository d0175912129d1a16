"""Reading feature columns the same way at training and at scoring: numbers as float, categories as text."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from microlend.core.errors import ValidationError


def is_numeric_column(series: pd.Series) -> bool:
    return bool(is_numeric_dtype(series.dtype) and not is_bool_dtype(series.dtype))


#: A text column whose values are numbers in at least this share of its filled rows is a numeric column with
#: stray text (a typo, "n/a"), not a category: training refuses it instead of silently changing its type.
NUMERIC_SHARE_FOR_DRIFT = 0.9
#: Rows named in a type-drift message before it only counts the rest.
ROWS_NAMED = 10


def split_kinds(frame: pd.DataFrame, features: Sequence[str]) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature names; a missing column is refused by name."""
    absent = [f for f in features if f not in frame.columns]
    if absent:
        raise ValidationError(f"{absent[0]}: no such column in the data", field=absent[0])
    numeric = [f for f in features if is_numeric_column(frame[f])]
    return numeric, [f for f in features if f not in numeric]


def refuse_type_drift(frame: pd.DataFrame, features: Sequence[str]) -> None:
    """Refuse a text column that is numbers apart from a few stray values, naming those rows (1-based), so a
    typo cannot turn a numeric feature into a category during training."""
    for name in features:
        series = frame[name]
        if is_numeric_column(series) or is_bool_dtype(series.dtype):
            continue
        filled = series.notna().to_numpy() & (series.astype("str").str.strip() != "").to_numpy()
        if not filled.any():
            continue
        numbers = pd.to_numeric(series, errors="coerce").notna().to_numpy()
        stray = filled & ~numbers
        if not stray.any() or numbers[filled].mean() < NUMERIC_SHARE_FOR_DRIFT:
            continue
        rows = np.flatnonzero(stray)
        named = ", ".join(f"{int(r) + 1} ({series.iloc[int(r)]!r})" for r in rows[:ROWS_NAMED])
        more = f" and {len(rows) - ROWS_NAMED} more" if len(rows) > ROWS_NAMED else ""
        raise ValidationError(
            f"{name}: a numeric column with text in {len(rows)} rows: {named}{more}; correct or blank them "
            "(a column is not turned into categories because of stray text)", field=name)


def numeric_values(series: pd.Series, name: str) -> NDArray[np.float64]:
    """Float values with NaN for missing; text that is not a number is refused with its row."""
    if is_numeric_column(series) or is_bool_dtype(series.dtype):
        return np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    coerced = pd.to_numeric(series, errors="coerce")
    text = series.astype("str")
    bad = coerced.isna().to_numpy() & series.notna().to_numpy() & (text.str.strip() != "").to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValidationError(
            f"{name}: expected numbers, found {series.iloc[row]!r} in row {row + 1} "
            f"({int(bad.sum())} such rows)", field=name)
    return np.asarray(coerced.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def categorical_values(series: pd.Series) -> tuple[NDArray[np.object_], NDArray[np.bool_]]:
    """Category text per row ('' where missing) and the missing mask; 3.0 reads as '3' like the CSV's 3."""
    missing = series.isna().to_numpy()
    if is_numeric_column(series):
        numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = numbers[~missing]
        if finite.size and np.all(np.mod(finite, 1) == 0):
            series = series.astype("Int64")
    text = series.astype("str").to_numpy(dtype=object, na_value="")
    text[missing] = ""
    return text, missing
