"""Model gates (模型准入标准): the bank's minimum standard a model must meet before it can be validated.

Sample size (rows and bads) is checked before training; discrimination on the hold-out sample (AUC, KS), the
gap between train and test AUC (overfitting) and stability between development and out-of-time (PSI) are
checked on the figures of the validation report. Each bank sets its own thresholds; these are the defaults.

The gates measure statistical models against their development sample. An expert scorecard (kind `expert`) has
no development sample, so no gate applies to it: it is validated on its documented points table and rationale,
and still needs an independent validator and a third person's approval like any model a bank registers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import pandas as pd

from microlend.core.errors import ValidationError

#: kinds set by judgement rather than fitted to a sample: the gates do not apply to them
JUDGEMENTAL_KINDS = frozenset({"expert"})
NOT_APPLICABLE_NOTE = "expert judgement, no development sample: the model gates apply to statistical models only"


def gates_apply(kind: str) -> bool:
    """Whether the model gates measure a model of this kind (not an expert scorecard)."""
    return kind not in JUDGEMENTAL_KINDS


@dataclass(frozen=True)
class ModelGates:
    """Thresholds of the gates; a model failing any of them cannot be validated."""

    min_rows: int = 200
    min_bads: int = 30
    min_test_auc: float = 0.60
    min_test_ks: float = 0.15
    max_auc_gap: float = 0.20
    max_oot_psi: float = 0.25

    def __post_init__(self) -> None:
        for name in ("min_rows", "min_bads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(f"{name}: must be a whole number of at least 1", field=name)
        for name, low, high in (("min_test_auc", 0.5, 1.0), ("min_test_ks", 0.0, 1.0),
                                ("max_auc_gap", 0.0, 0.5), ("max_oot_psi", 0.0, 10.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                raise ValidationError(f"{name}: must be a number from {low} to {high}", field=name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ModelGates:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValidationError(f"{unknown[0]}: not a model gate (gates: {', '.join(sorted(known))})",
                                  field=unknown[0])
        values: dict[str, Any] = {k: (float(v) if k not in ("min_rows", "min_bads") and isinstance(v, int)
                                      and not isinstance(v, bool) else v) for k, v in raw.items()}
        return cls(**values)

    def updated(self, changes: Mapping[str, Any]) -> ModelGates:
        return ModelGates.from_dict({**self.to_dict(), **changes})


def check_sample(target: pd.Series, bad: object, gates: ModelGates, *, column: str = "target") -> None:
    """Refuse a sample too small to develop a model on, before any training is spent on it."""
    rows = len(target)
    bads = int((target.astype(str).to_numpy() == str(bad)).sum())
    if rows < gates.min_rows or bads < gates.min_bads:
        raise ValidationError(
            f"data: {rows:,} rows with {bads:,} bads is too small to develop a model on; the bank's model gates "
            f"need at least {gates.min_rows:,} rows and {gates.min_bads:,} bads ({column} = '{bad}')",
            field="data")


@dataclass(frozen=True)
class GateResult:
    gate: str
    threshold: float
    value: float | None
    passed: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _development_counts(metrics: Mapping[str, Any]) -> tuple[int, int]:
    rows = bads = 0
    for name in ("train", "test", "oot"):
        m = metrics.get(name) or {}
        if "count" in m:
            rows += round(float(m["count"]))
            bads += round(float(m["count"]) * float(m.get("bad_rate", 0.0)))
    return rows, bads


def evaluate(metrics: Mapping[str, Any], gates: ModelGates) -> list[GateResult]:
    """Every gate against a model's saved figures (train, test, oot metrics and stability PSI)."""
    rows, bads = _development_counts(metrics)
    train = metrics.get("train") or {}
    test = metrics.get("test") or metrics.get("oot") or {}
    results = [GateResult("min_rows", gates.min_rows, rows, rows >= gates.min_rows),
               GateResult("min_bads", gates.min_bads, bads, bads >= gates.min_bads)]
    if "auc" in test:
        results.append(GateResult("min_test_auc", gates.min_test_auc, test["auc"],
                                  test["auc"] >= gates.min_test_auc))
        results.append(GateResult("min_test_ks", gates.min_test_ks, test["ks"], test["ks"] >= gates.min_test_ks))
    else:
        results.append(GateResult("min_test_auc", gates.min_test_auc, None, False, "no hold-out figures"))
    if "auc" in train and "auc" in test:
        gap = float(train["auc"]) - float(test["auc"])
        results.append(GateResult("max_auc_gap", gates.max_auc_gap, gap, gap <= gates.max_auc_gap))
    else:
        results.append(GateResult("max_auc_gap", gates.max_auc_gap, None, False, "no train and test figures"))
    oot_psi = (metrics.get("stability") or {}).get("oot")
    if oot_psi is None:
        results.append(GateResult("max_oot_psi", gates.max_oot_psi, None, True,
                                  "no out-of-time sample (train with a date column to measure it)"))
    else:
        results.append(GateResult("max_oot_psi", gates.max_oot_psi, float(oot_psi),
                                  float(oot_psi) <= gates.max_oot_psi))
    return results


def failures(results: list[GateResult]) -> list[str]:
    """One line per failed gate, in the user's terms."""
    out = []
    for r in results:
        if r.passed:
            continue
        shown = "not measured" if r.value is None else (f"{r.value:,.0f}" if r.gate in ("min_rows", "min_bads")
                                                         else f"{r.value:.4f}")
        limit = f"{r.threshold:,.0f}" if r.gate in ("min_rows", "min_bads") else f"{r.threshold:.4f}"
        direction = "at most" if r.gate.startswith("max_") else "at least"
        out.append(f"{r.gate} {shown} (needs {direction} {limit}){': ' + r.note if r.note else ''}")
    return out


def summary(metrics: Mapping[str, Any], gates: ModelGates, *, kind: str = "scorecard") -> dict[str, Any]:
    """Thresholds, each gate's result and whether all passed: what reports and pages show. For a kind the gates
    do not apply to, no results, `applies` false and a note saying why."""
    if not gates_apply(kind):
        return {"thresholds": gates.to_dict(), "results": [], "passed": True, "applies": False,
                "note": NOT_APPLICABLE_NOTE}
    results = evaluate(metrics, gates)
    return {"thresholds": gates.to_dict(), "results": [r.to_dict() for r in results],
            "passed": all(r.passed for r in results), "applies": True, "note": ""}
