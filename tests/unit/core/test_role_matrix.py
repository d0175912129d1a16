"""Separation of duties over the role matrix (role × permission): which pairs of acts no business role may hold
together, which four-eyes pairs a role may hold because the code refuses the same person doing both, and the
matrix itself printed for review (pytest -s)."""

from __future__ import annotations

import pytest

from microlend.core.identity import ROLE_PERMISSIONS, STAFF_ROLES, Permission, Principal, Role

P = Permission

#: Pairs where one person may hold both permissions because the use case refuses the same person doing both
#: (maker-checker on people, not on roles), with where it is enforced.
FOUR_EYES_IN_CODE: dict[tuple[Permission, Permission], str] = {
    (P.RECOMMEND, P.APPROVE_CREDIT): "origination.applications.Review.approve: the recommender may not approve",
    (P.EDIT_POLICIES, P.PUBLISH_POLICIES): "decisioning.versions.publish: the author may not publish",
    (P.TRAIN_MODELS, P.APPROVE_MODELS): "risk.registry.approve_model: the trainer may not approve",
    (P.BOOK_LOANS, P.APPROVE_BOOKINGS): "servicing.service.bookings: the booker may not approve",
    (P.WRITE_OFF, P.APPROVE_WRITE_OFF): "servicing.service.write_off: the requester may not approve",
    (P.RESTRUCTURE_LOANS, P.APPROVE_RESTRUCTURE): "servicing.service.restructuring: the requester may not approve",
}

#: Pairs no business role holds together: the two sides belong to different desks.
SEPARATED: list[tuple[Permission, Permission, str]] = [
    (P.PUBLISH_POLICIES, P.APPROVE_CREDIT, "who decides credit does not set the policy it is decided under"),
    (P.BOOK_LOANS, P.DISBURSE, "a booking is paid out only through a second person's approval"),
    (P.BOOK_LOANS, P.MANAGE_PRODUCTS, "who books a loan does not set the product limits it is checked against"),
    (P.POST_REPAYMENT, P.REVERSE_REPAYMENT, "who takes money in does not reverse it"),
    (P.TRAIN_MODELS, P.APPROVE_CREDIT, "who builds the model does not approve the credit it scores"),
    (P.MANAGE_USERS, P.APPROVE_CREDIT, "who grants roles does not approve credit"),
    (P.COLLECT, P.WRITE_OFF, "who collects a debt does not write it off"),
    (P.COLLECT, P.APPROVE_WRITE_OFF, "who collects a debt does not approve its write-off"),
]

#: The bank's administrator configures the platform (users, products) and is the only role beyond the
#: business desks; it never books money, and its four-eyes pairs are refused per person in code.
BUSINESS_ROLES = [r for r in STAFF_ROLES if r != Role.ADMIN]


def matrix() -> str:
    roles = [r for r in Role]
    width = max(len(p.value) for p in Permission)
    head = " " * width + " | " + " | ".join(r.value[:8].ljust(8) for r in roles)
    lines = [head, "-" * len(head)]
    for p in Permission:
        marks = " | ".join(("x" if p in ROLE_PERMISSIONS[r] else "").ljust(8) for r in roles)
        lines.append(f"{p.value.ljust(width)} | {marks}")
    return "\n".join(lines)


def test_the_matrix_prints_every_role_and_permission() -> None:
    table = matrix()
    print("\n" + table)
    assert len(table.splitlines()) == len(Permission) + 2
    assert all(role in ROLE_PERMISSIONS for role in Role)


@pytest.mark.parametrize(("first", "second", "why"), SEPARATED)
@pytest.mark.parametrize("role", BUSINESS_ROLES)
def test_no_business_role_holds_both_sides(role: Role, first: Permission, second: Permission, why: str) -> None:
    held = ROLE_PERMISSIONS[role]
    assert not (first in held and second in held), f"{role.value} holds {first.value} and {second.value}: {why}"


def test_each_four_eyes_pair_is_split_between_desks_or_checked_per_person() -> None:
    """Maker and checker sit on different desks (officer / approver), or on one desk whose use case refuses
    the same person (analysts, operations): the pairs a desk holds together are exactly the ones checked in code."""
    held_together = {pair for pair in FOUR_EYES_IN_CODE for role in BUSINESS_ROLES
                     if set(pair) <= ROLE_PERMISSIONS[role]}
    assert held_together == {(P.EDIT_POLICIES, P.PUBLISH_POLICIES), (P.TRAIN_MODELS, P.APPROVE_MODELS),
                             (P.BOOK_LOANS, P.APPROVE_BOOKINGS)}


def test_approvers_do_not_publish_policies_and_analysts_do_not_approve_credit() -> None:
    assert P.PUBLISH_POLICIES not in ROLE_PERMISSIONS[Role.APPROVER]
    assert P.APPROVE_CREDIT not in ROLE_PERMISSIONS[Role.RISK_ANALYST]


def test_only_the_administrator_sets_up_data_providers_and_reviewers_see_their_calls() -> None:
    """Where the bank's external data comes from, with which key and at what cost, is set-up: the
    administrator's; analysts and auditors see the settings (never the key), the calls and their cost."""
    assert {r for r in Role if P.MANAGE_DATA_SOURCES in ROLE_PERMISSIONS[r]} == {Role.ADMIN, Role.SYSTEM}
    assert {r for r in Role if P.VIEW_DATA_SOURCES in ROLE_PERMISSIONS[r]} == {
        Role.ADMIN, Role.RISK_ANALYST, Role.AUDITOR, Role.SYSTEM}


def test_only_operations_books_loans() -> None:
    holders = {r for r in Role if P.BOOK_LOANS in ROLE_PERMISSIONS[r]}
    assert holders == {Role.OPERATIONS, Role.SYSTEM}


def test_bookings_are_approved_by_operations_or_an_approver() -> None:
    holders = {r for r in STAFF_ROLES if P.APPROVE_BOOKINGS in ROLE_PERMISSIONS[r]}
    assert holders == {Role.OPERATIONS, Role.APPROVER, Role.ADMIN}


def test_the_auditor_only_reads() -> None:
    writes = {p for p in ROLE_PERMISSIONS[Role.AUDITOR] if not p.value.startswith("view_")}
    assert writes == set()


def test_a_principal_with_two_roles_gets_both_sets() -> None:
    who = Principal(1, 1, "x", frozenset({Role.OPERATIONS, Role.AUDITOR}))
    assert who.can(P.BOOK_LOANS) and who.can(P.VIEW_AUDIT) and not who.can(P.DISBURSE)
