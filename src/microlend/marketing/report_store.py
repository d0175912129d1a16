"""A campaign's measurement as it is stored at its close (活动结案): the report's figures as JSON, read back
into the report's own objects, and the uplift model as a small JSON artefact (the two logistic models'
coefficients, no pickled code), with its sha256 so a changed artefact is noticed.

Pure: no database here; `service/measurement.py` writes and reads the row.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from microlend.core.errors import ValidationError
from microlend.marketing.attribution import ChannelEffect, Funnel
from microlend.marketing.tracking import CampaignReport, Comparison

ARTEFACT_KIND = "two_model_logistic/1"


def _money(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def report_from_dict(data: dict[str, Any]) -> CampaignReport:
    """The report a stored `CampaignReport.to_dict()` was made from."""
    channels = []
    for c in data.get("channels", []):
        fields = dict(c)
        for name in ("incremental", "cost", "cost_per_incremental", "roi"):
            fields[name] = _money(fields.get(name))
        channels.append(ChannelEffect(**fields))
    known = {"campaigns", "funnel", "comparisons", "confidence", "total_cost", "cost_per_disbursed",
             "cost_per_incremental_disbursed", "channels", "attribution_rule", "warnings"}
    total = _money(data["total_cost"])
    return CampaignReport(
        campaigns={int(k): v for k, v in data["campaigns"].items()},
        funnel=[Funnel(**f) for f in data["funnel"]],
        comparisons=[Comparison(**c) for c in data["comparisons"]],
        confidence=float(data["confidence"]),
        total_cost=total if total is not None else Decimal(0),
        cost_per_disbursed=_money(data.get("cost_per_disbursed")),
        cost_per_incremental_disbursed=_money(data.get("cost_per_incremental_disbursed")),
        extra={k: v for k, v in data.items() if k not in known},
        channels=channels,
        attribution_rule=str(data.get("attribution_rule", "")),
        warnings=list(data.get("warnings", [])),
    )


@dataclass(frozen=True)
class StoredUpliftModel:
    """The two-model uplift read back from its artefact: P(convert | treated) - P(convert | control), each
    a logistic model on the listed features."""

    features: tuple[str, ...]
    treated: tuple[tuple[float, ...], float]  # (coefficients, intercept)
    control: tuple[tuple[float, ...], float]
    kind: str = "two_model"

    def predict(self, X: Any) -> npt.NDArray[np.float64]:  # noqa: N803
        x = np.asarray(X, dtype=np.float64)

        def p(model: tuple[tuple[float, ...], float]) -> npt.NDArray[np.float64]:
            z = x @ np.asarray(model[0], dtype=np.float64) + model[1]
            out: npt.NDArray[np.float64] = 1.0 / (1.0 + np.exp(-z))
            return out

        return p(self.treated) - p(self.control)


def uplift_artefact(model: Any, features: list[str]) -> tuple[str, str]:
    """(the artefact's JSON, its sha256) for a fitted `TwoModelUplift` on logistic regressions."""
    try:
        parts = {arm: {"coef": [float(v) for v in np.asarray(getattr(model, arm).coef_).reshape(-1)],
                       "intercept": float(np.asarray(getattr(model, arm).intercept_).reshape(-1)[0])}
                 for arm in ("treated", "control")}
    except AttributeError as exc:
        raise ValidationError("method: only the two-model logistic uplift is stored", field="method") from exc
    text = json.dumps({"kind": ARTEFACT_KIND, "features": list(features), **parts}, sort_keys=True)
    return text, hashlib.sha256(text.encode()).hexdigest()


def load_uplift_artefact(text: str, sha256: str) -> StoredUpliftModel:
    """The stored model; refused when the artefact does not match its recorded sha256 or kind."""
    if hashlib.sha256(text.encode()).hexdigest() != sha256:
        raise ValidationError("artefact: its sha256 does not match the stored one", field="artefact")
    data = json.loads(text)
    if data.get("kind") != ARTEFACT_KIND:
        raise ValidationError(f"artefact: unknown kind {data.get('kind')!r}", field="artefact")
    return StoredUpliftModel(tuple(data["features"]),
                             (tuple(data["treated"]["coef"]), float(data["treated"]["intercept"])),
                             (tuple(data["control"]["coef"]), float(data["control"]["intercept"])))
