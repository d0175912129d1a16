"""What the benchmark scripts share: a scratch database (a temporary SQLite file, or a new PostgreSQL database
on MICROLEND_BENCH_PG dropped afterwards), the environment a bank's process needs, and percentiles."""

from __future__ import annotations

import os
import random
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, text

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
    name = f"{prefix.replace('-', '_')}_{random.randrange(10**8)}"
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return f"{PG_SERVER}/{name}", drop


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]
