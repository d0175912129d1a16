"""The provider gateway end to end: a provider server on loopback answering each of the six kinds in 50-300 ms
(uniform, per call), a bank on a migrated SQLite file with all six set up, and a credit officer fetching all six
about a new business per request, one request after another. Prints p50/p99 of a full six-provider fetch
(parallel calls, contracts checked, six call rows written and committed) and of a cached repeat (same subject
and day: no HTTP, six rows still written).

Run: .venv/bin/python bench/bench_gateway.py [--requests 200] [--latency 50-300] [--backend sqlite|postgresql]
(PostgreSQL: a new database on MICROLEND_BENCH_PG, default postgresql+psycopg://postgres@127.0.0.1:5432, dropped
after.)
Targets: a full fetch close to the slowest provider (p50 ~ 250 ms for 50-300 ms: the max of six), a cached
repeat well under 50 ms."""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scratch import bench_environment, percentile, scratch_database

bench_environment()



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--latency", default="50-300", help="provider latency range in ms, e.g. 50-300")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    low, high = (int(x) for x in args.latency.split("-"))

    from tests.provider_server import ProviderServer

    from microlend.bootstrap import load_modules
    from microlend.core import migrate, tenancy
    from microlend.core.db import make_engine, make_session_factory
    from microlend.core.identity import Principal, Role, system_principal
    from microlend.core.uow import UnitOfWork
    from microlend.data import provider_service as svc
    from microlend.data.gateway import CallStatus, Gateway
    from microlend.data.providers import KINDS
    from microlend.demo import identities

    url, drop_database = scratch_database(args.backend, "bench-gateway")
    load_modules()
    engine = make_engine(url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    bank = tenancy.create_tenant(UnitOfWork(factory), f"bench-{random.randrange(10**6)}")
    server = ProviderServer(latency_ms=(low, high)).start()
    admin = system_principal(bank.id, "admin")
    for kind in KINDS:
        svc.set_provider(
            UnitOfWork(factory),
            admin,
            kind,
            svc.ProviderChanges(
                base_url=server.base_url, api_key="sandbox", timeout_ms=2000, retries=1, cost_per_call=Decimal("1.00")
            ),
        )
    officer = Principal(user_id=1, tenant_id=bank.id, username="officer", roles=frozenset({Role.CREDIT_OFFICER}))
    gateway = Gateway()
    rng = random.Random(7)
    consents = {"credit_report", "external_data"}
    as_of = date(2026, 11, 30)
    full: list[float] = []
    cached: list[float] = []
    failures = 0
    try:
        for i in range(args.requests + 5):
            subject = identities.uscc(rng)
            started = time.perf_counter()
            got = gateway.fetch(
                UnitOfWork(factory),
                officer,
                subject,
                "business",
                KINDS,
                consents=consents,
                purpose="bench",
                as_of=as_of,
            )
            first = time.perf_counter() - started
            started = time.perf_counter()
            again = gateway.fetch(
                UnitOfWork(factory),
                officer,
                subject,
                "business",
                KINDS,
                consents=consents,
                purpose="bench",
                as_of=as_of,
            )
            repeat = time.perf_counter() - started
            failures += sum(r.status is not CallStatus.OK for r in got.results.values())
            assert all(r.cached for r in again.results.values())
            if i >= 5:  # the first few open the connections
                full.append(first * 1000)
                cached.append(repeat * 1000)
    finally:
        gateway.close()
        server.stop()
        engine.dispose()
        drop_database()
    print(f"backend: {engine.dialect.name}; providers: 6 kinds, {low}-{high} ms each; requests: {len(full)}")
    print(
        f"full six-provider fetch: p50 {statistics.median(full):7.1f} ms   p99 {percentile(full, 0.99):7.1f} ms"
        f"   (max {max(full):.1f} ms)"
    )
    print(
        f"cached repeat:           p50 {statistics.median(cached):7.1f} ms   p99 {percentile(cached, 0.99):7.1f} ms"
        f"   (max {max(cached):.1f} ms)"
    )
    print(f"calls not ok: {failures}")


if __name__ == "__main__":
    main()
