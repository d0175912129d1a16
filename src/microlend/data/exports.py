"""The bank's own transaction history as Arrow chunks, for the Parquet export that point-in-time features read
at scale (`microlend batch export-parquet`): every booked movement up to the as-of date, with the account
holder's customer when known. The counterparty is left out (personal data the features do not need)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pyarrow as pa
from sqlalchemy import select

from microlend.batch.analytics import ParquetDataset, arrow_chunk
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.data.tables import BankAccountRow, BankTransactionRow

#: The exported transactions (partitioned by the month they were booked in).
TRANSACTION_SNAPSHOT = pa.schema([
    ("customer_id", pa.int64()), ("account_no", pa.string()), ("txn_ref", pa.string()), ("booked_on", pa.date32()),
    ("amount", pa.decimal128(18, 4)), ("balance_after", pa.decimal128(18, 4)), ("kind", pa.string()),
])
MONTH_OF = {"bank_transactions": "booked_on"}


def transactions_parquet(root: Path) -> ParquetDataset:
    return ParquetDataset(root / "bank_transactions", {
        "tenant_id": "BIGINT", "month": "VARCHAR", "customer_id": "BIGINT", "account_no": "VARCHAR",
        "txn_ref": "VARCHAR", "booked_on": "DATE", "amount": "DECIMAL(18,4)", "balance_after": "DECIMAL(18,4)",
        "kind": "VARCHAR"})


def transaction_snapshot(uow: UnitOfWork, who: Principal, as_of: date, *,
                         chunk_rows: int = 50_000) -> Iterator[pa.Table]:
    """The bank's transactions booked by `as_of`, in chunks ordered by account and reference."""
    who.require(Permission.MANAGE_DATASETS)
    t, a = BankTransactionRow, BankAccountRow
    stmt = (select(a.customer_id, t.account_no, t.txn_ref, t.booked_on, t.amount, t.balance_after, t.kind)
            .outerjoin(a, (a.tenant_id == t.tenant_id) & (a.account_no == t.account_no))
            .where(t.tenant_id == who.tenant_id, t.booked_on <= as_of)
            .order_by(t.account_no, t.booked_on, t.txn_ref))
    with uow.read_only(streamed=True):
        result = uow.session.execute(stmt, execution_options={"yield_per": chunk_rows})
        for rows in result.partitions(chunk_rows):
            yield arrow_chunk(list(rows), TRANSACTION_SNAPSHOT)
