"""The unit cost's arithmetic: actions counted from what an application's row records, hours priced under
the stated assumptions, parts that add up to the total exactly."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from microlend.origination.unit_cost import DEFAULT_ASSUMPTIONS, CostAssumptions, StaffActions, UnitCost, staff_actions

A = DEFAULT_ASSUMPTIONS
cents = st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False, allow_infinity=False)


def test_an_application_decided_by_the_engine_took_no_one_any_time() -> None:
    assert staff_actions("approved", True, None, [], {}) == StaffActions()
    assert staff_actions("declined", True, None, [], {}).minutes(A) == 0


def test_a_referred_case_counts_its_recommendation_each_approval_and_the_field_visit() -> None:
    two = staff_actions("approved", False, 7, [8, 9], {"premises": "owned"})
    assert two == StaffActions(cases=1, recommendations=1, decisions=2, field_visits=1)
    assert two.minutes(A) == 20 + 2 * 10 + 60
    declined = staff_actions("declined", False, 7, [], {})
    assert declined == StaffActions(cases=1, recommendations=1, decisions=1, field_visits=0)
    waiting = staff_actions("recommended", False, 7, [], {})
    assert waiting.minutes(A) == 20  # recommended, no approver yet


def test_hours_are_priced_exactly() -> None:
    assert A.cpu_cost(3_600_000) == Decimal("0.50")
    assert A.staff_cost(90) == Decimal(90)
    assert CostAssumptions(staff_hour_cost=Decimal("45")).staff_cost(20) == Decimal(15)


@given(
    provider=cents,
    staff_minutes=st.integers(0, 100_000),
    cpu=st.integers(0, 10**9),
    cob=st.integers(0, 10**9),
    loans=st.integers(0, 10_000),
)
def test_the_parts_add_up_to_the_total_and_the_cost_per_loan_carries_it(
    provider: Decimal, staff_minutes: int, cpu: int, cob: int, loans: int
) -> None:
    at = datetime(2026, 11, 1, tzinfo=UTC)
    decision, staff, servicing = A.cpu_cost(cpu), A.staff_cost(staff_minutes), A.cpu_cost(cob)
    c = UnitCost(
        since=at,
        until=at,
        currency="CNY",
        assumptions=A,
        applications=loans,
        decided=loans,
        loans_disbursed=loans,
        provider_calls=0,
        provider_cost=provider,
        provider_by_kind={},
        decision_cpu_ms=cpu,
        decision_cost=decision,
        staff=StaffActions(),
        staff_minutes=staff_minutes,
        staff_cost=staff,
        servicing_cpu_ms=cob,
        servicing_loan_days=0,
        servicing_cost=servicing,
        parts=[("provider", provider), ("decision", decision), ("staff", staff), ("servicing", servicing)],
    )
    assert c.total == provider + decision + staff + servicing
    assert sum((part for _, part in c.parts), Decimal(0)) == c.total
    if loans:
        assert c.per_loan is not None and abs(c.per_loan * loans - c.total) <= Decimal("1e-20") * max(c.total, 1)
    else:
        assert c.per_loan is None
    assert all(Decimal(0) <= c.share(part) <= 1 for _, part in c.parts)
