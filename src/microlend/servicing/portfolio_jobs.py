"""组合分析批量作业: vintage curves and roll rates over a whole book on either batch engine (DuckDB here, or
Spark), from Arrow tables or the Parquet export, with the same statements the app runs on its database
(`portfolio_sql`) and the same assembly into curves and matrices (`portfolio`), so both engines give the same
figures as the page.

Also the point-in-time snapshot of loans and installments the export writes (`loans`, `loan_installments`):
what was known on the as-of date (a later repayment, closing or write-off is not yet there).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
from sqlalchemy import case, select

from microlend.batch.analytics import ParquetDataset, Source, arrow_chunk, run_query
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.servicing.portfolio import RollRates, Vintages, roll_matrices, vintage_curves
from microlend.servicing.portfolio_sql import Window, roll_sql, vintage_sql
from microlend.servicing.tables import InstallmentRow, LoanRow

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_MONEY = pa.decimal128(18, 4)

#: The exported loan snapshot (partitioned by the month of disbursement).
LOAN_SNAPSHOT = pa.schema([
    ("id", pa.int64()), ("customer_id", pa.int64()), ("product_id", pa.int64()), ("currency", pa.string()),
    ("principal", _MONEY), ("term_months", pa.int64()), ("disbursed_on", pa.date32()),
    ("maturity_date", pa.date32()), ("status", pa.string()), ("closed_on", pa.date32()),
])
#: The exported installments (partitioned by the month they fall due).
INSTALLMENT_SNAPSHOT = pa.schema([
    ("loan_id", pa.int64()), ("number", pa.int64()), ("due_date", pa.date32()), ("principal", _MONEY),
    ("interest", _MONEY), ("fee", _MONEY), ("paid_on", pa.date32()),
])
#: Which column each dataset is partitioned by month on.
MONTH_OF = {"loans": "disbursed_on", "loan_installments": "due_date"}

_SQL_TYPES = {pa.int64(): "BIGINT", pa.string(): "VARCHAR", pa.date32(): "DATE", _MONEY: "DECIMAL(18,4)"}


def _columns(schema: pa.Schema) -> dict[str, str]:
    return {"tenant_id": "BIGINT", "month": "VARCHAR", **{f.name: _SQL_TYPES[f.type] for f in schema}}


def portfolio_parquet(root: Path) -> dict[str, Source]:
    """The two inputs of the vintage and roll-rate jobs as the Parquet export under `root` holds them."""
    return {"loans": ParquetDataset(root / "loans", _columns(LOAN_SNAPSHOT)),
            "loan_installments": ParquetDataset(root / "loan_installments", _columns(INSTALLMENT_SNAPSHOT))}


# --- the jobs --------------------------------------------------------------------------------------------------


def vintage_counts_on(engine: str, window: Window, tenant_id: int, sources: Mapping[str, Source], *,
                      spark: SparkSession | None = None) -> list[tuple[int, int | None, int | None, int]]:
    """(cohort, month first 30+, month first 90+, loans) as `queries.vintage_counts` gives them from the database,
    ordered by cohort then month (never 30+ first)."""
    table = run_query(engine, vintage_sql(window, tenant_id, "duckdb"), sources, spark=spark)
    rows = [(int(c), None if k30 is None else int(k30), None if k90 is None else int(k90), int(n))
            for c, k30, k90, n in zip(*(table.column(i).to_pylist() for i in range(4)), strict=True)]
    return sorted(rows, key=lambda r: (r[0], -1 if r[1] is None else r[1], -1 if r[2] is None else r[2]))


def roll_counts_on(engine: str, window: Window, tenant_id: int, sources: Mapping[str, Source], *,
                   spark: SparkSession | None = None) -> list[tuple[int, str, str, int]]:
    """(month, state at the previous month end, state at this one, loans), ordered."""
    table = run_query(engine, roll_sql(window, tenant_id, "duckdb"), sources, spark=spark)
    rows = [(int(j), str(a), str(b), int(n))
            for j, a, b, n in zip(*(table.column(i).to_pylist() for i in range(4)), strict=True)]
    return sorted(rows)


def vintages_on(engine: str, window: Window, tenant_id: int, sources: Mapping[str, Source], *,
                spark: SparkSession | None = None) -> Vintages:
    """The bank's vintage curves on `engine` ("local" or "spark") over `sources` (Arrow tables or Parquet)."""
    counts = vintage_counts_on(engine, window, tenant_id, sources, spark=spark)
    return Vintages(window.as_of, window.months, vintage_curves(window, counts))


def roll_rates_on(engine: str, window: Window, tenant_id: int, sources: Mapping[str, Source], *,
                  spark: SparkSession | None = None) -> RollRates:
    """The bank's roll-rate matrices on `engine` over `sources`."""
    return roll_matrices(window, roll_counts_on(engine, window, tenant_id, sources, spark=spark))


# --- the export ------------------------------------------------------------------------------------------------


def _chunks(uow: UnitOfWork, stmt: object, schema: pa.Schema, chunk_rows: int) -> Iterator[pa.Table]:
    with uow.read_only(streamed=True):
        result = uow.session.execute(stmt, execution_options={"yield_per": chunk_rows})  # type: ignore[call-overload]
        for rows in result.partitions(chunk_rows):
            yield arrow_chunk(list(rows), schema)


def loan_snapshot(uow: UnitOfWork, who: Principal, as_of: date, *, chunk_rows: int = 50_000) -> Iterator[pa.Table]:
    """The bank's loans disbursed by `as_of` as they stood that day, in chunks of Arrow rows ordered by id."""
    who.require(Permission.VIEW_PORTFOLIO)
    closed = LoanRow.closed_on.is_not(None) & (LoanRow.closed_on <= as_of)
    stmt = (select(LoanRow.id, LoanRow.customer_id, LoanRow.product_id, LoanRow.currency, LoanRow.principal,
                   LoanRow.term_months, LoanRow.disbursed_on, LoanRow.maturity_date,
                   case((closed, LoanRow.status), else_="active"), case((closed, LoanRow.closed_on), else_=None))
            .where(LoanRow.tenant_id == who.tenant_id, LoanRow.disbursed_on <= as_of).order_by(LoanRow.id))
    return _chunks(uow, stmt, LOAN_SNAPSHOT, chunk_rows)


def installment_snapshot(uow: UnitOfWork, who: Principal, as_of: date, *,
                         chunk_rows: int = 50_000) -> Iterator[pa.Table]:
    """The installments of those loans, with the day each was paid when that was by `as_of`."""
    who.require(Permission.VIEW_PORTFOLIO)
    loans = select(LoanRow.id).where(LoanRow.tenant_id == who.tenant_id, LoanRow.disbursed_on <= as_of)
    paid = InstallmentRow.paid_on.is_not(None) & (InstallmentRow.paid_on <= as_of)
    stmt = (select(InstallmentRow.loan_id, InstallmentRow.number, InstallmentRow.due_date, InstallmentRow.principal,
                   InstallmentRow.interest, InstallmentRow.fee, case((paid, InstallmentRow.paid_on), else_=None))
            .where(InstallmentRow.tenant_id == who.tenant_id, InstallmentRow.loan_id.in_(loans))
            .order_by(InstallmentRow.loan_id, InstallmentRow.number))
    return _chunks(uow, stmt, INSTALLMENT_SNAPSHOT, chunk_rows)
