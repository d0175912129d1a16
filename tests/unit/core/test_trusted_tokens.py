"""The short trust a server process gives a bearer token whose user it has just re-read."""

from __future__ import annotations

from microlend.core.identity import Principal, Role
from microlend.core.tenancy import TrustedTokens

WHO = Principal(user_id=7, tenant_id=3, username="officer@bank", roles=frozenset({Role.CREDIT_OFFICER}))


def test_a_token_is_trusted_for_the_window_and_not_after() -> None:
    trusted = TrustedTokens(seconds=1.0)
    trusted.put("tok", WHO, now=100.0, token_expires_at=10_000.0)
    assert trusted.get("tok", 100.5) == WHO
    assert trusted.get("tok", 101.0) is None
    assert trusted.get("tok", 100.5) is None  # an expired entry is gone, not revived


def test_never_past_the_tokens_own_expiry() -> None:
    trusted = TrustedTokens(seconds=5.0)
    trusted.put("tok", WHO, now=100.0, token_expires_at=100.2)
    assert trusted.get("tok", 100.1) == WHO
    assert trusted.get("tok", 100.3) is None


def test_zero_seconds_trusts_nothing() -> None:
    trusted = TrustedTokens(seconds=0)
    trusted.put("tok", WHO, now=100.0, token_expires_at=10_000.0)
    assert trusted.get("tok", 100.0) is None


def test_unknown_tokens_are_not_trusted_and_the_store_is_bounded() -> None:
    trusted = TrustedTokens(seconds=60, max_entries=3)
    assert trusted.get("other", 0.0) is None
    for i in range(3):
        trusted.put(f"tok{i}", WHO, now=0.0, token_expires_at=10_000.0)
    trusted.put("tok3", WHO, now=0.0, token_expires_at=10_000.0)  # full: starts afresh
    assert trusted.get("tok0", 1.0) is None
    assert trusted.get("tok3", 1.0) == WHO
