"""Set-based reads and writes as columns: one SQL statement straight into a Polars frame, and a frame written in
bulk, without building an ORM object (or a Decimal) per row. What a whole-book job (the early-warning scan, the
monthly behaviour score) reads and writes by the million.

PostgreSQL: `COPY (query) TO STDOUT` / `COPY table FROM STDIN` through psycopg, parsed and written by Polars
as CSV (a read turns JIT compilation off for the rest of its transaction). SQLite: the driver's cursor in the
session's connection (one `executemany` in the session's transaction for writes), or, in a read-only unit of
work reading apart (`UnitOfWork.reading_apart`), a connection of its own in a Python process of its own, which
sends the frame back as Arrow IPC: reads made at once then share the cores, where in threads of one process they
take turns at the GIL while Python's sqlite3 builds their rows. Queries name their parameters
`:name`; amounts stay the stored integer ten-thousandths (`storage_to_cents` turns them into integer cents
exactly)."""

from __future__ import annotations

import contextlib
import io
import logging
import math
import pickle
import re
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from microlend.core.db import READ_APART, SQLITE_BUSY_TIMEOUT_S

log = logging.getLogger(__name__)
_PARAM = re.compile(r"(?<!:):([A-Za-z_][A-Za-z0-9_]*)")


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def read_frame(session: Session, sql: str, params: Mapping[str, Any], schema: Mapping[str, Any]) -> pl.DataFrame:
    """The rows of `sql` (its columns in the order of `schema`) as a frame of `schema`'s types, in the
    session's transaction (in a read-only unit of work reading apart, on a connection of its own in a process of
    its own). Dates come back as ISO text on SQLite and are parsed by Polars."""
    connection = session.connection()
    if _dialect(session) == "postgresql":
        from psycopg import sql as psql

        raw = connection.connection.driver_connection
        assert raw is not None
        statement = psql.SQL(_PARAM.sub(lambda m: "{" + m.group(1) + "}", sql.replace("{", "{{").replace("}", "}}")))
        bound = statement.format(**{k: psql.Literal(v) for k, v in params.items()})
        buffer = io.BytesIO()
        with contextlib.ExitStack() as block:
            if raw.autocommit:  # a read-only unit of work reads outside a transaction: this read in one of its own,
                block.enter_context(raw.transaction())  # or SET LOCAL would not hold for it
            with raw.cursor() as cursor:
                # a whole-book plan is costed high enough to be JIT-compiled, which takes seconds and saves less
                cursor.execute("SET LOCAL jit = off")
            with raw.cursor() as cursor, cursor.copy(
                    psql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(bound)) as copy:
                for chunk in copy:
                    buffer.write(chunk)
        if buffer.tell() == 0:
            return pl.DataFrame(schema=dict(schema))
        buffer.seek(0)
        binary = [n for n, t in schema.items() if t == pl.Binary]
        boolean = [n for n, t in schema.items() if t == pl.Boolean]  # PostgreSQL writes t / f
        frame = pl.read_csv(buffer, has_header=False, new_columns=list(schema),
                            schema={n: pl.String if t in (pl.Binary, pl.Boolean) else t for n, t in schema.items()})
        return frame.with_columns([pl.col(n).str.strip_prefix("\\x").str.decode("hex") for n in binary]
                                  + [(pl.col(n) == "t").alias(n) for n in boolean])
    database = connection.engine.url.database
    values = {k: _sqlite_value(v) for k, v in params.items()}
    if connection.get_execution_options().get(READ_APART) and database and database != ":memory:" \
            and "mode=memory" not in database:
        packed = _read_in_process_apart(database, sql, values, schema)
        if packed is not None:
            return pl.read_ipc(io.BytesIO(packed))
    driver = connection.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    try:
        rows = cursor.execute(sql, values).fetchall()
    finally:
        cursor.close()
    return _frame_of_rows(rows, schema)


def _read_in_process_apart(database: str, sql: str, params: Mapping[str, Any], schema: Mapping[str, Any]
                           ) -> bytes | None:
    """The frame's Arrow IPC, read by `core.read_apart` in a new Python process (`python -c`, so no program's main
    module runs again there), the job pickled to its standard input; None when it cannot be (a value that cannot
    be written into SQL, or the process failed), for the statement to be read, and an error of it raised, here."""
    try:
        statement = _PARAM.sub(lambda m: _sqlite_literal(params[m.group(1)]), sql)
    except (KeyError, ValueError):
        return None
    job = pickle.dumps((database, statement, dict(schema), SQLITE_BUSY_TIMEOUT_S * 1000))
    try:
        done = subprocess.run([sys.executable, "-c", "from microlend.core.read_apart import serve; serve()"],
                              input=job, capture_output=True, check=False)
    except OSError as error:  # no Python to start (an embedded interpreter, a process limit reached)
        log.warning("no process could be started for a read (%s), read in this one", error)
        return None
    if done.returncode != 0:
        log.warning("a read in a process of its own failed (exit %s), read in this one: %s", done.returncode,
                    done.stderr.decode(errors="replace")[-500:])
        return None
    return done.stdout


def _sqlite_literal(value: Any) -> str:
    """A parameter's value (as `_sqlite_value` gives it) written into SQLite's SQL."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    if isinstance(value, str) and "\x00" not in value:
        return "'" + value.replace("'", "''") + "'"
    raise ValueError(f"no SQL literal for {type(value).__name__}")


def _frame_of_rows(rows: list[Any], schema: Mapping[str, Any]) -> pl.DataFrame:
    """The rows of a SQLite cursor as a frame of `schema`'s types (dates from ISO text, booleans from 0 / 1)."""
    if not rows:
        return pl.DataFrame(schema=dict(schema))
    raw_types = {n: pl.String if t == pl.Date else pl.Int64 if t == pl.Boolean else t for n, t in schema.items()}
    try:  # rows to columns in Polars itself
        frame = pl.DataFrame(rows, schema=raw_types, orient="row")
    except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
        return _frame_of_columns(rows, schema)
    return frame.with_columns([pl.col(n).str.to_date("%Y-%m-%d") for n, t in schema.items() if t == pl.Date]
                              + [pl.col(n).cast(pl.Boolean) for n, t in schema.items() if t == pl.Boolean])


def _frame_of_columns(rows: list[Any], schema: Mapping[str, Any]) -> pl.DataFrame:
    """The rows of a SQLite cursor as a frame of `schema`'s types, column by column."""
    columns = list(zip(*rows, strict=True))
    series = []
    for (name, dtype), values in zip(schema.items(), columns, strict=True):
        if dtype == pl.Date:
            series.append(pl.Series(name, values, dtype=pl.String).str.to_date("%Y-%m-%d"))
        elif dtype == pl.Boolean:  # SQLite keeps booleans as 0 / 1
            series.append(pl.Series(name, values, dtype=pl.Int64).cast(pl.Boolean))
        else:
            series.append(pl.Series(name, values, dtype=dtype))
    return pl.DataFrame(series)


def _sqlite_value(value: Any) -> Any:
    """A parameter as SQLAlchemy stores it on SQLite: dates ISO, timestamps UTC without the zone."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value


def storage_to_cents(column: str | pl.Expr) -> pl.Expr:
    """Stored integer ten-thousandths -> integer cents, rounded half to even (as `Decimal.to_integral_value`)."""
    x = pl.col(column) if isinstance(column, str) else column
    whole, rest = x // 100, x % 100
    up = (rest > 50) | ((rest == 50) & (whole % 2 == 1))
    return (whole + up.cast(pl.Int64)).cast(pl.Int64)


def write_frame(session: Session, table: str, frame: pl.DataFrame) -> int:
    """Insert every row of `frame` (its column names are the table's) in the session's transaction: COPY on
    PostgreSQL, one `executemany` on SQLite. Columns are written as they are (JSON columns as their text). A row
    the table's constraints refuse raises SQLAlchemy's IntegrityError, as an ORM insert does."""
    if frame.height == 0:
        return 0
    connection = session.connection()
    try:
        return _write(connection, table, frame)
    except connection.dialect.dbapi.IntegrityError as error:  # type: ignore[union-attr]
        raise IntegrityError(f"write_frame {table}", None, error) from error


def _write(connection: Connection, table: str, frame: pl.DataFrame) -> int:
    names = frame.columns
    if connection.dialect.name == "postgresql":
        from psycopg import sql as psql

        raw = connection.connection.driver_connection
        assert raw is not None
        buffer = io.BytesIO()
        frame.write_csv(buffer, include_header=False, null_value="\\N", quote_style="non_numeric",
                        datetime_format="%Y-%m-%d %H:%M:%S%.6f+00:00")
        statement = psql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, NULL '\\N')").format(
            psql.Identifier(table), psql.SQL(", ").join(psql.Identifier(n) for n in names))
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            copy.write(buffer.getvalue())
        return frame.height
    driver = connection.connection.driver_connection
    assert driver is not None
    out = frame.with_columns([pl.col(n).cast(pl.String) for n, t in frame.schema.items()
                              if t in (pl.Date, pl.Datetime) or isinstance(t, pl.Datetime)])
    columns = ", ".join(f'"{n}"' for n in names)
    cursor = driver.cursor()
    try:
        cursor.executemany(f'INSERT INTO "{table}" ({columns}) VALUES ({", ".join("?" * len(names))})',
                           out.iter_rows())
    finally:
        cursor.close()
    return frame.height
