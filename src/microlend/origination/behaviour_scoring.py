"""The monthly behaviour score (月度行为评分) of every open credit line and every active loan outside a line:
the bank's own servicing history read set-based (two queries), the decisioning scorecard applied with Polars,
kept per subject and month. The limit review scores with it, not with the application's profile."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import partial

import polars as pl
import pyarrow as pa

from microlend.batch.engine import BatchEngine
from microlend.core.identity import Permission, Principal
from microlend.core.tenancy import business_date
from microlend.core.uow import UnitOfWork
from microlend.decisioning import behaviour
from microlend.decisioning.behaviour_scores import month_of, store_month
from microlend.servicing import queries as loans

_CENTS = Decimal(100)


@dataclass(frozen=True)
class BehaviourRun:
    business_date: date
    month: str
    scored: int
    bands: dict[str, int]
    stored: bool


def _cents(amount: Decimal) -> int:
    return int((amount * _CENTS).to_integral_value())


def portfolio_frames(uow: UnitOfWork, who: Principal, on: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(subjects, instalments with their kind) of the bank's book as the scorecard reads them: columns read
    set-based (one SQL statement per table), amounts in integer cents."""
    subjects, instalments = loans.behaviour_frames(uow, who, on)
    return (subjects.select([pl.col(c).cast(t) for c, t in behaviour.SUBJECT_SCHEMA.items()]),
            instalments.select([pl.col(c).cast(t) for c, t in
                                {"kind": pl.Utf8, **behaviour.INSTALMENT_SCHEMA}.items()]))


def portfolio_totals(uow: UnitOfWork, who: Principal, on: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(subjects, their instalments' totals with their kind): `portfolio_frames` with the instalments totalled
    per subject by the database (`behaviour.TOTALS_SCHEMA`), about one row per subject read instead of one
    per instalment."""
    subjects, totals = loans.behaviour_totals(uow, who, on, behaviour.year_before(on), behaviour.month_ends(on),
                                              partial(totals_of_rows, on=on))
    return _subjects(subjects), _totals(totals)


def _subjects(subjects: pl.DataFrame) -> pl.DataFrame:
    return subjects.select([pl.col(c).cast(t) for c, t in behaviour.SUBJECT_SCHEMA.items()])


def _totals(totals: pl.DataFrame) -> pl.DataFrame:
    return totals.select([pl.col(c).cast(t) for c, t in {"kind": pl.Utf8, **behaviour.TOTALS_SCHEMA}.items()])


def portfolio_subjects(uow: UnitOfWork, who: Principal) -> pl.DataFrame:
    """The subjects of `portfolio_totals`, read alone (in their own unit of work while the totals are read)."""
    return _subjects(loans.behaviour_subjects_frame(uow, who))


def loan_totals(uow: UnitOfWork, who: Principal, on: date, ids: tuple[int, int]) -> pl.DataFrame:
    """The instalment totals per loan of the loans with ids in `ids` (first, last): one of the parts
    `totals_of_parts` adds up to the totals of `portfolio_totals`."""
    return loans.loan_totals(uow, who, on, behaviour.year_before(on), behaviour.month_ends(on),
                             partial(totals_of_rows, on=on), ids)


def totals_of_rows(instalments: pl.DataFrame, on: date) -> pl.DataFrame:
    """The scorecard's totals (`behaviour.instalment_totals`) of instalments with their kind (`portfolio_frames`),
    per kind and subject: what `loan_totals` reads where the database does not total them itself."""
    frames = [behaviour.instalment_totals(instalments.filter(pl.col("kind") == kind).drop("kind"), on)
              .select(pl.lit(kind).alias("kind"), pl.all()) for kind in ("line", "loan")]
    return pl.concat(frames)


def totals_of_parts(parts: list[pl.DataFrame], on: date) -> pl.DataFrame:
    """The totals of `portfolio_totals` from its parts read apart (`loan_totals` over ranges of loan ids that
    cover every loan once): the same totals."""
    return _totals(loans.subject_totals(parts, len(behaviour.month_ends(on))))


def loan_ranges(uow: UnitOfWork, who: Principal, parts: int) -> list[tuple[int, int]]:
    """The bank's loan ids cut into `parts` ranges for `loan_totals`."""
    return loans.loan_id_ranges(uow, who, parts)


def _scored_by_kind(subjects: pl.DataFrame, rows: pl.DataFrame, on: date, keep_owed: bool,
                    facts: Callable[..., pl.DataFrame]) -> pl.DataFrame:
    """Lines and loans apart: `facts` of each kind's subjects over its own rows (tagged with their kind), scored."""
    frames = []
    for kind in ("line", "loan"):
        part = subjects.filter(pl.col("kind") == kind)
        if part.height:
            mine = rows.filter(pl.col("kind") == kind).drop("kind")
            frames.append(facts(part, mine, on, keep_owed=keep_owed))
    if not frames:
        return behaviour.score_facts(facts(subjects, rows.drop("kind"), on, keep_owed=keep_owed))
    return behaviour.score_facts(pl.concat(frames))


def scores_of_totals(subjects: pl.DataFrame, totals: pl.DataFrame, on: date, *, keep_owed: bool = False
                     ) -> pl.DataFrame:
    """`scores_of` from the subjects and their instalments' totals with their kind (`portfolio_totals`)."""
    return _scored_by_kind(subjects, totals, on, keep_owed, behaviour.facts_of_totals)


def scores_of(subjects: pl.DataFrame, instalments: pl.DataFrame, on: date, *, keep_owed: bool = False
              ) -> pl.DataFrame:
    """Every subject's facts, factor points, score and band (lines and loans scored apart); with `keep_owed`,
    what each owed at the last 6 month-ends too."""
    return _scored_by_kind(subjects, instalments, on, keep_owed, behaviour.behaviour_facts)


def totals_sql(on: date) -> str:
    """`behaviour.TOTALS_SCHEMA` per kind and subject from the `instalments` table of `portfolio_frames`, in the
    batch engines' portable SQL: the figures the database totals per loan (`portfolio_totals`), per instalment."""
    day = f"DATE '{on.isoformat()}'"
    window = f"due <= {day} AND due > DATE '{behaviour.year_before(on).isoformat()}'"
    paid = f"COALESCE(paid_on, {day})"
    owed = ",\n".join(
        f"CAST(SUM(CASE WHEN disbursed_on <= DATE '{end.isoformat()}' AND (paid_on IS NULL OR paid_on > "
        f"DATE '{end.isoformat()}') THEN principal_cents ELSE 0 END) AS BIGINT) AS owed_{k}"
        for k, end in enumerate(behaviour.month_ends(on))
    )
    return f"""
SELECT kind, subject_id,
  CAST(SUM(CASE WHEN {window} THEN 1 ELSE 0 END) AS INT) AS due_12m,
  CAST(SUM(CASE WHEN {window} AND paid_on IS NOT NULL AND paid_on <= due THEN 1 ELSE 0 END) AS INT) AS on_time_12m,
  CAST(SUM(CASE WHEN {window} AND {paid} > due THEN 1 ELSE 0 END) AS INT) AS overdue_count_12m,
  CAST(MAX(CASE WHEN {window} THEN CASE WHEN {paid} > due THEN ml_day_diff(due, {paid}) ELSE 0 END END) AS INT)
    AS max_late,
  {owed}
FROM instalments GROUP BY kind, subject_id ORDER BY kind, subject_id"""


def portfolio_scores_on(uow: UnitOfWork, who: Principal, on: date, engine: BatchEngine) -> pl.DataFrame:
    """`portfolio_scores` with the instalments totalled on a batch engine (local or Spark) instead of the
    database: the instalments are read once as columns, the totals computed on the engine, the scorecard
    applied as before. The same scores."""
    subjects, instalments = portfolio_frames(uow, who, on)
    table = instalments.to_arrow().cast(pa.schema([
        ("kind", pa.string()), ("subject_id", pa.int64()), ("disbursed_on", pa.date32()), ("due", pa.date32()),
        ("paid_on", pa.date32()), ("principal_cents", pa.int64()),
    ]))
    totals = pl.from_arrow(engine.run_sql(totals_sql(on), {"instalments": table}))
    assert isinstance(totals, pl.DataFrame)
    schema = {"kind": pl.Utf8, **behaviour.TOTALS_SCHEMA}
    return scores_of_totals(subjects, totals.select([pl.col(c).cast(t) for c, t in schema.items()]), on)


def portfolio_scores(uow: UnitOfWork, who: Principal, on: date) -> pl.DataFrame:
    """Every subject's facts, factor points, score and band as of `on` (nothing is written)."""
    return scores_of_totals(*portfolio_totals(uow, who, on), on)


def score_portfolio(uow: UnitOfWork, who: Principal, *, store: bool = True,
                    engine: BatchEngine | None = None) -> BehaviourRun:
    """Score the bank's lines and loans on its business date; with `store`, keep them as this month's. With
    `engine`, the instalments are totalled on that batch engine rather than in the database."""
    who.require(Permission.MANAGE_CREDIT_LINES)
    with uow:
        on = business_date(uow.session, who.tenant_id)
    scored = portfolio_scores(uow, who, on) if engine is None else portfolio_scores_on(uow, who, on, engine)
    rows = [{"subject_kind": r["kind"], "subject_id": int(r["subject_id"]), "customer_id": r["customer_id"],
             "score": int(r["score"]), "band": r["band"],
             "factors": [f.as_dict() for f in behaviour.factors_of(r)]}
            for r in scored.iter_rows(named=True)]
    if store:
        store_month(uow, who, on, rows)
    bands = {band: 0 for _, band in behaviour.BANDS}
    for r in rows:
        bands[r["band"]] += 1
    return BehaviourRun(on, month_of(on), len(rows), bands, store)
