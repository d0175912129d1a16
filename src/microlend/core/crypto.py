"""Personal data at rest: AES-GCM encryption, a keyed blind index for lookups, and masking for display."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from functools import lru_cache
from typing import Any

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


# a resident ID (18 characters) or a USCC, and a mainland mobile, wherever they appear in a text
_ID = re.compile(r"(?<![0-9A-Z])(\d{17}[\dXx]|[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10})(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d{9})(?!\d)")


def redact(text: str) -> str:
    """Mask every ID number and mobile in a text: `borrower 13812345678@bank` -> `borrower 138****5678@bank`."""
    text = _ID.sub(lambda m: mask(m.group(1)), text)
    return _MOBILE.sub(lambda m: mask_phone(m.group(1)), text)


def redact_value(value: Any) -> Any:
    """`redact` applied to every text inside a JSON-like value (dict keys stay as they are)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    return value
