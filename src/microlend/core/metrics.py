"""What the platform measures about itself, as a port: the kernel and the modules report here what happened
(events committed, a job's run or failure, a provider's error), and the process's adapter decides where it
goes — the HTTP server exposes it to Prometheus at `/metrics` (`api/observability.py`). Without a sink
(a command, a test) nothing is recorded and nothing is imported.

Labels are small fixed vocabularies (a job's name, an event type, a provider, an exception class): never
an id, a name or anything a customer typed."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from microlend.core.events import DomainEvent

log = logging.getLogger(__name__)

#: The jobs reported by name.
CLOSE_OF_BUSINESS = "close_of_business"
EVENT_DELIVERY = "event_delivery"
MARKETING_DISPATCH = "marketing_dispatch"


class MetricsSink(Protocol):
    def events_committed(self, events: Sequence[DomainEvent]) -> None: ...

    def job_ran(self, job: str, seconds: float) -> None: ...

    def job_failed(self, job: str, count: int) -> None: ...

    def provider_error(self, provider: str, kind: str) -> None: ...


_sink: MetricsSink | None = None


def install(sink: MetricsSink | None) -> None:
    """Send this process's measurements to `sink` (None: stop recording)."""
    global _sink
    _sink = sink


def installed() -> MetricsSink | None:
    """The sink this process records to, if any."""
    return _sink


def _report(action: str, *args: object) -> None:
    """Hand a measurement to the sink; a failing sink never fails the work it measures."""
    if _sink is None:
        return
    try:
        getattr(_sink, action)(*args)
    except Exception:
        log.exception("the metrics sink could not record %s", action)


def events_committed(events: Sequence[DomainEvent]) -> None:
    """Events a unit of work has just committed (e.g. ApplicationDecided: the decisions by outcome)."""
    if events:
        _report("events_committed", events)


def job_ran(job: str, seconds: float) -> None:
    """One successful run of a job (a business date's close of business, a dispatch round) and how long."""
    _report("job_ran", job, seconds)


def job_failed(job: str, count: int = 1) -> None:
    """A job, or `count` items of its work (a handler's delivery, a message), failed."""
    if count > 0:
        _report("job_failed", job, count)


@contextmanager
def failures_counted(job: str, *, expected: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """An exception other than `expected` (the caller's own mistakes, e.g. a bad date) is a failure of `job`."""
    try:
        yield
    except expected:
        raise
    except Exception:
        job_failed(job)
        raise


@contextmanager
def timed_job(job: str, *, expected: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Time a job's run and count it as a failure if it raises something other than `expected`."""
    started = time.perf_counter()
    with failures_counted(job, expected=expected):
        yield
    job_ran(job, time.perf_counter() - started)


@contextmanager
def provider_call(provider: str) -> Iterator[None]:
    """Wrap a call to an external provider (the credit bureau, a data provider, a message sender): an error it
    raises is counted by provider and exception class, then raised as it was."""
    try:
        yield
    except Exception as exc:
        _report("provider_error", provider, type(exc).__name__)
        raise
