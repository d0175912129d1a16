"""Storing decisions: the rows (inputs, versions, trace, outputs) and their audit records, with prepared
Core statements rather than the ORM unit of work — this is the decision engine's hot path. The audit
records of the decisions written together (a decision and its shadow) move the bank's audit chain once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, insert
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.identity import Principal
from microlend.decisioning.tables import DecisionRow

_DECISIONS = cast(Table, DecisionRow.__table__)
_INSERT = insert(_DECISIONS).returning(_DECISIONS.c.id, sort_by_parameter_order=True)


@dataclass(frozen=True)
class Pending:
    """One decision to store, with the shadow decision evaluated beside it (if any)."""

    who: Principal
    acted: dict[str, Any]
    shadow: dict[str, Any] | None


def write(session: Session, items: list[Pending]) -> list[tuple[int, int | None]]:
    """Insert the decisions (acted first, then shadows pointing at them) and their audit records, in the
    caller's transaction; the ids in the order of `items`."""
    db: Connection = session.connection()
    ids = _insert(db, [p.acted for p in items])
    shadows = [(k, {**p.shadow, "shadow_of": ids[k]}) for k, p in enumerate(items) if p.shadow is not None]
    shadow_ids: dict[int, int] = {}
    if shadows:
        returned = _insert(db, [values for _, values in shadows])
        shadow_ids = {k: i for (k, _), i in zip(shadows, returned, strict=True)}
    entries = []
    for k, p in enumerate(items):
        entries.append(_entry(p.who, ids[k], p.acted))
        if k in shadow_ids:
            entries.append(_entry(p.who, shadow_ids[k], cast(dict[str, Any], p.shadow)))
    # the audit records last: on PostgreSQL they hold the bank's audit head until the commit
    audit.record_many(session, entries)
    return [(ids[k], shadow_ids.get(k)) for k in range(len(items))]


def _insert(db: Connection, rows: list[dict[str, Any]]) -> list[int]:
    if len(rows) == 1:  # one row: a plain statement (a list would take the driver's batch path)
        return [int(db.execute(_INSERT, rows[0]).scalar_one())]
    return [int(i) for i in db.execute(_INSERT, rows).scalars()]


def _entry(who: Principal, decision_id: int, values: dict[str, Any]) -> audit.Entry:
    return audit.Entry(who, "decision.create", "decision", decision_id, after={
        "outcome": values["outcome"], "arm": values["arm"], "acted_on": values["acted_on"],
        "policy_hash": values["policy_hash"], "customer_id": values["customer_id"],
    })
