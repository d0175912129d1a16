"""An event stored in the outbox comes back exactly as it was published; the registry in bootstrap names
real events and handlers."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum

import pytest

from microlend.bootstrap import EVENT_HANDLERS, register_handlers
from microlend.core.events import DomainEvent, EventHandlers, from_payload, handler_name, to_payload
from microlend.origination.events import ApplicationDecided
from microlend.servicing.events import LoanBecameOverdue, LoanClassChanged, RepaymentPosted


class Colour(StrEnum):
    RED = "red"


@dataclass(frozen=True)
class EveryKind(DomainEvent):
    on: date
    at: datetime
    amount: Decimal
    rate: Decimal
    maybe: Decimal | None
    missing: int | None
    flag: bool
    codes: tuple[str, ...]
    colour: Colour


def stored(event: DomainEvent) -> DomainEvent:
    """Through JSON text, as the outbox keeps it, and back."""
    payload = json.loads(json.dumps(to_payload(event), sort_keys=True))
    return from_payload(type(event), payload, event.event_id)


def test_dates_decimals_and_the_rest_round_trip_exactly() -> None:
    event = EveryKind(3, on=date(2026, 2, 28), at=datetime(2026, 2, 28, 23, 59, 59, 123456, tzinfo=UTC),
                      amount=Decimal("888.10"), rate=Decimal("-0.000100"), maybe=None, missing=None, flag=True,
                      codes=("A1", "B2"), colour=Colour.RED)
    back = stored(event)
    assert back == event and back.event_id == event.event_id
    for f in fields(event):
        value = getattr(back, f.name)
        assert type(value) is type(getattr(event, f.name)), f.name
    assert str(back.amount) == "888.10" and str(back.rate) == "-0.000100"  # the exponent survives too
    assert to_payload(event)["amount"] == "888.10"


def test_the_published_events_round_trip() -> None:
    events: list[DomainEvent] = [
        RepaymentPosted(1, 2, 3, 4, "repayment", Decimal("100.05"), date(2026, 1, 15)),
        LoanClassChanged(1, 2, date(2026, 5, 1), "special_mention", "substandard", 91),
        LoanBecameOverdue(1, 2, date(2026, 2, 16), 1, customer_id=9),
        ApplicationDecided(1, 5, 6, "approved", True, None, datetime(2026, 1, 1, 8, tzinfo=UTC), Decimal("5000")),
    ]
    for event in events:
        assert stored(event) == event


def test_an_event_field_must_be_a_plain_value() -> None:
    @dataclass(frozen=True)
    class Floaty(DomainEvent):
        amount: float

    with pytest.raises(TypeError, match="cannot hold float"):
        to_payload(Floaty(1, 0.1))


def test_every_listed_handler_exists_and_takes_a_unit_of_work_and_the_event() -> None:
    handlers = EventHandlers()
    register_handlers(handlers)
    assert len(handlers.pairs()) == len(EVENT_HANDLERS)
    for event_type, name in handlers.pairs():
        assert issubclass(handlers.event_type(event_type), DomainEvent)
        handler = handlers.handler(name)
        assert handler_name(handler) == name
        assert list(inspect.signature(handler).parameters) == ["uow", "event"]
    subscribed = {t for t, _ in handlers.pairs()}
    assert {"RepaymentPosted", "LoanClassChanged", "LoanBecameOverdue", "ApplicationDecided"} <= subscribed


def test_a_registry_knows_only_what_was_registered() -> None:
    handlers = EventHandlers()
    with pytest.raises(LookupError, match=r"no event handler named x\.y"):
        handlers.handler("x.y")
    with pytest.raises(LookupError, match="no event type named Nope"):
        handlers.event_type("Nope")
    with pytest.raises(TypeError):
        handlers.register(int, lambda u, e: None)  # type: ignore[type-var]
