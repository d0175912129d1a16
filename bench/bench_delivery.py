"""A day's dispatch through the HTTP gateway adapter: 1,000,000 messages by default, in the gateway's batches,
paced by the bank's throttle, to the gateway test double on loopback (real HTTP, signed requests, idempotency
keys checked, a fault now and then so retries happen). Prints messages a second and the total time.

    .venv/bin/python bench/bench_delivery.py [--messages 1000000] [--batch 1000] [--rate 50000] [--senders 2]
    .venv/bin/python bench/bench_delivery.py --db 20000   # plus the outbox dispatch through the database

The throttle is the ceiling: the figure shows how close the adapter and double come to it on this machine."""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from microlend.core.delivery import GatewayConfig, GatewayMessage, HttpGateway, Throttle
from microlend.demo.message_gateway import GatewayDouble


def adapter_run(messages: int, batch: int, rate: int, senders: int, fault_every: int) -> None:
    with GatewayDouble(api_key="bench-key", secret="bench-secret", keep_texts=False) as double:
        config = GatewayConfig("sms", double.base_url, "bench-key", "bench-secret", batch_size=batch,
                               timeout_s=30, throttle_per_s=rate)
        throttle = Throttle(rate)
        text = ("【示范银行】小微经营贷，随借随还，线上申请几分钟出额度："
                "https://www.bank.example.cn/t/0123456789abcdef 回T退订")
        chunks = [range(start, min(start + batch, messages)) for start in range(0, messages, batch)]
        accepted = retried = 0
        lock = threading.Lock()

        def send(gateway: HttpGateway, chunk: range, n: int) -> None:
            nonlocal accepted, retried
            batch_messages = [GatewayMessage(f"mkt-{i}", f"138{i:08d}", text) for i in chunk]
            if fault_every and n % fault_every == 0:
                double.throttle_next += 1  # the gateway says 429 now and then: the batch goes again
            pending = batch_messages
            while pending:
                throttle.acquire(len(pending))
                results = gateway.send(pending)
                again = {r.key for r in results if not r.accepted and r.retryable}
                with lock:
                    accepted += sum(r.accepted for r in results)
                    retried += len(again)
                pending = [m for m in pending if m.key in again]

        gateways = [HttpGateway(config) for _ in range(senders)]
        started = time.perf_counter()
        with ThreadPoolExecutor(senders) as pool:
            for n, chunk in enumerate(chunks):
                pool.submit(send, gateways[n % senders], chunk, n)
        elapsed = time.perf_counter() - started
        for g in gateways:
            g.close()
        print(f"adapter: {messages:,} messages in batches of {batch:,}, throttle {rate:,}/s, {senders} sender(s)")
        print(f"  accepted {accepted:,} (gateway saw {len(double.accepted):,} distinct, {double.duplicates:,} "
              f"repeats), re-sent after 429: {retried:,}, requests {double.requests:,}")
        print(f"  total {elapsed:.1f} s, {accepted / elapsed:,.0f} messages/s, throttle waited "
              f"{throttle.waited_s:.1f} s")
        assert accepted == messages == len(double.accepted)


def db_run(n: int, rate: int) -> None:
    """Launch a push campaign over `n` customers and dispatch its outbox through the gateway double."""
    import polars as pl

    from microlend.bootstrap import load_modules
    from microlend.core import delivery, migrate, tenancy
    from microlend.core.db import make_engine, make_session_factory
    from microlend.core.identity import Principal, Role
    from microlend.core.uow import UnitOfWork
    from microlend.marketing import service
    from microlend.marketing.campaigns import QuietHours
    from microlend.marketing.contact_policy import ContactPolicy
    from microlend.marketing.service.delivery import bank_sender

    load_modules()
    noon = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp, \
            GatewayDouble(api_key="bench-key", secret="bench-secret", keep_texts=False) as double:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        migrate.upgrade(engine)
        factory = make_session_factory(engine)
        tenant = tenancy.create_tenant(UnitOfWork(factory), "bench")
        admin = Principal(1, tenant.id, "admin", frozenset({Role.ADMIN}))
        maker = Principal(2, tenant.id, "maker", frozenset({Role.MARKETER}))
        checker = Principal(3, tenant.id, "checker", frozenset({Role.MARKETER}))
        service.set_contact_policy(UnitOfWork(factory), admin, ContactPolicy(
            cap_max_contacts=4, holdout_share_bp=500, throttle_per_s=rate), at=noon)
        delivery.save_gateway(UnitOfWork(factory), admin, GatewayConfig(
            "push", double.base_url, "bench-key", "bench-secret", batch_size=1000, throttle_per_s=rate), at=noon)
        service.save_segment(UnitOfWork(factory), maker, "all", "age >= 18", at=noon)
        camp = service.create_campaign(UnitOfWork(factory), maker, service.CampaignSpec(
            name="bench", channel="push", segment_name="all", control_share_bp=1000, quiet=QuietHours()), at=noon)
        service.approve_campaign(UnitOfWork(factory), checker, camp.id, at=noon)
        _register_devices(engine, tenant.id, n, noon)
        frame = pl.DataFrame({"customer_id": list(range(1, n + 1)), "age": [40] * n,
                              "marketing_consent": [True] * n, "current_days_past_due": [0] * n})
        started = time.perf_counter()
        launched = service.launch_campaign(UnitOfWork(factory), maker, camp.id, frame, at=noon, bank_name="示范银行")
        launch_s = time.perf_counter() - started
        # the sender reads push targets in the dispatch's own unit of work, as the worker's messages job does:
        # on SQLite a second one would wait for the write lock the dispatch holds
        uow = UnitOfWork(factory)
        sender, gateways = bank_sender(uow, maker)
        started = time.perf_counter()
        summary = service.dispatch_outbox(uow, maker, now=noon + timedelta(minutes=1), sender=sender,
                                          consent=lambda _u, _w, ids: set(ids))
        dispatch_s = time.perf_counter() - started
        for gateway in gateways:
            gateway.close()
        print(f"database (SQLite): {n:,} customers, {launched.messages:,} messages after holdout and control "
              f"({launched.excluded.get('global_holdout', 0):,} held out bank-wide, {launched.control:,} control)")
        print(f"  launch {launch_s:.1f} s; dispatch {dispatch_s:.1f} s = {summary.sent / dispatch_s:,.0f} messages/s "
              f"(sent {summary.sent:,}, failed {summary.failed:,})")
        engine.dispose()


def _register_devices(engine: Any, tenant_id: int, n: int, at: datetime) -> None:
    """One app device per benchmark customer (ids 1..n, not real customer rows: the foreign key is off for
    this one insert), so pushes have a token to go to."""
    from sqlalchemy import insert

    from microlend.core import crypto
    from microlend.parties.tables import DeviceRow

    with engine.connect() as conn:
        # SQLite changes foreign_keys only outside a transaction, and every statement through the connection
        # begins one: the driver's own connection turns it off before the first insert and on after the commit
        raw = conn.connection.dbapi_connection
        assert raw is not None
        raw.execute("PRAGMA foreign_keys=OFF")
        for start in range(1, n + 1, 10_000):
            conn.execute(insert(DeviceRow), [
                {"tenant_id": tenant_id, "customer_id": c, "platform": "android",
                 "token_enc": crypto.encrypt(f"bench-token-{c:012d}"), "token_index": f"bench-{c}",
                 "token_masked": "benc****", "status": "active", "registered_at": at}
                for c in range(start, min(n, start + 9_999) + 1)])
        conn.commit()
        raw.execute("PRAGMA foreign_keys=ON")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=50_000, help="the throttle, messages a second")
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--fault-every", type=int, default=100, help="a 429 every this many batches (0: none)")
    parser.add_argument("--db", type=int, default=0, help="also dispatch this many messages through the outbox")
    args = parser.parse_args(argv)
    adapter_run(args.messages, args.batch, args.rate, args.senders, args.fault_every)
    if args.db:
        db_run(args.db, args.rate)


if __name__ == "__main__":
    main(sys.argv[1:])
