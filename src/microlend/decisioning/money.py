"""The money of a simulation (模拟收益测算): volume, expected loss, income, cost and profit of what a policy
approves, overall and by segment, against the baseline; and which reason codes make applications swap.

For every approved application, with EAD the limit decided (rounded half-up to the cent), PD the model's
probability of default (`model.pd`, else from `model.score` on the 600-at-odds-50:1 scale; rounded to 6
places) and n the term in months:

- expected loss        EL       = PD × LGD × EAD
- interest income      interest = EAD × rate × (n + 1) / 24 × (1 − PD): the contractual interest of equal
  principal repayments (the balance averages EAD × (n + 1) / 2n over n months), earned only by loans that
  do not default; the rate is the policy's, else the product's
- fee income           fees     = EAD × the product's upfront fee rate
- funding cost         funding  = EAD × funding rate × (n + 1) / 24 (the same average balance)
- operating cost       opex     = operating cost per loan × approved loans
- profit               profit   = interest + fees − EL − funding − opex

Sums are exact (DECIMAL in DuckDB, never float); each figure is rounded half-up to the cent once, at the end,
and the profit is the sum of the rounded figures, so a table adds up. Applications without a PD take the
mean PD of the approved applications that have one (counted as `pd_imputed`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from microlend.core.errors import ValidationError
from microlend.core.money import round_half_up
from microlend.decisioning.columnar import BatchResult

#: Segments the money is broken down by: (name, column of the applications table or None for the grade).
SEGMENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("grade", ()),
    ("product", ("application.product_code", "segment.product")),
    ("channel", ("application.channel", "segment.channel")),
)
_FIGURES = ("ead", "expected_loss", "interest_income", "fee_income", "funding_cost", "operating_cost", "profit")
_RATIO_MAX = Decimal(1)
_COST_MAX = Decimal("100000")


@dataclass(frozen=True)
class ProductPricing:
    """What a product charges when the policy sets no rate: its annual rate and upfront fee rate."""

    annual_rate: Decimal
    upfront_fee_rate: Decimal = Decimal(0)


@dataclass(frozen=True)
class MoneyAssumptions:
    """A bank's assumptions for the money of a simulation; `sources` says where each came from."""

    lgd: Decimal = Decimal("0.45")
    funding_rate: Decimal = Decimal("0.025")  # annual cost of the funds lent
    operating_cost_per_loan: Decimal = Decimal("2.30")  # CNY per approved loan
    products: Mapping[str, ProductPricing] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name, top in (("lgd", _RATIO_MAX), ("funding_rate", _RATIO_MAX), ("operating_cost_per_loan", _COST_MAX)):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or not Decimal(0) <= value <= top:
                raise ValidationError(f"{name}: must be a number between 0 and {top}", field=name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "lgd": str(self.lgd),
            "funding_rate": str(self.funding_rate),
            "operating_cost_per_loan": str(self.operating_cost_per_loan),
            "products": {
                code: {"annual_rate": str(p.annual_rate), "upfront_fee_rate": str(p.upfront_fee_rate)}
                for code, p in sorted(self.products.items())
            },
            "sources": dict(self.sources),
        }


DEFAULT_ASSUMPTIONS = MoneyAssumptions()


@dataclass(frozen=True)
class Money:
    """The money of one arm in one segment."""

    applications: int
    approved: int
    pd_imputed: int
    unpriced: int  # approved without a rate from the policy or the product: no interest counted
    ead: Decimal
    expected_loss: Decimal
    interest_income: Decimal
    fee_income: Decimal
    funding_cost: Decimal
    operating_cost: Decimal

    @property
    def profit(self) -> Decimal:
        return self.interest_income + self.fee_income - self.expected_loss - self.funding_cost - self.operating_cost

    def figures(self) -> dict[str, Decimal]:
        return {name: getattr(self, name) for name in _FIGURES}

    def as_dict(self) -> dict[str, Any]:
        return {
            "applications": self.applications,
            "approved": self.approved,
            "pd_imputed": self.pd_imputed,
            "unpriced": self.unpriced,
            **{name: str(value) for name, value in self.figures().items()},
        }


EMPTY = Money(0, 0, 0, 0, *([Decimal("0.00")] * 6))


def delta(ours: Money, base: Money) -> dict[str, Any]:
    """This version minus the baseline, figure by figure (as strings for money)."""
    out: dict[str, Any] = {"approved": ours.approved - base.approved}
    for name in _FIGURES:
        out[name] = str(getattr(ours, name) - getattr(base, name))
    return out


def score_from_odds(score: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """pd on the 600-points-at-odds-50:1, 20-points-to-double scale: odds = 50 * 2^((score-600)/20)."""
    odds = 50.0 * np.power(2.0, (score - 600.0) / 20.0)
    result: npt.NDArray[np.float64] = 1.0 / (1.0 + odds)
    return result


def probability_of_default(frame: pd.DataFrame) -> npt.NDArray[np.float64]:
    """PD per row: `model.pd` where given, else from `model.score`; NaN where neither is."""
    n = len(frame)
    out = np.full(n, np.nan)
    if "model.pd" in frame.columns:
        out = pd.to_numeric(frame["model.pd"], errors="coerce").to_numpy(dtype=float)
    if "model.score" in frame.columns:
        score = pd.to_numeric(frame["model.score"], errors="coerce").to_numpy(dtype=float)
        out = np.where(np.isnan(out), score_from_odds(score), out)
    clipped: npt.NDArray[np.float64] = np.clip(out, 0.0, 1.0)
    return clipped


def _segment_values(frame: pd.DataFrame, result: BatchResult) -> dict[str, npt.NDArray[np.object_]]:
    out: dict[str, npt.NDArray[np.object_]] = {}
    for name, columns in SEGMENTS:
        if not columns:
            out[name] = np.array(["–" if g is None else str(g) for g in result.risk_grade.tolist()], dtype=object)
            continue
        present = [c for c in columns if c in frame.columns]
        if present:
            values = frame[present[0]]
            out[name] = values.astype(object).where(values.notna(), "–").astype(str).to_numpy(dtype=object)
    return out


def _arm_table(
    frame: pd.DataFrame, result: BatchResult, pd_: npt.NDArray[np.float64], assumptions: MoneyAssumptions,
    segments: dict[str, npt.NDArray[np.object_]],
) -> Any:
    import pyarrow as pa

    products = assumptions.products
    product = frame["application.product_code"].astype(str).to_numpy(dtype=object)
    term = pd.to_numeric(frame["application.term_months"], errors="coerce").fillna(0).to_numpy(dtype=np.int64)
    columns: dict[str, Any] = {
        "approved": pa.array(result.outcome == "approve"),
        "limit_value": pa.array(result.limit, from_pandas=True),
        "policy_rate": pa.array(result.annual_rate, from_pandas=True),
        "pd_value": pa.array(pd_, from_pandas=True),
        "term": pa.array(term),
        "product_code": pa.array(product.astype(str)),
    }
    for name, values in segments.items():
        columns[f"seg_{name}"] = pa.array(values.astype(str))
    table = pa.table(columns)
    pricing = pa.table({
        "code": pa.array(list(products), type=pa.string()),
        "rate": pa.array([str(p.annual_rate) for p in products.values()], type=pa.string()),
        "fee": pa.array([str(p.upfront_fee_rate) for p in products.values()], type=pa.string()),
    })
    return table, pricing


def money_by_segment(  # the grade is each arm's own: the baseline's rows are grouped by the grade it gave
    frame: pd.DataFrame, result: BatchResult, assumptions: MoneyAssumptions = DEFAULT_ASSUMPTIONS,
    pd_: npt.NDArray[np.float64] | None = None,
) -> dict[str, dict[str, Money]]:
    """{"overall": {"all": Money}, "grade": {...}, "product": {...}, "channel": {...}} of one arm."""
    import duckdb

    if pd_ is None:
        pd_ = probability_of_default(frame)
    segments = _segment_values(frame, result)
    apps, pricing = _arm_table(frame, result, pd_, assumptions, segments)
    keys = [f"seg_{name}" for name in segments]
    grouping = ", ".join(["()"] + [f"({k})" for k in keys])
    which = " ".join(f"WHEN grouping({k}) = 0 THEN '{k[4:]}'" for k in keys)
    value = " ".join(f"WHEN grouping({k}) = 0 THEN {k}" for k in keys)
    con = duckdb.connect()
    try:
        con.register("apps", apps)
        con.register("pricing", pricing)
        mean_pd = con.execute(
            "SELECT avg(CAST(CAST(pd_value AS VARCHAR) AS DECIMAL(18, 6))) FROM apps "
            "WHERE approved AND pd_value IS NOT NULL"
        ).fetchone()
        fill = Decimal(0) if mean_pd is None or mean_pd[0] is None else Decimal(mean_pd[0]).quantize(Decimal("1e-6"))
        rows = con.execute(
            f"""
            WITH a AS (
                SELECT apps.*,
                    CAST(CAST(limit_value AS VARCHAR) AS DECIMAL(18, 2)) AS ead,
                    coalesce(CAST(CAST(pd_value AS VARCHAR) AS DECIMAL(18, 6)), CAST(? AS DECIMAL(18, 6))) AS pd,
                    coalesce(CAST(CAST(policy_rate AS VARCHAR) AS DECIMAL(18, 6)),
                             CAST(pricing.rate AS DECIMAL(18, 6))) AS rate,
                    coalesce(CAST(pricing.fee AS DECIMAL(18, 6)), CAST(0 AS DECIMAL(18, 6))) AS fee_rate,
                    CAST(greatest(term, 0) + 1 AS INTEGER) AS life
                FROM apps LEFT JOIN pricing ON pricing.code = apps.product_code
            )
            SELECT CASE {which} ELSE 'overall' END AS segment,
                   CASE {value} ELSE 'all' END AS value,
                   count(*) AS applications,
                   count(*) FILTER (WHERE approved) AS approved,
                   count(*) FILTER (WHERE approved AND pd_value IS NULL) AS pd_imputed,
                   count(*) FILTER (WHERE approved AND rate IS NULL) AS unpriced,
                   coalesce(sum(ead) FILTER (WHERE approved), 0) AS ead,
                   coalesce(sum(pd * ead) FILTER (WHERE approved), 0) AS pd_ead,
                   coalesce(sum(ead * rate * life * (1 - pd)) FILTER (WHERE approved AND rate IS NOT NULL), 0)
                       AS interest_24,
                   coalesce(sum(ead * fee_rate) FILTER (WHERE approved), 0) AS fees,
                   coalesce(sum(ead * life) FILTER (WHERE approved), 0) AS ead_life
            FROM a
            GROUP BY GROUPING SETS ({grouping})
            """,
            [str(fill)],
        ).fetchall()
    finally:
        con.close()
    out: dict[str, dict[str, Money]] = {"overall": {}}
    for segment, val, n, approved, imputed, unpriced, ead, pd_ead, interest_24, fees, ead_life in rows:
        money = Money(
            int(n), int(approved), int(imputed), int(unpriced),
            round_half_up(Decimal(ead)),
            round_half_up(assumptions.lgd * Decimal(pd_ead)),
            round_half_up(Decimal(interest_24) / 24),
            round_half_up(Decimal(fees)),
            round_half_up(assumptions.funding_rate * Decimal(ead_life) / 24),
            round_half_up(assumptions.operating_cost_per_loan * int(approved)),
        )
        out.setdefault(str(segment), {})[str(val)] = money
    out["overall"].setdefault("all", EMPTY)
    return {k: dict(sorted(v.items())) for k, v in out.items()}


def money_report(
    frame: pd.DataFrame, result: BatchResult, baseline: BatchResult | None,
    assumptions: MoneyAssumptions = DEFAULT_ASSUMPTIONS,
) -> dict[str, Any]:
    """The money of the policy and the baseline, by segment, with the deltas, and the swap reasons."""
    pd_ = probability_of_default(frame)
    ours = money_by_segment(frame, result, assumptions, pd_)
    base = money_by_segment(frame, baseline, assumptions, pd_) if baseline is not None else None
    segments: dict[str, list[dict[str, Any]]] = {}
    for name, by_value in ours.items():
        rows = []
        values = sorted(set(by_value) | set((base or {}).get(name, {})))
        for v in values:
            mine = by_value.get(v, EMPTY)
            row: dict[str, Any] = {"value": v, "policy": mine.as_dict()}
            if base is not None:
                theirs = base.get(name, {}).get(v, EMPTY)
                row["baseline"] = theirs.as_dict()
                row["delta"] = delta(mine, theirs)
            rows.append(row)
        segments[name] = rows
    overall = segments.pop("overall")[0]
    return {
        "assumptions": assumptions.as_dict(),
        "overall": overall,
        "segments": segments,
        "swap_reasons": None if baseline is None else swap_reasons(result, baseline),
    }


def swap_reasons(result: BatchResult, baseline: BatchResult) -> dict[str, list[dict[str, Any]]]:
    """Swap-ins (approved now, not by the baseline) counted by the baseline's reason codes this version no
    longer gives, swap-outs by the codes this version gives that the baseline did not; a swap without such a
    code counts under "" (the same codes, another outcome)."""
    import polars as pl

    new_ok = result.outcome == "approve"
    old_ok = baseline.outcome == "approve"
    out: dict[str, list[dict[str, Any]]] = {}
    for name, mask, gone, came in (
        ("swap_in", new_ok & ~old_ok, baseline.reasons, result.reasons),
        ("swap_out", ~new_ok & old_ok, result.reasons, baseline.reasons),
    ):
        rows = np.flatnonzero(mask)
        if not len(rows):
            out[name] = []
            continue
        frame = pl.DataFrame({
            "changed": pl.Series([list(x) for x in gone[rows]], dtype=pl.List(pl.String)),
            "kept": pl.Series([list(x) for x in came[rows]], dtype=pl.List(pl.String)),
        })
        codes = (
            frame.select(pl.col("changed").list.set_difference("kept").alias("code"))
            .with_columns(pl.when(pl.col("code").list.len() == 0).then(pl.lit([""], dtype=pl.List(pl.String)))
                          .otherwise(pl.col("code")).alias("code"))
            .explode("code")
            .group_by("code").len()
            .sort(["len", "code"], descending=[True, False])
        )
        out[name] = [{"code": c, "applications": int(n)} for c, n in codes.iter_rows()]
    return out
