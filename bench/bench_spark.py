"""Benchmark: the local engine (DuckDB) against Spark local[2] for point-in-time features and pre-approval,
with Spark's scaling from local[1] to local[2] and an estimate of the cluster for 100 M customers in 15 minutes.

Run: .venv/bin/python bench/bench_spark.py [--customers 1000000 ...] [--engines local,local[2],local[1]]
    [--jobs features,pre-approval] [--data DIR] [--shuffle-partitions 8] [--driver-memory 8g]
    [--chunk-customers 1000000]
Each base is written once as Parquet, as a bank's export is: every source table partitioned by tenant and by
the month of its date (customers by created_at, loans by disbursed_at, installments by due_date, ...), the
profile by tenant. Both engines read the same files themselves, in one query per job: DuckDB in this process,
Spark with its own tasks over the files (nothing goes through Python on the way in; the result comes back as
Arrow). A base of one chunk is generated; a larger one is copies of it with the ids shifted (see
`base_on_disk`). With --data the bases, the local engine's results and every figure (results.jsonl) are kept,
so the engines can be run in separate invocations and still be compared and summed up.
Prints per job and engine: wall and CPU seconds (of the process tree: Python plus the Spark JVM), customers/s
and customers per CPU-second, peak memory of the tree (from /proc), the load average before and after, and
whether the result is identical to the local engine's; then the local[1] -> local[2] ratio (of wall time and
of CPU: under load only the CPU one means much) and the estimate. Needs pyspark and Java 17.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from bench_features import portfolio

from microlend.batch.engine import BatchEngine, LocalEngine, ParquetDataset
from microlend.data.features import SOURCE_MONTH_OF, compute_features
from microlend.marketing.preapproval import (
    OfferParameters,
    PreapprovalInputs,
    _customer_table,
    _offers,
    _policy_evaluator,
    default_policy_facts,
    default_scorer,
)
from microlend.marketing.synthetic import customer_base

FEATURES_AS_OF = date(2024, 12, 31)
PREAPPROVAL_AS_OF = date(2026, 3, 1)
TARGET_ROWS = 100_000_000
TARGET_SECONDS = 15 * 60


# --- memory of the process tree -------------------------------------------------------------------------


def _process_tree() -> dict[int, list[str]]:
    """This process and its live descendants (the Spark JVM is a child): pid -> the fields of /proc/pid/stat after
    the command name."""
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stats[int(entry)] = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
    tree, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        pid = frontier.pop()
        for child, fields in stats.items():
            if int(fields[1]) == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    return {pid: stats[pid] for pid in tree if pid in stats}


def _tree_rss() -> int:
    """Resident bytes of this process and all its descendants."""
    page = os.sysconf("SC_PAGE_SIZE")
    return sum(int(fields[21]) * page for fields in _process_tree().values())


class PeakMemory:
    """Samples the tree's RSS every 0.2 s while a job runs."""

    def __enter__(self) -> PeakMemory:
        self.peak = _tree_rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, _tree_rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _tree_rss())


def tree_cpu() -> float:
    """CPU seconds of this process and its live descendants (the Spark JVM)."""
    tick = os.sysconf("SC_CLK_TCK")
    return sum((int(fields[11]) + int(fields[12])) / tick for fields in _process_tree().values())


def timed(job: Callable[[], Any]) -> tuple[Any, float, float, int]:
    """The job's result, wall seconds, CPU seconds of the process tree and peak memory of the tree."""
    cpu = tree_cpu()
    with PeakMemory() as memory:
        start = time.perf_counter()
        result = job()
        seconds = time.perf_counter() - start
    return result, seconds, tree_cpu() - cpu, memory.peak


# --- the jobs -------------------------------------------------------------------------------------------


def features_inputs(n: int, seed: int = 19) -> dict[str, pa.Table]:
    tables = portfolio(n, seed=seed)
    scores = tables["external_scores"]  # unique report times, so "the newest" is defined on both engines
    stamps = scores.column("observed_at").cast(pa.int64()).to_numpy() + np.arange(scores.num_rows)
    tables["external_scores"] = scores.set_column(
        scores.schema.get_field_index("observed_at"), "observed_at", pa.array(stamps).cast(pa.timestamp("us", "UTC")))
    return tables


def features_job(tables: dict[str, ParquetDataset], engine: BatchEngine) -> Callable[[], pa.Table]:
    return lambda: compute_features(tables, as_of=FEATURES_AS_OF, engine=engine)


def preapproval_job(inputs: PreapprovalInputs, engine: BatchEngine) -> Callable[[], tuple[pa.Table, int]]:
    """The whole decision without the database write: features and profile on the engine, then the
    champion's scores and the policy over chunks of 100,000 (the same code on both engines)."""
    scorer = default_scorer()
    from microlend.decisioning.policy import default_policy

    evaluator = _policy_evaluator(default_policy())
    params = OfferParameters()

    def run() -> tuple[pa.Table, int]:
        import polars as pl

        table = _customer_table(inputs, PREAPPROVAL_AS_OF, engine)
        offers = 0
        for start in range(0, table.num_rows, 100_000):
            chunk = pl.from_arrow(table.slice(start, 100_000))
            assert isinstance(chunk, pl.DataFrame)
            offers += len(_offers(chunk, scorer, evaluator, default_policy_facts, params, 0, 0, PREAPPROVAL_AS_OF,
                                  "bench"))
        return table, offers

    return run


def chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    """(customers before the chunk, customers in it) for a base of ``n`` streamed ``size`` at a time."""
    for first in range(0, n, size):
        yield first, min(size, n - first)


def _shifted(table: pa.Table, customers: int, loans: int) -> pa.Table:
    for name, offset in (("customer_id", customers), ("loan_id", loans)):
        if offset and name in table.column_names:
            i = table.schema.get_field_index(name)
            table = table.set_column(i, name, pc.add(table.column(i), pa.scalar(offset, pa.int64())))
    return table


def chunk_data(k: int, first: int, size: int) -> tuple[dict[str, pa.Table], PreapprovalInputs]:
    """The ``k``-th chunk of a customer base: ``size`` customers with ids from ``first + 1`` and their own loans
    (ids apart from other chunks'). Features and pre-approval are per customer, so a chunk is an exact partition
    of the base; chunk 0 of a base that fits in one is the base generated whole."""
    feats = features_inputs(size, seed=19 + k)
    tables, profile = customer_base(size, seed=23 + k, as_of=PREAPPROVAL_AS_OF)
    loans = k * 10**9
    feats = {name: _shifted(t, first, loans) for name, t in feats.items()}
    tables = {name: _shifted(t, first, loans) for name, t in tables.items()}
    return feats, PreapprovalInputs(tables, _shifted(profile, first, 0))


# --- the base as Parquet, written once ------------------------------------------------------------------

TENANT = 1
MONTH_OF = SOURCE_MONTH_OF  # the profile has no month: its files are partitioned by tenant only


def write_part(folder: Path, table: pa.Table, k: int, month_of: str | None) -> None:
    """One chunk's rows of a dataset under tenant_id=<id>/month=YYYY-MM/ (tenant only without a month)."""
    from microlend.batch.analytics import month_column

    table = table.append_column("tenant_id", pa.repeat(pa.scalar(TENANT, pa.int64()), table.num_rows))
    keys = [pa.field("tenant_id", pa.int64())]
    if month_of is not None:
        table = table.append_column("month", month_column(table, month_of))
        keys.append(pa.field("month", pa.string()))
    ds.write_dataset(table, folder, format="parquet", partitioning=ds.partitioning(pa.schema(keys), flavor="hive"),
                     basename_template=f"part-{k:05d}-{{i}}.parquet", existing_data_behavior="overwrite_or_ignore",
                     max_rows_per_group=1 << 20)


def base_on_disk(root: Path, n: int, chunk: int) -> Path:
    """The base of ``n`` customers as Parquet under ``root/n`` (features/ and pre-approval/ sources, and the
    profile), written the first time and reused afterwards. A base of one chunk (``n <= chunk``) is generated;
    a larger one is ``n / chunk`` copies of the one-chunk base's files with the ids shifted (customers by the
    chunk, loans by 10^9 a copy), which is as large and as varied per customer, without generating it again."""
    base = root / str(n)
    if (base / "complete").exists():
        return base
    shutil.rmtree(base, ignore_errors=True)
    started = time.perf_counter()
    if n <= chunk:
        feats, inputs = chunk_data(0, 0, n)
        for name, table in feats.items():
            write_part(base / "features" / name, table, 0, MONTH_OF[name])
        for name, table in inputs.tables.items():
            write_part(base / "pre-approval" / name, table, 0, MONTH_OF[name])
        assert isinstance(inputs.profile, pa.Table)
        write_part(base / "pre-approval" / "profile", inputs.profile, 0, None)
    else:
        if n % chunk:
            raise SystemExit(f"--customers {n:,}: a base larger than a chunk is a whole number of chunks ({chunk:,})")
        one = base_on_disk(root, chunk, chunk)
        for k in range(n // chunk):
            for source in sorted(f for part in ("features", "pre-approval") for f in (one / part).rglob("*.parquet")):
                target = base / source.relative_to(one)
                target = target.with_name(target.name.replace("part-00000-", f"part-{k:05d}-"))
                target.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(_shifted(pq.read_table(source, partitioning=None), k * chunk, k * 10**9), target,
                               row_group_size=1 << 20)
            print(f"  copy {k}: customers from id {k * chunk + 1:,} written", flush=True)
    (base / "complete").write_text("")
    files = sum(1 for _ in base.rglob("*.parquet"))
    size_on_disk = sum(f.stat().st_size for f in base.rglob("*.parquet"))
    print(f"  base of {n:,} customers: {files:,} Parquet files, {mib(size_on_disk)}, written in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    return base


def features_sources(base: Path) -> dict[str, ParquetDataset]:
    return {name: ParquetDataset(base / "features" / name, {}) for name in MONTH_OF}


def preapproval_sources(base: Path) -> PreapprovalInputs:
    folder = base / "pre-approval"
    tables = {name: ParquetDataset(folder / name, {}) for name in ("customers", "loans", "installments")}
    profile = pq.read_schema(next((folder / "profile").rglob("*.parquet")))
    return PreapprovalInputs(tables, ParquetDataset.of_schema(folder / "profile", profile))


# --- running and reporting -------------------------------------------------------------------------------


def spark_engine(master: str, shuffle_partitions: int | None = None, driver_memory: str | None = None) -> BatchEngine:
    """A Spark session on ``master`` (local[N]): shuffle partitions 2 per core unless given, driver memory from
    MICROLEND_SPARK_DRIVER_MEMORY or 8g, and `SPARK_CONFIG`."""
    from microlend.batch.spark import SparkEngine, spark_session

    cores = int(master[len("local["):-1])
    memory = driver_memory or os.environ.get("MICROLEND_SPARK_DRIVER_MEMORY", "8g")
    return SparkEngine(spark_session(master=master, remote="", shuffle_partitions=shuffle_partitions or 2 * cores,
                                     driver_memory=memory, config=SPARK_CONFIG))


#: Besides the master, driver memory and shuffle partitions: adaptive execution (merges small shuffle
#: partitions, picks broadcast joins at run time) and no cap on the result brought back to Python.
SPARK_CONFIG = {"spark.sql.adaptive.enabled": "true", "spark.sql.adaptive.coalescePartitions.enabled": "true",
                "spark.driver.maxResultSize": "0"}


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def run_job(job: str, base: Path, engine: BatchEngine) -> tuple[pa.Table, int]:
    if job == "features":
        return features_job(features_sources(base), engine)(), 0
    table, offers = preapproval_job(preapproval_sources(base), engine)()
    return table, offers


def measure(root: Path, base: Path, n: int, label: str, engine: BatchEngine, jobs: list[str]) -> None:
    """Each job on the engine, its figures printed and kept in ``root/results.jsonl``; the local engine's
    results are kept to compare later runs' with."""
    for job in jobs:
        load = os.getloadavg()[0]
        (table, offers), seconds, cpu, peak = timed(lambda job=job: run_job(job, base, engine))  # type: ignore[misc]
        kept = base / "results" / f"{job}-local.parquet"
        if label == "local":
            kept.parent.mkdir(exist_ok=True)
            pq.write_table(table, kept)
            (base / "results" / f"{job}-local.offers").write_text(str(offers))
            same: bool | None = True
        elif kept.exists():
            same = pq.read_table(kept).equals(table) and \
                int((base / "results" / f"{job}-local.offers").read_text()) == offers
        else:
            same = None
        row = {"job": job, "engine": label, "customers": n, "rows": table.num_rows, "seconds": seconds,
               "cpu": cpu, "peak": peak, "offers": offers, "same": same, "load_before": load,
               "load_after": os.getloadavg()[0]}
        with (root / "results.jsonl").open("a") as out:
            out.write(json.dumps(row) + "\n")
        offered = f"  {offers:,} offers" if job == "pre-approval" else ""
        print(f"{job:>12} {label:>9} {n:>11,}: {seconds:7.1f} s  {n / seconds:>9,.0f} customers/s  CPU {cpu:7.1f} s "
              f"({n / cpu:,.0f} customers per CPU-second)  peak RSS (tree) {mib(peak)}  load {load:.1f} -> "
              f"{os.getloadavg()[0]:.1f}  same as local: {same}{offered}", flush=True)
        del table


def summary(root: Path) -> None:
    """Scaling local[1] -> local[2] and the cluster estimate, from the newest figure of each job, engine and
    size in ``root/results.jsonl`` (runs may be separate invocations)."""
    rows: dict[tuple[str, str, int], dict[str, Any]] = {}
    for line in (root / "results.jsonl").read_text().splitlines():
        row = json.loads(line)
        rows[(row["job"], row["engine"], row["customers"])] = row
    print("\nSpark scaling local[1] -> local[2]: wall-time speed-up (2.0 would be linear) and CPU-normalised "
          "throughput ratio (1.0: the second core adds no work per customer)")
    for (job, engine, n), two in sorted(rows.items()):
        one = rows.get((job, "local[1]", n))
        if engine != "local[2]" or one is None:
            continue
        print(f"  {job} {n:,}: {one['seconds']:.1f} s -> {two['seconds']:.1f} s, speed-up "
              f"x{one['seconds'] / two['seconds']:.2f}; CPU {one['cpu']:.1f} s -> {two['cpu']:.1f} s, "
              f"throughput per CPU-second x{one['cpu'] / two['cpu']:.2f} (load {one['load_before']:.1f} and "
              f"{two['load_before']:.1f} at the start)")
    print(f"\nEstimate for {TARGET_ROWS / 1e6:,.0f} M customers in {TARGET_SECONDS // 60} minutes "
          f"({TARGET_ROWS / TARGET_SECONDS:,.0f}/s), from the measured per-core rates of Spark local[2] "
          "(customers per CPU-second of the process tree: a busy core's rate, whatever the load; the wall-clock "
          "rate per core in brackets):")
    for (job, engine, n), two in sorted(rows.items()):
        if engine != "local[2]":
            continue
        per_core = n / two["cpu"]
        per_core_wall = n / two["seconds"] / 2
        cores = TARGET_ROWS / TARGET_SECONDS / per_core
        planned = cores * PLANNING_MARGIN
        print(f"  {job} (measured on {n:,}): {per_core:,.0f} customers/s per core ({per_core_wall:,.0f}) -> "
              f"{cores:,.0f} cores busy for 15 minutes; with x{PLANNING_MARGIN} for skew, stragglers and writing "
              f"results {planned:,.0f} cores, e.g. {math.ceil(planned / 8):,} executors of 8 cores and 16 GiB")


#: Headroom on the busy-core estimate: uneven partitions, task start-up and the output written back.
PLANNING_MARGIN = 1.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, action="append", help="base size (repeatable)")
    parser.add_argument("--engines", default="local,local[2],local[1]",
                        help="comma-separated: local and Spark masters local[N] (default local,local[2],local[1])")
    parser.add_argument("--jobs", default="features,pre-approval", help="comma-separated: features,pre-approval")
    parser.add_argument("--data", type=Path, help="folder keeping the Parquet bases and the figures across runs "
                                                  "(default: a temporary folder removed at the end)")
    parser.add_argument("--chunk-customers", type=int, default=1_000_000,
                        help="customers generated at a time while writing a base")
    parser.add_argument("--shuffle-partitions", type=int, default=8, help="spark.sql.shuffle.partitions")
    parser.add_argument("--driver-memory", default="8g", help="spark.driver.memory (local mode: all of Spark)")
    args = parser.parse_args()
    sizes = args.customers or [1_000_000]
    engines = args.engines.split(",")
    jobs = args.jobs.split(",")
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}; Spark: shuffle partitions "
          f"{args.shuffle_partitions}, driver memory {args.driver_memory}, {SPARK_CONFIG}", flush=True)
    root = args.data or Path(tempfile.mkdtemp(prefix="bench_spark_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        bases = {n: base_on_disk(root, n, args.chunk_customers) for n in sizes}
        for label in engines:
            if label == "local":
                engine: BatchEngine = LocalEngine()
            else:
                from microlend.batch.spark import spark_unavailable

                problem = spark_unavailable(remote="")
                if problem:
                    raise SystemExit(problem)
                start = time.perf_counter()
                engine = spark_engine(label, args.shuffle_partitions, args.driver_memory)
                engine.run_sql("SELECT ml_day_diff(DATE '2024-01-01', DATE '2024-03-01') AS d", {})  # start, warm
                master = engine.session.sparkContext.master  # type: ignore[attr-defined]
                print(f"spark {label} session started in {time.perf_counter() - start:.1f} s (master {master})",
                      flush=True)
            for n in sizes:
                measure(root, bases[n], n, label, engine, jobs)
            if label != "local":
                engine.stop()  # type: ignore[attr-defined]
        summary(root)
    finally:
        if args.data is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
