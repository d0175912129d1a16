"""Data quality report (数据质量报告): per column missing rate, distinct count, type, distribution,
outliers (IQR rule), bad rate by bin or category when a target is given, and drift (PSI) against another
dataset. Computed set-based in DuckDB; rendered as JSON and as one self-contained HTML file.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import duckdb
import pandas as pd
import pyarrow as pa
from jinja2 import Environment, PackageLoader, select_autoescape

from microlend.core.errors import ValidationError

ColumnKind = Literal["numeric", "categorical", "datetime", "boolean"]
#: Called as (columns done, columns in all).
Progress = Callable[[int, int], None]
#: Floor for a bin's share in PSI, so an empty bin does not make the index infinite.
PSI_FLOOR = 1e-4
PSI_WATCH = 0.10
PSI_ACT = 0.25
MISSING = "(missing)"
OTHER = "(other)"


@dataclass
class Bin:
    """One bar of a distribution: a label, its rows, and (with a target) its bad rows and rate."""

    label: str
    count: int
    share: float
    bad: int | None = None
    bad_rate: float | None = None


@dataclass
class DriftBin:
    label: str
    expected_share: float
    actual_share: float
    psi: float


@dataclass
class ColumnQuality:
    name: str
    kind: ColumnKind
    dtype: str
    count: int
    missing: int
    missing_rate: float
    distinct: int
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    std: float | None = None
    q1: float | None = None
    median: float | None = None
    q3: float | None = None
    outliers: int | None = None
    outlier_rate: float | None = None
    distribution: list[Bin] = field(default_factory=list)
    target_rate: list[Bin] = field(default_factory=list)
    information_value: float | None = None
    psi: float | None = None
    drift: list[DriftBin] = field(default_factory=list)
    chart: str | None = None  # base64 PNG, filled in when rendering HTML

    @property
    def drift_level(self) -> str | None:
        if self.psi is None:
            return None
        return "act" if self.psi >= PSI_ACT else "watch" if self.psi >= PSI_WATCH else "stable"


@dataclass
class QualityReport:
    name: str
    rows: int
    columns: list[ColumnQuality]
    target: str | None = None
    bad_value: str | None = None
    bad_rows: int | None = None
    bad_rate: float | None = None
    against_name: str | None = None
    against_rows: int | None = None

    def column(self, name: str) -> ColumnQuality:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for col, raw in zip(self.columns, out["columns"], strict=True):
            raw.pop("chart", None)
            raw["drift_level"] = col.drift_level
        cleaned: dict[str, Any] = _finite(out)
        return cleaned

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such numbers become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _kind(dtype: pa.DataType) -> ColumnKind:
    if pa.types.is_boolean(dtype):
        return "boolean"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "numeric"
    if pa.types.is_temporal(dtype):
        return "datetime"
    return "categorical"


def _to_arrow(df: pd.DataFrame | pa.Table) -> pa.Table:
    if isinstance(df, pa.Table):
        return df
    try:
        return pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # mixed Python types in one column: analyse such columns as text
        return pa.Table.from_pandas(
            df.astype({c: "string" for c in df.columns if df[c].dtype == object}), preserve_index=False
        )


class _Frame:
    """A DuckDB connection holding the dataset as `t` (with `is_bad` when a target is given)."""

    def __init__(self, table: pa.Table, target: str | None, bad: str | None) -> None:
        self.conn = duckdb.connect(":memory:")
        self.conn.register("raw", table)
        bad_expr = "NULL::INTEGER"
        if target is not None:
            bad_expr = (
                f"CASE WHEN {_q(target)} IS NULL THEN NULL "
                f"WHEN CAST({_q(target)} AS VARCHAR) = {_literal(bad or '')} THEN 1 ELSE 0 END"
            )
        self.conn.execute(f"CREATE VIEW t AS SELECT *, {bad_expr} AS __is_bad FROM raw")

    def close(self) -> None:
        self.conn.close()

    def one(self, sql: str, params: dict[str, Any] | None = None) -> tuple[Any, ...]:
        row = self.conn.execute(sql, params).fetchone()
        assert row is not None
        return tuple(row)

    def all(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.conn.execute(sql, params).fetchall()]


def quality_report(
    df: pd.DataFrame | pa.Table,
    *,
    name: str = "dataset",
    target: str | None = None,
    bad: Any = None,
    against: pd.DataFrame | pa.Table | None = None,
    against_name: str = "comparison",
    bins: int = 10,
    top: int = 10,
    progress: Progress | None = None,
) -> QualityReport:
    """Profile every column of `df`; with `target` and `bad`, add bad rates; with `against`, add PSI."""
    table = _to_arrow(df)
    if target is not None and target not in table.column_names:
        raise ValidationError(f"target: no column named '{target}'", field="target")
    if target is not None and bad is None:
        raise ValidationError("bad: give the target value that means bad", field="bad")
    bad_text = None if bad is None else str(bad)
    frame = _Frame(table, target, bad_text)
    other = _Frame(_to_arrow(against), None, None) if against is not None else None
    other_columns = set(_to_arrow(against).column_names) if against is not None else set()
    try:
        rows = table.num_rows
        report = QualityReport(
            name=name,
            rows=rows,
            columns=[],
            target=target,
            bad_value=bad_text,
            against_name=against_name if against is not None else None,
            against_rows=None if against is None else _to_arrow(against).num_rows,
        )
        if target is not None:
            n_known, n_bad = frame.one("SELECT count(__is_bad), coalesce(sum(__is_bad), 0) FROM t")
            report.bad_rows = int(n_bad)
            report.bad_rate = n_bad / n_known if n_known else None
        names = table.column_names
        counts = _non_null_and_distinct(frame, names, rows)
        for i, col in enumerate(names):
            cq = _profile_column(
                frame, other, table.schema.field(col), counts[i], rows,
                with_target=target is not None and col != target,
                compare=other is not None and col in other_columns, bins=bins, top=top,
            )
            report.columns.append(cq)
            if progress is not None:
                progress(i + 1, len(names))
        return report
    finally:
        frame.close()
        if other is not None:
            other.close()


def _non_null_and_distinct(frame: _Frame, names: list[str], rows: int) -> list[tuple[int, int]]:
    """Each column's non-null and distinct counts in one scan (approximate distinct past a million rows)."""
    if not names:
        return []
    counts = frame.one(
        "SELECT "
        + ", ".join(
            f"count({_q(c)}), approx_count_distinct({_q(c)})"
            if rows > 1_000_000
            else f"count({_q(c)}), count(DISTINCT {_q(c)})"
            for c in names
        )
        + " FROM t"
    )
    return [(int(counts[2 * i]), int(counts[2 * i + 1])) for i in range(len(names))]


def _profile_column(
    frame: _Frame,
    other: _Frame | None,
    field_: pa.Field,
    counts: tuple[int, int],
    rows: int,
    *,
    with_target: bool,
    compare: bool,
    bins: int,
    top: int,
) -> ColumnQuality:
    """One column's profile: distribution, bad rate by bin or category, and drift against `other`."""
    col, kind = field_.name, _kind(field_.type)
    non_null, distinct = counts
    cq = ColumnQuality(
        name=col,
        kind=kind,
        dtype=str(field_.type),
        count=rows,
        missing=rows - non_null,
        missing_rate=(rows - non_null) / rows if rows else 0.0,
        distinct=distinct,
    )
    if kind == "numeric" and non_null:
        _numeric(frame, cq, bins)
        edges = _quantile_edges(frame, col, bins)
        if with_target:
            cq.target_rate = _binned(frame, col, edges, with_target=True)
            cq.information_value = information_value(cq.target_rate)
        if compare and other is not None:
            _drift(cq, _binned(frame, col, edges), _binned(other, col, edges))
        return cq
    cq.distribution = _categories(frame, col, top, with_target=False)
    if with_target:
        cq.target_rate = _categories(frame, col, top, with_target=True)
        cq.information_value = information_value(cq.target_rate)
    if compare and other is not None:
        keep = [b.label for b in cq.distribution]
        _drift(cq, cq.distribution, _categories(other, col, top, with_target=False, keep=keep))
    return cq


def _numeric(frame: _Frame, cq: ColumnQuality, bins: int) -> None:
    c = f"CAST({_q(cq.name)} AS DOUBLE)"
    lo, hi, mean, std, q1, med, q3 = frame.one(
        f"SELECT min({c}), max({c}), avg({c}), stddev_samp({c}), quantile_cont({c}, 0.25), "
        f"quantile_cont({c}, 0.5), quantile_cont({c}, 0.75) FROM t"
    )
    cq.minimum, cq.maximum, cq.mean, cq.std, cq.q1, cq.median, cq.q3 = lo, hi, mean, std, q1, med, q3
    iqr = q3 - q1
    low, high = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    (outliers,) = frame.one(f"SELECT count(*) FROM t WHERE {c} < $low OR {c} > $high", {"low": low, "high": high})
    cq.outliers = int(outliers)
    cq.outlier_rate = outliers / (cq.count - cq.missing)
    # equal-width histogram for the distribution chart
    width = (hi - lo) / bins if hi > lo else 1.0
    hist = dict(
        frame.all(
            f"SELECT least(CAST(floor(({c} - $lo) / $w) AS INTEGER), $last), count(*) FROM t "
            f"WHERE {c} IS NOT NULL GROUP BY 1",
            {"lo": lo, "w": width, "last": bins - 1 if hi > lo else 0},
        )
    )
    total = cq.count
    n_bins = bins if hi > lo else 1
    cq.distribution = [
        Bin(
            f"{_fmt(lo + k * width)}–{_fmt(lo + (k + 1) * width) if hi > lo else _fmt(hi)}",
            int(hist.get(k, 0)),
            hist.get(k, 0) / total,
        )
        for k in range(n_bins)
    ]
    if cq.missing:
        cq.distribution.append(Bin(MISSING, cq.missing, cq.missing / total))


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _quantile_edges(frame: _Frame, col: str, bins: int) -> list[float]:
    c = f"CAST({_q(col)} AS DOUBLE)"
    probs = [k / bins for k in range(1, bins)]
    (edges,) = frame.one(f"SELECT quantile_disc({c}, $p) FROM t", {"p": probs})
    return sorted(set(e for e in (edges or []) if e is not None))


def _binned(frame: _Frame, col: str, edges: list[float], with_target: bool = False) -> list[Bin]:
    """Rows per quantile bin (x <= edge; last bin open), plus a missing bin; with bad rates if asked."""
    c = f"CAST({_q(col)} AS DOUBLE)"
    case = " ".join(f"WHEN {c} <= {e!r} THEN {k}" for k, e in enumerate(edges))
    bin_expr = f"CASE WHEN {c} IS NULL THEN -1 {case} ELSE {len(edges)} END"
    found = {
        int(b): (int(n), None if bd is None else int(bd))
        for b, n, bd in frame.all(f"SELECT {bin_expr}, count(*), sum(__is_bad) FROM t GROUP BY 1")
    }
    total = sum(n for n, _ in found.values())
    labels = []
    for k in range(len(edges) + 1):
        lo = "-∞" if k == 0 else _fmt(edges[k - 1])
        hi = "+∞" if k == len(edges) else _fmt(edges[k])
        labels.append((k, f"({lo}, {hi}]"))
    labels.append((-1, MISSING))
    out = []
    for k, label in labels:
        n, bd = found.get(k, (0, 0))
        if k == -1 and n == 0:
            continue
        out.append(_bin(label, n, total, bd if with_target else None, frame, with_target))
    return out


def _bin(label: str, n: int, total: int, bad: int | None, frame: _Frame, with_target: bool) -> Bin:
    share = n / total if total else 0.0
    if not with_target:
        return Bin(label, n, share)
    bad = bad or 0
    return Bin(label, n, share, bad, bad / n if n else None)


def _categories(frame: _Frame, col: str, top: int, *, with_target: bool, keep: list[str] | None = None) -> list[Bin]:
    """The `top` most frequent values (or exactly `keep`), the rest as (other), missing apart. Grouped and
    ordered by position, never by an alias a column of the dataset could shadow."""
    label = f"CASE WHEN {_q(col)} IS NULL THEN '{MISSING}' ELSE CAST({_q(col)} AS VARCHAR) END"
    rows = frame.all(f"SELECT {label}, count(*), sum(__is_bad) FROM t GROUP BY 1 ORDER BY 2 DESC, 1")
    total = sum(int(n) for _, n, _ in rows)
    wanted = keep if keep is not None else [v for v, _, _ in rows if v != MISSING][:top]
    by_value = {v: (int(n), None if b is None else int(b)) for v, n, b in rows}
    out = []
    for v in wanted:
        if v in (OTHER, MISSING):
            continue
        n, b = by_value.get(v, (0, 0))
        out.append(_bin(v, n, total, b, frame, with_target))
    rest = [(n, b) for v, (n, b) in by_value.items() if v not in wanted and v != MISSING]
    if rest:
        out.append(_bin(OTHER, sum(n for n, _ in rest), total, sum(b or 0 for _, b in rest), frame, with_target))
    if MISSING in by_value:
        n, b = by_value[MISSING]
        out.append(_bin(MISSING, n, total, b, frame, with_target))
    return out


def psi(expected: list[float], actual: list[float]) -> float:
    """Population stability index Σ (a − e)·ln(a / e) over matching bins, shares floored at 1e-4."""
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, PSI_FLOOR), max(a, PSI_FLOOR)
        total += (a - e) * math.log(a / e)
    return total


def information_value(bins: list[Bin]) -> float | None:
    """IV (信息值) of a binned feature: Σ (good share − bad share)·ln(good share / bad share).

    Shares are floored like PSI so an all-good or all-bad bin stays finite; None without bads or goods."""
    bad_total = sum(b.bad or 0 for b in bins)
    good_total = sum(b.count - (b.bad or 0) for b in bins)
    if not bad_total or not good_total:
        return None
    goods = [(b.count - (b.bad or 0)) / good_total for b in bins]
    bads = [(b.bad or 0) / bad_total for b in bins]
    return psi(bads, goods)


def _drift(cq: ColumnQuality, base: list[Bin], current: list[Bin]) -> None:
    labels = list(dict.fromkeys([b.label for b in base] + [b.label for b in current]))
    e = {b.label: b.share for b in base}
    a = {b.label: b.share for b in current}
    cq.drift = [
        DriftBin(lbl, e.get(lbl, 0.0), a.get(lbl, 0.0), psi([e.get(lbl, 0.0)], [a.get(lbl, 0.0)])) for lbl in labels
    ]
    cq.psi = sum(d.psi for d in cq.drift)


def _chart(cq: ColumnQuality) -> str:
    """One PNG per column: distribution, bad rate by bin and PSI bins, as base64 for embedding."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [
        p
        for p in ("dist", "target", "drift")
        if (p == "dist" and cq.distribution) or (p == "target" and cq.target_rate) or (p == "drift" and cq.drift)
    ]
    fig = Figure(figsize=(4.2 * max(len(panels), 1), 2.6), dpi=80)
    FigureCanvasAgg(fig)  # the Agg canvas: no display, no pyplot state shared between threads
    axes = fig.subplots(1, max(len(panels), 1), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=False):
        if panel == "dist":
            labels = [b.label for b in cq.distribution]
            ax.bar(range(len(labels)), [b.count for b in cq.distribution], color="#4C72B0")
            ax.set_title("distribution", fontsize=9)
        elif panel == "target":
            labels = [b.label for b in cq.target_rate]
            ax.bar(range(len(labels)), [b.count for b in cq.target_rate], color="#BBBBBB")
            ax2 = ax.twinx()
            ax2.plot(
                range(len(labels)),
                [b.bad_rate if b.bad_rate is not None else float("nan") for b in cq.target_rate],
                color="#C44E52",
                marker="o",
            )
            ax2.set_ylim(bottom=0)
            ax.set_title("rows and bad rate", fontsize=9)
        else:
            labels = [d.label for d in cq.drift]
            x = range(len(labels))
            ax.bar([i - 0.2 for i in x], [d.expected_share for d in cq.drift], width=0.4, label="this")
            ax.bar([i + 0.2 for i in x], [d.actual_share for d in cq.drift], width=0.4, label="comparison")
            ax.legend(fontsize=7)
            ax.set_title(f"PSI {cq.psi:.3f}", fontsize=9)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels([lbl[:14] for lbl in labels], rotation=60, ha="right", fontsize=6)
        ax.tick_params(axis="y", labelsize=7)
    fig.subplots_adjust(left=0.08, right=0.94, bottom=0.38, top=0.88, wspace=0.35)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def figure(value: float | int | None) -> str:
    """A measured value in plain grouped digits, at most 4 decimals, no trailing zeros (18,420 and 0.1235,
    never 1.842e+04)."""
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    text = f"{value:,.4f}" if isinstance(value, float) else f"{value:,}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def default_bad(categories: Sequence[str] | None) -> str | None:
    """The target value that means bad when the person named none: "bad" (or 1 of a 0/1 flag)."""
    values = {str(c).strip().lower(): str(c) for c in categories or ()}
    for name in ("bad", "1", "yes", "true", "default"):
        if name in values and (name != "1" or set(values) <= {"0", "1"}):
            return values[name]
    return None


_env = Environment(loader=PackageLoader("microlend.data", "templates"), autoescape=select_autoescape(["html"]))
_env.filters["figure"] = figure


def render_html(report: QualityReport, progress: Progress | None = None) -> str:
    """One self-contained HTML file: inline CSS and charts as embedded PNGs, nothing fetched."""
    for i, cq in enumerate(report.columns):
        cq.chart = _chart(cq)
        if progress is not None:
            progress(i + 1, len(report.columns))
    return _env.get_template("quality.html").render(report=report, psi_watch=PSI_WATCH, psi_act=PSI_ACT)
