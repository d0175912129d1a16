"""Batch scoring speed of the micro-business expert scorecard: rows per second, with and without reason codes.

.venv/bin/python bench/bench_expert_scorecard.py [rows]"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from microlend.risk.artefacts import load_model
from microlend.risk.starter import EXPERT_STARTER_DIR


def synthetic(rows: int, seed: int = 7) -> pd.DataFrame:
    """Random applicants over the table's features, about 5 % of each value missing."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "tax_sales_12m": rng.lognormal(13.5, 1.2, rows),
            "tax_sales_growth_yoy": rng.normal(0.05, 0.3, rows),
            "tax_months_declared_24m": rng.integers(0, 25, rows).astype(float),
            "tax_grade": rng.choice(np.array(["A", "B", "M", "C", "D"], dtype=object), rows),
            "inv_red_ratio_12m": rng.beta(1, 30, rows),
            "inv_sales_gap": rng.uniform(-1, 1, rows),
            "inv_top_customer_share": rng.beta(2, 4, rows),
            "mer_active_days_3m": rng.integers(0, 91, rows).astype(float),
            "business_age_months": rng.integers(0, 240, rows).astype(float),
            "reg_legal_rep_changes_12m": rng.poisson(0.1, rows).astype(float),
            "enf_cases_open": rng.poisson(0.05, rows).astype(float),
            "enf_dishonest": rng.binomial(1, 0.02, rows) * 1.0,
            "bur_overdue_months_24m": rng.poisson(0.4, rows).astype(float),
            "bur_max_overdue_level_24m": rng.integers(0, 8, rows).astype(float),
            "bur_lenders_open": rng.poisson(1.5, rows).astype(float),
            "bur_inquiries_3m": rng.poisson(1.0, rows) * 1.0,
            "bur_history_months": rng.integers(0, 200, rows).astype(float),
            "own_bounced_6m": rng.poisson(0.2, rows).astype(float),
            "years_in_business": rng.uniform(0, 20, rows),
        }
    )
    for column in frame.columns:
        frame.loc[rng.random(rows) < 0.05, column] = None
    return frame


def main(rows: int = 1_000_000) -> None:
    model = load_model(EXPERT_STARTER_DIR).model
    frame = synthetic(rows)
    model.score_batch(frame.head(1000))
    for with_reasons in (False, True):
        start = time.perf_counter()
        out = model.score_batch(frame, with_reasons=with_reasons)
        seconds = time.perf_counter() - start
        label = "with reasons" if with_reasons else "no reasons  "
        print(f"expert scorecard, {len(out):,} rows, {label}: {seconds:.3f} s = {len(out) / seconds:,.0f} rows/s")
    case = frame.iloc[0].to_dict()
    n = 20_000
    start = time.perf_counter()
    for _ in range(n):
        model.score_one(case)
    print(f"expert scorecard, one case: {(time.perf_counter() - start) / n * 1e6:.1f} µs per case")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
