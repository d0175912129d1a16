"""Benchmark: small-business features over a seeded synthetic base.

Run: .venv/bin/python bench/bench_business_features.py [--businesses 1000000] [--seed 7]
Generates, per business: 24 months of tax declarations (a few months undeclared), 24 months of e-invoice
totals, daily merchant-acquiring flows for the 180 days before the as-of date (merchants only, ~45 % of
businesses, sales on ~1 day in 3), a registry record with its changes, enforcement cases (~5 %) and a bureau
report. Prints generation time (excluded) and businesses/s of `business_features`.
"""

from __future__ import annotations

import argparse
import time
from datetime import date

import numpy as np
import polars as pl

from microlend.data.business import business_features

AS_OF = date(2026, 12, 1)


def base(n: int, seed: int) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = np.arange(n, dtype=np.int64)
    as_of_month = AS_OF.year * 12 + AS_OF.month - 1
    # 24 months per business: month k = 1..24 before the as-of month, ~8 % undeclared.
    subj = np.repeat(ids, 24)
    ago = np.tile(np.arange(1, 25, dtype=np.int64), n)
    month = as_of_month - ago
    level = np.repeat(rng.lognormal(11, 1.2, n), 24)
    sales = (level * rng.uniform(0.6, 1.4, n * 24) * 100).astype(np.int64)
    declared = rng.random(n * 24) > 0.08
    periods = pl.DataFrame({"m": month}).select(pl.date(pl.col("m") // 12, pl.col("m") % 12 + 1, 1))["date"]
    tax_declarations = pl.DataFrame(
        {"subject": subj, "period": periods, "sales": sales, "vat_paid": sales // 30}
    ).filter(pl.Series(declared))
    tax_grades = pl.DataFrame({"subject": ids, "grade": rng.choice(["A", "B", "M", "C", "D"], n)})
    issued = (sales * rng.uniform(0.7, 1.3, n * 24)).astype(np.int64)
    invoice_months = pl.DataFrame(
        {
            "subject": subj,
            "period": periods,
            "issued_count": rng.integers(0, 60, n * 24),
            "issued_amount": issued,
            "received_count": rng.integers(0, 30, n * 24),
            "received_amount": issued // 2,
            "red_count": rng.integers(0, 2, n * 24),
            "red_amount": issued // 50,
            "cancelled_count": rng.integers(0, 2, n * 24),
        }
    )
    invoice_summary = pl.DataFrame(
        {
            "subject": ids,
            "counterparties_12m": rng.integers(1, 80, n),
            "top_customer_amount": (level[::24] * 100 * rng.uniform(0.5, 4, n)).astype(np.int64),
        }
    )
    merchant = ids[rng.random(n) < 0.45]
    per = rng.binomial(180, 0.33, merchant.size)
    m_subj = np.repeat(merchant, per)
    m_ago = rng.integers(1, 181, m_subj.size)
    epoch_as_of = (np.datetime64(AS_OF.isoformat()) - np.datetime64("1970-01-01")).astype(np.int64)
    merchant_days = pl.DataFrame(
        {
            "subject": m_subj,
            "day": pl.Series(epoch_as_of - m_ago, dtype=pl.Int32).cast(pl.Date),
            "count": rng.integers(1, 40, m_subj.size),
            "amount": rng.integers(1_000, 500_000, m_subj.size),
        }
    ).unique(["subject", "day"])
    merchants = pl.DataFrame({"subject": merchant, "merchant_since": pl.Series([None] * merchant.size, dtype=pl.Date)})
    registry = pl.DataFrame(
        {
            "subject": ids,
            "registered_on": pl.Series(epoch_as_of - rng.integers(100, 9000, n), dtype=pl.Int32).cast(pl.Date),
            "capital": rng.integers(1, 1000, n) * 1_000_000,
            "status": rng.choice(["存续", "在业", "吊销", "注销"], n, p=[0.6, 0.35, 0.03, 0.02]),
        }
    )
    n_changes = rng.poisson(0.6, n)
    c_subj = np.repeat(ids, n_changes)
    registry_changes = pl.DataFrame(
        {
            "subject": c_subj,
            "date": pl.Series(epoch_as_of - rng.integers(1, 1500, c_subj.size), dtype=pl.Int32).cast(pl.Date),
            "item": rng.choice(["legal_representative", "address", "capital", "scope"], c_subj.size),
        }
    )
    with_cases = ids[rng.random(n) < 0.05]
    e_subj = np.repeat(with_cases, rng.integers(1, 4, with_cases.size))
    enforcement_cases = pl.DataFrame(
        {
            "subject": e_subj,
            "filed_on": pl.Series(epoch_as_of - rng.integers(1, 2000, e_subj.size), dtype=pl.Int32).cast(pl.Date),
            "amount": rng.integers(100, 500_000, e_subj.size) * 100,
            "status": rng.choice(["open", "closed"], e_subj.size),
            "dishonest": rng.random(e_subj.size) < 0.4,
        }
    )
    bureau = pl.DataFrame(
        {
            "subject": ids,
            "report_date": pl.Series([AS_OF] * n, dtype=pl.Date),
            "credit_history_months": rng.integers(0, 200, n),
            "lenders_open": rng.integers(0, 6, n),
            "overdue_accounts_now": rng.binomial(1, 0.05, n),
            "overdue_months_24m": rng.binomial(24, 0.02, n),
            "max_overdue_level_24m": rng.integers(0, 3, n),
            "inquiries_3m": rng.poisson(1, n),
            "guarantee_amount": rng.integers(0, 2, n) * rng.integers(0, 10_000_000, n),
            "bad_debt": rng.random(n) < 0.01,
        }
    )
    tables = {
        "tax_grades": tax_grades,
        "tax_declarations": tax_declarations,
        "invoice_summary": invoice_summary,
        "invoice_months": invoice_months,
        "merchants": merchants,
        "merchant_days": merchant_days,
        "registry": registry,
        "registry_changes": registry_changes,
        "enforcement": pl.DataFrame({"subject": ids}),
        "enforcement_cases": enforcement_cases,
        "bureau": bureau,
    }
    spine = pl.DataFrame({"subject": ids, "as_of": pl.Series([AS_OF] * n, dtype=pl.Date)})
    return tables, spine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--businesses", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    t0 = time.perf_counter()
    tables, spine = base(args.businesses, args.seed)
    rows = {name: t.height for name, t in tables.items()}
    print(
        f"generated {args.businesses:,} businesses in {time.perf_counter() - t0:.1f}s: "
        + ", ".join(f"{k} {v:,}" for k, v in rows.items())
    )
    t1 = time.perf_counter()
    out = business_features(tables, spine)
    elapsed = time.perf_counter() - t1
    print(
        f"business_features: {out.height:,} rows x {len(out.columns) - 2} columns in {elapsed:.2f}s "
        f"= {out.height / elapsed:,.0f} businesses/s"
    )
    print(out.select("tax_sales_12m", "tax_sales_growth_yoy", "inv_sales_gap", "mer_flow_3m").describe())


if __name__ == "__main__":
    main()
