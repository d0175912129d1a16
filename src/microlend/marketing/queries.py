"""Read functions about marketing's objects for adapters and other modules; every query is scoped to the
caller's tenant."""

from __future__ import annotations

from collections.abc import Sequence

from microlend.core import references
from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.marketing.tables import CampaignRow, PreapprovalRunRow


def campaigns_of_this_bank(uow: UnitOfWork, who: Principal, campaign_ids: Sequence[int]) -> set[int]:
    """The ids among `campaign_ids` that are campaigns of the caller's bank."""
    return references.of_bank(uow, who, CampaignRow.id, CampaignRow.tenant_id, campaign_ids)


def runs_of_this_bank(uow: UnitOfWork, who: Principal, run_ids: Sequence[int]) -> set[int]:
    """The ids among `run_ids` that are pre-approval runs of the caller's bank."""
    return references.of_bank(uow, who, PreapprovalRunRow.id, PreapprovalRunRow.tenant_id, run_ids)
