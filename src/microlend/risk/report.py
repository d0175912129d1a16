"""The validation report (验证报告): one self-contained HTML file with charts, and the same figures as JSON."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from microlend.risk.artefacts import ScoringModel
from microlend.risk.columns import categorical_values, is_numeric_column, numeric_values
from microlend.risk.datasets import bad_flag
from microlend.risk.expert import MISSING_LABEL, UNSEEN_LABEL, ExpertScorecardModel
from microlend.risk.gbdt import GbdtModel
from microlend.risk.scorecard import ScorecardModel
from microlend.risk.validation import (
    bin_shares,
    binomial_by_grade,
    bootstrap_intervals,
    calibration_table,
    discrimination,
    gains_table,
    hosmer_lemeshow,
    psi,
    psi_from_shares,
    psi_table,
    records,
    roc_points,
    score_distribution,
    stability_status,
)

#: the order samples appear in; "data" is the sample given to `microlend risk report`
SAMPLE_ORDER = ("train", "test", "oot", "data")
SAMPLE_TITLES = {"train": "Development (train)", "test": "Hold-out (test)", "oot": "Out of time",
                 "data": "Given data"}


def _evaluation_sample(samples: Mapping[str, Any]) -> str:
    for name in ("test", "data", "oot", "train"):
        if name in samples:
            return name
    raise ValueError("no sample to report on")


def sample_figures(model: ScoringModel, frame: pd.DataFrame, target: str, bad: str) -> dict[str, Any]:
    """Metrics of one labelled sample, plus the raw pieces the charts need."""
    y = bad_flag(frame[target], bad, column=target)
    scored = model.score_batch(frame, with_reasons=False)
    pd_, score = scored["pd"].to_numpy(), scored["score"].to_numpy()
    return {"metrics": discrimination(y, pd_), "roc": roc_points(y, pd_), "y": y, "pd": pd_, "score": score}


def build_report(
    model: ScoringModel, *, target: str, bad: str, samples: Mapping[str, pd.DataFrame],
    title: str = "", development: Mapping[str, Any] | None = None,
    benchmark: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Every figure of the validation report, JSON-ready (arrays of scores are not kept)."""
    figures = {name: sample_figures(model, samples[name], target, bad) for name in SAMPLE_ORDER if name in samples}
    main = _evaluation_sample(figures)
    ev = figures[main]
    report: dict[str, Any] = {
        "title": title or f"{model.kind} validation",
        "model": {"kind": model.kind, "features": list(model.features), "target": target, "bad": bad,
                  "scaling": model.scaling.to_dict()},
        "evaluation_sample": main,
        "samples": {name: {"metrics": f["metrics"], "roc": f["roc"]} for name, f in figures.items()},
        "gains": records(gains_table(ev["y"], ev["pd"])),
        "calibration": records(calibration_table(ev["y"], ev["pd"])),
        "score_distribution": records(score_distribution(ev["y"], ev["score"])),
        "stability": _stability(figures, development),
        "features": _feature_tables(model),
        "benchmark": dict(benchmark) if benchmark else None,
        "extra": dict(extra or {}),
        "by_sample": {name: _sample_tests(f) for name, f in figures.items() if name != "train"},
        "data": _data_description(samples, target, bad, model.features),
    }
    if "train" in samples:
        later = {n: samples[n] for n in ("test", "oot", "data") if n in samples}
        report["csi"] = {n: _csi(model, frame, samples["train"]) for n, frame in later.items()}
        report["challenger"] = logistic_challenger(samples, target, bad, model.features)
        if isinstance(model, ScorecardModel):
            report["coefficients"] = coefficient_table(model, samples["train"], target, bad)
    if isinstance(model, GbdtModel):
        report["contributions"] = contribution_summary(model, samples[main])
        report["partial_dependence"] = partial_dependence(model, samples[main], report["contributions"])
    plain: dict[str, Any] = json.loads(json.dumps(report, default=_json_default))
    return plain


def _sample_tests(f: Mapping[str, Any]) -> dict[str, Any]:
    """What a validator checks on a hold-out sample: intervals, gains, calibration and its two tests."""
    y, pd_ = f["y"], f["pd"]
    if y.sum() == 0 or y.sum() == len(y):
        return {}
    return {"ci": bootstrap_intervals(y, pd_), "gains": records(gains_table(y, pd_)),
            "calibration": records(calibration_table(y, pd_)), "hosmer_lemeshow": hosmer_lemeshow(y, pd_),
            "binomial": records(binomial_by_grade(y, pd_))}


def _data_description(samples: Mapping[str, pd.DataFrame], target: str, bad: str,
                      features: list[str]) -> dict[str, Any]:
    """Rows and bads per sample; per feature its type, share missing and distinct values (development)."""
    rows = []
    for name, frame in samples.items():
        y = (frame[target].astype(str).to_numpy() == str(bad)) if target in frame.columns else np.zeros(0)
        rows.append({"sample": name, "rows": len(frame), "bads": int(y.sum()),
                     "bad_rate": float(y.mean()) if len(y) else 0.0})
    first = samples.get("train", next(iter(samples.values())))
    columns = []
    for f in features:
        if f not in first.columns:
            continue
        col = first[f]
        columns.append({"feature": f, "type": "numeric" if is_numeric_column(col) else "categorical",
                        "missing_share": float(col.isna().mean()), "distinct": int(col.nunique(dropna=True))})
    return {"samples": rows, "features": columns}


def _csi(model: ScoringModel, later: pd.DataFrame, train: pd.DataFrame) -> list[dict[str, Any]]:
    from microlend.risk.monitoring import characteristic_stability

    return [{k: r[k] for k in ("feature", "csi", "status", "missing", "unseen") if k in r}
            for r in characteristic_stability(model, later, development=train)]


def _design(frame: pd.DataFrame, features: list[str], reference: pd.DataFrame) -> pd.DataFrame:
    """Numbers (median-filled, with a missing flag) and one-hot categories (the 20 most frequent of the
    reference sample): the plain logistic regression's inputs."""
    cols: dict[str, Any] = {}
    for f in features:
        if is_numeric_column(reference[f]):
            ref = numeric_values(reference[f], f)
            x = numeric_values(frame[f], f)
            median = float(np.nanmedian(ref)) if np.isfinite(ref).any() else 0.0
            scale = float(np.nanstd(ref)) or 1.0
            cols[f] = (np.where(np.isnan(x), median, x) - median) / scale
            if np.isnan(ref).any():
                cols[f"{f}=missing"] = np.isnan(x).astype(float)
        else:
            ref_text, _ = categorical_values(reference[f])
            top = pd.Series(ref_text).value_counts().index[:20]
            text, _ = categorical_values(frame[f])
            for level in top[1:]:
                cols[f"{f}={level}"] = (text == level).astype(float)
    return pd.DataFrame(cols, index=frame.index)


def logistic_challenger(samples: Mapping[str, pd.DataFrame], target: str, bad: str,
                        features: list[str]) -> dict[str, Any]:
    """A standing plain logistic regression on the same split and features: the simplest model the bank
    could use instead, so the validator sees what the model adds."""
    from sklearn.linear_model import LogisticRegression

    from microlend.risk.validation import auc, ks

    train = samples["train"]
    x = _design(train, features, train)
    lr = LogisticRegression(max_iter=2000)
    lr.fit(x.to_numpy(dtype=np.float64), bad_flag(train[target], bad, column=target))
    out: dict[str, Any] = {"kind": "logistic regression", "inputs": int(x.shape[1]), "samples": {}}
    for name, frame in samples.items():
        y = bad_flag(frame[target], bad, column=target)
        if y.sum() == 0 or y.sum() == len(y):
            continue
        p = lr.predict_proba(_design(frame, features, train).to_numpy(dtype=np.float64))[:, 1]
        out["samples"][name] = {"auc": auc(y, p), "ks": ks(y, p)}
    return out


def coefficient_table(model: ScorecardModel, train: pd.DataFrame, target: str, bad: str) -> list[dict[str, Any]]:
    """The regression's coefficients on WoE with Wald standard errors from the training sample (the inverse
    of the information matrix at the fitted pds), z and p-values."""
    from scipy.stats import norm

    idx = model.bin_indices(train)
    woe = np.empty(idx.shape, dtype=np.float64)
    for j, c in enumerate(model.characteristics):
        table = np.array([*c.woe, c.missing_woe, c.unseen_woe], dtype=np.float64)
        woe[:, j] = table[idx[:, j]]
    x = np.c_[np.ones(len(train)), woe]
    p = model.score_batch(train, with_reasons=False)["pd"].to_numpy()
    info = x.T @ (x * (p * (1 - p))[:, None])
    se = np.sqrt(np.clip(np.diag(np.linalg.pinv(info)), 0, None))
    coefs = [model.intercept, *(c.coefficient for c in model.characteristics)]
    rows = []
    for name, b, e in zip(["(intercept)", *model.features], coefs, se, strict=True):
        z = b / e if e > 0 else float("nan")
        rows.append({"feature": name, "coefficient": float(b), "std_error": float(e), "z": float(z),
                     "p_value": float(2 * norm.sf(abs(z))) if e > 0 else float("nan")})
    return rows


def contribution_summary(model: GbdtModel, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Mean absolute contribution (SHAP value on the log-odds of bad) per feature, largest first, and the
    share of rows where the feature raised the risk."""
    x, missing, unseen = model.encode(frame)
    contrib = model.contributions(model.make_conservative(x, model.conservative_mask(missing, unseen)))[:, :-1]
    rows = [{"feature": f, "mean_abs_contribution": float(np.abs(contrib[:, j]).mean()),
             "raised_risk_share": float((contrib[:, j] > 0).mean())} for j, f in enumerate(model.features)]
    return sorted(rows, key=lambda r: -r["mean_abs_contribution"])


def partial_dependence(model: GbdtModel, frame: pd.DataFrame, summary: list[dict[str, Any]],
                       n_features: int = 4, n_points: int = 10, max_rows: int = 500) -> dict[str, Any]:
    """Average pd along a grid of each leading numeric feature's quantiles, every other feature as observed."""
    sample = frame.sample(min(len(frame), max_rows), random_state=42) if len(frame) > max_rows else frame
    out: dict[str, Any] = {}
    for row in summary:
        f = row["feature"]
        if f in model.categories or len(out) >= n_features:
            continue
        values = numeric_values(sample[f], f)
        values = values[~np.isnan(values)]
        if values.size == 0:
            continue
        grid = np.unique(np.quantile(values, np.linspace(0.05, 0.95, n_points)))
        pds = [float(model.score_batch(sample.assign(**{f: g}), with_reasons=False)["pd"].mean()) for g in grid]
        out[f] = [{"value": float(g), "mean_pd": p} for g, p in zip(grid, pds, strict=True)]
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _stability(figures: Mapping[str, Any], development: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """PSI of each later sample's scores against the development scores (bins from development)."""
    rows: list[dict[str, Any]] = []
    if "train" in figures:
        base = figures["train"]["score"]
        for name in ("test", "oot", "data"):
            if name in figures:
                value = psi(base, figures[name]["score"])
                rows.append({"from": "train", "to": name, "psi": value, "status": stability_status(value),
                             "table": records(psi_table(base, figures[name]["score"]))})
    elif development and development.get("score_edges") is not None:
        edges = development["score_edges"]
        for name in ("test", "oot", "data"):
            if name in figures:
                value = psi_from_shares(development["score_shares"], bin_shares(figures[name]["score"], edges))
                rows.append({"from": "development", "to": name, "psi": value,
                             "status": stability_status(value), "table": []})
    return rows


def _feature_tables(model: ScoringModel) -> dict[str, Any]:
    if isinstance(model, ScorecardModel):
        iv = records(model.iv_table())
        table = model.points_table()
        binning = {}
        for c in model.characteristics:
            points = table[table["feature"] == c.name]["points"].tolist()
            binning[c.name] = [
                {"bin": label, "count": int(count), "event_rate": float(rate), "woe": float(woe),
                 "points": float(p)}
                for label, count, rate, woe, p in zip(c.labels, c.counts, c.event_rates, c.woe, points, strict=False)
            ]
            n = len(c.labels)
            for row, bin_iv in zip(binning[c.name], _bin_iv(c), strict=False):
                row["iv"] = bin_iv
            binning[c.name].append({
                "bin": "Missing", "count": c.missing_count, "event_rate": c.missing_event_rate,
                "woe": c.missing_woe if c.missing_count else 0.0, "points": float(points[n]),
                "iv": _bin_iv(c)[-1],
                "note": "" if c.missing_count else "not seen in training: lowest points"})
            if c.has_categories:
                binning[c.name].append({"bin": "Unseen category", "count": 0, "event_rate": 0.0, "woe": 0.0,
                                        "points": float(points[n + 1]), "note": "lowest points"})
        return {"iv": iv, "binning": binning, "importance": []}
    if isinstance(model, GbdtModel):
        return {"iv": [], "binning": {}, "importance": records(model.feature_importance())}
    if isinstance(model, ExpertScorecardModel):
        binning = {}
        for e in model.characteristics:
            rows = [{"bin": b.label, "count": 0, "event_rate": 0.0, "woe": 0.0, "points": b.points} for b in e.bins]
            rows.append({"bin": MISSING_LABEL, "count": 0, "event_rate": 0.0, "woe": 0.0, "points": e.missing_points,
                         "note": "no data: never better than the worst bin"})
            rows.append({"bin": UNSEEN_LABEL, "count": 0, "event_rate": 0.0, "woe": 0.0, "points": e.unseen_points,
                         "note": "a value the table does not know: never better than the worst bin"})
            binning[e.name] = rows
        return {"iv": [], "binning": binning, "importance": [],
                "rationale": {e.name: dict(e.rationale) for e in model.characteristics}}
    return {"iv": [], "binning": {}, "importance": []}


def _bin_iv(c: Any) -> list[float]:
    """Information value of each bin and, last, of the Missing bin: (good share - bad share) * ln(ratio)."""
    counts = np.array([*c.counts, c.missing_count], dtype=np.float64)
    rates = np.array([*c.event_rates, c.missing_event_rate], dtype=np.float64)
    bads = counts * rates
    goods = counts - bads
    b = np.clip(bads / max(bads.sum(), 1e-12), 1e-12, None)
    g = np.clip(goods / max(goods.sum(), 1e-12), 1e-12, None)
    iv = np.where(counts > 0, (g - b) * np.log(g / b), 0.0)
    return [float(v) for v in iv]


def benchmark_entry(model: ScoringModel, *, target: str, bad: str, samples: Mapping[str, pd.DataFrame],
                    train_seconds: float | None = None) -> dict[str, Any]:
    """The other model kind's figures on the same samples, for the benchmark section."""
    out: dict[str, Any] = {"kind": model.kind, "train_seconds": train_seconds, "samples": {}}
    for name in SAMPLE_ORDER:
        if name in samples:
            f = sample_figures(model, samples[name], target, bad)
            out["samples"][name] = {"metrics": f["metrics"], "roc": f["roc"]}
    return out


# --- charts ----------------------------------------------------------------------------------------------

def _png(draw: Callable[[Axes], None], size: tuple[float, float] = (5.2, 3.6)) -> str:
    """Draw on a fresh Agg figure (no global pyplot state) and return it as base64 PNG."""
    fig = Figure(figsize=size, dpi=90)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    draw(ax)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _roc_chart(report: Mapping[str, Any]) -> str:
    def draw(ax: Axes) -> None:
        for name, s in report["samples"].items():
            ax.plot(s["roc"]["fpr"], s["roc"]["tpr"], label=f"{name} AUC {s['metrics']['auc']:.3f}")
        bench = report.get("benchmark")
        if bench:
            s = bench["samples"].get(report["evaluation_sample"])
            if s:
                ax.plot(s["roc"]["fpr"], s["roc"]["tpr"], linestyle="--",
                        label=f"{bench['kind']} ({report['evaluation_sample']}) AUC {s['metrics']['auc']:.3f}")
        ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
        ax.set_xlabel("share of goods (false positive rate)")
        ax.set_ylabel("share of bads (true positive rate)")
        ax.set_title("ROC")
        ax.legend(fontsize=7)
    return _png(draw)


def _distribution_chart(report: Mapping[str, Any]) -> str:
    rows = report["score_distribution"]

    def draw(ax: Axes) -> None:
        mids = [(r["from"] + r["to"]) / 2 for r in rows]
        width = (rows[0]["to"] - rows[0]["from"]) * 0.4 if rows else 1
        ax.bar([m - width / 2 for m in mids], [r["good"] for r in rows], width=width, label="good")
        ax.bar([m + width / 2 for m in mids], [r["bad"] for r in rows], width=width, label="bad")
        ax.set_xlabel("score")
        ax.set_ylabel("cases")
        ax.set_title("Score distribution by class")
        ax.legend(fontsize=7)
    return _png(draw)


def _gains_chart(report: Mapping[str, Any]) -> str:
    rows = report["gains"]

    def draw(ax: Axes) -> None:
        xs = [0.0] + [r["cum_population_share"] for r in rows]
        ax.plot(xs, [0.0] + [r["cum_bad_share"] for r in rows], marker="o", label="model")
        ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, label="random")
        ax.set_xlabel("share of applicants (riskiest first)")
        ax.set_ylabel("share of bads caught")
        ax.set_title("Gains")
        ax.legend(fontsize=7)
    return _png(draw)


def _calibration_chart(report: Mapping[str, Any]) -> str:
    rows = report["calibration"]

    def draw(ax: Axes) -> None:
        pred = [r["predicted_bad_rate"] for r in rows]
        obs = [r["observed_bad_rate"] for r in rows]
        top = max([*pred, *obs, 0.01])
        ax.plot([0, top], [0, top], color="grey", linewidth=0.8)
        ax.plot(pred, obs, marker="o")
        ax.set_xlabel("predicted bad rate")
        ax.set_ylabel("observed bad rate")
        ax.set_title("Calibration by band")
    return _png(draw)


def _binning_chart(name: str, rows: list[dict[str, Any]]) -> str:
    def draw(ax: Axes) -> None:
        xs = list(range(len(rows)))
        ax.bar(xs, [r["count"] for r in rows], color="#9ecae1")
        ax.set_ylabel("count")
        ax.set_xticks(xs)
        ax.set_xticklabels([r["bin"][:18] for r in rows], rotation=30, ha="right", fontsize=6)
        twin = ax.twinx()
        twin.plot(xs, [r["event_rate"] for r in rows], color="#d62728", marker="o")
        twin.set_ylabel("bad rate")
        ax.set_title(name, fontsize=8)
    return _png(draw, size=(4.6, 3.0))


def _importance_chart(rows: list[dict[str, Any]]) -> str:
    def draw(ax: Axes) -> None:
        top = rows[:15][::-1]
        ax.barh([r["feature"][:30] for r in top], [r["gain"] for r in top])
        ax.set_xlabel("total gain")
        ax.set_title("Feature importance")
        ax.tick_params(axis="y", labelsize=6)
    return _png(draw, size=(5.2, 4.0))


def charts(report: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "roc": _roc_chart(report), "distribution": _distribution_chart(report), "gains": _gains_chart(report),
        "calibration": _calibration_chart(report),
        "binning": {name: _binning_chart(name, rows) for name, rows in report["features"]["binning"].items()},
        "importance": _importance_chart(report["features"]["importance"])
        if report["features"]["importance"] else None,
    }


def render_html(report: Mapping[str, Any]) -> str:
    """The report as one HTML page: template shipped in the package, charts inline (no network)."""
    env = Environment(loader=PackageLoader("microlend.risk", "templates"), autoescape=select_autoescape(["html"]))
    template = env.get_template("validation_report.html")
    return template.render(report=report, charts=charts(report), titles=SAMPLE_TITLES)


def write_report(report: Mapping[str, Any], html_path: str | Path, json_path: str | Path | None = None) -> None:
    Path(html_path).write_text(render_html(report), encoding="utf-8")
    if json_path is not None:
        Path(json_path).write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")


def report_workbook(report: Mapping[str, Any]) -> bytes:
    """The report's tables as an Excel workbook (one sheet per table), for a validator's working papers."""
    sheets: dict[str, pd.DataFrame] = {}
    sheets["discrimination"] = pd.DataFrame(
        [{"sample": n, **{k: v for k, v in s["metrics"].items()}} for n, s in report["samples"].items()])
    by_sample = report.get("by_sample") or {}
    intervals = [{"sample": n, "figure": k, **t["ci"][k]} for n, t in by_sample.items() if t.get("ci")
                 for k in ("auc", "gini", "ks")]
    if intervals:
        sheets["intervals"] = pd.DataFrame(intervals)
    for n, t in by_sample.items():
        if t.get("gains"):
            sheets[f"gains {n}"] = pd.DataFrame(t["gains"])
            sheets[f"calibration {n}"] = pd.DataFrame(t["calibration"])
            sheets[f"binomial {n}"] = pd.DataFrame(t["binomial"])
    hl = [{"sample": n, **t["hosmer_lemeshow"]} for n, t in by_sample.items() if t.get("hosmer_lemeshow")]
    if hl:
        sheets["hosmer-lemeshow"] = pd.DataFrame(hl)
    if report.get("stability"):
        sheets["psi"] = pd.DataFrame([{k: r[k] for k in ("from", "to", "psi", "status")}
                                      for r in report["stability"]])
    for n, rows in (report.get("csi") or {}).items():
        sheets[f"csi {n}"] = pd.DataFrame(rows)
    binning = [{"feature": f, **r} for f, rows in report["features"]["binning"].items() for r in rows]
    if binning:
        sheets["binning"] = pd.DataFrame(binning)
    if report["features"]["iv"]:
        sheets["iv"] = pd.DataFrame(report["features"]["iv"])
    for key in ("coefficients", "contributions"):
        if report.get(key):
            sheets[key] = pd.DataFrame(report[key])
    pdp = [{"feature": f, **r} for f, rows in (report.get("partial_dependence") or {}).items() for r in rows]
    if pdp:
        sheets["partial dependence"] = pd.DataFrame(pdp)
    challenger = report.get("challenger")
    if challenger:
        sheets["challenger"] = pd.DataFrame([{"sample": n, **v} for n, v in challenger["samples"].items()])
    if report.get("gates"):
        sheets["gates"] = pd.DataFrame(report["gates"]["results"])
    if report.get("data"):
        sheets["data"] = pd.DataFrame(report["data"]["features"])
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as writer:
        for name, table in sheets.items():
            table.to_excel(writer, sheet_name=name[:31], index=False)
    return buf.getvalue()
