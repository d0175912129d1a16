"""The behaviour scorecard (行为评分卡) of existing credit lines and loans: a transparent, points-based score
computed each month from the bank's own servicing history, never from the application's profile.

Every factor has a few bins; a subject earns the points of the bin its value falls in, and the score is
`BASE_POINTS` plus the sum. The bins, their points and their reason texts (zh-CN and en) are the whole
model: a person can add the points up by hand from the evidence shown on the limit desk.

Inputs per subject (one credit line, or one loan that is not a drawdown of a line):

- `current_dpd`        days past due today (the worst drawdown of a line); a write-off counts as 999
- `max_dpd_12m`        the worst days late of any instalment due in the last 12 months (and today's)
- `overdue_count_12m`  instalments due in the last 12 months that were paid late or are still unpaid
- `on_time_bp`         share of the last 12 months' instalments paid by their due date, in basis points
                       (null: nothing fell due yet)
- `utilisation_bp`     average drawn / limit over the last 6 month-ends, in basis points (lines only)
- `months_on_book`     whole months since the line was opened or the loan disbursed

Amounts arrive as integer cents and ratios as integer basis points, so the score is exact (no float).
Set-based over a whole portfolio with Polars (`behaviour_facts`, `score_facts`); `score_one` is the
per-subject reference the vectorised result is tested against.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl

SCORECARD_VERSION = "bhv-2026.11"
BASE_POINTS = 500
#: Bands by score: (lowest score of the band, band). A: strong ... E: weak (below the decrease cut-off).
BANDS: tuple[tuple[int, str], ...] = ((700, "A"), (660, "B"), (620, "C"), (560, "D"), (-10_000, "E"))
NO_VALUE = None


@dataclass(frozen=True)
class Bin:
    """Values in [low, high) earn `points` (None as a bound: open on that side; `missing`: the value is null)."""

    low: int | None
    high: int | None
    points: int
    en: str
    zh: str
    missing: bool = False

    def holds(self, value: int | None) -> bool:
        if value is None:
            return self.missing
        if self.missing:
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value < self.high)


@dataclass(frozen=True)
class Factor:
    name: str
    en: str
    zh: str
    bins: tuple[Bin, ...]
    lines_only: bool = False  # a term loan has no limit to use: the factor gives 0 points


FACTORS: tuple[Factor, ...] = (
    Factor("current_dpd", "Days past due now", "当前逾期天数", (
        Bin(None, 1, 60, "Nothing overdue today", "当前无逾期"),
        Bin(1, 31, -40, "Overdue up to 30 days today", "当前逾期1至30天"),
        Bin(31, 61, -100, "Overdue 31 to 60 days today", "当前逾期31至60天"),
        Bin(61, None, -160, "Overdue more than 60 days (or written off)", "当前逾期60天以上（或已核销）"),
    )),
    Factor("max_dpd_12m", "Worst days late in 12 months", "近12个月最长逾期天数", (
        Bin(None, 1, 40, "Never late in the last 12 months", "近12个月从未逾期"),
        Bin(1, 8, 0, "At most a week late in the last 12 months", "近12个月最长逾期不超过7天"),
        Bin(8, 31, -40, "8 to 30 days late in the last 12 months", "近12个月最长逾期8至30天"),
        Bin(31, None, -80, "More than 30 days late in the last 12 months", "近12个月最长逾期超过30天"),
    )),
    Factor("overdue_count_12m", "Late or unpaid instalments in 12 months", "近12个月逾期期数", (
        Bin(None, 1, 30, "No late instalment in 12 months", "近12个月无逾期期数"),
        Bin(1, 2, 0, "One late instalment in 12 months", "近12个月逾期1期"),
        Bin(2, 4, -30, "Two or three late instalments in 12 months", "近12个月逾期2至3期"),
        Bin(4, None, -60, "Four or more late instalments in 12 months", "近12个月逾期4期及以上"),
    )),
    Factor("on_time_bp", "Instalments paid on time (12 months)", "近12个月按时还款比例", (
        Bin(None, None, 0, "No instalment has fallen due yet", "尚无到期还款", missing=True),
        Bin(None, 8000, -40, "Under 80% paid on time", "按时还款不足80%"),
        Bin(8000, 9500, 10, "80% to 95% paid on time", "按时还款80%至95%"),
        Bin(9500, None, 40, "95% or more paid on time", "按时还款95%及以上"),
    )),
    Factor("utilisation_bp", "Average use of the limit (6 month-ends)", "近6个月末平均额度使用率", (
        Bin(None, 1, 0, "The line was not used", "额度未使用"),
        Bin(1, 3000, 10, "Light use: under 30% of the limit", "轻度使用：低于30%"),
        Bin(3000, 8000, 30, "Steady use: 30% to 80% of the limit", "稳定使用：30%至80%"),
        Bin(8000, 9500, 10, "Heavy use: 80% to 95% of the limit", "高度使用：80%至95%"),
        Bin(9500, None, -20, "The limit is exhausted: 95% or more", "额度用尽：95%及以上"),
    ), lines_only=True),
    Factor("months_on_book", "Months on book", "账龄（月）", (
        Bin(None, 3, 0, "Under 3 months on book", "账龄不足3个月"),
        Bin(3, 6, 10, "3 to 5 months on book", "账龄3至5个月"),
        Bin(6, 12, 25, "6 to 11 months on book", "账龄6至11个月"),
        Bin(12, 24, 40, "12 to 23 months on book", "账龄12至23个月"),
        Bin(24, None, 50, "Two years or more on book", "账龄2年及以上"),
    )),
)
FACTOR_NAMES = tuple(f.name for f in FACTORS)


def band_of(score: int) -> str:
    return next(band for low, band in BANDS if score >= low)


@dataclass(frozen=True)
class FactorPoints:
    """One factor's part of a score: the value seen, the bin it fell in and the points it earned."""

    name: str
    value: int | None
    points: int
    bin: int  # index of the bin in the factor's definition (-1: not applicable)

    def text(self, locale: str) -> str:
        factor = _BY_NAME[self.name]
        if self.bin < 0:
            return "不适用（贷款）" if locale.startswith("zh") else "Not applicable (a loan)"
        b = factor.bins[self.bin]
        return b.zh if locale.startswith("zh") else b.en

    def label(self, locale: str) -> str:
        factor = _BY_NAME[self.name]
        return factor.zh if locale.startswith("zh") else factor.en

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "points": self.points, "bin": self.bin}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FactorPoints:
        value = data.get("value")
        return cls(str(data["name"]), None if value is None else int(value), int(data["points"]), int(data["bin"]))


_BY_NAME = {f.name: f for f in FACTORS}


@dataclass(frozen=True)
class BehaviourScore:
    score: int
    band: str
    factors: tuple[FactorPoints, ...]


def score_one(facts: Mapping[str, int | None], kind: str = "line") -> BehaviourScore:
    """The reference: one subject's score from its facts, bin by bin."""
    parts = []
    for factor in FACTORS:
        value = facts.get(factor.name)
        if factor.lines_only and kind != "line":
            parts.append(FactorPoints(factor.name, value, 0, -1))
            continue
        index = next(i for i, b in enumerate(factor.bins) if b.holds(value))
        parts.append(FactorPoints(factor.name, value, factor.bins[index].points, index))
    score = BASE_POINTS + sum(p.points for p in parts)
    return BehaviourScore(score, band_of(score), tuple(parts))


# --- a whole portfolio, set-based ------------------------------------------------------------------------------


def _bin_expr(factor: Factor) -> pl.Expr:
    """The index of the bin each row's value falls in (first match, as in `Bin.holds`)."""
    col = pl.col(factor.name)
    expr: pl.Expr | None = None
    chain: Any = None
    for i, b in enumerate(factor.bins):
        if b.missing:
            cond = col.is_null()
        else:
            cond = col.is_not_null()
            if b.low is not None:
                cond = cond & (col >= b.low)
            if b.high is not None:
                cond = cond & (col < b.high)
        chain = pl.when(cond).then(pl.lit(i)) if chain is None else chain.when(cond).then(pl.lit(i))
    expr = chain.otherwise(pl.lit(-1))
    if factor.lines_only:
        expr = pl.when(pl.col("kind") == "line").then(expr).otherwise(pl.lit(-1))
    return expr.cast(pl.Int8)


def score_facts(facts: pl.DataFrame) -> pl.DataFrame:
    """Score every row of `facts` (columns: kind and the factor names): adds `bin_<factor>`,
    `points_<factor>`, `score` and `band`."""
    if "kind" not in facts.columns:
        facts = facts.with_columns(pl.lit("line").alias("kind"))
    binned = facts.with_columns([_bin_expr(f).alias(f"bin_{f.name}") for f in FACTORS])
    points = []
    for f in FACTORS:
        lookup = pl.Series([b.points for b in f.bins], dtype=pl.Int32)
        idx = pl.col(f"bin_{f.name}")
        points.append(pl.when(idx < 0).then(pl.lit(0, dtype=pl.Int32))
                      .otherwise(idx.replace_strict(list(range(len(f.bins))), lookup.to_list(),
                                                    default=0, return_dtype=pl.Int32))
                      .alias(f"points_{f.name}"))
    scored = binned.with_columns(points)
    scored = scored.with_columns(
        (pl.lit(BASE_POINTS, dtype=pl.Int32) + pl.sum_horizontal([f"points_{f.name}" for f in FACTORS]))
        .cast(pl.Int32).alias("score"))
    band: Any = None
    for low, name in BANDS:
        band = pl.when(pl.col("score") >= low).then(pl.lit(name)) if band is None else band.when(
            pl.col("score") >= low).then(pl.lit(name))
    assert band is not None
    return scored.with_columns(band.otherwise(pl.lit("E")).alias("band"))


def factors_of(row: Mapping[str, Any]) -> tuple[FactorPoints, ...]:
    """The factor breakdown of one scored row (a dict from `score_facts(...).iter_rows(named=True)`)."""
    return tuple(FactorPoints(f.name, row.get(f.name), int(row[f"points_{f.name}"]), int(row[f"bin_{f.name}"]))
                 for f in FACTORS)


def _month_ends(on: date, count: int) -> list[date]:
    """`on` itself and the last days of the `count - 1` months before it."""
    ends = [on]
    first = on.replace(day=1)
    for _ in range(count - 1):
        from datetime import timedelta

        end = first - timedelta(days=1)
        ends.append(end)
        first = end.replace(day=1)
    return ends


def months_between(start: date, end: date) -> int:
    months = (end.year - start.year) * 12 + (end.month - start.month) - (1 if end.day < start.day else 0)
    return max(0, months)


SUBJECT_SCHEMA = {"subject_id": pl.Int64, "kind": pl.Utf8, "customer_id": pl.Int64, "limit_cents": pl.Int64,
                  "opened_on": pl.Date, "current_dpd": pl.Int32}
INSTALMENT_SCHEMA = {"subject_id": pl.Int64, "disbursed_on": pl.Date, "due": pl.Date, "paid_on": pl.Date,
                     "principal_cents": pl.Int64}


#: What `behaviour_facts` needs of a subject's instalments, one row per subject (`instalment_totals`): of the
#: instalments due in the 12 months up to `on` how many, how many paid by their due date, how many paid late or
#: still unpaid and the worst days late (null: none fell due); what the subject owed at `on` and the 5 month-ends
#: before (`owed_0` .. `owed_5`, cents). A database can total them itself (one row per subject, not one per
#: instalment, crosses its driver).
OWED_MONTHS = 6
TOTALS_SCHEMA = {"subject_id": pl.Int64, "due_12m": pl.Int32, "on_time_12m": pl.Int32,
                 "overdue_count_12m": pl.Int32, "max_late": pl.Int32,
                 **{f"owed_{i}": pl.Int64 for i in range(OWED_MONTHS)}}


def year_before(on: date) -> date:
    """The start (excluded) of the 12 months up to `on` the lateness factors look at."""
    return date(on.year - 1, on.month, min(on.day, 28))


def month_ends(on: date) -> list[date]:
    """The dates of `owed_0` .. `owed_5`: `on` and the last days of the 5 months before it."""
    return _month_ends(on, OWED_MONTHS)


def instalment_totals(instalments: pl.DataFrame, on: date) -> pl.DataFrame:
    """`TOTALS_SCHEMA` of every subject with an instalment in `instalments` (subject_id, disbursed_on, due,
    paid_on, principal_cents), set-based."""
    inst = instalments.lazy()
    today = pl.lit(on)
    window = (pl.col("due") <= today) & (pl.col("due") > pl.lit(year_before(on)))
    late = (pl.col("paid_on").fill_null(today) - pl.col("due")).dt.total_days().clip(lower_bound=0)
    on_time = pl.col("paid_on").is_not_null() & (pl.col("paid_on") <= pl.col("due"))
    owed = []
    for i, end in enumerate(month_ends(on)):
        m = pl.lit(end)
        owed.append(pl.when((pl.col("disbursed_on") <= m) & (pl.col("paid_on").is_null() | (pl.col("paid_on") > m)))
                    .then(pl.col("principal_cents")).otherwise(0).sum().cast(pl.Int64).alias(f"owed_{i}"))
    return inst.group_by("subject_id").agg(
        window.sum().cast(pl.Int32).alias("due_12m"),
        (window & on_time).sum().cast(pl.Int32).alias("on_time_12m"),
        (window & (late > 0)).sum().cast(pl.Int32).alias("overdue_count_12m"),
        late.filter(window).max().cast(pl.Int32).alias("max_late"),
        *owed,
    ).select([pl.col(c).cast(t) for c, t in TOTALS_SCHEMA.items()]).collect()


def behaviour_facts(subjects: pl.DataFrame, instalments: pl.DataFrame, on: date, *,
                    keep_owed: bool = False) -> pl.DataFrame:
    """The scorecard's inputs per subject, set-based.

    `subjects`: subject_id, kind (line | loan), customer_id, limit_cents (a line's limit, a loan's principal),
    opened_on, current_dpd. `instalments`: subject_id, disbursed_on (of the drawdown or loan), due, paid_on
    (null: unpaid), principal_cents — every instalment of the subject's loans, paid or not. With `keep_owed`,
    what each subject owed at `on` and the 5 month-ends before (`owed_0` .. `owed_5`, cents) is kept too."""
    return facts_of_totals(subjects, instalment_totals(instalments, on), on, keep_owed=keep_owed)


def facts_of_totals(subjects: pl.DataFrame, totals: pl.DataFrame, on: date, *,
                    keep_owed: bool = False) -> pl.DataFrame:
    """`behaviour_facts` from the subjects and their instalments' totals (`TOTALS_SCHEMA`, from
    `instalment_totals` or totalled by the database the same way)."""
    ends = month_ends(on)
    facts = subjects.lazy().join(totals.lazy(), on="subject_id", how="left")
    use = [pl.when(pl.col("limit_cents") > 0)
           .then((pl.col(f"owed_{i}").fill_null(0) * 10_000 // pl.col("limit_cents")).clip(upper_bound=10_000))
           .otherwise(10_000) for i in range(len(ends))]
    opened = pl.col("opened_on")
    months = ((pl.lit(on.year) - opened.dt.year()) * 12 + (pl.lit(on.month) - opened.dt.month().cast(pl.Int32))
              - pl.when(pl.lit(on.day) < opened.dt.day()).then(1).otherwise(0)).clip(lower_bound=0)
    due = pl.col("due_12m")
    return facts.with_columns(
        pl.col("current_dpd").fill_null(0).cast(pl.Int32),
        pl.max_horizontal(pl.col("max_late").fill_null(0), pl.col("current_dpd").fill_null(0))
        .cast(pl.Int32).alias("max_dpd_12m"),
        pl.when(due > 0).then(pl.col("overdue_count_12m")).otherwise(0).cast(pl.Int32).alias("overdue_count_12m"),
        pl.when(due > 0).then(pl.col("on_time_12m").cast(pl.Int64) * 10_000 // due).cast(pl.Int32)
        .alias("on_time_bp"),
        (pl.sum_horizontal(use) // len(ends)).cast(pl.Int32).alias("utilisation_bp"),
        months.cast(pl.Int32).alias("months_on_book"),
    ).select("subject_id", "kind", "customer_id", "limit_cents", *FACTOR_NAMES,
             *((f"owed_{i}" for i in range(len(ends))) if keep_owed else ())).collect()


#: A line is drawn to its limit at a month-end when what it owes is at least this share (basis points).
AT_LIMIT_BP = 9500


def at_limit_streak(months: int = 6) -> pl.Expr:
    """From the `owed_<i>` columns of `behaviour_facts(..., keep_owed=True)` (i = 0 is `on`): how many
    month-ends in a row, back from `on`, a credit line owed at least `AT_LIMIT_BP` of its limit (null for a
    loan)."""
    run: pl.Expr = pl.lit(0, dtype=pl.Int32)
    streak: pl.Expr = pl.lit(True)
    for i in range(months):
        at = (pl.col(f"owed_{i}").fill_null(0) * 10_000 >= pl.col("limit_cents") * AT_LIMIT_BP) & (
            pl.col("limit_cents") > 0)
        streak = streak & at
        run = run + streak.cast(pl.Int32)
    return pl.when(pl.col("kind") == "line").then(run).otherwise(None).cast(pl.Int32)

