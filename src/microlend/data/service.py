"""Use cases of the credit data module for the API, pages and jobs: one function per use case.

Importing and reading datasets live in `importer`; this module adds the use cases built on them.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from microlend.core.errors import ValidationError
from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.data.accounts import AccountImport, import_bank_accounts
from microlend.data.contracts import DataContract
from microlend.data.importer import (
    CsvSource,
    DatasetInfo,
    ImportResult,
    ParquetSource,
    get_dataset,
    import_dataset,
    list_datasets,
    load_dataset,
    source_for_file,
)
from microlend.data.quality import QualityReport, default_bad, quality_report, render_html

#: The stored quality reports' layout: a report stored under another number is built again.
QUALITY_REPORT_LAYOUT = 1

#: Uploads larger than this are refused; bigger files are imported with `microlend data import`.
MAX_UPLOAD_BYTES = 100 * 1024 * 1024

__all__ = [
    "MAX_UPLOAD_BYTES",
    "DatasetInfo",
    "ImportResult",
    "dataset_quality",
    "dataset_quality_html",
    "get_dataset",
    "import_accounts_upload",
    "import_dataset",
    "import_upload",
    "list_datasets",
    "load_dataset",
]


def dataset_quality(
    uow: UnitOfWork,
    who: Principal,
    name: str,
    version: int | None = None,
    *,
    target: str | None = None,
    bad: Any = None,
    against: tuple[str, int | None] | None = None,
    bins: int = 10,
) -> QualityReport:
    """The quality report of a stored dataset version, optionally with drift against another one
    (e.g. this month's applications against the development sample)."""
    info = get_dataset(uow, who, name, version)
    df = load_dataset(uow, who, name, info.version)
    other = None
    other_name = "comparison"
    if against is not None:
        other_info = get_dataset(uow, who, against[0], against[1])
        other = load_dataset(uow, who, other_info.name, other_info.version)
        other_name = f"{other_info.name} v{other_info.version}"
    return quality_report(
        df,
        name=f"{info.name} v{info.version}",
        target=target,
        bad=bad,
        against=other,
        against_name=other_name,
        bins=bins,
    )


def default_target(info: DatasetInfo) -> tuple[str | None, str | None]:
    """The target a dataset's quality report is read against unless another is asked for: its contract's
    target, bad by the target's categories ("bad", or 1 of a 0/1 flag); (None, None) without one."""
    target = info.contract.get("target") or None
    if not target:
        return None, None
    columns = info.contract.get("columns") or info.columns
    column = next((c for c in columns if c.get("name") == target), {})
    return target, default_bad(column.get("categories"))


def _stored_quality_path(info: DatasetInfo, target: str | None, bad: Any) -> Path:
    """Where the quality report of a version (against a target) is kept: next to the version's file, named by
    its content hash and the question asked, so a version's report is built once."""
    question = json.dumps([QUALITY_REPORT_LAYOUT, info.content_hash, target, None if bad is None else str(bad)])
    key = hashlib.sha256(question.encode()).hexdigest()[:24]
    path = Path(info.path)
    return path.with_name(f"{path.stem}.quality-{key}.html")


def dataset_quality_html(uow: UnitOfWork, who: Principal, name: str, version: int | None = None, *,
                         target: str | None = None, bad: Any = None) -> str:
    """The quality report of a stored dataset version as a self-contained page. A version never changes, so
    its report is built on the first request (or at import) and stored; later views read it."""
    info = get_dataset(uow, who, name, version)
    path = _stored_quality_path(info, target, bad)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        pass
    html = render_html(dataset_quality(uow, who, name, info.version, target=target, bad=bad))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)  # a folder that cannot be written: served, built again next time
    return html


def store_quality_report(uow: UnitOfWork, who: Principal, name: str, version: int | None = None) -> None:
    """Build and store a version's quality report against its contract's target (the one its page shows)."""
    info = get_dataset(uow, who, name, version)
    target, bad = default_target(info)
    dataset_quality_html(uow, who, name, info.version, target=target if bad else None, bad=bad if target else None)


def import_upload(uow: UnitOfWork, who: Principal, *, data_dir: Path, name: str, filename: str, content: bytes,
                  contract_text: str | None, valid_only: bool) -> ImportResult:
    """Store an uploaded file (its bytes, its name and the contract as JSON text, when given) as the next
    version of a dataset under `data_dir`."""
    if not content:
        raise ValidationError("file: the uploaded file is empty", field="file")
    if len(content) > MAX_UPLOAD_BYTES:
        raise ValidationError(f"file: larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB; import it with "
                              "'microlend data import' instead", field="file")
    contract = None
    if contract_text and contract_text.strip():
        try:
            raw = json.loads(contract_text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"contract: not valid JSON ({exc.msg} at line {exc.lineno})",
                                  field="contract") from None
        contract = DataContract.from_dict(raw)
    suffix = Path(filename or "upload").suffix.lower()
    with tempfile.TemporaryDirectory(prefix="microlend-upload-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        source_for_file(filename or "upload")  # refuses anything but .csv and .parquet, naming the file
        source = source_for_file(path)
        path.write_bytes(content)
        return import_dataset(uow, who, name=name, source=source, contract=contract, valid_only=valid_only,
                              store=data_dir / "datasets")


def _upload_bytes(content: bytes, field: str) -> None:
    if not content:
        raise ValidationError(f"{field}: the uploaded file is empty", field=field)
    if len(content) > MAX_UPLOAD_BYTES:
        raise ValidationError(
            f"{field}: larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB; import it with "
            "'microlend data accounts import' instead",
            field=field,
        )


def import_accounts_upload(
    uow: UnitOfWork,
    who: Principal,
    *,
    accounts: tuple[str, bytes],
    transactions: tuple[str, bytes] | None,
    valid_only: bool,
) -> AccountImport:
    """Import uploaded core banking files (name and bytes of the accounts file, and of the transactions file
    when given) into the caller's bank's own account data."""
    _upload_bytes(accounts[1], "accounts")
    if transactions is not None:
        _upload_bytes(transactions[1], "transactions")
    with tempfile.TemporaryDirectory(prefix="microlend-upload-") as tmp:
        sources: list[CsvSource | ParquetSource | None] = []
        for field, upload in (("accounts", accounts), ("transactions", transactions)):
            if upload is None:
                sources.append(None)
                continue
            try:
                source_for_file(upload[0] or "upload")
            except ValidationError:
                raise ValidationError(f"{field}: '{upload[0]}' is neither .csv nor .parquet", field=field) from None
            path = Path(tmp) / f"{field}{Path(upload[0]).suffix.lower()}"
            path.write_bytes(upload[1])
            sources.append(source_for_file(path))
        accounts_source = sources[0]
        assert accounts_source is not None
        return import_bank_accounts(uow, who, accounts_source, sources[1], valid_only=valid_only)
