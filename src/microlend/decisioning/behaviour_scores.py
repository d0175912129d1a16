"""The monthly behaviour scores (行为评分) kept per credit line or loan: written by the monthly scoring run,
read by the limit review and the limit desk. One row per subject and month; a re-run in the same month
replaces that month's rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl
from sqlalchemy import delete, func, select

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.frames import read_frame, write_frame
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.decisioning.behaviour import FACTORS, SCORECARD_VERSION, FactorPoints
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


def factors_json(scored: pl.DataFrame) -> pl.Expr:
    """The stored text of each scored row's factor breakdown (`factors_of(...)` as a JSONText column keeps it:
    keys sorted, the value null where the row has none), built set-based."""
    parts = []
    for f in FACTORS:
        value = pl.col(f.name).cast(pl.Utf8).fill_null("null") if f.name in scored.columns else pl.lit("null")
        parts.append(pl.concat_str([
            pl.lit('{"bin": '), pl.col(f"bin_{f.name}").cast(pl.Utf8), pl.lit(', "name": "' + f.name + '"'),
            pl.lit(', "points": '), pl.col(f"points_{f.name}").cast(pl.Utf8), pl.lit(', "value": '), value,
            pl.lit("}")]))
    return pl.concat_str([pl.lit("["), pl.concat_str(parts, separator=", "), pl.lit("]")])


def store_month_frame(uow: UnitOfWork, who: Principal, on: date, scored: pl.DataFrame) -> int:
    """`store_month` of a whole scored book at once: `scored` has subject_kind, subject_id, customer_id, score,
    band and the factor columns of `score_facts` (values, `bin_*`, `points_*`); its rows are written in bulk
    (COPY on PostgreSQL, one executemany on SQLite) with the same stored text as `store_month`."""
    who.require(Permission.MANAGE_CREDIT_LINES)
    month = month_of(on)
    now = utcnow()
    rows = scored.select(
        pl.lit(who.tenant_id, dtype=pl.Int64).alias("tenant_id"),
        pl.col("subject_kind").cast(pl.Utf8), pl.col("subject_id").cast(pl.Int64),
        pl.col("customer_id").cast(pl.Int64), pl.lit(month).alias("month"), pl.lit(on).alias("as_of"),
        pl.col("score").cast(pl.Int64), pl.col("band").cast(pl.Utf8), factors_json(scored).alias("factors"),
        pl.lit(SCORECARD_VERSION).alias("scorecard_version"),
        pl.lit(now.replace(tzinfo=None)).cast(pl.Datetime("us")).alias("created_at"))
    with uow:
        s = uow.session
        s.execute(delete(BehaviourScoreRow).where(BehaviourScoreRow.tenant_id == who.tenant_id,
                                                  BehaviourScoreRow.month == month))
        write_frame(s, BehaviourScoreRow.__tablename__, rows)
        audit.record(s, who, "behaviour_score.run", "behaviour_scores", 0,
                     after={"month": month, "scored": rows.height, "scorecard": SCORECARD_VERSION})
        uow.commit()
    return rows.height


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
    return list(scores_before_frame(uow, who, month).iter_rows())


BEFORE_SCHEMA = {"subject_kind": pl.Utf8, "subject_id": pl.Int64, "score_before": pl.Int32, "dpd_before": pl.Int32}
_FACTOR_VALUES = pl.List(pl.Struct({"name": pl.Utf8, "value": pl.Int64}))


def scores_before_frame(uow: UnitOfWork, who: Principal, month: str) -> pl.DataFrame:
    """`scores_before` as columns (`BEFORE_SCHEMA`), read in one SQL statement; the days past due then are the
    value of the stored `current_dpd` factor (null where it has none), taken from the stored text set-based."""
    with uow:
        s = uow.session
        previous = s.execute(select(func.max(BehaviourScoreRow.month)).where(
            BehaviourScoreRow.tenant_id == who.tenant_id, BehaviourScoreRow.month < month)).scalar_one_or_none()
        if previous is None:
            return pl.DataFrame(schema=BEFORE_SCHEMA)
        rows = read_frame(s, "SELECT subject_kind, subject_id, score, factors FROM behaviour_scores "
                             "WHERE tenant_id = :tenant AND month = :month",
                          {"tenant": who.tenant_id, "month": previous},
                          {"subject_kind": pl.Utf8, "subject_id": pl.Int64, "score_before": pl.Int32,
                           "factors": pl.Utf8})
    return rows.select("subject_kind", "subject_id", "score_before",
                       stored_dpd(rows.get_column("factors")).cast(pl.Int32).alias("dpd_before"))


#: The stored `current_dpd` factor (a flat JSON object) and its value as the stored text has it.
_DPD_FACTOR = r'\{[^{}]*"name"\s*:\s*"current_dpd"[^{}]*\}'
_DPD_VALUE = r'"value"\s*:\s*(-?[0-9]+|null)\s*[,}]'


def stored_dpd(factors: pl.Series) -> pl.Series:
    """The value of the `current_dpd` factor in each stored factor breakdown (JSON text; null where it has none):
    read off the text where its factor is a plain object with an integer or null value, decoded as JSON
    otherwise (the same value either way)."""
    frame = pl.DataFrame({"factors": factors}).with_row_index("row").with_columns(
        pl.col("factors").str.extract(_DPD_FACTOR, 0).str.extract(_DPD_VALUE, 1).alias("text"))
    plain = frame.filter(pl.col("text").is_not_null()).select(
        "row", pl.when(pl.col("text") == "null").then(None).otherwise(pl.col("text")).cast(pl.Int64).alias("dpd"))
    rest = frame.filter(pl.col("text").is_null()).select("row", (
        pl.col("factors").str.json_decode(_FACTOR_VALUES)
        .list.filter(pl.element().struct.field("name") == "current_dpd").list.first().struct.field("value")
        .cast(pl.Int64).alias("dpd")))
    return pl.concat([plain, rest]).sort("row").get_column("dpd")
