"""A fresh SQLite database per test with one bank (set up with the risk module's starter) and its staff."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from microlend.core import tenancy
from microlend.core.db import Base, make_engine, make_session_factory
from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.risk import tables as _risk_tables  # noqa: F401  (registers the registry tables)
from microlend.risk.registry import setup_tenant


@dataclass
class Bank:
    uow: UnitOfWork
    engine: Engine
    tenant_id: int
    people: dict[str, Principal]
    store: Path


def _person(uow: UnitOfWork, tenant_id: int, username: str, roles: list[str]) -> Principal:
    with uow:
        row = tenancy.add_user(uow.session, tenant_id, username, "correct-horse-9", roles)
        principal = tenancy.principal_for(row)
        uow.commit()
    return principal


def open_bank(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str = "rural-bank") -> Bank:
    engine = make_engine(f"sqlite:///{tmp_path / 'microlend.db'}")
    Base.metadata.create_all(engine)
    uow = UnitOfWork(make_session_factory(engine))
    monkeypatch.setattr(tenancy, "TENANT_SETUP", [setup_tenant])
    tenant = tenancy.create_tenant(uow, name)
    people = {
        "wang": _person(uow, tenant.id, f"wang@{name}", ["risk_analyst"]),
        "li": _person(uow, tenant.id, f"li@{name}", ["risk_analyst"]),
        "zhao": _person(uow, tenant.id, f"zhao@{name}", ["credit_officer"]),
        "chen": _person(uow, tenant.id, f"chen@{name}", ["approver"]),
        "admin": _person(uow, tenant.id, f"admin@{name}", ["admin"]),
    }
    return Bank(uow=uow, engine=engine, tenant_id=tenant.id, people=people, store=tmp_path / "store")


@pytest.fixture
def bank(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bank]:
    b = open_bank(tmp_path, monkeypatch)
    yield b
    b.engine.dispose()
