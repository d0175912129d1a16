"""Database engine, metadata, and the exact column types shared by every module."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, DateTime, Engine, MetaData, String, Text, create_engine, event, literal
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, QueryableAttribute, Session, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

from microlend.core.money import from_storage, to_storage

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Amount(TypeDecorator[Decimal]):
    """An exact amount stored as integer ten-thousandths (BIGINT) on every database.

    Set-based SQL can add and compare the raw integers; Python always sees Decimal."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        return None if value is None else to_storage(Decimal(value))

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else from_storage(int(value))


class Rate(TypeDecorator[Decimal]):
    """An exact rate or ratio (e.g. an annual interest rate), stored as its decimal string."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else str(Decimal(value))

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on both SQLite (which drops the zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC timestamp is needed")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_JSON_TEXT = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str)  # as json.dumps(..., same options)


def json_text(value: Any) -> str | None:
    """The text a JSONText column stores for `value` (None: SQL NULL)."""
    return None if value is None else _JSON_TEXT.encode(value)


class JSONText(TypeDecorator[Any]):
    """JSON stored as text with sorted keys, the same on every database (and hashable as stored)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return json_text(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


class json_scalar(FunctionElement[str]):  # noqa: N801 (an SQL function, named as one)
    """The JSON text of the value at `path` ("model.pd": keys apart by dots) in a JSONText column: a number
    exactly as stored, a string in its quotes, `null`; SQL NULL where the path leads nowhere. The same on
    SQLite and PostgreSQL, so a figure inside stored JSON is read without decoding the whole document
    (`json_decimal` turns the text into a Decimal)."""

    type = Text()
    inherit_cache = True
    name = "json_scalar"

    def __init__(self, column: ColumnElement[Any] | QueryableAttribute[Any], path: str) -> None:
        super().__init__(column, literal(path, Text()))


@compiles(json_scalar, "sqlite")
def _json_scalar_sqlite(element: json_scalar, compiler: SQLCompiler, **kw: Any) -> str:
    column, path = list(element.clauses)
    return f"({compiler.process(column, **kw)} -> ('$.' || {compiler.process(path, **kw)}))"


@compiles(json_scalar, "postgresql")
def _json_scalar_postgresql(element: json_scalar, compiler: SQLCompiler, **kw: Any) -> str:
    column, path = list(element.clauses)
    return (f"CAST(CAST({compiler.process(column, **kw)} AS JSON) #> "
            f"string_to_array({compiler.process(path, **kw)}, '.') AS TEXT)")


def json_decimal(text: str | None) -> Decimal | None:
    """A `json_scalar` read as a Decimal (a number, or a number written as a string); None for null or none."""
    if text is None or text == "null":
        return None
    return Decimal(text.strip('"'))


SQLITE_BUSY_TIMEOUT_S = 30


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy emits BEGIN itself (below), so the driver must not start transactions on its own.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run after the write lock is let go (below)
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    cursor.close()


READ_ONLY = "microlend_read_only"
"""Execution option of a transaction that only reads: on SQLite it begins deferred and takes no write lock."""
READ_APART = "microlend_read_apart"
"""Execution option of a read-only unit of work on a SQLite file: its `read_frame` statements run in processes of
their own, each on a connection of its own (`core.frames`)."""


class SQLiteWriteGate:
    """Writers to one SQLite file take its write lock at BEGIN (`BEGIN IMMEDIATE`), so a transaction that
    reads and then writes never fails on a concurrent writer. Waiting is arranged here rather than in
    SQLite's busy handler, whose sleeps grow from 1 ms to 100 ms and make a queue of short transactions
    slow: threads of one process queue on a lock (woken at once when it is released), and a process
    retries a busy BEGIN every 0.2 ms until the busy timeout. A transaction that only reads (`READ_ONLY`)
    begins deferred and waits for nobody.

    SQLite's automatic checkpoint would copy the write-ahead log into the database (and fsync) inside the
    commit of whichever writer crossed 1,000 pages, with the next writers queued behind it. Instead, after
    a commit has let the next writer in, the committing thread runs a passive checkpoint when the last one
    in this process is `checkpoint_every_s` old: it blocks no reader or writer, and the log stays small."""

    def __init__(self, timeout_s: float, checkpoint_every_s: float = 1.0) -> None:
        self.timeout_s = timeout_s
        self.checkpoint_every_s = checkpoint_every_s
        self._lock = threading.Lock()
        self._owner: Any = None  # the DBAPI connection whose transaction holds the lock
        self._last_checkpoint = 0.0

    def begin(self, conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
            return
        if not self._lock.acquire(timeout=self.timeout_s):
            raise sqlite3.OperationalError("database is locked (waited for another writer of this process)")
        try:
            self._begin_immediate(conn.connection.dbapi_connection)
        except BaseException:
            self._lock.release()
            raise
        self._owner = conn.connection.dbapi_connection

    def _begin_immediate(self, dbapi_connection: Any) -> None:
        deadline = time.monotonic() + self.timeout_s
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA busy_timeout=0")
            while True:
                try:
                    cursor.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as e:
                    if "locked" not in str(e) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.0002)
        finally:
            cursor.execute(f"PRAGMA busy_timeout={int(self.timeout_s * 1000)}")
            cursor.close()

    def committed(self, dbapi_connection: Any) -> None:
        self.end(dbapi_connection)
        now = time.monotonic()
        if now - self._last_checkpoint < self.checkpoint_every_s:
            return
        self._last_checkpoint = now
        raw = getattr(dbapi_connection, "dbapi_connection", dbapi_connection)
        try:
            raw.execute("PRAGMA wal_checkpoint(PASSIVE)").close()
        except sqlite3.Error:  # a checkpoint that cannot run now runs after a later commit
            self._last_checkpoint = 0.0

    def end(self, dbapi_connection: Any, *_: Any) -> None:
        """After COMMIT or ROLLBACK (or when the connection goes back to the pool, is invalidated or
        closed without either): let the next writer in."""
        raw = getattr(dbapi_connection, "dbapi_connection", dbapi_connection)
        if raw is not None and self._owner is raw:
            self._owner = None
            self._lock.release()


def _install_write_gate(engine: Engine, timeout_s: float) -> None:
    gate = SQLiteWriteGate(timeout_s)
    dialect = engine.dialect
    do_commit, do_rollback = dialect.do_commit, dialect.do_rollback

    def commit(dbapi_connection: Any) -> None:
        try:
            do_commit(dbapi_connection)
        except BaseException:
            gate.end(dbapi_connection)
            raise
        gate.committed(dbapi_connection)

    def rollback(dbapi_connection: Any) -> None:
        try:
            do_rollback(dbapi_connection)
        finally:
            gate.end(dbapi_connection)

    dialect.do_commit = commit  # type: ignore[method-assign]
    dialect.do_rollback = rollback  # type: ignore[method-assign]
    event.listen(engine, "begin", gate.begin)
    for safety_net in ("checkin", "invalidate", "close"):
        event.listen(engine, safety_net, gate.end)


#: The databases Microlend is built and tested on.
SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout, and its folder is created. Another
    kind of database is refused with a ValueError naming the setting (the commands show it as a user error)."""
    backend = url.split(":", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
    if backend not in SUPPORTED_BACKENDS:
        raise ValueError(f"MICROLEND_DATABASE_URL: {(backend or repr(url))!s} is not a database Microlend runs on; "
                         "use SQLite (sqlite:///var/microlend.db) or PostgreSQL "
                         "(postgresql://USER@HOST:5432/DATABASE)")
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
                               **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        _install_write_gate(engine, SQLITE_BUSY_TIMEOUT_S)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine, IDLE_PING_AFTER_S)
    return engine


IDLE_PING_AFTER_S = 5.0


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    """A pooled connection that has been idle for `idle_s` is tested before use and replaced if the server
    dropped it (restart, fail-over, a firewall's idle timeout), so no request fails on a dead connection.
    A busy pool is not pinged at all: `pool_pre_ping` would add a round trip to every transaction."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_s:
            return
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_connection.rollback()
        except Exception as exc:  # any failure: the pool discards this connection and connects anew
            raise DisconnectionError(f"idle connection is gone: {exc}") from exc


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    session = factory()
    try:
        yield session
    finally:
        session.close()


def is_postgres(engine_or_session: Engine | Session) -> bool:
    bind = engine_or_session.get_bind() if isinstance(engine_or_session, Session) else engine_or_session
    return bind.dialect.name == "postgresql"
