"""The bank's side of joint training and scoring (see the package docstring for the protocol)."""

from __future__ import annotations

import json
import math
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from microlend.core.errors import ValidationError
from microlend.risk.datasets import bad_flag
from microlend.risk.federation import crypto
from microlend.risk.federation.binning import (
    FeatureBins,
    bin_matrix,
    features_of,
    fit_bins,
    woe_from_counts,
    woe_tables,
    woe_values,
)
from microlend.risk.federation.keys import FederationError, PartnershipKey
from microlend.risk.federation.partner import PROTOCOL_VERSION, hashed_ids, intersection_digest
from microlend.risk.federation.phases import PHASE_FINISHED, PHASE_PSI, PHASE_SETUP, PHASE_SHARED, Progress
from microlend.risk.federation.psi import PsiClient, serve
from microlend.risk.reasons import top_reason_codes
from microlend.risk.scorecard import PointsScaling
from microlend.risk.validation import ks

MODEL_FILE = "model.json"
TRANSCRIPT_FILE = "transcript.jsonl"
KIND = "federated_lr"
#: the pseudo-feature that names the partner's whole contribution among a case's reasons
PARTNER_REASON = "partner_data"
SCORE_CHUNK = 20_000



class Partner(Protocol):
    """What the bank needs from the partner: one call per protocol message (HTTP, or in-process in tests)."""

    def call(self, message_type: str, payload: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class TrainingSettings:
    key_bits: int = 2048
    max_epochs: int = 8
    batch_size: int = 1000
    learning_rate: float = 1.0
    #: the step of epoch k is learning_rate / (1 + decay * (k - 1)): large early, small near the optimum
    decay: float = 1.0
    #: the L2 penalty on the steps preconditioned by 1 / slope (see train_joint): the logistic loss's own
    #: penalty is l2 * slope, about 0.0026 on a 15% bad rate
    l2: float = 0.02
    valid_share: float = 0.3
    patience: int = 2
    seed: int = 42
    max_bins: int = 10
    min_bin_share: float = 0.05
    min_shared: int = 200
    #: processes the bank's encryptions are shared out over (the partner sets its own)
    workers: int = field(default_factory=crypto.default_workers)

    def __post_init__(self) -> None:
        if not 1 <= self.max_epochs <= 200:
            raise ValidationError("epochs: between 1 and 200", field="epochs")
        if not 10 <= self.batch_size <= 100_000:
            raise ValidationError("batch-size: between 10 and 100,000", field="batch-size")
        if not 0.05 <= self.valid_share <= 0.5:
            raise ValidationError("valid-share: between 0.05 and 0.5", field="valid-share")


@dataclass
class JointModel:
    """The bank's part of a joint model, and what it knows of the partner's part (names, never values)."""

    model_id: str
    bins: list[FeatureBins]
    woe: list[list[float]]
    weights: list[float]
    intercept: float
    partner_url: str
    partner_features: list[str]
    key_fingerprint: str
    metrics: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    scaling: PointsScaling = field(default_factory=PointsScaling)
    created_at: str = ""
    #: the bank-only reference model on the same WoE (weights, intercept): the fallback when the partner is out
    bank_only: dict[str, Any] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        return [b.name for b in self.bins]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": KIND, "model_id": self.model_id, "created_at": self.created_at,
                "bank": {"features": self.features, "bins": [b.to_dict() for b in self.bins], "woe": self.woe,
                         "weights": self.weights, "intercept": self.intercept},
                "partner": {"url": self.partner_url, "features": self.partner_features,
                            "key_fingerprint": self.key_fingerprint},
                "scaling": self.scaling.to_dict(), "metrics": self.metrics, "history": self.history,
                "settings": self.settings, "bank_only": self.bank_only}

    def save(self, out_dir: Path) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / MODEL_FILE
        path.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False), encoding="utf-8")
        return path

    @classmethod
    def load(cls, model_dir: Path) -> JointModel:
        path = model_dir / MODEL_FILE
        if not path.is_file():
            raise ValidationError(f"model: '{model_dir}' holds no joint model ({MODEL_FILE} not found)",
                                  field="model")
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            if d.get("kind") != KIND:
                raise ValidationError(f"model: '{model_dir}' is not a joint model", field="model")
            return cls(model_id=d["model_id"], bins=[FeatureBins.from_dict(b) for b in d["bank"]["bins"]],
                       woe=d["bank"]["woe"], weights=d["bank"]["weights"], intercept=d["bank"]["intercept"],
                       partner_url=d["partner"]["url"], partner_features=d["partner"]["features"],
                       key_fingerprint=d["partner"]["key_fingerprint"], metrics=d["metrics"],
                       history=d.get("history", []), settings=d.get("settings", {}),
                       scaling=PointsScaling(**d["scaling"]), created_at=d.get("created_at", ""),
                       bank_only=d.get("bank_only", {}))
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValidationError(f"model: '{path}' is damaged ({type(exc).__name__}: {exc})",
                                  field="model") from None


def _nothing(phase: str, done: int, total: int) -> None:
    return None


def learning_rate(settings: TrainingSettings, epoch: int) -> float:
    """The step of the given epoch (counted from 1) on both sides."""
    return settings.learning_rate / (1.0 + settings.decay * (epoch - 1))


def private_intersection(partner: Partner, key: PartnershipKey, hashes: list[str]) -> tuple[str, list[int]]:
    """Both PSI runs; returns the session and the bank's shared rows in the common order (sorted hashes)."""
    session = secrets.token_hex(16)
    client = PsiClient(hashes)
    answer = partner.call("psi/start", {"session": session, "request": client.request()})
    rows = client.intersection(answer.get("setup"), answer.get("response"))
    shared = sorted(rows, key=lambda r: hashes[r])
    digest = intersection_digest(key, [hashes[r] for r in shared])
    setup, response = serve(hashes, answer.get("request"))
    finish = partner.call("psi/finish", {"session": session, "setup": setup, "response": response,
                                         "digest": digest})
    if finish.get("count") != len(shared) or finish.get("digest") != digest:
        raise FederationError("psi: the partner found a different intersection")
    return session, shared


def split_positions(y: NDArray[np.int8], settings: TrainingSettings) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Training and validation positions among the shared IDs (stratified on the bank's labels, seeded)."""
    train, valid = train_test_split(np.arange(len(y)), test_size=settings.valid_share, random_state=settings.seed,
                                    stratify=y)
    return np.sort(train), np.sort(valid)


def sample_figures(y: NDArray[np.int8], z: NDArray[np.float64]) -> dict[str, float]:
    """Rows, bad rate, AUC and KS of log-odds `z` on outcomes `y` (the registry's figures of a sample)."""
    return {"count": len(y), "bad_rate": float(y.mean()), "auc": _auc(y, z),
            "ks": ks(y, z) if 0 < int(y.sum()) < len(y) else float("nan")}


def _auc(y: NDArray[np.int8], z: NDArray[np.float64]) -> float:
    return float(roc_auc_score(y, z)) if 0 < int(y.sum()) < len(y) else float("nan")


def train_joint(frame: pd.DataFrame, *, id_column: str, target: str, bad: str, partner: Partner,
                partner_url: str, key: PartnershipKey, settings: TrainingSettings | None = None,
                progress: Progress = _nothing, created_at: str = "") -> JointModel:
    """Hetero logistic regression with the partner (the bank holds the labels and its features)."""
    settings = settings or TrainingSettings()
    if target not in frame.columns:
        raise ValidationError(f"target: no column '{target}' in the data", field="target")
    hashes = hashed_ids(key, frame, id_column)
    hello = partner.call("hello", {})
    if hello.get("protocol") != PROTOCOL_VERSION:
        raise FederationError(f"partner speaks protocol {hello.get('protocol')}, this bank {PROTOCOL_VERSION}")
    progress(PHASE_PSI, 0, 1)
    started = time.perf_counter()
    session, shared = private_intersection(partner, key, hashes)
    psi_seconds = time.perf_counter() - started
    progress(PHASE_PSI, 1, 1)
    progress(PHASE_SHARED, len(shared), len(hashes))
    if len(shared) < settings.min_shared:
        raise FederationError(f"psi: only {len(shared)} shared IDs; at least {settings.min_shared} are needed")
    data = frame.iloc[shared].reset_index(drop=True)
    y = bad_flag(data[target], bad, column=target)
    train_pos, valid_pos = split_positions(y, settings)
    features = features_of(data, [id_column, target])
    bins = fit_bins(data.iloc[train_pos], features, max_bins=settings.max_bins, min_share=settings.min_bin_share)
    if not bins:
        raise ValidationError("data: no bank feature has two bins of enough rows", field="data")
    idx = bin_matrix(data, bins)
    woe = woe_tables(idx[train_pos], bins, y[train_pos])
    x = woe_values(idx, woe)

    # bank-only reference model, in the clear (the bank's own data)
    alone = LogisticRegression(max_iter=1000).fit(x[train_pos], y[train_pos])
    auc_bank_only = _auc(y[valid_pos], alone.decision_function(x[valid_pos]))

    # the residual sigmoid(z) - y is linearised around each row's log-odds at the end of the previous epoch z_e
    # (the base log-odds z0 in the first): d = p_e + slope * (z - z_e) - y with p_e = sigmoid(z_e) and the base
    # curvature slope = p0 (1 - p0) (a first-order expansion around 0 fails when bads are rare); D = d / slope
    # travels encrypted and each side steps along mean(D * x), the gradient preconditioned by 1 / slope. Once
    # the weights settle z = z_e, so the steps stop where the logistic loss with the L2 penalty is least: the
    # same optimum as the logistic regression fitted centrally on the same WoE (a fixed expansion around z0
    # would stop at a least-squares fit instead). The bank knows z_e: the partner's partial scores of the
    # training rows come back after every epoch for the train-test gap. The L2 term is added to the
    # preconditioned step, so the logistic loss's penalty is l2 * slope.
    weights = np.zeros(len(bins), dtype=np.float64)
    base = float(y[train_pos].mean())
    intercept = math.log(base / (1 - base))
    slope = base * (1 - base)
    progress(PHASE_SETUP, 0, 1)
    pk, sk = crypto.keypair(settings.key_bits)
    own = crypto.OwnKey(pk, sk, workers=settings.workers)
    labels = own.encrypt([int(v) for v in y[train_pos]])
    setup = partner.call("train/setup", {
        "session": session, "public_key": format(pk.n, "x"), "train": train_pos.tolist(),
        "labels": crypto.to_hex(labels), "learning_rate": settings.learning_rate, "l2": settings.l2,
        "min_bin_share": settings.min_bin_share, "max_bins": settings.max_bins})
    partner_features = [str(f) for f in setup.get("features", [])]
    counts = setup.get("counts")
    events_hex = setup.get("events")
    if not isinstance(counts, list) or not isinstance(events_hex, list) or len(counts) != len(partner_features):
        raise FederationError("train: the partner's binning answer is incomplete")
    min_rows = math.ceil(settings.min_bin_share * len(train_pos)) - 1
    partner_woe = []
    for name, count, enc in zip(partner_features, counts, events_hex, strict=True):
        events = [crypto.signed(v, pk.n) for v in crypto.decrypt(sk, crypto.from_hex(enc, "events"))]
        if sum(count) != len(train_pos) or any(0 < c < min_rows for c in count[:-1]):
            raise FederationError(f"train: the partner's bins of {name} are not of the agreed minimum size")
        partner_woe.append(woe_from_counts(events, count))
    partner.call("train/woe", {"session": session, "woe": partner_woe})
    partner_pk = crypto.public_key(str(setup.get("public_key", "")))
    progress(PHASE_SETUP, 1, 1)

    anchor = np.full(len(y), intercept)  # z_e of every shared row
    rng = np.random.default_rng(settings.seed)
    history: list[dict[str, float]] = []
    snapshots: dict[int, tuple[list[float], float]] = {}
    partials_kept: dict[int, tuple[NDArray[np.float64], NDArray[np.float64]]] = {}
    best_epoch, best_auc, waited = 0, -1.0, 0
    batches_per_epoch = math.ceil(len(train_pos) / settings.batch_size)
    total = settings.max_epochs * batches_per_epoch
    done = 0
    train_started = time.perf_counter()
    woe_fixed = [crypto.to_fixed(np.asarray(t)) for t in woe]
    for epoch in range(1, settings.max_epochs + 1):
        order = rng.permutation(train_pos)
        rate = learning_rate(settings, epoch)
        p_anchor = 1.0 / (1.0 + np.exp(-anchor))
        for start in range(0, len(order), settings.batch_size):
            batch = order[start:start + settings.batch_size]
            z_bank = x[batch] @ weights + intercept
            u = crypto.to_fixed(z_bank - anchor[batch] + (p_anchor[batch] - y[batch]) / slope)
            step = partner.call("train/step", {"session": session, "batch": batch.tolist(),
                                               "residuals": crypto.to_hex(own.encrypt(u))})
            opened = [str(v) for v in crypto.decrypt(sk, crypto.from_hex(step.get("gradient"), "gradient"))]
            partials = crypto.from_hex(step.get("partial"), "partial")
            if len(partials) != len(batch):
                raise FederationError("train: the partner answered a different number of partial scores")
            d = [crypto.add_plain(partner_pk, c, v) for c, v in zip(partials, u, strict=True)]
            masks = [crypto.random_mask(partner_pk) for _ in range(len(bins) + 1)]
            grads = [crypto.weighted_bin_sums(partner_pk, d, idx[batch, j], woe_fixed[j]) for j in range(len(bins))]
            grads.append(crypto.times(partner_pk, crypto.encrypted_sum(partner_pk, d), crypto.SCALE))
            masked = [crypto.mask(partner_pk, g, r) for g, r in zip(grads, masks, strict=True)]
            update = partner.call("train/update", {"session": session, "gradient": opened, "learning_rate": rate,
                                                   "bank_gradient": crypto.to_hex(masked)})
            values = update.get("bank_gradient")
            if not isinstance(values, list) or len(values) != len(masks):
                raise FederationError("train: the partner answered a different number of gradients")
            fixed = np.array([crypto.signed(int(v) - r, partner_pk.n) for v, r in zip(values, masks, strict=True)],
                             dtype=np.float64)
            grad = fixed / (crypto.SCALE * crypto.SCALE * len(batch))
            weights = weights - rate * (grad[:-1] + settings.l2 * weights)
            intercept -= rate * float(grad[-1])
            done += 1
            progress(f"epoch {epoch} of {settings.max_epochs}", done, total)
        # the validation rows' partial scores measure AUC for early stopping; the training rows' give the
        # train-test gap the model gates check
        answer = partner.call("train/partials", {"session": session, "epoch": epoch,
                                                 "positions": np.concatenate([valid_pos, train_pos]).tolist()})
        both = np.asarray(answer.get("partials"), dtype=np.float64)
        if both.shape != (len(valid_pos) + len(train_pos),):
            raise FederationError("train: the partner answered a different number of validation scores")
        partial, partial_train = both[:len(valid_pos)], both[len(valid_pos):]
        z_valid = x[valid_pos] @ weights + intercept + partial
        anchor[train_pos] = x[train_pos] @ weights + intercept + partial_train
        auc = _auc(y[valid_pos], z_valid)
        history.append({"epoch": epoch, "valid_auc": auc})
        snapshots[epoch] = (weights.tolist(), intercept)
        partials_kept[epoch] = (partial, partial_train)
        if auc > best_auc + 1e-5:
            best_epoch, best_auc, waited = epoch, auc, 0
        else:
            waited += 1
            if waited >= settings.patience:
                break
    train_seconds = time.perf_counter() - train_started
    done_total = done
    progress(PHASE_FINISHED, done_total, done_total)
    model_id = secrets.token_hex(16)
    partner.call("train/finish", {"session": session, "epoch": best_epoch, "model_id": model_id})
    best_weights, best_intercept = snapshots[best_epoch]
    valid_partial, train_partial = partials_kept[best_epoch]
    w = np.asarray(best_weights, dtype=np.float64)
    z_train = x[train_pos] @ w + best_intercept + train_partial
    z_test = x[valid_pos] @ w + best_intercept + valid_partial
    z_alone = alone.decision_function(x[valid_pos])
    sides = {"joint": sample_figures(y[valid_pos], z_test),
             "bank_only": sample_figures(y[valid_pos], z_alone),
             "partner_only": sample_figures(y[valid_pos], valid_partial)}
    metrics = {
        "valid_auc_joint": best_auc, "valid_auc_bank_only": auc_bank_only,
        "partner_contribution_auc": best_auc - auc_bank_only, "best_epoch": best_epoch,
        "bank_rows": len(frame), "partner_rows": int(hello.get("rows", 0)), "shared_ids": len(shared),
        "train_rows": len(train_pos), "valid_rows": len(valid_pos), "bad_rate": float(y.mean()),
        "psi_seconds": round(psi_seconds, 3), "training_seconds": round(train_seconds, 3),
        "key_bits": settings.key_bits,
        # the registry's figures: the joint model on its training and validation rows, and each side's share
        "train": sample_figures(y[train_pos], z_train), "test": sides["joint"], "sides": sides,
        "contribution": {"partner_auc": sides["joint"]["auc"] - sides["bank_only"]["auc"],
                         "bank_auc": sides["joint"]["auc"] - sides["partner_only"]["auc"],
                         "partner_ks": sides["joint"]["ks"] - sides["bank_only"]["ks"],
                         "bank_ks": sides["joint"]["ks"] - sides["partner_only"]["ks"]},
    }
    return JointModel(model_id=model_id, bins=bins, woe=woe, weights=best_weights, intercept=best_intercept,
                      partner_url=partner_url, partner_features=partner_features, key_fingerprint=key.fingerprint,
                      metrics=metrics, history=history, created_at=created_at,
                      bank_only={"weights": [float(v) for v in alone.coef_[0]],
                                 "intercept": float(alone.intercept_[0])},
                      settings={**{k: v for k, v in asdict(settings).items() if k != "workers"},  # not the machine's
                                "id_column": id_column, "target": target, "bad": bad})


def partner_partials(partner: Partner, model: JointModel, hashes: list[str]) -> NDArray[np.float64]:
    """The partner's partial log-odds for each hashed ID (NaN where the partner holds no such ID)."""
    out: list[float] = []
    for start in range(0, len(hashes), SCORE_CHUNK):
        chunk = hashes[start:start + SCORE_CHUNK]
        answer = partner.call("score", {"model_id": model.model_id, "ids": chunk})
        values = answer.get("partials")
        if not isinstance(values, list) or len(values) != len(chunk):
            raise FederationError("score: the partner answered a different number of partial scores")
        out.extend(math.nan if v is None else float(v) for v in values)
    return np.asarray(out, dtype=np.float64)


def score_joint(model: JointModel, frame: pd.DataFrame, *, id_column: str, partner: Partner,
                key: PartnershipKey, top_n: int = 3) -> pd.DataFrame:
    """pd, score (higher is safer), reasons and whether the partner knew the person; a person the partner
    does not hold gets the partner's neutral contribution (0 log-odds: the average shared customer)."""
    if key.fingerprint != model.key_fingerprint:
        raise ValidationError("key-file: this is not the partnership key the model was trained with",
                              field="key-file")
    hashes = hashed_ids(key, frame, id_column)
    idx = bin_matrix(frame, model.bins)
    x = woe_values(idx, model.woe)
    contributions = x * np.asarray(model.weights, dtype=np.float64)
    partial = partner_partials(partner, model, hashes)
    found = ~np.isnan(partial)
    partial = np.where(found, partial, 0.0)
    log_odds = model.intercept + contributions.sum(axis=1) + partial
    pd_ = 1.0 / (1.0 + np.exp(-log_odds))
    score = model.scaling.offset - model.scaling.factor * log_odds
    impact = np.column_stack([contributions, partial])
    reasons = top_reason_codes(impact, [*model.features, PARTNER_REASON], top_n)
    return pd.DataFrame({"pd": pd_, "score": score, "reasons": reasons, "partner_found": found},
                        index=frame.index)


def _clear_sides(bank: pd.DataFrame, partner: pd.DataFrame, *, id_column: str, target: str, bad: str,
                 key: PartnershipKey, settings: TrainingSettings) -> tuple[Any, Any, Any, list[Any], list[str]]:
    """Both tables seen together, for the references only: the shared rows in the protocol's order, the labels,
    the protocol's split, and each side's WoE matrix from bins fitted on the training rows."""
    bank_hashes = hashed_ids(key, bank, id_column)
    partner_row = {h: i for i, h in enumerate(hashed_ids(key, partner, id_column))}
    shared = sorted(h for h in bank_hashes if h in partner_row)
    bank_row = {h: i for i, h in enumerate(bank_hashes)}
    b = bank.iloc[[bank_row[h] for h in shared]].reset_index(drop=True)
    p = partner.iloc[[partner_row[h] for h in shared]].reset_index(drop=True)
    y = bad_flag(b[target], bad, column=target)
    train, valid = split_positions(y, settings)
    sides = []
    for frame, exclude in ((b, [id_column, target]), (p, [id_column])):
        bins = fit_bins(frame.iloc[train], features_of(frame, exclude), max_bins=settings.max_bins,
                        min_share=settings.min_bin_share)
        idx = bin_matrix(frame, bins)
        sides.append(woe_values(idx, woe_tables(idx[train], bins, y[train])))
    return y, train, valid, sides, shared


def central_reference(bank: pd.DataFrame, partner: pd.DataFrame, *, id_column: str, target: str, bad: str,
                      key: PartnershipKey, settings: TrainingSettings | None = None) -> dict[str, float]:
    """What the joint model is measured against where both tables can be seen together (a benchmark or a test,
    never production): the same shared rows, split, bins and WoE, fitted as one logistic regression in the
    clear with the joint training's L2 penalty (`valid_auc_central_same`, the same model) and with sklearn's
    default (`valid_auc_central`); and the bank-only model. Validation AUCs."""
    settings = settings or TrainingSettings()
    y, train, valid, sides, shared = _clear_sides(bank, partner, id_column=id_column, target=target, bad=bad,
                                                  key=key, settings=settings)
    both = np.hstack(sides)
    # the joint training's steps stop where mean log-loss + l2 * slope / 2 * |w|^2 is least (intercept free,
    # slope = p0 (1 - p0) its preconditioner); sklearn minimises C * sum log-loss + |w|^2 / 2, the same loss at
    # C = 1 / (l2 * slope * rows)
    base = float(y[train].mean())
    penalty = settings.l2 * base * (1 - base)
    same = LogisticRegression(C=1.0 / (penalty * len(train)), max_iter=5000).fit(both[train], y[train])
    central = LogisticRegression(max_iter=1000).fit(both[train], y[train])
    alone = LogisticRegression(max_iter=1000).fit(sides[0][train], y[train])
    return {"valid_auc_central_same": _auc(y[valid], same.decision_function(both[valid])),
            "valid_auc_central": _auc(y[valid], central.decision_function(both[valid])),
            "valid_auc_bank_only": _auc(y[valid], alone.decision_function(sides[0][valid])),
            "shared_ids": float(len(shared))}


def plaintext_reference(bank: pd.DataFrame, partner: pd.DataFrame, *, id_column: str, target: str, bad: str,
                        key: PartnershipKey, settings: TrainingSettings | None = None) -> float:
    """The joint training's own algorithm (same rows, split, bins, WoE, linearised residual, batches, steps and
    early stopping) run on both tables in the clear: the validation AUC the encrypted protocol should reach up
    to fixed-point rounding. For benchmarks and tests only."""
    settings = settings or TrainingSettings()
    y, train, valid, sides, _shared = _clear_sides(bank, partner, id_column=id_column, target=target, bad=bad,
                                                   key=key, settings=settings)
    x = np.hstack(sides)
    weights = np.zeros(x.shape[1])
    base = float(y[train].mean())
    intercept = math.log(base / (1 - base))
    anchor = np.full(len(y), intercept)
    slope = base * (1 - base)
    rng = np.random.default_rng(settings.seed)
    best_auc, waited = -1.0, 0
    for epoch in range(1, settings.max_epochs + 1):
        order = rng.permutation(train)
        rate = learning_rate(settings, epoch)
        p_anchor = 1.0 / (1.0 + np.exp(-anchor))
        for start in range(0, len(order), settings.batch_size):
            batch = order[start:start + settings.batch_size]
            d = x[batch] @ weights + intercept - anchor[batch] + (p_anchor[batch] - y[batch]) / slope
            weights = weights - rate * (x[batch].T @ d / len(batch) + settings.l2 * weights)
            intercept -= rate * float(d.mean())
        anchor = x @ weights + intercept
        auc = _auc(y[valid], x[valid] @ weights + intercept)
        if auc > best_auc + 1e-5:
            best_auc, waited = auc, 0
        else:
            waited += 1
            if waited >= settings.patience:
                break
    return best_auc
