"""Import a dataset (数据集导入) from CSV, Parquet or a SQL query into the tenant's store.

The data is checked against its contract first; only then is a Parquet file written (atomically: a temp
file renamed into place) and its metadata and content hash recorded with an audit entry. By default a
contract violation refuses the whole import; with `valid_only=True` the valid rows are loaded and the
rejected ones are kept, with reasons, beside them. Nothing is ever loaded partially and silently.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.db import make_engine
from microlend.core.errors import Conflict, NotFound, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.settings import get_settings
from microlend.core.tables import TenantRow
from microlend.core.uow import UnitOfWork
from microlend.data.contracts import ContractReport, DataContract, Violation, infer_contract, validate
from microlend.data.tables import DatasetRow

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
#: How many problems an error message lists before it only counts the rest.
MESSAGE_LIMIT = 20


@dataclass(frozen=True)
class CsvSource:
    path: Path

    def describe(self) -> dict[str, Any]:
        return {"kind": "csv", "path": str(self.path)}


@dataclass(frozen=True)
class ParquetSource:
    path: Path

    def describe(self) -> dict[str, Any]:
        return {"kind": "parquet", "path": str(self.path)}


@dataclass(frozen=True)
class SqlSource:
    """A query against any database SQLAlchemy reaches (e.g. a core banking replica)."""

    url: str
    query: str

    def describe(self) -> dict[str, Any]:
        return {"kind": "sql", "url": _mask_password(self.url), "query": self.query}


Source = CsvSource | ParquetSource | SqlSource


def source_for_file(path: str | Path) -> CsvSource | ParquetSource:
    """Pick the reader from the file name: .csv (or .txt) or .parquet."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".csv", ".txt"):
        return CsvSource(p)
    if suffix in (".parquet", ".pq"):
        return ParquetSource(p)
    raise ValidationError(f"file: '{p.name}' is neither .csv nor .parquet", field="file")


def _mask_password(url: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def read_source(source: Source, contract: DataContract | None = None) -> pd.DataFrame:
    """Read the raw rows. Text columns of the contract are read as text, so '007' stays '007'."""
    if isinstance(source, SqlSource):
        return _read_query(source)
    try:
        if isinstance(source, CsvSource):
            text_columns = {c.name: "str" for c in contract.columns if c.dtype == "string"} if contract else {}
            return pd.read_csv(source.path, dtype=text_columns or None, skip_blank_lines=False)
        return pd.read_parquet(source.path)
    except FileNotFoundError:
        raise ValidationError(f"file: not found: {source.path}", field="file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise ValidationError(f"file: cannot read {source.path}: {exc}", field="file") from None
    except OSError as exc:  # pyarrow reports a broken Parquet file as an OSError subclass
        raise ValidationError(f"file: cannot read {source.path}: {exc}", field="file") from None


def _read_query(source: SqlSource) -> pd.DataFrame:
    try:
        engine = make_engine(source.url)
    except (SQLAlchemyError, ValueError) as exc:
        raise ValidationError(f"url: {exc}", field="url") from None
    try:
        with engine.connect() as conn:
            return pd.read_sql(text(source.query), conn)
    except (SQLAlchemyError, pd.errors.DatabaseError) as exc:
        orig = getattr(exc, "orig", None) or getattr(exc, "__cause__", None) or exc
        reason = str(getattr(orig, "orig", None) or orig).splitlines()[0]
        raise ValidationError(f"query: {reason}", field="query") from None
    finally:
        engine.dispose()


def content_hash(df: pd.DataFrame) -> str:
    """sha256 of a canonical form: columns in name order, rows in order, fixed text formatting.

    The same data gives the same hash whether it came from CSV, Parquet or SQL."""
    canonical = df[sorted(df.columns)].to_csv(
        index=False,
        lineterminator="\n",
        na_rep="",
        float_format="%.17g",
        date_format="%Y-%m-%dT%H:%M:%S.%f",
    )
    header = ",".join(f"{c}:{df[c].dtype}" for c in sorted(df.columns))
    return hashlib.sha256((header + "\n" + canonical).encode("utf-8")).hexdigest()


class ContractBroken(ValidationError):
    """An import refused by its contract; `violations` names each row and column at fault."""

    def __init__(self, message: str, violations: list[Violation]) -> None:
        super().__init__(message, field="data")
        self.violations = violations


@dataclass
class PreparedImport:
    """Checked data ready to store: the rows to load and the rows refused, each with its reasons."""

    data: pd.DataFrame
    rejected: pd.DataFrame
    report: ContractReport


def prepare_import(df: pd.DataFrame, contract: DataContract, *, valid_only: bool = False) -> PreparedImport:
    """Apply the contract. All-or-nothing refuses any violation; `valid_only` keeps the valid rows.

    A whole-column problem (e.g. a missing column) refuses the import in both modes."""
    if df.empty:
        raise ValidationError("data: the source has no rows", field="data")
    report = validate(df, contract)
    if report.ok:
        return PreparedImport(report.data, _rejected_frame(df, {}), report)
    if not valid_only or report.table_problems:
        raise ContractBroken(report.summary(MESSAGE_LIMIT), report.violations)
    reasons = report.reasons_by_row()
    bad_index = [row - 1 for row in reasons]
    good = df.reset_index(drop=True).drop(index=bad_index)
    if good.empty:
        raise ValidationError(f"data: no valid rows; {report.summary(MESSAGE_LIMIT)}", field="data")
    checked = validate(good, contract)
    if not checked.ok:  # cannot happen for row checks; keep the promise of no partial load regardless
        raise ValidationError(checked.summary(MESSAGE_LIMIT), field="data")
    return PreparedImport(checked.data, _rejected_frame(df, reasons), report)


def _rejected_frame(df: pd.DataFrame, reasons: dict[int, list[str]]) -> pd.DataFrame:
    rows = sorted(reasons)
    original = df.reset_index(drop=True).iloc[[r - 1 for r in rows]].astype("string")
    out = original.reset_index(drop=True)
    out.insert(0, "reasons", pd.Series(["; ".join(reasons[r]) for r in rows], dtype="string"))
    out.insert(0, "source_row", pd.Series(rows, dtype="int64"))
    return out


@dataclass(frozen=True)
class DatasetInfo:
    """The stored metadata of one dataset version."""

    id: int
    tenant_id: int
    name: str
    version: int
    rows: int
    columns: list[dict[str, Any]]
    content_hash: str
    contract: dict[str, Any]
    source: dict[str, Any]
    path: str
    rejected_rows: int
    rejected_path: str | None
    created_at: datetime
    created_by: str

    @classmethod
    def from_row(cls, row: DatasetRow) -> DatasetInfo:
        return cls(
            row.id,
            row.tenant_id,
            row.name,
            row.version,
            row.rows,
            list(row.columns),
            row.content_hash,
            dict(row.contract),
            dict(row.source),
            row.path,
            row.rejected_rows,
            row.rejected_path,
            row.created_at,
            row.created_by,
        )


@dataclass
class ImportResult:
    dataset: DatasetInfo
    rejected: pd.DataFrame


def default_store() -> Path:
    return get_settings().data_dir / "datasets"


def _write_atomically(df: pd.DataFrame, path: Path) -> None:
    """Write to a temp file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def import_dataset(
    uow: UnitOfWork,
    who: Principal,
    *,
    name: str,
    source: Source,
    contract: DataContract | None = None,
    valid_only: bool = False,
    store: Path | None = None,
) -> ImportResult:
    """Import a dataset as the next version of `name` in the caller's tenant.

    Without a contract one is inferred from the data and stored with it (so later versions can be held
    to it). Refused imports leave nothing behind: no file, no row, no audit entry."""
    who.require(Permission.MANAGE_DATASETS)
    if not _NAME.match(name):
        raise ValidationError("name: use 1-64 lowercase letters, digits, '-' or '_'", field="name")
    raw = read_source(source, contract)
    contract = contract or infer_contract(raw, name)
    prepared = prepare_import(raw, contract, valid_only=valid_only)
    root = (store if store is not None else default_store()).resolve()
    written: list[Path] = []
    try:
        with uow:
            s = uow.session
            tenant = s.get(TenantRow, who.tenant_id)
            if tenant is None:
                raise NotFound(f"tenant {who.tenant_id} not found")
            latest = s.execute(
                select(func.max(DatasetRow.version)).where(
                    DatasetRow.tenant_id == who.tenant_id, DatasetRow.name == name
                )
            ).scalar_one()
            version = (latest or 0) + 1
            folder = root / tenant.name / name
            path = folder / f"{version}.parquet"
            rejected_path = folder / f"{version}.rejected.parquet" if len(prepared.rejected) else None
            row = _dataset_row(who, name, version, contract, prepared, source, path, rejected_path)
            s.add(row)
            s.flush()  # claims the version number before any file is written
            _write_atomically(prepared.data, path)
            written.append(path)
            if rejected_path is not None:
                _write_atomically(prepared.rejected, rejected_path)
                written.append(rejected_path)
            audit.record(s, who, "dataset.import", "dataset", row.id, after=_audit_facts(row))
            info = DatasetInfo.from_row(row)
            uow.commit()
    except IntegrityError:
        for p in written:
            p.unlink(missing_ok=True)
        raise Conflict(
            f"name: dataset '{name}' was imported by someone else at the same time; retry", field="name"
        ) from None
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    return ImportResult(info, prepared.rejected)


def _dataset_row(
    who: Principal,
    name: str,
    version: int,
    contract: DataContract,
    prepared: PreparedImport,
    source: Source,
    path: Path,
    rejected_path: Path | None,
) -> DatasetRow:
    """The registry row of a new dataset version (its files are written after the row claims the version)."""
    return DatasetRow(
        tenant_id=who.tenant_id,
        name=name,
        version=version,
        rows=len(prepared.data),
        columns=[{"name": c.name, "dtype": c.dtype} for c in contract.columns if c.name in prepared.data.columns],
        content_hash=content_hash(prepared.data),
        contract=contract.to_dict(),
        source=source.describe(),
        path=str(path),
        rejected_rows=len(prepared.rejected),
        rejected_path=None if rejected_path is None else str(rejected_path),
        created_at=utcnow(),
        created_by=who.username,
    )


def _audit_facts(row: DatasetRow) -> dict[str, object]:
    return {
        "name": row.name,
        "version": row.version,
        "rows": row.rows,
        "content_hash": row.content_hash,
        "rejected_rows": row.rejected_rows,
        "source": row.source,
    }


def _require_read(who: Principal) -> None:
    if not (who.can(Permission.MANAGE_DATASETS) or who.can(Permission.TRAIN_MODELS)):
        who.require(Permission.MANAGE_DATASETS)


def list_datasets(uow: UnitOfWork, who: Principal) -> list[DatasetInfo]:
    """Every dataset version of the caller's tenant, newest version of each name first."""
    _require_read(who)
    with uow:
        rows = uow.session.execute(
            select(DatasetRow)
            .where(DatasetRow.tenant_id == who.tenant_id)
            .order_by(DatasetRow.name, DatasetRow.version.desc())
        ).scalars()
        return [DatasetInfo.from_row(r) for r in rows]


def get_dataset(uow: UnitOfWork, who: Principal, name: str, version: int | None = None) -> DatasetInfo:
    """One version of a dataset (the latest when no version is given); another tenant's is NotFound."""
    _require_read(who)
    with uow:
        query = select(DatasetRow).where(DatasetRow.tenant_id == who.tenant_id, DatasetRow.name == name)
        if version is not None:
            query = query.where(DatasetRow.version == version)
        row = uow.session.execute(query.order_by(DatasetRow.version.desc()).limit(1)).scalar_one_or_none()
        if row is None:
            suffix = f" version {version}" if version is not None else ""
            raise NotFound(f"dataset '{name}'{suffix} not found")
        return DatasetInfo.from_row(row)


def load_dataset(uow: UnitOfWork, who: Principal, name: str, version: int | None = None) -> pd.DataFrame:
    """Read a stored dataset and check its content hash, so a file changed on disk is noticed."""
    info = get_dataset(uow, who, name, version)
    try:
        df = pd.read_parquet(info.path)
    except FileNotFoundError:
        raise NotFound(f"dataset '{name}' version {info.version}: file {info.path} is missing") from None
    if content_hash(df) != info.content_hash:
        raise Conflict(f"dataset '{name}' version {info.version}: file content no longer matches its hash")
    return df
