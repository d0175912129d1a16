"""Use cases of the credit data module for the API, pages and jobs: one function per use case.

Importing and reading datasets live in `importer`; this module adds the use cases built on them.
"""

from __future__ import annotations

import json
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
from microlend.data.quality import QualityReport, quality_report

#: Uploads larger than this are refused; bigger files are imported with `microlend data import`.
MAX_UPLOAD_BYTES = 100 * 1024 * 1024

__all__ = [
    "MAX_UPLOAD_BYTES",
    "DatasetInfo",
    "ImportResult",
    "dataset_quality",
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
