"""Domain events: facts a use case records in its unit of work, kept in the event outbox with its commit and
then handed to every subscribed handler, each in its own unit of work (see `core.outbox`).

A handler is a plain function `handler(uow, event) -> None` in the module that reacts; `bootstrap.py` lists
who reacts to what and registers the pairs here. Events are frozen dataclasses of plain values (ids, dates,
Decimals, strings), so they are stored as JSON and come back exactly as they were published."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from microlend.core.uow import UnitOfWork


def new_event_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class DomainEvent:
    """Base class; concrete events are frozen dataclasses carrying ids and facts, not objects.

    `event_id` identifies one occurrence: a handler that may see an event twice (a retry after a crash)
    uses it to apply its effect once. It takes no part in equality, which compares the facts."""

    tenant_id: int
    event_id: str = field(default_factory=new_event_id, kw_only=True, compare=False, repr=False)


E = TypeVar("E", bound=DomainEvent)
Handler = Callable[["UnitOfWork", Any], None]


def handler_name(handler: Callable[..., object]) -> str:
    """The name a delivery is stored under: the handler's module and qualified name."""
    return f"{handler.__module__}.{handler.__qualname__}"


class EventHandlers:
    """Who reacts to which event type. Handlers and event types are known by name, because deliveries are
    stored and may run in another process; registering a name again replaces what it stood for."""

    def __init__(self) -> None:
        self._by_type: dict[str, list[str]] = {}
        self._handlers: dict[str, Handler] = {}
        self._types: dict[str, type[DomainEvent]] = {}

    def register(self, event_type: type[E], handler: Callable[[UnitOfWork, E], None]) -> None:
        if not (isinstance(event_type, type) and issubclass(event_type, DomainEvent)):
            raise TypeError(f"{event_type!r} is not a DomainEvent class")
        type_name, name = event_type.__name__, handler_name(handler)
        self._types[type_name] = event_type
        self._handlers[name] = handler
        names = self._by_type.setdefault(type_name, [])
        if name not in names:
            names.append(name)

    def unregister(self, event_type: type[DomainEvent], handler: Callable[..., None]) -> None:
        names = self._by_type.get(event_type.__name__, [])
        if handler_name(handler) in names:
            names.remove(handler_name(handler))

    def handlers_for(self, event: DomainEvent) -> list[str]:
        """Names of the handlers of this event's type, in registration order."""
        return list(self._by_type.get(type(event).__name__, ()))

    def handler(self, name: str) -> Handler:
        try:
            return self._handlers[name]
        except KeyError:
            raise LookupError(f"no event handler named {name} is registered") from None

    def event_type(self, name: str) -> type[DomainEvent]:
        try:
            return self._types[name]
        except KeyError:
            raise LookupError(f"no event type named {name} is registered") from None

    def pairs(self) -> list[tuple[str, str]]:
        """Every (event type, handler) pair, by name."""
        return [(t, h) for t, names in self._by_type.items() for h in names]


#: The handlers of this process, filled by `bootstrap.load_modules()`.
registry = EventHandlers()


def subscribe(event_type: type[E], handler: Callable[[UnitOfWork, E], None]) -> None:
    """Register a handler in this process's registry (bootstrap does it for the modules' handlers)."""
    registry.register(event_type, handler)


# ------------------------------------------------------------------------------------------ payloads


def to_payload(event: DomainEvent) -> dict[str, Any]:
    """The event's facts as JSON values: dates and datetimes in ISO form, Decimals as their exact string."""
    return {f.name: _encode(getattr(event, f.name)) for f in dataclasses.fields(event) if f.name != "event_id"}


def from_payload(event_type: type[E], payload: dict[str, Any], event_id: str) -> E:
    """The event `to_payload` was made from, field for field (the field types say how to read each value)."""
    hints = typing.get_type_hints(event_type)
    values = {
        f.name: _decode(hints[f.name], payload[f.name])
        for f in dataclasses.fields(event_type)
        if f.name != "event_id" and f.name in payload
    }
    return event_type(**values, event_id=event_id)


def _encode(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return _encode(value.value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    raise TypeError(f"an event field cannot hold {type(value).__name__}: use ids, dates, Decimals or strings")


def _decode(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _decode(options[0], value) if len(options) == 1 else value
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return tuple(_decode(item, v) for v in value)
    if hint is datetime:
        return datetime.fromisoformat(value)
    if hint is date:
        return date.fromisoformat(value)
    if hint is Decimal:
        return Decimal(value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    return value
