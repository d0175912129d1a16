"""Portfolio analytics on the local engine (DuckDB) and on Spark: vintage curves with roll rates, and score/feature
stability (PSI/CSI), over a generated book exported to Parquet partitioned by bank and month.

Run: .venv/bin/python bench/bench_spark_analytics.py [--loans 1000000] [--months 24] [--psi-rows 1000000]
     [--masters local[2],local[1]]
Each configuration runs in its own process (so its peak memory is its own): the local engine, then Spark with
each master. Prints seconds, throughput (loans or rows a second) and peak resident memory of the Python process
and of Spark's JVM, checks that every engine gave the same figures, and the local[1] -> local[2] scaling ratio.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from bench_vintages import AS_OF, TENANT, generate

from microlend.batch.analytics import ParquetDataset
from microlend.risk.monitoring_jobs import stability_on
from microlend.servicing.portfolio_jobs import portfolio_parquet, roll_counts_on, vintage_counts_on
from microlend.servicing.portfolio_sql import Window

POPULATION = {"score": "DOUBLE", "income": "DOUBLE", "region": "VARCHAR"}
COLUMNS: dict[str, Any] = {"score": "score", "income": "numeric", "region": "categorical"}


def write_inputs(root: Path, loans: int, months: int, seed: int, psi_rows: int) -> None:
    con = duckdb.connect()
    con.execute("SET threads = 2")
    generate(con, loans, months, seed)
    for name, month_of in (("loans", "disbursed_on"), ("loan_installments", "due_date")):
        con.execute(f"""COPY (SELECT *, strftime({month_of}, '%Y-%m') AS month FROM {name})
                        TO '{root / name}' (FORMAT parquet, PARTITION_BY (tenant_id, month))""")
    con.close()
    rng = np.random.default_rng(seed)
    for side, shift in (("expected", 0.0), ("actual", 0.3)):
        score = np.round(rng.normal(600 + 40 * shift, 50, psi_rows) / 5) * 5
        income = np.where(rng.random(psi_rows) < 0.05, np.nan, np.round(rng.lognormal(8 + shift, 0.6, psi_rows), 2))
        regions = np.array(["east", "west", "north", "south", "centre", "islands"])
        region = regions[np.minimum(rng.geometric(0.45, psi_rows) - 1, 5)]
        (root / side).mkdir()
        pq.write_table(pa.table({"score": score, "income": pa.array(income, from_pandas=True), "region": region}),
                       root / side / "part-0.parquet")


def jvm_peak_mb() -> float:
    """Peak resident memory (VmHWM) of the Java processes this one started."""
    peak = 0.0
    me = str(Path("/proc/self").resolve().name)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            status = (proc / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() != me or "java" not in fields.get("Name", ""):
            continue
        peak += int(fields.get("VmHWM", "0 kB").split()[0]) / 1024
    return peak


def worker(engine: str, master: str, root: Path, months: int) -> dict[str, Any]:
    spark = None
    t0 = time.perf_counter()
    if engine == "spark":
        from microlend.batch.spark_session import get_spark

        spark = get_spark(master, config={"spark.driver.memory": "3g", "spark.sql.shuffle.partitions": "4"})
    started = time.perf_counter() - t0
    window = Window(AS_OF, months)
    sources = portfolio_parquet(root)
    t1 = time.perf_counter()
    vintages = vintage_counts_on(engine, window, TENANT, sources, spark=spark)
    t2 = time.perf_counter()
    rolls = roll_counts_on(engine, window, TENANT, sources, spark=spark)
    t3 = time.perf_counter()
    expected = ParquetDataset(root / "expected", POPULATION)
    actual = ParquetDataset(root / "actual", POPULATION)
    stability = stability_on(engine, expected, actual, COLUMNS, spark=spark)
    t4 = time.perf_counter()
    jvm = jvm_peak_mb() if spark is not None else 0.0
    if spark is not None:
        spark.stop()
    return {"engine": engine, "master": master, "start_s": started, "vintages_s": t2 - t1, "rolls_s": t3 - t2,
            "psi_s": t4 - t3, "python_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "jvm_peak_mb": jvm, "vintages": vintages, "rolls": rolls,
            "psi": {s.column: s.psi for s in stability}}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--psi-rows", type=int, default=1_000_000)
    parser.add_argument("--masters", default="local[2],local[1]")
    parser.add_argument("--worker", nargs=3, metavar=("ENGINE", "MASTER", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        engine, master, root = args.worker
        print(json.dumps(worker(engine, master, Path(root), args.months)))
        return
    with tempfile.TemporaryDirectory(prefix="ml-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        write_inputs(root, args.loans, args.months, args.seed, args.psi_rows)
        size = sum(p.stat().st_size for p in root.rglob("*.parquet")) / 2**20
        print(f"inputs: {args.loans:,} loans x 12 installments, 2 x {args.psi_rows:,} scored rows; "
              f"{size:.0f} MB of Parquet in {time.perf_counter() - t0:.1f} s")
        runs = [("local", "-")] + [("spark", m) for m in args.masters.split(",") if m]
        results = []
        for engine, master in runs:
            out = subprocess.run([sys.executable, __file__, "--months", str(args.months), "--worker", engine, master,
                                  str(root)], capture_output=True, text=True, check=False)
            if out.returncode != 0:
                print(f"{engine} {master}: failed\n{out.stderr[-2000:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            results.append(r)
            analytics = r["vintages_s"] + r["rolls_s"]
            print(f"{engine:5} {master:9} start {r['start_s']:6.1f} s | vintages {r['vintages_s']:6.1f} s, "
                  f"roll rates {r['rolls_s']:6.1f} s ({args.loans / analytics:,.0f} loans/s) | PSI/CSI "
                  f"{r['psi_s']:6.1f} s ({2 * args.psi_rows / r['psi_s']:,.0f} rows/s) | peak python "
                  f"{r['python_peak_mb']:,.0f} MB + JVM {r['jvm_peak_mb']:,.0f} MB")
        if results:
            base = results[0]
            same = all(r["vintages"] == base["vintages"] and r["rolls"] == base["rolls"] and
                       all(abs(r["psi"][c] - base["psi"][c]) <= 1e-12 for c in base["psi"]) for r in results)
            print(f"identical figures on every engine: {same}; PSI {base['psi']}")
        by_master = {r["master"]: r for r in results if r["engine"] == "spark"}
        if "local[1]" in by_master and "local[2]" in by_master:
            one, two = by_master["local[1]"], by_master["local[2]"]
            for key in ("vintages_s", "rolls_s", "psi_s"):
                print(f"scaling local[1] -> local[2], {key[:-2]}: {one[key] / two[key]:.2f}x")


if __name__ == "__main__":
    main()
