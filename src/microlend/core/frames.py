"""Set-based reads and writes as columns: one SQL statement straight into a Polars frame, and a frame written in
bulk, without building an ORM object (or a Decimal) per row. What a whole-book job (the early-warning scan, the
monthly behaviour score) reads and writes by the million.

PostgreSQL: `COPY (query) TO STDOUT` / `COPY table FROM STDIN` through psycopg, parsed and written by Polars
as CSV (a read turns JIT compilation off for the rest of its transaction). SQLite: the driver's cursor in the
session's connection (one `executemany` in the session's transaction for writes). Queries name their parameters
`:name`; amounts stay the stored integer ten-thousandths (`storage_to_cents` turns them into integer cents
exactly)."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

_PARAM = re.compile(r"(?<!:):([A-Za-z_][A-Za-z0-9_]*)")


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def read_frame(session: Session, sql: str, params: Mapping[str, Any], schema: Mapping[str, Any]) -> pl.DataFrame:
    """The rows of `sql` (its columns in the order of `schema`) as a frame of `schema`'s types, in the
    session's transaction. Dates come back as ISO text on SQLite and are parsed by Polars."""
    connection = session.connection()
    if _dialect(session) == "postgresql":
        from psycopg import sql as psql

        raw = connection.connection.driver_connection
        assert raw is not None
        statement = psql.SQL(_PARAM.sub(lambda m: "{" + m.group(1) + "}", sql.replace("{", "{{").replace("}", "}}")))
        bound = statement.format(**{k: psql.Literal(v) for k, v in params.items()})
        buffer = io.BytesIO()
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
    driver = connection.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    try:
        rows = cursor.execute(sql, {k: _sqlite_value(v) for k, v in params.items()}).fetchall()
    finally:
        cursor.close()
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
