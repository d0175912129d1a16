"""Vintage curves and roll-rate matrices over a generated book: the same SQL the app runs on its database
(`microlend.servicing.portfolio_sql`), here in DuckDB over tables shaped like `loans` and `loan_installments`.

Run: .venv/bin/python bench/bench_vintages.py [--loans 1000000] [--months 24] [--seed 7] [--threads 2]
Generates seeded loans disbursed over the window (12 monthly installments each: most paid on time, some a few
days late, a few months late, some never paid again and written off 180 days later), then prints the seconds
of the vintage statement, of the roll-rate statement and of turning the counts into curves and matrices
(target: under 10 s in all).
"""

from __future__ import annotations

import argparse
import time
from datetime import date

import duckdb

from microlend.servicing import portfolio
from microlend.servicing.portfolio_sql import Window, roll_sql, vintage_sql

AS_OF = date(2026, 11, 30)
TENANT = 1


def generate(con: duckdb.DuckDBPyConnection, loans: int, months: int, seed: int) -> None:
    """Seeded with `seed` through a hash of each row's ids (the same book whatever the thread count)."""
    start = Window(AS_OF, months).starts[0]
    days = (AS_OF - start).days
    u = f"((hash(id * 1000003 + {seed} * 7919 + {{k}}) % 1000000) / 1000000.0)"
    con.execute(f"""
CREATE TABLE l0 AS
SELECT id, DATE '{start.isoformat()}' + CAST(floor({u.format(k=1)} * {days}) AS INTEGER) AS disbursed_on,
       CASE WHEN {u.format(k=2)} < 0.06 THEN 1 + CAST(floor({u.format(k=3)} * 12) AS INTEGER) END AS stops_at
FROM range(1, {loans + 1}) t(id)""")
    con.execute(f"""
CREATE TABLE loan_installments AS
SELECT {TENANT} AS tenant_id, l0.id AS loan_id, n AS number,
       CAST(l0.disbursed_on + to_months(n) AS DATE) AS due_date,
       CASE
         WHEN l0.stops_at IS NOT NULL AND n >= l0.stops_at THEN NULL
         WHEN CAST(l0.disbursed_on + to_months(n) AS DATE) + late > DATE '{AS_OF.isoformat()}' THEN NULL
         ELSE CAST(l0.disbursed_on + to_months(n) AS DATE) + late
       END AS paid_on
FROM l0, range(1, 13) s(n),
     LATERAL (SELECT CASE WHEN (hash(l0.id * 13 + n * 31 + {seed}) % 1000) < 90
                          THEN CAST(1 + (hash(l0.id * 17 + n * 37 + {seed}) %
                                         CASE WHEN hash(l0.id * 23 + n) % 10 = 0 THEN 75 ELSE 12 END) AS INTEGER)
                          ELSE -CAST(hash(l0.id * 19 + n) % 3 AS INTEGER) END AS late) x""")
    con.execute(f"""
CREATE TABLE loans AS
SELECT l0.id, {TENANT} AS tenant_id, l0.disbursed_on,
       CASE WHEN wo IS NOT NULL AND wo <= DATE '{AS_OF.isoformat()}' THEN 'written_off'
            WHEN unpaid = 0 THEN 'closed' ELSE 'active' END AS status,
       CASE WHEN wo IS NOT NULL AND wo <= DATE '{AS_OF.isoformat()}' THEN wo
            WHEN unpaid = 0 THEN last_paid END AS closed_on
FROM l0 JOIN (SELECT loan_id, SUM(CASE WHEN paid_on IS NULL THEN 1 ELSE 0 END) AS unpaid, MAX(paid_on) AS last_paid,
                     MIN(CASE WHEN paid_on IS NULL THEN due_date END) + 180 AS wo
              FROM loan_installments GROUP BY loan_id) a ON a.loan_id = l0.id""")
    con.execute("DROP TABLE l0")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    t0 = time.perf_counter()
    generate(con, args.loans, args.months, args.seed)
    (installments,) = con.execute("SELECT COUNT(*) FROM loan_installments").fetchone() or (0,)
    print(f"generated {args.loans:,} loans, {installments:,} installments in {time.perf_counter() - t0:.1f} s")

    window = Window(AS_OF, args.months)
    t1 = time.perf_counter()
    v_counts = [(int(c), k30, k90, int(n)) for c, k30, k90, n in
                con.execute(vintage_sql(window, TENANT, "duckdb")).fetchall()]
    t2 = time.perf_counter()
    r_counts = [(int(j), str(a), str(b), int(n)) for j, a, b, n in
                con.execute(roll_sql(window, TENANT, "duckdb")).fetchall()]
    t3 = time.perf_counter()
    cohorts = portfolio.vintage_curves(window, v_counts)
    rolls = portfolio.roll_matrices(window, r_counts)
    t4 = time.perf_counter()

    assert sum(c.loans for c in cohorts) == args.loans
    first = cohorts[0]
    print(f"vintages:   {t2 - t1:.2f} s ({len(cohorts)} cohorts; {first.month} ever 30+ at month 12: "
          f"{first.rate_30[min(12, len(first.rate_30) - 1)]})")
    print(f"roll rates: {t3 - t2:.2f} s ({len(rolls.transitions)} months; whole window M1>M2 "
          f"{rolls.total.rate('M1', 'M2')}, cure {rolls.total.cure_rate})")
    print(f"assembly:   {t4 - t3:.3f} s")
    total = t4 - t1
    print(f"total:      {total:.2f} s for {args.loans:,} loans x {args.months} months "
          f"({'within' if total < 10 else 'OVER'} the 10 s target)")


if __name__ == "__main__":
    main()
