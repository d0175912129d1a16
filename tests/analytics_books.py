"""Seeded generated inputs of the portfolio analytics: a book of loans with their installments (two banks), and
a population of scores and features, the same for every engine that reads them."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pyarrow as pa

from microlend.servicing.portfolio_sql import Window


def generated_book(loans: int, months: int, seed: int, as_of: date, *, tenants: int = 2) -> dict[str, pa.Table]:
    """`loans` loans disbursed over the window (12 monthly installments each: most paid on time, some a few days
    late, some months late, a few never again and written off 180 days on), spread over `tenants` banks; seeded
    through a hash of each row's ids, so the book does not depend on the thread count."""
    start = Window(as_of, months).starts[0]
    days = (as_of - start).days
    u = f"((hash(id * 1000003 + {seed} * 7919 + {{k}}) % 1000000) / 1000000.0)"
    con = duckdb.connect()
    con.execute(f"""
CREATE TABLE l0 AS
SELECT id, 1 + CAST(id % {tenants} AS BIGINT) AS tenant_id,
       DATE '{start.isoformat()}' + CAST(floor({u.format(k=1)} * {days}) AS INTEGER) AS disbursed_on,
       CASE WHEN {u.format(k=2)} < 0.06 THEN 1 + CAST(floor({u.format(k=3)} * 12) AS INTEGER) END AS stops_at,
       CAST(CAST((100 + floor({u.format(k=4)} * 990000)) / 100 AS DECIMAL(18, 2)) AS DECIMAL(18, 4)) AS principal
FROM range(1, {loans + 1}) t(id)""")
    con.execute(f"""
CREATE TABLE loan_installments AS
SELECT l0.tenant_id, l0.id AS loan_id, n AS number,
       CAST(l0.disbursed_on + to_months(n) AS DATE) AS due_date,
       CASE
         WHEN l0.stops_at IS NOT NULL AND n >= l0.stops_at THEN NULL
         WHEN CAST(l0.disbursed_on + to_months(n) AS DATE) + late > DATE '{as_of.isoformat()}' THEN NULL
         ELSE CAST(l0.disbursed_on + to_months(n) AS DATE) + late
       END AS paid_on
FROM l0, range(1, 13) s(n),
     LATERAL (SELECT CASE WHEN (hash(l0.id * 13 + n * 31 + {seed}) % 1000) < 90
                          THEN CAST(1 + (hash(l0.id * 17 + n * 37 + {seed}) %
                                         CASE WHEN hash(l0.id * 23 + n) % 10 = 0 THEN 75 ELSE 12 END) AS INTEGER)
                          ELSE -CAST(hash(l0.id * 19 + n) % 3 AS INTEGER) END AS late) x""")
    con.execute(f"""
CREATE TABLE loans AS
SELECT l0.id, l0.tenant_id, l0.disbursed_on, l0.principal,
       CASE WHEN wo IS NOT NULL AND wo <= DATE '{as_of.isoformat()}' THEN 'written_off'
            WHEN unpaid = 0 THEN 'closed' ELSE 'active' END AS status,
       CASE WHEN wo IS NOT NULL AND wo <= DATE '{as_of.isoformat()}' THEN wo
            WHEN unpaid = 0 THEN last_paid END AS closed_on
FROM l0 JOIN (SELECT loan_id, SUM(CASE WHEN paid_on IS NULL THEN 1 ELSE 0 END) AS unpaid, MAX(paid_on) AS last_paid,
                     MIN(CASE WHEN paid_on IS NULL THEN due_date END) + 180 AS wo
              FROM loan_installments GROUP BY loan_id) a ON a.loan_id = l0.id""")
    out = {name: con.sql(f"SELECT * FROM {name} ORDER BY ALL").to_arrow_table()
           for name in ("loans", "loan_installments")}
    con.close()
    return out


def generated_population(rows: int, seed: int, *, shift: float = 0.0) -> pa.Table:
    """Scores on a coarse grid (many ties at the bin edges), a numeric feature with missing values and a
    categorical one with missing values and, when shifted, categories the other population never had."""
    rng = np.random.default_rng(seed)
    score = np.round(rng.normal(600 + 40 * shift, 50, rows) / 5) * 5
    score[rng.random(rows) < 0.01] = np.nan
    income = np.round(rng.lognormal(8 + shift, 0.6, rows), 2)
    income_missing = rng.random(rows) < 0.05
    regions = np.array(["east", "west", "north", "south", "centre", "islands"])
    region = regions[np.minimum(rng.geometric(0.45 - 0.1 * shift, rows) - 1 + int(shift > 0), len(regions) - 1)]
    region_missing = rng.random(rows) < 0.03
    return pa.table({
        "id": pa.array(np.arange(rows, dtype=np.int64)),
        "score": pa.array(score, type=pa.float64(), from_pandas=True),
        "income": pa.array(np.where(income_missing, np.nan, income), type=pa.float64(), from_pandas=True),
        "region": pa.array([None if m else str(r) for r, m in zip(region, region_missing, strict=True)],
                           type=pa.string()),
    })
