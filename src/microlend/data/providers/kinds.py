"""The six provider kinds, the path each is served under, whom it knows and the consent scope it needs."""

from __future__ import annotations

from collections.abc import Collection

#: The kinds in the order they are shown.
KINDS: tuple[str, ...] = ("bureau", "tax", "einvoice", "merchant", "registry", "enforcement")

#: The path of each kind under its base URL.
PATHS: dict[str, str] = {
    "bureau": "/v1/bureau/report",
    "tax": "/v1/tax/declarations",
    "einvoice": "/v1/einvoice/summary",
    "merchant": "/v1/merchant/flows",
    "registry": "/v1/registry/company",
    "enforcement": "/v1/enforcement/cases",
}

#: The consent scope (parties consent scopes) a kind needs; None: a public record, called without one (the
#: call is still recorded with its purpose).
CONSENT_SCOPE: dict[str, str | None] = {
    "bureau": "credit_report",
    "tax": "external_data",
    "einvoice": "external_data",
    "merchant": "external_data",
    "registry": None,
    "enforcement": None,
}

#: Whom each kind knows: a person (resident ID), a business (USCC), or both.
SUBJECT_KINDS: dict[str, frozenset[str]] = {
    "bureau": frozenset({"person", "business"}),
    "tax": frozenset({"business"}),
    "einvoice": frozenset({"business"}),
    "merchant": frozenset({"person", "business"}),
    "registry": frozenset({"business"}),
    "enforcement": frozenset({"person", "business"}),
}


def consent_missing(kind: str, consents: Collection[str]) -> str | None:
    """The scope a kind needs that is not among `consents`, or None when it may be called."""
    scope = CONSENT_SCOPE[kind]
    return None if scope is None or scope in consents else scope
