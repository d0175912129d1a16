"""Expert scorecards (专家评分卡): a points table set by credit experts, for a bank with no default history yet.

Each characteristic has ordered bins (number ranges or category sets) with points, a Missing bin and an
unseen/other bin (a category not in the table, a number outside the characteristic's valid range) that never
score better than its worst bin, and a neutral point: the characteristics furthest below their neutral point
are the reasons of a score, named by stable reason codes (TAX_SALES_LOW, SALES_DECLINING, ...). The score is
base points plus the points of every characteristic; the PD follows from the same PDO scaling as the
statistical scorecards, stated as an assumption (there is no development sample to calibrate it on)."""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from microlend.core.errors import ValidationError
from microlend.risk.columns import categorical_values, numeric_values
from microlend.risk.reasons import Reason, top_reason_codes
from microlend.risk.scorecard import PointsScaling

NUMERIC = "numeric"
CATEGORICAL = "categorical"
MISSING_LABEL = "Missing"
#: Sources that describe a business (by its USCC), not a person: for an applicant who is a person (the case's
#: `subject_kind`), their characteristics are not applicable and score the neutral point, giving no reason.
BUSINESS_SOURCES = frozenset({"tax", "einvoice", "registry"})
SUBJECT_KIND = "subject_kind"
UNSEEN_LABEL = "Unseen or other"
_REASON_CODE = re.compile(r"^[A-Z][A-Z0-9_]{1,47}$")


@dataclass(frozen=True)
class ExpertBin:
    """One bin: its label and points; a categorical bin also lists its categories."""

    label: str
    points: float
    categories: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "points": self.points}
        if self.categories:
            out["categories"] = list(self.categories)
        return out


@dataclass(frozen=True)
class ExpertCharacteristic:
    """A characteristic of the table. A numeric one has `splits` s1 < s2 < ...: bin 0 is x < s1, bin i is
    s_i <= x < s_(i+1); a value outside [valid_min, valid_max] is unseen. A categorical one matches text."""

    name: str
    kind: str
    bins: tuple[ExpertBin, ...]
    missing_points: float
    unseen_points: float
    neutral_points: float
    reason_code: str
    rationale: Mapping[str, str]
    splits: tuple[float, ...] = ()
    valid_min: float = -math.inf
    valid_max: float = math.inf
    source: str = ""
    unit: str = ""
    #: an optional source whose absence is not a failure of data (no account at this bank, a business that
    #: takes no card payments): Missing then scores the neutral point — never better — and gives no reason
    absent_is_neutral: bool = False

    def __post_init__(self) -> None:
        where = f"characteristics.{self.name}"
        if self.kind not in (NUMERIC, CATEGORICAL):
            raise ValidationError(f"{where}: kind must be numeric or categorical, not '{self.kind}'", field=where)
        if not self.bins:
            raise ValidationError(f"{where}: needs at least one bin", field=where)
        if self.kind == NUMERIC:
            if len(self.bins) != len(self.splits) + 1:
                raise ValidationError(
                    f"{where}: {len(self.splits)} splits make {len(self.splits) + 1} bins, not {len(self.bins)}",
                    field=where,
                )
            if any(b <= a for a, b in zip(self.splits, self.splits[1:], strict=False)):
                raise ValidationError(f"{where}: splits must increase", field=where)
            if not self.valid_min < self.valid_max:
                raise ValidationError(f"{where}: valid_min must be below valid_max", field=where)
        else:
            seen: set[str] = set()
            for b in self.bins:
                if not b.categories:
                    raise ValidationError(f"{where}: bin '{b.label}' lists no categories", field=where)
                clash = seen.intersection(b.categories)
                if clash:
                    raise ValidationError(f"{where}: category '{sorted(clash)[0]}' is in two bins", field=where)
                seen.update(b.categories)
        worst, best = self.worst_points, self.best_points
        if self.absent_is_neutral and self.missing_points != self.neutral_points:
            raise ValidationError(
                f"{where}: an optional source's Missing scores the neutral point ({self.neutral_points:g}), "
                f"not {self.missing_points:g}",
                field=where,
            )
        if self.missing_points > worst and not self.absent_is_neutral:
            raise ValidationError(
                f"{where}: Missing scores {self.missing_points:g}, better than the worst bin "
                f"({worst:g}); it must score no more than the worst bin",
                field=where,
            )
        if self.unseen_points > worst:
            raise ValidationError(
                f"{where}: an unseen value scores {self.unseen_points:g}, better than the worst "
                f"bin ({worst:g}); it must score no more than the worst bin",
                field=where,
            )
        if not worst <= self.neutral_points <= best:
            raise ValidationError(
                f"{where}: the neutral point {self.neutral_points:g} is outside the bins' "
                f"points ({worst:g} to {best:g})",
                field=where,
            )
        if not _REASON_CODE.match(self.reason_code):
            raise ValidationError(
                f"{where}: reason code '{self.reason_code}' must be upper-case letters, digits and underscores",
                field=where,
            )
        if not self.rationale.get("en") or not self.rationale.get("zh-CN"):
            raise ValidationError(f"{where}: give the rationale in en and zh-CN", field=where)

    @property
    def worst_points(self) -> float:
        return min(b.points for b in self.bins)

    @property
    def best_points(self) -> float:
        return max(b.points for b in self.bins)

    @property
    def all_points(self) -> list[float]:
        """Points of every bin, then Missing, then unseen: the order of bin indices."""
        return [*(b.points for b in self.bins), self.missing_points, self.unseen_points]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "unit": self.unit,
            "bins": [b.to_dict() for b in self.bins],
            "missing_points": self.missing_points,
            "unseen_points": self.unseen_points,
            "neutral_points": self.neutral_points,
            "reason_code": self.reason_code,
            "rationale": dict(self.rationale),
        }
        if self.absent_is_neutral:
            out["absent_is_neutral"] = True
        if self.kind == NUMERIC:
            out["splits"] = list(self.splits)
            out["valid_min"] = None if math.isinf(self.valid_min) else self.valid_min
            out["valid_max"] = None if math.isinf(self.valid_max) else self.valid_max
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExpertCharacteristic:
        try:
            low, high = d.get("valid_min"), d.get("valid_max")
            return cls(
                name=str(d["name"]),
                kind=str(d["kind"]),
                bins=tuple(
                    ExpertBin(str(b["label"]), float(b["points"]), tuple(str(c) for c in b.get("categories", ())))
                    for b in d["bins"]
                ),
                missing_points=float(d["missing_points"]),
                unseen_points=float(d["unseen_points"]),
                neutral_points=float(d["neutral_points"]),
                reason_code=str(d["reason_code"]),
                rationale={str(k): str(v) for k, v in d["rationale"].items()},
                splits=tuple(float(s) for s in d.get("splits", ())),
                valid_min=-math.inf if low is None else float(low),
                valid_max=math.inf if high is None else float(high),
                source=str(d.get("source", "")),
                unit=str(d.get("unit", "")),
                absent_is_neutral=bool(d.get("absent_is_neutral", False)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValidationError(
                f"characteristics: entry '{d.get('name', '?')}' is not readable ({exc!r})", field="characteristics"
            ) from None


@dataclass
class _Lookup:
    """Scoring tables of one characteristic: points per bin index (bins, Missing, unseen)."""

    name: str
    numeric: bool
    points: NDArray[np.float64]
    points_list: list[float]
    splits: NDArray[np.float64]
    splits_list: list[float]
    valid_min: float
    valid_max: float
    category_index: pd.Index
    category_bins: NDArray[np.intp]
    category_map: dict[str, int]
    neutral: float
    reason_code: str
    business_only: bool = False

    @property
    def missing_bin(self) -> int:
        return len(self.points_list) - 2

    @property
    def unseen_bin(self) -> int:
        return len(self.points_list) - 1


def _lookup(c: ExpertCharacteristic) -> _Lookup:
    categories: list[str] = []
    bins: list[int] = []
    for i, b in enumerate(c.bins):
        categories.extend(b.categories)
        bins.extend([i] * len(b.categories))
    points = np.array(c.all_points, dtype=np.float64)
    splits = np.array(c.splits, dtype=np.float64)
    return _Lookup(
        name=c.name,
        numeric=c.kind == NUMERIC,
        points=points,
        points_list=points.tolist(),
        splits=splits,
        splits_list=splits.tolist(),
        valid_min=c.valid_min,
        valid_max=c.valid_max,
        category_index=pd.Index(categories, dtype=object),
        category_bins=np.array(bins, dtype=np.intp),
        category_map=dict(zip(categories, bins, strict=True)),
        neutral=c.neutral_points,
        reason_code=c.reason_code,
        business_only=c.source in BUSINESS_SOURCES,
    )


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NA or value is pd.NaT


def _category_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass
class ExpertScorecardModel:
    """Score = base points + the points of each characteristic's bin; higher is safer."""

    characteristics: list[ExpertCharacteristic]
    base_points: float
    scaling: PointsScaling = field(default_factory=PointsScaling)
    name: str = ""
    description: Mapping[str, str] = field(default_factory=dict)
    kind: str = field(default="expert", init=False)

    def __post_init__(self) -> None:
        if not self.characteristics:
            raise ValidationError("characteristics: an expert scorecard needs at least one", field="characteristics")
        names = [c.name for c in self.characteristics]
        codes = [c.reason_code for c in self.characteristics]
        for label, values in (("name", names), ("reason code", codes)):
            twice = sorted({v for v in values if values.count(v) > 1})
            if twice:
                raise ValidationError(f"characteristics: {label} '{twice[0]}' is used twice", field="characteristics")
        self.features: list[str] = names
        self.reason_codes: list[str] = codes
        self._lookups = [_lookup(c) for c in self.characteristics]
        self._neutral = np.array([lk.neutral for lk in self._lookups], dtype=np.float64)

    # -- range of scores ----------------------------------------------------------------------------------

    @property
    def min_score(self) -> float:
        """The lowest score the table can give (every characteristic at its lowest, Missing included)."""
        return self.base_points + sum(min(c.all_points) for c in self.characteristics)

    @property
    def max_score(self) -> float:
        return self.base_points + sum(c.best_points for c in self.characteristics)

    # -- bins and points ----------------------------------------------------------------------------------

    def bin_indices(self, frame: pd.DataFrame) -> NDArray[np.intp]:
        """Bin number per row and characteristic: its bins, then Missing, then unseen (set-based)."""
        absent = [f for f in self.features if f not in frame.columns]
        if absent:
            raise ValidationError(
                f"{absent[0]}: column is missing from the data (the model needs: {', '.join(absent)})", field=absent[0]
            )
        out = np.empty((len(frame), len(self._lookups)), dtype=np.intp, order="F")
        for j, lk in enumerate(self._lookups):
            if lk.numeric:
                x = numeric_values(frame[lk.name], lk.name)
                idx = np.searchsorted(lk.splits, x, side="right")
                with np.errstate(invalid="ignore"):
                    valid = (x >= lk.valid_min) & (x <= lk.valid_max) & np.isfinite(x)
                idx = np.where(valid, idx, lk.unseen_bin)
                idx[np.isnan(x)] = lk.missing_bin
            else:
                values, is_missing = categorical_values(frame[lk.name])
                pos = lk.category_index.get_indexer(values)
                found = lk.category_bins[np.maximum(pos, 0)] if len(lk.category_bins) else np.zeros_like(pos)
                idx = np.where(pos >= 0, found, lk.unseen_bin)
                idx[is_missing] = lk.missing_bin
            out[:, j] = idx
        return out

    def points_matrix(self, frame: pd.DataFrame) -> NDArray[np.float64]:
        idx = self.bin_indices(frame)
        pts = np.empty(idx.shape, dtype=np.float64, order="F")
        for j, lk in enumerate(self._lookups):
            pts[:, j] = lk.points[idx[:, j]]
        return pts

    def _bin_of(self, lk: _Lookup, value: Any) -> int:
        if _is_missing(value):
            return lk.missing_bin
        if not lk.numeric:
            return lk.category_map.get(_category_text(value), lk.unseen_bin)
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise ValidationError(f"{lk.name}: expected a number, got {value!r}", field=lk.name) from None
        if x != x:
            return lk.missing_bin
        if not (math.isfinite(x) and lk.valid_min <= x <= lk.valid_max):
            return lk.unseen_bin
        return bisect_right(lk.splits_list, x)

    def unseen_features(self, case: Mapping[str, Any]) -> list[str]:
        """Characteristics of one case with a value the table does not know (scored at its unseen points)."""
        return [lk.name for lk in self._lookups if self._bin_of(lk, case.get(lk.name)) == lk.unseen_bin]

    # -- scoring ------------------------------------------------------------------------------------------

    def _pd(self, score: NDArray[np.float64]) -> NDArray[np.float64]:
        result: NDArray[np.float64] = 1.0 / (1.0 + np.exp((score - self.scaling.offset) / self.scaling.factor))
        return result

    def score_batch(self, frame: pd.DataFrame, *, top_n: int = 3, with_reasons: bool = True) -> pd.DataFrame:
        """pd, score, `unseen` (characteristics with a value the table does not know) and reason codes
        ("A;B;C": the characteristics furthest below their neutral point, at most top_n)."""
        idx = self.bin_indices(frame)
        pts = np.empty(idx.shape, dtype=np.float64, order="F")
        unseen = np.zeros(len(frame), dtype=np.int64)
        score = np.full(len(frame), self.base_points, dtype=np.float64)
        person = (frame[SUBJECT_KIND].astype("string").eq("person").fillna(False).to_numpy(dtype=bool)
                  if SUBJECT_KIND in frame.columns else None)
        for j, lk in enumerate(self._lookups):  # one pass per characteristic, each over all rows
            column = lk.points[idx[:, j]]
            if person is not None and lk.business_only:  # not applicable to a person: neutral
                column = np.where(person & (idx[:, j] == lk.missing_bin), lk.neutral, column)
            pts[:, j] = column
            score += column
            unseen += idx[:, j] == lk.unseen_bin
        out = pd.DataFrame({"pd": self._pd(score), "score": score, "unseen": unseen}, index=frame.index)
        if with_reasons:
            out["reasons"] = top_reason_codes(self._neutral - pts, self.reason_codes, top_n)
        return out

    def score_one(self, case: Mapping[str, Any], *, top_n: int = 3) -> tuple[float, float, list[Reason]]:
        """One applicant (a dict of feature values; absent keys count as missing) -> (pd, score, reasons)."""
        total = self.base_points
        shortfalls: list[tuple[float, int, str]] = []
        person = case.get(SUBJECT_KIND) == "person"
        for j, lk in enumerate(self._lookups):
            b = self._bin_of(lk, case.get(lk.name))
            p = lk.neutral if person and lk.business_only and b == lk.missing_bin else lk.points_list[b]
            total += p
            if p < lk.neutral:
                shortfalls.append((p - lk.neutral, j, lk.reason_code))
        shortfalls.sort()
        reasons = [Reason(code, -neg) for neg, _, code in shortfalls[: max(top_n, 0)]]
        pd_ = 1.0 / (1.0 + math.exp((total - self.scaling.offset) / self.scaling.factor))
        return pd_, total, reasons

    # -- tables and persistence ---------------------------------------------------------------------------

    def points_table(self) -> pd.DataFrame:
        """One row per characteristic and bin, Missing and unseen included, with the neutral point, the reason
        code and the rationale: the table a bank prints, files and has approved."""
        rows: list[dict[str, Any]] = []
        for c in self.characteristics:
            labels = [*(b.label for b in c.bins), MISSING_LABEL, UNSEEN_LABEL]
            for label, points in zip(labels, c.all_points, strict=True):
                rows.append(
                    {
                        "feature": c.name,
                        "bin": label,
                        "points": points,
                        "neutral": c.neutral_points,
                        "reason_code": c.reason_code,
                        "source": c.source,
                        "rationale_en": c.rationale["en"],
                        "rationale_zh": c.rationale["zh-CN"],
                    }
                )
        return pd.DataFrame(
            rows,
            columns=["feature", "bin", "points", "neutral", "reason_code", "source", "rationale_en", "rationale_zh"],
        )

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "description": dict(self.description),
            "base_points": self.base_points,
            "scaling": self.scaling.to_dict(),
            "score_range": [self.min_score, self.max_score],
            "characteristics": [c.to_dict() for c in self.characteristics],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExpertScorecardModel:
        if d.get("kind") != "expert":
            raise ValidationError(f"kind: an expert scorecard file says kind '{d.get('kind')}'", field="kind")
        try:
            scaling = PointsScaling(**{k: float(v) for k, v in d["scaling"].items()})
            base = float(d["base_points"])
            characteristics: Sequence[Mapping[str, Any]] = d["characteristics"]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValidationError(
                f"model: the expert scorecard file is not readable ({exc!r})", field="model"
            ) from None
        return cls(
            [ExpertCharacteristic.from_dict(c) for c in characteristics],
            base,
            scaling,
            name=str(d.get("name", "")),
            description={str(k): str(v) for k, v in (d.get("description") or {}).items()},
        )


def numeric(
    name: str,
    splits: Sequence[float],
    labels: Sequence[str],
    points: Sequence[float],
    *,
    neutral: float,
    reason_code: str,
    en: str,
    zh: str,
    source: str,
    unit: str = "",
    valid: tuple[float, float] = (-math.inf, math.inf),
    missing: float | None = None,
    unseen: float | None = None,
    absent_is_neutral: bool = False,
) -> ExpertCharacteristic:
    """A numeric characteristic; Missing and unseen default to the worst bin's points (Missing to the neutral
    point for an optional source, `absent_is_neutral`)."""
    worst = min(points)
    if absent_is_neutral:
        missing = neutral
    return ExpertCharacteristic(
        name=name,
        kind=NUMERIC,
        bins=tuple(ExpertBin(lb, float(p)) for lb, p in zip(labels, points, strict=True)),
        missing_points=worst if missing is None else missing,
        unseen_points=worst if unseen is None else unseen,
        neutral_points=neutral,
        reason_code=reason_code,
        rationale={"en": en, "zh-CN": zh},
        splits=tuple(float(s) for s in splits),
        valid_min=valid[0],
        valid_max=valid[1],
        source=source,
        unit=unit,
        absent_is_neutral=absent_is_neutral,
    )


def categorical(
    name: str,
    groups: Sequence[tuple[Sequence[str], float]],
    *,
    neutral: float,
    reason_code: str,
    en: str,
    zh: str,
    source: str,
    missing: float | None = None,
    unseen: float | None = None,
) -> ExpertCharacteristic:
    """A categorical characteristic from (categories, points) groups; Missing and unseen default to the worst."""
    worst = min(p for _, p in groups)
    return ExpertCharacteristic(
        name=name,
        kind=CATEGORICAL,
        bins=tuple(ExpertBin(", ".join(cats), float(p), tuple(cats)) for cats, p in groups),
        missing_points=worst if missing is None else missing,
        unseen_points=worst if unseen is None else unseen,
        neutral_points=neutral,
        reason_code=reason_code,
        rationale={"en": en, "zh-CN": zh},
        source=source,
    )
