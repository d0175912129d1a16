"""Every decisioning use case checks the caller's permission and tenant, and changes nothing when refused."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from microlend.core.errors import NotFound, PermissionDenied
from microlend.core.identity import Principal, Role
from microlend.core.tables import AuditRow
from microlend.core.tenancy import Tenant
from microlend.core.uow import UnitOfWork
from microlend.decisioning import service
from microlend.decisioning.domain import DecisionInput
from microlend.decisioning.policy import default_policy, policy_hash
from microlend.decisioning.tables import DecisionRow, PolicyVersionRow

DEFAULT = default_policy()
INPUT = DecisionInput.from_canonical(DEFAULT["test_base"])


def renamed() -> dict[str, Any]:
    doc = copy.deepcopy(DEFAULT)
    doc["metadata"]["name"] = "renamed"
    return doc


CALLS: dict[str, Callable[[UnitOfWork, Principal], object]] = {
    "save_draft": lambda uow, who: service.save_draft(uow, who, renamed()),
    "submit": lambda uow, who: service.submit(uow, who, renamed()),
    "publish": lambda uow, who: service.publish(uow, who, policy_hash(DEFAULT)),
    "stop_challenger": lambda uow, who: service.stop_challenger(uow, who),
    "active_policy": lambda uow, who: service.active_policy(uow, who),
    "policy_content": lambda uow, who: service.policy_content(uow, who, policy_hash(DEFAULT)),
    "list_versions": lambda uow, who: service.list_versions(uow, who),
    "decide": lambda uow, who: service.decide(uow, who, INPUT),
    "get_decision": lambda uow, who: service.get_decision(uow, who, 1),
    "replay": lambda uow, who: service.replay(uow, who, 1),
    "arm_summary": lambda uow, who: service.arm_summary(uow, who),
}


def counts(uow: UnitOfWork) -> tuple[int, int, int]:
    with uow:
        s = uow.session
        return tuple(
            int(s.execute(select(func.count()).select_from(t)).scalar_one())  # type: ignore[return-value]
            for t in (AuditRow, PolicyVersionRow, DecisionRow)
        )


@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_marketer_may_use_no_decisioning_use_case(name: str, uow: UnitOfWork, bank: Tenant) -> None:
    marketer = Principal(user_id=40, tenant_id=bank.id, username="m", roles=frozenset({Role.MARKETER}))
    before = counts(uow)
    with pytest.raises(PermissionDenied):
        CALLS[name](uow, marketer)
    assert counts(uow) == before


def test_another_banks_policy_version_cannot_be_published_or_read(
    uow: UnitOfWork, bank: Tenant, other_bank: Tenant
) -> None:
    author = Principal(user_id=41, tenant_id=bank.id, username="a", roles=frozenset({Role.RISK_ANALYST}))
    version = service.submit(uow, author, renamed())
    outsider = Principal(user_id=42, tenant_id=other_bank.id, username="o", roles=frozenset({Role.RISK_ANALYST}))
    before = counts(uow)
    with pytest.raises(NotFound):
        service.publish(uow, outsider, version.content_hash)
    with pytest.raises(NotFound):
        service.policy_content(uow, outsider, version.content_hash)
    assert counts(uow) == before
    assert [v.name for v in service.list_versions(uow, outsider)] == ["default_micro_loan"]
