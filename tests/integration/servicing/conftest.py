"""A fresh servicing database per test, on SQLite (a file in tmp_path) and on PostgreSQL (a private database
copied from a per-session template), built with ``Base.metadata.create_all``, with one tenant."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from tests.integration.servicing.kit import Bank

from microlend.core import tenancy
from microlend.core.db import Base, make_engine, make_session_factory
from microlend.core.identity import Principal, Role
from microlend.core.uow import UnitOfWork
from microlend.servicing import tables  # noqa: F401  (maps the servicing tables)
from microlend.servicing.service import setup_tenant

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
_PREFIX = f"servicing_{uuid.uuid4().hex[:8]}"
_count = itertools.count()


def _admin() -> Engine:
    return create_engine(f"{PG_SERVER}/test", isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A template database holding the empty schema; each test copies it (fast) and drops its copy."""
    name = f"{_PREFIX}_tpl"
    admin = _admin()
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as err:  # no server: the PostgreSQL half of the suite is skipped, not failed silently
        pytest.skip(f"PostgreSQL is not reachable: {err}")
    engine = make_engine(f"{PG_SERVER}/{name}")
    Base.metadata.create_all(engine)
    engine.dispose()
    yield name
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _new_tenant(engine: Engine, name: str, on: date) -> int:
    return tenancy.create_tenant(UnitOfWork(make_session_factory(engine)), name, business_date=on).id


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def db_engine(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setattr(tenancy, "TENANT_SETUP", [setup_tenant])
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'servicing.db'}")
        Base.metadata.create_all(engine)
        yield engine
        engine.dispose()
        return
    template = request.getfixturevalue("pg_template")
    name = f"{_PREFIX}_{next(_count)}"
    admin = _admin()
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    engine = make_engine(f"{PG_SERVER}/{name}")
    yield engine
    engine.dispose()
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


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
