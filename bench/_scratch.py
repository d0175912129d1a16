"""What the benchmark scripts share: a scratch database (a temporary SQLite file, or a new PostgreSQL database
on MICROLEND_BENCH_PG dropped afterwards), the environment a bank's process needs, and percentiles."""

from __future__ import annotations

import os
import random
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

ROOT = Path(__file__).resolve().parents[1]
PG_SERVER = os.environ.get("MICROLEND_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")


def bench_environment() -> None:
    """The repository on the path and the keys a test-mode bank needs (never a deployment's)."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("MICROLEND_SECRET_KEY", "bench-secret-key-0123456789-abcdefghij")
    os.environ.setdefault("MICROLEND_AUDIT_KEY", "bench-audit-key-0123456789-abcdefghijkl")
    os.environ.setdefault("MICROLEND_MODE", "test")


def scratch_database(backend: str, prefix: str) -> tuple[str, Callable[[], None]]:
    """(url, drop): a fresh database to migrate and fill, and how to get rid of it."""
    if backend != "postgresql":
        return f"sqlite:///{tempfile.mkdtemp(prefix=f'{prefix}-')}/bench.db", lambda: None
    return _new_pg_database(f"{prefix.replace('-', '_')}_{random.randrange(10**8)}")


def _admin() -> Engine:
    """An engine on PG_SERVER's maintenance database, to create and drop databases."""
    return create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")


def _seed_file(name: str) -> Path:
    """Where the SQLite seed kept as `name` lies."""
    return Path(tempfile.gettempdir()) / "microlend-bench-seeds" / f"{name}.db"


def _new_pg_database(name: str, template: str | None = None) -> tuple[str, Callable[[], None]]:
    """(url, drop) of a new PostgreSQL database `name` on PG_SERVER (a copy of `template`, if given)."""
    admin = _admin()
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))

    def drop() -> None:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return f"{PG_SERVER}/{name}", drop


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def schema_hash(extra: str = "") -> str:
    """Eight hex digits naming every table's PostgreSQL definition (columns, indexes, storage options) and
    `extra` (how a seed lays its rows out): a seed kept under an older schema is never taken for this one's."""
    import hashlib

    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateIndex, CreateTable

    from microlend.core.db import Base

    dialect = postgresql.dialect()
    ddl = [str(CreateTable(t).compile(dialect=dialect)) for t in Base.metadata.sorted_tables]
    ddl += sorted(str(CreateIndex(i).compile(dialect=dialect)) for t in Base.metadata.sorted_tables for i in t.indexes)
    ddl.append(extra)
    return hashlib.sha1(";".join(ddl).encode()).hexdigest()[:8]


def kept_copy(backend: str, name: str) -> tuple[str, Callable[[], None]] | None:
    """(url, drop) of a fresh copy of the seed kept as `name` (a SQLite file under the temporary directory, or a
    PostgreSQL database used as a template), or None when none is kept."""
    import shutil
    import uuid

    if backend != "postgresql":
        kept = _seed_file(name)
        if not kept.exists():
            return None
        folder = tempfile.mkdtemp(prefix=f"{name}-")
        shutil.copyfile(kept, Path(folder) / "bench.db")
        return f"sqlite:///{folder}/bench.db", lambda: shutil.rmtree(folder, ignore_errors=True)
    admin = _admin()
    with admin.connect() as c:
        exists = c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is not None
    admin.dispose()
    return _new_pg_database(f"{name[:40]}_{uuid.uuid4().hex[:8]}", template=name) if exists else None


def keep_seed(backend: str, url: str, name: str) -> None:
    """Keep the seeded database at `url` as `name` for later `kept_copy`s (the SQLite file copied, the
    PostgreSQL database copied as a template)."""
    import shutil

    if backend != "postgresql":
        kept = _seed_file(name)
        kept.parent.mkdir(exist_ok=True)
        shutil.copyfile(url.removeprefix("sqlite:///"), kept)
        return
    admin = _admin()
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{url.rsplit("/", 1)[-1]}"'))
    admin.dispose()
