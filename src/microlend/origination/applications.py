"""Applications and their review: the status machine, four eyes and approval authority (pure rules).

贷前 pre-loan: submitted -> decided (approved / declined / referred); a referred application is
recommended by a loan officer (客户经理) and decided by someone with approval authority (审批权限),
never the same person (双人, four eyes). An approval becomes an offer the borrower accepts; acceptance
contracts and disburses the loan (放款)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from microlend.core.errors import Conflict, PermissionDenied, ValidationError
from microlend.core.identity import Principal, Role


class Status(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"          # an offer is open
    DECLINED = "declined"
    REFERRED = "referred"          # waiting for an officer's recommendation
    RECOMMENDED = "recommended"    # waiting for an approver
    ACCEPTED = "accepted"          # the borrower accepted the offer
    CONTRACTED = "contracted"      # the loan or credit line exists
    DISBURSED = "disbursed"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


#: Which status may follow which; anything else is a 409 with a message.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.SUBMITTED: frozenset({Status.APPROVED, Status.DECLINED, Status.REFERRED, Status.WITHDRAWN}),
    Status.REFERRED: frozenset({Status.RECOMMENDED, Status.WITHDRAWN, Status.EXPIRED}),
    Status.RECOMMENDED: frozenset({Status.APPROVED, Status.DECLINED, Status.RECOMMENDED, Status.WITHDRAWN,
                                   Status.EXPIRED}),
    Status.APPROVED: frozenset({Status.ACCEPTED, Status.WITHDRAWN, Status.EXPIRED}),
    Status.ACCEPTED: frozenset({Status.CONTRACTED, Status.DISBURSED}),
    Status.CONTRACTED: frozenset({Status.DISBURSED}),
    Status.DECLINED: frozenset(),
    Status.DISBURSED: frozenset(),
    Status.WITHDRAWN: frozenset(),
    Status.EXPIRED: frozenset(),
}
OPEN_REVIEW = (Status.REFERRED, Status.RECOMMENDED)


def check_transition(current: Status, target: Status, what: str) -> None:
    if target not in TRANSITIONS[current]:
        raise Conflict(f"cannot {what}: the application is {current.value}")


@dataclass(frozen=True)
class ApprovalAuthority:
    """审批权限: the amount up to which one approval suffices, and the roles that may approve.

    Above `single_approval_limit` a second, different approver must also approve."""

    single_approval_limit: Decimal = Decimal("500000")
    approver_roles: frozenset[Role] = frozenset({Role.APPROVER, Role.ADMIN})
    recommender_roles: frozenset[Role] = frozenset({Role.CREDIT_OFFICER, Role.ADMIN})
    offer_valid_days: int = 14
    review_sla_hours: int = 24

    def approvals_needed(self, amount: Decimal) -> int:
        return 1 if amount <= self.single_approval_limit else 2


@dataclass
class Review:
    """The people side of a referred application: one recommendation, then one or two approvals."""

    recommended_by: int | None = None
    recommendation: str | None = None      # approve | decline
    recommended_amount: Decimal | None = None
    recommended_rate: Decimal | None = None
    notes: str = ""
    approvals: list[int] = field(default_factory=list)

    def recommend(self, who: Principal, authority: ApprovalAuthority, recommendation: str,
                  amount: Decimal | None, rate: Decimal | None, notes: str) -> None:
        if not who.has_role(*authority.recommender_roles):
            raise PermissionDenied("only a loan officer may recommend")
        if recommendation not in ("approve", "decline"):
            raise ValidationError("recommendation: must be 'approve' or 'decline'", field="recommendation")
        if recommendation == "approve":
            if amount is None or amount <= 0:
                raise ValidationError("amount: an approval recommendation needs a positive amount", field="amount")
            if rate is None or not Decimal("0") < rate < Decimal("1"):
                raise ValidationError("annual_rate: give a rate between 0 and 1 (e.g. 0.0850)", field="annual_rate")
        if who.user_id in self.approvals:
            raise Conflict("you already approved this application; another officer must recommend")
        self.recommended_by = who.user_id
        self.recommendation = recommendation
        self.recommended_amount = amount if recommendation == "approve" else None
        self.recommended_rate = rate if recommendation == "approve" else None
        self.notes = notes
        self.approvals = []

    def approve(self, who: Principal, authority: ApprovalAuthority) -> bool:
        """Record one approval; True when enough approvals are in. Four eyes: the recommender may not
        approve, and two approvals must come from two people."""
        if self.recommended_by is None:
            raise Conflict("cannot approve: no officer has recommended this application yet")
        if self.recommendation != "approve":
            raise Conflict("cannot approve: the officer recommended declining; record a new recommendation first")
        if who.user_id == self.recommended_by:
            raise PermissionDenied("four eyes: you recommended this application, so another person must approve it")
        if not who.has_role(*authority.approver_roles):
            raise PermissionDenied("your roles do not give approval authority")
        if who.user_id in self.approvals:
            raise Conflict("you already approved this application; a second approver is needed")
        assert self.recommended_amount is not None
        self.approvals.append(who.user_id)
        return len(self.approvals) >= authority.approvals_needed(self.recommended_amount)

    def decline(self, who: Principal, authority: ApprovalAuthority) -> None:
        if self.recommended_by is None:
            raise Conflict("cannot decide: no officer has recommended this application yet")
        if who.user_id == self.recommended_by:
            raise PermissionDenied("four eyes: you recommended this application, so another person must decide")
        if not who.has_role(*authority.approver_roles):
            raise PermissionDenied("your roles do not give approval authority")


def offer_expiry(decided_at: datetime, authority: ApprovalAuthority) -> datetime:
    return decided_at + timedelta(days=authority.offer_valid_days)


def review_due(submitted_at: datetime, authority: ApprovalAuthority) -> datetime:
    """SLA: a referred application should be decided within this time."""
    return submitted_at + timedelta(hours=authority.review_sla_hours)
