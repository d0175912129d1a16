"""The vectorised portfolio path gives exactly the reference schedules, row by row."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microlend.core.errors import ValidationError
from microlend.servicing.batch_schedules import METHOD_CODES, batch_schedules
from microlend.servicing.schedules import RepaymentMethod, build_schedule

CODES = {code: method for method, code in METHOD_CODES.items()}


def assert_equals_reference(
    principals: list[int], rates: list[int], terms: list[int], methods: list[int], starts: list[date],
    days: list[int] | None = None,
) -> None:
    batch = batch_schedules(
        np.array(principals, dtype=np.int64),
        np.array(rates, dtype=np.int64),
        np.array(terms, dtype=np.int64),
        np.array(methods, dtype=np.int64),
        starts,
        None if days is None else np.array(days, dtype=np.int64),
    )
    row = 0
    for i in range(len(principals)):
        reference = build_schedule(
            CODES[methods[i]], Decimal(principals[i]) / 100, Decimal(rates[i]) / 10**6, terms[i], starts[i],
            repayment_day=(days[i] or None) if days else None,
        )
        for inst in reference.installments:
            assert int(batch.loan[row]) == i
            assert int(batch.number[row]) == inst.number
            assert int(batch.start_day[row]) == inst.period_start.toordinal()
            assert int(batch.due_day[row]) == inst.due_date.toordinal()
            assert Decimal(int(batch.principal[row])) / 100 == inst.principal
            assert Decimal(int(batch.interest[row])) / 100 == inst.interest
            row += 1
    assert row == len(batch)


class TestBatchEqualsReference:
    def test_a_seeded_mixed_portfolio(self) -> None:
        rng = random.Random(7)
        n = 400
        starts = [date(2025, 1, 1) + timedelta(days=rng.randrange(730)) for _ in range(n)]
        assert_equals_reference(
            [rng.randrange(100_000, 50_000_000) for _ in range(n)],
            [rng.randrange(0, 240_000) for _ in range(n)],
            [rng.choice([1, 3, 6, 12, 24, 36]) for _ in range(n)],
            [rng.randrange(4) for _ in range(n)],
            starts,
        )

    @settings(max_examples=60, deadline=None)
    @given(
        loans=st.lists(
            st.tuples(
                st.integers(10_000, 100_000_000),
                st.integers(0, 360_000),
                st.integers(1, 60),
                st.sampled_from(sorted(CODES)),
                st.dates(date(2024, 1, 1), date(2030, 12, 31)),
            ),
            min_size=1,
            max_size=20,
        )
    )
    def test_any_loans(self, loans: list[tuple[int, int, int, int, date]]) -> None:
        principals, rates, terms, methods, starts = (list(x) for x in zip(*loans, strict=True))
        assert_equals_reference(principals, rates, terms, methods, starts)

    def test_month_end_starts_clamp(self) -> None:
        assert_equals_reference(
            [1_000_000], [120_000], [3], [METHOD_CODES[RepaymentMethod.EQUAL_PRINCIPAL]], [date(2028, 1, 31)]
        )

    def test_a_seeded_portfolio_on_fixed_repayment_days(self) -> None:
        rng = random.Random(11)
        n = 300
        methods = [rng.randrange(3) for _ in range(n)]  # a bullet loan takes no repayment day
        assert_equals_reference(
            [rng.randrange(100_000, 50_000_000) for _ in range(n)],
            [rng.randrange(0, 240_000) for _ in range(n)],
            [rng.choice([1, 3, 6, 12, 24, 36]) for _ in range(n)],
            methods,
            [date(2025, 1, 1) + timedelta(days=rng.randrange(730)) for _ in range(n)],
            [rng.choice([0, 1, 5, 10, 15, 20, 25, 28]) for _ in range(n)],
        )

    @settings(max_examples=60, deadline=None)
    @given(
        loans=st.lists(
            st.tuples(
                st.integers(10_000, 100_000_000),
                st.integers(0, 360_000),
                st.integers(1, 60),
                st.sampled_from(sorted(CODES)),
                st.dates(date(2024, 1, 1), date(2030, 12, 31)),
                st.integers(0, 28),
            ),
            min_size=1,
            max_size=20,
        )
    )
    def test_any_loans_with_or_without_a_repayment_day(self, loans: list[tuple[int, int, int, int, date, int]]) -> None:
        principals, rates, terms, methods, starts, days = (list(x) for x in zip(*loans, strict=True))
        bullet = METHOD_CODES[RepaymentMethod.BULLET]
        days = [0 if m == bullet else d for m, d in zip(methods, days, strict=True)]
        assert_equals_reference(principals, rates, terms, methods, starts, days)

    def test_a_bullet_loan_on_a_repayment_day_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="bullet"):
            batch_schedules(np.array([100_000]), np.array([100_000]), np.array([3]),
                            np.array([METHOD_CODES[RepaymentMethod.BULLET]]), [date(2026, 1, 10)], np.array([20]))
