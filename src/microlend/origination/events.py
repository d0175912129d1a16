"""Events origination publishes after commit; other modules react without origination knowing them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from microlend.core.events import DomainEvent


@dataclass(frozen=True)
class ApplicationDecided(DomainEvent):
    """An application's decision was stored: at submission by the decision engine (approved, declined or
    referred to people), or after review by the approvers (approved or declined)."""

    application_id: int
    customer_id: int
    status: str
    automatic: bool
    campaign_id: int | None
    decided_at: datetime
    offer_amount: Decimal | None
