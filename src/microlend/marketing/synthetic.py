"""A seeded synthetic customer base (模拟客群) for demos, tests and benchmarks of marketing: the feature
library's source tables plus a marketing profile (consent, turnover, bureau profile for the starter
scorecard). The same seed always gives the same tables."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa

EPOCH = np.datetime64("1970-01-01", "D")
INDUSTRIES = ["retail", "farming", "catering", "transport", "repair", "manufacturing"]


def _days(values: np.ndarray) -> pa.Array:
    return pa.array(values.astype("int32"), pa.int32()).cast(pa.date32())


def _money(yuan: np.ndarray) -> pa.Array:
    """Whole-yuan amounts as exact decimals (integers cast, never through float)."""
    return pa.array(yuan.astype("int64")).cast(pa.decimal128(38, 4)).cast(pa.decimal128(18, 4))


def customer_base(n: int, *, seed: int = 7, as_of: date = date(2026, 3, 1), loans_per_customer: float = 0.6
                  ) -> tuple[dict[str, pa.Table], pa.Table]:
    """(source tables for `compute_features`, profile table keyed by customer_id)."""
    rng = np.random.default_rng(seed)
    end = (np.datetime64(as_of) - EPOCH).astype(int)
    start = end - 6 * 365
    created = rng.integers(start, end - 30, n)
    ids = np.arange(1, n + 1, dtype="int64")
    customers = pa.table({
        "customer_id": pa.array(ids),
        "created_at": pa.array(created.astype("int64") * 86_400_000_000, pa.timestamp("us", tz="UTC")),
        "birth_date": _days(created - rng.integers(20 * 365, 64 * 365, n)),
        "industry": pa.array(rng.choice(INDUSTRIES, n)),
    })
    per = rng.poisson(loans_per_customer, n)
    m = int(per.sum())
    owner = np.repeat(ids, per)
    owner_created = np.repeat(created, per)
    disbursed = owner_created + (rng.random(m) * (end - owner_created)).astype("int64")
    term = rng.choice([3, 6, 12], m, p=[0.1, 0.3, 0.6])
    closed = np.where(disbursed + term * 30 < end, disbursed + term * 30, -1)
    loans = pa.table({
        "loan_id": pa.array(np.arange(1, m + 1, dtype="int64")),
        "customer_id": pa.array(owner),
        "disbursed_at": _days(disbursed),
        "principal": _money(rng.integers(5_000, 80_000, m)),
        "status": pa.array(np.where(closed >= 0, "closed", "open")),
        "closed_at": pa.array(np.where(closed >= 0, closed, 0).astype("int32"), pa.int32(), mask=closed < 0)
        .cast(pa.date32()),
    })
    k = int(term.sum())
    loan_of = np.repeat(np.arange(1, m + 1, dtype="int64"), term)
    seq = np.arange(k) - np.repeat(np.cumsum(term) - term, term) + 1
    due = np.repeat(disbursed, term) + seq * 30
    roll = rng.random(k)
    paid = np.where(roll < 0.9, due - rng.integers(0, 5, k), np.where(roll < 0.98, due + rng.integers(1, 60, k), -1))
    paid = np.where(paid > end, -1, paid)
    installments = pa.table({
        "loan_id": pa.array(loan_of),
        "due_date": _days(due),
        "paid_date": pa.array(np.where(paid >= 0, paid, 0).astype("int32"), pa.int32(), mask=paid < 0)
        .cast(pa.date32()),
        "amount_due": _money(np.full(k, 1_000)),
        "amount_paid": _money(np.full(k, 1_000)),
    })
    tables = {"customers": customers, "loans": loans, "installments": installments}
    return tables, profile(n, seed=seed + 1)


def profile(n: int, *, seed: int = 8) -> pa.Table:
    """Marketing profile: consent, turnover, business age, bureau flags, officer, and a bureau-style
    profile drawn from the German credit data so the starter scorecard has its characteristics."""
    rng = np.random.default_rng(seed)
    cols: dict[str, pa.Array] = {
        "customer_id": pa.array(np.arange(1, n + 1, dtype="int64")),
        "marketing_consent": pa.array(rng.random(n) < 0.85),
        "annual_turnover": _money(np.round(rng.lognormal(12.6, 0.8, n), -3)),
        "years_in_business": pa.array(rng.integers(0, 20, n).astype("float64")),
        "bureau_data_present": pa.array(rng.random(n) < 0.9),
        "blacklisted": pa.array(rng.random(n) < 0.01),
        "overdue_elsewhere": pa.array(rng.random(n) < 0.03),
        "officer_user_id": pa.array(rng.integers(1, 6, n).astype("int64")),
    }
    from microlend.risk.datasets import german_credit

    german = german_credit().frame
    rows = rng.integers(0, len(german), n)
    for name in ("status_of_existing_checking_account", "duration_in_month", "credit_history",
                 "savings_account_and_bonds", "present_employment_since", "property", "purpose", "credit_amount",
                 "other_installment_plans", "housing", "installment_rate_in_percentage_of_disposable_income"):
        values = german[name].to_numpy()[rows]
        if values.dtype.kind in "iuf":
            cols[name] = pa.array(values.astype("float64"))
        else:
            cols[name] = pa.array(values.astype(str)).dictionary_encode()
    return pa.table(cols)
