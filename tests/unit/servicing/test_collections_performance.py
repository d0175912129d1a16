"""The figures of collections performance from the statements' rows: months, kept rate, totals (a case worked
by two collectors counted once), names; and the months a caller may ask for."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microlend.core.errors import ValidationError
from microlend.core.money import to_storage
from microlend.servicing import collections_performance as cp

LABELS = ["2025-01", "2025-02"]


def stored(amount: str) -> int:
    return to_storage(Decimal(amount))


def test_rows_become_figures_with_the_distinct_totals_of_the_statement() -> None:
    activity = [("ann", 0, 2, 3, 1, 0, 2, 0), ("bo", 0, 1, 1, 0, 1, 0, 0), ("ann", None, 2, 3, 1, 0, 2, 0),
                ("bo", None, 1, 1, 0, 1, 0, 0), (None, 0, 2, 4, 1, 1, 2, 0), (None, None, 2, 4, 1, 1, 2, 0)]
    promises = [("ann", 0, 3, 1, 1, 1, 0, stored("300.00"), stored("100.00")),
                ("bo", 1, 1, 0, 0, 0, 1, stored("50.50"), 0)]
    recovered = [("ann", 1, 2, stored("120.25")), ("bo", 0, 1, stored("0.75"))]
    closed = [("bo", 1, 2, 1)]
    r = cp.assemble(LABELS, {"ann": "Ann", "bo": ""}, activity, promises, recovered, closed)
    assert [(c.username, c.name) for c in r.collectors] == [("ann", "Ann"), ("bo", "bo")]  # no name: the username
    ann, bo = r.collectors
    assert ann.months[0].contacts_by_outcome == {"promise": 1, "refused": 0, "no_answer": 2, "wrong_number": 0}
    assert ann.months[0].kept_rate == Decimal("0.5") and ann.months[1].kept_rate is None
    assert bo.total.kept_rate is None  # a lapsed promise is no decision
    assert ann.total.amount_recovered == Decimal("120.25") and ann.months[1].repayments == 2
    assert r.by_month[0].amount_recovered == Decimal("0.75") and r.total.amount_recovered == Decimal("121.00")
    assert r.total.promised_amount == Decimal("350.50") and r.total.kept_amount == Decimal("100.00")
    assert (bo.months[1].cases_closed, bo.months[1].cases_cured, bo.months[1].cases_worked) == (2, 1, 0)
    # the sum of the collectors' cases worked is 3, the statement's distinct count 2
    assert [f.cases_worked for f in r.by_month] == [2, 0] and r.total.cases_worked == 2
    assert r.total.contacts == 4 and r.total.promises_made == 4


@settings(deadline=None)  # no time limit per example: the suite runs beside other work
@given(st.lists(st.tuples(st.sampled_from(["ann", "bo", "cy"]), st.integers(0, 1),
                          st.integers(1, 10**9).map(lambda cents: cents * 100)), max_size=12))
def test_amounts_recovered_add_up_exactly(cells: list[tuple[str, int, int]]) -> None:
    merged: dict[tuple[str, int], int] = {}
    for who, idx, amount in cells:
        merged[who, idx] = merged.get((who, idx), 0) + amount
    rows = [(who, idx, 1, amount) for (who, idx), amount in merged.items()]
    r = cp.assemble(LABELS, {}, [], [], rows, [])
    cents = sum((Decimal(a) / 10_000 for *_, a in rows), Decimal(0))  # repayments are whole cents
    assert sum((c.total.amount_recovered for c in r.collectors), Decimal(0)) == r.total.amount_recovered
    assert sum((f.amount_recovered for f in r.by_month), Decimal(0)) == r.total.amount_recovered
    assert r.total.amount_recovered == cents.quantize(Decimal("0.01"))


def test_the_months_asked_for() -> None:
    assert cp.Period.of("2024-11", "2025-02").labels == ["2024-11", "2024-12", "2025-01", "2025-02"]
    assert cp.Period.of("2024-02", "2024-02").ends == [date(2024, 2, 29)]
    assert cp.period_of("", "", date(2025, 3, 9)).labels == ["2024-10", "2024-11", "2024-12", "2025-01",
                                                             "2025-02", "2025-03"]
    assert cp.period_of("", "2025-01", date(2025, 3, 9)).labels[-1] == "2025-01"
    assert len(cp.Period.of("2020-01", "2024-12").labels) == 60
    for first, last in (("2025-13", "2025-12"), ("2025-1", "2025-02"), ("2025-03", "2025-02"),
                        ("2020-01", "2025-01"), ("x", "2025-01")):
        with pytest.raises(ValidationError):
            cp.Period.of(first, last)
