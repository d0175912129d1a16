"""Vintage curves, roll-rate matrices, flow and cure rates of a small book against figures worked out by hand
(see `hand_book`), on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest
from tests.conftest import TenantKit
from tests.integration.portfolio.hand_book import AS_OF, BOOK, MONTHS, OTHER, put_loans

from microlend.core.errors import PermissionDenied, ValidationError
from microlend.core.uow import UnitOfWork
from microlend.servicing import portfolio
from microlend.servicing.portfolio_sql import Window


@pytest.fixture
def booked(bank: TenantKit, new_tenant) -> TenantKit:  # type: ignore[no-untyped-def]
    put_loans(bank.uow_factory(), bank.tenant.id, BOOK)
    other = new_tenant()
    put_loans(other.uow_factory(), other.tenant.id, {"X": OTHER})
    return bank


def test_vintages_match_the_hand_count(booked: TenantKit, uow: UnitOfWork) -> None:
    who = booked.principal("risk_analyst")
    v = portfolio.vintages(uow, who, Window(AS_OF, MONTHS))
    by_month = {c.month: c for c in v.cohorts}
    assert list(by_month) == ["2025-01", "2025-02", "2025-03"]  # E was disbursed before the window
    jan, feb, mar = by_month["2025-01"], by_month["2025-02"], by_month["2025-03"]
    assert (jan.loans, jan.ever_30, jan.ever_90) == (4, (0, 0, 2, 2), (0, 0, 1, 1))  # A B C H; B and C; C
    assert jan.rate_30 == (Decimal("0"), Decimal("0"), Decimal("0.5"), Decimal("0.5"))
    assert jan.rate_90[2] == Decimal("0.25")
    assert (feb.loans, feb.ever_30, feb.ever_90) == (1, (0, 0, 0), (0, 0, 0))
    assert (mar.loans, mar.ever_30) == (1, (0, 0))


def test_roll_rates_match_the_hand_count(booked: TenantKit, uow: UnitOfWork) -> None:
    who = booked.principal("operations")
    r = portfolio.roll_rates(uow, who, Window(AS_OF, MONTHS))
    assert [t.month for t in r.transitions] == ["2025-02", "2025-03", "2025-04"]

    def nonzero(m: portfolio.RollMatrix) -> dict[tuple[str, str], int]:
        return {(a, b): n for a, row in m.counts.items() for b, n in row.items() if n}

    feb, mar, apr = r.transitions
    assert nonzero(feb) == {("M0", "M0"): 1, ("M0", "M1"): 3, ("M1", "M2"): 1}  # A; B C H; E
    assert nonzero(mar) == {("M0", "M0"): 1, ("M0", "paid"): 1, ("M1", "M2"): 1, ("M1", "written_off"): 1,
                            ("M1", "M0"): 1, ("M2", "M3"): 1}  # A; D; B; C; H; E
    assert nonzero(apr) == {("M0", "M1"): 1, ("M2", "M0"): 1, ("M3", "M3"): 1, ("M0", "M0"): 2}  # A; B; E; F H
    assert feb.rate("M0", "M1") == Decimal("0.75")
    assert mar.flow_rates == {"M0>M1": Decimal("0"), "M1>M2": Decimal("0.3333"), "M2>M3": Decimal("1"),
                              "M3>M3+": None, "M3+>written_off": None}
    assert mar.cure_rate == Decimal("0.25")  # H of B C H E
    assert apr.cure_rate == Decimal("0.5")  # B of B E
    assert nonzero(r.total)[("M0", "M0")] == 4 and r.total.row_total("M0") == 4 + 2 + 3  # by month
    assert r.total.rate("M1", "written_off") == Decimal("0.25")  # C of E (Jan), B C H (Feb)


def test_only_risk_operations_and_administrators_see_the_figures(booked: TenantKit, uow: UnitOfWork) -> None:
    for role in ("credit_officer", "collector", "marketer", "auditor"):
        with pytest.raises(PermissionDenied):
            portfolio.vintages(uow, booked.principal(role), Window(AS_OF, MONTHS))
        with pytest.raises(PermissionDenied):
            portfolio.roll_rates(uow, booked.principal(role), Window(AS_OF, MONTHS))
    assert portfolio.vintages(uow, booked.principal("admin"), Window(AS_OF, MONTHS)).cohorts


def test_a_window_has_two_to_sixty_months() -> None:
    for months in (0, 1, 61):
        with pytest.raises(ValidationError):
            Window(AS_OF, months)
