"""Wires the modules together: every table mapped, every tenant-setup hook registered, every router
and CLI group known. Adapters call `load_modules()` once at start-up."""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from microlend.core.tables import TenantRow
    from microlend.core.tenancy import TenantSetup

#: Modules with tables (order matters only for readability; foreign keys resolve by name).
TABLE_MODULES = [
    "microlend.core.tables",
    "microlend.parties.tables",
    "microlend.origination.tables",
    "microlend.servicing.tables",
    "microlend.data.tables",
    "microlend.risk.tables",
    "microlend.decisioning.tables",
    "microlend.marketing.tables",
]

#: Modules exposing `setup_tenant(session, tenant_row)`: the defaults a new bank moves in with.
SETUP_MODULES: list[str] = [
    "microlend.servicing.service",     # chart of accounts and the product catalogue
    "microlend.risk.registry",         # the starter scorecard as champion
    "microlend.decisioning.tenant_setup",  # the default micro-loan policy, published
]

#: FastAPI routers: (module, attribute).
ROUTERS = [
    ("microlend.api.auth", "router"),
    ("microlend.api.audit", "router"),
    ("microlend.origination.api", "router"),
    ("microlend.origination.api", "applications_router"),
    ("microlend.servicing.api", "router"),
    ("microlend.decisioning.api", "router"),
    ("microlend.data.api", "router"),
    ("microlend.risk.api", "router"),
    ("microlend.marketing.api", "router"),
    ("microlend.marketing.api", "tracking_router"),
]


#: Page modules: each has a `router` and a `NAV` list of (path, label msgid, permission) for the menu.
WEB_PAGES = [
    "microlend.web.pages",
    "microlend.web.workbench",
    "microlend.web.borrower",
    "microlend.web.analyst",
    "microlend.web.marketing",
    "microlend.web.policies",
]


@lru_cache(maxsize=1)
def load_modules() -> None:
    from microlend.core.tenancy import register_tenant_setup

    for name in TABLE_MODULES:
        importlib.import_module(name)
    for name in SETUP_MODULES:
        register_tenant_setup(_deferred_setup(name))


def _deferred_setup(module: str) -> TenantSetup:
    """A setup hook that imports its module only when a bank is created (some pull in model libraries)."""

    def setup(session: Session, tenant: TenantRow) -> None:
        importlib.import_module(module).setup_tenant(session, tenant)

    setup.__qualname__ = f"setup_tenant[{module}]"
    return setup
