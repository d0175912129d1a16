"""What servicing reads from modules above it, through ports the composition root connects
(`bootstrap.PORTS`): servicing may not import origination. A bank without origination leaves them unset."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork

#: (uow, who, application ids) -> {application id: customer id} for the caller's bank's applications
ApplicationCustomers = Callable[[UnitOfWork, Principal, Sequence[int]], dict[int, int]]


@dataclass
class OriginationPorts:
    application_customers: ApplicationCustomers | None = None


origination = OriginationPorts()


def connect_origination(*, application_customers: ApplicationCustomers | None) -> None:
    """Connect the ports (the composition root does this once at start-up)."""
    origination.application_customers = application_customers


def application_customer(uow: UnitOfWork, who: Principal, application_id: int) -> int | None:
    """The customer of the caller's bank's application, or None when the bank has no such application."""
    if origination.application_customers is None:
        return None
    return origination.application_customers(uow, who, [application_id]).get(application_id)
