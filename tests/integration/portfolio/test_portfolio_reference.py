"""The set-based figures against a day-by-day reference on a seeded random book: each loan walked through
every day with `delinquency.days_past_due`, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from tests.conftest import TenantKit
from tests.integration.portfolio.hand_book import Loan, put_loans

from microlend.core.uow import UnitOfWork
from microlend.servicing import portfolio
from microlend.servicing.delinquency import days_past_due, delinquency_bucket
from microlend.servicing.portfolio_sql import Window

AS_OF = date(2025, 9, 20)
WINDOW = Window(AS_OF, 9)


def random_book(seed: int, loans: int) -> dict[str, Loan]:
    rng = random.Random(seed)
    book: dict[str, Loan] = {}
    for n in range(loans):
        disbursed = date(2024, 11, 1) + timedelta(days=rng.randrange(320))
        installments: list[tuple[date, date | None]] = []
        stop = rng.random() < 0.25
        for k in range(1, rng.randint(1, 6) + 1):
            due = disbursed + timedelta(days=30 * k)
            late = rng.choice([0, 0, 0, -2, 3, 15, 29, 30, 31, 45, 61, 90, 91, 120])
            paid: date | None = None if stop and rng.random() < 0.5 else due + timedelta(days=late)
            if paid is not None and paid > AS_OF:
                paid = None
            installments.append((due, paid))
        unpaid = [due for due, paid in installments if paid is None]
        status, closed = "active", None
        if unpaid and unpaid[0] + timedelta(days=100) <= AS_OF and rng.random() < 0.6:
            status, closed = "written_off", unpaid[0] + timedelta(days=100)
            installments = [(due, paid if paid is not None and paid < closed else None) for due, paid in installments]
        elif not unpaid:
            status, closed = "closed", max(paid for _, paid in installments if paid is not None)
        book[f"L{n}"] = (disbursed, status, closed, installments)
    return book


def state(loan: Loan, on: date) -> str:
    _disbursed, status, closed, installments = loan
    if closed is not None and closed <= on:
        return "written_off" if status == "written_off" else "paid"
    oldest = min((due for due, paid in installments if due < on and (paid is None or paid > on)), default=None)
    return delinquency_bucket(days_past_due(oldest, on))


def first_day_over(loan: Loan, days: int) -> date | None:
    """The first day the loan was more than `days` (30 or 90) days past due; a write-off counts from its day."""
    disbursed, status, closed, _installments = loan
    worse = {"M2", "M3", "M3+"} if days == 30 else {"M3+"}
    d = disbursed
    while d <= AS_OF and (closed is None or d < closed):
        if state(loan, d) in worse:
            return d
        d += timedelta(days=1)
    return closed if status == "written_off" else None


@pytest.mark.parametrize("seed", [11, 12])
def test_the_figures_equal_a_day_by_day_walk(bank: TenantKit, uow: UnitOfWork, seed: int) -> None:
    book = random_book(seed, 60)
    put_loans(bank.uow_factory(), bank.tenant.id, book)
    who = bank.principal("risk_analyst")
    ends, labels = WINDOW.ends, WINDOW.labels

    expected_cohorts = {}
    for c, start in enumerate(WINDOW.starts):
        members = [loan for loan in book.values() if start <= loan[0] <= ends[c]]
        if not members:
            continue
        f30 = [first_day_over(loan, 30) for loan in members]
        f90 = [first_day_over(loan, 90) for loan in members]
        expected_cohorts[labels[c]] = (
            len(members),
            tuple(sum(1 for f in f30 if f is not None and f <= ends[k]) for k in range(c, len(ends))),
            tuple(sum(1 for f in f90 if f is not None and f <= ends[k]) for k in range(c, len(ends))))
    got = {c.month: (c.loans, c.ever_30, c.ever_90) for c in portfolio.vintages(uow, who, WINDOW).cohorts}
    assert got == expected_cohorts
    assert any(sum(v[1]) for v in got.values())  # the book has loans that went 30+

    rolls = portfolio.roll_rates(uow, who, WINDOW)
    for j, m in enumerate(rolls.transitions, 1):
        expected: dict[tuple[str, str], int] = {}
        for loan in book.values():
            if loan[0] <= ends[j - 1] and state(loan, ends[j - 1]) not in ("paid", "written_off"):
                key = (state(loan, ends[j - 1]), state(loan, ends[j]))
                expected[key] = expected.get(key, 0) + 1
        assert {(a, b): n for a, row in m.counts.items() for b, n in row.items() if n} == expected, m.month
