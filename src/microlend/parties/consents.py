"""A borrower's authorisations (授权): which data may be queried about them, recorded with scope and time."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from microlend.core.errors import ValidationError
from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.parties.tables import ConsentRow

#: Scopes a borrower may authorise (授权).
CONSENT_SCOPES = ("credit_report", "external_data", "marketing")


def check_scopes(scopes: Iterable[str]) -> None:
    """Refuse a scope nobody can authorise, naming it and the known ones."""
    unknown = set(scopes) - set(CONSENT_SCOPES)
    if unknown:
        raise ValidationError(f"consents: unknown scope '{sorted(unknown)[0]}' (one of: {', '.join(CONSENT_SCOPES)})",
                              field="consents")


def record_consents(uow: UnitOfWork, who: Principal, customer_id: int, scopes: Iterable[str], *,
                    granted_at: datetime, channel: str, application_id: int | None = None) -> None:
    """Record each scope once, granted by the caller, inside the caller's open unit of work (the caller
    commits them with what they authorise, e.g. the application they came with)."""
    chosen = sorted(set(scopes))
    check_scopes(chosen)
    with uow:
        for scope in chosen:
            uow.session.add(ConsentRow(tenant_id=who.tenant_id, customer_id=customer_id, scope=scope,
                                       granted_at=granted_at, granted_by=who.username, channel=channel,
                                       application_id=application_id))
        uow.flush()
