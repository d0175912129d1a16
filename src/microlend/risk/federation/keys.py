"""The partnership key (合作密钥) and what is derived from it: message authentication (HMAC-SHA256 over the
body, a timestamp and a nonce, with replays refused), the salt of hashed ID numbers and the key's fingerprint;
plus the transcript each side keeps of every message (type, size, SHA-256, time, never the body)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microlend.core.errors import DomainError, ValidationError

KEY_BYTES = 32
#: a message older or newer than this (seconds) is refused, and nonces are remembered this long
MAX_SKEW_SECONDS = 300
HEADER_TIMESTAMP = "X-Federation-Timestamp"
HEADER_NONCE = "X-Federation-Nonce"
HEADER_SIGNATURE = "X-Federation-Signature"
_KEY_PREFIX = "microlend-federation-key-v1:"


class NotAuthenticated(DomainError):
    """A message whose signature, time or nonce does not hold: refused (HTTP 401, CLI exit 2)."""

    status_code = 401
    code = "not_authenticated"


class FederationError(DomainError):
    """The partner or the protocol cannot go on (unreachable partner, mismatched data, refused step)."""

    status_code = 409
    code = "federation_error"


def generate_key(path: Path) -> str:
    """Write a new random partnership key to `path` (0600, refusing to overwrite); returns its fingerprint."""
    if path.exists():
        raise ValidationError(f"key: '{path}' already exists; a partnership key is never overwritten", field="key")
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(KEY_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(_KEY_PREFIX + secret.hex() + "\n")
    os.chmod(path, 0o600)
    return PartnershipKey(secret).fingerprint


@dataclass(frozen=True)
class PartnershipKey:
    """The shared secret of one bank-partner partnership; each use gets its own derived key."""

    secret: bytes = field(repr=False)

    @classmethod
    def load(cls, path: Path) -> PartnershipKey:
        if not path.is_file():
            raise ValidationError(f"key-file: '{path}' not found (make one with `microlend federation keygen`)",
                                  field="key-file")
        text = path.read_text(encoding="ascii", errors="replace").strip()
        if not text.startswith(_KEY_PREFIX):
            raise ValidationError(f"key-file: '{path}' is not a partnership key", field="key-file")
        try:
            secret = bytes.fromhex(text[len(_KEY_PREFIX):])
        except ValueError:
            raise ValidationError(f"key-file: '{path}' is damaged (not hexadecimal)", field="key-file") from None
        if len(secret) != KEY_BYTES:
            raise ValidationError(f"key-file: '{path}' is damaged ({len(secret)} bytes, expected {KEY_BYTES})",
                                  field="key-file")
        return cls(secret)

    def derive(self, purpose: str) -> bytes:
        return hmac.new(self.secret, b"microlend-federation/" + purpose.encode(), hashlib.sha256).digest()

    @property
    def fingerprint(self) -> str:
        """Safe to show and record: identifies the key without revealing it."""
        return self.derive("fingerprint").hex()[:16]

    def hash_id(self, id_number: object) -> str:
        """An ID number as both sides hash it (keyed, so a party without the key cannot test guesses)."""
        text = str(id_number).strip().upper()
        return hmac.new(self.derive("id-salt"), text.encode(), hashlib.sha256).hexdigest()

    def sign(self, *parts: bytes | str) -> str:
        mac = hmac.new(self.derive("auth"), digestmod=hashlib.sha256)
        for part in parts:
            data = part.encode() if isinstance(part, str) else part
            mac.update(len(data).to_bytes(8, "big"))
            mac.update(data)
        return mac.hexdigest()


def request_signature(key: PartnershipKey, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    return key.sign("request", path, timestamp, nonce, body)


def response_signature(key: PartnershipKey, request_nonce: str, status: int, timestamp: str, nonce: str,
                       body: bytes) -> str:
    return key.sign("response", request_nonce, str(status), timestamp, nonce, body)


def fresh_headers() -> tuple[str, str]:
    return str(int(time.time())), secrets.token_hex(16)


class ReplayGuard:
    """Checks a message's time and refuses a nonce seen before within the allowed skew."""

    def __init__(self, max_skew: int = MAX_SKEW_SECONDS) -> None:
        self.max_skew = max_skew
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, timestamp: str, nonce: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        try:
            sent = int(timestamp)
        except ValueError:
            raise NotAuthenticated("federation: the message has no valid timestamp") from None
        if abs(now - sent) > self.max_skew:
            raise NotAuthenticated(f"federation: stale message (sent {int(now - sent)} s from now; the limit is "
                                   f"{self.max_skew} s): refused")
        if not 16 <= len(nonce) <= 128:
            raise NotAuthenticated("federation: the message has no valid nonce")
        with self._lock:
            for old in [n for n, t in self._seen.items() if now - t > 2 * self.max_skew]:
                del self._seen[old]
            if nonce in self._seen:
                raise NotAuthenticated("federation: replayed message (this nonce was already used): refused")
            self._seen[nonce] = now


def verify_request(key: PartnershipKey, guard: ReplayGuard, path: str, headers: dict[str, str],
                   body: bytes) -> str:
    """Check a request's signature first, then its time and nonce; returns the nonce."""
    timestamp = headers.get(HEADER_TIMESTAMP.lower(), "")
    nonce = headers.get(HEADER_NONCE.lower(), "")
    signature = headers.get(HEADER_SIGNATURE.lower(), "")
    if not signature or not timestamp or not nonce:
        raise NotAuthenticated("federation: the message is not signed with a partnership key")
    expected = request_signature(key, path, timestamp, nonce, body)
    if not hmac.compare_digest(expected, signature):
        raise NotAuthenticated("federation: the message signature does not match this partnership's key "
                               "(wrong --key-file?): refused")
    guard.check(timestamp, nonce)
    return nonce


class Transcript:
    """A JSON-lines record of every message sent or received: type, direction, size, SHA-256 and time. With
    `bodies_dir`, the raw bodies are kept too (for an audit of what crossed the wire)."""

    def __init__(self, path: Path, bodies_dir: Path | None = None) -> None:
        self.path = path
        self.bodies_dir = bodies_dir
        path.parent.mkdir(parents=True, exist_ok=True)
        if bodies_dir is not None:
            bodies_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._count = 0

    def record(self, direction: str, message_type: str, body: bytes) -> None:
        entry: dict[str, Any] = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "direction": direction,
                                 "type": message_type, "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        with self._lock:
            self._count += 1
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")
            if self.bodies_dir is not None:
                name = f"{self._count:05d}-{direction}-{message_type.replace('/', '_')}.json"
                (self.bodies_dir / name).write_bytes(body)

    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
