"""Population and characteristic stability (PSI/CSI, 群体/特征稳定性) over a whole population on either batch
engine: DuckDB in this process (`local`) or Spark SQL (`spark`), from Arrow tables or the Parquet export of
model scores.

The engines only count: the order statistics the bin edges are interpolated from, the rows per bin and per
category. The edges (numpy's linear quantiles, reproduced bit for bit from the order statistics), the shares
and the index itself are computed here with the same code as `monitoring`, so both engines give the figures
the in-memory functions (`validation.psi_edges`, `bin_shares`, `monitoring._shares_with_missing`) give.

A column is measured as one of three kinds:
- ``score``: missing values are left out, bins at the deciles of the expected values (or given edges and
  shares: a model's development profile), as `score_stability` and the worker's score PSI;
- ``numeric``: the same bins plus one bin for missing values, as the CSI of a numeric feature;
- ``categorical``: one bin per category seen in the expected data, one for missing, one for categories never
  seen there, as the CSI of a categorical feature.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray
from sqlalchemy import Float, cast, select

from microlend.batch.analytics import ParquetDataset, Source, arrow_chunk, run_query
from microlend.core.errors import ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.risk.tables import ModelScoreRow
from microlend.risk.validation import psi_from_shares, stability_status

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyspark.sql import SparkSession

Kind = Literal["score", "numeric", "categorical"]
#: The deciles numpy's `psi_edges` takes (nine interior edges).
N_BINS = 10
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Profile:
    """Given bins of the expected side: interior edges and the expected share of each bin (a development
    profile saved with a model)."""

    edges: Sequence[float]
    shares: Sequence[float]


@dataclass(frozen=True)
class Stability:
    """The stability of one column: its index, status, bins (edges or categories) and both sides' shares."""

    column: str
    kind: str
    psi: float
    status: str
    bins: list[Any]
    expected: list[float] = field(repr=False)
    actual: list[float] = field(repr=False)


# --- numpy's linear quantile from order statistics ---------------------------------------------------------------


def quantile_ranks(n: int, n_bins: int = N_BINS) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]:
    """The 0-based ranks below and above each decile's virtual index among `n` sorted values, and the weight
    between them, computed as `numpy.quantile(method="linear")` computes them."""
    qs = np.linspace(0, 1, n_bins + 1)[1:-1]
    virtual = (n - 1) * qs
    previous = np.floor(virtual)
    following = previous + 1
    above = virtual >= n - 1
    previous[above] = -1
    following[above] = -1
    gamma = np.asarray(virtual - previous, dtype=np.float64)
    last = n - 1
    below_rank = np.where(previous < 0, last, previous).astype(np.intp)
    above_rank = np.where(following < 0, last, following).astype(np.intp)
    return below_rank, above_rank, gamma


def interpolate(below: NDArray[np.float64], above: NDArray[np.float64], gamma: NDArray[np.float64]) -> list[float]:
    """numpy's `_lerp`, then the distinct edges in order (as `psi_edges`)."""
    diff = above - below
    out = np.add(below, diff * gamma)
    np.subtract(above, diff * (1 - gamma), out=out, where=gamma >= 0.5)
    return [float(v) for v in np.unique(out)]


# --- the SQL each engine runs ------------------------------------------------------------------------------------


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValidationError(f"column: '{name}' is not a plain column name", field="column")
    return name


def _present(col: str) -> str:
    return f"({col} IS NOT NULL AND NOT isnan(CAST({col} AS DOUBLE)))"


def _double(value: float) -> str:
    return f"CAST('{float(value)!r}' AS DOUBLE)"


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    return list(table.to_pylist())


def _counts_sql(view: str, where: str, numeric: Sequence[str]) -> str:
    present = "".join(f", SUM(CASE WHEN {_present(c)} THEN 1 ELSE 0 END) AS n_{c}" for c in numeric)
    return f"SELECT COUNT(*) AS n{present} FROM {view} WHERE {where}"


def _ranks_sql(view: str, where: str, wanted: Mapping[str, Sequence[int]]) -> str:
    parts = []
    for c, ranks in wanted.items():
        listed = ", ".join(str(int(r)) for r in sorted(set(ranks)))
        parts.append(
            f"SELECT '{c}' AS col, r, v FROM (SELECT v, ROW_NUMBER() OVER (ORDER BY v) - 1 AS r FROM "
            f"(SELECT CAST({c} AS DOUBLE) AS v FROM {view} WHERE {where} AND {_present(c)}) p) q "
            f"WHERE r IN ({listed})")
    return " UNION ALL ".join(parts)


def _bin_expr(col: str, edges: Sequence[float], missing_bin: int) -> str:
    if not edges:
        above = "0"
    else:
        above = " + ".join(f"CASE WHEN CAST({col} AS DOUBLE) >= {_double(e)} THEN 1 ELSE 0 END" for e in edges)
    return f"CASE WHEN {_present(col)} THEN {above} ELSE {missing_bin} END"


def _bins_sql(view: str, where: str, edges: Mapping[str, Sequence[float]], categorical: Sequence[str]) -> str:
    parts = [f"SELECT '{c}' AS col, CAST({_bin_expr(c, e, len(e) + 1)} AS STRING) AS b, COUNT(*) AS n "
             f"FROM {view} WHERE {where} GROUP BY 2" for c, e in edges.items()]
    parts += [f"SELECT '{c}' AS col, CAST({c} AS STRING) AS b, COUNT(*) AS n FROM {view} WHERE {where} "
              "GROUP BY 2" for c in categorical]
    return " UNION ALL ".join(parts)


# --- the job -----------------------------------------------------------------------------------------------------


class _Side:
    """One side (expected or actual) of the comparison: a view of a source with a filter."""

    def __init__(self, engine: str, name: str, source: Source, where: str, spark: SparkSession | None) -> None:
        self.engine, self.name, self.source, self.where, self.spark = engine, name, source, where or "TRUE", spark

    def query(self, sql: str) -> list[dict[str, Any]]:
        return _rows(run_query(self.engine, sql, {self.name: self.source}, spark=self.spark))

    def counts(self, numeric: Sequence[str]) -> tuple[int, dict[str, int]]:
        (row,) = self.query(_counts_sql(self.name, self.where, numeric))
        return int(row["n"]), {c: int(row[f"n_{c}"] or 0) for c in numeric}

    def edges(self, present: Mapping[str, int]) -> dict[str, list[float]]:
        plans = {c: quantile_ranks(n) for c, n in present.items() if n > 0}
        if not plans:
            return {}
        wanted = {c: [*below.tolist(), *above.tolist()] for c, (below, above, _) in plans.items()}
        values: dict[tuple[str, int], float] = {(str(r["col"]), int(r["r"])): float(r["v"])
                                                for r in self.query(_ranks_sql(self.name, self.where, wanted))}
        out = {}
        for c, (below, above, gamma) in plans.items():
            lo = np.array([values[c, int(r)] for r in below], dtype=np.float64)
            hi = np.array([values[c, int(r)] for r in above], dtype=np.float64)
            out[c] = interpolate(lo, hi, gamma)
        return out

    def bins(self, edges: Mapping[str, Sequence[float]], categorical: Sequence[str]) -> dict[str, dict[Any, int]]:
        if not edges and not categorical:
            return {}
        out: dict[str, dict[Any, int]] = {}
        for r in self.query(_bins_sql(self.name, self.where, edges, categorical)):
            col, b = str(r["col"]), r["b"]
            key = int(b) if col in edges else b
            out.setdefault(col, {})[key] = int(r["n"])
        return out


def stability_on(engine: str, expected: Source, actual: Source, columns: Mapping[str, Kind], *,
                 expected_where: str = "TRUE", actual_where: str = "TRUE",
                 profiles: Mapping[str, Profile] | None = None,
                 spark: SparkSession | None = None) -> list[Stability]:
    """PSI/CSI of each column of `actual` (rows matching `actual_where`) against `expected` (rows matching
    `expected_where`) on `engine`, in the order of `columns`. A column with a `profiles` entry takes its bins and
    expected shares from it. The `where` filters are SQL over the source's own columns, written by the caller's
    code (never a person's text)."""
    for c in columns:
        _check_name(c)
    profiles = dict(profiles or {})
    exp = _Side(engine, "expected_rows", expected, expected_where, spark)
    act = _Side(engine, "actual_rows", actual, actual_where, spark)
    numeric = [c for c, k in columns.items() if k != "categorical"]
    categorical = [c for c, k in columns.items() if k == "categorical"]
    measured = [c for c in numeric if c not in profiles]
    exp_total, exp_present = exp.counts(measured) if (measured or categorical) else (0, {})
    for c in measured:
        if columns[c] == "score" and exp_present[c] == 0:
            raise ValidationError("expected: no values to take bins from", field=c)
    edges: dict[str, list[float]] = {c: [] for c in measured}
    edges.update(exp.edges({c: exp_present[c] for c in measured}))
    edges.update({c: [float(e) for e in p.edges] for c, p in profiles.items() if c in columns})
    act_total, act_present = act.counts(numeric)
    exp_bins = exp.bins({c: edges[c] for c in measured}, categorical)
    act_bins = act.bins({c: edges[c] for c in numeric}, categorical)
    results = []
    for c, kind in columns.items():
        if kind == "categorical":
            e_shares, a_shares, labels = _category_shares(exp_bins.get(c, {}), act_bins.get(c, {}),
                                                          exp_total, act_total)
        else:
            nb = len(edges[c]) + 1
            labels = list(edges[c])
            if kind == "score":
                if act_present[c] == 0:
                    raise ValidationError("values: nothing to measure", field=c)
                present = {b: n for b, n in act_bins.get(c, {}).items() if b < nb}  # missing values left out
                a_shares = _shares(present, nb, act_present[c])
                e_shares = (np.asarray(profiles[c].shares, dtype=np.float64) if c in profiles else
                            _shares({b: n for b, n in exp_bins.get(c, {}).items() if b < nb}, nb, exp_present[c]))
            else:
                a_shares = _shares(act_bins.get(c, {}), nb + 1, max(act_total, 1))
                e_shares = (np.asarray(profiles[c].shares, dtype=np.float64) if c in profiles
                            else _shares(exp_bins.get(c, {}), nb + 1, max(exp_total, 1)))
        value = psi_from_shares(e_shares, a_shares)
        results.append(Stability(c, kind, value, stability_status(value), labels, e_shares.tolist(),
                                 a_shares.tolist()))
    return results


def _shares(counts: Mapping[int, int], bins: int, whole: int) -> NDArray[np.float64]:
    """Counts per bin (0..bins-1) over `whole`, as numpy's `bincount(...) / n`."""
    c = np.zeros(bins, dtype=np.int64)
    for b, n in counts.items():
        c[b] = n
    return np.asarray(c / whole, dtype=np.float64)


def _category_shares(expected: Mapping[Any, int], actual: Mapping[Any, int], exp_total: int,
                     act_total: int) -> tuple[NDArray[np.float64], NDArray[np.float64], list[Any]]:
    """Bins: each category of the expected side in sorted order, then missing, then unseen."""
    categories = sorted(str(k) for k in expected if k is not None)
    index = {k: i for i, k in enumerate(categories)}

    def shares(counts: Mapping[Any, int], total: int) -> NDArray[np.float64]:
        c = np.zeros(len(categories) + 2, dtype=np.int64)
        for k, n in counts.items():
            c[len(categories) if k is None else index.get(str(k), len(categories) + 1)] += n
        return np.asarray(c / max(total, 1), dtype=np.float64)

    return shares(expected, exp_total), shares(actual, act_total), categories


# --- model scores for the export ---------------------------------------------------------------------------------

#: The exported model scores (partitioned by the month they were scored in).
SCORE_SNAPSHOT = pa.schema([
    ("model_version_id", pa.int64()), ("role", pa.string()), ("shadow", pa.bool_()),
    ("subject_type", pa.string()), ("subject_id", pa.string()), ("score", pa.float64()), ("pd", pa.float64()),
    ("scored_at", pa.timestamp("us", tz="UTC")),
])
MONTH_OF = {"model_scores": "scored_at"}


def scores_parquet(root: Path) -> ParquetDataset:
    """The exported model scores under `root` as an input of `stability_on`."""
    return ParquetDataset(root / "model_scores", {
        "tenant_id": "BIGINT", "month": "VARCHAR", "model_version_id": "BIGINT", "role": "VARCHAR",
        "subject_type": "VARCHAR", "subject_id": "VARCHAR", "score": "DOUBLE", "pd": "DOUBLE",
        "scored_at": "TIMESTAMP"})


def score_snapshot(uow: UnitOfWork, who: Principal, as_of: date, *, chunk_rows: int = 50_000) -> Iterator[pa.Table]:
    """The bank's model scores up to the end of `as_of`, in chunks of Arrow rows ordered by id."""
    from datetime import UTC, datetime, time, timedelta

    who.require(Permission.VIEW_MODELS)
    end = datetime.combine(as_of + timedelta(days=1), time(0, 0), tzinfo=UTC)
    t = ModelScoreRow.__table__.c
    stmt = (select(ModelScoreRow.model_version_id, ModelScoreRow.role, ModelScoreRow.shadow,
                   ModelScoreRow.subject_type, ModelScoreRow.subject_id, cast(t.score, Float), cast(t.pd, Float),
                   ModelScoreRow.scored_at)
            .where(ModelScoreRow.tenant_id == who.tenant_id, ModelScoreRow.scored_at < end)
            .order_by(ModelScoreRow.id))
    with uow.read_only(streamed=True):
        result = uow.session.execute(stmt, execution_options={"yield_per": chunk_rows})
        for rows in result.partitions(chunk_rows):
            yield arrow_chunk(list(rows), SCORE_SNAPSHOT)
