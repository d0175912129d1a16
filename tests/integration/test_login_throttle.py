"""The sign-in throttle: counted atomically per account and per client before the password is hashed, a
doubling backoff instead of a hard lock (the owner from a client that has not been failing always gets in),
a per-client limit across usernames, and the same work for an unknown username as for a known one."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from argon2.exceptions import VerifyMismatchError
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from tests.conftest import TenantKit
from tests.conftest import test_settings as settings_for

from microlend.api.app import create_app
from microlend.core import clock, login_throttle, tenancy
from microlend.core.db import make_session_factory
from microlend.core.errors import AuthenticationFailed, RateLimited
from microlend.core.settings import Settings
from microlend.core.tables import LoginThrottleRow, UserRow
from microlend.core.uow import UnitOfWork


class CountingHasher:
    """A fast stand-in for argon2 that counts the password checks; a check takes a little while, so parallel
    attempts overlap."""

    def __init__(self) -> None:
        self.verified: list[str] = []
        self._lock = threading.Lock()

    def hash(self, password: str) -> str:
        return f"fake${password}"

    def verify(self, hash: str, password: str) -> bool:
        with self._lock:
            self.verified.append(hash)
        threading.Event().wait(0.01)
        if hash != f"fake${password}":
            raise VerifyMismatchError("mismatch")
        return True


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    fake = CountingHasher()
    monkeypatch.setattr(tenancy, "_hasher", fake)
    return fake


@pytest.fixture
def frozen() -> Iterator[clock.FixedClock]:
    fixed = clock.FixedClock(datetime.now(UTC))
    clock.set_clock(fixed)
    try:
        yield fixed
    finally:
        clock.set_clock(clock.SystemClock())


@pytest.fixture
def settings(db_url: str) -> Settings:
    return settings_for(db_url)


def _client() -> str:
    return f"198.51.100.{uuid.uuid4().int % 250}-{uuid.uuid4().hex[:6]}"


def _try(engine: Engine, settings: Settings, username: str, password: str, client: str) -> int:
    try:
        tenancy.authenticate(UnitOfWork(make_session_factory(engine)), username, password, settings, client=client)
    except AuthenticationFailed:
        return 401
    except RateLimited:
        return 429
    return 200


def _failures(engine: Engine, key: str) -> int:
    with engine.connect() as c:
        return c.execute(select(LoginThrottleRow.failures).where(LoginThrottleRow.key == key)).scalar_one()


def test_parallel_wrong_passwords_are_checked_only_up_to_the_limit(
        engine: Engine, bank: TenantKit, settings: Settings, hasher: CountingHasher,
        frozen: clock.FixedClock) -> None:
    username, _ = bank.user("credit_officer")
    attacker = _client()
    with ThreadPoolExecutor(max_workers=40) as pool:
        codes = list(pool.map(lambda _: _try(engine, settings, username, "wrong-password-9", attacker), range(40)))
    assert codes.count(401) == settings.login_max_failures == 5
    assert codes.count(429) == 35
    assert len(hasher.verified) == 5  # the refused ones never reached the hash
    assert _failures(engine, login_throttle.account_key(username)) == 5
    assert _failures(engine, login_throttle.client_key(attacker)) == 5


def test_the_owner_is_not_locked_out_by_someone_elses_failures(
        engine: Engine, bank: TenantKit, settings: Settings, hasher: CountingHasher,
        frozen: clock.FixedClock) -> None:
    username, _ = bank.user("credit_officer")
    attacker = _client()
    for _ in range(5):
        assert _try(engine, settings, username, "wrong-password-9", attacker) == 401
    # from a client that has not been failing the owner gets in at once
    assert _try(engine, settings, username, "correct-horse-1", _client()) == 200


def test_a_failing_client_waits_the_documented_backoff_and_no_longer(
        engine: Engine, bank: TenantKit, settings: Settings, hasher: CountingHasher,
        frozen: clock.FixedClock) -> None:
    username, _ = bank.user("credit_officer")
    desk = _client()
    for _ in range(5):
        assert _try(engine, settings, username, "wrong-password-9", desk) == 401
    with pytest.raises(RateLimited) as refused:
        tenancy.authenticate(UnitOfWork(make_session_factory(engine)), username, "correct-horse-1", settings,
                             client=desk)
    assert refused.value.retry_after == settings.login_backoff_seconds == 15
    frozen.advance(timedelta(seconds=15))
    assert _try(engine, settings, username, "wrong-password-9", desk) == 401  # the 6th: the wait doubles
    frozen.advance(timedelta(seconds=29))
    assert _try(engine, settings, username, "correct-horse-1", desk) == 429
    frozen.advance(timedelta(seconds=1))
    assert _try(engine, settings, username, "correct-horse-1", desk) == 200
    assert _failures(engine, login_throttle.account_key(username)) == 0


def test_the_backoff_never_exceeds_its_maximum(settings: Settings) -> None:
    waits = [login_throttle.backoff(settings, n).total_seconds() for n in range(1, 40)]
    assert waits[:4] == [0, 0, 0, 0]
    assert waits[4:8] == [15, 30, 60, 120]
    assert max(waits) == settings.login_backoff_max_seconds == 300


def test_spraying_usernames_from_one_client_hits_the_client_limit(
        engine: Engine, bank: TenantKit, settings: Settings, hasher: CountingHasher,
        frozen: clock.FixedClock) -> None:
    usernames = [bank.user("credit_officer")[0] for _ in range(15)]
    sprayer = _client()
    codes = [_try(engine, settings, u, "Summer-2026!x", sprayer) for u in usernames]
    assert codes == [401] * 10 + [429] * 5
    assert len(hasher.verified) == 10
    # another client is not affected, and the sprayer is let in again after a quiet window
    assert _try(engine, settings, usernames[-1], "correct-horse-1", _client()) == 200
    frozen.advance(timedelta(seconds=settings.login_window_seconds))
    assert _try(engine, settings, usernames[0], "correct-horse-1", sprayer) == 200


def test_an_unknown_username_costs_a_hash_check_like_a_known_one(
        engine: Engine, bank: TenantKit, settings: Settings, hasher: CountingHasher,
        frozen: clock.FixedClock) -> None:
    username, _ = bank.user("credit_officer")
    inactive, _ = bank.user("credit_officer")
    with engine.begin() as c:
        c.execute(update(UserRow).where(UserRow.username == inactive).values(active=False))
    for who in (username, f"nobody-{uuid.uuid4().hex[:8]}", inactive):
        before = len(hasher.verified)
        assert _try(engine, settings, who, "wrong-password-9", _client()) == 401
        assert len(hasher.verified) == before + 1, who
    # an inactive user's right password is refused too, after the same check
    assert _try(engine, settings, inactive, "correct-horse-1", _client()) == 401


def test_the_api_answers_429_with_retry_after_for_the_calling_address(
        db_url: str, engine: Engine, new_tenant: Callable[[], TenantKit], hasher: CountingHasher) -> None:
    kit = new_tenant()
    app = create_app(settings_for(db_url), engine=engine)
    address = f"203.0.113.{uuid.uuid4().int % 250}"
    with TestClient(app, raise_server_exceptions=False, client=(address, 5000)) as client:
        codes = [client.post("/api/v1/auth/token", data={"username": f"{kit.tenant.name}-x{i}",
                                                         "password": "wrong-password-9"}) for i in range(11)]
    assert [r.status_code for r in codes] == [401] * 10 + [429]
    assert "too many failed logins from this address" in codes[-1].json()["detail"]
    assert 0 < int(codes[-1].headers["Retry-After"]) <= 300
    with engine.connect() as c:
        assert c.execute(select(LoginThrottleRow.failures).where(
            LoginThrottleRow.key == login_throttle.client_key(address))).scalar_one() == 10
