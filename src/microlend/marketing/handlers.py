"""What marketing does when something happened elsewhere, in the handler's own unit of work (registered in
`bootstrap.EVENT_HANDLERS`): a customer who should not be invited to borrow now gets none of the messages
still waiting in the outbox. Marketing knows these events only by the facts it reads from them."""

from __future__ import annotations

from typing import Protocol, cast

from sqlalchemy import Table, update

from microlend.core import audit
from microlend.core.identity import system_principal
from microlend.core.uow import UnitOfWork
from microlend.marketing.tables import OutboxRow

_OUTBOX = cast(Table, OutboxRow.__table__)


class CustomerEvent(Protocol):
    """An event about one customer of a bank (servicing's LoanBecameOverdue, origination's ApplicationDecided)."""

    @property
    def tenant_id(self) -> int: ...

    @property
    def event_id(self) -> str: ...

    @property
    def customer_id(self) -> int | None: ...


def suppress_for_overdue_borrower(uow: UnitOfWork, event: CustomerEvent) -> None:
    """A borrower who went past due is invited to borrow no more: the launch already leaves overdue customers
    out ("overdue"), and this holds back the messages scheduled before the loan fell behind."""
    _suppress_waiting(uow, event, "overdue")


def suppress_for_decided_applicant(uow: UnitOfWork, event: CustomerEvent) -> None:
    """A customer whose application was just decided gets no invitation to apply on top of the decision."""
    _suppress_waiting(uow, event, "applied")


def _suppress_waiting(uow: UnitOfWork, event: CustomerEvent, reason: str) -> None:
    """Scheduled messages to the customer become suppressed with the reason; nothing left to suppress (a
    second delivery of the same event) changes nothing."""
    if event.customer_id is None:  # a loan booked without a customer: nobody to hold messages back for
        return
    s = uow.session
    held = s.connection().execute(
        update(_OUTBOX)
        .where(_OUTBOX.c.tenant_id == event.tenant_id, _OUTBOX.c.customer_id == event.customer_id,
               _OUTBOX.c.status == "scheduled")
        .values(status="suppressed", suppressed_reason=reason)
    ).rowcount
    if held:
        audit.record(s, system_principal(event.tenant_id, "events"), "outbox.suppress", "customer",
                     event.customer_id, after={"reason": reason, "messages": held, "event_id": event.event_id})
