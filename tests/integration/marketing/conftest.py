"""Marketing's tests run on the shared database of the session (tests/conftest.py, built by Alembic, on SQLite
and PostgreSQL), each with a tenant row of its own."""

from __future__ import annotations

import itertools
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine

from microlend.core.db import make_session_factory
from microlend.core.identity import Principal, Role
from microlend.core.tables import TenantRow
from microlend.core.uow import UnitOfWork

_tenants = itertools.count(1)


@pytest.fixture
def marketing_engine(engine: Engine) -> Engine:
    return engine


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

