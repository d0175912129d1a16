"""Monthly behaviour score figures: facts from instalment history and the points scorecard over a whole
portfolio, set-based with Polars.

Run: .venv/bin/python bench/bench_behaviour_score.py [--lines 200000] [--instalments 12] [--seed 7]
Prints lines/s for the facts (lateness, counts, on-time share, utilisation over 6 month-ends, months on book)
and for the scorecard, and checks a sample against the per-line reference.
"""

from __future__ import annotations

import argparse
import time
from datetime import date, timedelta

import numpy as np
import polars as pl

from microlend.decisioning import behaviour

ON = date(2026, 11, 30)


def generate(lines: int, per_line: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Seeded lines and their drawdown instalments: most paid on time, some late, a few unpaid."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, lines + 1, dtype=np.int64)
    opened = np.datetime64(ON) - rng.integers(0, 1500, lines).astype("timedelta64[D]")
    limits = rng.integers(10_000, 1_000_000, lines) * 100
    dpd = np.where(rng.random(lines) < 0.05, rng.integers(1, 120, lines), 0).astype(np.int32)
    subjects = pl.DataFrame({"subject_id": ids, "kind": ["line"] * lines, "customer_id": ids,
                             "limit_cents": limits, "opened_on": opened, "current_dpd": dpd},
                            schema=behaviour.SUBJECT_SCHEMA)
    n = lines * per_line
    owner = np.repeat(ids, per_line)
    disbursed = np.datetime64(ON - timedelta(days=400)) + rng.integers(0, 380, n).astype("timedelta64[D]")
    due = disbursed + rng.integers(20, 370, n).astype("timedelta64[D]")
    late = np.where(rng.random(n) < 0.1, rng.integers(1, 60, n), 0).astype("timedelta64[D]")
    paid = due + late
    unpaid = (paid > np.datetime64(ON)) | (rng.random(n) < 0.01)
    principal = (np.repeat(limits, per_line) // (per_line * 2)).astype(np.int64)
    instalments = pl.DataFrame({"subject_id": owner, "disbursed_on": disbursed, "due": due, "paid_on": paid,
                                "principal_cents": principal}, schema=behaviour.INSTALMENT_SCHEMA)
    instalments = instalments.with_columns(pl.when(pl.Series(unpaid)).then(None).otherwise(pl.col("paid_on"))
                                           .alias("paid_on"))
    return subjects, instalments


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--instalments", type=int, default=12)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    subjects, instalments = generate(args.lines, args.instalments, args.seed)
    print(f"{args.lines:,} lines, {instalments.height:,} instalments (seed {args.seed})")
    behaviour.score_facts(behaviour.behaviour_facts(subjects.head(1000), instalments.head(12_000), ON))  # warm up
    t0 = time.perf_counter()
    facts = behaviour.behaviour_facts(subjects, instalments, ON)
    t1 = time.perf_counter()
    scored = behaviour.score_facts(facts)
    t2 = time.perf_counter()
    print(f"facts:     {t1 - t0:.3f} s  {args.lines / (t1 - t0):,.0f} lines/s")
    print(f"scorecard: {t2 - t1:.3f} s  {args.lines / (t2 - t1):,.0f} lines/s")
    print(f"total:     {t2 - t0:.3f} s  {args.lines / (t2 - t0):,.0f} lines/s")
    print("bands:", dict(sorted(scored.group_by("band").len().iter_rows())))
    sample = scored.sample(2000, seed=args.seed)
    mismatched = sum(behaviour.score_one(r, r["kind"]).score != r["score"] for r in sample.iter_rows(named=True))
    print(f"reference check on 2,000 sampled lines: {mismatched} differ")


if __name__ == "__main__":
    main()
