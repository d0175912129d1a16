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


def split_kinds(frame: pd.DataFrame, features: Sequence[str]) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature names; a missing column is refused by name."""
    absent = [f for f in features if f not in frame.columns]
    if absent:
        raise ValidationError(f"{absent[0]}: no such column in the data", field=absent[0])
    numeric = [f for f in features if is_numeric_column(frame[f])]
    return numeric, [f for f in features if f not in numeric]


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
