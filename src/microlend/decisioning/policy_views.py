"""Policy versions as their readers see them: each with the arm it plays in the bank's set-up in force."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from microlend.core.errors import NotFound
from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.decisioning import service as svc


@dataclass(frozen=True)
class PolicyVersionView:
    id: int
    name: str
    content_hash: str
    status: str
    arm: str | None  # champion, challenger, shadow while in force
    author: str
    publisher: str | None
    created_at: datetime
    published_at: datetime | None
    environment: str = "draft"


def setup_or_none(uow: UnitOfWork, who: Principal) -> svc.PolicySetup | None:
    """The versions in force, or None for a bank that has not published a policy yet."""
    try:
        return svc.policy_setup(uow, who)
    except NotFound:
        return None


def arm_of(setup: svc.PolicySetup | None, content_hash: str, status: str) -> str | None:
    if setup is None or status != "published":
        return None
    if content_hash == setup.champion_hash:
        return "champion"
    if content_hash == setup.challenger_hash:
        return "shadow" if setup.challenger_shadow else "challenger"
    if content_hash == setup.shadow_hash:
        return "shadow"
    return None


def version_view(v: svc.PolicyVersion, setup: svc.PolicySetup | None) -> PolicyVersionView:
    return PolicyVersionView(id=v.id, name=v.name, content_hash=v.content_hash, status=v.status,
                             arm=arm_of(setup, v.content_hash, v.status), author=v.author, publisher=v.publisher,
                             created_at=v.created_at, published_at=v.published_at, environment=v.environment)


def versions_newest_first(uow: UnitOfWork, who: Principal) -> tuple[list[PolicyVersionView], svc.PolicySetup | None]:
    """Every version of the bank's policy, newest first, and the set-up in force."""
    versions = svc.list_versions(uow, who)
    setup = setup_or_none(uow, who)
    return [version_view(v, setup) for v in reversed(versions)], setup
