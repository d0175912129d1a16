"""A trained joint model into the model registry (模型注册), like any model: packaged as kind `hetero-lr` with its
partnership, the bank's features by name and the partner's only as a count and aliases, and a validation report
of the figures (AUC and KS of the joint model against the bank-only and the partner-only scores, each side's
contribution); it then goes through the same gates, validation and four-eyes approval as every model."""

from __future__ import annotations

import hashlib
import html
import json
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from microlend.core.errors import Conflict, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.risk import registry
from microlend.risk.artefacts import METADATA_FILE, ModelMetadata, content_hash
from microlend.risk.federation.joint_scoring import KIND, MODEL_FILE, PARTNER_FEATURE, HeteroLrModel
from microlend.risk.federation.partnerships import Partnership, get_partnership

if TYPE_CHECKING:  # training needs the federation extra (Paillier), which the app imports without
    from microlend.risk.federation.training import JointModel

REPORT_FILES = ("report.html", "report.json")


def partner_aliases(count: int) -> list[str]:
    return [f"partner_feature_{i + 1}" for i in range(count)]


def registry_model(joint: JointModel) -> HeteroLrModel:
    if not joint.bank_only:
        raise ValidationError("model: this joint model has no bank-only fallback model; train it again",
                              field="model")
    count = len(joint.partner_features)
    return HeteroLrModel(KIND, joint.features, joint.scaling, joint.bins, joint.woe, joint.weights,
                         joint.intercept, list(joint.bank_only["weights"]), float(joint.bank_only["intercept"]),
                         {"model_id": joint.model_id, "feature_count": count, "feature_aliases": partner_aliases(count),
                          "key_fingerprint": joint.key_fingerprint},
                         str(joint.settings.get("id_column", "")))


def report_figures(joint: JointModel, partnership: Partnership) -> dict[str, Any]:
    m = joint.metrics
    sides = m.get("sides") or {}
    if not sides or "test" not in m:
        raise ValidationError("model: this joint model has no validation figures by side; train it again",
                              field="model")
    return {"kind": KIND, "model_id": joint.model_id, "partnership": {"id": partnership.id, "name": partnership.name,
                                                                      "contract_ref": partnership.contract_ref},
            "bank_features": joint.features, "partner_feature_count": len(joint.partner_features),
            "partner_feature_aliases": partner_aliases(len(joint.partner_features)),
            # the samples as every validation report has them (and the validator's workbook reads them)
            "samples": {"train": {"metrics": m["train"]}, "test": {"metrics": m["test"]},
                        "test bank only": {"metrics": sides["bank_only"]},
                        "test partner only": {"metrics": sides["partner_only"]}},
            "features": {"binning": {}, "iv": []}, "sides": sides,
            "contribution": m.get("contribution", {}), "shared_ids": m.get("shared_ids"),
            "best_epoch": m.get("best_epoch"), "history": joint.history, "key_bits": m.get("key_bits")}


_SIDES = (("joint", "Joint model", "联合模型"), ("bank_only", "Bank only", "仅本行数据"),
          ("partner_only", "Partner only", "仅合作方数据"))


def report_html(figures: dict[str, Any]) -> str:
    """One page, in English and Chinese: the figures by side and each side's contribution."""
    def cell(v: Any) -> str:
        return f"{v:.4f}" if isinstance(v, float) else html.escape(str(v))

    rows = "".join(
        f"<tr><th>{en} / {zh}</th><td>{cell(figures['sides'][k]['auc'])}</td><td>{cell(figures['sides'][k]['ks'])}"
        f"</td><td>{cell(figures['sides'][k]['count'])}</td></tr>" for k, en, zh in _SIDES if k in figures["sides"])
    c = figures["contribution"]
    p = figures["partnership"]
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Joint model validation / 联合模型验证报告</title>"
        "</head><body>"
        f"<h1>Joint model validation / 联合模型验证报告</h1><p>Partnership / 合作方: {html.escape(p['name'])} "
        f"(contract / 合同 {html.escape(p['contract_ref'])}); shared customers / 共同客户 "
        f"{cell(figures['shared_ids'])}; best epoch / 最优轮次 {cell(figures['best_epoch'])}</p>"
        "<table border='1'><tr><th>Validation rows / 验证样本</th><th>AUC</th><th>KS</th><th>rows / 样本数</th></tr>"
        f"{rows}</table>"
        f"<p>Partner's contribution / 合作方贡献: AUC {c.get('partner_auc', 0.0):+.4f}, KS "
        f"{c.get('partner_ks', 0.0):+.4f}; bank's contribution / 本行贡献: AUC {c.get('bank_auc', 0.0):+.4f}, KS "
        f"{c.get('bank_ks', 0.0):+.4f}</p>"
        f"<p>Bank features / 本行特征: {html.escape(', '.join(figures['bank_features']))}</p>"
        f"<p>Partner features / 合作方特征: {figures['partner_feature_count']} "
        "(names and values stay with the partner / 名称与取值留在合作方)</p></body></html>")


def package(joint: JointModel, out_dir: Path, *, partnership: Partnership, name: str = "") -> ModelMetadata:
    """Write the registry's files of a joint model (hetero_lr.json, report, model.json) into `out_dir`."""
    if partnership.key_fingerprint != joint.key_fingerprint:
        raise Conflict(f"partnership: '{partnership.name}' holds key {partnership.key_fingerprint}, the model was "
                       f"trained under key {joint.key_fingerprint}", field="partnership")
    model = registry_model(joint)
    figures = report_figures(joint, partnership)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MODEL_FILE).write_text(json.dumps(model.to_dict(), ensure_ascii=False, indent=1, sort_keys=True),
                                      encoding="utf-8")
    (out_dir / "report.json").write_text(json.dumps(figures, ensure_ascii=False, indent=1), encoding="utf-8")
    (out_dir / "report.html").write_text(report_html(figures), encoding="utf-8")
    files = {MODEL_FILE: hashlib.sha256((out_dir / MODEL_FILE).read_bytes()).hexdigest()}
    settings = joint.settings
    parameters = {
        "partnership_id": partnership.id, "partnership": partnership.name, "partner_model_id": joint.model_id,
        "partner_feature_count": len(joint.partner_features),
        "partner_feature_aliases": partner_aliases(len(joint.partner_features)),
        "key_fingerprint": joint.key_fingerprint, "id_column": settings.get("id_column", ""),
        "training": {k: settings[k] for k in ("key_bits", "max_epochs", "batch_size", "learning_rate", "l2",
                                               "valid_share", "seed", "max_bins", "min_bin_share") if k in settings},
        "report_sha256": {f: hashlib.sha256((out_dir / f).read_bytes()).hexdigest() for f in REPORT_FILES},
    }
    kept = ("train", "test", "sides", "contribution", "shared_ids", "best_epoch")
    metrics: dict[str, Any] = {k: joint.metrics[k] for k in kept if k in joint.metrics}
    meta = ModelMetadata(
        kind=KIND, target=str(settings.get("target", "")), bad=str(settings.get("bad", "")),
        features=[*joint.features, PARTNER_FEATURE], parameters=parameters, metrics=metrics,
        dataset_hash=hashlib.sha256(f"joint:{joint.model_id}".encode()).hexdigest(),
        content_hash=content_hash(files), files=files, name=name,
        created_at=joint.created_at or datetime.min.replace(tzinfo=UTC).isoformat())
    (out_dir / METADATA_FILE).write_text(json.dumps(meta.to_dict(), ensure_ascii=False, indent=1, sort_keys=True),
                                         encoding="utf-8")
    return meta


def register_joint_model(uow: UnitOfWork, who: Principal, model_dir: Path, *, partnership_id: int, on: date,
                         name: str = "", store_root: Path | None = None) -> registry.ModelVersion:
    """Register a joint model (from `microlend federation train --out DIR`) as a draft of the bank's registry,
    tied to an active partnership under the key it was trained with."""
    who.require(Permission.TRAIN_MODELS)
    partnership = get_partnership(uow, who, partnership_id)
    why_not = partnership.usable_on(on)
    if why_not:
        raise Conflict(f"partnership: {why_not}; a joint model is registered under an active partnership",
                       field="partnership")
    from microlend.risk.federation.training import JointModel

    joint = JointModel.load(model_dir)
    with tempfile.TemporaryDirectory(prefix="microlend-joint-") as tmp:
        package(joint, Path(tmp), partnership=partnership, name=name or f"joint-{partnership.name}")
        return registry.register_model(uow, who, tmp, name=name or f"joint-{partnership.name}",
                                       store_root=store_root)
