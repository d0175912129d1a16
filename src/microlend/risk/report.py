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
from microlend.risk.datasets import bad_flag
from microlend.risk.expert import MISSING_LABEL, UNSEEN_LABEL, ExpertScorecardModel
from microlend.risk.gbdt import GbdtModel
from microlend.risk.scorecard import ScorecardModel
from microlend.risk.validation import (
    bin_shares,
    calibration_table,
    discrimination,
    gains_table,
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
    }
    plain: dict[str, Any] = json.loads(json.dumps(report, default=_json_default))
    return plain


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
            binning[c.name].append({
                "bin": "Missing", "count": c.missing_count, "event_rate": c.missing_event_rate,
                "woe": c.missing_woe if c.missing_count else 0.0, "points": float(points[n]),
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
