"""The partner's side of the protocol (合作方): holds its features, answers each message type, and keeps its
part of every joint model. It never sends a feature value, a bin of a person, or its weights."""

from __future__ import annotations

import json
import math
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from phe import paillier

from microlend.core.errors import ValidationError
from microlend.risk.federation import crypto
from microlend.risk.federation.binning import FeatureBins, bin_matrix, features_of, fit_bins, woe_values
from microlend.risk.federation.keys import FederationError, PartnershipKey
from microlend.risk.federation.psi import PsiClient, serve

PROTOCOL_VERSION = 1
MAX_SESSIONS = 8
_MODEL_ID = re.compile(r"^[0-9a-f]{32}$")


def intersection_digest(key: PartnershipKey, hashes: list[str]) -> str:
    """Both sides compute it over their sorted shared hashes: equal digests mean equal intersections."""
    return key.sign("intersection", "\n".join(sorted(hashes)))


def hashed_ids(key: PartnershipKey, frame: pd.DataFrame, id_column: str) -> list[str]:
    """Keyed hashes of the ID column; an empty or repeated ID is refused."""
    if id_column not in frame.columns:
        raise ValidationError(f"id-column: no column '{id_column}' in the data", field="id-column")
    ids = frame[id_column]
    if ids.isna().any():
        raise ValidationError(f"{id_column}: {int(ids.isna().sum())} rows have no ID", field=id_column)
    text = ids.astype(str).str.strip().str.upper()
    if text.duplicated().any():
        raise ValidationError(f"{id_column}: {int(text.duplicated().sum())} IDs appear more than once",
                              field=id_column)
    return [key.hash_id(v) for v in text.tolist()]


@dataclass
class _Session:
    psi_client: PsiClient | None = None
    shared_rows: NDArray[np.intp] | None = None  # partner rows, in the common order (sorted hashes)
    bins: list[FeatureBins] = field(default_factory=list)
    idx: NDArray[np.intp] | None = None
    woe: list[list[float]] = field(default_factory=list)
    x: NDArray[np.float64] | None = None
    weights: NDArray[np.float64] | None = None
    snapshots: dict[int, list[float]] = field(default_factory=dict)
    bank_key: paillier.PaillierPublicKey | None = None
    own_public: paillier.PaillierPublicKey | None = None
    own_private: paillier.PaillierPrivateKey | None = None
    own: crypto.OwnKey | None = None
    pending: tuple[list[int], int] | None = None  # masks of the last step's gradient and its batch size
    learning_rate: float = 0.1
    l2: float = 0.0


class PartnerService:
    """Answers the bank's messages; `handle(type, payload)` returns the answer's payload."""

    def __init__(self, frame: pd.DataFrame, id_column: str, key: PartnershipKey, state_dir: Path, *,
                 workers: int | None = None) -> None:
        self.key = key
        self.workers = crypto.default_workers() if workers is None else workers
        self.id_column = id_column
        self.hashes = hashed_ids(key, frame, id_column)
        self.frame = frame.drop(columns=[id_column]).reset_index(drop=True)
        self.features = features_of(self.frame, [])
        if not self.features:
            raise ValidationError("data: the partner's file has no feature besides the ID column", field="data")
        self.row_of = {h: i for i, h in enumerate(self.hashes)}
        self.state_dir = state_dir
        (state_dir / "models").mkdir(parents=True, exist_ok=True)
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()
        self._handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "hello": self._hello, "psi/start": self._psi_start, "psi/finish": self._psi_finish,
            "train/setup": self._train_setup, "train/woe": self._train_woe, "train/step": self._train_step,
            "train/update": self._train_update, "train/partials": self._train_partials,
            "train/finish": self._train_finish, "score": self._score,
        }

    @property
    def message_types(self) -> list[str]:
        return list(self._handlers)

    def handle(self, message_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        handler = self._handlers.get(message_type)
        if handler is None:
            raise ValidationError(f"message type '{message_type}' is not part of the protocol", field="type")
        with self._lock:
            return handler(payload)

    # -- helpers --------------------------------------------------------------------------------------------

    def _session(self, payload: dict[str, Any], *, create: bool = False) -> _Session:
        sid = payload.get("session")
        if not isinstance(sid, str) or not re.fullmatch(r"[0-9a-f]{32}", sid):
            raise ValidationError("session: expected 32 hexadecimal characters", field="session")
        if create:
            if len(self._sessions) >= MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[sid] = _Session()
        if sid not in self._sessions:
            raise FederationError("session: unknown or expired session; start again with the PSI")
        return self._sessions[sid]

    @staticmethod
    def _positions(payload: dict[str, Any], name: str, limit: int) -> NDArray[np.intp]:
        values = payload.get(name)
        if not isinstance(values, list) or not all(isinstance(v, int) and 0 <= v < limit for v in values):
            raise ValidationError(f"{name}: expected positions between 0 and {limit - 1}", field=name)
        return np.asarray(values, dtype=np.intp)

    @staticmethod
    def _number(payload: dict[str, Any], name: str, low: float, high: float) -> float:
        value = payload.get(name)
        if not isinstance(value, int | float) or not low <= float(value) <= high:
            raise ValidationError(f"{name}: expected a number between {low} and {high}", field=name)
        return float(value)

    # -- the messages -----------------------------------------------------------------------------------------

    def _hello(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"protocol": PROTOCOL_VERSION, "features": self.features, "rows": len(self.hashes),
                "key_fingerprint": self.key.fingerprint}

    def _psi_start(self, payload: dict[str, Any]) -> dict[str, Any]:
        session = self._session(payload, create=True)
        setup, response = serve(self.hashes, payload.get("request"))
        session.psi_client = PsiClient(self.hashes)
        return {"setup": setup, "response": response, "request": session.psi_client.request()}

    def _psi_finish(self, payload: dict[str, Any]) -> dict[str, Any]:
        session = self._session(payload)
        if session.psi_client is None:
            raise FederationError("psi: finish before start")
        rows = session.psi_client.intersection(payload.get("setup"), payload.get("response"))
        shared = sorted(rows, key=lambda r: self.hashes[r])
        digest = intersection_digest(self.key, [self.hashes[r] for r in shared])
        if digest != payload.get("digest"):
            raise FederationError("psi: the two sides found different intersections; start again")
        session.shared_rows = np.asarray(shared, dtype=np.intp)
        return {"count": len(shared), "digest": digest}

    def _shared(self, session: _Session) -> NDArray[np.intp]:
        if session.shared_rows is None:
            raise FederationError("train: run the PSI first")
        return session.shared_rows

    def _train_setup(self, payload: dict[str, Any]) -> dict[str, Any]:
        session = self._session(payload)
        shared = self._shared(session)
        train = self._positions(payload, "train", len(shared))
        bank_key = crypto.public_key(str(payload.get("public_key", "")))
        labels = crypto.from_hex(payload.get("labels"), "labels")
        if len(labels) != len(train):
            raise ValidationError("labels: one encrypted label per training position", field="labels")
        session.learning_rate = self._number(payload, "learning_rate", 1e-6, 10.0)
        session.l2 = self._number(payload, "l2", 0.0, 10.0)
        min_share = self._number(payload, "min_bin_share", 0.01, 0.5)
        max_bins = int(self._number(payload, "max_bins", 2, 20))
        shared_frame = self.frame.iloc[shared].reset_index(drop=True)
        # unsupervised bins from the partner's values on the training rows only (no outcome needed)
        session.bins = fit_bins(shared_frame.iloc[train], self.features, max_bins=max_bins, min_share=min_share)
        if not session.bins:
            raise FederationError("train: no partner feature has two bins of enough rows")
        session.idx = bin_matrix(shared_frame, session.bins)
        session.bank_key = bank_key
        session.own_public, session.own_private = crypto.keypair(bank_key.n.bit_length() // 256 * 256 or 512)
        session.own = crypto.OwnKey(session.own_public, session.own_private, workers=self.workers)
        train_idx = session.idx[train]
        events: list[list[str]] = []
        counts: list[list[int]] = []
        for j, b in enumerate(session.bins):
            per_bin = [1] * b.n_bins
            for c, k in zip(labels, train_idx[:, j].tolist(), strict=True):
                per_bin[k] = crypto.add(bank_key, per_bin[k], c)
            events.append(crypto.to_hex([crypto.rerandomise(bank_key, c) for c in per_bin]))
            counts.append(np.bincount(train_idx[:, j], minlength=b.n_bins).astype(int).tolist())
        return {"public_key": format(session.own_public.n, "x"), "features": [b.name for b in session.bins],
                "counts": counts, "events": events}

    def _train_woe(self, payload: dict[str, Any]) -> dict[str, Any]:
        session = self._session(payload)
        tables = payload.get("woe")
        if (session.idx is None or not isinstance(tables, list) or len(tables) != len(session.bins)
                or any(not isinstance(t, list) or len(t) != b.n_bins for t, b in zip(tables, session.bins,
                                                                                        strict=False))
                or any(not isinstance(w, int | float) or not math.isfinite(w) for t in tables for w in t)):
            raise ValidationError("woe: one table of numbers per partner feature, one number per bin", field="woe")
        session.woe = [[float(w) for w in t] for t in tables]
        session.x = woe_values(session.idx, session.woe)
        session.weights = np.zeros(len(session.bins), dtype=np.float64)
        return {"features": len(session.bins)}

    def _ready(self, session: _Session) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp]]:
        if session.x is None or session.weights is None or session.idx is None:
            raise FederationError("train: set up the training first")
        return session.x, session.weights, session.idx

    def _train_step(self, payload: dict[str, Any]) -> dict[str, Any]:
        """[[u]] (bank's key) with u = z_bank - z0 + (p0 - y) / slope: adds z_partner under encryption to get
        [[D]] = [[d / slope]] (d the linearised residual), sums it per bin weighted by WoE, masks each gradient and
        returns it with this batch's partial scores encrypted under the partner's own key."""
        session = self._session(payload)
        x, weights, idx = self._ready(session)
        assert session.bank_key is not None and session.own is not None
        batch = self._positions(payload, "batch", len(x))
        residuals = crypto.from_hex(payload.get("residuals"), "residuals")
        if len(residuals) != len(batch) or not len(batch):
            raise ValidationError("residuals: one per batch position", field="residuals")
        bank_key = session.bank_key
        z = x[batch] @ weights
        z_fixed = crypto.to_fixed(z)
        d = [crypto.add_plain(bank_key, c, v) for c, v in zip(residuals, z_fixed, strict=True)]
        masks = [crypto.random_mask(bank_key) for _ in session.bins]
        gradient = []
        for j, r in enumerate(masks):
            weights_fixed = crypto.to_fixed(np.asarray(session.woe[j]))
            g = crypto.weighted_bin_sums(bank_key, d, idx[batch, j], weights_fixed)
            gradient.append(crypto.mask(bank_key, g, r))
        session.pending = (masks, len(batch))
        partial = session.own.encrypt(z_fixed)
        return {"gradient": crypto.to_hex(gradient), "partial": crypto.to_hex(partial)}

    def _train_update(self, payload: dict[str, Any]) -> dict[str, Any]:
        session = self._session(payload)
        _, weights, _ = self._ready(session)
        assert session.bank_key is not None and session.own_private is not None
        if session.pending is None:
            raise FederationError("train: update without a step")
        masks, size = session.pending
        masked = payload.get("gradient")
        if not isinstance(masked, list) or len(masked) != len(masks) or not all(isinstance(v, str) and v.isdigit()
                                                                                for v in masked):
            raise ValidationError("gradient: one decimal number per partner feature", field="gradient")
        n = session.bank_key.n
        fixed = np.array([crypto.signed(int(v) - r, n) for v, r in zip(masked, masks, strict=True)], dtype=float)
        grad = fixed / (crypto.SCALE * crypto.SCALE * size)
        # the bank may lower the step as the epochs go (its schedule); never above the agreed rate
        rate = (self._number(payload, "learning_rate", 1e-6, session.learning_rate) if "learning_rate" in payload
                else session.learning_rate)
        session.weights = weights - rate * (grad + session.l2 * weights)
        session.pending = None
        bank_masked = crypto.from_hex(payload.get("bank_gradient"), "bank_gradient")
        if len(bank_masked) > 10_000:
            raise ValidationError("bank_gradient: too many values", field="bank_gradient")
        opened = crypto.decrypt(session.own_private, bank_masked)
        return {"bank_gradient": [str(v) for v in opened]}

    def _train_partials(self, payload: dict[str, Any]) -> dict[str, Any]:
        session = self._session(payload)
        x, weights, _ = self._ready(session)
        positions = self._positions(payload, "positions", len(x))
        epoch = int(self._number(payload, "epoch", 0, 10_000))
        session.snapshots[epoch] = weights.tolist()
        return {"partials": [round(float(v), 8) for v in x[positions] @ weights]}

    def _train_finish(self, payload: dict[str, Any]) -> dict[str, Any]:
        session = self._session(payload)
        epoch = int(self._number(payload, "epoch", 0, 10_000))
        model_id = payload.get("model_id")
        if not isinstance(model_id, str) or not _MODEL_ID.fullmatch(model_id):
            raise ValidationError("model_id: expected 32 hexadecimal characters", field="model_id")
        if epoch not in session.snapshots:
            raise FederationError(f"train: no weights kept for epoch {epoch}")
        part = {"model_id": model_id, "bins": [b.to_dict() for b in session.bins], "woe": session.woe,
                "weights": session.snapshots[epoch], "key_fingerprint": self.key.fingerprint}
        path = self.state_dir / "models" / f"{model_id}.json"
        path.write_text(json.dumps(part), encoding="utf-8")
        return {"model_id": model_id, "features": [b.name for b in session.bins]}

    def _score(self, payload: dict[str, Any]) -> dict[str, Any]:
        model_id = payload.get("model_id")
        if not isinstance(model_id, str) or not _MODEL_ID.fullmatch(model_id):
            raise ValidationError("model_id: expected 32 hexadecimal characters", field="model_id")
        path = self.state_dir / "models" / f"{model_id}.json"
        if not path.is_file():
            raise FederationError(f"score: this partner holds no part of model {model_id}")
        part = json.loads(path.read_text(encoding="utf-8"))
        ids = payload.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) and len(i) == 64 for i in ids):
            raise ValidationError("ids: expected a list of hashed IDs", field="ids")
        if len(ids) > 100_000:
            raise ValidationError("ids: at most 100,000 per request", field="ids")
        rows = [self.row_of.get(i) for i in ids]
        found = [r for r in rows if r is not None]
        partial: list[float | None] = [None] * len(ids)
        if found:
            bins = [FeatureBins.from_dict(b) for b in part["bins"]]
            idx = bin_matrix(self.frame.iloc[found], bins)
            z = woe_values(idx, part["woe"]) @ np.asarray(part["weights"], dtype=np.float64)
            values = iter(z.tolist())
            partial = [None if r is None else round(next(values), 8) for r in rows]
        return {"partials": partial}


def new_token() -> str:
    return secrets.token_hex(16)
