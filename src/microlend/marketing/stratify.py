"""Stratified control groups (分层对照组): the control group is drawn inside each stratum (segment, branch and
score band) so every stratum holds its share of control customers, and a stratum whose control group is
smaller than the stated minimum is named in a warning, since its figures cannot be read on their own.

Within a stratum the customers are ordered by the same stable hash as the unstratified draw
(`campaigns.control_bucket`, sha256 of campaign key and customer id) and the first round(share x size)
are held out: the same customers on every machine and every re-run, exactly the share in each stratum.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from microlend.marketing.campaigns import BUCKETS, check_control_share

#: below this many control customers a stratum's comparison is flagged
MIN_CONTROL_PER_STRATUM = 30
#: score bands (the champion's score, points): below 550, 550-600, 600-650, 650 and above
SCORE_BANDS = (550.0, 600.0, 650.0)
STRATUM_COLUMNS = ("segment", "branch", "score_band")


@dataclass(frozen=True)
class StratumWarning:
    stratum: str
    customers: int
    control: int
    minimum: int

    @property
    def message(self) -> str:
        return (f"stratum {self.stratum}: {self.control} control customers of {self.customers}, "
                f"fewer than the {self.minimum} needed to read it on its own")


def score_band(score: pl.Expr, bands: tuple[float, ...] = SCORE_BANDS) -> pl.Expr:
    """'<550', '550-600', ..., '>=650' and 'unscored' for a missing score."""
    labels = [f"<{bands[0]:g}"] + [f"{a:g}-{b:g}" for a, b in pairwise(bands)] + [
        f">={bands[-1]:g}"]
    expr: Any = pl.when(score.is_null() | score.is_nan()).then(pl.lit("unscored"))
    for edge, label in zip(bands, labels, strict=False):
        expr = expr.when(score < edge).then(pl.lit(label))
    out: pl.Expr = expr.otherwise(pl.lit(labels[-1]))
    return out


def strata(targets: pl.DataFrame) -> pl.Series:
    """Each target's stratum label from the columns it has: segment, branch, score band (of `score`)."""
    parts: list[pl.Expr] = []
    for name in ("segment", "branch"):
        if name in targets.columns:
            parts.append(pl.col(name).cast(pl.String).fill_null("-"))
    if "score" in targets.columns:
        parts.append(score_band(pl.col("score").cast(pl.Float64)))
    if not parts:
        return pl.Series("stratum", ["all"] * targets.height, dtype=pl.String)
    return targets.select(pl.concat_str(parts, separator=" / ").alias("stratum")).to_series()


def _hash_keys(campaign_key: str, customer_ids: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    prefix = f"{campaign_key}:".encode()
    return np.fromiter(
        (int.from_bytes(hashlib.sha256(prefix + str(int(c)).encode()).digest()[:8], "big") for c in customer_ids),
        dtype=np.uint64, count=len(customer_ids))


def stratified_control(campaign_key: str, customer_ids: npt.NDArray[np.int64] | list[int], stratum: pl.Series,
                       share_bp: int, *, minimum: int = MIN_CONTROL_PER_STRATUM
                       ) -> tuple[npt.NDArray[np.bool_], list[StratumWarning]]:
    """The control mask (round(share x size) customers of each stratum, by stable hash) and a warning for
    every stratum whose control group is below `minimum`."""
    check_control_share(share_bp)
    ids = np.asarray(customer_ids, dtype=np.int64)
    if len(ids) != stratum.len():
        raise ValueError("one stratum per customer")
    frame = pl.DataFrame({"i": np.arange(len(ids)), "stratum": stratum, "key": _hash_keys(campaign_key, ids)})
    ranked = frame.with_columns(
        pl.col("key").rank("ordinal").over("stratum").alias("rank"),
        pl.len().over("stratum").alias("size"))
    # round half up in integers: floor(size x share / BUCKETS + 1/2)
    quota = (pl.col("size") * share_bp * 2 + BUCKETS) // (2 * BUCKETS)
    chosen = ranked.with_columns((pl.col("rank") <= quota).alias("control"), quota.alias("quota"))
    mask = np.zeros(len(ids), dtype=bool)
    picked = chosen.filter(pl.col("control")).get_column("i").to_numpy()
    mask[picked] = True
    warnings = []
    if share_bp > 0:
        per = chosen.group_by("stratum").agg(pl.col("size").first(), pl.col("control").sum()).sort("stratum")
        warnings = [StratumWarning(str(r["stratum"]), int(r["size"]), int(r["control"]), minimum)
                    for r in per.iter_rows(named=True) if int(r["control"]) < minimum]
    return mask, warnings


def control_by_stratum(frame: pl.DataFrame, *, minimum: int = MIN_CONTROL_PER_STRATUM) -> list[StratumWarning]:
    """From a campaign's assignments (arm, stratum): the strata whose control group is below `minimum`."""
    if frame.height == 0:
        return []
    per = frame.group_by("stratum").agg(pl.len().alias("size"), (pl.col("arm") == "control").sum().alias("control"))
    return [StratumWarning(str(r["stratum"]), int(r["size"]), int(r["control"]), minimum)
            for r in per.sort("stratum").iter_rows(named=True) if int(r["control"]) < minimum]
