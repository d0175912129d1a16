"""Close-of-business throughput over a seeded portfolio of active loans of mixed methods, on SQLite and
PostgreSQL. The portfolio is generated with the vectorised schedule path and bulk-inserted (executemany on
SQLite, COPY on PostgreSQL) as it would stand on the business date: past installments paid (about 6% of
loans delinquent since some installment; those more than 90 days past due already non-accrual), the current
period accrued to the day before. Close of business then runs for a few consecutive dates in a fresh process,
whose peak memory is reported; the first date is a month-end, so its run includes the provisioning run, and
every date carries the non-accrual steps (off-balance interest and penalty, loans stopping accruing).

Run: .venv/bin/python bench/bench_cob.py [--loans 100000] [--days 3] [--backend sqlite|postgresql|both]
     .venv/bin/python bench/bench_cob.py --provisioning [--loans 1000000] [--days 0]
     (--provisioning: the month-end provisioning run alone on the seeded month-end date, before the COB dates)
Each figure is printed with the machine's load average (1 minute) when it was taken: other work on the machine
slows a run. The seeded state carries no journal history, so the ledger is not expected to reconcile here."""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import Engine, create_engine, text

from microlend.core import tenancy
from microlend.core.db import Base, make_engine, make_session_factory
from microlend.core.uow import UnitOfWork
from microlend.servicing import provisions
from microlend.servicing import tables as _tables  # noqa: F401
from microlend.servicing.batch_schedules import batch_schedules
from microlend.servicing.service import setup_tenant
from microlend.servicing.tables import InstallmentRow, LoanRow

BUSINESS_DATE = date(2026, 6, 30)
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
EPOCH = np.datetime64("0001-01-01", "D")
STORAGE = 100  # cents -> stored ten-thousandths
METHOD_NAMES = ["equal-installment", "equal-principal", "interest-only", "bullet", "revolving"]
PRODUCT_CODES = ["EI-STD", "EP-STD", "IO-STD", "BL-STD", "RV-STD"]


def iso(ordinals: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return (EPOCH + (ordinals - 1).astype("timedelta64[D]")).astype(str)


def generate(n: int, seed: int = 20260630) -> dict[str, Any]:
    """Loans and installment rows as arrays (amounts in cents)."""
    rng = np.random.default_rng(seed)
    method = rng.choice(5, size=n, p=[0.40, 0.20, 0.15, 0.15, 0.10]).astype(np.int64)
    term = rng.choice(np.array([3, 6, 12, 24, 36]), size=n, p=[0.15, 0.25, 0.35, 0.15, 0.10]).astype(np.int64)
    term = np.where(method == 2, np.minimum(term, 12), term)
    term = np.where(method == 3, np.minimum(term, 12), term)
    term = np.where(method == 4, 12, term)
    principal = (rng.integers(1_000, 300_000, size=n) * 100).astype(np.int64)  # whole CNY, in cents
    rate_e6 = rng.integers(43_500, 180_000, size=n).astype(np.int64)
    b = BUSINESS_DATE.toordinal()
    age = (rng.random(n) * (term * 30 - 3)).astype(np.int64) + 1  # still running on the business date
    start = b - age
    starts = [date.fromordinal(int(x)) for x in start]
    scheduled = method != 4
    idx = np.flatnonzero(scheduled)
    batch = batch_schedules(principal[idx], rate_e6[idx], term[idx], method[idx], [starts[i] for i in idx])
    loan_of_row = idx[batch.loan]
    # revolving drawdowns: one open row until the line expires a year after the drawdown
    rv = np.flatnonzero(~scheduled)
    rv_due = np.array([(date.fromordinal(int(start[i])) + timedelta(days=365)).toordinal() for i in rv], dtype=np.int64)
    rows = {
        "loan": np.concatenate([loan_of_row, rv]),
        "number": np.concatenate([batch.number, np.ones(len(rv), dtype=np.int64)]),
        "start_day": np.concatenate([batch.start_day, start[rv]]),
        "due_day": np.concatenate([batch.due_day, rv_due]),
        "principal": np.concatenate([batch.principal, principal[rv]]),
        "interest": np.concatenate([batch.interest, np.zeros(len(rv), dtype=np.int64)]),
    }
    # state on the business date: past rows paid, except for delinquent loans from a random installment on
    delinquent = rng.random(n) < 0.06
    first_missed = rng.integers(1, 4, size=n)
    due_before = rows["due_day"] < b
    missed = delinquent[rows["loan"]] & (rows["number"] >= first_missed[rows["loan"]]) & due_before
    paid = due_before & ~missed & (method[rows["loan"]] != 4)
    days = rows["due_day"] - rows["start_day"]
    elapsed = np.clip(b - rows["start_day"], 0, days)
    accrued = np.where(days > 0, (2 * rows["interest"] * elapsed + days) // np.maximum(2 * days, 1), rows["interest"])
    accrued = np.where(rows["start_day"] >= b, 0, accrued)
    rows["interest_accrued"] = np.where(paid | missed, rows["interest"], accrued)
    rows["paid"] = paid
    rows["status"] = np.where(paid, "paid", np.where(missed, "overdue", "pending"))
    maturity = np.zeros(n, dtype=np.int64)
    np.maximum.at(maturity, rows["loan"], rows["due_day"])
    # loans already past the non-accrual threshold (over 90 days) stopped accruing on an earlier date
    oldest_missed = np.full(n, b, dtype=np.int64)
    np.minimum.at(oldest_missed, rows["loan"][missed], rows["due_day"][missed])
    non_accrual = b - 1 - oldest_missed > 90
    return {
        "n": n,
        "method": method,
        "term": term,
        "principal": principal,
        "rate_e6": rate_e6,
        "start": start,
        "maturity": maturity,
        "non_accrual": non_accrual,
        "rows": rows,
    }


def _copy_text(columns: list[np.ndarray[Any, Any]]) -> str:
    out = io.StringIO()
    stacked = np.column_stack([c.astype(str) for c in columns])
    for line in stacked:
        out.write("\t".join(line))
        out.write("\n")
    return out.getvalue()


def load(engine: Engine, tenant_id: int, data: dict[str, Any]) -> None:
    """Bulk load with the secondary indexes dropped, then rebuilt (the usual way to load a table fast)."""
    indexes = [ix for table in (LoanRow.__table__, InstallmentRow.__table__) for ix in table.indexes]  # type: ignore[attr-defined]
    with engine.begin() as c:
        for ix in indexes:
            ix.drop(c)
    _load_rows(engine, tenant_id, data)
    with engine.begin() as c:
        for ix in indexes:
            ix.create(c)
        c.execute(text("ANALYZE"))


def _load_rows(engine: Engine, tenant_id: int, data: dict[str, Any]) -> None:
    n, rows = data["n"], data["rows"]
    product_ids = {}
    with engine.connect() as c:
        for code in PRODUCT_CODES:
            product_ids[code] = c.execute(
                text("SELECT id FROM servicing_products WHERE tenant_id = :t AND code = :c"),
                {"t": tenant_id, "c": code},
            ).scalar_one()
    order = json.dumps(
        ["penalty", "fee", "overdue_interest", "overdue_principal", "current_interest", "current_principal"]
    )
    ids = np.arange(1, n + 1, dtype=np.int64)
    rate_e8 = data["rate_e6"] * 100
    loan_cols = [
        ids,
        np.full(n, tenant_id),
        np.array([product_ids[PRODUCT_CODES[m]] for m in data["method"]]),
        np.array([METHOD_NAMES[m] for m in data["method"]]),
        data["principal"] * STORAGE,
        np.array([str(Decimal(int(r)) / 10**6) for r in data["rate_e6"]]),
        rate_e8,
        rate_e8 * 3 // 2,
        np.zeros(n, dtype=np.int64),
        data["term"],
        iso(data["start"]),
        iso(data["maturity"]),
        np.where(data["non_accrual"], "non-accrual", "accruing"),
    ]
    loan_names = [
        "id",
        "tenant_id",
        "product_id",
        "method",
        "principal",
        "annual_rate",
        "rate_e8",
        "penalty_rate_e8",
        "grace_days",
        "term_months",
        "disbursed_on",
        "maturity_date",
        "accrual_status",
    ]
    constants = {
        "currency": "CNY",
        "upfront_fee": 0,
        "fee_mode": "deduct",
        "allocation_order": order,
        "status": "active",
        "days_past_due": 0,
        "bucket": "M0",
        "loan_class": "normal",
        "penalty_accrued": 0,
        "penalty_paid": 0,
        "credit_balance": 0,
        "request_hash": "",
        "created_at": "2026-06-30 00:00:00.000000",
    }
    m = len(rows["loan"])
    paid = rows["paid"]
    zero = np.zeros(m, dtype=np.int64)
    inst_cols = [
        np.full(m, tenant_id),
        ids[rows["loan"]],
        rows["number"],
        iso(rows["start_day"]),
        iso(rows["due_day"]),
        rows["start_day"],
        rows["due_day"],
        rows["principal"] * STORAGE,
        rows["interest"] * STORAGE,
        zero,
        np.where(paid, rows["principal"], 0) * STORAGE,
        np.where(paid, rows["interest"], 0) * STORAGE,
        zero,
        rows["interest_accrued"] * STORAGE,
        rows["status"],
    ]
    inst_names = [
        "tenant_id",
        "loan_id",
        "number",
        "period_start",
        "due_date",
        "start_day",
        "due_day",
        "principal",
        "interest",
        "fee",
        "principal_paid",
        "interest_paid",
        "fee_paid",
        "interest_accrued",
        "status",
    ]
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            names = loan_names + list(constants)
            const_cols = [np.full(n, v) for v in constants.values()]
            chunk = 200_000
            for lo in range(0, n, chunk):
                with cur.copy(f"COPY loans ({', '.join(names)}) FROM STDIN") as cp:
                    cp.write(_copy_text([c[lo : lo + chunk] for c in loan_cols + const_cols]))
            for lo in range(0, m, chunk):
                with cur.copy(f"COPY loan_installments ({', '.join(inst_names)}) FROM STDIN") as cp:
                    cp.write(_copy_text([c[lo : lo + chunk] for c in inst_cols]))
            cur.execute("SELECT setval('loans_id_seq', (SELECT MAX(id) FROM loans))")
            raw.commit()
        finally:
            raw.close()
        return
    raw = engine.raw_connection()
    try:
        raw.commit()
        cur = raw.cursor()
        cur.execute("PRAGMA foreign_keys=OFF")  # rows are generated consistent; checked again by the tests
        cur.execute("BEGIN")  # one transaction for the load (the driver may be in autocommit mode)
        names = loan_names + list(constants)
        chunk = 200_000
        for lo in range(0, n, chunk):
            loan_tuples = [
                tuple(x.item() if hasattr(x, "item") else x for x in row) + tuple(constants.values())
                for row in zip(*[c[lo : lo + chunk] for c in loan_cols], strict=True)
            ]
            cur.executemany(
                f"INSERT INTO loans ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", loan_tuples
            )
        sql = f"INSERT INTO loan_installments ({', '.join(inst_names)}) VALUES ({', '.join('?' * len(inst_names))})"
        for lo in range(0, m, chunk):
            part = [c[lo : lo + chunk].tolist() for c in inst_cols]
            cur.executemany(sql, list(zip(*part, strict=True)))
        raw.commit()
        cur.execute("PRAGMA foreign_keys=ON")
    finally:
        raw.close()


def prepare(backend: str, n: int) -> tuple[str, Any]:
    if backend == "sqlite":
        path = os.path.join(tempfile.mkdtemp(prefix="bench_cob_"), "bench.db")
        url = f"sqlite:///{path}"
        cleanup = lambda: os.remove(path)  # noqa: E731
    else:
        name = f"servicing_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(
            f"{PG_SERVER}/test".replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = f"{PG_SERVER}/{name}"

        def cleanup() -> None:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    engine = make_engine(url)
    Base.metadata.create_all(engine)
    tenancy.TENANT_SETUP[:] = [setup_tenant]
    tenant = tenancy.create_tenant(UnitOfWork(make_session_factory(engine)), "bench", business_date=BUSINESS_DATE)
    t0 = time.perf_counter()
    data = generate(n)
    t1 = time.perf_counter()
    load(engine, tenant.id, data)
    t2 = time.perf_counter()
    print(
        f"  generated {n:,} loans ({int(data['non_accrual'].sum()):,} non-accrual) / "
        f"{len(data['rows']['loan']):,} installments in {t1 - t0:.1f}s, loaded in {t2 - t1:.1f}s"
    )
    engine.dispose()
    return url, cleanup


CHILD = """
import json, os, sys, time
from datetime import date
from microlend.core.db import make_engine, make_session_factory
from microlend.core.identity import system_principal
from microlend.core.uow import UnitOfWork
from microlend.servicing import cob, provisions
import microlend.servicing.tables
engine = make_engine(sys.argv[1])
who = system_principal(1)
out = []
if sys.argv[3] == "provisioning":
    t0 = time.perf_counter()
    run = provisions.run_provisioning(UnitOfWork(make_session_factory(engine)), who)
    out.append({"date": run.as_of.isoformat(), "loans": run.loans, "seconds": time.perf_counter() - t0,
                "total": str(run.total), "by_stage": {k: str(v) for k, v in run.by_stage.items()},
                "load": os.getloadavg()[0], "provisioning": True})
for k in range(int(sys.argv[2])):
    t0 = time.perf_counter()
    (r,) = cob.run_close_of_business(UnitOfWork(make_session_factory(engine)), who)
    out.append({"date": r.business_date.isoformat(), "loans": r.loans_active,
                "seconds": time.perf_counter() - t0, "interest": str(r.interest_accrued),
                "penalty": str(r.penalty_accrued), "off_balance": str(r.interest_off_balance),
                "stopped": r.stopped_accruing, "overdue": r.newly_overdue, "bucket_changes": r.bucket_changes,
                "steps": {k: round(v, 2) for k, v in r.steps.items()}, "load": os.getloadavg()[0]})
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"runs": out, "peak_kib": hwm}))
"""


def bench(backend: str, n: int, days: int, provisioning: bool) -> None:
    print(f"{backend}: {n:,} active loans")
    url, cleanup = prepare(backend, n)
    try:
        mode = "provisioning" if provisioning else "cob"
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, url, str(days), mode], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            print(proc.stderr)
            return
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        for r in report["runs"]:
            if r.get("provisioning"):
                print(
                    f"  provisioning run {r['date']}: {r['loans']:,} loans in {r['seconds']:.2f}s = "
                    f"{r['loans'] / r['seconds']:,.0f} loans/s  (allowance {r['total']}, by stage {r['by_stage']}; "
                    f"load average {r['load']:.2f})"
                )
                continue
            month_end = " (month-end: with provisioning)" if provisions.month_end(date.fromisoformat(r["date"])) else ""
            print(
                f"  COB {r['date']}{month_end}: {r['loans']:,} loans in {r['seconds']:.2f}s = "
                f"{r['loans'] / r['seconds']:,.0f} loans/s  (load average {r['load']:.2f}; interest {r['interest']}, "
                f"off-balance {r['off_balance']}, penalty {r['penalty']}, newly overdue {r['overdue']:,}, "
                f"stopped accruing {r['stopped']:,}, bucket changes {r['bucket_changes']:,})"
            )
            print(f"    steps (s): {r['steps']}")
        print(
            f"  peak memory of the close-of-business process: {report['peak_kib'] / 1024:.0f} MiB "
            f"(the database server's own memory not included)"
        )
    finally:
        cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loans", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--provisioning", action="store_true", help="time the month-end provisioning run alone")
    args = parser.parse_args()
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        bench(backend, args.loans, args.days, args.provisioning)
    print(f"generator process peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
