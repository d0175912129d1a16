"""Sign-in under attack, on a fresh PostgreSQL database (and SQLite for comparison), with the real argon2 hash:

- burst: N parallel wrong passwords for one account from one client — how many reached the password check
  (401) and how many were refused before it (429), against the documented limit;
- spray: one client trying a wrong password on M different usernames — where the per-client limit stops it;
- owner: after the burst, the owner signs in from another client at once;
- timing: median time of a wrong password for an existing user and for an unknown one (enumeration).

Run: .venv/bin/python bench/bench_login_burst.py [--burst 40] [--spray 15] [--backend postgresql|sqlite|both]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import create_engine, text

PG_SERVER = os.environ.get("MICROLEND_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
PASSWORD = "bench-password-1"


def fresh_database(backend: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{Path(tempfile.mkdtemp()) / 'login.db'}"
    name = f"bench_login_{uuid.uuid4().hex[:8]}"
    server = create_engine(f"{PG_SERVER}/test", isolation_level="AUTOCOMMIT")
    with server.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    server.dispose()
    return f"{PG_SERVER}/{name}"


def run(backend: str, burst: int, spray: int) -> None:
    from microlend.bootstrap import load_modules
    from microlend.core import migrate, tenancy
    from microlend.core.db import make_engine, make_session_factory
    from microlend.core.errors import AuthenticationFailed, RateLimited
    from microlend.core.settings import Settings
    from microlend.core.uow import UnitOfWork

    load_modules()
    url = fresh_database(backend)
    engine = make_engine(url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    settings = Settings(database_url=url, secret_key="bench-secret-key-0123456789-abcdefghij")
    tenant = tenancy.create_tenant(UnitOfWork(factory), "bench")
    with UnitOfWork(factory) as u:
        for i in range(spray):
            tenancy.add_user(u.session, tenant.id, f"user{i}@bench", PASSWORD, ["credit_officer"])
        u.commit()

    def attempt(username: str, password: str, client: str) -> tuple[int, float]:
        t0 = time.perf_counter()
        try:
            tenancy.authenticate(UnitOfWork(factory), username, password, settings, client=client)
            code = 200
        except AuthenticationFailed:
            code = 401
        except RateLimited:
            code = 429
        return code, time.perf_counter() - t0

    victim = "user0@bench"
    with ThreadPoolExecutor(max_workers=burst) as pool:
        t0 = time.perf_counter()
        codes = [c for c, _ in pool.map(lambda _: attempt(victim, "wrong-password-9", "203.0.113.7"), range(burst))]
        took = time.perf_counter() - t0
    print(f"[{backend}] burst: {burst} parallel wrong passwords in {took:.2f} s -> "
          f"{codes.count(401)} checked (401), {codes.count(429)} refused before the check (429); "
          f"limit {settings.login_max_failures}")
    owner = attempt(victim, PASSWORD, "198.51.100.20")
    print(f"[{backend}] owner from another client right after: {owner[0]} in {owner[1] * 1000:.0f} ms")

    sprayed = [attempt(f"user{i}@bench", "wrong-password-9", "203.0.113.99")[0] for i in range(spray)]
    first_refusal = sprayed.index(429) + 1 if 429 in sprayed else None
    print(f"[{backend}] spray: {spray} usernames from one client -> {sprayed.count(401)} checked, "
          f"{sprayed.count(429)} refused (first refusal at attempt {first_refusal}; client limit "
          f"{settings.login_client_max_failures})")

    known = [attempt(f"user{i % spray}@bench", "wrong-password-9", f"192.0.2.{i}")[1] for i in range(1, 21)]
    unknown = [attempt(f"nobody{i}@bench", "wrong-password-9", f"192.0.2.{100 + i}")[1] for i in range(20)]
    print(f"[{backend}] wrong password, median: existing user {statistics.median(known) * 1000:.0f} ms, "
          f"unknown user {statistics.median(unknown) * 1000:.0f} ms")
    engine.dispose()
    if backend == "postgresql":
        server = create_engine(f"{PG_SERVER}/test", isolation_level="AUTOCOMMIT")
        with server.connect() as c:
            c.execute(text(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
        server.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--burst", type=int, default=40)
    parser.add_argument("--spray", type=int, default=15)
    parser.add_argument("--backend", choices=["postgresql", "sqlite", "both"], default="both")
    args = parser.parse_args()
    for backend in (["postgresql", "sqlite"] if args.backend == "both" else [args.backend]):
        run(backend, args.burst, args.spray)


if __name__ == "__main__":
    main()
