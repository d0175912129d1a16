"""A fresh database per test with one bank on the default policy, and its staff as principals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.pgdb import private_database

from microlend.bootstrap import load_modules
from microlend.core.db import Base, make_engine, make_session_factory
from microlend.core.identity import Principal, Role
from microlend.core.tenancy import Tenant, create_tenant
from microlend.core.uow import UnitOfWork
from microlend.decisioning import tables as _tables  # noqa: F401  (registers the decisioning tables)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'microlend.db'}"
        return
    with private_database("decisioning") as url:
        yield url


@pytest.fixture
def uow(database_url: str) -> Iterator[UnitOfWork]:
    engine = make_engine(database_url)
    Base.metadata.create_all(engine)
    load_modules()  # every module's tenant defaults, the default policy among them
    try:
        yield UnitOfWork(make_session_factory(engine))
    finally:
        engine.dispose()


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
