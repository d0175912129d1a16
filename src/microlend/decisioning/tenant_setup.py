"""A new bank moves in with the default micro-loan policy, published as its champion by the system."""

from __future__ import annotations

from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.identity import system_principal
from microlend.core.tables import TenantRow
from microlend.decisioning import reason_codes
from microlend.decisioning.policy import default_policy, policy_hash, policy_name
from microlend.decisioning.tables import DecisionSetupRow, PolicyVersionRow
from microlend.decisioning.versions import audit_summary


def setup_tenant(session: Session, tenant: TenantRow) -> None:
    """Tenant-setup hook: seed the bank's reason-code catalogue with the built-in codes and publish the
    default micro-loan policy as the champion, by the system."""
    who = system_principal(tenant.id)
    reason_codes.seed(session, tenant.id)
    doc = default_policy()
    content_hash = policy_hash(doc)
    now = utcnow()
    row = PolicyVersionRow(
        tenant_id=tenant.id,
        name=policy_name(doc) or "default_micro_loan",
        content_hash=content_hash,
        content=doc,
        status="published",
        author="system",
        author_user_id=0,
        created_at=now,
        submitted_at=now,
        publisher="system",
        publisher_user_id=0,
        published_at=now,
        note="default policy for a new bank",
        environment="production",
    )
    session.add(row)
    session.add(DecisionSetupRow(tenant_id=tenant.id, champion_hash=content_hash, updated_at=now))
    session.flush()
    audit.record(
        session,
        who,
        "policy.publish",
        "policy_version",
        row.id,
        after=audit_summary(row),
        reason="default policy for a new bank",
    )
