"""Benchmark: standard features over a seeded synthetic portfolio, and online lookups.

Run: .venv/bin/python bench/bench_features.py [--customers 1000000] [--chunk-rows 0]
Prints generation time, batch feature rows/s (customers and installments scanned), and the online
lookup p50/p99.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import date

import numpy as np
import pyarrow as pa

from microlend.batch.engine import LocalEngine
from microlend.data.features import OnlineFeatureStore, compute_features

EPOCH = np.datetime64("1970-01-01", "D")


def days(d: np.ndarray) -> pa.Array:
    return pa.array(d.astype("int32"), pa.int32()).cast(pa.date32())


def money(yuan: np.ndarray) -> pa.Array:
    """Whole-yuan amounts as exact decimals (integers cast, never through float)."""
    return pa.array(yuan.astype("int64")).cast(pa.decimal128(38, 4)).cast(pa.decimal128(18, 4))


def portfolio(n: int, seed: int) -> dict[str, pa.Table]:
    rng = np.random.default_rng(seed)
    start = (np.datetime64("2019-01-01") - EPOCH).astype(int)
    end = (np.datetime64("2024-12-31") - EPOCH).astype(int)
    created = rng.integers(start, end - 60, n)
    customers = pa.table(
        {
            "customer_id": pa.array(np.arange(1, n + 1, dtype="int64")),
            "created_at": pa.array(
                created.astype("int64") * 86_400_000_000 + rng.integers(0, 86_400_000_000, n),
                pa.timestamp("us", tz="UTC"),
            ),
            "birth_date": days(created - rng.integers(20 * 365, 65 * 365, n)),
            "industry": pa.array(rng.choice(["retail", "farming", "catering", "transport", "repair"], n)),
        }
    )
    loans_per = rng.poisson(1.5, n)
    m = int(loans_per.sum())
    owner = np.repeat(np.arange(1, n + 1, dtype="int64"), loans_per)
    owner_created = np.repeat(created, loans_per)
    disbursed = owner_created + (rng.random(m) * (end - owner_created)).astype("int64")
    term = rng.choice([3, 6, 12], m, p=[0.05, 0.25, 0.7])
    closed = np.where(rng.random(m) < 0.7, disbursed + term * 30 + rng.integers(-20, 40, m), -1)
    loans = pa.table(
        {
            "loan_id": pa.array(np.arange(1, m + 1, dtype="int64")),
            "customer_id": pa.array(owner),
            "disbursed_at": days(disbursed),
            "principal": money(rng.integers(1_000, 50_000, m)),
            "status": pa.array(np.where(closed >= 0, "closed", "open")),
            "closed_at": pa.array(np.where(closed >= 0, closed, 0).astype("int32"), pa.int32(), mask=closed < 0).cast(
                pa.date32()
            ),
        }
    )
    k = int(term.sum())
    loan_of = np.repeat(np.arange(1, m + 1, dtype="int64"), term)
    seq = np.arange(k) - np.repeat(np.cumsum(term) - term, term) + 1
    due = np.repeat(disbursed, term) + seq * 30
    roll = rng.random(k)
    paid = np.where(roll < 0.88, due - rng.integers(0, 5, k), np.where(roll < 0.98, due + rng.integers(1, 90, k), -1))
    amount = money(np.full(k, 500))
    installments = pa.table(
        {
            "loan_id": pa.array(loan_of),
            "due_date": days(due),
            "paid_date": pa.array(np.where(paid >= 0, paid, 0).astype("int32"), pa.int32(), mask=paid < 0).cast(
                pa.date32()
            ),
            "amount_due": amount,
            "amount_paid": amount,
        }
    )
    s = n * 3
    line_owner = rng.integers(1, n + 1, s)
    limit = rng.integers(10_000, 100_000, s)
    credit_lines = pa.table(
        {
            "customer_id": pa.array(line_owner.astype("int64")),
            "limit": money(limit),
            "used": money((limit * rng.random(s)).astype("int64")),
            "as_of": days(rng.integers(start, end, s)),
        }
    )
    a = n * 2
    applications = pa.table(
        {
            "customer_id": pa.array(rng.integers(1, n + 1, a).astype("int64")),
            "submitted_at": pa.array(
                rng.integers(start, end, a).astype("int64") * 86_400_000_000, pa.timestamp("us", tz="UTC")
            ),
            "outcome": pa.array(rng.choice(["approved", "declined", "referred"], a, p=[0.6, 0.3, 0.1])),
        }
    )
    r = n
    external_scores = pa.table(
        {
            "customer_id": pa.array(rng.integers(1, n + 1, r).astype("int64")),
            "source": pa.array(rng.choice(["bureau", "tax"], r, p=[0.7, 0.3])),
            "observed_at": pa.array(
                rng.integers(start, end, r).astype("int64") * 86_400_000_000, pa.timestamp("us", tz="UTC")
            ),
            "score": pa.array(rng.integers(300, 900, r).astype("float64")),
        }
    )
    return {
        "external_scores": external_scores,
        "customers": customers,
        "loans": loans,
        "installments": installments,
        "credit_lines": credit_lines,
        "applications": applications,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=20241231)
    parser.add_argument("--chunk-rows", type=int, default=0, help="0: one query for the whole portfolio")
    parser.add_argument("--lookups", type=int, default=200_000)
    args = parser.parse_args()

    t0 = time.perf_counter()
    tables = portfolio(args.customers, args.seed)
    gen = time.perf_counter() - t0
    sizes = {k: v.num_rows for k, v in tables.items()}
    print(
        f"portfolio (seed {args.seed}): "
        + ", ".join(f"{k} {v:,}" for k, v in sizes.items())
        + f"  [generated in {gen:.1f} s]"
    )

    as_of = date(2024, 12, 31)
    t0 = time.perf_counter()
    features = compute_features(tables, as_of=as_of, engine=LocalEngine(), chunk_rows=args.chunk_rows or None)
    batch = time.perf_counter() - t0
    print(
        f"batch features as of {as_of}: {features.num_rows:,} customers x {features.num_columns - 2} "
        f"features in {batch:.2f} s = {features.num_rows / batch:,.0f} customers/s, "
        f"{sizes['installments'] / batch:,.0f} installments/s scanned"
    )

    store = OnlineFeatureStore()
    t0 = time.perf_counter()
    store.refresh(features)
    refresh = time.perf_counter() - t0
    print(f"online store refresh: {len(store):,} customers in {refresh:.2f} s")

    rnd = random.Random(args.seed)
    ids = [rnd.randint(1, args.customers) for _ in range(args.lookups)]
    timings = np.empty(len(ids))
    for i, cid in enumerate(ids):
        start = time.perf_counter_ns()
        store.lookup(cid)
        timings[i] = time.perf_counter_ns() - start
    p50, p99, worst = np.percentile(timings, [50, 99, 100]) / 1000
    print(
        f"online lookup ({len(ids):,} random customers): p50 {p50:.1f} µs, p99 {p99:.1f} µs, "
        f"max {worst:.0f} µs (target p99 <= 2,000 µs)"
    )


if __name__ == "__main__":
    main()
