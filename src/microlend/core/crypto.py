"""Personal data at rest: AES-GCM encryption, a keyed blind index for lookups, and masking for display."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from microlend.core.settings import get_settings


@lru_cache(maxsize=8)
def _keys(secret: str) -> tuple[bytes, bytes]:
    enc = hashlib.sha256(b"microlend/pii-encryption/" + secret.encode()).digest()
    idx = hashlib.sha256(b"microlend/pii-blind-index/" + secret.encode()).digest()
    return enc, idx


def encrypt(plaintext: str, secret: str | None = None) -> str:
    key, _ = _keys(secret or get_settings().secret_key)
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), None)
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def decrypt(token: str, secret: str | None = None) -> str:
    key, _ = _keys(secret or get_settings().secret_key)
    raw = base64.urlsafe_b64decode(token.encode())
    return AESGCM(key).decrypt(raw[:12], raw[12:], None).decode()


def blind_index(value: str, secret: str | None = None) -> str:
    """A keyed hash: equal values give equal indexes (for uniqueness), yet reveal nothing."""
    _, key = _keys(secret or get_settings().secret_key)
    return hmac.new(key, value.strip().upper().encode(), hashlib.sha256).hexdigest()


def mask(value: str, keep_start: int = 4, keep_end: int = 4) -> str:
    """`110101199003071234` -> `1101**********1234`; short values are masked more."""
    if len(value) <= keep_start + keep_end:
        keep_start, keep_end = min(keep_start, len(value) // 3), min(keep_end, len(value) // 3)
    middle = len(value) - keep_start - keep_end
    return value[:keep_start] + "*" * middle + (value[-keep_end:] if keep_end else "")


def mask_phone(phone: str) -> str:
    """`13812345678` -> `138****5678`."""
    return mask(phone, 3, 4)
