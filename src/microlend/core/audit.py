"""The audit trail: append-only, chained per tenant with HMAC-SHA256 under a key held outside the database
(MICROLEND_AUDIT_KEY, or a local key file), with a signed head: an edited record, a deleted tail, a deleted head
or a whole deleted chain is detected, even by someone who can rewrite every row of the database."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from sqlalchemy import Connection, Table, Text, bindparam, insert, select, type_coerce, union, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from microlend.core.clock import utcnow
from microlend.core.crypto import redact, redact_value
from microlend.core.db import json_text
from microlend.core.identity import Permission, Principal, system_principal
from microlend.core.settings import Settings, get_settings
from microlend.core.tables import AuditCheckRow, AuditHeadRow, AuditRow, TenantRow, UserRow

if TYPE_CHECKING:
    from microlend.core.uow import UnitOfWork

GENESIS = "0" * 64
KEY_FILE = "audit.key"


_HEADS = cast(Table, AuditHeadRow.__table__)
_LOG = cast(Table, AuditRow.__table__)
# statements built once (with bind parameters), so writing a record does not rebuild and re-key them
_BUMP_HEAD = (update(_HEADS).where(_HEADS.c.tenant_id == bindparam("tid")).values(seq=_HEADS.c.seq + bindparam("n"))
              .returning(_HEADS.c.seq, _HEADS.c.hash, _HEADS.c.keyed_from))
_MOVE_HEAD = (update(_HEADS).where(_HEADS.c.tenant_id == bindparam("tid"))
              .values(hash=bindparam("hash"), keyed_from=bindparam("keyed_from"), mac=bindparam("mac")))
_INSERT_RECORD = insert(_LOG)
_RECORD_COLUMNS = (_LOG.c.seq, _LOG.c.tenant_id, _LOG.c.at, _LOG.c.actor_user_id, _LOG.c.actor, _LOG.c.action,
                   _LOG.c.object_type, _LOG.c.object_id, _LOG.c.before, _LOG.c.after, _LOG.c.reason,
                   _LOG.c.prev_hash, _LOG.c.hash)
# what verify reads: the before/after images as the text stored (the keyed link covers that text, so it is
# not decoded and encoded again per record)
_CHAIN_COLUMNS = (_LOG.c.seq, _LOG.c.tenant_id, _LOG.c.at, _LOG.c.actor_user_id, _LOG.c.actor, _LOG.c.action,
                  _LOG.c.object_type, _LOG.c.object_id, type_coerce(_LOG.c.before, Text),
                  type_coerce(_LOG.c.after, Text), _LOG.c.reason, _LOG.c.prev_hash, _LOG.c.hash)


def chain_key(settings: Settings | None = None) -> bytes:
    """The HMAC key of the audit chain: from MICROLEND_AUDIT_KEY, or (local and test mode only, where the
    setting may be empty) from a random key kept in `data_dir/audit.key`. Never stored in the database."""
    s = settings or get_settings()
    if s.audit_key:
        return _derive(s.audit_key.encode())
    if s.mode == "production":  # the settings refuse this already; a key file must never stand in for it
        raise RuntimeError("MICROLEND_AUDIT_KEY must be set in production")
    return _derive(_key_file(s.data_dir.resolve()))


@lru_cache(maxsize=8)
def _derive(secret: bytes) -> bytes:
    return hashlib.sha256(b"microlend/audit-chain/" + secret).digest()


@lru_cache(maxsize=8)
def _key_file(data_dir: Path) -> bytes:
    """Read the local key file, creating it (0600, written whole then linked into place, so a concurrent
    first use reads a complete key) when there is none."""
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_hex(32).encode())
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            tmp.unlink()
    key = path.read_bytes().strip()
    if len(key) < 32:
        raise RuntimeError(f"{path}: the audit key file is damaged (shorter than 32 characters)")
    return key


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


class _Linked(Protocol):
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


def _canonical(row: _Linked) -> bytes:
    body = {
        "tenant_id": row.tenant_id, "seq": row.seq, "at": row.at.isoformat(),
        "actor_user_id": row.actor_user_id, "actor": row.actor, "action": row.action,
        "object_type": row.object_type, "object_id": row.object_id,
        "before": row.before, "after": row.after, "reason": row.reason,
    }
    return json.dumps(body, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":")).encode()


def _legacy_digest(prev_hash: str, row: _Linked) -> str:
    """The unkeyed link of records written before the chain was keyed (seq < the head's keyed_from)."""
    return hashlib.sha256(prev_hash.encode() + _canonical(row)).hexdigest()


_FIELDS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _keyed_message(prev_hash: str, tenant_id: int, seq: int, at: datetime, actor_user_id: int, actor: str,
                   action: str, object_type: str, object_id: str, reason: str, before: str | None,
                   after: str | None) -> bytes:
    """What a keyed link covers: the previous hash, the record's fields (one JSON array) and its before/after
    images as stored (JSON text, "null" for none), apart by a separator no JSON text contains unescaped."""
    fields = _FIELDS.encode([tenant_id, seq, at.isoformat(), actor_user_id, actor, action, object_type, object_id,
                            reason])
    return "\x1e".join((prev_hash, fields, before or "null", after or "null")).encode()


def _digest(key: bytes, prev_hash: str, rec: AuditRecord) -> str:
    """A keyed link: without the key nobody can recompute it after editing a record."""
    message = _keyed_message(prev_hash, rec.tenant_id, rec.seq, rec.at, rec.actor_user_id, rec.actor, rec.action,
                             rec.object_type, rec.object_id, rec.reason, json_text(rec.before),
                             json_text(rec.after))
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _head_mac(key: bytes, tenant_id: int, seq: int, hash_: str, keyed_from: int) -> str:
    return hmac.new(key, f"head|{tenant_id}|{seq}|{hash_}|{keyed_from}".encode(), hashlib.sha256).hexdigest()


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
    key = chain_key()
    written: list[AuditRecord] = []
    for tenant_id in dict.fromkeys(e.who.tenant_id for e in entries):
        written += _append(db, key, tenant_id, [e for e in entries if e.who.tenant_id == tenant_id])
    return written


def _append(db: Connection, key: bytes, tenant_id: int, mine: Sequence[Entry], *, seal: bool = False) -> list[
        AuditRecord]:
    """Link `mine` to the tenant's chain and move its signed head. `seal` makes the first of them the first
    keyed record of a chain written before the key existed (its HMAC covers the last unkeyed hash)."""
    # take the links and the previous hash in one statement; the row lock it takes on the head
    # serialises audit writers of a tenant until the transaction ends
    head = db.execute(_BUMP_HEAD, {"tid": tenant_id, "n": len(mine)}).one_or_none()
    if head is None:
        db.execute(insert(_HEADS).values(tenant_id=tenant_id, seq=len(mine), hash=GENESIS, keyed_from=1, mac=""))
        seq, prev_hash, keyed_from = 1, GENESIS, 1
    else:
        seq, prev_hash, keyed_from = head.seq - len(mine) + 1, head.hash, head.keyed_from
    if seal:
        keyed_from = seq
    at = utcnow()
    records = []
    for e in mine:
        # round-trip JSON now so the hash covers exactly what is stored
        rec = AuditRecord(
            tenant_id=tenant_id, seq=seq, at=at, actor_user_id=e.who.user_id, actor=e.who.username,
            action=e.action, object_type=e.object_type, object_id=str(e.object_id),
            before=_jsonable(e.before), after=_jsonable(e.after), reason=e.reason, prev_hash=prev_hash,
        )
        rec.hash = prev_hash = _digest(key, prev_hash, rec)
        records.append(rec)
        seq += 1
    rows = [vars(r) for r in records]
    db.execute(_INSERT_RECORD, rows[0] if len(rows) == 1 else rows)  # one row: no batch path
    db.execute(_MOVE_HEAD, {"tid": tenant_id, "hash": prev_hash, "keyed_from": keyed_from,
                            "mac": _head_mac(key, tenant_id, seq - 1, prev_hash, keyed_from)})
    return records


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    return json.loads(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str))


def read(session: Session, who: Principal, *, object_type: str | None = None, object_id: str | None = None,
         limit: int = 100) -> list[AuditRecord]:
    """The tenant's newest records first, for auditors. ID numbers and mobiles (a borrower's username is their
    mobile) are masked in who did it, the object and the before/after images unless the caller may see
    personal data."""
    who.require(Permission.VIEW_AUDIT)
    q = select(*_RECORD_COLUMNS).where(_LOG.c.tenant_id == who.tenant_id)
    if object_type:
        q = q.where(_LOG.c.object_type == object_type)
    if object_id:
        q = q.where(_LOG.c.object_id == object_id)
    rows = session.connection().execute(q.order_by(_LOG.c.seq.desc()).limit(limit))
    records = [AuditRecord(**r._asdict()) for r in rows]
    if who.can(Permission.VIEW_PERSONAL_DATA):
        return records
    return [replace(r, actor=redact(r.actor), object_id=redact(r.object_id), before=redact_value(r.before),
                    after=redact_value(r.after), reason=redact(r.reason)) for r in records]


@dataclass
class ChainReport:
    tenant_id: int
    records: int
    ok: bool
    problems: list[str]


def verify(session: Session, tenant_id: int, *, key: bytes | None = None) -> ChainReport:
    """Walk a tenant's chain in one ordered read: every link must recompute with the audit key (so an edited
    record is caught even when the later hashes were recomputed), sequence numbers must have no gap, the
    head's signature must hold and the head must point at the last record (so a deleted tail is caught),
    and a bank that exists must have a chain at all (its first record is written when it is created)."""
    key = key or chain_key()
    db = session.connection()
    head = db.execute(select(_HEADS.c.seq, _HEADS.c.hash, _HEADS.c.keyed_from, _HEADS.c.mac)
                      .where(_HEADS.c.tenant_id == tenant_id)).one_or_none()
    # an unsealed chain (keyed_from 0) is unkeyed throughout; _check_head reports it
    keyed_from = 1 if head is None else head.keyed_from if head.keyed_from > 0 else head.seq + 1
    chain = select(*_CHAIN_COLUMNS).where(_LOG.c.tenant_id == tenant_id).order_by(_LOG.c.seq)
    if db.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        # streamed (a server-side cursor on PostgreSQL, which needs a transaction): memory stays flat
        chain = chain.execution_options(yield_per=10_000)
    rows = db.execute(chain)
    count, last_seq, last_hash, problems = _walk(rows, key, keyed_from)
    if head is None:
        if count:
            problems.append(f"the chain's head is missing, though {count} records exist: it was deleted")
        elif _bank_exists(db, tenant_id):
            problems.append("the bank exists but its audit chain is empty: its records and head were deleted")
    else:
        problems += _check_head(key, tenant_id, head, last_seq, last_hash)
    return ChainReport(tenant_id=tenant_id, records=count, ok=not problems, problems=problems)


def _walk(rows: Any, key: bytes, keyed_from: int, *, after_seq: int = 0, after_hash: str = GENESIS
          ) -> tuple[int, int, str, list[str]]:
    """Check the records `rows` (in order) following record #after_seq, whose hash was `after_hash`: (records
    walked, last sequence number, last hash, problems)."""
    problems: list[str] = []
    prev, expected_seq, count = after_hash, after_seq + 1, 0
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for (seq, tenant_id, at, actor_user_id, actor, action, object_type, object_id, before, after, reason,
         prev_hash, hash_) in rows:
        count += 1
        if seq != expected_seq:
            problems.append(f"record #{expected_seq} is missing (next found is #{seq})")
        if prev_hash != prev:
            problems.append(f"record #{seq} does not link to the record before it")
        if seq >= keyed_from:
            link = mac.copy()
            link.update(_keyed_message(prev_hash, tenant_id, seq, at, actor_user_id, actor, action, object_type,
                                       object_id, reason, before, after))
            digest = link.hexdigest()
        else:
            digest = _legacy_digest(prev_hash, AuditRecord(
                tenant_id, seq, at, actor_user_id, actor, action, object_type, object_id, _decoded(before),
                _decoded(after), reason, prev_hash))
        if not hmac.compare_digest(digest, hash_):
            problems.append(f"record #{seq} was edited: its content no longer matches its hash")
        prev = hash_
        expected_seq = seq + 1
    return count, expected_seq - 1, prev, problems


def _decoded(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _check_head(key: bytes, tenant_id: int, head: Any, last_seq: int, last_hash: str, *, at_end: bool = True
                ) -> list[str]:
    """The head's signature, and (`at_end`: the walk reached the chain's end) that it points at the last record."""
    problems = []
    if head.keyed_from <= 0:
        problems.append("the chain was never sealed with the audit key: run `microlend db upgrade`")
    elif not hmac.compare_digest(head.mac, _head_mac(key, tenant_id, head.seq, head.hash, head.keyed_from)):
        problems.append("the chain's head was altered: its signature does not match (or the audit key changed)")
    if at_end and (head.seq != last_seq or head.hash != last_hash):
        problems.append(f"the chain ends at #{last_seq} but its head says #{head.seq}: records were removed")
    return problems


def _bank_exists(db: Connection, tenant_id: int) -> bool:
    return (db.execute(select(TenantRow.id).where(TenantRow.id == tenant_id)).first() is not None
            or db.execute(select(UserRow.id).where(UserRow.tenant_id == tenant_id).limit(1)).first() is not None)


# --- the stored check: verified once, then only the records written since --------------------------------------

#: a check walks the chain again from its first record when its last whole walk is older than this, so an edit
#: of a record verified already is caught within a day
FULL_CHECK_EVERY = timedelta(days=1)
#: the most records a view of the trail verifies past the stored check (the rest wait for the next check)
VIEW_CHECK_LIMIT = 2_000
#: the problems a stored check keeps
KEPT_PROBLEMS = 50
_CHECKS = cast(Table, AuditCheckRow.__table__)


@dataclass(frozen=True)
class ChainCheck:
    """A chain's verification as shown: the stored check (through record `records`, made at `checked_at`)
    and the records after it verified by this call (`verified_now`); `unverified` are left for the next check."""

    tenant_id: int
    ok: bool
    problems: list[str]
    records: int
    checked_at: datetime | None
    full_at: datetime | None
    verified_now: int
    unverified: int


@dataclass(frozen=True)
class _Stored:
    seq: int
    hash: str
    ok: bool
    problems: list[str]
    checked_at: datetime
    full_at: datetime


def _check_mac(key: bytes, tenant_id: int, s: _Stored) -> str:
    message = _FIELDS.encode(["check", tenant_id, s.seq, s.hash, s.ok, s.problems, s.checked_at.isoformat(),
                              s.full_at.isoformat()])
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def _stored_check(db: Connection, key: bytes, tenant_id: int) -> tuple[_Stored | None, list[str]]:
    """The tenant's stored check, or None (none yet, or its signature fails: then a problem says so)."""
    row = db.execute(select(_CHECKS).where(_CHECKS.c.tenant_id == tenant_id)).one_or_none()
    if row is None:
        return None, []
    stored = _Stored(row.seq, row.hash, row.ok, list(row.problems or []), row.checked_at, row.full_at)
    if not hmac.compare_digest(row.mac, _check_mac(key, tenant_id, stored)):
        return None, ["the stored check of the chain was altered: its signature does not match (or the audit key "
                      "changed)"]
    return stored, []


@dataclass(frozen=True)
class _Walked:
    records: int
    last_seq: int
    last_hash: str
    problems: list[str]
    unverified: int


def _walk_on(db: Connection, key: bytes, tenant_id: int, stored: _Stored | None, limit: int | None) -> _Walked:
    """Verify the records after the stored check (all of them, or the first `limit`): the record it stopped
    at must still be there unchanged, and the head must hold (and point at the last record when the walk
    reached it)."""
    head = db.execute(select(_HEADS.c.seq, _HEADS.c.hash, _HEADS.c.keyed_from, _HEADS.c.mac)
                      .where(_HEADS.c.tenant_id == tenant_id)).one_or_none()
    keyed_from = 1 if head is None else head.keyed_from if head.keyed_from > 0 else head.seq + 1
    after_seq, after_hash = (stored.seq, stored.hash) if stored is not None else (0, GENESIS)
    problems: list[str] = []
    if after_seq:
        anchor = db.execute(select(_LOG.c.hash).where(_LOG.c.tenant_id == tenant_id, _LOG.c.seq == after_seq)
                            ).scalar_one_or_none()
        if anchor is None:
            problems.append(f"record #{after_seq} was removed after it was verified")
        elif not hmac.compare_digest(anchor, after_hash):
            problems.append(f"record #{after_seq} was edited after it was verified: its hash changed")
    chain = (select(*_CHAIN_COLUMNS).where(_LOG.c.tenant_id == tenant_id, _LOG.c.seq > after_seq)
             .order_by(_LOG.c.seq))
    if limit is not None:
        chain = chain.limit(limit)
    elif db.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        chain = chain.execution_options(yield_per=10_000)  # streamed: memory stays flat
    count, last_seq, last_hash, found = _walk(db.execute(chain), key, keyed_from, after_seq=after_seq,
                                              after_hash=after_hash)
    problems += found
    at_end = limit is None or count < limit or (head is not None and head.seq == last_seq)
    if head is None:
        if count or after_seq:
            problems.append(f"the chain's head is missing, though {last_seq} records exist: it was deleted")
        elif _bank_exists(db, tenant_id):
            problems.append("the bank exists but its audit chain is empty: its records and head were deleted")
    else:
        problems += _check_head(key, tenant_id, head, last_seq, last_hash, at_end=at_end)
    unverified = 0 if at_end or head is None else max(0, head.seq - last_seq)
    return _Walked(count, last_seq, last_hash, problems, unverified)


def chain_status(session: Session, tenant_id: int, *, key: bytes | None = None, limit: int = VIEW_CHECK_LIMIT
                 ) -> ChainCheck:
    """What the audit page shows, writing nothing: the stored check, with the records written after it verified
    now (at most `limit`; more are left to the next check). Without a stored check the chain's first `limit`
    records are verified."""
    key = key or chain_key()
    db = session.connection()
    stored, problems = _stored_check(db, key, tenant_id)
    walked = _walk_on(db, key, tenant_id, stored, limit)
    problems = (stored.problems if stored else []) + problems + walked.problems
    return ChainCheck(tenant_id=tenant_id, ok=not problems and (stored is None or stored.ok), problems=problems,
                      records=walked.last_seq, checked_at=stored.checked_at if stored else None,
                      full_at=stored.full_at if stored else None, verified_now=walked.records,
                      unverified=walked.unverified)


def check_chain(uow: UnitOfWork, who: Principal, *, full: bool = False, key: bytes | None = None) -> ChainCheck:
    """Verify the bank's chain on from where its stored check stopped (from its first record when there is no
    check, when `full`, or when the last whole walk is more than `FULL_CHECK_EVERY` old), in one read-only
    snapshot, and store how far it got, when, and the outcome. A failure found stays in the stored check
    until a whole walk finds the chain intact."""
    who.require(Permission.VIEW_AUDIT)
    key = key or chain_key()
    now = utcnow().replace(microsecond=0)
    with uow.read_only(streamed=True):
        db = uow.session.connection()
        stored, problems = _stored_check(db, key, who.tenant_id)
        if stored is not None and (full or now - stored.full_at >= FULL_CHECK_EVERY):
            stored = None
        walked = _walk_on(db, key, who.tenant_id, stored, None)
    problems = ((stored.problems if stored else []) + problems + walked.problems)[:KEPT_PROBLEMS]
    result = _Stored(walked.last_seq, walked.last_hash, (stored is None or stored.ok) and not problems, problems,
                     now, stored.full_at if stored is not None else now)
    _store(uow, key, who.tenant_id, result, whole=stored is None)
    return ChainCheck(tenant_id=who.tenant_id, ok=result.ok, problems=result.problems, records=result.seq,
                      checked_at=now, full_at=result.full_at, verified_now=walked.records, unverified=0)


def _store(uow: UnitOfWork, key: bytes, tenant_id: int, result: _Stored, *, whole: bool) -> None:
    """Keep `result` as the tenant's check, unless a check that ran alongside got further, or found a failure
    that only a whole walk may clear."""
    values = {"seq": result.seq, "hash": result.hash, "ok": result.ok, "problems": result.problems,
              "checked_at": result.checked_at, "full_at": result.full_at, "mac": _check_mac(key, tenant_id, result)}
    try:
        with uow:
            db = uow.session.connection()
            current = db.execute(select(_CHECKS.c.seq, _CHECKS.c.ok).where(_CHECKS.c.tenant_id == tenant_id)
                                 .with_for_update()).one_or_none()
            if current is None:
                db.execute(insert(_CHECKS).values(tenant_id=tenant_id, **values))
            elif not ((current.seq > result.seq and (not whole or not current.ok))
                      or (not whole and result.ok and not current.ok)):
                db.execute(update(_CHECKS).where(_CHECKS.c.tenant_id == tenant_id).values(**values))
            uow.commit()
    except IntegrityError:
        pass  # the tenant's first check, stored at the same moment by another: its outcome stands


def chain_tenants(session: Session) -> list[int]:
    """Every tenant id with a bank, a user or any part of an audit chain: what a full verification covers (a
    chain whose bank row was removed is still checked)."""
    q = union(select(TenantRow.id), select(UserRow.tenant_id), select(_HEADS.c.tenant_id),
              select(_LOG.c.tenant_id).distinct())
    return sorted(int(t) for t in session.connection().execute(q).scalars())


def seal_legacy_chains(db: Connection) -> int:
    """Once, when the chain becomes keyed (`migrate.upgrade` calls it right after the revision that adds the
    key's columns): every bank's chain gets a keyed record linking to its last unkeyed one (or a first record
    where it had none), and a signed head. The unkeyed records before it keep verifying as SHA-256 links;
    editing one breaks the keyed link after them. Returns the chains sealed."""
    key = chain_key()
    tenants = [int(t) for t in db.execute(union(select(TenantRow.id), select(_HEADS.c.tenant_id))).scalars()]
    for tenant_id in sorted(tenants):
        head = db.execute(select(_HEADS.c.seq).where(_HEADS.c.tenant_id == tenant_id)).scalar_one_or_none()
        who = system_principal(tenant_id, "audit")
        _append(db, key, tenant_id, [Entry(who, "audit.keyed", "audit_chain", tenant_id,
                                           after={"unkeyed_records": head or 0})], seal=True)
    return len(tenants)
