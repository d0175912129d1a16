"""Databases for tests, every one built by Alembic (`microlend.core.migrate.upgrade`): a migrated template per
backend, migrated once, and cheap copies of it (a file copy on SQLite, `CREATE DATABASE ... TEMPLATE` on
PostgreSQL) wherever a test needs a database of its own."""

from __future__ import annotations

import atexit
import shutil
import sqlite3
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from microlend.core.db import make_engine
from microlend.core.migrate import upgrade
from tests import pgdb

_lock = threading.Lock()
_sqlite_template: Path | None = None


def _migrate(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def sqlite_template() -> Path:
    """A migrated SQLite file, built once per process and never written to afterwards."""
    global _sqlite_template
    with _lock:
        if _sqlite_template is None:
            folder = Path(tempfile.mkdtemp(prefix="microlend-template-"))
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            path = folder / "template.db"
            _migrate(f"sqlite:///{path}")
            with sqlite3.connect(path) as conn:  # fold the write-ahead log into the file before copying it
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
            _sqlite_template = path
        return _sqlite_template


def pristine_sqlite_url(path: Path) -> str:
    """A migrated, empty SQLite database at `path` (a copy of the template), as a URL."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sqlite_template(), path)
    return f"sqlite:///{path}"


@dataclass
class Template:
    """A migrated database on one backend from which copies are made."""

    backend: str
    url: str

    @classmethod
    def build(cls, backend: str) -> Template:
        if backend == "sqlite":
            return cls(backend, f"sqlite:///{sqlite_template()}")
        if backend != "postgresql":
            raise ValueError(f"unknown test backend {backend!r}: use sqlite or postgresql")
        url = pgdb.create_database(pgdb.unique_name("ml_template"))
        try:
            _migrate(url)
        except BaseException:
            pgdb.drop_database(_name(url))
            raise
        return cls(backend, url)

    def copy(self, folder: Path, stem: str = "microlend") -> str:
        """A new database with the template's schema and rows; its URL."""
        if self.backend == "sqlite":
            return pristine_sqlite_url(folder / f"{stem}.db")
        return pgdb.create_database(pgdb.unique_name(stem), template=_name(self.url))

    def drop_copy(self, url: str) -> None:
        if self.backend == "postgresql":
            pgdb.drop_database(_name(url))

    def drop(self) -> None:
        if self.backend == "postgresql":
            pgdb.drop_database(_name(self.url))


def _name(url: str) -> str:
    return url.rsplit("/", 1)[1]
