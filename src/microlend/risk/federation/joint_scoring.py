"""A joint model as the registry keeps it (kind `hetero-lr`): the bank's part of the hetero logistic regression,
what is known of the partner's part (its model id, the number of its features, the partnership's key
fingerprint; never its bins, weights or values), and the bank-only model on the same WoE that decides when the
partner cannot be asked. One case scores jointly when the partner's partial log-odds is given, with the bank-only
model otherwise; a batch scores with the bank-only model (joint batch scoring runs through
`microlend federation score`, which asks the partner for every row)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from microlend.core.errors import ValidationError
from microlend.risk.federation.binning import FeatureBins, bin_matrix, woe_values
from microlend.risk.reasons import Reason, top_reason_codes
from microlend.risk.scorecard import PointsScaling

KIND = "hetero-lr"
MODEL_FILE = "hetero_lr.json"
#: the pseudo-feature naming the partner's whole contribution among a case's reasons
PARTNER_FEATURE = "partner_data"
#: the reason a joint model scored with the bank-only model: the partner could not be asked
PARTNER_UNAVAILABLE = "PARTNER_UNAVAILABLE"
#: the reason it did so because the applicant gave no consent to scoring with the partner (it was not asked)
PARTNER_NO_CONSENT = "PARTNER_NO_CONSENT"


@dataclass
class HeteroLrModel:
    kind: str
    features: list[str]  # the bank's own features
    scaling: PointsScaling
    bins: list[FeatureBins]
    woe: list[list[float]]
    weights: list[float]
    intercept: float
    bank_only_weights: list[float]
    bank_only_intercept: float
    partner: dict[str, Any]  # model_id, feature_count, feature_aliases, key_fingerprint
    id_column: str

    @property
    def partner_model_id(self) -> str:
        return str(self.partner["model_id"])

    def to_dict(self) -> dict[str, Any]:
        return {"kind": KIND, "bank": {"features": self.features, "bins": [b.to_dict() for b in self.bins],
                                       "woe": self.woe, "weights": self.weights, "intercept": self.intercept},
                "bank_only": {"weights": self.bank_only_weights, "intercept": self.bank_only_intercept},
                "partner": self.partner, "id_column": self.id_column, "scaling": self.scaling.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HeteroLrModel:
        try:
            bank, alone = d["bank"], d["bank_only"]
            return cls(KIND, list(bank["features"]), PointsScaling(**d["scaling"]),
                       [FeatureBins.from_dict(b) for b in bank["bins"]], bank["woe"], list(bank["weights"]),
                       float(bank["intercept"]), list(alone["weights"]), float(alone["intercept"]),
                       dict(d["partner"]), str(d.get("id_column", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"model: {MODEL_FILE} is damaged ({type(exc).__name__}: {exc})",
                                  field="model") from None

    @classmethod
    def from_json(cls, text: str) -> HeteroLrModel:
        return cls.from_dict(json.loads(text))

    def _x(self, frame: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.float64]]:
        return woe_values(bin_matrix(frame, self.bins), self.woe)

    def score_one(self, case: Mapping[str, Any], *, top_n: int = 3, partner_partial: float | None = None,
                  fallback_reason: str = PARTNER_UNAVAILABLE) -> tuple[float, float, list[Reason]]:
        """(pd, score, reasons): jointly with the partner's partial log-odds, with the bank-only model without
        it (its reasons then begin with `fallback_reason`: PARTNER_UNAVAILABLE, or PARTNER_NO_CONSENT)."""
        frame = pd.DataFrame([{f: case.get(f) for f in self.features}])
        x = self._x(frame)[0]
        if partner_partial is not None:
            if not math.isfinite(partner_partial):
                raise ValidationError("partner: its partial score is not a finite number", field="partner")
            contributions = x * np.asarray(self.weights, dtype=np.float64)
            log_odds = self.intercept + float(contributions.sum()) + partner_partial
            impact = np.append(contributions, partner_partial)[None, :]
            names = [*self.features, PARTNER_FEATURE]
        else:
            contributions = x * np.asarray(self.bank_only_weights, dtype=np.float64)
            log_odds = self.bank_only_intercept + float(contributions.sum())
            impact, names = contributions[None, :], list(self.features)
        codes = [c for c in str(top_reason_codes(impact, names, top_n)[0]).split(";") if c]
        values = impact[0]
        reasons = [Reason(c, round(float(values[names.index(c)]), 6)) for c in codes]
        if partner_partial is None:
            reasons.insert(0, Reason(fallback_reason, 0.0))
        pd_ = 1.0 / (1.0 + math.exp(-log_odds))
        return pd_, self.scaling.offset - self.scaling.factor * log_odds, reasons

    def score_batch(self, frame: pd.DataFrame, *, top_n: int = 3, with_reasons: bool = True) -> pd.DataFrame:
        """The bank-only model over a frame (the partner is asked per row only by `federation score`)."""
        x = self._x(frame)
        contributions = x * np.asarray(self.bank_only_weights, dtype=np.float64)
        log_odds = self.bank_only_intercept + contributions.sum(axis=1)
        out = pd.DataFrame({"pd": 1.0 / (1.0 + np.exp(-log_odds)),
                            "score": self.scaling.offset - self.scaling.factor * log_odds}, index=frame.index)
        if with_reasons:
            out["reasons"] = top_reason_codes(contributions, self.features, top_n)
        return out
