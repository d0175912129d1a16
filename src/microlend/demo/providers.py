"""The demo bank's external data: the provider sandboxes in a process of their own, and the bank's six
providers pointed at them (as an administrator would set them up: address, API key, cost per call).

The demo's assumptions, in CNY per call: a credit report 1.50, tax declarations 1.00, e-invoices 0.80, merchant
flows 0.50, a registry extract 0.20, an enforcement search 0.10 (what a small bank pays a data vendor, roughly).

The sandbox world is built around an anchor day; the demo pins it to the day the bank was created (stored with
the bank), so the same customers keep the same sales, invoices and court cases every time the demo starts,
whatever the day and port of the sandbox process.

While the demo lives its history, the sandbox answers in the seeding's own process (`in_process`): the bank's
gateway sends the same requests through an httpx transport instead of a socket, so its months of calls cost what
building the answers costs, not a round trip and a wait each.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date
from decimal import Decimal

from sqlalchemy import select

from microlend.core.identity import Principal, Role
from microlend.core.tables import TenantRow, UserRow
from microlend.core.uow import UnitOfWork
from microlend.data.gateway import Gateway
from microlend.data.provider_service import ProviderChanges, provider_settings, set_provider
from microlend.demo.sandbox.app import SandboxOptions
from microlend.demo.sandbox.process import SandboxProcess, start_sandbox
from microlend.demo.sandbox.transport import IN_PROCESS_URL, SandboxTransport
from microlend.demo.sandbox.world import CHINA
from microlend.origination import business_data

SANDBOX_KEY = "sandbox"
#: What each call costs the demo bank (CNY): the demo's assumption.
COST_PER_CALL: dict[str, Decimal] = {
    "bureau": Decimal("1.50"),
    "tax": Decimal("1.00"),
    "einvoice": Decimal("0.80"),
    "merchant": Decimal("0.50"),
    "registry": Decimal("0.20"),
    "enforcement": Decimal("0.10"),
}
#: Sandbox latency of a fast sandbox process (tests, benches) and while the demo serves; the history is lived
#: against the sandbox in process, with none.
FAST_LATENCY_MS = (5, 40)
SERVING_LATENCY_MS = (50, 300)


def anchor_of(uow: UnitOfWork, tenant_id: int) -> date:
    """The sandbox anchor of a bank: the day it was created (in the bank's time zone)."""
    with uow.read_only():
        created = uow.session.execute(select(TenantRow.created_at).where(TenantRow.id == tenant_id)).scalar_one()
    aware = created if created.tzinfo is not None else created.replace(tzinfo=UTC)
    return aware.astimezone(CHINA).date()


def start(anchor: date, latency_ms: tuple[int, int] = FAST_LATENCY_MS) -> SandboxProcess:
    """The sandbox in a process of its own on a free loopback port."""
    return start_sandbox(0, anchor=anchor, latency_ms=latency_ms, keys=(SANDBOX_KEY,))


@contextmanager
def in_process(anchor: date, latency_ms: tuple[int, int] = (0, 0)) -> Iterator[str]:
    """Within the block, decisions and the worker's jobs in this process gather their external data from the
    sandbox answering in process; yields the address to `connect` the bank's providers to."""
    gateway = Gateway(transport=SandboxTransport(SandboxOptions(anchor=anchor, latency_ms=latency_ms,
                                                                keys=(SANDBOX_KEY,))))
    business_data.set_gateway(gateway)
    try:
        yield IN_PROCESS_URL
    finally:
        business_data.set_gateway(None)
        gateway.close()


def _admin(uow: UnitOfWork, tenant_id: int) -> Principal:
    with uow.read_only():
        row = uow.session.execute(
            select(UserRow).where(UserRow.tenant_id == tenant_id, UserRow.username == "admin@demo")
        ).scalar_one()
        return Principal(
            user_id=row.id, tenant_id=tenant_id, username=row.username, roles=frozenset(Role(r) for r in row.roles)
        )


def connect(uow: UnitOfWork, tenant_id: int, base_url: str) -> int:
    """Point the bank's six providers at `base_url` (audited changes; a kind already there is left alone).
    Returns how many kinds were changed."""
    admin = _admin(uow, tenant_id)
    current = {s.kind: s for s in provider_settings(uow, admin)}
    changed = 0
    for kind, cost in COST_PER_CALL.items():
        now = current.get(kind)
        if (
            now is not None
            and now.configured
            and now.base_url == base_url.rstrip("/")
            and now.api_key_set
            and now.cost_per_call == cost
            and now.enabled
        ):
            continue
        set_provider(
            uow,
            admin,
            kind,
            ProviderChanges(base_url=base_url, api_key=SANDBOX_KEY, cost_per_call=cost, enabled=True),
        )
        changed += 1
    return changed
