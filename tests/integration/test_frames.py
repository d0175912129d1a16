"""Whole-book reads as columns (`core.frames.read_frame`): one SQL statement straight into a frame of the types
asked, integers, text, dates, booleans and nulls alike, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import polars as pl

from microlend.core.frames import _frame_of_columns, read_frame
from microlend.core.uow import UnitOfWork

SCHEMA = {"id": pl.Int64, "name": pl.Utf8, "due": pl.Date, "paid": pl.Boolean, "days": pl.Int32}
SQL = """
SELECT 1, 'a', '2026-11-30', (1 = 1), 12 UNION ALL
SELECT 2, NULL, NULL, (1 = 0), NULL UNION ALL
SELECT :big, '商户', '2024-02-29', NULL, -3
"""


def test_a_read_comes_back_as_columns_of_the_types_asked(uow: UnitOfWork) -> None:
    with uow:
        got = read_frame(uow.session, SQL, {"big": 2**40}, SCHEMA)
    want = pl.DataFrame({"id": [1, 2, 2**40], "name": ["a", None, "商户"],
                         "due": [date(2026, 11, 30), None, date(2024, 2, 29)], "paid": [True, False, None],
                         "days": [12, None, -3]}, schema=SCHEMA)
    assert got.sort("id").equals(want)


def test_rows_turned_into_columns_row_wise_or_column_by_column_are_the_same() -> None:
    rows = [(1, "a", "2026-11-30", 1, 12), (2, None, None, 0, None), (3, "b", "2024-02-29", None, -3)]
    raw = pl.DataFrame(rows, schema={"id": pl.Int64, "name": pl.Utf8, "due": pl.String, "paid": pl.Int64,
                                     "days": pl.Int32}, orient="row")
    row_wise = raw.with_columns(pl.col("due").str.to_date("%Y-%m-%d"), pl.col("paid").cast(pl.Boolean))
    assert _frame_of_columns(rows, SCHEMA).equals(row_wise)
