"""Benchmark: the local engine (DuckDB) against Spark local[2] for point-in-time features and pre-approval,
with Spark's scaling from local[1] to local[2] and an estimate of the cluster for 100 M rows in 15 minutes.

Run: .venv/bin/python bench/bench_spark.py [--customers 1000000] [--customers 10000000 ...] [--no-scaling]
    [--chunk-customers 1000000]
A base larger than --chunk-customers is generated and computed a chunk of customers at a time (features and
pre-approval are per customer, so the chunks partition the work exactly, as a cluster's tasks would), so 10 M
customers fit in memory; each engine's chunk results are compared with the local engine's, kept on disk.
Prints per job and engine: wall and CPU seconds (of the process tree: Python plus the Spark JVM), customers/s,
peak memory of the tree (read from /proc, or psutil when installed), the load average, and whether the two
engines' results are identical; then the local[1] -> local[2] ratio and the estimate. Needs pyspark and Java 17.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from bench_features import portfolio

from microlend.batch.engine import BatchEngine, LocalEngine
from microlend.data.features import compute_features
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


def features_job(tables: dict[str, pa.Table], engine: BatchEngine) -> Callable[[], pa.Table]:
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


@dataclass
class Result:
    """A job's figures over the chunks of a base: wall and CPU seconds summed, peak memory, offers, and whether
    every chunk's result equals the local engine's."""

    seconds: float = 0.0
    cpu: float = 0.0
    peak: int = 0
    offers: int = 0
    same: bool = True

    def add(self, seconds: float, cpu: float, peak: int, offers: int, same: bool) -> None:
        self.seconds += seconds
        self.cpu += cpu
        self.peak = max(self.peak, peak)
        self.offers += offers
        self.same = self.same and same


def spark_engine(master: str) -> BatchEngine:
    from microlend.batch.spark import SparkEngine, spark_session

    cores = int(master[len("local["):-1])
    return SparkEngine(spark_session(master=master, remote="", shuffle_partitions=2 * cores,
                                     driver_memory=os.environ.get("MICROLEND_SPARK_DRIVER_MEMORY", "6g")))


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, action="append", help="portfolio size (repeatable)")
    parser.add_argument("--no-scaling", action="store_true", help="skip the local[1] run")
    parser.add_argument("--chunk-customers", type=int, default=1_000_000,
                        help="customers generated and computed at a time (a larger base is streamed in chunks)")
    args = parser.parse_args()
    sizes = args.customers or [1_000_000]
    from microlend.batch.spark import spark_unavailable

    problem = spark_unavailable(remote="")
    if problem:
        raise SystemExit(problem)
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")

    chunk = args.chunk_customers
    scratch = Path(tempfile.mkdtemp(prefix="bench_spark_"))
    results: dict[tuple[str, str, int], Result] = {}

    def run_all(label: str, engine: BatchEngine) -> None:
        for n in sizes:
            totals = {job: Result() for job in ("features", "pre-approval")}
            for k, (first, size) in enumerate(chunks(n, chunk)):
                started = time.perf_counter()
                feats, inputs = chunk_data(k, first, size)
                if label == "local":
                    rows = sum(t.num_rows for t in feats.values())
                    print(f"  chunk {k} ({size:,} customers from id {first + 1:,}: {rows:,} source rows for "
                          f"features, {inputs.tables['installments'].num_rows:,} installments for pre-approval) "
                          f"generated in {time.perf_counter() - started:.1f} s", flush=True)
                jobs: list[tuple[str, Callable[[], Any]]] = [("features", features_job(feats, engine)),
                                                             ("pre-approval", preapproval_job(inputs, engine))]
                for job, run in jobs:
                    value, seconds, cpu, peak = timed(run)
                    table, offers = (value, 0) if job == "features" else value
                    kept = scratch / f"{job}-{n}-{k}.parquet"
                    if label == "local":
                        pq.write_table(table, kept)
                        same = True
                    else:
                        same = pq.read_table(kept).equals(table)
                    totals[job].add(seconds, cpu, peak, offers, same)
                    if n > chunk:  # a long run shows how far it got
                        print(f"    {job} {label} chunk {k}: {seconds:.1f} s, CPU {cpu:.1f} s, same as local: {same}, "
                              f"load average {os.getloadavg()[0]:.1f}", flush=True)
                    del value, table
                del feats, inputs
            for job, total in totals.items():
                results[(job, label, n)] = total
                print(f"{job:>12} {label:>9} {n:>11,}: {total.seconds:7.1f} s  {n / total.seconds:>10,.0f} "
                      f"customers/s  CPU {total.cpu:7.1f} s  peak RSS (tree) {mib(total.peak)}  "
                      f"load average {os.getloadavg()[0]:.1f}", flush=True)

    try:
        run_all("local", LocalEngine())
        masters = ["local[2]"] + ([] if args.no_scaling else ["local[1]"])
        for master in masters:
            start = time.perf_counter()
            engine = spark_engine(master)
            engine.run_sql("SELECT ml_day_diff(DATE '2024-01-01', DATE '2024-03-01') AS d", {})  # start and warm
            print(f"spark {master} session started in {time.perf_counter() - start:.1f} s")
            run_all(master, engine)
            engine.stop()  # type: ignore[attr-defined]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print("\nidentical results (local vs spark local[2], every chunk):")
    for n in sizes:
        for job in ("features", "pre-approval"):
            local, spark = results[(job, "local", n)], results[(job, "local[2]", n)]
            same = spark.same and local.offers == spark.offers
            extra = f", {local.offers:,} offers" if job == "pre-approval" else ""
            print(f"  {job} {n:,}: {same}{extra}")

    if args.no_scaling:
        return
    print("\nSpark scaling local[1] -> local[2] (time ratio; 2.0 would be linear):")
    estimates = []
    for n in sizes:
        for job in ("features", "pre-approval"):
            one, two = results[(job, "local[1]", n)].seconds, results[(job, "local[2]", n)].seconds
            cpu_one, cpu_two = results[(job, "local[1]", n)].cpu, results[(job, "local[2]", n)].cpu
            per_core = n / two / 2  # the two-core rate per core: already pays for parallel overheads
            cores = TARGET_ROWS / TARGET_SECONDS / per_core
            estimates.append((job, n, cores))
            print(f"  {job} {n:,}: {one:.1f} s -> {two:.1f} s, speed-up x{one / two:.2f} "
                  f"(CPU {cpu_one:.1f} s -> {cpu_two:.1f} s); {per_core:,.0f} customers/s per core")
    print("\nEstimate for 100 M customers in 15 minutes (111,111/s), from the local[2] per-core rates:")
    for job, n, cores in estimates:
        print(f"  {job} (measured on {n:,}): ~{cores:,.0f} cores, e.g. {int(-(-cores // 8)):,} executors of 8 "
              "cores (with ~4 GiB each), before the margin for skew, reading Parquet and writing results")


if __name__ == "__main__":
    main()
