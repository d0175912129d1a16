"""Allocation of a repayment across dues, in the product's order; overpayment becomes a credit balance."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microlend.core.errors import ValidationError
from microlend.servicing.allocation import (
    DEFAULT_ORDER,
    AllocationTarget,
    Component,
    Due,
    allocate,
    installment_dues,
    parse_order,
)

D = Decimal


def dues() -> list[Due]:
    return [
        Due(0, Component.PENALTY, D("5.00"), True),
        Due(1, Component.INTEREST, D("100.00"), True),
        Due(1, Component.PRINCIPAL, D("788.49"), True),
        Due(2, Component.INTEREST, D("92.12"), False),
        Due(2, Component.PRINCIPAL, D("796.37"), False),
    ]


class TestDefaultOrder:
    def test_penalty_then_overdue_interest_then_overdue_principal_then_current(self) -> None:
        result = allocate(D("200.00"), dues())
        assert [(p.installment, p.component, p.amount) for p in result.parts] == [
            (0, Component.PENALTY, D("5.00")),
            (1, Component.INTEREST, D("100.00")),
            (1, Component.PRINCIPAL, D("95.00")),
        ]
        assert result.credit == 0

    def test_current_interest_before_current_principal(self) -> None:
        result = allocate(D("1000.00"), dues())
        assert result.total(Component.INTEREST) == D("100.00") + D("92.12")
        assert result.total(Component.PRINCIPAL) == D("788.49") + D("14.39")

    def test_overpayment_is_held_as_credit(self) -> None:
        result = allocate(D("2000.00"), dues())
        assert result.allocated == D("1781.98")
        assert result.credit == D("218.02")

    def test_a_configured_order_is_followed(self) -> None:
        order = parse_order(
            [
                "overdue_principal",
                "overdue_interest",
                "penalty",
                "fee",
                "current_principal",
                "current_interest",
            ]
        )
        result = allocate(D("800.00"), dues(), order)
        assert result.parts[0].component == Component.PRINCIPAL and result.parts[0].amount == D("788.49")

    def test_an_incomplete_order_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="allocation_order"):
            parse_order(["penalty"])

    def test_zero_or_negative_payments_are_refused(self) -> None:
        with pytest.raises(ValidationError, match="amount"):
            allocate(D("0"), dues())

    def test_an_installment_is_overdue_only_after_its_due_date(self) -> None:
        on_time = installment_dues(1, date(2026, 2, 15), date(2026, 2, 15), principal=D(1), interest=D(1), fee=D(0))
        late = installment_dues(1, date(2026, 2, 15), date(2026, 2, 16), principal=D(1), interest=D(1), fee=D(0))
        assert {d.target for d in on_time} == {
            AllocationTarget.CURRENT_INTEREST,
            AllocationTarget.CURRENT_PRINCIPAL,
        }
        assert {d.target for d in late} == {
            AllocationTarget.OVERDUE_INTEREST,
            AllocationTarget.OVERDUE_PRINCIPAL,
        }


due_strategy = st.builds(
    Due,
    st.integers(0, 12),
    st.sampled_from(list(Component)),
    st.decimals(D("0"), D("10000"), places=2),
    st.booleans(),
)


class TestAllocationProperties:
    @given(
        amount=st.decimals(D("0.01"), D("50000"), places=2),
        owed=st.lists(due_strategy, max_size=12),
        order=st.permutations(list(AllocationTarget)),
    )
    def test_allocation_never_makes_anything_negative_and_accounts_for_every_cent(
        self,
        amount: Decimal,
        owed: list[Due],
        order: list[AllocationTarget],
    ) -> None:
        result = allocate(amount, owed, order)
        assert result.credit >= 0
        assert all(p.amount > 0 for p in result.parts)
        assert result.allocated + result.credit == amount
        for due in owed:  # never more than owed on any due
            paid = sum(
                p.amount for p in result.parts if p.installment == due.installment and p.component == due.component
            )
            owed_same = sum(d.amount for d in owed if d.installment == due.installment and d.component == due.component)
            assert paid <= owed_same
        total_owed = sum(d.amount for d in owed)
        assert result.credit == max(amount - total_owed, D(0))

    def test_default_order_lists_every_target(self) -> None:
        assert sorted(DEFAULT_ORDER) == sorted(AllocationTarget)
