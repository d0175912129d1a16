"""The audit trail for auditors: browse records and verify the chain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from microlend.api.deps import CurrentPrincipal, Limit, UnitOfWorkDep
from microlend.api.routing import api_router
from microlend.core import audit
from microlend.core.identity import Permission

router = api_router(prefix="/api/v1/audit", tags=["audit"])


class AuditRecordPublic(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    before: Any
    after: Any
    reason: str
    hash: str


class ChainPublic(BaseModel):
    records: int
    ok: bool
    problems: list[str]


@router.get("")
def list_records(
    who: CurrentPrincipal, uow: UnitOfWorkDep,
    object_type: str | None = None, object_id: str | None = None,
    limit: Limit = 100,
) -> list[AuditRecordPublic]:
    with uow:
        records = audit.read(uow.session, who, object_type=object_type, object_id=object_id, limit=limit)
    return [AuditRecordPublic(seq=r.seq, at=r.at, actor=r.actor, action=r.action, object_type=r.object_type,
                              object_id=r.object_id, before=r.before, after=r.after, reason=r.reason, hash=r.hash)
            for r in records]


@router.get("/verify")
def verify_chain(who: CurrentPrincipal, uow: UnitOfWorkDep) -> ChainPublic:
    who.require(Permission.VIEW_AUDIT)
    with uow.read_only(streamed=True):  # one snapshot, read in chunks
        report = audit.verify(uow.session, who.tenant_id)
    return ChainPublic(records=report.records, ok=report.ok, problems=report.problems)
