"""Shared fixtures: one family of databases, all built by Alembic, per backend (SQLite file and PostgreSQL,
as MICROLEND_TEST_BACKENDS lists them): a shared database for the session with a fresh tenant per test, and a
fresh copy of the migrated template for a test that needs an empty database of its own."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from microlend.api.deps import SESSION_COOKIE
from microlend.bootstrap import load_modules
from microlend.core import sessions, tenancy
from microlend.core.db import make_engine, make_session_factory
from microlend.core.identity import Principal
from microlend.core.settings import Settings
from microlend.core.uow import UnitOfWork
from tests.databases import Template

BACKENDS = [b for b in os.environ.get("MICROLEND_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
_counter = itertools.count()


def test_settings(url: str) -> Settings:
    return Settings(mode="test", database_url=url, secret_key="test-secret-key-with-enough-length-0123456789")


@pytest.fixture(scope="session", autouse=True)
def _settings_env() -> Iterator[None]:
    os.environ.setdefault("MICROLEND_SECRET_KEY", "test-secret-key-with-enough-length-0123456789")
    os.environ.setdefault("MICROLEND_MODE", "test")
    os.environ.setdefault("MICROLEND_AUDIT_KEY", "test-audit-key-held-outside-the-database-0123")
    from microlend.core.settings import get_settings

    get_settings.cache_clear()
    load_modules()
    yield


@pytest.fixture(scope="session",
                params=[pytest.param(b, marks=[pytest.mark.pg] if b == "postgresql" else []) for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend of this part of the session: 'sqlite' or 'postgresql'."""
    return str(request.param)


@pytest.fixture(scope="session")
def migrated_template(backend: str) -> Iterator[Template]:
    """The schema, migrated by Alembic once per backend; every database below is a copy of it."""
    template = Template.build(backend)
    yield template
    template.drop()


@pytest.fixture(scope="session")
def db_url(migrated_template: Template, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The database the whole session shares on this backend; tests keep apart by tenant."""
    url = migrated_template.copy(tmp_path_factory.mktemp("db"), "ml_shared")
    yield url
    migrated_template.drop_copy(url)


@pytest.fixture
def fresh_db_url(migrated_template: Template, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own, migrated and empty (for tests that count rows across tenants)."""
    url = migrated_template.copy(tmp_path, "ml_fresh")
    yield url
    migrated_template.drop_copy(url)


@pytest.fixture
def fresh_engine(fresh_db_url: str) -> Iterator[Engine]:
    eng = make_engine(fresh_db_url)
    yield eng
    eng.dispose()


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


def use_german_champion(uow: UnitOfWork, tenant_id: int) -> None:
    """Put the shipped German credit scorecard in use as the bank's champion (a new bank runs the
    micro-business expert scorecard). The decision-mechanics tests (exposure, four eyes, offers, servicing)
    score customers who carry a German credit profile, whose scores are known; the small-business path has
    its own tests with the expert scorecard and the provider sandboxes."""
    from microlend.core.identity import system_principal
    from microlend.risk import registry
    from microlend.risk.starter import STARTER_NAME

    system = system_principal(tenant_id)
    german = next(m for m in registry.list_model_versions(uow, system) if m.name == STARTER_NAME)
    registry.promote_model(uow, system, german.id, "champion")


@pytest.fixture
def new_tenant(engine: Engine) -> Callable[..., TenantKit]:
    """A new bank; `champion="german"` (the default here, see `use_german_champion`) or `"expert"` (as shipped)."""
    factory = make_session_factory(engine)

    def make(champion: str = "german") -> TenantKit:
        name = f"t{os.getpid()}-{next(_counter)}-{uuid.uuid4().hex[:6]}"
        t = tenancy.create_tenant(UnitOfWork(factory), name)
        if champion == "german":
            use_german_champion(UnitOfWork(factory), t.id)
        return TenantKit(t, lambda: UnitOfWork(factory), itertools.count())

    return make


@pytest.fixture
def bank(new_tenant: Callable[..., TenantKit]) -> TenantKit:
    return new_tenant()


@pytest.fixture(scope="session")
def app_client(db_url: str, engine: Engine) -> Iterator[TestClient]:
    from microlend.api.app import create_app

    # every test shares this client and its one address ("testclient"): the sign-in limit per address is the
    # subject of the throttle's own tests, which build their own app
    settings = test_settings(db_url).model_copy(update={"login_client_max_failures": 1_000_000})
    app = create_app(settings, engine=engine)
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


#: the address the test client's requests go to, and so the origin of the app's own pages
TEST_ORIGIN = "http://testserver"
PAGE_HEADERS = ("Origin", "X-CSRF-Token")


def page_headers(client: TestClient, session: str | None = None) -> dict[str, str]:
    """What a page of the app sends with a form or an htmx request, as a browser does: the page's origin and
    the session's anti-forgery token (the one the page embeds). `session`: the session cookie, if not the
    client's."""
    session = session or client.cookies.get(SESSION_COOKIE)
    assert session, "sign in first"
    return {"Origin": TEST_ORIGIN,
            "X-CSRF-Token": sessions.csrf_token(client.app.state.settings.secret_key, session)}  # type: ignore[attr-defined]


def sign_in_page(client: TestClient, username: str, next: str = "/", password: str = "correct-horse-1") -> None:
    """Sign in on the staff sign-in page; the client then sends what the app's pages send with a form."""
    for name in PAGE_HEADERS:
        client.headers.pop(name, None)
    client.cookies.delete(SESSION_COOKIE)
    r = client.post("/login", data={"username": username, "password": password, "next": next},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == next, r.text
    client.headers.update(page_headers(client))


@pytest.fixture
def api(app_client: TestClient, bank: TenantKit) -> Api:
    app_client.cookies.clear()  # the client is shared: a page test's sign-in must not carry over
    for name in PAGE_HEADERS:
        app_client.headers.pop(name, None)
    return Api(app_client, bank)


# --- the Spark batch engine -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def spark_engine() -> Iterator[Any]:
    """One Spark session (local[2], 2 shuffle partitions) for the whole test session, shared by every Spark
    test (they are grouped onto one xdist worker); skipped with the reason when pyspark or Java is missing,
    unless MICROLEND_REQUIRE_SPARK=1 makes that a failure."""
    from microlend.batch.spark import SparkEngine, spark_session, spark_unavailable

    problem = spark_unavailable(remote="")
    if problem:
        if os.environ.get("MICROLEND_REQUIRE_SPARK") == "1":
            pytest.fail(f"MICROLEND_REQUIRE_SPARK=1 but {problem}")
        pytest.skip(f"Spark tests need pyspark and Java 17: {problem}")
    engine = SparkEngine(spark_session(master="local[2]", remote="", shuffle_partitions=2))
    yield engine
    engine.stop()


@pytest.fixture(params=["local", "spark"])
def batch_engine(request: pytest.FixtureRequest) -> Any:
    """Each batch engine in turn: the local one, then Spark (the session-wide `spark_engine`)."""
    from microlend.batch.engine import LocalEngine

    if request.param == "local":
        return LocalEngine()
    return request.getfixturevalue("spark_engine")
