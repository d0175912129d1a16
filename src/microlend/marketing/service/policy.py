"""The bank's contact policy (接触策略), the use cases: read and set it, and approve a campaign's launch as
the second person (four eyes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from microlend.core import audit
from microlend.core.errors import Conflict, PermissionDenied
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.marketing.contact_policy import ContactPolicy
from microlend.marketing.service.campaigns import Campaign
from microlend.marketing.service.common import campaign_row, policy_of
from microlend.marketing.tables import ContactPolicyRow


def _facts(p: ContactPolicy) -> dict[str, object]:
    return {"cap_max_contacts": p.cap_max_contacts, "cap_window_days": p.cap_window_days,
            "holdout_share_bp": p.holdout_share_bp, "quiet_start": p.quiet.start.strftime("%H:%M"),
            "quiet_end": p.quiet.end.strftime("%H:%M"), "timezone": p.quiet.timezone,
            "throttle_per_s": p.throttle_per_s, "public_host": p.public_host, "launch_approval": p.launch_approval}


def contact_policy(uow: UnitOfWork, who: Principal) -> ContactPolicy:
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow.read_only():
        return policy_of(uow.session, who.tenant_id)


def set_contact_policy(uow: UnitOfWork, who: Principal, policy: ContactPolicy, *, at: datetime) -> ContactPolicy:
    """Set the bank's policy; it applies to every campaign from the next send on."""
    who.require(Permission.MANAGE_MESSAGING)
    with uow:
        s = uow.session
        row = s.get(ContactPolicyRow, who.tenant_id)
        before = None if row is None else _facts(policy_of(s, who.tenant_id))
        if row is None:
            row = ContactPolicyRow(tenant_id=who.tenant_id)
            s.add(row)
        row.cap_max_contacts, row.cap_window_days = policy.cap_max_contacts, policy.cap_window_days
        row.holdout_share_bp, row.throttle_per_s = policy.holdout_share_bp, policy.throttle_per_s
        row.quiet_start, row.quiet_end = policy.quiet.start.strftime("%H:%M"), policy.quiet.end.strftime("%H:%M")
        row.timezone, row.public_host, row.launch_approval = policy.quiet.timezone, policy.public_host, \
            policy.launch_approval
        row.updated_by, row.updated_at = who.username, at
        s.flush()
        audit.record(s, who, "marketing.contact_policy", "contact_policy", who.tenant_id, before=before,
                     after=_facts(policy))
        saved = policy_of(s, who.tenant_id)
        uow.commit()
    return saved


@dataclass(frozen=True)
class Approval:
    campaign: Campaign
    approved_by: str
    approved_at: datetime


def approve_campaign(uow: UnitOfWork, who: Principal, campaign_id: int, *, at: datetime) -> Approval:
    """A second person approves a draft campaign for launch: never the one who created it."""
    who.require(Permission.MANAGE_CAMPAIGNS)
    with uow:
        s = uow.session
        row = campaign_row(s, who, campaign_id)
        if row.status != "draft":
            raise Conflict(f"campaign {campaign_id} is {row.status}, only a draft is approved", field="campaign_id")
        if row.created_by == who.username:
            raise PermissionDenied("a campaign is approved by a second person, not by the one who created it")
        row.status, row.approved_by, row.approved_at = "approved", who.username, at
        audit.record(s, who, "campaign.approve", "campaign", row.id, after={"created_by": row.created_by})
        result = Approval(Campaign.from_row(row), who.username, at)
        uow.commit()
    return result
