"""Storing decisions: the rows (inputs, versions, trace, outputs) and their audit records, with prepared
Core statements rather than the ORM unit of work — this is the decision engine's hot path. A decision
and its shadow move the bank's audit chain once."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Connection, Table, insert
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.identity import Principal
from microlend.decisioning.tables import DecisionRow

_DECISIONS = cast(Table, DecisionRow.__table__)
_INSERT = insert(_DECISIONS).returning(_DECISIONS.c.id)


def write(session: Session, who: Principal, acted: dict[str, Any],
          shadow: dict[str, Any] | None = None) -> tuple[int, int | None]:
    """Insert a decision (and the shadow decision evaluated beside it, pointing at it) with their audit
    records, in the caller's transaction; returns (decision id, shadow id)."""
    db: Connection = session.connection()
    decision_id = int(db.execute(_INSERT, acted).scalar_one())
    entries = [_entry(who, decision_id, acted)]
    shadow_id = None
    if shadow is not None:
        shadow_id = int(db.execute(_INSERT, {**shadow, "shadow_of": decision_id}).scalar_one())
        entries.append(_entry(who, shadow_id, shadow))
    # the audit records last: on PostgreSQL they hold the bank's audit head until the commit
    audit.record_many(session, entries)
    return decision_id, shadow_id


def _entry(who: Principal, decision_id: int, values: dict[str, Any]) -> audit.Entry:
    return audit.Entry(who, "decision.create", "decision", decision_id, after={
        "outcome": values["outcome"], "arm": values["arm"], "acted_on": values["acted_on"],
        "policy_hash": values["policy_hash"], "customer_id": values["customer_id"],
    })
