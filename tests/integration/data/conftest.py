"""The data module's tests run on the shared family (tests/conftest.py): each test gets a migrated database of
its own (on SQLite and PostgreSQL), since some count datasets and audit rows across the whole database."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from microlend.core.db import make_session_factory
from microlend.core.identity import Principal, Role
from microlend.core.tenancy import create_tenant
from microlend.core.uow import UnitOfWork


@pytest.fixture
def database_url(fresh_db_url: str) -> str:
    return fresh_db_url


@pytest.fixture
def uow(fresh_engine: Engine) -> UnitOfWork:
    return UnitOfWork(make_session_factory(fresh_engine))


@pytest.fixture
def tenant_id(uow: UnitOfWork) -> int:
    return create_tenant(uow, "t1").id


@pytest.fixture
def analyst(tenant_id: int) -> Principal:
    return Principal(user_id=7, tenant_id=tenant_id, username="analyst", roles=frozenset({Role.RISK_ANALYST}))
