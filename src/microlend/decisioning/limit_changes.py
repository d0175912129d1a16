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
from microlend.core.errors import Conflict, NotFound, PermissionDenied
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.decisioning.tables import LimitChangeRow


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

    @classmethod
    def from_row(cls, r: LimitChangeRow) -> LimitChange:
        return cls(r.id, r.credit_line_id, r.customer_id, r.action, r.outcome, r.current_limit, r.proposed_limit,
                   tuple(r.reasons), r.status, r.created_at, r.decided_by, r.created_by, r.policy_hash,
                   dict(r.inputs or {}))


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
    return row


def pending_change(uow: UnitOfWork, who: Principal, change_id: int) -> LimitChange:
    """A referred change the caller may decide: of their bank, still pending, proposed by someone else."""
    who.require(Permission.MANAGE_CREDIT_LINES)
    with uow:
        return LimitChange.from_row(_pending_row(uow, who, change_id))


def settle_limit_change(uow: UnitOfWork, who: Principal, change_id: int, approved: bool) -> LimitChange:
    """Mark a referred change approved (the caller has applied it) or rejected (audited here), in the
    caller's unit of work; the caller commits."""
    who.require(Permission.MANAGE_CREDIT_LINES)
    with uow:
        row = _pending_row(uow, who, change_id)
        if not approved:
            audit.record(uow.session, who, "limit_change.reject", "limit_change", row.id,
                         before={"status": "pending"}, after={"status": "rejected"})
        row.status = "approved" if approved else "rejected"
        row.decided_by, row.decided_at = who.username, utcnow()
        return LimitChange.from_row(row)
