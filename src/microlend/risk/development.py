"""Model development (模型开发) from one labelled table: split, train, benchmark, validate, save, report."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from microlend.core.errors import ValidationError
from microlend.risk.artefacts import Artefact, ScoringModel, dataset_hash, load_model, save_model
from microlend.risk.datasets import bad_flag, out_of_time_split, stratified_split
from microlend.risk.gates import ModelGates, check_sample
from microlend.risk.gates import summary as gate_summary
from microlend.risk.gbdt import GbdtConfig, train_gbdt
from microlend.risk.report import benchmark_entry, build_report, write_report
from microlend.risk.scorecard import ScorecardConfig, train_scorecard

KINDS = ("scorecard", "gbdt")
STEPS = ("split", "train", "benchmark", "validate", "save", "report")


@dataclass(frozen=True)
class Development:
    artefact: Artefact
    report: dict[str, Any]
    train_seconds: float


@dataclass(frozen=True)
class _Trained:
    model: ScoringModel
    seconds: float
    parameters: dict[str, Any]
    extra: dict[str, Any]


def _train(kind: str, frame: pd.DataFrame, target: str, bad: str, features: tuple[str, ...], seed: int,
           scorecard_config: ScorecardConfig | None, gbdt_config: GbdtConfig | None) -> _Trained:
    started = time.perf_counter()
    if kind == "scorecard":
        sc_config = scorecard_config or ScorecardConfig()
        sc_config = ScorecardConfig(**{**sc_config.__dict__, "features": features})
        fit = train_scorecard(frame, target, bad, sc_config)
        return _Trained(fit.model, time.perf_counter() - started, sc_config.to_dict(),
                        {"dropped": fit.dropped, "iv": fit.iv, "warnings": fit.warnings})
    gb_config = gbdt_config or GbdtConfig(seed=seed)
    gb_config = GbdtConfig(**{**gb_config.__dict__, "features": features})
    gfit = train_gbdt(frame, target, bad, gb_config)
    return _Trained(gfit.model, time.perf_counter() - started,
                    {**gb_config.to_dict(), "best_iteration": gfit.best_iteration, "rounds": gfit.rounds,
                     "monotone_applied": gfit.monotone},
                    {"valid_auc": gfit.valid_auc})


def develop_model(
    frame: pd.DataFrame, *, target: str, bad: str, kind: str, out_dir: str | Path, created_at: datetime,
    date_column: str | None = None, seed: int = 42, test_size: float = 0.3, benchmark: bool = True,
    scorecard_config: ScorecardConfig | None = None, gbdt_config: GbdtConfig | None = None,
    name: str = "", progress: Callable[[str], None] | None = None, gates: ModelGates | None = None,
    ordinal: Mapping[str, Sequence[str]] | None = None, monotone: Mapping[str, str] | None = None,
    reason_wording: Mapping[str, Mapping[str, str]] | None = None,
) -> Development:
    """Train `kind` on a stratified 70/30 split (plus out-of-time when a date column is given), benchmark it
    against the other kind, and write the model, report.html and report.json into `out_dir`. A sample below
    the gates' minimum rows or bads is refused before training; the report shows every gate's result."""
    gates = gates or ModelGates()
    if ordinal:
        base = scorecard_config or ScorecardConfig()
        scorecard_config = ScorecardConfig(**{**base.__dict__,
                                              "ordinal": {k: tuple(map(str, v)) for k, v in ordinal.items()}})
    if monotone:
        gb_base = gbdt_config or GbdtConfig(seed=seed)
        gbdt_config = GbdtConfig(**{**gb_base.__dict__, "monotone": {**gb_base.monotone, **monotone}})
    step = progress or (lambda _s: None)
    if kind not in KINDS:
        raise ValidationError(f"kind: must be one of {', '.join(KINDS)}, not '{kind}'", field="kind")
    if target not in frame.columns:
        raise ValidationError(f"target: no column named '{target}' (columns: {', '.join(map(str, frame.columns))})",
                              field="target")
    if date_column is not None and date_column not in frame.columns:
        raise ValidationError(f"date_column: no column named '{date_column}'", field="date_column")
    bad_flag(frame[target], bad, column=target)
    check_sample(frame[target], bad, gates, column=target)
    candidates = [str(c) for c in frame.columns if c not in (target, date_column)]
    empty = {c: "no values in the data" for c in candidates if frame[c].isna().all()}
    features = tuple(c for c in candidates if c not in empty)
    if not features:
        raise ValidationError("data: no feature columns besides the target", field="data")

    step("split")
    samples: dict[str, pd.DataFrame] = {}
    development = frame
    if date_column is not None:
        development, samples["oot"] = out_of_time_split(frame, date_column)
    samples["train"], samples["test"] = stratified_split(development, target, bad, test_size=test_size, seed=seed)

    step("train")
    main = _train(kind, samples["train"], target, bad, features, seed, scorecard_config, gbdt_config)

    step("benchmark")
    bench: dict[str, Any] | None = None
    if benchmark:
        other_kind = "gbdt" if kind == "scorecard" else "scorecard"
        other = _train(other_kind, samples["train"], target, bad, features, seed, scorecard_config, gbdt_config)
        bench = benchmark_entry(other.model, target=target, bad=bad, samples=samples, train_seconds=other.seconds)

    step("validate")
    report = build_report(
        main.model, target=target, bad=bad, samples=samples, title=name or f"{kind} on {target}",
        benchmark=bench,
        extra={"train_seconds": main.seconds, "dropped": {**empty, **main.extra.get("dropped", {})},
               "warnings": main.extra.get("warnings", [])},
    )

    step("save")
    out = Path(out_dir)
    train_scores = main.model.score_batch(samples["train"], with_reasons=False)["score"].to_numpy()
    metrics = {name_: s["metrics"] for name_, s in report["samples"].items()}
    metrics["stability"] = {r["to"]: r["psi"] for r in report["stability"]}
    report["gates"] = gate_summary(metrics, gates)
    if bench:
        metrics["benchmark"] = {"kind": bench["kind"],
                                **{n: s["metrics"] for n, s in bench["samples"].items()}}
    parameters = {**main.parameters, "seed": seed, "test_size": test_size, "date_column": date_column,
                  "train_seconds": round(main.seconds, 3)}
    if reason_wording:
        parameters["reason_wording"] = {f: dict(w) for f, w in reason_wording.items()
                                        if f in main.model.features}
    # the report is built once, here, and stored with the model; its hashes go into the model's metadata
    out.mkdir(parents=True, exist_ok=True)
    write_report(report, out / "report.html", out / "report.json")
    parameters["report_sha256"] = {f: hashlib.sha256((out / f).read_bytes()).hexdigest()
                                   for f in ("report.html", "report.json")}
    save_model(main.model, out, target=target, bad=bad, created_at=created_at, data_hash=dataset_hash(frame),
               parameters=parameters, metrics=metrics, development_scores=train_scores, name=name)

    step("report")
    return Development(artefact=load_model(out), report=report, train_seconds=main.seconds)


def validate_on(artefact: Artefact, frame: pd.DataFrame, html_path: str | Path,
                json_path: str | Path | None = None) -> dict[str, Any]:
    """Validate a saved model on any labelled data (stability against its development scores)."""
    meta = artefact.metadata
    if meta.target not in frame.columns:
        raise ValidationError(f"data: the model's target column '{meta.target}' is missing", field="data")
    report = build_report(artefact.model, target=meta.target, bad=meta.bad, samples={"data": frame},
                          title=f"{meta.name or meta.kind} on new data", development=meta.development)
    write_report(report, html_path, json_path)
    return report
