"""A fresh database per test: a SQLite file, and a private PostgreSQL database when one is reachable."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from microlend.core.db import Base, make_engine, make_session_factory
from microlend.core.identity import Principal, Role
from microlend.core.tenancy import create_tenant
from microlend.core.uow import UnitOfWork
from microlend.data import tables as _tables  # noqa: F401  (registers the datasets table)

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'microlend.db'}"
        return
    name = f"data_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError:
        admin.dispose()
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def uow(database_url: str) -> Iterator[UnitOfWork]:
    engine = make_engine(database_url)
    Base.metadata.create_all(engine)
    yield UnitOfWork(make_session_factory(engine))
    engine.dispose()


@pytest.fixture
def tenant_id(uow: UnitOfWork) -> int:
    return create_tenant(uow, "t1").id


@pytest.fixture
def analyst(tenant_id: int) -> Principal:
    return Principal(user_id=7, tenant_id=tenant_id, username="analyst", roles=frozenset({Role.RISK_ANALYST}))
