"""The monthly behaviour scores (行为评分) kept per credit line or loan: written by the monthly scoring run,
read by the limit review and the limit desk. One row per subject and month; a re-run in the same month
replaces that month's rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import delete, func, select

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.decisioning.behaviour import SCORECARD_VERSION, FactorPoints
from microlend.decisioning.tables import BehaviourScoreRow


@dataclass(frozen=True)
class StoredScore:
    subject_kind: str
    subject_id: int
    customer_id: int | None
    month: str
    as_of: date
    score: int
    band: str
    factors: tuple[FactorPoints, ...]
    scorecard_version: str

    @classmethod
    def from_row(cls, r: BehaviourScoreRow) -> StoredScore:
        return cls(r.subject_kind, r.subject_id, r.customer_id, r.month, r.as_of, r.score, r.band,
                   tuple(FactorPoints.from_dict(f) for f in r.factors or []), r.scorecard_version)


def month_of(on: date) -> str:
    return f"{on.year:04d}-{on.month:02d}"


def store_month(uow: UnitOfWork, who: Principal, on: date, scores: Sequence[dict[str, Any]]) -> int:
    """Replace the month's scores of the caller's bank with `scores` (subject_kind, subject_id, customer_id,
    score, band, factors as dicts) in one unit of work, audited once; returns how many were kept."""
    who.require(Permission.MANAGE_CREDIT_LINES)
    month = month_of(on)
    now = utcnow()
    with uow:
        s = uow.session
        s.execute(delete(BehaviourScoreRow).where(BehaviourScoreRow.tenant_id == who.tenant_id,
                                                  BehaviourScoreRow.month == month))
        if scores:
            s.execute(BehaviourScoreRow.__table__.insert(), [  # type: ignore[attr-defined]
            {"tenant_id": who.tenant_id, "subject_kind": r["subject_kind"], "subject_id": r["subject_id"],
             "customer_id": r["customer_id"], "month": month, "as_of": on, "score": r["score"], "band": r["band"],
             "factors": r["factors"], "scorecard_version": SCORECARD_VERSION, "created_at": now}
            for r in scores])
        audit.record(s, who, "behaviour_score.run", "behaviour_scores", 0,
                     after={"month": month, "scored": len(scores), "scorecard": SCORECARD_VERSION})
        uow.commit()
    return len(scores)


def latest_scores(uow: UnitOfWork, who: Principal, subject_kind: str,
                  subject_ids: Sequence[int] | None = None) -> dict[int, StoredScore]:
    """The newest stored score of each subject of the caller's bank (of these ids, or all)."""
    with uow:
        newest = (select(BehaviourScoreRow.subject_id, func.max(BehaviourScoreRow.month).label("month"))
                  .where(BehaviourScoreRow.tenant_id == who.tenant_id,
                         BehaviourScoreRow.subject_kind == subject_kind)
                  .group_by(BehaviourScoreRow.subject_id).subquery())
        query = (select(BehaviourScoreRow)
                 .join(newest, (newest.c.subject_id == BehaviourScoreRow.subject_id)
                       & (newest.c.month == BehaviourScoreRow.month))
                 .where(BehaviourScoreRow.tenant_id == who.tenant_id,
                        BehaviourScoreRow.subject_kind == subject_kind))
        if subject_ids is not None:
            query = query.where(BehaviourScoreRow.subject_id.in_(list(subject_ids)))
        return {r.subject_id: StoredScore.from_row(r) for r in uow.session.execute(query).scalars().all()}


def score_history(uow: UnitOfWork, who: Principal, subject_kind: str, subject_id: int,
                  months: int = 12) -> list[StoredScore]:
    """A subject's stored scores, newest first (the approver's case shows the trend)."""
    with uow:
        rows = uow.session.execute(
            select(BehaviourScoreRow).where(BehaviourScoreRow.tenant_id == who.tenant_id,
                                            BehaviourScoreRow.subject_kind == subject_kind,
                                            BehaviourScoreRow.subject_id == subject_id)
            .order_by(BehaviourScoreRow.month.desc()).limit(months)).scalars().all()
        return [StoredScore.from_row(r) for r in rows]


def scores_before(uow: UnitOfWork, who: Principal, month: str) -> list[tuple[str, int, int, int | None]]:
    """(subject kind, subject id, score, days past due then) of the newest month stored before `month`, for
    every subject scored in it: what an early-warning transition compares with."""
    with uow:
        s = uow.session
        previous = s.execute(select(func.max(BehaviourScoreRow.month)).where(
            BehaviourScoreRow.tenant_id == who.tenant_id, BehaviourScoreRow.month < month)).scalar_one_or_none()
        if previous is None:
            return []
        rows = s.execute(select(BehaviourScoreRow.subject_kind, BehaviourScoreRow.subject_id, BehaviourScoreRow.score,
                                BehaviourScoreRow.factors).where(
            BehaviourScoreRow.tenant_id == who.tenant_id, BehaviourScoreRow.month == previous)).all()
    out = []
    for kind, subject_id, score, factors in rows:
        dpd = next((f.get("value") for f in factors or [] if f.get("name") == "current_dpd"), None)
        out.append((str(kind), int(subject_id), int(score), None if dpd is None else int(dpd)))
    return out
