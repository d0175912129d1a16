"""Limit changes proposed by the credit line review (额度复审): kept with the inputs and policy that made
them; a referred one waits for an approver who is not the person who ran the review."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Permission, Principal, Role
from microlend.core.uow import UnitOfWork
from microlend.decisioning.tables import LimitAuthorityRow, LimitChangeRow


@dataclass(frozen=True)
class LimitChange:
    id: int
    credit_line_id: int
    customer_id: int | None
    action: str
    outcome: str
    current_limit: Decimal
    proposed_limit: Decimal
    reasons: tuple[str, ...]
    status: str
    created_at: datetime
    decided_by: str | None
    created_by: str = ""
    policy_hash: str = ""
    inputs: dict[str, Any] | None = None  # the behaviour the review saw: the approver's evidence
    recommendation: str | None = None  # the officer's: support | oppose
    recommended_by: str | None = None
    recommended_at: datetime | None = None
    officer_note: str = ""
    decision_note: str = ""
    decided_at: datetime | None = None

    @property
    def increase(self) -> Decimal:
        """How much the change raises the limit (0 for a decrease or freeze)."""
        return max(Decimal(0), self.proposed_limit - self.current_limit)

    @classmethod
    def from_row(cls, r: LimitChangeRow) -> LimitChange:
        return cls(r.id, r.credit_line_id, r.customer_id, r.action, r.outcome, r.current_limit, r.proposed_limit,
                   tuple(r.reasons), r.status, r.created_at, r.decided_by, r.created_by, r.policy_hash,
                   dict(r.inputs or {}), r.recommendation, r.recommended_by, r.recommended_at,
                   r.officer_note or "", r.decision_note or "", r.decided_at)


@dataclass(frozen=True)
class ProposedChange:
    """What the review proposes for one credit line."""

    credit_line_id: int
    customer_id: int | None
    action: str
    outcome: str
    current_limit: Decimal
    proposed_limit: Decimal
    reasons: Sequence[str]


def record_limit_change(uow: UnitOfWork, who: Principal, change: ProposedChange, inputs: dict[str, Any],
                        content_hash: str, status: str, audited: bool = True) -> int:
    """Keep a proposal, `applied` (audited by whoever applied it) or `pending` (audited here), in the
    caller's unit of work; returns its id."""
    with uow:
        s = uow.session
        now = utcnow()
        row = LimitChangeRow(
            tenant_id=who.tenant_id, credit_line_id=change.credit_line_id, customer_id=change.customer_id,
            action=change.action, outcome=change.outcome, current_limit=change.current_limit,
            proposed_limit=change.proposed_limit, reasons=list(change.reasons), inputs=inputs,
            policy_hash=content_hash, status=status, created_by=who.username, created_at=now,
            decided_by=who.username if status == "applied" else None,
            decided_at=now if status == "applied" else None,
        )
        s.add(row)
        s.flush()
        if audited:
            audit.record(s, who, "limit_change.refer", "limit_change", row.id,
                         after={"credit_line_id": change.credit_line_id, "action": change.action,
                                "current_limit": str(change.current_limit),
                                "proposed_limit": str(change.proposed_limit)})
        new_id = row.id
        uow.commit()
    return new_id


def pending_limit_changes(uow: UnitOfWork, who: Principal) -> list[LimitChange]:
    """Referred limit changes waiting for an approver."""
    who.require(Permission.MANAGE_CREDIT_LINES)
    with uow:
        rows = uow.session.execute(select(LimitChangeRow).where(
            LimitChangeRow.tenant_id == who.tenant_id, LimitChangeRow.status == "pending")
            .order_by(LimitChangeRow.id)).scalars().all()
        return [LimitChange.from_row(r) for r in rows]


def _pending_row(uow: UnitOfWork, who: Principal, change_id: int) -> LimitChangeRow:
    row = uow.session.get(LimitChangeRow, change_id)
    if row is None or row.tenant_id != who.tenant_id:
        raise NotFound(f"limit change {change_id} not found")
    if row.status != "pending":
        raise Conflict(f"limit change {change_id} is already {row.status}")
    if row.created_by == who.username:
        raise PermissionDenied("you ran the review that proposed this change; a second person decides it")
    if row.recommended_by == who.username:
        raise PermissionDenied("four eyes: you recommended this change, so another person must decide it")
    return row


def pending_change(uow: UnitOfWork, who: Principal, change_id: int) -> LimitChange:
    """A referred change the caller may decide: of their bank, still pending, proposed by someone else."""
    who.require(Permission.MANAGE_CREDIT_LINES)
    with uow:
        return LimitChange.from_row(_pending_row(uow, who, change_id))


def settle_limit_change(uow: UnitOfWork, who: Principal, change_id: int, approved: bool,
                        note: str = "") -> LimitChange:
    """Mark a referred change approved (the caller has applied it) or rejected (audited here), in the
    caller's unit of work; the caller commits. An increase above the caller's authority (审批权限, by
    amount, per role) is refused: a person with a higher role decides it."""
    who.require(Permission.MANAGE_CREDIT_LINES)
    if len(note) > 1000:
        raise ValidationError("note: at most 1000 characters", field="note")
    with uow:
        row = _pending_row(uow, who, change_id)
        if approved:
            require_authority(uow, who, LimitChange.from_row(row))
        else:
            audit.record(uow.session, who, "limit_change.reject", "limit_change", row.id,
                         before={"status": "pending"}, after={"status": "rejected", "note": note})
        row.status = "approved" if approved else "rejected"
        row.decided_by, row.decided_at = who.username, utcnow()
        row.decision_note = note or None
        return LimitChange.from_row(row)


def require_authority(uow: UnitOfWork, who: Principal, change: LimitChange) -> None:
    """An increase above the caller's authority by amount is refused (a higher role decides it); lowering a
    limit or freezing a line needs no amount authority, only a person."""
    mine = limit_authority(uow, who).of(who)
    if change.increase > mine:
        raise PermissionDenied(
            f"the increase of {change.increase:.2f} is above your approval authority of {mine:.2f}; "
            "a person with a higher authority decides it")


RECOMMENDATIONS = ("support", "oppose")


def recommend_limit_change(uow: UnitOfWork, who: Principal, change_id: int, recommendation: str,
                           note: str) -> LimitChange:
    """The customer's officer supports or opposes a pending change, with a note the approver reads; the
    officer may revise it until it is decided, and may then not decide it (four eyes)."""
    who.require(Permission.RECOMMEND)
    if recommendation not in RECOMMENDATIONS:
        raise ValidationError("recommendation: must be 'support' or 'oppose'", field="recommendation")
    note = note.strip()
    if not note or len(note) > 1000:
        raise ValidationError("note: say why, in at most 1000 characters", field="note")
    with uow:
        row = uow.session.get(LimitChangeRow, change_id)
        if row is None or row.tenant_id != who.tenant_id:
            raise NotFound(f"limit change {change_id} not found")
        if row.status != "pending":
            raise Conflict(f"limit change {change_id} is already {row.status}")
        before = {"recommendation": row.recommendation, "note": row.officer_note}
        row.recommendation, row.officer_note = recommendation, note
        row.recommended_by, row.recommended_at = who.username, utcnow()
        audit.record(uow.session, who, "limit_change.recommend", "limit_change", row.id, before=before,
                     after={"recommendation": recommendation, "note": note})
        change = LimitChange.from_row(row)
        uow.commit()
    return change


def limit_change(uow: UnitOfWork, who: Principal, change_id: int) -> LimitChange:
    """One limit change of the caller's bank, in any status."""
    with uow:
        row = uow.session.get(LimitChangeRow, change_id)
        if row is None or row.tenant_id != who.tenant_id:
            raise NotFound(f"limit change {change_id} not found")
        return LimitChange.from_row(row)


def limit_changes_of_line(uow: UnitOfWork, who: Principal, credit_line_id: int) -> list[LimitChange]:
    """A line's limit changes, newest first (the case's history)."""
    with uow:
        rows = uow.session.execute(select(LimitChangeRow).where(
            LimitChangeRow.tenant_id == who.tenant_id, LimitChangeRow.credit_line_id == credit_line_id)
            .order_by(LimitChangeRow.id.desc())).scalars().all()
        return [LimitChange.from_row(r) for r in rows]


def pending_changes(uow: UnitOfWork, who: Principal) -> list[LimitChange]:
    """Every pending change of the caller's bank (the service above filters by who may see which)."""
    with uow:
        rows = uow.session.execute(select(LimitChangeRow).where(
            LimitChangeRow.tenant_id == who.tenant_id, LimitChangeRow.status == "pending")
            .order_by(LimitChangeRow.id)).scalars().all()
        return [LimitChange.from_row(r) for r in rows]


# --- authority by amount ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LimitAuthority:
    """审批权限 of the limit desk: the largest increase one person of a role may approve (the largest of their
    roles counts), and the largest increase the review applies by itself when its policy allows it."""

    role_limits: dict[str, Decimal]
    automatic_limit: Decimal
    updated_by: str = ""

    def of(self, who: Principal) -> Decimal:
        return max((self.role_limits.get(str(r), Decimal(0)) for r in who.roles), default=Decimal(0))


DEFAULT_AUTHORITY = LimitAuthority(
    {str(Role.APPROVER): Decimal("200000"), str(Role.ADMIN): Decimal("1000000")}, Decimal("50000"))


def limit_authority(uow: UnitOfWork, who: Principal) -> LimitAuthority:
    with uow:
        row = uow.session.get(LimitAuthorityRow, who.tenant_id)
        if row is None:
            return DEFAULT_AUTHORITY
        return LimitAuthority({k: Decimal(v) for k, v in (row.role_limits or {}).items()}, row.automatic_limit,
                              row.updated_by)


def read_limit_authority(uow: UnitOfWork, who: Principal) -> LimitAuthority:
    """The bank's authority by amount, for staff who read its credit policies."""
    who.require(Permission.VIEW_POLICIES)
    return limit_authority(uow, who)


#: No authority by amount is larger than this (a trillion in the bank's currency).
MAX_AUTHORITY = Decimal("1000000000000")


def _check_authority_amount(amount: Decimal, name: str, field: str) -> None:
    """An authority is an amount in cents from 0 to `MAX_AUTHORITY`."""
    if not amount.is_finite() or amount < 0 or amount > MAX_AUTHORITY:
        raise ValidationError(f"{name}: must be an amount from 0 to {MAX_AUTHORITY:,}", field=field)
    if amount != amount.quantize(Decimal("0.01")):
        raise ValidationError(f"{name}: must be in whole cents", field=field)


def update_limit_authority(uow: UnitOfWork, who: Principal, role_limits: dict[str, Decimal],
                           automatic_limit: Decimal) -> LimitAuthority:
    """Set the bank's authority by amount (an administrator's act, audited)."""
    who.require(Permission.MANAGE_USERS)
    known = {str(r) for r in Role}
    for role, amount in role_limits.items():
        if role not in known:
            raise ValidationError(f"role_limits: unknown role {role!r}", field="role_limits")
        _check_authority_amount(amount, f"role_limits.{role}", "role_limits")
    _check_authority_amount(automatic_limit, "automatic_limit", "automatic_limit")
    with uow:
        s = uow.session
        row = s.get(LimitAuthorityRow, who.tenant_id)
        before = None if row is None else {"role_limits": row.role_limits, "automatic_limit": str(row.automatic_limit)}
        if row is None:
            row = LimitAuthorityRow(tenant_id=who.tenant_id)
            s.add(row)
        row.role_limits = {k: str(v) for k, v in role_limits.items()}
        row.automatic_limit = automatic_limit
        row.updated_by, row.updated_at = who.username, utcnow()
        audit.record(s, who, "limit_authority.update", "limit_authority", who.tenant_id, before=before,
                     after={"role_limits": row.role_limits, "automatic_limit": str(automatic_limit)})
        uow.commit()
    return LimitAuthority(dict(role_limits), automatic_limit, who.username)
