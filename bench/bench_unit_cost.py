"""单笔贷款运营成本 of a demo-like bank: seed the demo bank on a temporary SQLite file, live a short history
through the real use cases (decisions on the provider sandboxes priced as the demo prices them, offers
accepted and disbursed, referred cases reviewed, close of business every night), then print its cost per loan
disbursed with the breakdown, beside the 2.30 CNY a leading digital bank reports.

Run: .venv/bin/python bench/bench_unit_cost.py [--customers 200] [--days 30] [--per-day 5]"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

os.environ.setdefault("MICROLEND_SECRET_KEY", "bench-secret-key-0123456789-abcdefghij")
os.environ.setdefault("MICROLEND_AUDIT_KEY", "bench-audit-key-0123456789-abcdefghijkl")
os.environ.setdefault("MICROLEND_MODE", "test")

CENT = Decimal("0.01")


def _money(amount: Decimal) -> str:
    return f"{amount.quantize(CENT):>12,}"


def run(customers: int, days: int, per_day: int) -> None:
    from microlend.core.clock import utcnow
    from microlend.core.db import make_engine, make_session_factory
    from microlend.core.identity import system_principal
    from microlend.core.migrate import upgrade
    from microlend.core.uow import UnitOfWork
    from microlend.demo import providers
    from microlend.demo.history import simulate
    from microlend.demo.seed import seed
    from microlend.origination import unit_cost

    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'unitcost.db'}")
        upgrade(engine)
        factory = make_session_factory(engine)

        def open_uow() -> UnitOfWork:
            return UnitOfWork(factory)

        started = time.perf_counter()
        bank = seed(open_uow(), customers=customers)
        since = datetime.now(UTC) - timedelta(days=days + 2)
        with providers.start(providers.anchor_of(open_uow(), bank.tenant_id)) as sandbox:
            providers.connect(open_uow(), bank.tenant_id, sandbox.base_url)
            simulate(open_uow(), bank.tenant_id, days=days, per_day=per_day)
        lived = time.perf_counter() - started
        who = system_principal(bank.tenant_id, "bench")
        c = unit_cost.unit_cost(open_uow(), who, since, utcnow() + timedelta(days=1))
        engine.dispose()

    a = c.assumptions
    print(
        f"demo-like bank: {customers} customers, {days} days of history at {per_day} applications a day "
        f"(lived in {lived:.0f} s, SQLite)"
    )
    print(
        f"applications {c.applications}, decided {c.decided}, loans disbursed {c.loans_disbursed}, "
        f"referred cases reviewed {c.staff.cases}"
    )
    print(f"{'part':<16}{'CNY':>12}  share   measured")
    rows = [
        ("external data", c.provider_cost, f"{c.provider_calls} calls, demo prices per call"),
        ("decision CPU", c.decision_cost, f"{c.decision_cpu_ms:,} ms CPU"),
        (
            "staff review",
            c.staff_cost,
            f"{c.staff_minutes:,} min ({c.staff.recommendations} recommendations, "
            f"{c.staff.decisions} approvals/declines, {c.staff.field_visits} visits)",
        ),
        ("servicing CPU", c.servicing_cost, f"{c.servicing_cpu_ms:,} ms CPU over {c.servicing_loan_days:,} loan-days"),
    ]
    for name, amount, note in rows:
        print(f"{name:<16}{_money(amount)}  {c.share(amount) * 100:5.1f}%  {note}")
    print(f"{'total':<16}{_money(c.total)}")
    for name, amount, _ in rows:
        per = amount / c.loans_disbursed if c.loans_disbursed else None
        print(f"  per loan, {name:<14}{'—' if per is None else f'{per:.6f}':>12}")
    per_month = c.cpu_ms_per_loan_month
    if per_month is not None:
        print(f"servicing CPU per loan-month: {per_month:.2f} ms ({a.cpu_cost(per_month):.8f} CNY)")
    if c.applications:
        print(
            f"decision CPU per application decided by the engine: {Decimal(c.decision_cpu_ms) / c.applications:.1f} ms"
        )
    per_loan = c.per_loan
    print(
        f"COST PER LOAN DISBURSED: {'—' if per_loan is None else f'{per_loan.quantize(CENT)} CNY'}"
        f"   reference (leading digital bank): {a.reference_per_loan} CNY"
    )
    if per_loan is not None and c.loans_disbursed:
        machine = (c.provider_cost + c.decision_cost + c.servicing_cost) / c.loans_disbursed
        print(
            f"  without staff time: {machine.quantize(CENT)} CNY; external data alone: "
            f"{(c.provider_cost / c.loans_disbursed).quantize(CENT)} CNY"
        )
    print(
        f"assumptions: {a.cpu_hour_cost} CNY per CPU-hour, {a.staff_hour_cost} CNY per staff hour, "
        f"{a.recommend_minutes}/{a.decide_minutes}/{a.field_visit_minutes} minutes per recommendation/"
        f"approval or decline/field visit"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=5)
    args = parser.parse_args()
    run(args.customers, args.days, args.per_day)


if __name__ == "__main__":
    main()
