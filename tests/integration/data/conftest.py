"""A fresh database per test: a SQLite file, and a private PostgreSQL database when one is reachable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.pgdb import private_database

from microlend.core.db import Base, make_engine, make_session_factory
from microlend.core.identity import Principal, Role
from microlend.core.tenancy import create_tenant
from microlend.core.uow import UnitOfWork
from microlend.data import tables as _tables  # noqa: F401  (registers the datasets table)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'microlend.db'}"
        return
    with private_database("data") as url:
        yield url


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
