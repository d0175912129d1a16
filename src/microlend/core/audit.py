"""The audit trail: append-only, hash-chained per tenant, so an edited or deleted record is detected."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from microlend.core.clock import utcnow
from microlend.core.identity import Principal
from microlend.core.tables import AuditHeadRow, AuditRow

GENESIS = "0" * 64


def _digest(prev_hash: str, row: AuditRow) -> str:
    body = {
        "tenant_id": row.tenant_id, "seq": row.seq, "at": row.at.isoformat(),
        "actor_user_id": row.actor_user_id, "actor": row.actor, "action": row.action,
        "object_type": row.object_type, "object_id": row.object_id,
        "before": row.before, "after": row.after, "reason": row.reason,
    }
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def record(
    session: Session, who: Principal, action: str, object_type: str, object_id: object,
    *, before: Any = None, after: Any = None, reason: str = "",
) -> AuditRow:
    """Append one audit record in the caller's transaction: it lands or rolls back with the change."""
    tenant_id = who.tenant_id
    bumped = session.execute(
        update(AuditHeadRow).where(AuditHeadRow.tenant_id == tenant_id).values(seq=AuditHeadRow.seq + 1)
    )
    if bumped.rowcount == 0:  # type: ignore[attr-defined]
        session.add(AuditHeadRow(tenant_id=tenant_id, seq=1, hash=GENESIS))
        session.flush()
    head = session.execute(
        select(AuditHeadRow).where(AuditHeadRow.tenant_id == tenant_id).execution_options(populate_existing=True)
    ).scalar_one()
    # round-trip JSON now so the hash covers exactly what is stored
    row = AuditRow(
        tenant_id=tenant_id, seq=head.seq, at=utcnow(), actor_user_id=who.user_id, actor=who.username,
        action=action, object_type=object_type, object_id=str(object_id),
        before=_jsonable(before), after=_jsonable(after), reason=reason, prev_hash=head.hash,
    )
    row.hash = _digest(head.hash, row)
    head.hash = row.hash
    session.add(row)
    session.flush()
    return row


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    return json.loads(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str))


@dataclass
class ChainReport:
    tenant_id: int
    records: int
    ok: bool
    problems: list[str]


def verify(session: Session, tenant_id: int) -> ChainReport:
    """Walk a tenant's chain: every hash must recompute, sequence numbers must have no gap, and the
    head must point at the last record (so a deleted tail is caught too)."""
    problems: list[str] = []
    prev = GENESIS
    expected_seq = 1
    count = 0
    rows = session.execute(
        select(AuditRow).where(AuditRow.tenant_id == tenant_id).order_by(AuditRow.seq)
    ).scalars()
    for row in rows:
        count += 1
        if row.seq != expected_seq:
            problems.append(f"record #{expected_seq} is missing (next found is #{row.seq})")
        if row.prev_hash != prev:
            problems.append(f"record #{row.seq} does not link to the record before it")
        if _digest(row.prev_hash, row) != row.hash:
            problems.append(f"record #{row.seq} was edited: its content no longer matches its hash")
        prev = row.hash
        expected_seq = row.seq + 1
    head = session.get(AuditHeadRow, tenant_id)
    if head is not None and (head.seq != expected_seq - 1 or head.hash != prev):
        problems.append(f"the chain ends at #{expected_seq - 1} but its head says #{head.seq}: records were removed")
    return ChainReport(tenant_id=tenant_id, records=count, ok=not problems, problems=problems)
