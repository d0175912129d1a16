"""Benchmark: close of business on the batch engines against the in-database close, on PostgreSQL.

A seeded portfolio (bench_cob's generator: scheduled loans and a revolving share) is loaded once and copied
(CREATE DATABASE ... TEMPLATE) for each run, so every run closes the same business date from the same state:
2. end to end, one business date: in the database (one transaction), on the local engine and on Spark local[2]
   (partitions of --partition-loans loan ids, read from and written back to the database); wall time, CPU of
   this process tree (with the Spark JVM) and of the database server, peak memory of the tree, and whether the
   three books are identical (postings per loan, loan states);
1. the engine's share alone: the day's two portable-SQL queries over the whole portfolio's Arrow tables on the
   local engine and on Spark local[1] and local[2], then the local[1] -> local[2] ratio and an estimate of the
   cores for 100 M loans in 15 minutes from the measured per-core rates. With --replicate K the share runs
   (before part 1) over K copies of the portfolio, ids shifted, written as Parquet files (under --parquet, kept,
   or a temporary folder) that each engine reads itself, as a cluster would: 10 M loans from a 1 M seed,
   without a 10 M database.

Run: .venv/bin/python bench/bench_spark_cob.py [--loans 1000000] [--partition-loans 100000] [--no-scaling]
    [--no-end-to-end] [--keep-seed] [--replicate 10 [--parquet DIR] [--engines local,spark[2],spark[1]]]
Every figure is printed with the load average when it was taken: other work on the machine slows a run.
Needs pyspark and Java 17, and the PostgreSQL server of the tests (127.0.0.1:5432, trust).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Engine, create_engine, text

sys.path.insert(0, str(Path(__file__).parent))
import bench_cob
from bench_spark import PeakMemory, mib, spark_engine, tree_cpu

from microlend.batch.engine import BatchEngine, LocalEngine
from microlend.batch.sources import ParquetDataset, Source
from microlend.core.db import make_engine, make_session_factory
from microlend.core.identity import system_principal
from microlend.core.uow import UnitOfWork
from microlend.servicing import cob, cob_engine
from microlend.servicing.accrued import accrued_sql
from microlend.servicing.delinquency import DEFAULT_BUCKETS
from microlend.servicing.nonaccrual import NonAccrualSettings

TARGET_LOANS = 100_000_000
TARGET_SECONDS = 15 * 60
PG = "postgresql+psycopg://postgres@127.0.0.1:5432"


def _admin() -> Engine:
    return create_engine(f"{PG}/test", isolation_level="AUTOCOMMIT")


def _copy(template_url: str) -> tuple[str, Callable[[], None]]:
    name = f"cob_engine_bench_{uuid.uuid4().hex[:8]}"
    template = template_url.rsplit("/", 1)[1]
    admin = _admin()
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))

    def drop() -> None:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return f"postgresql://postgres@127.0.0.1:5432/{name}", drop


def _server_cpu(engine: Engine) -> float:
    """CPU seconds of the database's server processes (same machine)."""
    with engine.connect() as c:
        pids = [r[0] for r in c.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"))]
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _books(engine: Engine) -> tuple[Any, ...]:
    """A digest of what a close wrote: postings per account and loan-weighted, the loans' states and the
    installments' interest and interest accrued through the date."""
    with engine.connect() as c:
        postings = c.execute(text(
            "SELECT debit_account, credit_account, SUM(amount), SUM(amount * loan_id), COUNT(*) FROM loan_accruals "
            "GROUP BY debit_account, credit_account ORDER BY debit_account, credit_account")).all()
        lines = c.execute(text(
            "SELECT account_code, SUM(debit), SUM(credit), SUM((debit + credit) * COALESCE(loan_id, 0)) "
            "FROM journal_lines GROUP BY account_code ORDER BY account_code")).all()
        loans = c.execute(text(
            "SELECT bucket, loan_class, accrual_status, COUNT(*), SUM(days_past_due * id), SUM(penalty_accrued), "
            "SUM(interest_suspended), SUM(penalty_suspended) FROM loans GROUP BY bucket, loan_class, accrual_status "
            "ORDER BY bucket, loan_class, accrual_status")).all()
        # interest accrued as every reader sees it through the closed date (a scheduled installment's is derived,
        # whether or not a close stored it)
        accrued = accrued_sql(str(bench_cob.BUSINESS_DATE.toordinal()))
        installments = c.execute(text(
            f"SELECT status, COUNT(*), SUM({accrued}), SUM({accrued} * id), SUM(interest), SUM(interest * id) "
            "FROM loan_installments GROUP BY status ORDER BY status")).all()
    return tuple(tuple(map(tuple, part)) for part in (postings, lines, loans, installments))


BOOK_PARTS = ("postings", "journal lines", "loans", "installments")


def end_to_end(template_url: str, label: str, engine: BatchEngine | None, partition_loans: int) -> tuple[Any, ...]:
    url, drop = _copy(template_url)
    db = make_engine(url)
    try:
        uow, who = UnitOfWork(make_session_factory(db)), system_principal(1, "cob")
        cpu0, server0 = tree_cpu(), _server_cpu(db)
        with PeakMemory() as memory:
            start = time.perf_counter()
            if engine is None:
                (result,) = cob.run_close_of_business(uow, who)
            else:
                (result,) = cob_engine.run_close_of_business_on(uow, who, engine, partition_loans=partition_loans)
            seconds = time.perf_counter() - start
        cpu, server = tree_cpu() - cpu0, _server_cpu(db) - server0
        print(f"  {label:>12}: {result.loans_active:,} loans in {seconds:7.1f} s = "
              f"{result.loans_active / seconds:>8,.0f} loans/s; CPU {cpu:.1f} s (+ database server {server:.1f} s); "
              f"peak RSS (tree) {mib(memory.peak)}; load average {os.getloadavg()[0]:.1f}; "
              f"interest {result.interest_accrued}, penalty {result.penalty_accrued}, "
              f"newly overdue {result.newly_overdue:,}, stopped accruing {result.stopped_accruing:,}", flush=True)
        return _books(db)
    finally:
        db.dispose()
        drop()


def portfolio_tables(template_url: str, partition_loans: int) -> dict[str, pa.Table]:
    """The whole portfolio's loans and open installments as the engine job reads them, partition by partition."""
    db = make_engine(template_url)
    try:
        with make_session_factory(db)() as s:
            on = bench_cob.BUSINESS_DATE
            first, last = s.execute(text("SELECT MIN(id), MAX(id) FROM loans")).one()
            parts = [cob_engine._read_partition(s, 1, on, lo, hi)
                     for lo, hi in cob_engine.partitions(int(first), int(last), partition_loans)]
    finally:
        db.dispose()
    return {"settling": parts[0]["settling"],
            **{name: pa.concat_tables([p[name] for p in parts]) for name in ("loans", "installments")}}


def _shifted(table: pa.Table, shifts: dict[str, int]) -> pa.Table:
    for column, by in shifts.items():
        i = table.schema.get_field_index(column)
        table = table.set_column(i, column, pc.add(table[column], pa.scalar(by, pa.int64())))
    return table


def replicated(tables: dict[str, pa.Table], copies: int, folder: Path) -> dict[str, Source]:
    """``copies`` copies of the portfolio as Parquet under ``folder`` (written once, reused while the folder
    holds them): each copy's loan, customer and installment ids shifted past the previous copy's, so the loans
    are as many times more and each as it was."""
    loans, installments = tables["loans"], tables["installments"]
    loan_shift, customer_shift, installment_shift = (
        int(pc.max(column).as_py() or 0) + 1 for column in (loans["id"], loans["customer_id"], installments["id"])
    )
    done = folder / f"complete-{copies}-{loans.num_rows}"
    if not done.exists():
        shutil.rmtree(folder / "loans", ignore_errors=True)
        shutil.rmtree(folder / "installments", ignore_errors=True)
        for name in ("loans", "installments"):
            (folder / name).mkdir(parents=True)
        for k in range(copies):
            pq.write_table(_shifted(loans, {"id": k * loan_shift, "customer_id": k * customer_shift}),
                           folder / "loans" / f"part-{k:05d}.parquet", row_group_size=1 << 20)
            pq.write_table(_shifted(installments, {"id": k * installment_shift, "loan_id": k * loan_shift}),
                           folder / "installments" / f"part-{k:05d}.parquet", row_group_size=1 << 20)
        done.write_text("")
    return {"settling": tables["settling"],
            "loans": ParquetDataset.of_schema(folder / "loans", loans.schema),
            "installments": ParquetDataset.of_schema(folder / "installments", installments.schema)}


def engine_share(tables: dict[str, Source], engine: BatchEngine) -> Callable[[], tuple[pa.Table, pa.Table]]:
    d = bench_cob.BUSINESS_DATE.toordinal()
    loans_sql = cob_engine.loan_results_sql(d, DEFAULT_BUCKETS, NonAccrualSettings())  # the bench bank's rule
    return lambda: (engine.run_sql(cob_engine.installment_updates_sql(d), tables), engine.run_sql(loans_sql, tables))


def share_runs(tables: dict[str, Source], n: int, labels: list[str]) -> None:
    """The engine's share on each engine of ``labels`` (local, spark[2], spark[1]): time, CPU and peak memory,
    whether local and Spark local[2] agree row for row, and the local[1] -> local[2] scaling with its estimate."""
    timings: dict[str, float] = {}
    cpus: dict[str, float] = {}
    loads: dict[str, float] = {}
    results: dict[str, Any] = {}
    makers: dict[str, Callable[[], BatchEngine]] = {
        "local": LocalEngine, "spark[2]": lambda: spark_engine("local[2]"), "spark[1]": lambda: spark_engine("local[1]")
    }
    for label in labels:
        engine = makers[label]()
        job = engine_share(tables, engine)
        if label.startswith("spark"):
            job()  # warm: the first query compiles the portable functions and the JVM's code
        cpu0, loads[label] = tree_cpu(), os.getloadavg()[0]
        with PeakMemory() as memory:
            start = time.perf_counter()
            results[label] = job()
            timings[label] = time.perf_counter() - start
        cpus[label] = tree_cpu() - cpu0
        print(f"  {label:>8}: {timings[label]:6.1f} s = {n / timings[label]:>10,.0f} loans/s; "
              f"CPU {cpus[label]:.1f} s = {n / cpus[label]:,.0f} loans per CPU-second; peak RSS (tree) "
              f"{mib(memory.peak)}; load average {loads[label]:.1f} -> {os.getloadavg()[0]:.1f}", flush=True)
        if label.startswith("spark"):
            engine.stop()  # type: ignore[attr-defined]
    if "local" not in results or "spark[2]" not in results:
        return
    local, spark = results["local"], results["spark[2]"]
    same_loans = local[1].num_rows == spark[1].num_rows and local[1].cast(spark[1].schema).equals(spark[1])
    print(f"  identical: installments {local[0].cast(spark[0].schema).equals(spark[0])}, loans {same_loans}")
    if "spark[1]" in timings:
        one, two = timings["spark[1]"], timings["spark[2]"]
        per_core = n / cpus["spark[2]"]  # a busy core's rate, whatever else runs on the machine
        cores = TARGET_LOANS / TARGET_SECONDS / per_core
        print(f"\nSpark local[1] -> local[2]: {one:.1f} s -> {two:.1f} s, speed-up x{one / two:.2f}; CPU "
              f"{cpus['spark[1]']:.1f} s -> {cpus['spark[2]']:.1f} s, throughput per CPU-second "
              f"x{cpus['spark[1]'] / cpus['spark[2]']:.2f} (load {loads['spark[1]']:.1f} and "
              f"{loads['spark[2]']:.1f} at the start); {per_core:,.0f} loans per CPU-second "
              f"({n / two / 2:,.0f} loans/s per core of wall time)")
        print(f"Estimate for 100 M loans in 15 minutes ({TARGET_LOANS / TARGET_SECONDS:,.0f} loans/s), engine "
              f"share: ~{cores:,.0f} busy cores, x1.5 for skew and stragglers ~{cores * 1.5:,.0f}, e.g. "
              f"{int(-(-cores * 1.5 // 8)):,} executors of 8 cores; the database's reads and writes are apart "
              "(see part 2 for their rate on one server)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--partition-loans", type=int, default=100_000)
    parser.add_argument("--no-scaling", action="store_true", help="skip Spark local[1]")
    parser.add_argument("--no-end-to-end", action="store_true", help="only the engine's share")
    parser.add_argument("--replicate", type=int, default=0,
                        help="also run the engine's share over this many copies of the portfolio, from Parquet")
    parser.add_argument("--parquet", type=Path, help="folder keeping the copies' Parquet files (default: temporary)")
    parser.add_argument("--engines", default="local,spark[2],spark[1]",
                        help="engines of the replicated share (comma-separated: local, spark[2], spark[1])")
    parser.add_argument("--keep-seed", action="store_true",
                        help="seed once and keep the seeded database as the template of later runs (bench_cob's)")
    args = parser.parse_args()
    from microlend.batch.spark import spark_unavailable

    problem = spark_unavailable(remote="")
    if problem:
        raise SystemExit(problem)
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    started = time.perf_counter()
    template_url, cleanup = bench_cob.prepare("postgresql", args.loans, keep_seed=args.keep_seed)
    print(f"portfolio of {args.loans:,} loans ready in {time.perf_counter() - started:.1f} s", flush=True)
    try:
        tables = portfolio_tables(template_url, args.partition_loans)
        print(f"portfolio: {tables['loans'].num_rows:,} loans, {tables['installments'].num_rows:,} open installments "
              f"(business date {bench_cob.BUSINESS_DATE}, a month-end: the close includes provisioning)")
        if args.replicate:
            folder = args.parquet or Path(tempfile.mkdtemp(prefix="bench_spark_cob_"))
            try:
                written = time.perf_counter()
                copies = replicated(tables, args.replicate, folder)
                n = tables["loans"].num_rows * args.replicate
                print(f"\n0. the engine's share over {args.replicate} copies ({n:,} loans, "
                      f"{tables['installments'].num_rows * args.replicate:,} open installments) read from Parquet "
                      f"({time.perf_counter() - written:.0f} s to write or find them):", flush=True)
                share_runs(copies, n, args.engines.split(","))
            finally:
                if args.parquet is None:
                    shutil.rmtree(folder, ignore_errors=True)
        print("\n1. the engine's share (the day's two queries over the whole portfolio's Arrow tables):")
        share_runs(tables, tables["loans"].num_rows, ["local", "spark[2]"] + ([] if args.no_scaling else ["spark[1]"]))
        if not args.no_end_to_end:
            print(f"\n2. one business date end to end on PostgreSQL (partitions of {args.partition_loans:,} loan ids):")
            books = [end_to_end(template_url, label, engine, args.partition_loans) for label, engine in (
                ("in-database", None), ("local", LocalEngine()))]
            spark2 = spark_engine("local[2]")  # started after the others: its JVM is not in their peak memory
            spark2.run_sql("SELECT ml_day_diff(DATE '2024-01-01', DATE '2024-03-01') AS d", {})  # start and warm
            books.append(end_to_end(template_url, "spark[2]", spark2, args.partition_loans))
            spark2.stop()  # type: ignore[attr-defined]
            print(f"  identical books: local = in-database {books[1] == books[0]}, "
                  f"spark = in-database {books[2] == books[0]}")
            for label, other in (("local", books[1]), ("spark", books[2])):
                for part, mine, theirs in zip(BOOK_PARTS, books[0], other, strict=True):
                    if mine != theirs:
                        print(f"  {label} differs in {part}: in-database {sorted(set(mine) - set(theirs))}, "
                              f"{label} {sorted(set(theirs) - set(mine))}")
    finally:
        cleanup()


if __name__ == "__main__":
    main()
