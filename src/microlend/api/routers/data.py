"""Datasets API (数据集): upload a CSV or Parquet file under a contract, list and read datasets, and their
quality reports as JSON or HTML. Thin: the importer and the quality report do the work."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from microlend.api.deps import CurrentPrincipal, UnitOfWorkDep, Version
from microlend.api.errors import problem
from microlend.api.routing import api_router
from microlend.api.security import report_page
from microlend.data import service
from microlend.data.importer import ContractBroken, DatasetInfo
from microlend.data.quality import render_html

router = api_router(prefix="/api/v1/datasets", tags=["datasets"])
accounts_router = api_router(prefix="/api/v1/data", tags=["datasets"])

#: Rejected rows shown in an answer (all of them are kept beside the dataset).
REJECTED_SHOWN = 50


class ColumnPublic(BaseModel):
    name: str
    dtype: str


class DatasetPublic(BaseModel):
    id: int
    name: str
    version: int
    rows: int
    columns: list[ColumnPublic]
    content_hash: str
    contract: dict[str, Any]
    source: dict[str, Any]
    rejected_rows: int
    created_at: datetime
    created_by: str

    @classmethod
    def from_domain(cls, d: DatasetInfo) -> DatasetPublic:
        source = {k: v for k, v in d.source.items() if k != "path"}  # server paths stay on the server
        return cls(id=d.id, name=d.name, version=d.version, rows=d.rows,
                   columns=[ColumnPublic(name=str(c["name"]), dtype=str(c["dtype"])) for c in d.columns],
                   content_hash=d.content_hash, contract=d.contract, source=source,
                   rejected_rows=d.rejected_rows, created_at=d.created_at, created_by=d.created_by)


class RejectedRow(BaseModel):
    source_row: int
    reasons: str


class ImportPublic(BaseModel):
    dataset: DatasetPublic
    rejected: list[RejectedRow]


class QualityPublic(BaseModel):
    """Per column: missing rate, distinct count, distribution, outliers, bad rate by bin and drift."""

    name: str
    rows: int
    columns: list[dict[str, Any]]
    target: str | None
    bad_value: str | None
    bad_rows: int | None
    bad_rate: float | None
    against_name: str | None
    against_rows: int | None


def data_root(request: Request) -> Path:
    root: Path = request.app.state.settings.data_dir
    return root


def violations_problem(exc: ContractBroken) -> JSONResponse:
    """A contract refusal as problem+json listing each row and column at fault."""
    errors = [{"row": v.row, "column": v.column, "check": v.check,
               "value": v.value if isinstance(v.value, int | float | str | bool) or v.value is None else str(v.value),
               "field": v.column or "data", "message": v.describe()} for v in exc.violations[:500]]
    return problem(422, exc.message, code=exc.code, field="data", errors=errors)


@router.post("", status_code=201, response_model=ImportPublic)
def upload_dataset(
    request: Request, who: CurrentPrincipal, uow: UnitOfWorkDep,
    name: Annotated[str, Form(min_length=1, max_length=64)],
    file: Annotated[UploadFile, File(description="a .csv or .parquet file")],
    contract: Annotated[str | None, Form(description="the data contract as JSON (inferred when absent)")] = None,
    valid_only: Annotated[bool, Form(description="load the valid rows and report the rejected ones")] = False,
) -> Any:
    content = file.file.read(service.MAX_UPLOAD_BYTES + 1)
    try:
        result = service.import_upload(uow, who, data_dir=data_root(request), name=name, filename=file.filename or "",
                               content=content, contract_text=contract, valid_only=valid_only)
    except ContractBroken as exc:
        return violations_problem(exc)
    rejected = [RejectedRow(source_row=int(r["source_row"]), reasons=str(r["reasons"]))
                for r in result.rejected.head(REJECTED_SHOWN).to_dict("records")]
    return JSONResponse(ImportPublic(dataset=DatasetPublic.from_domain(result.dataset),
                                     rejected=rejected).model_dump(mode="json"), status_code=201)


@router.get("")
def list_datasets(who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[DatasetPublic]:
    return [DatasetPublic.from_domain(d) for d in service.list_datasets(uow, who)]


@router.get("/{name}")
def get_dataset(name: str, who: CurrentPrincipal, uow: UnitOfWorkDep,
                version: Version = None) -> DatasetPublic:
    """One version of a dataset; the latest when no version is given."""
    return DatasetPublic.from_domain(service.get_dataset(uow, who, name, version))


@router.get("/{name}/quality")
def dataset_quality(name: str, who: CurrentPrincipal, uow: UnitOfWorkDep,
                    version: Version = None,
                    target: Annotated[str | None, Query(max_length=100)] = None,
                    bad: Annotated[str | None, Query(max_length=100)] = None,
                    against: Annotated[str | None, Query(max_length=64, description="dataset to compare")] = None,
                    ) -> QualityPublic:
    """Missing rates, distinct counts, distributions, outliers, bad rate by bin, drift against another one."""
    report = service.dataset_quality(uow, who, name, version, target=target or None, bad=bad,
                                     against=(against, None) if against else None)
    return QualityPublic.model_validate(report.to_dict())


@router.get("/{name}/quality.html", response_class=HTMLResponse)
def dataset_quality_html(name: str, who: CurrentPrincipal, uow: UnitOfWorkDep,
                         version: Version = None,
                         target: Annotated[str | None, Query(max_length=100)] = None,
                         bad: Annotated[str | None, Query(max_length=100)] = None,
                         against: Annotated[str | None, Query(max_length=64)] = None) -> HTMLResponse:
    """The same report as one self-contained HTML page with a chart per column."""
    report = service.dataset_quality(uow, who, name, version, target=target or None, bad=bad,
                                     against=(against, None) if against else None)
    return report_page(render_html(report))


class AccountRejectedRow(BaseModel):
    file: str
    source_row: int
    reasons: str


class AccountImportPublic(BaseModel):
    accounts_created: int
    accounts_updated: int
    accounts_matched: int
    transactions_loaded: int
    transactions_already_stored: int
    rejected: list[AccountRejectedRow]


@accounts_router.post("/bank-accounts/import", status_code=201, response_model=AccountImportPublic)
def import_bank_accounts(
    who: CurrentPrincipal, uow: UnitOfWorkDep,
    accounts: Annotated[UploadFile, File(description="accounts, a .csv or .parquet file")],
    transactions: Annotated[UploadFile | None, File(description="their transactions (.csv or .parquet)")] = None,
    valid_only: Annotated[bool, Form(description="load the valid rows and report the rejected ones")] = False,
) -> Any:
    """The bank's own accounts (and transactions) from core banking, matched to customers by ID number. All or
    nothing unless `valid_only`; a refusal lists each file, row and column at fault."""
    accounts_upload = (accounts.filename or "", accounts.file.read(service.MAX_UPLOAD_BYTES + 1))
    txn_upload = None
    if transactions is not None:
        txn_upload = (transactions.filename or "", transactions.file.read(service.MAX_UPLOAD_BYTES + 1))
    try:
        result = service.import_accounts_upload(uow, who, accounts=accounts_upload, transactions=txn_upload,
                                                valid_only=valid_only)
    except ContractBroken as exc:
        return violations_problem(exc)
    public = AccountImportPublic(
        accounts_created=result.accounts_created, accounts_updated=result.accounts_updated,
        accounts_matched=result.accounts_matched, transactions_loaded=result.transactions_loaded,
        transactions_already_stored=result.transactions_already_stored,
        rejected=[AccountRejectedRow(file=r.file, source_row=r.source_row, reasons=r.reasons)
                  for r in result.rejected[:REJECTED_SHOWN]])
    return JSONResponse(public.model_dump(mode="json"), status_code=201)
