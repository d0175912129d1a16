"""A refresh run's throughput (贷后数据更新): a bank on a migrated scratch database with N borrowers (small
businesses, each with an open credit line and a credit-report consent to the text naming post-loan
management), its providers pointed at a provider sandbox, and one `data_refresh.refresh` run over all of
them as the worker runs it (one borrower after another, the borrower's sources in parallel through the
gateway, call rows written and committed). Prints borrowers/s, calls, calls/s and the cost.

Run: .venv/bin/python bench/bench_data_refresh.py [--borrowers 300] [--latency 50-300] [--server sandbox|test]
     [--all-sources] [--backend sqlite|postgresql]
--server sandbox: the demo's provider sandbox in its own process (demo/providers.py); test: the tests' provider
server in a thread (tests/provider_server.py). --all-sources: as if the external-data text covered post-loan
monitoring too (tax and merchant re-pulled beside the credit report and enforcement).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scratch import bench_environment, scratch_database

bench_environment()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--borrowers", type=int, default=300)
    parser.add_argument("--latency", default="50-300", help="provider latency range in ms, e.g. 50-300")
    parser.add_argument("--server", choices=["sandbox", "test"], default="sandbox")
    parser.add_argument("--all-sources", action="store_true")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    low, high = (int(x) for x in args.latency.split("-"))

    from microlend.bootstrap import load_modules
    from microlend.core import migrate, tenancy
    from microlend.core.db import make_engine, make_session_factory
    from microlend.core.identity import system_principal
    from microlend.core.tenancy import business_date
    from microlend.core.uow import UnitOfWork
    from microlend.data import provider_service as svc
    from microlend.data.gateway import Gateway
    from microlend.data.providers import KINDS
    from microlend.demo import identities
    from microlend.demo.providers import COST_PER_CALL
    from microlend.origination import business_data
    from microlend.origination import data_refresh as dr
    from microlend.parties.customers import NewCustomer, add_customer
    from microlend.parties.tables import ConsentRow
    from microlend.servicing.service.credit_lines import open_credit_line

    url, drop_database = scratch_database(args.backend, "bench-refresh")
    load_modules()
    engine = make_engine(url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    bank = tenancy.create_tenant(UnitOfWork(factory), f"bench-{random.randrange(10**6)}")
    admin = system_principal(bank.id, "admin")
    if args.server == "sandbox":
        from microlend.demo.providers import start

        with UnitOfWork(factory) as u:
            anchor = business_date(u.session, bank.id)
        server = start(anchor, (low, high))
    else:
        from tests.provider_server import ProviderServer

        server = ProviderServer(latency_ms=(low, high)).start()  # type: ignore[assignment]
    for kind in KINDS:
        svc.set_provider(UnitOfWork(factory), admin, kind, svc.ProviderChanges(
            base_url=server.base_url, api_key="sandbox", timeout_ms=3000, retries=1,
            cost_per_call=COST_PER_CALL[kind]))
    if args.all_sources:
        dr.POST_LOAN_TEXTS = {"credit_report": frozenset({"credit_report/2026-11"}),
                              "external_data": frozenset({"external_data/2026-11"})}
    rng = random.Random(7)
    started = time.perf_counter()
    for i in range(args.borrowers):
        with UnitOfWork(factory) as u:
            row = add_customer(u.session, admin, NewCustomer(
                kind="business", name=f"商户{i}", id_number=identities.uscc(rng), phone=identities.mobile(rng)))
            for scope in ("credit_report", "external_data"):
                u.session.add(ConsentRow(tenant_id=bank.id, customer_id=row.id, scope=scope,
                                         granted_at=datetime.now(UTC), granted_by="borrower", channel="self",
                                         text_version=f"{scope}/2026-11"))
            customer_id = row.id
            u.commit()
        open_credit_line(UnitOfWork(factory), admin, "RV-STD", Decimal("50000"), customer_id=customer_id)
    print(f"set up {args.borrowers} borrowers in {time.perf_counter() - started:.1f} s "
          f"({args.backend}, {args.server} provider server at {low}-{high} ms)")
    gateway = Gateway()
    business_data.set_gateway(gateway)
    worker = system_principal(bank.id, "worker")
    budget = dr.RefreshSettings(30, 1_000_000, Decimal("1000000"))
    try:
        started = time.perf_counter()
        run = dr.refresh(UnitOfWork(factory), worker, settings=budget)
        seconds = time.perf_counter() - started
        again_started = time.perf_counter()
        again = dr.refresh(UnitOfWork(factory), worker, settings=budget)
        again_seconds = time.perf_counter() - again_started
    finally:
        business_data.set_gateway(None)
        gateway.close()
        server.stop()
        engine.dispose()
        drop_database()
    print(f"refresh run: {run.refreshed} borrowers refreshed ({run.skipped_no_consent} skipped without consent) "
          f"in {seconds:.2f} s = {run.refreshed / seconds:.1f} borrowers/s")
    print(f"  calls {run.calls} ({run.calls / seconds:.1f} calls/s), statuses {run.statuses}, cost {run.cost} CNY")
    print(f"a second run at once: {again.fresh} fresh, {again.calls} calls, in {again_seconds:.2f} s")


if __name__ == "__main__":
    main()
