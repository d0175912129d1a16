"""Domain events: collected during a unit of work and dispatched to subscribers after commit."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DomainEvent:
    """Base class; concrete events are frozen dataclasses carrying ids and facts, not objects."""

    tenant_id: int


Handler = Callable[[Any], None]
_handlers: dict[type[DomainEvent], list[Handler]] = defaultdict(list)


def subscribe(event_type: type[DomainEvent], handler: Handler) -> None:
    if handler not in _handlers[event_type]:
        _handlers[event_type].append(handler)


def dispatch(events: list[DomainEvent]) -> None:
    """Deliver events in order; a failing handler is logged and does not undo the committed work."""
    for evt in events:
        for etype, handlers in list(_handlers.items()):
            if isinstance(evt, etype):
                for handler in handlers:
                    try:
                        handler(evt)
                    except Exception:  # a listener's failure must not break the publisher
                        log.exception("event handler %s failed for %s", handler, type(evt).__name__)
