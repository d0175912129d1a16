"""Shared fixtures: one real database per backend (SQLite file and PostgreSQL), migrated with Alembic,
and a fresh tenant per test, so tests never see each other's data."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from microlend.bootstrap import load_modules
from microlend.core import tenancy
from microlend.core.db import make_engine, make_session_factory
from microlend.core.identity import Principal
from microlend.core.migrate import upgrade
from microlend.core.settings import Settings
from microlend.core.uow import UnitOfWork

PG_ADMIN_URL = os.environ.get("MICROLEND_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = [b for b in os.environ.get("MICROLEND_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
_counter = itertools.count()


def test_settings(url: str) -> Settings:
    return Settings(mode="test", database_url=url, secret_key="test-secret-key-with-enough-length-0123456789")


@pytest.fixture(scope="session", autouse=True)
def _settings_env() -> Iterator[None]:
    os.environ.setdefault("MICROLEND_SECRET_KEY", "test-secret-key-with-enough-length-0123456789")
    os.environ.setdefault("MICROLEND_MODE", "test")
    from microlend.core.settings import get_settings

    get_settings.cache_clear()
    load_modules()
    yield


def _pg_database(worker: str) -> tuple[str, Callable[[], None]]:
    name = f"ml_test_{worker}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

    def drop() -> None:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


@pytest.fixture(scope="session", params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database per backend for the whole test session."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("db") / "microlend.db"
        url = f"sqlite:///{path}"
        drop: Callable[[], None] = lambda: None  # noqa: E731
    else:
        url, drop = _pg_database(worker)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    drop()


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def uow(engine: Engine) -> UnitOfWork:
    return UnitOfWork(make_session_factory(engine))


@dataclass
class TenantKit:
    """A fresh bank for one test, with helpers to add users and sign them in."""

    tenant: tenancy.Tenant
    uow_factory: Callable[[], UnitOfWork]
    _n: itertools.count  # type: ignore[type-arg]

    def user(self, *roles: str, password: str = "correct-horse-1") -> tuple[str, Principal]:
        username = f"{self.tenant.name}-u{next(self._n)}"
        with self.uow_factory() as u:
            row = tenancy.add_user(u.session, self.tenant.id, username, password, list(roles))
            who = tenancy.principal_for(row)
            u.commit()
        return username, who

    def principal(self, *roles: str) -> Principal:
        return self.user(*roles)[1]


@pytest.fixture
def new_tenant(engine: Engine) -> Callable[[], TenantKit]:
    factory = make_session_factory(engine)

    def make() -> TenantKit:
        name = f"t{os.getpid()}-{next(_counter)}-{uuid.uuid4().hex[:6]}"
        t = tenancy.create_tenant(UnitOfWork(factory), name)
        return TenantKit(t, lambda: UnitOfWork(factory), itertools.count())

    return make


@pytest.fixture
def bank(new_tenant: Callable[[], TenantKit]) -> TenantKit:
    return new_tenant()


@pytest.fixture(scope="session")
def app_client(db_url: str, engine: Engine) -> Iterator[TestClient]:
    from microlend.api.app import create_app

    app = create_app(test_settings(db_url), engine=engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


class Api:
    """The HTTP API as a test user sees it."""

    def __init__(self, client: TestClient, kit: TenantKit) -> None:
        self.client = client
        self.kit = kit

    def token(self, *roles: str) -> dict[str, str]:
        username, _ = self.kit.user(*roles)
        return self.token_for(username)

    def token_for(self, username: str) -> dict[str, str]:
        r = self.client.post("/api/v1/auth/token", data={"username": username, "password": "correct-horse-1"})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def api(app_client: TestClient, bank: TenantKit) -> Api:
    app_client.cookies.clear()  # the client is shared: a page test's sign-in must not carry over
    return Api(app_client, bank)
