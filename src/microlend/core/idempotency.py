"""Idempotent money requests (Stripe semantics), scoped per user: a key is the client's own, so two users of
a bank (or two clients signed in as different users) never replay each other's answers.

The key is claimed in the same transaction as the money movement it guards, so either both land or
neither does. Same key + same body -> the stored answer, one execution. Same key + another body -> 422.
A concurrent request with the same key waits for the first to finish, then replays its answer.
A request that failed (validation, conflict) is not stored: the client may fix it and retry the key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from microlend.core.clock import utcnow
from microlend.core.errors import Conflict, ValidationError
from microlend.core.identity import Principal
from microlend.core.tables import IdempotencyKeyRow
from microlend.core.uow import UnitOfWork

#: the longest key a client may send: with the user's prefix it still fits every key column (255)
MAX_KEY_LENGTH = 200


def user_key(who: Principal, key: str | None) -> str | None:
    """`key` in the namespace of the user who sent it: what is stored, here and in the use cases' own keys."""
    return None if key is None else f"user-{who.user_id}:{key}"


def request_hash(endpoint: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(f"{endpoint}\n{canonical}".encode()).hexdigest()


def run_idempotent(
    uow: UnitOfWork, who: Principal, key: str | None, endpoint: str, body: Any,
    execute: Callable[[], tuple[int, Any]],
) -> tuple[int, Any]:
    """Run `execute` (a use case on the same `uow`, returning (status_code, json_body)) at most once
    per (user, key). The use case's own `commit()` is deferred to this outer unit of work."""
    key = user_key(who, key)
    if key is None:
        return execute()
    tenant_id = who.tenant_id
    digest = request_hash(endpoint, body)
    with uow:
        s = uow.session
        claim = IdempotencyKeyRow(tenant_id=tenant_id, key=key, request_hash=digest, endpoint=endpoint,
                                  created_at=utcnow())
        try:
            with s.begin_nested():
                s.add(claim)
                s.flush()
        except IntegrityError:
            s.rollback()
            return _replay(uow, tenant_id, key, digest)
        status, response = execute()
        claim.status_code = status
        claim.response = json.loads(json.dumps(response, default=str))
        uow.commit()
    return status, response


def _replay(uow: UnitOfWork, tenant_id: int, key: str, digest: str) -> tuple[int, Any]:
    row = uow.session.execute(select(IdempotencyKeyRow).where(
        IdempotencyKeyRow.tenant_id == tenant_id, IdempotencyKeyRow.key == key)).scalar_one_or_none()
    if row is None or row.status_code is None:
        raise Conflict("a request with this Idempotency-Key is being processed; retry shortly")
    if row.request_hash != digest:
        raise ValidationError("Idempotency-Key: this key was used with a different request; use a new key",
                              field="Idempotency-Key")
    return row.status_code, row.response
