"""Marketing's own database fixture: a fresh SQLite file, and a private PostgreSQL database created and
dropped around the tests, both built with `Base.metadata.create_all`; a tenant row per test."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

import microlend.core.tables
import microlend.marketing.tables
from microlend.core.db import Base, make_engine, make_session_factory
from microlend.core.identity import Principal, Role
from microlend.core.tables import TenantRow
from microlend.core.uow import UnitOfWork

PG_URL = os.environ.get("MICROLEND_MARKETING_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
_tenants = itertools.count(1)


def _pg_admin() -> Engine:
    return create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def marketing_engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("mkt") / "marketing.db"
        engine = make_engine(f"sqlite:///{path}")
        Base.metadata.create_all(engine)
        yield engine
        engine.dispose()
        return
    name = f"mkt_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin()
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL is not reachable at {PG_URL}: {exc.__class__.__name__}")
    engine = make_engine(PG_URL.rsplit("/", 1)[0] + f"/{name}")
    try:
        Base.metadata.create_all(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Bank:
    """A tenant inserted directly (no tenant-setup hooks) and ways to act in it."""

    tenant_id: int
    engine: Engine

    def uow(self) -> UnitOfWork:
        return UnitOfWork(make_session_factory(self.engine))

    def who(self, *roles: Role, user_id: int = 1) -> Principal:
        return Principal(user_id=user_id, tenant_id=self.tenant_id, username=f"user{user_id}",
                         roles=frozenset(roles or (Role.MARKETER,)))


def make_bank(engine: Engine) -> Bank:
    """Insert a new tenant row and return it as a Bank."""
    factory = make_session_factory(engine)
    with factory() as s:
        row = TenantRow(name=f"mkt-{os.getpid()}-{next(_tenants)}-{uuid.uuid4().hex[:6]}", display_name="Demo bank",
                        currency="CNY", locale="zh_CN", business_date=date(2026, 3, 2),
                        created_at=datetime(2026, 3, 1, tzinfo=UTC))
        s.add(row)
        s.commit()
        return Bank(row.id, engine)


@pytest.fixture
def mbank(marketing_engine: Engine) -> Bank:
    return make_bank(marketing_engine)


assert microlend.core.tables.TenantRow is TenantRow
