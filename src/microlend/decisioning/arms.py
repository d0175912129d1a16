"""Champion/challenger (冠军/挑战者) traffic split: a stable hash of tenant and customer picks the arm, so a
customer sees the same policy every time they apply."""

from __future__ import annotations

import hashlib
from typing import Literal

BUCKETS = 10_000
Arm = Literal["champion", "challenger"]


def bucket(tenant_id: int, customer_id: str) -> int:
    """0..9999 from sha256 of tenant and customer id: stable across processes and releases."""
    digest = hashlib.sha256(f"{tenant_id}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def choose_arm(tenant_id: int, customer_id: str, challenger_share_bp: int) -> Arm:
    """The challenger takes buckets below its share (in basis points); everyone else gets the champion."""
    if not 0 <= challenger_share_bp <= BUCKETS:
        raise ValueError(f"challenger share must be 0..{BUCKETS} basis points, got {challenger_share_bp}")
    return "challenger" if bucket(tenant_id, customer_id) < challenger_share_bp else "champion"
