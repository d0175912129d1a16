"""Use cases of the risk module for the API and pages: train from a stored dataset, score one case with a
given version, read a version's report and points table, and monitor a version in use (模型监控)."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from microlend.core.clock import utcnow
from microlend.core.errors import Conflict, NotFound, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.data.contracts import DataContract
from microlend.data.importer import get_dataset, load_dataset
from microlend.risk import registry
from microlend.risk.development import KINDS, develop_model
from microlend.risk.expert import MISSING_LABEL, UNSEEN_LABEL, ExpertScorecardModel
from microlend.risk.monitoring import (
    characteristic_stability,
    performance,
    performance_by_month,
    score_stability,
)
from microlend.risk.reasons import Reason, worded
from microlend.risk.scorecard import ScorecardModel
from microlend.risk.tables import ModelScoreRow

#: Training in a request is for samples of this size; larger ones go through `microlend risk train`.
MAX_TRAINING_ROWS = 200_000


@dataclass(frozen=True)
class TrainingRequest:
    dataset: str
    target: str
    bad: str
    kind: str
    dataset_version: int | None = None
    date_column: str | None = None
    name: str = ""
    seed: int = 42


def train_from_dataset(uow: UnitOfWork, who: Principal, cmd: TrainingRequest, *,
                       store_root: Path | None = None) -> registry.ModelVersion:
    """Train, validate and register a draft from a stored dataset; the report is stored beside the model."""
    who.require(Permission.TRAIN_MODELS)
    if cmd.kind not in KINDS:
        raise ValidationError(f"kind: must be one of {', '.join(KINDS)}, not '{cmd.kind}'", field="kind")
    frame = load_dataset(uow, who, cmd.dataset, cmd.dataset_version)
    if len(frame) > MAX_TRAINING_ROWS:
        raise ValidationError(
            f"dataset: {len(frame):,} rows is more than {MAX_TRAINING_ROWS:,} for training here; use "
            "'microlend risk train --data FILE ... --register' instead", field="dataset")
    info = get_dataset(uow, who, cmd.dataset, cmd.dataset_version)
    declared = DataContract.from_dict(info.contract) if info.contract else None
    ordinal = declared.ordinal_columns() if declared is not None else {}
    gates = registry.model_gates(uow, who)
    with tempfile.TemporaryDirectory(prefix="microlend-train-") as tmp:
        develop_model(frame, target=cmd.target, bad=cmd.bad, kind=cmd.kind, out_dir=tmp, created_at=utcnow(),
                      date_column=cmd.date_column or None, name=cmd.name, seed=cmd.seed, gates=gates,
                      ordinal=ordinal, monotone=declared.monotone_columns() if declared is not None else None,
                      reason_wording=declared.reason_wording() if declared is not None else None)
        return registry.register_model(uow, who, tmp, name=cmd.name, store_root=store_root)


def model_directory(uow: UnitOfWork, who: Principal, version_id: int) -> Path:
    version = registry.get_model_version(uow, who, version_id)
    return registry.resolve_store_path(version.store_path)


def _figures_path(folder: Path) -> Path:
    """report.json of a model; the shipped starter keeps it beside its folder."""
    from microlend.risk.starter import STARTER_DIR, STARTER_REPORT

    if not (folder / "report.json").is_file() and folder.resolve() == STARTER_DIR.resolve():
        return STARTER_REPORT
    return folder / "report.json"


def has_report(uow: UnitOfWork, who: Principal, version_id: int) -> bool:
    folder = model_directory(uow, who, version_id)
    return (folder / "report.html").is_file() or _figures_path(folder).is_file()


def report_html(uow: UnitOfWork, who: Principal, version_id: int) -> str:
    """The validation report stored with a version (HTML with its charts inline); a version that ships only
    the report's figures (like the starter scorecard) has its page drawn from them."""
    version = registry.get_model_version(uow, who, version_id)
    folder = registry.resolve_store_path(version.store_path)
    path = folder / "report.html"
    if path.is_file():
        document = path.read_bytes()
        stored = (version.parameters or {}).get("report_sha256", {}).get("report.html")
        if stored and hashlib.sha256(document).hexdigest() != stored:
            raise Conflict(f"report: the stored validation report of {version.label} does not match its hash")
        return document.decode("utf-8")
    if _figures_path(folder).is_file():
        from microlend.risk.report import render_html

        return render_html(report_json(uow, who, version_id))
    raise NotFound(f"model version {version_id} has no stored validation report")


def report_json(uow: UnitOfWork, who: Principal, version_id: int) -> dict[str, Any]:
    path = _figures_path(model_directory(uow, who, version_id))
    if not path.is_file():
        raise NotFound(f"model version {version_id} has no stored validation report")
    result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return result


def report_workbook(uow: UnitOfWork, who: Principal, version_id: int) -> bytes:
    """The stored report's tables as an Excel workbook (read from the stored figures, not recomputed)."""
    from microlend.risk.report import report_workbook as workbook

    return workbook(report_json(uow, who, version_id))


_runtime = registry.ScoringRuntime()


def points_table(uow: UnitOfWork, who: Principal, version_id: int) -> pd.DataFrame | None:
    """A scorecard's points table (feature, bin, points, WoE, count), an expert scorecard's (feature, bin,
    points, neutral point, reason code, source, rationale); None for a GBDT."""
    version = registry.get_model_version(uow, who, version_id)
    model = _runtime.artefact(version).model
    return model.points_table() if isinstance(model, ScorecardModel | ExpertScorecardModel) else None


def expert_table(uow: UnitOfWork, who: Principal, version_id: int, locale: str = "en") -> dict[str, Any] | None:
    """An expert scorecard's points table for a page: per characteristic its bins (Missing and unseen marked),
    neutral point, reason code and rationale in the locale, and the PD assumption; None for other kinds."""
    version = registry.get_model_version(uow, who, version_id)
    model = _runtime.artefact(version).model
    if not isinstance(model, ExpertScorecardModel):
        return None
    lang = "zh-CN" if locale.lower().replace("_", "-").startswith("zh") else "en"
    characteristics = []
    for c in model.characteristics:
        bins = [{"label": b.label, "points": b.points, "special": ""} for b in c.bins]
        bins += [{"label": MISSING_LABEL, "points": c.missing_points, "special": "missing"},
                 {"label": UNSEEN_LABEL, "points": c.unseen_points, "special": "unseen"}]
        characteristics.append({"name": c.name, "source": c.source, "reason_code": c.reason_code,
                                "neutral": c.neutral_points, "rationale": c.rationale.get(lang, ""), "bins": bins})
    note = (version.parameters.get("pd_mapping") or {}).get("note") or {}
    return {"base_points": model.base_points, "characteristics": characteristics,
            "pd_note": note.get(lang, "") if isinstance(note, dict) else str(note)}


@dataclass(frozen=True)
class CaseScore:
    model_version_id: int
    model_label: str
    kind: str
    pd: float
    score: float
    reasons: list[Reason]
    unseen: list[str] = field(default_factory=list)


def score_case(uow: UnitOfWork, who: Principal, version_id: int, case: Mapping[str, Any],
               *, top_n: int = 3) -> CaseScore:
    """Score one case with a given version (a what-if: nothing is recorded); a missing value never seen in
    training and an unseen category score the lowest points of their characteristic, and are named."""
    who.require(Permission.SCORE)
    version = registry.get_model_version(uow, who, version_id)
    model = _runtime.artefact(version).model
    pd_, score, reasons = model.score_one(case, top_n=top_n)
    return CaseScore(version.id, version.label, version.kind, pd_, score, worded(reasons, version.parameters),
                     registry.unseen_in(model, case))


def monitoring_report(uow: UnitOfWork, who: Principal, version_id: int, *, dataset: str | None = None,
                      dataset_version: int | None = None, date_column: str | None = None) -> dict[str, Any]:
    """PSI of the scores this version gave live (all, and per month) against its development sample; with a
    stored dataset of live applications also CSI per feature and, when it has outcomes, AUC/KS by month."""
    who.require(Permission.VIEW_MODELS)
    version = registry.get_model_version(uow, who, version_id)
    artefact = _runtime.artefact(version)
    development = artefact.metadata.development
    with uow:
        rows = uow.session.execute(
            select(ModelScoreRow.score, ModelScoreRow.scored_at).where(
                ModelScoreRow.tenant_id == who.tenant_id, ModelScoreRow.model_version_id == version.id,
            ).order_by(ModelScoreRow.scored_at)).all()
    result: dict[str, Any] = {"model_version_id": version.id, "label": version.label, "kind": version.kind,
                              "status": version.status, "live_count": len(rows),
                              "thresholds": {"watch": 0.10, "act": 0.25},
                              "development": development, "score": None, "by_month": [],
                              "characteristics": [], "performance_by_month": [], "dataset": None,
                              "performance": None}
    if rows and development.get("score_edges"):
        scores = np.array([float(r.score) for r in rows], dtype=np.float64)
        result["score"] = score_stability(development, scores)
        months = pd.Series([r.scored_at.strftime("%Y-%m") for r in rows])
        for month, idx in months.groupby(months).groups.items():
            part = score_stability(development, scores[np.asarray(list(idx))])
            result["by_month"].append({"month": str(month), "count": len(idx), "psi": part["psi"],
                                       "status": part["status"]})
    if dataset:
        live = load_dataset(uow, who, dataset, dataset_version)
        result["dataset"] = {"name": dataset, "rows": len(live)}
        if result["score"] is None and development.get("score_edges"):
            scored = artefact.model.score_batch(live, with_reasons=False)
            result["score"] = score_stability(development, scored["score"].to_numpy())
        if isinstance(artefact.model, ScorecardModel):
            result["characteristics"] = characteristic_stability(artefact.model, live)
        meta = artefact.metadata
        pd_ = artefact.model.score_batch(live, with_reasons=False)["pd"].to_numpy()
        y, result["performance"] = performance(live, meta.target, meta.bad, pd_)
        if date_column and y is not None:
            if date_column not in live.columns:
                raise ValidationError(f"date_column: no column named '{date_column}'", field="date_column")
            table = performance_by_month(live[date_column], y, pd_)
            result["performance_by_month"] = table.replace({np.nan: None}).to_dict("records")
    alerts = []
    if result["score"] is not None and result["score"]["status"] != "stable":
        alerts.append({"what": "score", "psi": result["score"]["psi"], "status": result["score"]["status"]})
    alerts += [{"what": c["feature"], "psi": c["csi"], "status": c["status"]}
               for c in result["characteristics"] if c["status"] != "stable"]
    result["alerts"] = alerts
    return result


__all__ = ["MAX_TRAINING_ROWS", "CaseScore", "TrainingRequest", "expert_table", "has_report", "monitoring_report",
           "points_table", "report_html", "report_json", "report_workbook", "score_case", "train_from_dataset"]
