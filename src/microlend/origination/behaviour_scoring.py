"""The monthly behaviour score (月度行为评分) of every open credit line and every active loan outside a line:
the bank's own servicing history read set-based (two queries), the decisioning scorecard applied with Polars,
kept per subject and month. The limit review scores with it, not with the application's profile."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import polars as pl

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
    subjects, totals = loans.behaviour_totals(uow, who, on, behaviour.year_before(on), behaviour.month_ends(on))
    return (subjects.select([pl.col(c).cast(t) for c, t in behaviour.SUBJECT_SCHEMA.items()]),
            totals.select([pl.col(c).cast(t) for c, t in {"kind": pl.Utf8, **behaviour.TOTALS_SCHEMA}.items()]))


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


def portfolio_scores(uow: UnitOfWork, who: Principal, on: date) -> pl.DataFrame:
    """Every subject's facts, factor points, score and band as of `on` (nothing is written)."""
    return scores_of_totals(*portfolio_totals(uow, who, on), on)


def score_portfolio(uow: UnitOfWork, who: Principal, *, store: bool = True) -> BehaviourRun:
    """Score the bank's lines and loans on its business date; with `store`, keep them as this month's."""
    who.require(Permission.MANAGE_CREDIT_LINES)
    with uow:
        on = business_date(uow.session, who.tenant_id)
    scored = portfolio_scores(uow, who, on)
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
