"""Benchmark: a journey step over a launched campaign — SMS to every treated customer, then an officer's visit
three days later for those who did not click — and the variant report of an A/B campaign.

Run: .venv/bin/python bench/bench_journeys.py [--customers 100000] [--database-url URL]
Prints the launch time, the journey step's time and customers/s (clicks, applications and the policy's
blocks read as whole sets, chosen by anti-joins), and the variant report's time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

import microlend.core.tables
import microlend.marketing.tables  # noqa: F401
from microlend.core.db import Base, make_engine, make_session_factory
from microlend.core.identity import Principal, system_principal
from microlend.core.tables import TenantRow
from microlend.core.uow import UnitOfWork
from microlend.marketing import service
from microlend.marketing.journeys import StepSpec, Variant
from microlend.marketing.segments import FrequencyCap

NOON = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


def everyone(uow: UnitOfWork, who: Principal, ids: Sequence[int]) -> set[int]:
    return set(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file in a temporary folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-journeys-"))
    engine = make_engine(args.database_url or f"sqlite:///{work / 'journeys.db'}")
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    with factory() as s:
        row = TenantRow(name=f"bench-{int(time.time())}", display_name="Bench bank", business_date=NOON.date(),
                        created_at=NOON)
        s.add(row)
        s.commit()
        tenant_id = row.id
    who = system_principal(tenant_id, "bench")
    n = args.customers
    frame = pl.DataFrame({"customer_id": list(range(1, n + 1)), "age": [30 + i % 30 for i in range(n)],
                          "marketing_consent": [True] * n, "current_days_past_due": [0] * n})
    service.save_segment(UnitOfWork(factory), who, "all", "age >= 18", at=NOON)
    camp = service.create_campaign(UnitOfWork(factory), who, service.CampaignSpec(
        name="journey", channel="sms", segment_name="all", control_share_bp=1000, cap=FrequencyCap(10, 30),
        variants=(Variant("A", 50, "A {{ link }}"), Variant("B", 50, "B {{ link }}"))), at=NOON)
    service.add_journey_step(UnitOfWork(factory), who, camp.id, StepSpec(3, "no_click", "visit"))
    started = time.perf_counter()
    launch = service.launch_campaign(UnitOfWork(factory), who, camp.id, frame, at=NOON)
    launched_s = time.perf_counter() - started
    clicks = [{"customer_id": c, "kind": "clicked", "at": NOON + timedelta(hours=2), "campaign_id": camp.id}
              for c in range(1, n + 1, 5)]
    service.record_events(UnitOfWork(factory), who, clicks)
    started = time.perf_counter()
    done = service.advance_journeys(UnitOfWork(factory), who, now=NOON + timedelta(days=3), consent=everyone)
    step_s = time.perf_counter() - started
    started = time.perf_counter()
    variants = service.variant_report(UnitOfWork(factory), who, camp.id)
    report_s = time.perf_counter() - started
    print(f"customers {n:,}; treated {launch.treatment:,}; launch {launched_s:.2f} s")
    print(f"journey step: {done.visit_tasks:,} visit tasks in {step_s:.2f} s "
          f"({launch.treatment / step_s:,.0f} treated customers/s)")
    print(f"variant report: {[(v.key, v.treated) for v in variants]} in {report_s:.2f} s")


if __name__ == "__main__":
    main()
