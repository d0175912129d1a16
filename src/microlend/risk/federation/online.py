"""The online path of a joint model inside a credit decision: the partner is asked for its partial score of one
applicant (the signed `score` message with the keyed hash of the ID number), within a short timeout. When the
partnership is suspended or out of its dates, its key is not installed, or the partner is unreachable, too slow
or refuses, the answer says why, and the decision scores with the bank-only model (reason PARTNER_UNAVAILABLE).

The bank's copy of each partnership key lives in `<data dir>/federation-keys/<fingerprint>.key` (0600), put
there by `microlend federation partnership add --key-file`; the database holds only the fingerprint."""

from __future__ import annotations

import math
import os
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from microlend.core.errors import DomainError
from microlend.core.identity import Principal
from microlend.core.settings import get_settings
from microlend.core.uow import UnitOfWork
from microlend.risk.federation.client import PartnerClient
from microlend.risk.federation.keys import PartnershipKey
from microlend.risk.federation.partnerships import partnership_for_scoring

KEY_DIR = "federation-keys"
#: how long a decision waits for the partner's partial score (seconds)
ONLINE_TIMEOUT_S = 0.3


def key_dir() -> Path:
    return get_settings().data_dir / KEY_DIR


def install_key(key_file: Path, directory: Path | None = None) -> str:
    """Copy a partnership key into the bank's key store (0600) under its fingerprint; returns the fingerprint."""
    key = PartnershipKey.load(key_file)
    folder = directory or key_dir()
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    target = folder / f"{key.fingerprint}.key"
    if not target.exists():
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out, key_file.open("rb") as source:
            shutil.copyfileobj(source, out)
    return key.fingerprint


@dataclass(frozen=True)
class PartnerAnswer:
    """The partner's partial log-odds (0.0, its neutral value, when it holds no record of the person), or why it
    could not be had."""

    partial: float | None
    unavailable: str = ""
    found: bool = False
    #: how long the partner's answer took, when it was asked (milliseconds)
    ms: float | None = None
    #: the partner was not asked because the applicant gave no consent to scoring with it
    no_consent: bool = False


@dataclass(frozen=True)
class PartnerSubject:
    """Whom a joint model may ask its partner about in one decision: the applicant's ID number, given only when
    the applicant consented to scoring with a data partner (the keyed hash of it, never the number, is sent).
    `consent` False: the partner is not asked and the bank-only model decides (PARTNER_NO_CONSENT)."""

    consent: bool
    id_number: str = ""

    def __repr__(self) -> str:  # never the number in a log or a traceback
        return f"PartnerSubject(consent={self.consent})"


class OnlinePartners:
    """Asks partners for one applicant's partial score; one HTTP client per partner and key, kept open."""

    def __init__(self, keys: Path | None = None, timeout: float = ONLINE_TIMEOUT_S) -> None:
        self.keys = keys
        self.timeout = timeout
        self._clients: dict[tuple[str, str], tuple[PartnershipKey, PartnerClient]] = {}
        self._lock = threading.Lock()

    def _client(self, url: str, fingerprint: str) -> tuple[PartnershipKey, PartnerClient] | None:
        with self._lock:
            held = self._clients.get((url, fingerprint))
            if held is None:
                path = (self.keys or key_dir()) / f"{fingerprint}.key"
                if not path.is_file():
                    return None
                key = PartnershipKey.load(path)
                if key.fingerprint != fingerprint:
                    return None
                held = self._clients[(url, fingerprint)] = (key, PartnerClient(url, key, timeout=self.timeout))
            return held

    def partial(self, uow: UnitOfWork, who: Principal, *, partnership_id: int, partner_model_id: str,
                key_fingerprint: str, id_number: object, on: date) -> PartnerAnswer:
        if id_number is None or not str(id_number).strip():
            return PartnerAnswer(None, "no ID number in the case to ask the partner about")
        partnership = partnership_for_scoring(uow, who, partnership_id)
        if partnership is None:
            return PartnerAnswer(None, f"partnership {partnership_id} is not recorded")
        why_not = partnership.usable_on(on)
        if why_not:
            return PartnerAnswer(None, why_not)
        if partnership.key_fingerprint != key_fingerprint:
            return PartnerAnswer(None, f"partnership '{partnership.name}' now holds another key")
        held = self._client(partnership.endpoint_url, key_fingerprint)
        if held is None:
            return PartnerAnswer(None, f"the key {key_fingerprint} is not installed in this bank's key store")
        key, client = held
        started = time.perf_counter()
        try:
            answer = client.call("score", {"model_id": partner_model_id, "ids": [key.hash_id(id_number)]})
        except DomainError as exc:  # unreachable, timed out, refused or a wrong key
            return PartnerAnswer(None, exc.message[:300], ms=_since(started))
        ms = _since(started)
        values = answer.get("partials")
        if not isinstance(values, list) or len(values) != 1:
            return PartnerAnswer(None, "the partner's answer holds no partial score", ms=ms)
        value = values[0]
        if value is None:
            return PartnerAnswer(0.0, found=False, ms=ms)
        if not isinstance(value, int | float) or not math.isfinite(value):
            return PartnerAnswer(None, "the partner's partial score is not a number", ms=ms)
        return PartnerAnswer(float(value), found=True, ms=ms)

    def close(self) -> None:
        with self._lock:
            for _, client in self._clients.values():
                client.close()
            self._clients.clear()



def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
