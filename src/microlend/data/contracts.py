"""Data contracts (数据契约): what a dataset promises about its columns, declared as plain data.

A contract is a JSON-able dict (columns with dtype, nullability, range and allowed categories, plus the
key columns that must be unique). It is turned into a pandera `DataFrameSchema` to check a DataFrame, and
every failure is reported with its source row number (1-based after the header), column, check and value.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from microlend.core.errors import ValidationError

DType = Literal["int", "float", "string", "bool", "date", "datetime"]
DTYPES: tuple[str, ...] = ("int", "float", "string", "bool", "date", "datetime")
_PANDERA_DTYPE: dict[str, str] = {
    "int": "Int64",
    "float": "float64",
    "string": "str",
    "bool": "boolean",
    "date": "datetime64[ns]",
    "datetime": "datetime64[ns]",
}
MONOTONE_DIRECTIONS: tuple[str, ...] = ("increasing", "decreasing", "none")
REASON_LOCALES: tuple[str, ...] = ("en", "zh-CN")
#: A column with at most this many distinct text values is inferred as categorical.
CATEGORY_LIMIT = 50


@dataclass(frozen=True)
class ColumnContract:
    """What one column promises: its type, whether it may be empty, its range or its categories."""

    name: str
    dtype: DType
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    description: str = ""
    ordered: bool = False  # the categories are listed in risk order (graded: A1, A2, ... G5)
    #: risk's direction along a numeric column for a GBDT: "increasing", "decreasing" or "none" (unset: the
    #: direction of the binned bad rate when it is monotone)
    monotone: str | None = None
    #: the reason given to an applicant when this column lowered the score, per locale ("en", "zh-CN")
    reason: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "dtype": self.dtype, "nullable": self.nullable}
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        if self.categories is not None:
            out["categories"] = list(self.categories)
        if self.description:
            out["description"] = self.description
        if self.ordered:
            out["ordered"] = True
        if self.monotone is not None:
            out["monotone"] = self.monotone
        if self.reason:
            out["reason"] = dict(self.reason)
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ColumnContract:
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise ValidationError("contract.columns: every column needs a 'name'", field="contract")
        dtype = raw.get("dtype")
        if dtype not in DTYPES:
            raise ValidationError(
                f"contract.columns.{name}.dtype: must be one of {', '.join(DTYPES)}, got {dtype!r}",
                field="contract",
            )
        unknown = set(raw) - {"name", "dtype", "nullable", "min", "max", "categories", "description", "ordered",
                              "monotone", "reason"}
        if unknown:
            raise ValidationError(
                f"contract.columns.{name}: unknown keys {', '.join(sorted(unknown))}", field="contract"
            )
        cats = raw.get("categories")
        ordered = raw.get("ordered", False)
        if not isinstance(ordered, bool) or (ordered and not cats):
            raise ValidationError(
                f"contract.columns.{name}.ordered: true or false, and true only with the categories listed in "
                "order", field="contract")
        monotone = raw.get("monotone")
        if monotone is not None and (monotone not in MONOTONE_DIRECTIONS or dtype not in ("int", "float")):
            raise ValidationError(
                f"contract.columns.{name}.monotone: one of {', '.join(MONOTONE_DIRECTIONS)}, on an int or float "
                f"column, got {monotone!r}", field="contract")
        reason = raw.get("reason", {})
        if not isinstance(reason, dict) or not all(
                k in REASON_LOCALES and isinstance(v, str) and v.strip() for k, v in reason.items()):
            raise ValidationError(
                f"contract.columns.{name}.reason: a text per locale ({', '.join(REASON_LOCALES)})",
                field="contract")
        return cls(
            name=name,
            dtype=dtype,
            nullable=bool(raw.get("nullable", False)),
            min=_number(raw.get("min"), f"{name}.min"),
            max=_number(raw.get("max"), f"{name}.max"),
            categories=None if cats is None else tuple(str(c) for c in cats),
            description=str(raw.get("description", "")),
            ordered=ordered,
            monotone=monotone,
            reason={str(k): str(v).strip() for k, v in reason.items()},
        )


@dataclass(frozen=True)
class DataContract:
    """A dataset's contract. `unique` lists the key columns whose combination must not repeat;
    `strict` refuses columns the contract does not name."""

    name: str
    columns: tuple[ColumnContract, ...]
    unique: tuple[str, ...] = ()
    strict: bool = False
    version: int = 1
    target: str | None = None
    description: str = ""

    def ordinal_columns(self) -> dict[str, tuple[str, ...]]:
        """Columns whose categories are declared in order, with that order (for monotone binning)."""
        return {c.name: c.categories for c in self.columns if c.ordered and c.categories}

    def monotone_columns(self) -> dict[str, str]:
        """Columns with a declared monotone direction for a GBDT (overriding the binned trend)."""
        return {c.name: c.monotone for c in self.columns if c.monotone is not None}

    def reason_wording(self) -> dict[str, dict[str, str]]:
        """Per column, the reason text per locale declared in the contract."""
        return {c.name: dict(c.reason) for c in self.columns if c.reason}

    def column(self, name: str) -> ColumnContract:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "strict": self.strict,
            "unique": list(self.unique),
            "columns": [c.to_dict() for c in self.columns],
        }
        if self.target is not None:
            out["target"] = self.target
        if self.description:
            out["description"] = self.description
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DataContract:
        if not isinstance(raw, dict):
            raise ValidationError("contract: must be a JSON object", field="contract")
        cols = raw.get("columns")
        if not isinstance(cols, list) or not cols:
            raise ValidationError("contract.columns: must be a non-empty list", field="contract")
        columns = tuple(ColumnContract.from_dict(c) for c in cols)
        names = [c.name for c in columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValidationError(f"contract.columns: named twice: {', '.join(dupes)}", field="contract")
        unique = tuple(str(u) for u in raw.get("unique", []))
        missing = [u for u in unique if u not in names]
        if missing:
            raise ValidationError(f"contract.unique: not a contract column: {', '.join(missing)}", field="contract")
        target = raw.get("target")
        return cls(
            name=str(raw.get("name", "dataset")),
            columns=columns,
            unique=unique,
            strict=bool(raw.get("strict", False)),
            version=int(raw.get("version", 1)),
            target=None if target is None else str(target),
            description=str(raw.get("description", "")),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"contract.columns.{where}: must be a number", field="contract")
    return float(value)


def load_contract(path: str | Path) -> DataContract:
    """Read a contract from a JSON file; a malformed file is a ValidationError naming the problem."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError(f"contract: file not found: {path}", field="contract") from None
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"contract: {path} is not valid JSON ({exc.msg}, line {exc.lineno})", field="contract"
        ) from None
    return DataContract.from_dict(raw)


def shipped_contract(name: str) -> DataContract:
    """A contract shipped with Microlend: 'german_credit' or 'lending_club'."""
    files = resources.files("microlend.data").joinpath("contract_files")
    path = files.joinpath(f"{name}.json")
    if not path.is_file():
        raise ValidationError(f"contract: no shipped contract named '{name}'", field="contract")
    return DataContract.from_dict(json.loads(path.read_text(encoding="utf-8")))


def to_schema(contract: DataContract) -> pa.DataFrameSchema:
    """The pandera schema that checks a DataFrame against the contract (coercing to the declared types)."""
    columns: dict[str, pa.Column] = {}
    for col in contract.columns:
        checks: list[pa.Check] = []
        if col.min is not None:
            checks.append(pa.Check.ge(col.min))
        if col.max is not None:
            checks.append(pa.Check.le(col.max))
        if col.categories is not None:
            checks.append(pa.Check.isin(list(col.categories)))
        columns[col.name] = pa.Column(
            _PANDERA_DTYPE[col.dtype], checks=checks, nullable=col.nullable, coerce=True, required=True
        )
    return pa.DataFrameSchema(
        columns, unique=list(contract.unique) or None, strict=contract.strict, coerce=True, name=contract.name
    )


@dataclass(frozen=True)
class Violation:
    """One broken promise: `row` is the source row number (1-based after the header), None for a
    whole-column problem such as a missing column."""

    row: int | None
    column: str | None
    check: str
    value: Any

    def describe(self) -> str:
        where = f"row {self.row}" if self.row is not None else "all rows"
        col = self.column or "(table)"
        return f"{where}, column {col}: {self.check} (value {self.value!r})"


@dataclass
class ContractReport:
    """The result of checking a DataFrame: the coerced data and every violation found (lazy mode)."""

    contract: DataContract
    data: pd.DataFrame
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def bad_rows(self) -> list[int]:
        return sorted({v.row for v in self.violations if v.row is not None})

    @property
    def table_problems(self) -> list[Violation]:
        return [v for v in self.violations if v.row is None]

    def reasons_by_row(self) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for v in self.violations:
            if v.row is not None:
                out.setdefault(v.row, []).append(f"{v.column}: {v.check} (value {v.value!r})")
        return out

    def summary(self, limit: int = 20) -> str:
        """A message listing the first `limit` problems and how many there are in all."""
        rows = self.bad_rows
        shown = self.violations[:limit]
        head = f"dataset '{self.contract.name}' breaks its contract: {len(self.violations)} problem(s)"
        if rows:
            head += f" in {len(rows)} row(s)"
        if self.table_problems:
            head += f"{' and' if rows else ','} {len(self.table_problems)} whole-column problem(s)"
        lines = [head + ":"] + ["  " + v.describe() for v in shown]
        if len(self.violations) > limit:
            lines.append(f"  ... and {len(self.violations) - limit} more")
        return "\n".join(lines)


def validate(df: pd.DataFrame, contract: DataContract) -> ContractReport:
    """Check every row and column at once (pandera lazy mode) and report failures by source row number."""
    frame = df.reset_index(drop=True)
    schema = to_schema(contract)
    try:
        checked = schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        return ContractReport(contract, frame, _violations(exc.failure_cases))
    return ContractReport(contract, checked, [])


def _violations(cases: pd.DataFrame) -> list[Violation]:
    out: list[Violation] = []
    seen: set[tuple[int | None, str | None]] = set()
    records = cases.to_dict("records")
    # a failed coercion is also reported as a wrong dtype; keep the coercion entry, which comes first
    records.sort(key=lambda r: 0 if str(r["check"]).startswith("coerce_dtype") else 1)
    uncoerced = {r["column"] for r in records if str(r["check"]).startswith("coerce_dtype")}
    for rec in records:
        index = rec.get("index")
        row = None if index is None or _is_missing(index) else int(index) + 1
        column = rec.get("column")
        column = None if column is None or _is_missing(column) else str(column)
        check = str(rec["check"])
        if check in ("column_in_dataframe", "column_in_schema"):
            column = str(rec.get("failure_case"))  # pandera puts the schema's name in `column` here
        if check.startswith("dtype(") and (row, column) in seen:
            continue
        if row is None and column in uncoerced:
            continue  # range checks could not run on text; the coercion failures say why
        seen.add((row, column))
        out.append(Violation(row, column, _check_name(check), _plain(rec.get("failure_case"))))
    out.sort(key=lambda v: (v.row is not None, v.row or 0, v.column or ""))
    return out


def _check_name(check: str) -> str:
    if check == "multiple_fields_uniqueness" or check == "field_uniqueness":
        return "duplicate key"
    if check == "column_in_dataframe":
        return "column missing"
    if check == "column_in_schema":
        return "column not in contract"
    if check == "not_nullable":
        return "must not be empty"
    return check


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _plain(value: Any) -> Any:
    if value is None or _is_missing(value):
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return value
    return value


def infer_contract(df: pd.DataFrame, name: str = "dataset", *, target: str | None = None) -> DataContract:
    """A starting contract from data: observed types, ranges and categories, nullability where empty
    values occur. A user edits it (widen ranges, add keys) rather than writing one from scratch."""
    columns: list[ColumnContract] = []
    for col_name in df.columns:
        series = df[col_name]
        nullable = bool(series.isna().any())
        dtype = _infer_dtype(series)
        lo = hi = None
        cats: tuple[str, ...] | None = None
        if dtype in ("int", "float") and series.notna().any():
            lo, hi = float(series.min()), float(series.max())
        elif dtype == "string":
            values = series.dropna().astype(str).unique()
            if len(values) <= CATEGORY_LIMIT:
                cats = tuple(sorted(values))
        columns.append(ColumnContract(str(col_name), dtype, nullable, lo, hi, cats))
    unique = tuple(
        c.name
        for c in columns
        if _looks_like_key(c.name) and c.dtype in ("int", "string") and not c.nullable and df[c.name].is_unique
    )[:1]
    return DataContract(name=name, columns=tuple(columns), unique=unique, target=target)


def _looks_like_key(name: str) -> bool:
    lowered = name.lower()
    return lowered in ("id", "key", "rownames") or lowered.endswith(("_id", "_key", "_no"))


def _infer_dtype(series: pd.Series) -> DType:
    kind = series.dtype.kind
    if kind == "b" or str(series.dtype) == "boolean":
        return "bool"
    if kind in "iu":
        return "int"
    if kind == "f":
        return "float"
    if kind == "M":
        values = series.dropna()
        return "date" if len(values) and bool((values == values.dt.normalize()).all()) else "datetime"
    return "string"
