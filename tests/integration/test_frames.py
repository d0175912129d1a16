"""Whole-book reads as columns (`core.frames.read_frame`): one SQL statement straight into a frame of the types
asked, integers, text, dates, booleans and nulls alike, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from sqlalchemy import text

from microlend.core import tenancy
from microlend.core.db import make_engine, make_session_factory
from microlend.core.frames import _frame_of_columns, _sqlite_literal, read_frame
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


def test_a_read_apart_comes_back_as_the_same_columns(uow: UnitOfWork) -> None:
    """On a SQLite file a read-only unit of work reading apart reads in a process of its own (through ADBC):
    the same frame, the values written into the statement as SQL (quotes, bytes, text with a quote)."""
    sql = SQL + " UNION ALL SELECT 4, :name, :day, :yes, length(:blob)"
    params = {"big": 2**40, "name": "O'Brien 商户", "day": "2026-12-01", "yes": True, "blob": b"\x00'\xff"}
    with uow:
        here = read_frame(uow.session, sql, params, SCHEMA)
    with uow.fresh().reading_apart().read_only() as ro:
        apart = read_frame(ro.session, sql, params, SCHEMA)
        empty = read_frame(ro.session, SQL + " LIMIT 0", {"big": 1}, SCHEMA)
    assert apart.sort("id").equals(here.sort("id"))
    assert apart.filter(pl.col("id") == 4).rows() == [(4, "O'Brien 商户", date(2026, 12, 1), True, 3)]
    assert empty.schema == pl.Schema(SCHEMA) and empty.height == 0


def test_a_column_without_a_value_in_its_first_rows_is_typed_by_the_rows_that_have_one(uow: UnitOfWork) -> None:
    sql = """WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows)
             SELECT i, CASE WHEN i > :rows - 2 THEN 'x' || i END, CASE WHEN i = :rows THEN '2026-12-01' END,
                    NULL FROM n"""
    schema = {"i": pl.Int64, "text": pl.Utf8, "on": pl.Date, "none": pl.Int32}
    with uow.fresh().reading_apart().read_only() as ro:
        got = read_frame(ro.session, sql, {"rows": 5000}, schema)
    assert got.schema == pl.Schema(schema) and got.height == 5000
    assert got.tail(2).to_dicts() == [{"i": 4999, "text": "x4999", "on": None, "none": None},
                                      {"i": 5000, "text": "x5000", "on": date(2026, 12, 1), "none": None}]
    assert got["text"].null_count() == 4998


def test_each_read_apart_sees_the_rows_committed_when_it_runs(uow: UnitOfWork) -> None:
    """As on PostgreSQL, where a read-only unit of work reads outside a transaction: a bank created (and
    committed) between two reads of one read-only unit of work reading apart is counted by the second."""
    count = "SELECT count(*) FROM tenants WHERE name LIKE 'frames-%'"
    with uow.fresh().reading_apart().read_only() as ro:
        before = read_frame(ro.session, count, {}, {"n": pl.Int64}).item()
        tenancy.create_tenant(uow.fresh(), "frames-later")
        after = read_frame(ro.session, count, {}, {"n": pl.Int64}).item()
        tenancy.create_tenant(uow.fresh(), "frames-later-still")
        last = read_frame(ro.session, count, {}, {"n": pl.Int64}).item()
    assert (after, last) == (before + 1, before + 2)


def test_a_statement_that_fails_apart_fails_as_it_does_here(uow: UnitOfWork) -> None:
    with uow, pytest.raises(Exception) as here:
        read_frame(uow.session, "SELECT no_such_column FROM tenants", {}, {"n": pl.Int64})
    with uow.fresh().reading_apart().read_only() as ro, pytest.raises(Exception) as apart:
        read_frame(ro.session, "SELECT no_such_column FROM tenants", {}, {"n": pl.Int64})
    assert type(apart.value) is type(here.value) and "no_such_column" in str(apart.value)


def test_a_database_in_memory_is_read_in_the_sessions_own_connection_even_apart() -> None:
    engine = make_engine("sqlite://")
    try:
        with UnitOfWork(make_session_factory(engine)).reading_apart().read_only() as ro:
            got = read_frame(ro.session, SQL, {"big": 2**40}, SCHEMA)
        assert got.height == 3 and got.schema == pl.Schema(SCHEMA)
    finally:
        engine.dispose()


def test_values_are_written_into_sqlite_sql_as_literals() -> None:
    assert [_sqlite_literal(v) for v in (None, True, 7, -2**40, 0.5, "it's", b"\x01\xab")] == [
        "NULL", "1", "7", "-1099511627776", "0.5", "'it''s'", "X'01ab'"]
    for bad in ("nul\x00", float("nan"), object()):
        with pytest.raises(ValueError):
            _sqlite_literal(bad)


def test_a_read_on_postgresql_is_not_jit_compiled_in_a_read_only_unit_of_work_either(
        uow: UnitOfWork, backend: str) -> None:
    """A read-only unit of work reads outside a transaction on PostgreSQL: the read takes one of its own, so that
    its `SET LOCAL jit = off` holds for it (and for nothing after it)."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL's JIT compiler")
    jit = {"jit": pl.Utf8}
    with uow:
        assert read_frame(uow.session, "SELECT current_setting('jit')", {}, jit).item() == "off"
    with uow.fresh().read_only() as ro:
        server = ro.session.execute(text("SELECT current_setting('jit')")).scalar_one()
        assert read_frame(ro.session, "SELECT current_setting('jit')", {}, jit).item() == "off"
        assert ro.session.execute(text("SELECT current_setting('jit')")).scalar_one() == server


def test_a_read_apart_that_cannot_start_its_process_is_read_here(
        uow: UnitOfWork, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.executable", "/nonexistent/python")
    with uow.fresh().reading_apart().read_only() as ro:
        got = read_frame(ro.session, SQL, {"big": 2**40}, SCHEMA)
    assert got.height == 3 and got.schema == pl.Schema(SCHEMA)
