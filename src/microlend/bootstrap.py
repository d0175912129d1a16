"""Wires the modules together: every table mapped, every tenant-setup hook registered, every event handler
subscribed, every port connected, every router and CLI group known. Adapters call `load_modules()` once at start-up."""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from microlend.core import events, references
from microlend.core.events import EventHandlers

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from microlend.core.tables import TenantRow
    from microlend.core.tenancy import TenantSetup

#: Modules with tables (order matters only for readability; foreign keys resolve by name).
TABLE_MODULES = [
    "microlend.core.tables",
    "microlend.core.job_tables",
    "microlend.core.delivery_tables",
    "microlend.parties.tables",
    "microlend.origination.tables",
    "microlend.servicing.tables",
    "microlend.servicing.reminder_tables",
    "microlend.servicing.collection_tables",
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

#: Who reacts to which event: ("module:EventType", "module:handler"). A handler is a plain function
#: `handler(uow, event) -> None` in the module that reacts; it runs after the publisher's commit, in its own
#: unit of work, once per event id (core.outbox keeps and retries the deliveries).
EVENT_HANDLERS: list[tuple[str, str]] = [
    ("microlend.servicing.events:RepaymentPosted", "microlend.servicing.handlers:record_repayment"),
    ("microlend.servicing.events:LoanClassChanged", "microlend.servicing.handlers:audit_class_change"),
    ("microlend.servicing.events:LoanClassChanged", "microlend.servicing.handlers:record_class_change"),
    ("microlend.servicing.events:LoanBecameOverdue", "microlend.marketing.handlers:suppress_for_overdue_borrower"),
    ("microlend.servicing.events:RepaymentPosted", "microlend.servicing.service.reminders:queue_receipt"),
    ("microlend.servicing.events:LoanBecameOverdue", "microlend.servicing.service.collecting:open_case_on_overdue"),
    ("microlend.servicing.events:LoanBucketChanged", "microlend.servicing.service.collecting:follow_bucket"),
    ("microlend.servicing.events:LoanRepaid", "microlend.servicing.service.collecting:close_on_repaid"),
    ("microlend.servicing.events:LoanWrittenOff", "microlend.servicing.service.collecting:close_on_write_off"),
    ("microlend.origination.events:ApplicationDecided", "microlend.marketing.handlers:suppress_for_decided_applicant"),
]

#: Ports through which a module reads a module it may not import (marketing is not above origination or
#: servicing): ("module:connect", {keyword: "module:query function"}). A bank without the providing module
#: leaves its ports unconnected.
PORTS: list[tuple[str, dict[str, str]]] = [
    ("microlend.servicing.ports:connect_origination", {
        "application_customers": "microlend.origination.queries:application_customers",
    }),
    ("microlend.marketing.sources:connect_lending", {
        "application_steps": "microlend.origination.queries:application_steps",
        "worst_days_past_due": "microlend.servicing.queries:worst_days_past_due",
        "credit_facts": "microlend.origination.queries:preapproval_credit_facts",
    }),
    ("microlend.decisioning.ports:connect_lending", {
        "loss_given_default": "microlend.servicing.queries:loss_given_default",
        "product_prices": "microlend.servicing.queries:product_prices",
        "operating_cost_per_loan": "microlend.origination.queries:operating_cost_per_loan",
    }),
    ("microlend.decisioning.ports:connect_early_warning", {
        "book": "microlend.origination.early_warning:book_facts",
    }),
]

#: The kinds of object a request may name by id in its body or query, and the query function of the module that
#: owns them telling which ids are the caller's bank's (core.references; the API resolves every such id).
REFERENCES: list[tuple[str, str]] = [
    ("user", "microlend.core.tenancy:users_of_bank"),
    ("customer", "microlend.parties.queries:of_this_bank"),
    ("application", "microlend.origination.queries:of_this_bank"),
    ("campaign", "microlend.marketing.queries:campaigns_of_this_bank"),
    ("preapproval_run", "microlend.marketing.queries:runs_of_this_bank"),
]

#: FastAPI routers: (module, attribute).
ROUTERS = [
    ("microlend.api.routers.auth", "router"),
    ("microlend.api.routers.audit", "router"),
    ("microlend.api.routers.origination", "router"),
    ("microlend.api.routers.origination", "applications_router"),
    ("microlend.api.routers.signing", "router"),
    ("microlend.api.routers.exposure", "router"),
    ("microlend.api.routers.exposure", "links_router"),
    ("microlend.api.routers.exposure", "settings_router"),
    ("microlend.api.routers.unit_cost", "router"),
    ("microlend.api.routers.servicing", "router"),
    ("microlend.api.routers.write_offs", "router"),
    ("microlend.api.routers.restructures", "router"),
    ("microlend.api.routers.reports", "router"),
    ("microlend.api.routers.decisioning", "router"),
    ("microlend.api.routers.limit_desk", "router"),
    ("microlend.api.routers.early_warning", "router"),
    ("microlend.api.routers.reason_codes", "router"),
    ("microlend.api.routers.data", "router"),
    ("microlend.api.routers.data", "accounts_router"),
    ("microlend.api.routers.data_providers", "router"),
    ("microlend.api.routers.risk", "router"),
    ("microlend.api.routers.marketing", "router"),
    ("microlend.api.routers.marketing", "tracking_router"),
    ("microlend.api.routers.messages", "router"),
    ("microlend.api.routers.jobs", "router"),
    ("microlend.api.routers.portfolio", "router"),
    ("microlend.api.routers.collections", "router"),
]


#: Page modules: each has a `router` and a `NAV` list of (path, label msgid, permission) for the menu.
WEB_PAGES = [
    "microlend.web.pages",
    "microlend.web.home",
    "microlend.web.workbench",
    "microlend.web.assisted",
    "microlend.web.borrower",
    "microlend.web.analyst",
    "microlend.web.marketing",
    "microlend.web.policies",
    "microlend.web.limit_desk",
    "microlend.web.early_warning",
    "microlend.web.reason_codes",
    "microlend.web.table_editor",
    "microlend.web.operations",
    "microlend.web.portfolio",
    "microlend.web.reports",
    "microlend.web.restructuring",
    "microlend.web.collections",
]


@lru_cache(maxsize=1)
def load_modules() -> None:
    from microlend.core.tenancy import register_tenant_setup

    for name in TABLE_MODULES:
        importlib.import_module(name)
    for name in SETUP_MODULES:
        register_tenant_setup(_deferred_setup(name))
    register_handlers(events.registry)
    for connect, providers in PORTS:
        _attribute(connect)(**{keyword: _attribute(provider) for keyword, provider in providers.items()})
    for kind, resolver in REFERENCES:
        references.register(kind, _attribute(resolver))


def register_handlers(handlers: EventHandlers, pairs: list[tuple[str, str]] | None = None) -> None:
    """Subscribe the listed handlers (default: `EVENT_HANDLERS`) in a registry."""
    for event_type, handler in EVENT_HANDLERS if pairs is None else pairs:
        handlers.register(_attribute(event_type), _attribute(handler))


def _attribute(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _deferred_setup(module: str) -> TenantSetup:
    """A setup hook that imports its module only when a bank is created (some pull in model libraries)."""

    def setup(session: Session, tenant: TenantRow) -> None:
        importlib.import_module(module).setup_tenant(session, tenant)

    setup.__qualname__ = f"setup_tenant[{module}]"
    return setup
