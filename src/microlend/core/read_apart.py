"""A whole-book read of a SQLite file in a Python process of its own (`core.frames`, `UnitOfWork.reading_apart`):
`python -c "from microlend.core.read_apart import serve; serve()"` takes one job from its standard input (the
pickled file name, statement with its values written in, and the columns' names and Polars types) and writes the
frame's Arrow IPC to its output.

The rows come through ADBC straight into Arrow columns (a third of the time of building Python rows). ADBC's
driver is a second copy of SQLite, which only a process that never opens the file with Python's sqlite3 may use:
SQLite keeps its locks per process, and of two copies in one process the second reads stale rows (measured). So
it is used only here, in a process that imports nothing else of the platform (nor SQLAlchemy, nor pyarrow), and
starts in half a second."""

from __future__ import annotations

import io
import pickle
import sys
from collections.abc import Mapping
from typing import Any

import polars as pl

#: ADBC's SQLite driver infers each column's type from the rows of a batch: one batch of the whole result, so a
#: column NULL in its first rows is typed by the rows that have a value
_WHOLE_RESULT = {"adbc.sqlite.query.batch_rows": str(1 << 30)}


def read(database: str, sql: str, schema: Mapping[str, Any], busy_timeout_ms: int) -> pl.DataFrame:
    """The rows of `sql` (its values written in) on a connection of its own to the SQLite file, as columns of
    `schema`'s types."""
    import adbc_driver_manager
    import adbc_driver_sqlite

    db = adbc_driver_sqlite.connect(database)
    try:
        connection = adbc_driver_manager.AdbcConnection(db)
        try:
            _query(connection, f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            frame = _query(connection, sql, **_WHOLE_RESULT)
        finally:
            connection.close()
    finally:
        db.close()
    return typed(frame, schema)


def _query(connection: Any, sql: str, **options: str) -> pl.DataFrame:
    """The result of one statement on an ADBC connection, with the statement's `options`."""
    import adbc_driver_manager

    statement = adbc_driver_manager.AdbcStatement(connection)
    try:
        statement.set_options(**options)
        statement.set_sql_query(sql)
        stream, _ = statement.execute_query()
        return pl.DataFrame(stream)
    finally:
        statement.close()


def typed(frame: pl.DataFrame, schema: Mapping[str, Any]) -> pl.DataFrame:
    """An Arrow result as columns of `schema`'s types (by position): dates from their ISO text, booleans from
    SQLite's 0 / 1, a column with no value at all (typed by ADBC as integers) as nulls of its type."""
    if frame.width != len(schema):
        raise ValueError(f"{frame.width} columns read, {len(schema)} expected")
    if frame.height == 0:
        return pl.DataFrame(schema=dict(schema))
    columns = []
    for column, (name, dtype) in zip(frame.iter_columns(), schema.items(), strict=True):
        if column.null_count() == frame.height:
            columns.append(pl.repeat(None, frame.height, dtype=dtype, eager=True).alias(name))
        elif dtype == pl.Date and column.dtype == pl.String:
            columns.append(column.str.to_date("%Y-%m-%d").alias(name))
        else:
            columns.append(column.cast(dtype, strict=True).alias(name))
    return pl.DataFrame(columns)


def serve() -> None:
    """The reading process's whole work: one job from standard input, its frame's Arrow IPC to the output."""
    database, sql, schema, busy_timeout_ms = pickle.loads(sys.stdin.buffer.read())
    out = io.BytesIO()
    read(database, sql, schema, busy_timeout_ms).write_ipc(out)
    sys.stdout.buffer.write(out.getvalue())
    sys.stdout.buffer.flush()
