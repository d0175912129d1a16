"""Small-business credit decisions end to end over HTTP, with every external source asked live: the provider
sandboxes in their own process (each call 50-300 ms, uniform), a bank as shipped (the expert scorecard its
champion, the default policy) with its six providers wired to them, and newly registered shop owners applying
for a tax loan through `POST /api/v1/applications` with their consents. One application after another; each
is a new business (no cache), then the same business applies again the same day (the answers come from the
gateway's cache).

Prints p50/p99/max of the decision with live calls and of the cached repeat, the outcomes, and what the calls
cost. Targets: p99 <= 1 s with live calls (the six are asked in parallel), a cached repeat <= 50 ms.

Run: .venv/bin/python bench/bench_small_business_decisions.py [--applications 200] [--latency 50-300]
     [--backend sqlite|postgresql]"""

from __future__ import annotations

import argparse
import collections
import os
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scratch import bench_environment, percentile, scratch_database

bench_environment()
PASSWORD = "bench-borrower-1"
PROFILES = ["good"] * 6 + ["average"] * 2 + ["declining", "enforcement", "thin", "overdue"]



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, default=200)
    parser.add_argument("--latency", default="50-300", help="provider latency range in ms")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    low, high = (int(x) for x in args.latency.split("-"))

    from fastapi.testclient import TestClient
    from sqlalchemy import func, select

    from microlend.api.app import create_app
    from microlend.bootstrap import load_modules
    from microlend.core import migrate, tenancy
    from microlend.core.db import make_engine, make_session_factory
    from microlend.core.identity import system_principal
    from microlend.core.settings import Settings
    from microlend.core.uow import UnitOfWork
    from microlend.data import provider_service as svc
    from microlend.data.tables import ProviderCallRow
    from microlend.demo import identities
    from microlend.demo.sandbox import KINDS, subject_with
    from microlend.demo.sandbox.process import start_sandbox
    from microlend.origination import borrowers

    url, drop_database = scratch_database(args.backend, "bench-smb")
    load_modules()
    engine = make_engine(url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    bank = tenancy.create_tenant(UnitOfWork(factory), f"bench-{random.randrange(10**6)}")
    sandbox = start_sandbox(latency_ms=(low, high), anchor=bank.business_date)
    admin = system_principal(bank.id, "admin")
    for kind in KINDS:
        svc.set_provider(UnitOfWork(factory), admin, kind, svc.ProviderChanges(
            base_url=sandbox.base_url, api_key="sandbox", timeout_ms=2000, retries=1,
            cost_per_call=Decimal("1.00")))
    settings = Settings(mode="test", database_url=url, secret_key=os.environ["MICROLEND_SECRET_KEY"],
                        login_client_max_failures=1_000_000)
    rng = random.Random(11)
    live: list[float] = []
    cached: list[float] = []
    outcomes: collections.Counter[str] = collections.Counter()
    errors = 0
    try:
        with TestClient(create_app(settings, engine=engine), raise_server_exceptions=False) as client:
            for i in range(args.applications + 3):
                uscc = subject_with(PROFILES[i % len(PROFILES)], rng, kind="business")
                owner = identities.resident_id(rng, identities.birth_date_for_age(rng, 30 + i % 25, bank.business_date))
                reg = borrowers.register(UnitOfWork(factory), borrowers.Registration(
                    bank=bank.name, kind="business", name=f"小店{i}号", id_number=uscc, mobile=identities.mobile(rng),
                    password=PASSWORD, industry="retail", annual_turnover=Decimal(600000),
                    years_in_business=Decimal(5), owner_id_number=owner))
                token = client.post("/api/v1/auth/token", data={"username": reg.username, "password": PASSWORD})
                headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
                body = {"customer_id": reg.customer_id, "product_code": "TAX_LOAN", "amount": "80000",
                        "term_months": 12, "purpose": "stock", "consents": ["credit_report", "external_data"]}
                times = []
                for _ in range(2):  # a new business, then the same one again the same day
                    started = time.perf_counter()
                    r = client.post("/api/v1/applications", json=body, headers=headers)
                    times.append((time.perf_counter() - started) * 1000)
                    if r.status_code != 201:
                        errors += 1
                    else:
                        outcomes[r.json()["status"]] += 1
                if i >= 3:  # the first few open the connections
                    live.append(times[0])
                    cached.append(times[1])
        with UnitOfWork(factory) as u:
            calls, cost = u.session.execute(select(func.count(), func.sum(ProviderCallRow.cost)).where(
                ProviderCallRow.tenant_id == bank.id)).one()
    finally:
        sandbox.stop()
        engine.dispose()
        drop_database()
    n = len(live)
    print(f"backend: {engine.dialect.name}; providers: 6 kinds at {low}-{high} ms; applications: {n} (+ {n} repeats)")
    print(f"decision with live calls: p50 {statistics.median(live):7.1f} ms   p99 {percentile(live, 0.99):7.1f} ms"
          f"   max {max(live):7.1f} ms")
    print(f"cached repeat:            p50 {statistics.median(cached):7.1f} ms   p99 {percentile(cached, 0.99):7.1f} ms"
          f"   max {max(cached):7.1f} ms")
    print(f"outcomes: {dict(outcomes)}; errors: {errors}")
    print(f"provider calls recorded: {calls:,}, billed {cost or 0:.2f} (a repeat is not billed)")


if __name__ == "__main__":
    main()
