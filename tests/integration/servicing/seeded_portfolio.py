"""A seeded portfolio of scheduled loans as it stands on a business date, for the close-of-business parity tests:
past installments paid except a delinquent loan's (some partly paid), the current period accrued to the day
before, loans more than 90 days past due already non-accrual, mixed grace periods and compound interest, and
deferred fees amortising on some loans. The same seed gives the same portfolio in any bank."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np
from sqlalchemy import Engine, select

from microlend.core.db import make_session_factory
from microlend.servicing.batch_schedules import batch_schedules
from microlend.servicing.tables import InstallmentRow, LoanRow, ProductRow

METHODS = ["equal-installment", "equal-principal", "interest-only", "bullet"]
ORDER = ["penalty", "fee", "overdue_interest", "overdue_principal", "current_interest", "current_principal"]


def _cents(value: int) -> Decimal:
    return Decimal(int(value)) / 100


def seed_portfolio(engine: Engine, tenant_id: int, n: int, seed: int, on: date) -> list[int]:
    """``n`` loans of the bank, open on business date ``on``; returns their ids in generation order."""
    rng = np.random.default_rng(seed)
    b = on.toordinal()
    method = rng.choice(4, size=n, p=[0.45, 0.25, 0.15, 0.15]).astype(np.int64)
    term = rng.choice(np.array([3, 6, 12]), size=n).astype(np.int64)
    term = np.where(method == 3, np.minimum(term, 6), term)
    principal = (rng.integers(1_000, 80_000, size=n) * 100).astype(np.int64)
    rate_e6 = rng.integers(43_500, 180_000, size=n).astype(np.int64)
    age = (rng.random(n) * (term * 30 - 3)).astype(np.int64) + 1
    start = b - age
    delinquent = rng.random(n) < 0.25
    first_missed = rng.integers(1, 4, size=n)
    grace = rng.choice(np.array([0, 0, 3]), size=n)
    compound = rng.random(n) < 0.5
    with_fee = rng.random(n) < 0.2
    starts = [date.fromordinal(int(s)) for s in start]
    sched = batch_schedules(principal, rate_e6, term, method, starts)
    loan = sched.loan
    missed = delinquent[loan] & (sched.number >= first_missed[loan]) & (sched.due_day < b)
    paid = (sched.due_day < b) & ~missed
    days = sched.due_day - sched.start_day
    elapsed = np.clip(b - sched.start_day, 0, days)
    accrued = np.where(days > 0, (2 * sched.interest * elapsed + days) // np.maximum(2 * days, 1), sched.interest)
    accrued = np.where(sched.start_day >= b, 0, accrued)
    partly = missed & (rng.random(len(loan)) < 0.3)  # some missed installments partly paid
    fee = np.where(with_fee[loan], sched.principal // 100, 0)
    oldest = np.full(n, b, dtype=np.int64)
    np.minimum.at(oldest, loan[missed], sched.due_day[missed])
    non_accrual = b - 1 - oldest > 90
    maturity = np.zeros(n, dtype=np.int64)
    np.maximum.at(maturity, loan, sched.due_day)
    session = make_session_factory(engine)()
    try:
        products = session.execute(
            select(ProductRow.id).where(ProductRow.tenant_id == tenant_id)
        ).scalars().all()
        rows = [
            LoanRow(
                tenant_id=tenant_id, product_id=products[0], method=METHODS[int(method[k])], currency="CNY",
                principal=_cents(principal[k]), annual_rate=Decimal(int(rate_e6[k])) / 10**6,
                rate_e8=int(rate_e6[k]) * 100, penalty_rate_e8=int(rate_e6[k]) * 150, grace_days=int(grace[k]),
                compound_interest=bool(compound[k]), term_months=int(term[k]), fee_mode="deduct",
                allocation_order=ORDER, disbursed_on=starts[k], maturity_date=date.fromordinal(int(maturity[k])),
                status="active", accrual_status="non-accrual" if non_accrual[k] else "accruing",
                created_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
            for k in range(n)
        ]
        session.add_all(rows)
        session.flush()
        ids = [r.id for r in rows]
        session.add_all(
            InstallmentRow(
                tenant_id=tenant_id, loan_id=ids[int(loan[j])], number=int(sched.number[j]),
                period_start=date.fromordinal(int(sched.start_day[j])),
                due_date=date.fromordinal(int(sched.due_day[j])), start_day=int(sched.start_day[j]),
                due_day=int(sched.due_day[j]), principal=_cents(sched.principal[j]),
                interest=_cents(sched.interest[j]),
                principal_paid=_cents(sched.principal[j] if paid[j] else sched.principal[j] // 3 if partly[j] else 0),
                interest_paid=_cents(sched.interest[j] if paid[j] else 0),
                interest_accrued=_cents(sched.interest[j] if paid[j] or missed[j] else accrued[j]),
                status="paid" if paid[j] else "overdue" if missed[j] else "pending",
                paid_on=date.fromordinal(int(sched.due_day[j])) if paid[j] else None,
                fee_amortisation=_cents(fee[j]), fee_amortised=_cents(fee[j] if paid[j] or missed[j] else 0),
            )
            for j in range(len(loan))
        )
        session.commit()
    finally:
        session.close()
    return ids

