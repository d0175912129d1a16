"""A servicing database of the test's own (a copy of the Alembic-migrated template from tests/conftest.py, on
SQLite and PostgreSQL) with one tenant: these tests count postings and close-of-business runs database-wide."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from sqlalchemy import Engine
from tests.integration.servicing.kit import Bank

from microlend.core import tenancy
from microlend.core.db import make_session_factory
from microlend.core.identity import Principal, Role
from microlend.core.uow import UnitOfWork
from microlend.servicing.service import setup_tenant


def _new_tenant(engine: Engine, name: str, on: date) -> int:
    return tenancy.create_tenant(UnitOfWork(make_session_factory(engine)), name, business_date=on).id


@pytest.fixture
def db_engine(fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setattr(tenancy, "TENANT_SETUP", [setup_tenant])
    return fresh_engine


@pytest.fixture
def bank(db_engine: Engine) -> Bank:
    tenant_id = _new_tenant(db_engine, "t1", date(2026, 1, 15))
    who = Principal(user_id=1, tenant_id=tenant_id, username="officer", roles=frozenset({Role.ADMIN}))
    return Bank(db_engine, tenant_id, who)


@pytest.fixture
def other_bank(bank: Bank) -> Callable[[], Bank]:
    def make() -> Bank:
        tid = _new_tenant(bank.engine, "t2", date(2026, 1, 15))
        return Bank(bank.engine, tid, bank.principal(Role.ADMIN, tenant_id=tid))

    return make
