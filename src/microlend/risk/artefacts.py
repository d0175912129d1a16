"""Model artefacts (模型文件): a trained model as plain files in a directory, hashed, loadable without pickle.

A directory holds `model.json` (metadata) and the model's own files: `scorecard.json` (points table and bins),
`gbdt_model.txt` (LightGBM text) with `gbdt_categories.json`, `expert_scorecard.json` (an expert scorecard's
points table with its rationale), or `hetero_lr.json` (the bank's part of a joint model with a data partner)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from microlend.core.errors import ValidationError
from microlend.risk.expert import ExpertScorecardModel
from microlend.risk.federation.joint_scoring import KIND as JOINT_KIND
from microlend.risk.federation.joint_scoring import MODEL_FILE as JOINT_FILE
from microlend.risk.federation.joint_scoring import HeteroLrModel
from microlend.risk.gbdt import GbdtModel
from microlend.risk.reasons import Reason
from microlend.risk.scorecard import PointsScaling, ScorecardModel
from microlend.risk.validation import bin_shares, psi_edges

FORMAT_VERSION = 1
METADATA_FILE = "model.json"
EXPERT_FILE = "expert_scorecard.json"


@runtime_checkable
class ScoringModel(Protocol):
    """What every model kind offers the scoring runtime: a batch path and a single-case path."""

    kind: str
    features: list[str]
    scaling: PointsScaling

    def score_batch(self, frame: pd.DataFrame, *, top_n: int = 3, with_reasons: bool = True) -> pd.DataFrame:
        """Columns pd, score and (with reasons) reasons, one row per input row."""
        ...

    def score_one(self, case: Mapping[str, Any], *, top_n: int = 3) -> tuple[float, float, list[Reason]]:
        """(pd, score, reasons) for one case given as a dict of feature values."""
        ...


@dataclass(frozen=True)
class ModelMetadata:
    """Everything the registry and a reader need to know about a saved model."""

    kind: str
    target: str
    bad: str
    features: list[str]
    parameters: dict[str, Any]
    metrics: dict[str, Any]
    dataset_hash: str
    content_hash: str
    created_at: str
    files: dict[str, str]
    development: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Artefact:
    model: ScoringModel
    metadata: ModelMetadata
    directory: Path


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def dataset_hash(frame: pd.DataFrame) -> str:
    """sha256 of the data in a canonical form: columns sorted by name, rows in order, CSV with '\\n'."""
    canonical = frame[sorted(frame.columns, key=str)].to_csv(index=False, lineterminator="\n", na_rep="")
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def content_hash(files: Mapping[str, str]) -> str:
    """One hash over the model files' own hashes, so any edited file changes it."""
    return hashlib.sha256(_canonical_json(dict(sorted(files.items()))).encode()).hexdigest()


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def development_profile(scores: ArrayLike, n_bins: int = 10) -> dict[str, Any]:
    """Score bins and shares of the development sample, kept so later populations can be compared (PSI)."""
    edges = psi_edges(scores, n_bins)
    return {"score_edges": edges, "score_shares": bin_shares(scores, edges).tolist()}


def _model_files(model: ScoringModel) -> dict[str, str]:
    if isinstance(model, ScorecardModel):
        return {"scorecard.json": json.dumps(model.to_dict(), ensure_ascii=False, indent=1, sort_keys=True)}
    if isinstance(model, GbdtModel):
        categories = {"features": model.features, "categories": model.categories,
                      "scaling": model.scaling.to_dict()}
        return {"gbdt_model.txt": model.model_text,
                "gbdt_categories.json": json.dumps(categories, ensure_ascii=False, indent=1, sort_keys=True)}
    if isinstance(model, ExpertScorecardModel):
        return {EXPERT_FILE: json.dumps(model.to_dict(), ensure_ascii=False, indent=1, sort_keys=True)}
    raise ValidationError(f"kind: cannot save a model of kind '{getattr(model, 'kind', '?')}'", field="kind")


def save_model(
    model: ScoringModel, directory: str | Path, *, target: str, bad: str, created_at: datetime,
    data_hash: str, parameters: Mapping[str, Any] | None = None, metrics: Mapping[str, Any] | None = None,
    development_scores: ArrayLike | None = None, name: str = "",
) -> ModelMetadata:
    """Write the model files and model.json; returns the metadata with the content hash."""
    if created_at.tzinfo is None:
        raise ValidationError("created_at: give a UTC timestamp", field="created_at")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    hashes: dict[str, str] = {}
    for file_name, text in _model_files(model).items():
        path = out / file_name
        path.write_text(text, encoding="utf-8")
        hashes[file_name] = _file_hash(path)
    meta = ModelMetadata(
        kind=model.kind, target=target, bad=str(bad), features=list(model.features),
        parameters=dict(parameters or {}), metrics=_plain(dict(metrics or {})), dataset_hash=data_hash,
        content_hash=content_hash(hashes), created_at=created_at.isoformat(), files=hashes,
        development=development_profile(development_scores) if development_scores is not None else {},
        name=name,
    )
    (out / METADATA_FILE).write_text(json.dumps(meta.to_dict(), ensure_ascii=False, indent=1, sort_keys=True),
                                     encoding="utf-8")
    return meta


def _plain(value: Any) -> Any:
    """Numpy numbers and tuples to plain JSON values."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if isinstance(v, np.generic) else str(v)))


def read_metadata(directory: str | Path) -> ModelMetadata:
    path = Path(directory) / METADATA_FILE
    if not path.is_file():
        raise ValidationError(f"model: no {METADATA_FILE} in '{directory}' (is it a model directory?)",
                              field="model")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return ModelMetadata(**raw)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValidationError(f"model: {METADATA_FILE} in '{directory}' is not readable ({exc})",
                              field="model") from None


def load_model(directory: str | Path, *, verify: bool = True) -> Artefact:
    """Read a model directory back; files edited after saving are refused (their hash no longer matches)."""
    folder = Path(directory)
    meta = read_metadata(folder)
    if verify:
        actual: dict[str, str] = {}
        for file_name in meta.files:
            path = folder / file_name
            if not path.is_file():
                raise ValidationError(f"model: file '{file_name}' is missing from '{folder}'", field="model")
            actual[file_name] = _file_hash(path)
        if actual != meta.files or content_hash(actual) != meta.content_hash:
            changed = sorted(f for f in meta.files if actual.get(f) != meta.files[f]) or ["model.json"]
            raise ValidationError(f"model: {', '.join(changed)} changed after the model was saved "
                                  "(content hash does not match)", field="model")
    model: ScoringModel
    if meta.kind == "scorecard":
        model = ScorecardModel.from_dict(json.loads((folder / "scorecard.json").read_text(encoding="utf-8")))
    elif meta.kind == "gbdt":
        extra = json.loads((folder / "gbdt_categories.json").read_text(encoding="utf-8"))
        model = GbdtModel((folder / "gbdt_model.txt").read_text(encoding="utf-8"), extra["features"],
                          extra["categories"], PointsScaling(**extra["scaling"]))
    elif meta.kind == "expert":
        model = ExpertScorecardModel.from_dict(json.loads((folder / EXPERT_FILE).read_text(encoding="utf-8")))
    elif meta.kind == JOINT_KIND:
        model = HeteroLrModel.from_json((folder / JOINT_FILE).read_text(encoding="utf-8"))
    else:
        raise ValidationError(f"model: unknown kind '{meta.kind}'", field="model")
    return Artefact(model=model, metadata=meta, directory=folder)
