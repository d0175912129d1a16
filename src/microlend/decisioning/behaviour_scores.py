"""The monthly behaviour scores (行为评分) kept per credit line or loan: written by the monthly scoring run,
read by the limit review and the limit desk. One row per subject and month; a re-run in the same month
replaces that month's rows.

Kept compactly: each run records the scorecard's version and definition once (`BehaviourScoreRunRow`), and a
subject's row holds its score, band, days past due, and per factor of the definition (in order) the bin it
fell in (`factor_bins`: one character each, `-` not applicable) and the value it saw (`factor_values`:
comma-separated, empty for none). The breakdown a person reads (`StoredScore.factors`) is rebuilt from the two;
rows kept before the runs carry their JSON breakdown and are read as they are."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.frames import read_frame, write_frame
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.decisioning.behaviour import BANDS, BASE_POINTS, FACTORS, SCORECARD_VERSION, FactorPoints
from microlend.decisioning.tables import BehaviourScoreRow, BehaviourScoreRunRow


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
    def from_row(cls, r: BehaviourScoreRow, run: BehaviourScoreRunRow | None = None) -> StoredScore:
        """A stored score with its breakdown: a compact row explained by its run's definition (`run`), a row
        kept before the runs by its own JSON breakdown."""
        if r.run_id is None:
            assert r.as_of is not None and r.scorecard_version is not None
            return cls(r.subject_kind, r.subject_id, r.customer_id, r.month, r.as_of, r.score, r.band,
                       tuple(FactorPoints.from_dict(f) for f in r.factors or []), r.scorecard_version)
        if run is None or run.id != r.run_id:
            raise ValueError(f"behaviour score {r.id}: explained by run {r.run_id}, not given")
        return cls(r.subject_kind, r.subject_id, r.customer_id, r.month, run.as_of, r.score, r.band,
                   explain(run.definition, r.factor_bins or "", r.factor_values or ""), run.scorecard_version)


def scorecard_definition() -> dict[str, Any]:
    """The scorecard as a run keeps it once: version, base points, bands, and per factor in order its name,
    whether only lines earn it, and its bins (bounds, missing, points) — what rebuilds every row's breakdown."""
    return {"version": SCORECARD_VERSION, "base_points": BASE_POINTS, "bands": [[low, band] for low, band in BANDS],
            "factors": [{"name": f.name, "lines_only": f.lines_only,
                         "bins": [{"low": b.low, "high": b.high, "missing": b.missing, "points": b.points}
                                  for b in f.bins]} for f in FACTORS]}


def compact(factors: Sequence[FactorPoints | Mapping[str, Any]]) -> tuple[str, str]:
    """(factor_bins, factor_values) of a breakdown in the scorecard's factor order."""
    parts = [f if isinstance(f, FactorPoints) else FactorPoints.from_dict(f) for f in factors]
    by_name = {f.name: f for f in parts}
    ordered = [by_name[f.name] for f in FACTORS]
    return ("".join("-" if f.bin < 0 else str(f.bin) for f in ordered),
            ",".join("" if f.value is None else str(f.value) for f in ordered))


def explain(definition: Mapping[str, Any], bins: str, values: str) -> tuple[FactorPoints, ...]:
    """The breakdown of a compact row: per factor of the run's definition, its value, bin and the bin's points
    (0 where the factor does not apply)."""
    factors = definition["factors"]
    seen = values.split(",")
    if len(bins) != len(factors) or len(seen) != len(factors):
        raise ValueError(f"a compact score holds {len(bins)} bins and {len(seen)} values for {len(factors)} factors")
    out = []
    for factor, code, value in zip(factors, bins, seen, strict=True):
        index = -1 if code == "-" else int(code)
        points = 0 if index < 0 else int(factor["bins"][index]["points"])
        out.append(FactorPoints(str(factor["name"]), None if value == "" else int(value), points, index))
    return tuple(out)


def month_of(on: date) -> str:
    return f"{on.year:04d}-{on.month:02d}"


_COMPACT = {"subject_kind": pl.Utf8, "subject_id": pl.Int64, "customer_id": pl.Int64, "score": pl.Int64,
            "band": pl.Utf8, "current_dpd": pl.Int64, "factor_bins": pl.Utf8, "factor_values": pl.Utf8}


def store_month(uow: UnitOfWork, who: Principal, on: date, scores: Sequence[dict[str, Any]]) -> int:
    """Replace the month's scores of the caller's bank with `scores` (subject_kind, subject_id, customer_id,
    score, band, factors as dicts) in one unit of work, audited once; returns how many were kept."""
    who.require(Permission.MANAGE_CREDIT_LINES)
    rows = []
    for r in scores:
        bins, values = compact(r["factors"])
        dpd = next((f.get("value") for f in r["factors"] if f.get("name") == "current_dpd"), None)
        rows.append((r["subject_kind"], r["subject_id"], r["customer_id"], r["score"], r["band"], dpd, bins, values))
    return _keep_month(uow, who, on, pl.DataFrame(rows, schema=_COMPACT, orient="row"))


def factor_bins(scored: pl.DataFrame) -> pl.Expr:
    """`compact`'s factor_bins of every scored row (the `bin_*` columns), built set-based."""
    return pl.concat_str([pl.when(pl.col(f"bin_{f.name}") < 0).then(pl.lit("-"))
                          .otherwise(pl.col(f"bin_{f.name}").cast(pl.Utf8)) for f in FACTORS])


def factor_values(scored: pl.DataFrame) -> pl.Expr:
    """`compact`'s factor_values of every scored row (the factor value columns), built set-based."""
    return pl.concat_str([pl.col(f.name).cast(pl.Int64).cast(pl.Utf8).fill_null("") if f.name in scored.columns
                          else pl.lit("") for f in FACTORS], separator=",")


def store_month_frame(uow: UnitOfWork, who: Principal, on: date, scored: pl.DataFrame) -> int:
    """`store_month` of a whole scored book at once: `scored` has subject_kind, subject_id, customer_id, score,
    band and the factor columns of `score_facts` (values, `bin_*`); its rows are built by columns and written in
    bulk (COPY on PostgreSQL, one executemany on SQLite), as `store_month` keeps them."""
    who.require(Permission.MANAGE_CREDIT_LINES)
    dpd = pl.col("current_dpd").cast(pl.Int64) if "current_dpd" in scored.columns else pl.lit(None, dtype=pl.Int64)
    return _keep_month(uow, who, on, scored.select(
        pl.col("subject_kind").cast(pl.Utf8), pl.col("subject_id").cast(pl.Int64),
        pl.col("customer_id").cast(pl.Int64), pl.col("score").cast(pl.Int64), pl.col("band").cast(pl.Utf8),
        dpd.alias("current_dpd"), factor_bins(scored).alias("factor_bins"),
        factor_values(scored).alias("factor_values")))


def _keep_month(uow: UnitOfWork, who: Principal, on: date, rows: pl.DataFrame) -> int:
    """The month's rows become `rows` (`_COMPACT`), audited once: the first run of a month inserts them in
    bulk; a later run in the same month (the same scorecard) keeps the month's run, dated anew, and writes only
    the rows that are new or changed and deletes those of subjects no longer scored (`_merge_month`), so a
    rescan of a quiet book writes little. Another scorecard starts a new run and every row is rewritten."""
    month = month_of(on)
    definition = scorecard_definition()
    with uow:
        s = uow.session
        kept = s.execute(select(BehaviourScoreRunRow).where(
            BehaviourScoreRunRow.tenant_id == who.tenant_id, BehaviourScoreRunRow.month == month)
            .order_by(BehaviourScoreRunRow.id.desc()).limit(1)).scalar_one_or_none()
        held = s.execute(select(BehaviourScoreRow.id).where(
            BehaviourScoreRow.tenant_id == who.tenant_id, BehaviourScoreRow.month == month).limit(1)).first()
        if kept is not None and kept.scorecard_version == SCORECARD_VERSION and kept.definition == definition:
            run = kept
            run.as_of, run.scored, run.created_at = on, rows.height, utcnow()
        else:
            run = BehaviourScoreRunRow(tenant_id=who.tenant_id, month=month, as_of=on,
                                       scorecard_version=SCORECARD_VERSION, definition=definition,
                                       scored=rows.height, created_at=utcnow())
            s.add(run)
        s.flush()
        if held is None:
            write_frame(s, BehaviourScoreRow.__tablename__, rows.select(
                pl.lit(who.tenant_id, dtype=pl.Int64).alias("tenant_id"),
                pl.lit(run.id, dtype=pl.Int64).alias("run_id"), *_COMPACT, pl.lit(month).alias("month")))
            written, removed = rows.height, 0
        else:
            written, removed = _merge_month(s, who.tenant_id, month, run.id, rows)
        audit.record(s, who, "behaviour_score.run", "behaviour_scores", 0,
                     after={"month": month, "scored": rows.height, "scorecard": SCORECARD_VERSION, "run_id": run.id,
                            "written": written, "removed": removed})
        uow.commit()
    return rows.height


_STAGE = "behaviour_scores_stage"
_CHUNK = 5000
#: The compact columns a later run of the month writes (the legacy columns are cleared).
_KEPT_COLUMNS = ("customer_id", "score", "band", "current_dpd", "factor_bins", "factor_values")


def _merge_month(s: Session, tenant_id: int, month: str, run_id: int, rows: pl.DataFrame) -> tuple[int, int]:
    """Set-based diff of the month's stored rows with `rows`: the stored rows read as columns and compared in
    Polars, the rows of subjects no longer scored deleted, only the new and changed ones staged in a temporary
    table (COPY / executemany) and upserted (INSERT ... ON CONFLICT DO UPDATE), the same on SQLite and
    PostgreSQL; (rows written, rows deleted)."""
    postgres = s.get_bind().dialect.name == "postgresql"
    params = {"tenant": tenant_id, "month": month, "run": run_id}
    stored = read_frame(s, "SELECT id, subject_kind, subject_id, customer_id, score, band, current_dpd, factor_bins, "
                           "factor_values, CASE WHEN run_id = :run AND as_of IS NULL AND factors IS NULL AND "
                           "scorecard_version IS NULL AND created_at IS NULL THEN 1 ELSE 0 END "
                           "FROM behaviour_scores WHERE tenant_id = :tenant AND month = :month", params,
                        {"id": pl.Int64, **_COMPACT, "compact": pl.Int32})
    key = ["subject_kind", "subject_id"]
    gone = stored.join(rows.select(key), on=key, how="anti").get_column("id").to_list()
    for start in range(0, len(gone), _CHUNK):
        s.execute(delete(BehaviourScoreRow).where(BehaviourScoreRow.tenant_id == tenant_id,
                                                  BehaviourScoreRow.id.in_(gone[start:start + _CHUNK])))
    same = stored.filter(pl.col("compact") == 1).select(*_COMPACT)
    changed = rows.select(*_COMPACT).join(same, on=list(_COMPACT), how="anti", nulls_equal=True)
    if changed.height == 0:
        return 0, len(gone)
    s.execute(text(f"DROP TABLE IF EXISTS {_STAGE}"))
    s.execute(text(f"CREATE TEMPORARY TABLE {_STAGE} (subject_kind VARCHAR(10) NOT NULL, subject_id BIGINT NOT NULL, "
                   "customer_id BIGINT, score INTEGER NOT NULL, band VARCHAR(2) NOT NULL, current_dpd INTEGER, "
                   "factor_bins VARCHAR(40), factor_values VARCHAR(200), PRIMARY KEY (subject_kind, subject_id))"
                   + (" ON COMMIT DROP" if postgres else "")))
    write_frame(s, _STAGE, changed)
    columns = ", ".join(_KEPT_COLUMNS)
    written = _count(s.execute(text(
        f"INSERT INTO behaviour_scores (tenant_id, run_id, month, subject_kind, subject_id, {columns}) "
        f"SELECT :tenant, :run, :month, subject_kind, subject_id, {columns} FROM {_STAGE} WHERE true "
        "ON CONFLICT (tenant_id, subject_kind, subject_id, month) DO UPDATE SET run_id = excluded.run_id, "
        + ", ".join(f"{c} = excluded.{c}" for c in _KEPT_COLUMNS)
        + ", as_of = NULL, factors = NULL, scorecard_version = NULL, created_at = NULL"), params))
    if not postgres:
        s.execute(text(f"DROP TABLE {_STAGE}"))
    return written, len(gone)


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _runs(uow: UnitOfWork, who: Principal, rows: Sequence[BehaviourScoreRow]) -> dict[int, BehaviourScoreRunRow]:
    ids = sorted({r.run_id for r in rows if r.run_id is not None})
    if not ids:
        return {}
    return {r.id: r for r in uow.session.execute(select(BehaviourScoreRunRow).where(
        BehaviourScoreRunRow.tenant_id == who.tenant_id, BehaviourScoreRunRow.id.in_(ids))).scalars()}


def stored_scores(uow: UnitOfWork, who: Principal, rows: Sequence[BehaviourScoreRow]) -> list[StoredScore]:
    """These rows of the caller's bank with their breakdowns (their runs read once), in the caller's unit of
    work."""
    runs = _runs(uow, who, rows)
    return [StoredScore.from_row(r, runs.get(r.run_id) if r.run_id is not None else None) for r in rows]


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
        return {r.subject_id: r for r in stored_scores(uow, who, list(uow.session.execute(query).scalars().all()))}


def score_history(uow: UnitOfWork, who: Principal, subject_kind: str, subject_id: int,
                  months: int = 12) -> list[StoredScore]:
    """A subject's stored scores, newest first (the approver's case shows the trend)."""
    with uow:
        rows = uow.session.execute(
            select(BehaviourScoreRow).where(BehaviourScoreRow.tenant_id == who.tenant_id,
                                            BehaviourScoreRow.subject_kind == subject_kind,
                                            BehaviourScoreRow.subject_id == subject_id)
            .order_by(BehaviourScoreRow.month.desc()).limit(months)).scalars().all()
        return stored_scores(uow, who, list(rows))


def scores_before(uow: UnitOfWork, who: Principal, month: str) -> list[tuple[str, int, int, int | None]]:
    """(subject kind, subject id, score, days past due then) of the newest month stored before `month`, for
    every subject scored in it: what an early-warning transition compares with."""
    return list(scores_before_frame(uow, who, month).iter_rows())


BEFORE_SCHEMA = {"subject_kind": pl.Utf8, "subject_id": pl.Int64, "score_before": pl.Int32, "dpd_before": pl.Int32}
_FACTOR_VALUES = pl.List(pl.Struct({"name": pl.Utf8, "value": pl.Int64}))


def scores_before_frame(uow: UnitOfWork, who: Principal, month: str) -> pl.DataFrame:
    """`scores_before` as columns (`BEFORE_SCHEMA`), read in one SQL statement; the days past due then are the
    row's `current_dpd` (a row kept before the runs: the value of its stored `current_dpd` factor, null where
    it has none, taken from the stored text set-based)."""
    with uow:
        s = uow.session
        previous = s.execute(select(func.max(BehaviourScoreRow.month)).where(
            BehaviourScoreRow.tenant_id == who.tenant_id, BehaviourScoreRow.month < month)).scalar_one_or_none()
        if previous is None:
            return pl.DataFrame(schema=BEFORE_SCHEMA)
        rows = read_frame(s, "SELECT subject_kind, subject_id, score, current_dpd, "
                             "CASE WHEN run_id IS NULL THEN factors END FROM behaviour_scores "
                             "WHERE tenant_id = :tenant AND month = :month",
                          {"tenant": who.tenant_id, "month": previous},
                          {"subject_kind": pl.Utf8, "subject_id": pl.Int64, "score_before": pl.Int32,
                           "current_dpd": pl.Int32, "factors": pl.Utf8})
    legacy = pl.col("factors").is_not_null()
    if rows.filter(legacy).height:
        old = rows.filter(legacy)
        rows = pl.concat([rows.filter(~legacy),
                          old.with_columns(stored_dpd(old.get_column("factors")).cast(pl.Int32).alias("current_dpd"))])
    return rows.select("subject_kind", "subject_id", "score_before", pl.col("current_dpd").alias("dpd_before"))


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
