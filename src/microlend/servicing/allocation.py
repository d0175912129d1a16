"""Repayment allocation (还款顺序): which dues a payment settles first; the rest becomes a credit balance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from microlend.core.errors import ValidationError

ZERO = Decimal(0)


class Component(StrEnum):
    """A part of what a borrower owes on one installment."""

    PENALTY = "penalty"
    FEE = "fee"
    INTEREST = "interest"
    PRINCIPAL = "principal"


class AllocationTarget(StrEnum):
    """A step of an allocation order: a component, split into overdue and current where it matters."""

    PENALTY = "penalty"
    FEE = "fee"
    OVERDUE_INTEREST = "overdue_interest"
    OVERDUE_PRINCIPAL = "overdue_principal"
    CURRENT_INTEREST = "current_interest"
    CURRENT_PRINCIPAL = "current_principal"


#: penalty → fee → overdue interest → overdue principal → current interest → current principal
DEFAULT_ORDER: tuple[AllocationTarget, ...] = (
    AllocationTarget.PENALTY,
    AllocationTarget.FEE,
    AllocationTarget.OVERDUE_INTEREST,
    AllocationTarget.OVERDUE_PRINCIPAL,
    AllocationTarget.CURRENT_INTEREST,
    AllocationTarget.CURRENT_PRINCIPAL,
)


def parse_order(names: Sequence[str]) -> tuple[AllocationTarget, ...]:
    """Read a configured order; every target must appear exactly once."""
    try:
        order = tuple(AllocationTarget(n) for n in names)
    except ValueError:
        allowed = ", ".join(t.value for t in AllocationTarget)
        raise ValidationError(f"allocation_order: use each of {allowed} once", field="allocation_order") from None
    if sorted(order) != sorted(AllocationTarget):
        allowed = ", ".join(t.value for t in AllocationTarget)
        raise ValidationError(f"allocation_order: use each of {allowed} once", field="allocation_order")
    return order


@dataclass(frozen=True, slots=True)
class Due:
    """An amount still owed: one component of one installment (penalty is owed on the loan: installment 0)."""

    installment: int
    component: Component
    amount: Decimal
    overdue: bool

    @property
    def target(self) -> AllocationTarget:
        if self.component == Component.PENALTY:
            return AllocationTarget.PENALTY
        if self.component == Component.FEE:
            return AllocationTarget.FEE
        prefix = "overdue_" if self.overdue else "current_"
        return AllocationTarget(prefix + self.component.value)


@dataclass(frozen=True, slots=True)
class AllocatedPart:
    installment: int
    component: Component
    amount: Decimal


@dataclass(frozen=True)
class Allocation:
    """How one payment was split; ``credit`` is the overpayment held as the borrower's credit balance."""

    parts: tuple[AllocatedPart, ...]
    credit: Decimal

    def total(self, component: Component) -> Decimal:
        return sum((p.amount for p in self.parts if p.component == component), ZERO)

    @property
    def allocated(self) -> Decimal:
        return sum((p.amount for p in self.parts), ZERO)


def allocate(amount: Decimal, dues: Sequence[Due], order: Sequence[AllocationTarget] = DEFAULT_ORDER) -> Allocation:
    """Settle dues in ``order`` (oldest installment first within a step); never pays more than is owed."""
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise ValidationError("amount: must be a positive amount", field="amount")
    rank = {target: i for i, target in enumerate(order)}
    for due in dues:
        if due.amount < 0:
            raise ValidationError(f"dues: installment {due.installment} {due.component} is negative")
        if due.target not in rank:
            raise ValidationError(f"allocation_order: '{due.target}' is missing", field="allocation_order")
    remaining = amount
    parts: list[AllocatedPart] = []
    for due in sorted(dues, key=lambda d: (rank[d.target], d.installment)):
        if remaining == 0:
            break
        take = min(due.amount, remaining)
        if take > 0:
            parts.append(AllocatedPart(due.installment, due.component, take))
            remaining -= take
    return Allocation(tuple(parts), remaining)


def installment_dues(
    number: int, due_date: date, as_of: date, *, principal: Decimal, interest: Decimal, fee: Decimal
) -> list[Due]:
    """The unpaid parts of one installment as dues; overdue once ``as_of`` is after the due date."""
    overdue = as_of > due_date
    return [
        Due(number, component, value, overdue)
        for component, value in (
            (Component.FEE, fee),
            (Component.INTEREST, interest),
            (Component.PRINCIPAL, principal),
        )
        if value > 0
    ]
