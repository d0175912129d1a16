"""Promote the challenger, roll back to a retired version: each asked for by one person and carried out only
when a second person holding 'publish_policies' approves it (maker-checker, 双人复核), audited both times.

Promote makes the running challenger (or shadow) the champion without changing its content (its hash stays);
the old champion is retired. Roll back publishes a retired credit-decision version again as the champion;
the champion it replaces is retired."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.decisioning.policy import policy_kind
from microlend.decisioning.tables import DecisionSetupRow, PolicyChangeRequestRow
from microlend.decisioning.versions import _clear_challenger, _clear_shadow, _in_force, _retire, _setup, version_row

Action = Literal["promote", "rollback"]
ACTIONS: tuple[Action, ...] = ("promote", "rollback")


@dataclass(frozen=True)
class PolicyChangeRequest:
    id: int
    action: str
    content_hash: str
    status: str
    note: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None

    @classmethod
    def from_row(cls, r: PolicyChangeRequestRow) -> PolicyChangeRequest:
        return cls(
            r.id, r.action, r.content_hash, r.status, r.note, r.requested_by, r.requested_at, r.decided_by, r.decided_at
        )


def _check(s: Session, tenant_id: int, action: str, content_hash: str) -> DecisionSetupRow:
    """The request still makes sense against the set-up in force (checked when asked and when approved)."""
    setup = _setup(s, tenant_id)
    row = version_row(s, tenant_id, content_hash)
    if action == "promote":
        if content_hash not in (setup.challenger_hash, setup.shadow_hash):
            raise Conflict(
                f"content_hash: version {content_hash[:12]} is not the running challenger; only the "
                "challenger (or the shadow) can be promoted",
                field="content_hash",
            )
    else:
        if policy_kind(row.content) != "credit_decision":
            raise ValidationError(
                "content_hash: only a credit-decision policy can be rolled back to", field="content_hash"
            )
        if row.status != "retired" or row.published_at is None:
            raise Conflict(
                f"content_hash: version {content_hash[:12]} is {row.status}; roll back only to a "
                "retired version that was once published",
                field="content_hash",
            )
    return setup


def request_change(
    uow: UnitOfWork, who: Principal, action: str, content_hash: str, note: str = ""
) -> PolicyChangeRequest:
    """Ask for a promote or a roll back; a second person approves it (`decide_change`)."""
    who.require(Permission.EDIT_POLICIES)
    if action not in ACTIONS:
        raise ValidationError(f"action: one of {', '.join(ACTIONS)}", field="action")
    with uow:
        s = uow.session
        _check(s, who.tenant_id, action, content_hash)
        waiting = s.execute(
            select(PolicyChangeRequestRow.id)
            .where(PolicyChangeRequestRow.tenant_id == who.tenant_id, PolicyChangeRequestRow.status == "pending")
            .limit(1)
        ).scalar_one_or_none()
        if waiting is not None:
            raise Conflict(f"request {waiting} is still waiting for a second person; approve or reject it first")
        row = PolicyChangeRequestRow(
            tenant_id=who.tenant_id,
            action=action,
            content_hash=content_hash,
            status="pending",
            note=note[:500],
            requested_by=who.username,
            requested_by_user_id=who.user_id,
            requested_at=utcnow(),
        )
        s.add(row)
        s.flush()
        audit.record(
            s,
            who,
            f"policy.request_{action}",
            "policy_change_request",
            row.id,
            after={"action": action, "content_hash": content_hash, "status": "pending"},
        )
        request = PolicyChangeRequest.from_row(row)
        uow.commit()
    return request


def list_changes(uow: UnitOfWork, who: Principal, status: str | None = "pending") -> list[PolicyChangeRequest]:
    who.require(Permission.VIEW_POLICIES)
    with uow:
        query = select(PolicyChangeRequestRow).where(PolicyChangeRequestRow.tenant_id == who.tenant_id)
        if status is not None:
            query = query.where(PolicyChangeRequestRow.status == status)
        rows = uow.session.execute(query.order_by(PolicyChangeRequestRow.id)).scalars().all()
        return [PolicyChangeRequest.from_row(r) for r in rows]


def decide_change(uow: UnitOfWork, who: Principal, request_id: int, approve: bool) -> PolicyChangeRequest:
    """A second person approves (the change is made at once) or rejects a promote or roll back request."""
    who.require(Permission.PUBLISH_POLICIES)
    with uow:
        s = uow.session
        row = s.get(PolicyChangeRequestRow, request_id)
        if row is None or row.tenant_id != who.tenant_id:
            raise NotFound(f"request_id: no policy change request {request_id} in this bank", field="request_id")
        if row.status != "pending":
            raise Conflict(f"request {request_id} is already {row.status}")
        if row.requested_by_user_id == who.user_id and row.requested_by == who.username:
            raise PermissionDenied(
                f"{row.action}: you asked for this change; a second person holding "
                "'publish_policies' must approve it (maker-checker)"
            )
        now = utcnow()
        before = {"status": "pending", "action": row.action, "content_hash": row.content_hash}
        after: dict[str, object] = {"action": row.action, "content_hash": row.content_hash}
        if approve:
            setup = _check(s, who.tenant_id, row.action, row.content_hash)
            old_champion = setup.champion_hash
            if row.action == "promote":
                if setup.challenger_hash == row.content_hash:
                    _clear_challenger(setup)
                if setup.shadow_hash == row.content_hash:
                    _clear_shadow(setup)
            else:
                version = version_row(s, who.tenant_id, row.content_hash)
                version.status, version.retired_at, version.environment = "published", None, "production"
                version.publisher, version.publisher_user_id, version.published_at = who.username, who.user_id, now
            setup.champion_hash, setup.updated_at = row.content_hash, now
            after |= {
                "status": "approved",
                "champion_hash": row.content_hash,
                "retired": _retire(s, who, old_champion, keep=_in_force(setup, "champion", row.content_hash)),
            }
            action = f"policy.{row.action}"
        else:
            after |= {"status": "rejected"}
            action = f"policy.reject_{row.action}"
        row.status = "approved" if approve else "rejected"
        row.decided_by, row.decided_at = who.username, now
        audit.record(s, who, action, "policy_change_request", row.id, before=before, after=after)
        decided = PolicyChangeRequest.from_row(row)
        uow.commit()
    return decided
