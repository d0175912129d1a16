"""Early-warning scan figures: the monthly behaviour score and every early-warning signal of a whole active
book (days-past-due transitions, score and its fall, tax sales, merchant turnover, enforcement, bureau overdue,
months drawn to the limit), judged by the shipped early-warning rules, set-based (Polars and the columnar
rule engine).

Run: .venv/bin/python bench/bench_early_warning.py [--loans 1000000] [--instalments 6] [--seed 7]
Prints loans/s for the signals with the behaviour score, for the rules, and for the whole scan (target:
>= 100,000 loans/s), the alerts raised by signal and severity, and checks sampled rows against the rule
engine row by row.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import date, timedelta

import numpy as np
import polars as pl

from microlend.decisioning import behaviour
from microlend.decisioning import early_warning as rules
from microlend.decisioning.policy import compile_policy
from microlend.origination.early_warning import book_signals

ON = date(2026, 11, 30)


def generate(n: int, per_subject: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Seeded subjects (40% credit lines, 60% loans), their instalments, last month's scores and the external
    facts of a third of the customers."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n + 1, dtype=np.int64)
    kinds = np.where(rng.random(n) < 0.4, "line", "loan")
    opened = np.datetime64(ON) - rng.integers(0, 1500, n).astype("timedelta64[D]")
    limits = rng.integers(10_000, 1_000_000, n) * 100
    dpd = np.where(rng.random(n) < 0.06, rng.integers(1, 120, n), 0).astype(np.int32)
    subjects = pl.DataFrame({"subject_id": ids, "kind": kinds, "customer_id": ids, "limit_cents": limits,
                             "opened_on": opened, "current_dpd": dpd}, schema=behaviour.SUBJECT_SCHEMA)
    m = n * per_subject
    owner = np.repeat(ids, per_subject)
    disbursed = np.datetime64(ON - timedelta(days=400)) + rng.integers(0, 380, m).astype("timedelta64[D]")
    due = disbursed + rng.integers(20, 370, m).astype("timedelta64[D]")
    late = np.where(rng.random(m) < 0.1, rng.integers(1, 60, m), 0).astype("timedelta64[D]")
    paid = due + late
    unpaid = (paid > np.datetime64(ON)) | (rng.random(m) < 0.01)
    heavy = np.repeat(rng.random(n) < 0.05, per_subject)  # a few lines drawn to the full
    principal = np.where(heavy, np.repeat(limits, per_subject) // per_subject,
                         np.repeat(limits, per_subject) // (per_subject * 2)).astype(np.int64)
    instalments = pl.DataFrame({"kind": np.repeat(kinds, per_subject), "subject_id": owner,
                                "disbursed_on": disbursed, "due": due, "paid_on": paid, "principal_cents": principal},
                               schema={"kind": pl.Utf8, **behaviour.INSTALMENT_SCHEMA})
    instalments = instalments.with_columns(
        pl.when(pl.Series(unpaid) | pl.Series(heavy)).then(None).otherwise(pl.col("paid_on")).alias("paid_on"))
    before = pl.DataFrame({"subject_kind": kinds, "subject_id": ids,
                           "score_before": rng.integers(520, 720, n).astype(np.int32),
                           "dpd_before": np.where(rng.random(n) < 0.03, rng.integers(1, 40, n), 0).astype(np.int32)})
    known = ids[rng.random(n) < 0.33]
    k = len(known)
    external = pl.DataFrame({
        "customer_id": known,
        "tax.sales_growth": np.where(rng.random(k) < 0.9, rng.normal(0.05, 0.25, k), np.nan),
        "merchant.flow_trend": np.where(rng.random(k) < 0.8, rng.normal(0.0, 0.2, k), np.nan),
        "enforcement.cases_open": (rng.random(k) < 0.02).astype(np.int32),
        "enforcement.dishonest": rng.random(k) < 0.005,
        "bureau.overdue_now": np.where(rng.random(k) < 0.03, rng.integers(1, 3, k), 0).astype(np.int32),
    }).with_columns(pl.col("tax.sales_growth").fill_nan(None), pl.col("merchant.flow_trend").fill_nan(None))
    return subjects, instalments, before, external


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--instalments", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    subjects, instalments, before, external = generate(args.loans, args.instalments, args.seed)
    print(f"{args.loans:,} active loans and lines, {instalments.height:,} instalments (seed {args.seed})")
    doc = rules.default_early_warning()
    warm = book_signals(subjects.head(1000), instalments.head(6000), ON, before=before, external=external)
    rules.assess_book(doc, warm.select(list(rules.BOOK_SCHEMA)))
    t0, c0 = time.perf_counter(), time.process_time()
    book = book_signals(subjects, instalments, ON, before=before, external=external)
    t1, c1 = time.perf_counter(), time.process_time()
    assessed = rules.assess_book(doc, book.select(list(rules.BOOK_SCHEMA)))
    found = rules.raised(assessed)
    t2, c2 = time.perf_counter(), time.process_time()
    n = args.loans
    print(f"load average while it ran: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall time suffers when "
          "others share them; CPU seconds are what the scan itself used)")
    print(f"signals and behaviour score: {t1 - t0:.3f} s wall {c1 - c0:.3f} s CPU  {n / (t1 - t0):,.0f} loans/s")
    print(f"early-warning rules:         {t2 - t1:.3f} s wall {c2 - c1:.3f} s CPU  {n / (t2 - t1):,.0f} loans/s")
    print(f"whole scan:                  {t2 - t0:.3f} s wall {c2 - c0:.3f} s CPU  {n / (t2 - t0):,.0f} loans/s, "
          f"{n / (c2 - c0):,.0f} loans per CPU second (target >= 100,000 loans/s)")
    print(f"alerts raised: {found.height:,}")
    for signal, counts in rules.count_by_signal(assessed).items():
        print(f"  {signal:20s} {counts}")
    compiled = compile_policy(doc)
    sample = assessed.sample(500, seed=args.seed)
    differ = 0
    for r in sample.iter_rows(named=True):
        facts = rules.EarlyWarningInput.from_canonical({
            "subject": {"kind": r["subject_kind"]},
            "dpd": {"now": r["dpd.now"], "before": r["dpd.before"]},
            "score": {"value": r["score.value"], "drop": r["score.drop"]},
            "tax": {"sales_growth": None if r["tax.sales_growth"] is None else repr(r["tax.sales_growth"])},
            "merchant": {"flow_trend": None if r["merchant.flow_trend"] is None else repr(r["merchant.flow_trend"])},
            "enforcement": {"cases_open": r["enforcement.cases_open"], "dishonest": r["enforcement.dishonest"]},
            "bureau": {"overdue_now": r["bureau.overdue_now"]},
            "line": {"months_at_limit": r["line.months_at_limit"]},
        })
        differ += rules.assess_one(compiled, facts) != {s: r[s] for s in rules.SIGNALS}
    print(f"reference check on 500 sampled loans (rule engine row by row): {differ} differ")


if __name__ == "__main__":
    main()
