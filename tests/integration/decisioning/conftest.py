"""A database of the test's own (a copy of the Alembic-migrated template, on SQLite and PostgreSQL) with one
bank on the default policy, and its staff as principals."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from microlend.core.db import make_session_factory
from microlend.core.identity import Principal, Role
from microlend.core.tenancy import Tenant, create_tenant
from microlend.core.uow import UnitOfWork


@pytest.fixture
def database_url(fresh_db_url: str) -> str:
    return fresh_db_url


@pytest.fixture
def uow(fresh_engine: Engine) -> UnitOfWork:
    return UnitOfWork(make_session_factory(fresh_engine))


@pytest.fixture
def bank(uow: UnitOfWork) -> Tenant:
    return create_tenant(uow, "bank-a")


@pytest.fixture
def other_bank(uow: UnitOfWork) -> Tenant:
    return create_tenant(uow, "bank-b")


def staff(bank: Tenant, user_id: int, username: str, *roles: Role) -> Principal:
    return Principal(user_id=user_id, tenant_id=bank.id, username=username, roles=frozenset(roles))


@pytest.fixture
def analyst(bank: Tenant) -> Principal:
    return staff(bank, 11, "li.analyst", Role.RISK_ANALYST)


@pytest.fixture
def second_analyst(bank: Tenant) -> Principal:
    return staff(bank, 12, "wang.analyst", Role.RISK_ANALYST)


@pytest.fixture
def officer(bank: Tenant) -> Principal:
    return staff(bank, 13, "zhao.officer", Role.CREDIT_OFFICER)
