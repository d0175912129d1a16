import itertools
from decimal import Decimal

import pytest

from microlend.core.errors import Conflict, PermissionDenied, ValidationError
from microlend.core.identity import Principal, Role
from microlend.origination.applications import ApprovalAuthority, Review, Status, check_transition

AUTH = ApprovalAuthority(single_approval_limit=Decimal("500000"))


def person(uid: int, *roles: Role) -> Principal:
    return Principal(user_id=uid, tenant_id=1, username=f"u{uid}", roles=frozenset(roles))


OFFICER, OFFICER2 = person(1, Role.CREDIT_OFFICER), person(2, Role.CREDIT_OFFICER)
APPROVER, APPROVER2 = person(3, Role.APPROVER), person(4, Role.APPROVER)
ADMIN = person(5, Role.ADMIN)


def recommended(amount: str = "300000") -> Review:
    r = Review()
    r.recommend(OFFICER, AUTH, "approve", Decimal(amount), Decimal("0.0850"), "visited the shop")
    return r


class TestFourEyes:
    def test_an_approver_approves_within_authority(self) -> None:
        assert recommended().approve(APPROVER, AUTH) is True

    def test_the_recommender_cannot_approve_even_as_admin(self) -> None:
        r = Review()
        r.recommend(ADMIN, AUTH, "approve", Decimal("1000"), Decimal("0.1"), "")
        with pytest.raises(PermissionDenied, match="four eyes"):
            r.approve(ADMIN, AUTH)

    def test_an_officer_has_no_approval_authority(self) -> None:
        with pytest.raises(PermissionDenied, match="approval authority"):
            recommended().approve(OFFICER2, AUTH)

    def test_above_authority_needs_two_different_approvers(self) -> None:
        r = recommended("800000")
        assert r.approve(APPROVER, AUTH) is False
        with pytest.raises(Conflict, match="second approver"):
            r.approve(APPROVER, AUTH)
        assert r.approve(APPROVER2, AUTH) is True

    def test_approval_needs_a_recommendation_to_approve(self) -> None:
        with pytest.raises(Conflict, match="no officer has recommended"):
            Review().approve(APPROVER, AUTH)
        r = Review()
        r.recommend(OFFICER, AUTH, "decline", None, None, "no stock in the shop")
        with pytest.raises(Conflict, match="recommended declining"):
            r.approve(APPROVER, AUTH)

    def test_a_new_recommendation_resets_approvals(self) -> None:
        r = recommended("800000")
        r.approve(APPROVER, AUTH)
        r.recommend(OFFICER2, AUTH, "approve", Decimal("400000"), Decimal("0.09"), "smaller amount")
        assert r.approvals == []
        assert r.approve(APPROVER, AUTH) is True


class TestRecommendation:
    @pytest.mark.parametrize(("amount", "rate", "field"), [(None, "0.08", "amount"), ("-1", "0.08", "amount"),
                                                           ("1000", "8.5", "annual_rate")])
    def test_an_approval_needs_amount_and_rate(self, amount: str | None, rate: str, field: str) -> None:
        with pytest.raises(ValidationError) as err:
            Review().recommend(OFFICER, AUTH, "approve", Decimal(amount) if amount else None, Decimal(rate), "")
        assert err.value.field == field

    def test_an_approver_cannot_recommend(self) -> None:
        with pytest.raises(PermissionDenied):
            Review().recommend(APPROVER, AUTH, "approve", Decimal("1"), Decimal("0.1"), "")


class TestStatusMachine:
    @pytest.mark.parametrize(("current", "target"), [
        (Status.SUBMITTED, Status.DISBURSED), (Status.DECLINED, Status.APPROVED), (Status.EXPIRED, Status.ACCEPTED),
        (Status.REFERRED, Status.APPROVED), (Status.DISBURSED, Status.WITHDRAWN),
    ])
    def test_forbidden_moves_are_conflicts(self, current: Status, target: Status) -> None:
        with pytest.raises(Conflict, match=f"is {current.value}"):
            check_transition(current, target, "do that")

    def test_the_straight_through_path_is_allowed(self) -> None:
        path = [Status.SUBMITTED, Status.APPROVED, Status.ACCEPTED, Status.DISBURSED]
        for a, b in itertools.pairwise(path):
            check_transition(a, b, "move on")
