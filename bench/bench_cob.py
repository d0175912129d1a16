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
     --keep-seed (PostgreSQL): seed once into servicing_bench_seed_N_<schema hash>, then run every time on a copy of it
Each figure is printed with the machine's load average (1 minute) when it was taken: other work on the machine
slows a run. The seeded state carries no journal history, so the ledger is not expected to reconcile here."""

from __future__ import annotations

import argparse
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
from _scratch import schema_hash
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


#: loans generated and loaded at a time: the generator's memory stays that of one chunk whatever the portfolio
CHUNK_LOANS = 100_000
#: rows turned into COPY text (or executemany tuples) at a time
CHUNK_ROWS = 100_000


def generate(n: int, seed: int = 20260630) -> dict[str, Any]:
    """The loans' own random draws (amounts in cents); their installment rows come chunk by chunk from
    ``installments``. Every draw is made here, in one order, so a chunked load gives the same portfolio."""
    rng = np.random.default_rng(seed)
    method = rng.choice(5, size=n, p=[0.40, 0.20, 0.15, 0.15, 0.10]).astype(np.int64)
    term = rng.choice(np.array([3, 6, 12, 24, 36]), size=n, p=[0.15, 0.25, 0.35, 0.15, 0.10]).astype(np.int64)
    term = np.where(method == 2, np.minimum(term, 12), term)
    term = np.where(method == 3, np.minimum(term, 12), term)
    term = np.where(method == 4, 12, term)
    principal = (rng.integers(1_000, 300_000, size=n) * 100).astype(np.int64)  # whole CNY, in cents
    rate_e6 = rng.integers(43_500, 180_000, size=n).astype(np.int64)
    age = (rng.random(n) * (term * 30 - 3)).astype(np.int64) + 1  # still running on the business date
    start = BUSINESS_DATE.toordinal() - age
    # state on the business date: delinquent loans missed every installment from a random one on
    delinquent = rng.random(n) < 0.06
    first_missed = rng.integers(1, 4, size=n)
    return {
        "n": n,
        "method": method,
        "term": term,
        "principal": principal,
        "rate_e6": rate_e6,
        "start": start,
        "delinquent": delinquent,
        "first_missed": first_missed,
    }


def installments(data: dict[str, Any], lo: int, hi: int, revolving: bool) -> dict[str, np.ndarray[Any, Any]]:
    """Installment rows of loans ``lo``..``hi`` (indexes), scheduled ones or revolving drawdowns, as they stand
    on the business date: past rows paid except a delinquent loan's, the current period accrued to the day
    before."""
    b = BUSINESS_DATE.toordinal()
    method, start = data["method"][lo:hi], data["start"][lo:hi]
    if revolving:  # one open row until the line expires a year after the drawdown
        rv = np.flatnonzero(method == 4)
        rv_due = np.array(
            [(date.fromordinal(int(start[i])) + timedelta(days=365)).toordinal() for i in rv], dtype=np.int64
        )
        loan, number = rv, np.ones(len(rv), dtype=np.int64)
        start_day, due_day = start[rv], rv_due
        principal, interest = data["principal"][lo:hi][rv], np.zeros(len(rv), dtype=np.int64)
    else:
        idx = np.flatnonzero(method != 4)
        starts = [date.fromordinal(int(start[i])) for i in idx]
        batch = batch_schedules(
            data["principal"][lo:hi][idx], data["rate_e6"][lo:hi][idx], data["term"][lo:hi][idx], method[idx], starts
        )
        loan, number, start_day, due_day = idx[batch.loan], batch.number, batch.start_day, batch.due_day
        principal, interest = batch.principal, batch.interest
    missed = data["delinquent"][lo:hi][loan] & (number >= data["first_missed"][lo:hi][loan]) & (due_day < b)
    paid = (due_day < b) & ~missed & (method[loan] != 4)
    days = due_day - start_day
    elapsed = np.clip(b - start_day, 0, days)
    accrued = np.where(days > 0, (2 * interest * elapsed + days) // np.maximum(2 * days, 1), interest)
    accrued = np.where(start_day >= b, 0, accrued)
    return {
        "loan": loan + lo,
        "number": number,
        "start_day": start_day,
        "due_day": due_day,
        "principal": principal,
        "interest": interest,
        "interest_accrued": np.where(paid | missed, interest, accrued),
        "paid": paid,
        "missed": missed,
        "status": np.where(paid, "paid", np.where(missed, "overdue", "pending")),
    }


def loan_state(data: dict[str, Any], lo: int, hi: int, parts: list[dict[str, Any]]) -> tuple[Any, Any]:
    """Maturity and non-accrual of loans ``lo``..``hi`` from all their rows: a loan more than 90 days past due
    stopped accruing on an earlier date."""
    b = BUSINESS_DATE.toordinal()
    maturity = np.zeros(hi - lo, dtype=np.int64)
    oldest_missed = np.full(hi - lo, b, dtype=np.int64)
    for rows in parts:
        np.maximum.at(maturity, rows["loan"] - lo, rows["due_day"])
        np.minimum.at(oldest_missed, rows["loan"][rows["missed"]] - lo, rows["due_day"][rows["missed"]])
    return maturity, b - 1 - oldest_missed > 90


def _copy_text(columns: list[np.ndarray[Any, Any]]) -> str:
    """COPY text of the rows, column by column (no stacking: one wide column would widen every other)."""
    rendered = [c.tolist() if c.dtype.kind == "U" else c.astype(str).tolist() for c in columns]
    return "".join("\t".join(row) + "\n" for row in zip(*rendered, strict=True))


def load(engine: Engine, tenant_id: int, data: dict[str, Any]) -> tuple[int, int]:
    """Bulk load with the secondary indexes dropped, then rebuilt (the usual way to load a table fast); returns
    the number of non-accrual loans and of installment rows."""
    indexes = [ix for table in (LoanRow.__table__, InstallmentRow.__table__) for ix in table.indexes]  # type: ignore[attr-defined]
    with engine.begin() as c:
        for ix in indexes:
            ix.drop(c)
    counts = _load_rows(engine, tenant_id, data)
    with engine.begin() as c:
        for ix in indexes:
            ix.create(c)
        c.execute(text("ANALYZE"))
    return counts


LOAN_NAMES = [
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
BALANCE_NAMES = ["loan_id", "tenant_id", "balance_product"]
INSTALLMENT_NAMES = [
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
LOAN_CONSTANTS = {
    "currency": "CNY",
    "upfront_fee": 0,
    "fee_mode": "deduct",
    "allocation_order": json.dumps(
        ["penalty", "fee", "overdue_interest", "overdue_principal", "current_interest", "current_principal"]
    ),
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


def _loan_columns(
    data: dict[str, Any], tenant_id: int, product_ids: dict[str, int], lo: int, hi: int, maturity: Any, non_accrual: Any
) -> list[np.ndarray[Any, Any]]:
    n = hi - lo
    method, rate_e6 = data["method"][lo:hi], data["rate_e6"][lo:hi]
    rate_e8 = rate_e6 * 100
    return [
        np.arange(lo + 1, hi + 1, dtype=np.int64),
        np.full(n, tenant_id),
        np.array([product_ids[PRODUCT_CODES[m]] for m in method]),
        np.array([METHOD_NAMES[m] for m in method]),
        data["principal"][lo:hi] * STORAGE,
        np.array([str(Decimal(int(r)) / 10**6) for r in rate_e6]),
        rate_e8,
        rate_e8 * 3 // 2,
        np.zeros(n, dtype=np.int64),
        data["term"][lo:hi],
        iso(data["start"][lo:hi]),
        iso(maturity),
        np.where(non_accrual, "non-accrual", "accruing"),
    ] + [np.full(n, v) for v in LOAN_CONSTANTS.values()]


def _balance_columns(data: dict[str, Any], tenant_id: int, lo: int, hi: int) -> list[np.ndarray[Any, Any]]:
    """The revolving loans' balance products as the seeded state has them: a row each, its product settled to 0
    (as a drawdown's row stands after its first day: the nightly close updates it in place)."""
    rv = np.flatnonzero(data["method"][lo:hi] == 4)
    return [rv + lo + 1, np.full(len(rv), tenant_id), np.zeros(len(rv), dtype=np.int64)]


def _installment_columns(tenant_id: int, rows: dict[str, Any], lo: int, hi: int) -> list[np.ndarray[Any, Any]]:
    paid = rows["paid"][lo:hi]
    zero = np.zeros(len(paid), dtype=np.int64)
    return [
        np.full(len(paid), tenant_id),
        rows["loan"][lo:hi] + 1,
        rows["number"][lo:hi],
        iso(rows["start_day"][lo:hi]),
        iso(rows["due_day"][lo:hi]),
        rows["start_day"][lo:hi],
        rows["due_day"][lo:hi],
        rows["principal"][lo:hi] * STORAGE,
        rows["interest"][lo:hi] * STORAGE,
        zero,
        np.where(paid, rows["principal"][lo:hi], 0) * STORAGE,
        np.where(paid, rows["interest"][lo:hi], 0) * STORAGE,
        zero,
        rows["interest_accrued"][lo:hi] * STORAGE,
        rows["status"][lo:hi],
    ]


def _load_rows(engine: Engine, tenant_id: int, data: dict[str, Any]) -> tuple[int, int]:
    """Loans and their installments chunk by chunk, on PostgreSQL by COPY, on SQLite by executemany. The
    installments are written in loan order, each loan's rows together (scheduled periods and revolving drawdowns
    alike), as disbursing the loans one after the other wrote them: a table whose rows are grouped by repayment
    method instead would pack every revolving drawdown, updated each night, on the same few pages."""
    n = data["n"]
    product_ids = {}
    with engine.connect() as c:
        for code in PRODUCT_CODES:
            product_ids[code] = c.execute(
                text("SELECT id FROM servicing_products WHERE tenant_id = :t AND code = :c"),
                {"t": tenant_id, "c": code},
            ).scalar_one()
    postgres = engine.dialect.name == "postgresql"
    loan_sql = f"INSERT INTO loans ({', '.join(LOAN_NAMES + list(LOAN_CONSTANTS))}) VALUES "
    loan_sql += f"({', '.join('?' * (len(LOAN_NAMES) + len(LOAN_CONSTANTS)))})"
    balance_sql = f"INSERT INTO revolving_balances ({', '.join(BALANCE_NAMES)}) VALUES (?, ?, ?)"
    inst_sql = f"INSERT INTO loan_installments ({', '.join(INSTALLMENT_NAMES)}) VALUES "
    inst_sql += f"({', '.join('?' * len(INSTALLMENT_NAMES))})"
    raw = engine.raw_connection()
    try:
        raw.commit()
        cur = raw.cursor()
        if postgres:  # rows are generated consistent: no per-row foreign-key triggers (checked again by the tests)
            cur.execute("SET session_replication_role = replica")
        else:
            cur.execute("PRAGMA foreign_keys=OFF")  # the same, on SQLite
            cur.execute("BEGIN")  # one transaction for the load (the driver may be in autocommit mode)

        def write(table: str, sql: str, names: list[str], columns: list[np.ndarray[Any, Any]]) -> None:
            if postgres:
                with cur.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as cp:
                    cp.write(_copy_text(columns))
            else:
                cur.executemany(sql, list(zip(*[c.tolist() for c in columns], strict=True)))

        def write_installments(rows: dict[str, np.ndarray[Any, Any]]) -> int:
            m = len(rows["loan"])
            for r in range(0, m, CHUNK_ROWS):
                write("loan_installments", inst_sql, INSTALLMENT_NAMES,
                      _installment_columns(tenant_id, rows, r, min(m, r + CHUNK_ROWS)))
            return m

        non_accrual_loans = rows_loaded = 0
        for lo in range(0, n, CHUNK_LOANS):
            hi = min(n, lo + CHUNK_LOANS)
            scheduled = installments(data, lo, hi, revolving=False)
            revolving = installments(data, lo, hi, revolving=True)
            maturity, non_accrual = loan_state(data, lo, hi, [scheduled, revolving])
            non_accrual_loans += int(non_accrual.sum())
            columns = _loan_columns(data, tenant_id, product_ids, lo, hi, maturity, non_accrual)
            write("loans", loan_sql, LOAN_NAMES + list(LOAN_CONSTANTS), columns)
            del columns
            write("revolving_balances", balance_sql, BALANCE_NAMES, _balance_columns(data, tenant_id, lo, hi))
            both = {k: np.concatenate([scheduled[k], revolving[k]]) for k in scheduled}
            order = np.lexsort((both["number"], both["loan"]))
            rows_loaded += write_installments({k: v[order] for k, v in both.items()})
            del scheduled, revolving, both
        if postgres:
            cur.execute("SELECT setval('loans_id_seq', (SELECT MAX(id) FROM loans))")
            cur.execute("SET session_replication_role = DEFAULT")
        raw.commit()
        if not postgres:
            cur.execute("PRAGMA foreign_keys=ON")
    finally:
        raw.close()
    return non_accrual_loans, rows_loaded


def _admin() -> Engine:
    return create_engine(
        f"{PG_SERVER}/test".replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )


#: how the seed lays its rows out, named into the kept seed's name with the schema: a seed laid out otherwise is
#: never taken for this one
SEED_LAYOUT = "installments in loan order"


def _template_name(n: int) -> str:
    """The kept seed's database: named by every table's PostgreSQL definition too (`schema_hash`), so a seed made
    under an older schema is never taken for this one's."""
    return f"servicing_bench_seed_{n}_{schema_hash(f'seed layout {SEED_LAYOUT}')}"


def _clone(n: int) -> tuple[str, Any] | None:
    """A copy of the kept seeded PostgreSQL database of ``n`` loans (``--keep-seed``), or None when there is none."""
    admin = _admin()
    with admin.connect() as c:
        if c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": _template_name(n)}).first() is None:
            return None
        name = f"servicing_bench_{uuid.uuid4().hex[:8]}"
        t0 = time.perf_counter()
        c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{_template_name(n)}"'))
    print(f"  copied the kept seed of {n:,} loans in {time.perf_counter() - t0:.1f}s")

    def cleanup() -> None:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return f"{PG_SERVER}/{name}", cleanup


def prepare(backend: str, n: int, keep_seed: bool = False) -> tuple[str, Any]:
    if backend == "postgresql" and keep_seed:
        cloned = _clone(n)
        if cloned is not None:
            return cloned
    if backend == "sqlite":
        path = os.path.join(tempfile.mkdtemp(prefix="bench_cob_"), "bench.db")
        url = f"sqlite:///{path}"
        cleanup = lambda: os.remove(path)  # noqa: E731
    else:
        name = _template_name(n) if keep_seed else f"servicing_bench_{uuid.uuid4().hex[:8]}"
        admin = _admin()
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
    non_accrual, rows = load(engine, tenant.id, data)
    print(
        f"  generated and loaded {n:,} loans ({non_accrual:,} non-accrual) / {rows:,} installments "
        f"in {time.perf_counter() - t0:.1f}s"
    )
    engine.dispose()
    if backend == "postgresql" and keep_seed:  # the seed stays as the template of this and later runs
        cloned = _clone(n)
        assert cloned is not None
        return cloned
    return url, cleanup


CHILD = """
import json, os, resource, sys, time
from datetime import date
from sqlalchemy import text
from microlend.core.db import make_engine, make_session_factory
from microlend.core.identity import system_principal
from microlend.core.uow import UnitOfWork
from microlend.servicing import cob, provisions
import microlend.servicing.tables
engine = make_engine(sys.argv[1])
who = system_principal(1)
out = []

def cpu():
    # this process's CPU and, on PostgreSQL, that of the database's server processes (same machine)
    own = resource.getrusage(resource.RUSAGE_SELF)
    server = 0.0
    if engine.dialect.name == "postgresql":
        with engine.connect() as c:
            sql = "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            pids = [r[0] for r in c.execute(text(sql))]
        parents = set()
        for pid in pids:
            try:
                fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents.add(int(fields[1]))
            server += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        # the parallel workers of a statement exit when it ends: their CPU is the postmaster's reaped children's
        # (any other server process that ended meanwhile counts too)
        for pid in parents:
            try:
                fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            server += (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    return own.ru_utime + own.ru_stime, server

WAL_SQL = ("SELECT pg_current_wal_lsn(), wal_records, wal_fpi, wal_bytes, "
           "(SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter) FROM pg_stat_wal")

def wal():
    # the server's WAL position and counters (the whole server's: other databases' writes count too), and the
    # checkpoints started so far; None on SQLite
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as c:
        lsn, records, fpi, size, checkpoints = c.execute(text(WAL_SQL)).one()
        return str(lsn), int(records), int(fpi), int(size), int(checkpoints)

def wal_used(w0, w1):
    if w0 is None or w1 is None:
        return None
    with engine.connect() as c:
        lsn_bytes = int(c.execute(text("SELECT pg_wal_lsn_diff(:b, :a)"), {"a": w0[0], "b": w1[0]}).scalar())
    return {"lsn_bytes": lsn_bytes, "records": w1[1] - w0[1], "fpi": w1[2] - w0[2], "bytes": w1[3] - w0[3],
            "checkpoints": w1[4] - w0[4]}

if sys.argv[3] == "provisioning":
    t0, c0 = time.perf_counter(), cpu()
    run = provisions.run_provisioning(UnitOfWork(make_session_factory(engine)), who)
    c1 = cpu()
    out.append({"date": run.as_of.isoformat(), "loans": run.loans, "seconds": time.perf_counter() - t0,
                "cpu": c1[0] - c0[0], "server_cpu": c1[1] - c0[1],
                "total": str(run.total), "by_stage": {k: str(v) for k, v in run.by_stage.items()},
                "load": os.getloadavg()[0], "provisioning": True})
for k in range(int(sys.argv[2])):
    w0, t0, c0 = wal(), time.perf_counter(), cpu()
    (r,) = cob.run_close_of_business(UnitOfWork(make_session_factory(engine)), who)
    c1, w1 = cpu(), wal()
    out.append({"date": r.business_date.isoformat(), "loans": r.loans_active,
                "seconds": time.perf_counter() - t0, "cpu": c1[0] - c0[0], "server_cpu": c1[1] - c0[1],
                "interest": str(r.interest_accrued),
                "penalty": str(r.penalty_accrued), "off_balance": str(r.interest_off_balance),
                "stopped": r.stopped_accruing, "overdue": r.newly_overdue, "bucket_changes": r.bucket_changes,
                "steps": {k: round(v, 2) for k, v in r.steps.items()}, "load": os.getloadavg()[0],
                "wal": wal_used(w0, w1)})
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"runs": out, "peak_kib": hwm}))
"""


def _cpu(run: dict[str, Any]) -> str:
    server = f" + database server {run['server_cpu']:.2f}s" if run["server_cpu"] else ""
    return f"CPU {run['cpu']:.2f}s{server}"


#: what ``--prewarm`` reads into shared buffers: the tables a close reads and writes, with their indexes
PREWARM_TABLES = ("loans", "loan_installments", "revolving_balances")


def prewarm(url: str) -> None:
    """Read the servicing tables and their indexes into PostgreSQL's shared buffers (pg_prewarm)."""
    engine = make_engine(url)
    t0 = time.perf_counter()
    with engine.begin() as c:
        c.execute(text("CREATE EXTENSION IF NOT EXISTS pg_prewarm"))
        relations = [
            str(r[0])
            for r in c.execute(
                text(
                    "SELECT c.relname FROM pg_class c WHERE c.relname = ANY(:t) OR c.oid IN (SELECT indexrelid "
                    "FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid WHERE t.relname = ANY(:t))"
                ),
                {"t": list(PREWARM_TABLES)},
            )
        ]
        blocks = sum(int(c.execute(text("SELECT pg_prewarm(:r)"), {"r": r}).scalar() or 0) for r in relations)
    engine.dispose()
    print(f"  prewarmed {len(relations)} tables and indexes ({blocks * 8 / 1024:,.0f} MiB) in "
          f"{time.perf_counter() - t0:.1f}s")


def bench(backend: str, n: int, days: int, provisioning: bool, keep_seed: bool = False, warm: bool = False) -> None:
    print(f"{backend}: {n:,} active loans")
    url, cleanup = prepare(backend, n, keep_seed)
    try:
        if warm and backend == "postgresql":
            prewarm(url)
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
                    f"{_cpu(r)}; load average {r['load']:.2f})"
                )
                continue
            month_end = " (month-end: with provisioning)" if provisions.month_end(date.fromisoformat(r["date"])) else ""
            print(
                f"  COB {r['date']}{month_end}: {r['loans']:,} loans in {r['seconds']:.2f}s = "
                f"{r['loans'] / r['seconds']:,.0f} loans/s  ({_cpu(r)}; load average {r['load']:.2f}; "
                f"interest {r['interest']}, "
                f"off-balance {r['off_balance']}, penalty {r['penalty']}, newly overdue {r['overdue']:,}, "
                f"stopped accruing {r['stopped']:,}, bucket changes {r['bucket_changes']:,})"
            )
            print(f"    steps (s): {r['steps']}")
            if r.get("wal"):
                w = r["wal"]
                print(
                    f"    WAL: {w['lsn_bytes'] / 2**20:,.1f} MiB by LSN, {w['records']:,} records, "
                    f"{w['fpi']:,} full-page images, {w['bytes'] / 2**20:,.1f} MiB by pg_stat_wal; "
                    f"checkpoints started {w['checkpoints']} "
                    "(server-wide counters: writes to other databases meanwhile count too)"
                )
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
    parser.add_argument(
        "--prewarm", action="store_true",
        help="PostgreSQL: before the first close, read the servicing tables and their indexes into shared buffers "
        "(pg_prewarm), as a running server holds its working set; worth it only where shared_buffers can hold them",
    )
    parser.add_argument(
        "--keep-seed", action="store_true",
        help="PostgreSQL: keep the seeded database (servicing_bench_seed_N_<schema hash>) and run on a copy of it; "
        "a later run with the flag and the same --loans copies it instead of seeding again (drop it by hand when done)",
    )
    args = parser.parse_args()
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        bench(backend, args.loans, args.days, args.provisioning, args.keep_seed, args.prewarm)
    print(f"generator process peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
