"""The collections queue with many open cases: p50/p99 of the queue API (`GET /api/v1/collections/cases`, first
page, a queue's page, a page deep in the list, a collector's own cases) and of the collector's queue page
(`GET /collections`), on a fresh database holding N open cases (default 50,000). Target: p99 ≤ 200 ms.

Run: .venv/bin/python bench/bench_collections_queue.py [--cases 50000] [--requests 200]
     [--backend sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, insert, text

PG_SERVER = os.environ.get("MICROLEND_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
PASSWORD = "bench-password-1"


def fresh_database(backend: str) -> tuple[str, str | None]:
    if backend == "sqlite":
        return f"sqlite:///{Path(tempfile.mkdtemp()) / 'collections.db'}", None
    name = f"bench_coll_{uuid.uuid4().hex[:8]}"
    server = create_engine(f"{PG_SERVER}/test", isolation_level="AUTOCOMMIT")
    with server.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    server.dispose()
    return f"{PG_SERVER}/{name}", name


def drop(name: str | None) -> None:
    if name is None:
        return
    server = create_engine(f"{PG_SERVER}/test", isolation_level="AUTOCOMMIT")
    with server.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    server.dispose()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run(backend: str, cases: int, requests: int) -> None:
    from fastapi.testclient import TestClient

    from microlend.api.app import create_app
    from microlend.bootstrap import load_modules
    from microlend.core import migrate, tenancy
    from microlend.core.clock import utcnow
    from microlend.core.db import make_engine, make_session_factory
    from microlend.core.settings import Settings
    from microlend.core.uow import UnitOfWork
    from microlend.servicing.collection_tables import CollectionCaseRow

    load_modules()
    url, name = fresh_database(backend)
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        factory = make_session_factory(engine)
        tenant = tenancy.create_tenant(UnitOfWork(factory), "bench", business_date=date(2026, 3, 1))
        with UnitOfWork(factory) as u:
            tenancy.add_user(u.session, tenant.id, "collector@bench", PASSWORD, ["collector"])
            u.commit()
        started = time.perf_counter()
        buckets = [("M1", "early", "reminder"), ("M2", "officer", "officer_call"), ("M3", "field", "field_visit")]
        now = utcnow()
        with UnitOfWork(factory) as u:
            for start in range(0, cases, 5000):
                rows = []
                for i in range(start, min(cases, start + 5000)):
                    bucket, queue, action = buckets[i % 3]
                    rows.append({"tenant_id": tenant.id, "loan_id": 1_000_000 + i, "customer_id": i, "branch": "",
                                 "status": "open", "bucket": bucket, "days_past_due": 1 + (i % 3) * 30 + i % 29,
                                 "amount_overdue": Decimal(1000 + i % 5000) + Decimal("0.55"), "queue": queue,
                                 "next_action": action, "assignee": "collector@bench" if i % 250 == 0 else None,
                                 "escalation": 0, "registered_contacts": [], "opened_on": date(2026, 2, 1),
                                 "created_at": now, "updated_at": now})
                u.session.execute(insert(CollectionCaseRow), rows)
            u.commit()
        if backend == "postgresql":
            with engine.connect() as c:
                c.execute(text("ANALYZE collection_cases"))
                c.commit()
        print(f"[{backend}] {cases} open cases inserted in {time.perf_counter() - started:.1f} s")
        settings = Settings(database_url=url, secret_key="bench-secret-key-0123456789-abcdefghij",
                            login_client_max_failures=1_000_000)
        app = create_app(settings, engine=engine)
        with TestClient(app) as client:
            token = client.post("/api/v1/auth/token", data={"username": "collector@bench", "password": PASSWORD})
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            targets = {
                "api first page": "/api/v1/collections/cases",
                "api queue=field": "/api/v1/collections/cases?queue=field&limit=50",
                "api deep page": f"/api/v1/collections/cases?offset={max(0, cases - 100)}&limit=50",
                "api deep keyset": f"/api/v1/collections/cases?after={max(0, cases - 100)}&limit=50",
                "api mine": "/api/v1/collections/cases?mine=true",
                "api unassigned": "/api/v1/collections/cases?unassigned=true",
            }
            for label, path in targets.items():
                timings = []
                for _ in range(requests):
                    t0 = time.perf_counter()
                    r = client.get(path, headers=headers)
                    timings.append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 200, r.text
                items = r.json()["items"]
                print(f"[{backend}] {label:16s} p50 {statistics.median(timings):6.1f} ms  p99 "
                      f"{percentile(timings, 99):6.1f} ms  ({len(items)} items of {r.json()['total']})")
            r = client.post("/login", follow_redirects=False,
                            data={"username": "collector@bench", "password": PASSWORD, "next": "/collections"})
            assert r.status_code == 303, r.text
            timings = []
            for _ in range(requests):
                t0 = time.perf_counter()
                r = client.get("/collections")
                timings.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200
            print(f"[{backend}] {'queue page':16s} p50 {statistics.median(timings):6.1f} ms  p99 "
                  f"{percentile(timings, 99):6.1f} ms")
    finally:
        engine.dispose()
        drop(name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    for backend in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend]):
        run(backend, args.cases, args.requests)


if __name__ == "__main__":
    main()
