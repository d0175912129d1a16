"""Close of business with deferred fees: the portfolio of bench_cob.py, where every non-revolving loan carries
an upfront fee of about 1 % spread over its installments (the effective-interest shares are stood in by equal
shares: the step's cost does not depend on their values), closed for a few dates in a fresh process. Prints the
seconds of the fee-amortisation step and of the revolving step (daily-balance product and monthly settlement)
beside the whole run's.

Run: .venv/bin/python bench/bench_fee_amortisation.py [--loans 100000] [--days 3] [--backend sqlite|postgresql]"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import bench_cob  # type: ignore[import-not-found]
from sqlalchemy import text

from microlend.core.db import make_engine

BUSINESS_DAY = bench_cob.BUSINESS_DATE.toordinal()


def add_fees(url: str) -> int:
    """Give every non-revolving loan's installments a fee share (1 % of the principal over its term); what fell
    due before the business date is amortised already, the current period to the day before."""
    engine = make_engine(url)
    with engine.begin() as c:
        c.execute(text(
            "UPDATE loan_installments SET fee_amortisation = 100 * ((SELECT l.principal / 100 / 100 / l.term_months "
            "FROM loans l WHERE l.id = loan_installments.loan_id)) WHERE loan_id IN "
            "(SELECT id FROM loans WHERE method <> 'revolving')"))
        c.execute(text(
            "UPDATE loan_installments SET fee_amortised = CASE WHEN due_day <= :b THEN fee_amortisation "
            "WHEN start_day >= :b THEN 0 ELSE 100 * ((fee_amortisation / 100) * (:b - start_day) "
            "/ (due_day - start_day)) END"), {"b": BUSINESS_DAY})
        rows = int(c.execute(text(
            "SELECT COUNT(*) FROM loan_installments WHERE fee_amortised < fee_amortisation")).scalar() or 0)
    engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loans", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    print(f"{args.backend}: {args.loans:,} active loans, fees on the non-revolving ones")
    url, cleanup = bench_cob.prepare(args.backend, args.loans)
    try:
        print(f"  {add_fees(url):,} installments still carrying a deferred fee")
        proc = subprocess.run([sys.executable, "-c", bench_cob.CHILD, url, str(args.days)], capture_output=True,
                              text=True, check=False)
        if proc.returncode != 0:
            print(proc.stderr)
            return
        for r in json.loads(proc.stdout.strip().splitlines()[-1])["runs"]:
            steps = r["steps"]
            print(f"  COB {r['date']}: {r['loans']:,} loans in {r['seconds']:.2f}s; fee amortisation "
                  f"{steps.get('fee_amortisation', 0):.2f}s, revolving {steps.get('revolving', 0):.2f}s")
    finally:
        cleanup()


if __name__ == "__main__":
    main()
