"""A database of the test's own (a copy of the Alembic-migrated template, on SQLite and PostgreSQL) with one
bank, set up with the risk module's starter, and its staff."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from tests.databases import pristine_sqlite_url

from microlend.core import tenancy
from microlend.core.db import make_engine, make_session_factory
from microlend.core.identity import Principal
from microlend.core.tables import TenantRow
from microlend.core.uow import UnitOfWork
from microlend.risk.registry import register_german_starter, setup_tenant


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
    """A bank on a migrated SQLite file of its own at `tmp_path/microlend.db` (the CLI tests point at it)."""
    engine = make_engine(pristine_sqlite_url(tmp_path / "microlend.db"))
    return open_bank_on(engine, tmp_path, monkeypatch, name)


def open_bank_on(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str = "rural-bank", *,
                 shipped: bool = False) -> Bank:
    uow = UnitOfWork(make_session_factory(engine))
    # a bank whose champion is the German example scorecard (these tests develop and compare on German credit),
    # or (`shipped`) a bank as Microlend sets it up: the expert scorecard in use, the German one approved beside it
    monkeypatch.setattr(tenancy, "TENANT_SETUP", [setup_tenant if shipped else german_champion_setup])
    tenant = tenancy.create_tenant(uow, name)
    people = {
        "wang": _person(uow, tenant.id, f"wang@{name}", ["risk_analyst"]),
        "li": _person(uow, tenant.id, f"li@{name}", ["risk_analyst"]),
        "zhao": _person(uow, tenant.id, f"zhao@{name}", ["credit_officer"]),
        "chen": _person(uow, tenant.id, f"chen@{name}", ["approver"]),
        "admin": _person(uow, tenant.id, f"admin@{name}", ["admin"]),
        "sun": _person(uow, tenant.id, f"sun@{name}", ["model_validator"]),
    }
    return Bank(uow=uow, engine=engine, tenant_id=tenant.id, people=people, store=tmp_path / "store")


def german_champion_setup(session: Session, tenant: TenantRow) -> None:
    register_german_starter(session, tenant, champion=True)


@pytest.fixture
def bank(fresh_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Bank:
    return open_bank_on(fresh_engine, tmp_path, monkeypatch)


@pytest.fixture
def shipped_bank(fresh_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Bank:
    return open_bank_on(fresh_engine, tmp_path, monkeypatch, "new-bank", shipped=True)
