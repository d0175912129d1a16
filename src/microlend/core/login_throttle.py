"""How often sign-in may be tried, counted in the database so parallel attempts cannot all pass the check.

Two counters per attempt, both taken under a row lock (an upsert that locks the row on PostgreSQL; on SQLite
writers hold the database's write lock from BEGIN) *before* the password is hashed, so an attempt is
counted as a failure first and forgiven when the password was right:

- the **account** ('account:<username>', known or not): after `login_max_failures` failures each further
  attempt waits a backoff that doubles from `login_backoff_seconds` up to `login_backoff_max_seconds`. The
  backoff applies to clients that have failed to sign in recently; a client without recent failures (the
  owner at their usual desk) is never delayed by someone else's guessing, so nobody can lock an owner out.
  The owner from a failing client waits at most `login_backoff_max_seconds`.
- the **client** ('client:<address>'): after `login_client_max_failures` failures across usernames
  (password spraying) it is refused until it has been quiet for the window.

A counter starts afresh once it has been quiet for `login_window_seconds` after its last failure or the end of
its backoff. A refusal is `RateLimited` (429) with `retry_after` seconds; a refused attempt is not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from microlend.core.errors import RateLimited
from microlend.core.settings import Settings
from microlend.core.tables import LoginThrottleRow


@dataclass
class Counter:
    key: str
    failures: int
    last_failure_at: datetime
    next_attempt_at: datetime | None

    def quiet_since(self, now: datetime, window: timedelta) -> bool:
        last = max(self.last_failure_at, self.next_attempt_at or self.last_failure_at)
        return now - last >= window


def account_key(username: str) -> str:
    return f"account:{username[:150]}"


def client_key(client: str | None) -> str:
    return f"client:{(client or 'unknown')[:150]}"


def backoff(settings: Settings, failures: int) -> timedelta:
    """The wait after the `failures`-th failure of an account (none before the limit)."""
    over = failures - settings.login_max_failures
    if over < 0:
        return timedelta(0)
    seconds = min(settings.login_backoff_seconds * 2 ** min(over, 30), settings.login_backoff_max_seconds)
    return timedelta(seconds=seconds)


def admit(account: Counter, client: Counter, now: datetime, settings: Settings) -> None:
    """Count an attempt as a failure in advance, or raise RateLimited without counting it."""
    window = timedelta(seconds=settings.login_window_seconds)
    for c in (account, client):
        if c.quiet_since(now, window):
            c.failures, c.next_attempt_at = 0, None
    if client.failures >= settings.login_client_max_failures:
        raise _limited("too many failed logins from this address", client.last_failure_at + window - now)
    in_backoff = account.failures >= settings.login_max_failures
    if in_backoff and client.failures > 0 and account.next_attempt_at is not None and now < account.next_attempt_at:
        raise _limited("too many failed logins for this user", account.next_attempt_at - now)
    clean_client = client.failures == 0
    account.failures += 1
    client.failures += 1
    account.last_failure_at = client.last_failure_at = now
    if account.failures >= settings.login_max_failures and not (in_backoff and clean_client):
        # a clean client's attempt in backoff does not take the failing clients' next slot
        account.next_attempt_at = now + backoff(settings, account.failures)


def _limited(what: str, wait: timedelta) -> RateLimited:
    seconds = max(1, math.ceil(wait.total_seconds()))
    return RateLimited(f"{what}; try again in {seconds} seconds", retry_after=seconds)


def _lock(session: Session, key: str, now: datetime) -> Counter:
    """The counter's row, inserted if missing and locked until the transaction ends."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(LoginThrottleRow).values(key=key, failures=0, last_failure_at=now, next_attempt_at=None)
    stmt = stmt.on_conflict_do_update(index_elements=[LoginThrottleRow.key],
                                      set_={"failures": LoginThrottleRow.failures})
    session.execute(stmt)
    row = session.execute(select(LoginThrottleRow).where(LoginThrottleRow.key == key).with_for_update()).scalar_one()
    return Counter(row.key, row.failures, row.last_failure_at, row.next_attempt_at)


def _save(session: Session, c: Counter) -> None:
    session.execute(update(LoginThrottleRow).where(LoginThrottleRow.key == c.key).values(
        failures=c.failures, last_failure_at=c.last_failure_at, next_attempt_at=c.next_attempt_at))


def reserve(session: Session, username: str, client: str | None, now: datetime, settings: Settings) -> None:
    """Take an attempt for (username, client) inside an open transaction, or raise RateLimited.
    The caller commits before hashing the password, so the locks are not held while it is checked."""
    keys = sorted([account_key(username), client_key(client)])  # one lock order, so no deadlock
    counters = {k: _lock(session, k, now) for k in keys}
    account, cl = counters[account_key(username)], counters[client_key(client)]
    admit(account, cl, now, settings)
    _save(session, account)
    _save(session, cl)


def forgive(session: Session, username: str, client: str | None) -> None:
    """The password was right: the account starts afresh; the client's advance failure is taken back."""
    session.execute(update(LoginThrottleRow).where(LoginThrottleRow.key == account_key(username)).values(
        failures=0, next_attempt_at=None))
    session.execute(update(LoginThrottleRow).where(
        LoginThrottleRow.key == client_key(client), LoginThrottleRow.failures > 0).values(
        failures=LoginThrottleRow.failures - 1))
