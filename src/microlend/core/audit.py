"""The audit trail: append-only, hash-chained per tenant, so an edited or deleted record is detected."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from microlend.core.clock import utcnow
from microlend.core.identity import Principal
from microlend.core.tables import AuditHeadRow, AuditRow

GENESIS = "0" * 64


_HEADS = cast(Table, AuditHeadRow.__table__)
_LOG = cast(Table, AuditRow.__table__)
# statements built once (with bind parameters), so writing a record does not rebuild and re-key them
_BUMP_HEAD = (update(_HEADS).where(_HEADS.c.tenant_id == bindparam("tid")).values(seq=_HEADS.c.seq + bindparam("n"))
              .returning(_HEADS.c.seq, _HEADS.c.hash))
_MOVE_HEAD = update(_HEADS).where(_HEADS.c.tenant_id == bindparam("tid")).values(hash=bindparam("hash"))
_INSERT_RECORD = insert(_LOG)


@dataclass
class AuditRecord:
    """One link of the chain as written (the columns of `audit_log` but its id)."""

    tenant_id: int
    seq: int
    at: datetime
    actor_user_id: int
    actor: str
    action: str
    object_type: str
    object_id: str
    before: Any
    after: Any
    reason: str
    prev_hash: str
    hash: str = ""


def _digest(prev_hash: str, row: AuditRow | AuditRecord) -> str:
    body = {
        "tenant_id": row.tenant_id, "seq": row.seq, "at": row.at.isoformat(),
        "actor_user_id": row.actor_user_id, "actor": row.actor, "action": row.action,
        "object_type": row.object_type, "object_id": row.object_id,
        "before": row.before, "after": row.after, "reason": row.reason,
    }
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    """What to append: who did what to which object (with before/after images and a reason)."""

    who: Principal
    action: str
    object_type: str
    object_id: object
    before: Any = None
    after: Any = None
    reason: str = ""


def record(
    session: Session, who: Principal, action: str, object_type: str, object_id: object,
    *, before: Any = None, after: Any = None, reason: str = "",
) -> AuditRecord:
    """Append one audit record in the caller's transaction: it lands or rolls back with the change."""
    return record_many(session, [Entry(who, action, object_type, object_id, before, after, reason)])[0]


def record_many(session: Session, entries: Sequence[Entry]) -> list[AuditRecord]:
    """Append records in the caller's transaction, in order: per tenant one move of the chain's head
    however many records (a decision and its shadow cost the statements of one record)."""
    session.flush()  # the change being audited goes first
    db = session.connection()  # Core statements straight on the connection: no ORM work to do here
    written: list[AuditRecord] = []
    for tenant_id in dict.fromkeys(e.who.tenant_id for e in entries):
        mine = [e for e in entries if e.who.tenant_id == tenant_id]
        # take the links and the previous hash in one statement; the row lock it takes on the head
        # serialises audit writers of a tenant until the transaction ends
        head = db.execute(_BUMP_HEAD, {"tid": tenant_id, "n": len(mine)}).one_or_none()
        if head is None:
            db.execute(insert(_HEADS).values(tenant_id=tenant_id, seq=len(mine), hash=GENESIS))
            seq, prev_hash = 1, GENESIS
        else:
            seq, prev_hash = head.seq - len(mine) + 1, head.hash
        at = utcnow()
        records = []
        for e in mine:
            # round-trip JSON now so the hash covers exactly what is stored
            rec = AuditRecord(
                tenant_id=tenant_id, seq=seq, at=at, actor_user_id=e.who.user_id, actor=e.who.username,
                action=e.action, object_type=e.object_type, object_id=str(e.object_id),
                before=_jsonable(e.before), after=_jsonable(e.after), reason=e.reason, prev_hash=prev_hash,
            )
            rec.hash = prev_hash = _digest(prev_hash, rec)
            records.append(rec)
            seq += 1
        rows = [vars(r) for r in records]
        db.execute(_INSERT_RECORD, rows[0] if len(rows) == 1 else rows)  # one row: no batch path
        db.execute(_MOVE_HEAD, {"tid": tenant_id, "hash": prev_hash})
        written += records
    return written


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
