"""Schedule generation speed for 12-month loans: the Decimal reference one loan at a time, and the
vectorised portfolio path. Run: .venv/bin/python bench/bench_schedules.py [loans]"""

from __future__ import annotations

import random
import sys
import time
from datetime import date, timedelta
from decimal import Decimal

import numpy as np

from microlend.servicing.batch_schedules import batch_schedules
from microlend.servicing.schedules import RepaymentMethod, build_schedule

METHODS = [m for m in RepaymentMethod if m != RepaymentMethod.REVOLVING]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    rng = random.Random(42)
    principals = [rng.randrange(100_000, 30_000_000) for _ in range(n)]  # cents: 1,000 to 300,000 CNY
    rates = [rng.randrange(43_500, 180_000) for _ in range(n)]  # 4.35% to 18%
    starts = [date(2026, 1, 1) + timedelta(days=rng.randrange(365)) for _ in range(n)]
    codes = [rng.randrange(4) for _ in range(n)]
    print(f"{n:,} loans of 12 months, mixed methods")

    for label, only in (("equal-installment only", 0), ("mixed methods", None)):
        t0 = time.perf_counter()
        for i in range(n):
            method = METHODS[codes[i]] if only is None else METHODS[only]
            build_schedule(method, Decimal(principals[i]) / 100, Decimal(rates[i]) / 10**6, 12, starts[i])
        elapsed = time.perf_counter() - t0
        print(f"reference (Decimal, one loan at a time), {label}: {n / elapsed:,.0f} schedules/s")

    t0 = time.perf_counter()
    batch = batch_schedules(
        np.array(principals, dtype=np.int64),
        np.array(rates, dtype=np.int64),
        np.full(n, 12, dtype=np.int64),
        np.array(codes, dtype=np.int64),
        starts,
    )
    elapsed = time.perf_counter() - t0
    print(f"vectorised portfolio path, mixed methods: {n / elapsed:,.0f} schedules/s ({len(batch):,} rows)")

    # 固定还款日: the same loans (bullet ones as equal installment) on a fixed repayment day, broken first period
    fixed_codes = [c if c != 3 else 0 for c in codes]
    days = [rng.randrange(1, 29) for _ in range(n)]
    t0 = time.perf_counter()
    for i in range(n):
        build_schedule(METHODS[fixed_codes[i]], Decimal(principals[i]) / 100, Decimal(rates[i]) / 10**6, 12,
                       starts[i], repayment_day=days[i])
    elapsed = time.perf_counter() - t0
    print(f"reference on a fixed repayment day: {n / elapsed:,.0f} schedules/s")
    t0 = time.perf_counter()
    batch = batch_schedules(
        np.array(principals, dtype=np.int64),
        np.array(rates, dtype=np.int64),
        np.full(n, 12, dtype=np.int64),
        np.array(fixed_codes, dtype=np.int64),
        starts,
        np.array(days, dtype=np.int64),
    )
    elapsed = time.perf_counter() - t0
    print(f"vectorised on a fixed repayment day: {n / elapsed:,.0f} schedules/s ({len(batch):,} rows)")


if __name__ == "__main__":
    main()
