"""Gradient-boosted trees (梯度提升树) as the challenger: LightGBM on the same data and the same points scale.

Reason codes come from LightGBM's tree contributions (SHAP values on the log-odds of bad): the features that
pushed risk up most."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from microlend.core.errors import ValidationError
from microlend.risk.columns import categorical_values, numeric_values, refuse_type_drift, split_kinds
from microlend.risk.datasets import bad_flag
from microlend.risk.reasons import Reason, top_reason_codes
from microlend.risk.scorecard import PointsScaling


@dataclass(frozen=True)
class GbdtConfig:
    """LightGBM settings for small credit samples: shallow trees, slow learning, early stopping."""

    scaling: PointsScaling = field(default_factory=PointsScaling)
    learning_rate: float = 0.03
    num_leaves: int = 8
    min_child_samples: int = 20
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    lambda_l2: float = 1.0
    max_rounds: int = 2000
    early_stopping_rounds: int = 100
    valid_fraction: float = 0.2
    refit_on_all: bool = True
    seed: int = 42
    n_jobs: int = 2
    features: tuple[str, ...] | None = None

    def lightgbm_params(self) -> dict[str, Any]:
        return {
            "objective": "binary", "metric": "auc", "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves, "min_child_samples": self.min_child_samples,
            "feature_fraction": self.feature_fraction, "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1, "lambda_l2": self.lambda_l2, "seed": self.seed, "deterministic": True,
            "num_threads": self.n_jobs, "verbose": -1, "cat_smooth": 10, "min_data_per_group": 20,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.lightgbm_params(), "scaling": self.scaling.to_dict(), "max_rounds": self.max_rounds,
                "early_stopping_rounds": self.early_stopping_rounds, "valid_fraction": self.valid_fraction,
                "refit_on_all": self.refit_on_all}


class GbdtModel:
    """A trained LightGBM booster plus the category maps it was trained with; scores on the PDO scale."""

    kind = "gbdt"

    def __init__(self, model_text: str, features: Sequence[str], categories: Mapping[str, Sequence[str]],
                 scaling: PointsScaling | None = None) -> None:
        import lightgbm as lgb

        self.model_text = model_text
        self.booster = lgb.Booster(model_str=model_text)
        self.features = list(features)
        self.categories = {k: list(v) for k, v in categories.items()}
        self.scaling = scaling or PointsScaling()
        self._index = {k: pd.Index(v, dtype=object) for k, v in self.categories.items()}
        self._maps = {k: {c: float(i) for i, c in enumerate(v)} for k, v in self.categories.items()}

    def matrix(self, frame: pd.DataFrame) -> NDArray[np.float64]:
        """Features as LightGBM saw them: numbers, and category positions (NaN when missing or unseen)."""
        absent = [f for f in self.features if f not in frame.columns]
        if absent:
            raise ValidationError(f"{absent[0]}: column is missing from the data "
                                  f"(the model needs: {', '.join(absent)})", field=absent[0])
        x = np.empty((len(frame), len(self.features)), dtype=np.float64)
        for j, f in enumerate(self.features):
            if f in self._index:
                values, is_missing = categorical_values(frame[f])
                pos = self._index[f].get_indexer(values).astype(np.float64)
                pos[(pos < 0) | is_missing] = np.nan
                x[:, j] = pos
            else:
                x[:, j] = numeric_values(frame[f], f)
        return x

    def contributions(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Per-feature contributions to the log-odds of bad, with the expected value in the last column."""
        return np.asarray(self.booster.predict(x, pred_contrib=True, num_threads=1), dtype=np.float64)

    def score_batch(self, frame: pd.DataFrame, *, top_n: int = 3, with_reasons: bool = True) -> pd.DataFrame:
        x = self.matrix(frame)
        if with_reasons:
            contrib = self.contributions(x)
            log_odds = contrib.sum(axis=1)
        else:
            log_odds = np.asarray(self.booster.predict(x, raw_score=True), dtype=np.float64)
        score = self.scaling.offset - self.scaling.factor * log_odds
        out = pd.DataFrame({"pd": 1.0 / (1.0 + np.exp(-log_odds)), "score": score}, index=frame.index)
        if with_reasons:
            out["reasons"] = top_reason_codes(contrib[:, :-1], self.features, top_n)
        return out

    def score_one(self, case: Mapping[str, Any], *, top_n: int = 3) -> tuple[float, float, list[Reason]]:
        row: list[float] = []
        for f in self.features:
            value = case.get(f)
            if value is None or (isinstance(value, float) and value != value):
                row.append(math.nan)
            elif f in self._maps:
                text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
                row.append(self._maps[f].get(text, math.nan))
            else:
                try:
                    row.append(float(value))
                except (TypeError, ValueError):
                    raise ValidationError(f"{f}: expected a number, got {value!r}", field=f) from None
        contrib = self.contributions(np.array([row], dtype=np.float64))[0]
        log_odds = float(contrib.sum())
        pushes = sorted(((-float(c), j) for j, c in enumerate(contrib[:-1]) if c > 0))[:top_n]
        reasons = [Reason(self.features[j], -neg) for neg, j in pushes]
        return 1.0 / (1.0 + math.exp(-log_odds)), self.scaling.score_from_log_odds_bad(log_odds), reasons

    def feature_importance(self) -> pd.DataFrame:
        gain = self.booster.feature_importance(importance_type="gain")
        return pd.DataFrame({"feature": self.features, "gain": gain}).sort_values(
            "gain", ascending=False, ignore_index=True)


@dataclass
class GbdtFit:
    model: GbdtModel
    best_iteration: int
    rounds: int
    valid_auc: float


def train_gbdt(frame: pd.DataFrame, target: str, bad: object, config: GbdtConfig | None = None) -> GbdtFit:
    """Early-stop on a stratified validation fold, then (by default) refit on all rows for that many rounds."""
    import lightgbm as lgb
    from sklearn.model_selection import train_test_split

    config = config or GbdtConfig()
    if target not in frame.columns:
        raise ValidationError(f"{target}: no such column", field="target")
    y = bad_flag(frame[target], bad, column=target)
    features = list(config.features) if config.features else [c for c in frame.columns if c != target]
    refuse_type_drift(frame, features)
    _, categorical = split_kinds(frame, features)
    categories: dict[str, list[str]] = {}
    for f in categorical:
        values, is_missing = categorical_values(frame[f])
        categories[f] = sorted(set(values[~is_missing].tolist()))
    # a throwaway model object encodes the training rows exactly as scoring will
    encoder = GbdtModel.__new__(GbdtModel)
    encoder.features = features
    encoder._index = {k: pd.Index(v, dtype=object) for k, v in categories.items()}
    x = encoder.matrix(frame)
    cat_idx = [features.index(f) for f in categorical]
    params = config.lightgbm_params()
    rows = np.arange(len(y))
    fit_rows, valid_rows = train_test_split(rows, test_size=config.valid_fraction, random_state=config.seed,
                                            stratify=y)
    fit_set = lgb.Dataset(x[fit_rows], y[fit_rows], feature_name=features, categorical_feature=cat_idx,
                          free_raw_data=False)
    valid_set = lgb.Dataset(x[valid_rows], y[valid_rows], reference=fit_set)
    booster = lgb.train(params, fit_set, num_boost_round=config.max_rounds, valid_sets=[valid_set],
                        callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)])
    best = max(1, int(booster.best_iteration or config.max_rounds))
    valid_auc = float(booster.best_score["valid_0"]["auc"])
    rounds = best
    if config.refit_on_all:
        rounds = max(1, round(best / (1 - config.valid_fraction)))
        all_set = lgb.Dataset(x, y, feature_name=features, categorical_feature=cat_idx)
        booster = lgb.train(params, all_set, num_boost_round=rounds)
        text = booster.model_to_string()
    else:
        text = booster.model_to_string(num_iteration=best)
    model = GbdtModel(text, features, categories, config.scaling)
    return GbdtFit(model=model, best_iteration=best, rounds=rounds, valid_auc=valid_auc)
