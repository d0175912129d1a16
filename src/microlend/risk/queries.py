"""Read functions other modules call about the bank's models: which model decides (its champion)."""

from __future__ import annotations

from typing import Any

from microlend.core.identity import Principal, system_principal
from microlend.core.uow import UnitOfWork
from microlend.risk.registry import ScoringRuntime

_runtime = ScoringRuntime()


def champion_model(uow: UnitOfWork, who: Principal) -> tuple[Any, str]:
    """The caller's bank's champion model (the one live decisions score with; for a new bank the expert
    micro-business scorecard) and its label (name and version); Conflict when the bank has none."""
    system = system_principal(who.tenant_id, "scoring")
    champion, _ = _runtime.in_use(uow, system)
    return _runtime.artefact(champion).model, champion.label
