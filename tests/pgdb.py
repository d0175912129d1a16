"""Private PostgreSQL databases for tests: created (empty, or as a copy of a template) and dropped around
their use. The server is the one at MICROLEND_TEST_PG_URL (trust auth on 127.0.0.1:5432 by default)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

PG_ADMIN_URL = os.environ.get("MICROLEND_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PG_SERVER = PG_ADMIN_URL.rsplit("/", 1)[0]


def _admin() -> Engine:
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def unique_name(prefix: str) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"{prefix}_{worker}_{uuid.uuid4().hex[:10]}"


def create_database(name: str, template: str | None = None) -> str:
    """Create database `name` (a copy of `template` if given) and return its URL. A server that cannot be
    reached skips the test, except on CI where PostgreSQL must be there."""
    admin = _admin()
    sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    try:
        with admin.connect() as conn:
            conn.execute(text(sql))
    except OperationalError as err:
        if os.environ.get("CI") or template:
            raise
        pytest.skip(f"PostgreSQL is not reachable at {PG_SERVER}: {err.__class__.__name__}")
    finally:
        admin.dispose()
    return f"{PG_SERVER}/{name}"


def drop_database(name: str) -> None:
    admin = _admin()
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def private_database(prefix: str, template: str | None = None) -> Iterator[str]:
    """Yield the URL of a new database `<prefix>_<worker>_<random>` (empty, or a copy of `template`), dropped
    afterwards; skip the test if the server is not there."""
    name = unique_name(prefix)
    url = create_database(name, template)
    try:
        yield url
    finally:
        drop_database(name)
