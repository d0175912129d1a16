"""Gradient-boosted trees (梯度提升树) as the challenger: LightGBM on the same data and the same points scale.

Reason codes come from LightGBM's tree contributions (SHAP values on the log-odds of bad): the features that
pushed risk up most, and only those (a feature that lowered the risk is never a reason).

Missing and unseen values are scored conservatively (保守处理): a feature that had missing values in training
keeps the treatment the trees learnt for them; a missing value in a feature never missing in training, and a
category never seen in training, take the value of the feature that gives that applicant the highest risk
(never a better score than the worst value seen in training).

Numeric features whose binned bad rate is monotone get a monotone constraint by default (risk only rises, or
only falls, with the value); the dataset contract can set or lift it per feature."""

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
    #: monotone constraints from the binned bad-rate trend of numeric features (when it is monotone)
    monotone_from_trend: bool = True
    #: per-feature override: "increasing" (risk rises with the value), "decreasing" or "none"
    monotone: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, direction in self.monotone.items():
            if direction not in MONOTONE:
                raise ValidationError(f"{name}: monotone must be one of {', '.join(MONOTONE)}, not {direction!r}",
                                      field=name)

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
                "refit_on_all": self.refit_on_all, "monotone_from_trend": self.monotone_from_trend,
                "monotone": dict(self.monotone)}


#: monotone directions a dataset contract may declare for a feature, as LightGBM constraints
MONOTONE: dict[str, int] = {"increasing": 1, "decreasing": -1, "none": 0}
#: rows scored at once when searching a feature's most conservative value (rows x candidate values)
_SEARCH_BLOCK = 200_000


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
        self._plan_conservative()

    def _plan_conservative(self) -> None:
        """From the trees: per feature, whether missing values were seen in training (its splits route NaN as
        learnt) and the candidate values that reach every branch (one per interval between thresholds)."""
        thresholds: dict[int, set[float]] = {}
        self.missing_learnt: set[str] = set()
        stack = [t["tree_structure"] for t in self.booster.dump_model()["tree_info"]]
        while stack:
            node = stack.pop()
            if "split_feature" not in node:
                continue
            j = int(node["split_feature"])
            if node.get("missing_type") == "NaN":
                self.missing_learnt.add(self.features[j])
            if node.get("decision_type") == "<=":
                thresholds.setdefault(j, set()).add(float(node["threshold"]))
            stack.extend((node["left_child"], node["right_child"]))
        self._candidates: list[NDArray[np.float64]] = []
        for j, f in enumerate(self.features):
            if f in self.categories:
                self._candidates.append(np.arange(len(self.categories[f]), dtype=np.float64))
            else:
                cuts = sorted(thresholds.get(j, ()))
                above = [float(np.nextafter(cuts[-1], np.inf))] if cuts else [0.0]
                self._candidates.append(np.array([*cuts, *above], dtype=np.float64))

    def matrix(self, frame: pd.DataFrame) -> NDArray[np.float64]:
        """Features as LightGBM saw them: numbers, and category positions (NaN when missing or unseen)."""
        return self.encode(frame)[0]

    def encode(self, frame: pd.DataFrame) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_]]:
        """(matrix, missing, unseen): the matrix as in `matrix`, and per row and feature whether the value was
        missing or a category never seen in training."""
        absent = [f for f in self.features if f not in frame.columns]
        if absent:
            raise ValidationError(f"{absent[0]}: column is missing from the data "
                                  f"(the model needs: {', '.join(absent)})", field=absent[0])
        shape = (len(frame), len(self.features))
        x = np.empty(shape, dtype=np.float64)
        missing = np.zeros(shape, dtype=bool)
        unseen = np.zeros(shape, dtype=bool)
        for j, f in enumerate(self.features):
            if f in self._index:
                values, is_missing = categorical_values(frame[f])
                pos = self._index[f].get_indexer(values).astype(np.float64)
                unseen[:, j] = (pos < 0) & ~is_missing
                missing[:, j] = is_missing
                pos[(pos < 0) | is_missing] = np.nan
                x[:, j] = pos
            else:
                x[:, j] = numeric_values(frame[f], f)
                missing[:, j] = np.isnan(x[:, j])
        return x, missing, unseen

    def conservative_mask(self, missing: NDArray[np.bool_], unseen: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """Where a value gets the most conservative treatment: an unseen category, or a missing value of a
        feature that was never missing in training."""
        learnt = np.array([f in self.missing_learnt for f in self.features], dtype=bool)
        out: NDArray[np.bool_] = unseen | (missing & ~learnt)
        return out

    def make_conservative(self, x: NDArray[np.float64], mask: NDArray[np.bool_]) -> NDArray[np.float64]:
        """Replace each masked value, feature by feature, by the candidate value (one per branch of the trees)
        that gives that row the highest log-odds of bad, so it never scores better than a value seen in
        training."""
        if not mask.any():
            return x
        x = x.copy()
        for j in np.flatnonzero(mask.any(axis=0)):
            rows = np.flatnonzero(mask[:, j])
            cands = self._candidates[j]
            step = max(1, _SEARCH_BLOCK // len(cands))
            for start in range(0, len(rows), step):
                r = rows[start:start + step]
                block = np.repeat(x[r], len(cands), axis=0)
                block[:, j] = np.tile(cands, len(r))
                raw = np.asarray(self.booster.predict(block, raw_score=True, num_threads=1), dtype=np.float64)
                x[r, j] = cands[np.argmax(raw.reshape(len(r), len(cands)), axis=1)]
        return x

    def missing_and_unseen(self, frame: pd.DataFrame) -> dict[str, tuple[int, int]]:
        """Per feature: rows with a missing value and rows with a category never seen in training."""
        _, missing, unseen = self.encode(frame)
        return {f: (int(missing[:, j].sum()), int(unseen[:, j].sum())) for j, f in enumerate(self.features)}

    def unseen_features(self, case: Mapping[str, Any]) -> list[str]:
        """The features of one case whose category was never seen in training."""
        return [f for f in self.features if f in self._maps and not _is_missing(case.get(f))
                and _category_text(case.get(f)) not in self._maps[f]]

    def contributions(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Per-feature contributions to the log-odds of bad, with the expected value in the last column."""
        return np.asarray(self.booster.predict(x, pred_contrib=True, num_threads=1), dtype=np.float64)

    def score_batch(self, frame: pd.DataFrame, *, top_n: int = 3, with_reasons: bool = True) -> pd.DataFrame:
        """pd, score, reason codes (the features that raised the risk most, at most `top_n`) and `unseen`, how
        many of a row's categories were never seen in training."""
        x, missing, unseen = self.encode(frame)
        x = self.make_conservative(x, self.conservative_mask(missing, unseen))
        if with_reasons:
            contrib = self.contributions(x)
            log_odds = contrib.sum(axis=1)
        else:
            log_odds = np.asarray(self.booster.predict(x, raw_score=True), dtype=np.float64)
        score = self.scaling.offset - self.scaling.factor * log_odds
        out = pd.DataFrame({"pd": 1.0 / (1.0 + np.exp(-log_odds)), "score": score,
                            "unseen": unseen.sum(axis=1)}, index=frame.index)
        if with_reasons:
            out["reasons"] = top_reason_codes(contrib[:, :-1], self.features, top_n)
        return out

    def score_one(self, case: Mapping[str, Any], *, top_n: int = 3) -> tuple[float, float, list[Reason]]:
        row: list[float] = []
        conservative: list[bool] = []
        for f in self.features:
            value = case.get(f)
            if _is_missing(value):
                row.append(math.nan)
                conservative.append(f not in self.missing_learnt)
            elif f in self._maps:
                position = self._maps[f].get(_category_text(value))
                row.append(math.nan if position is None else position)
                conservative.append(position is None)
            else:
                try:
                    number = float(value)  # type: ignore[arg-type]  # refused below when not a number
                except (TypeError, ValueError):
                    raise ValidationError(f"{f}: expected a number, got {value!r}", field=f) from None
                row.append(number)
                conservative.append(number != number and f not in self.missing_learnt)
        x = np.array([row], dtype=np.float64)
        if any(conservative):
            x = self.make_conservative(x, np.array([conservative], dtype=bool))
        contrib = self.contributions(x)[0]
        log_odds = float(contrib.sum())
        pushes = sorted(((-float(c), j) for j, c in enumerate(contrib[:-1]) if c > 0))[:top_n]
        reasons = [Reason(self.features[j], -neg) for neg, j in pushes]
        return 1.0 / (1.0 + math.exp(-log_odds)), self.scaling.score_from_log_odds_bad(log_odds), reasons

    def feature_importance(self) -> pd.DataFrame:
        gain = self.booster.feature_importance(importance_type="gain")
        return pd.DataFrame({"feature": self.features, "gain": gain}).sort_values(
            "gain", ascending=False, ignore_index=True)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _category_text(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


#: a binned trend weaker than this information value is noise, not a direction to constrain the trees to
TREND_MIN_IV = 0.02


def risk_trend(values: NDArray[np.float64], y: NDArray[np.int8]) -> int:
    """+1 when the bad rate of the optimal bins rises with the value, -1 when it falls, 0 otherwise (one bin,
    a peak or valley, or an information value below TREND_MIN_IV): the direction a monotone constraint may
    follow."""
    from optbinning import OptimalBinning

    ob = OptimalBinning(dtype="numerical", monotonic_trend="auto")
    filled = ~np.isnan(values)
    if filled.sum() < 2 or np.unique(values[filled]).size < 2:
        return 0
    ob.fit(values[filled], y[filled])
    table = ob.binning_table.build()
    rates = table["Event rate"].iloc[: len(ob.splits) + 1].to_numpy(dtype=np.float64)
    if len(rates) < 2 or float(table.loc["Totals", "IV"]) < TREND_MIN_IV:
        return 0
    steps = np.diff(rates)
    if np.all(steps >= 0):
        return 1
    if np.all(steps <= 0):
        return -1
    return 0


@dataclass
class GbdtFit:
    model: GbdtModel
    best_iteration: int
    rounds: int
    valid_auc: float
    monotone: dict[str, str] = field(default_factory=dict)


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
    monotone = monotone_directions(x, y, features, set(categorical), config)
    if any(monotone.values()):
        params["monotone_constraints"] = [monotone.get(f, 0) for f in features]
        params["monotone_constraints_method"] = "advanced"  # the least restrictive of LightGBM's methods
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
    names = {v: k for k, v in MONOTONE.items()}
    return GbdtFit(model=model, best_iteration=best, rounds=rounds, valid_auc=valid_auc,
                   monotone={f: names[d] for f, d in monotone.items() if d})


def monotone_directions(x: NDArray[np.float64], y: NDArray[np.int8], features: Sequence[str],
                        categorical: set[str], config: GbdtConfig) -> dict[str, int]:
    """Per numeric feature: the contract's direction when it declares one, else the binned trend."""
    out: dict[str, int] = {}
    for j, f in enumerate(features):
        if f in config.monotone:
            if f in categorical and config.monotone[f] != "none":
                raise ValidationError(f"{f}: a monotone direction needs a numeric feature", field=f)
            out[f] = MONOTONE[config.monotone[f]]
        elif config.monotone_from_trend and f not in categorical:
            out[f] = risk_trend(x[:, j], y)
    return out
