"""Generated, seeded source tables for the batch jobs' tests on both engines."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa

AS_OF = date(2024, 2, 29)  # a leap day: month and year arithmetic at the month's end
EPOCH = np.datetime64("1970-01-01", "D")
UTC = pa.timestamp("us", tz="UTC")
MONEY = pa.decimal128(18, 4)


def _days(values: np.ndarray) -> pa.Array:
    return pa.array(values.astype("int32"), pa.int32()).cast(pa.date32())


def _money(ten_thousandths: np.ndarray) -> pa.Array:
    """Exact decimals with four places from integer ten-thousandths (never through a float)."""
    return pa.array(ten_thousandths.astype("int64")).cast(pa.decimal128(38, 4)).cast(MONEY)


def _seconds(values: np.ndarray) -> pa.Array:
    return pa.array(values.astype("int64") * 1_000_000, UTC)


def portfolio(n: int, seed: int) -> dict[str, pa.Table]:
    """All six source tables with the edges that tell dialects apart: events on the as-of day's last second
    and the next day's first, month ends, 29 February birthdays, unpaid and late installments, credit line
    snapshots after the as-of date, zero limits, and external reports from several sources."""
    rng = np.random.default_rng(seed)
    end = int((np.datetime64(AS_OF) - EPOCH).astype(int))
    ids = np.arange(1, n + 1, dtype="int64")
    created_day = rng.integers(end - 6 * 365, end + 5, n)  # a few known only after the as-of date
    created_sec = created_day * 86_400 + rng.integers(0, 86_400, n)
    created_sec[:3] = [end * 86_400 + 86_399, (end + 1) * 86_400, end * 86_400]  # the day's edges
    birth = created_day - rng.integers(18 * 365, 70 * 365, n)
    birth[3:6] = (np.array(["1992-02-29", "2000-02-29", "1984-03-01"], dtype="datetime64[D]") - EPOCH).astype(int)
    customers = pa.table({
        "customer_id": pa.array(ids),
        "created_at": _seconds(created_sec),
        "birth_date": pa.array(birth.astype("int32"), pa.int32(), mask=rng.random(n) < 0.05).cast(pa.date32()),
        "industry": pa.array(rng.choice(["retail", "farming", "food"], n)),
    })
    per = rng.poisson(1.2, n)
    m = int(per.sum())
    owner = np.repeat(ids, per)
    disbursed = np.repeat(created_day, per) + rng.integers(0, 700, m)
    term = rng.choice([3, 6, 12], m)
    closed = np.where(rng.random(m) < 0.4, disbursed + term * 30, -1)
    loans = pa.table({
        "loan_id": pa.array(np.arange(1, m + 1, dtype="int64")),
        "customer_id": pa.array(owner),
        "disbursed_at": _days(disbursed),
        "principal": _money(rng.integers(5_000, 80_000, m) * 10_000 + rng.integers(0, 10_000, m)),
        "status": pa.array(np.where(closed >= 0, "closed", "open")),
        "closed_at": pa.array(np.where(closed >= 0, closed, 0).astype("int32"), pa.int32(), mask=closed < 0)
        .cast(pa.date32()),
    })
    k = int(term.sum())
    loan_of = np.repeat(np.arange(1, m + 1, dtype="int64"), term)
    seq = np.arange(k) - np.repeat(np.cumsum(term) - term, term) + 1
    due = np.repeat(disbursed, term) + seq * 30
    due[::17] = end  # due on the as-of date itself
    roll = rng.random(k)
    paid = np.where(roll < 0.8, due - rng.integers(0, 5, k), np.where(roll < 0.95, due + rng.integers(1, 90, k), -1))
    installments = pa.table({
        "loan_id": pa.array(loan_of),
        "due_date": _days(due),
        "paid_date": pa.array(np.where(paid >= 0, paid, 0).astype("int32"), pa.int32(), mask=paid < 0)
        .cast(pa.date32()),
        "amount_due": _money(rng.integers(1, 10_000_000, k)),
        "amount_paid": _money(rng.integers(0, 10_000_000, k)),
    })
    lines_of = rng.choice(ids, 2 * n)
    line_day = end - rng.integers(-40, 400, 2 * n)
    limit = rng.integers(0, 50, 2 * n) * 1_000 * 10_000
    credit_lines = pa.table({
        "customer_id": pa.array(lines_of),
        "limit": _money(limit),
        "used": _money((limit * rng.random(2 * n)).astype("int64")),
        "as_of": _days(line_day),
    })
    apps = rng.choice(ids, 3 * n)
    app_sec = (end - rng.integers(-10, 120, 3 * n)) * 86_400 + rng.integers(0, 86_400, 3 * n)
    app_sec[:2] = [(end - 89) * 86_400, (end - 90) * 86_400 - 1]  # the 90-day window's edges
    applications = pa.table({
        "customer_id": pa.array(apps),
        "submitted_at": _seconds(app_sec),
        "outcome": pa.array(rng.choice(["approved", "declined", "referred", "withdrawn"], 3 * n)),
    })
    # unique report times per customer and source, so "the newest report" is defined
    x = 2 * n
    observed = (end - rng.integers(-20, 800, x)) * 86_400 + np.arange(x)
    external_scores = pa.table({
        "customer_id": pa.array(rng.choice(ids, x)),
        "source": pa.array(rng.choice(["bureau", "tax"], x)),
        "observed_at": _seconds(observed),
        "score": pa.array(rng.normal(600, 50, x).round(3)),
    })
    return {"customers": customers, "loans": loans, "installments": installments, "credit_lines": credit_lines,
            "applications": applications, "external_scores": external_scores}
