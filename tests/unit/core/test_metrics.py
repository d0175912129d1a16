"""The metrics port: committed events, job runs and failures, provider errors reach the installed sink; a
failing sink never fails the work, and without a sink nothing happens."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Engine

from microlend.core import metrics
from microlend.core.db import make_engine, make_session_factory
from microlend.core.errors import ValidationError
from microlend.core.events import DomainEvent, EventHandlers
from microlend.core.tables import EventOutboxRow
from microlend.core.uow import UnitOfWork


@dataclass(frozen=True)
class Thing(DomainEvent):
    what: str


@dataclass
class FakeSink:
    events: list[str] = field(default_factory=list)
    runs: list[tuple[str, float]] = field(default_factory=list)
    failures: list[tuple[str, int]] = field(default_factory=list)
    provider_errors: list[tuple[str, str]] = field(default_factory=list)

    def events_committed(self, events: Sequence[DomainEvent]) -> None:
        self.events.extend(type(e).__name__ for e in events)

    def job_ran(self, job: str, seconds: float) -> None:
        self.runs.append((job, seconds))

    def job_failed(self, job: str, count: int) -> None:
        self.failures.append((job, count))

    def provider_error(self, provider: str, kind: str) -> None:
        self.provider_errors.append((provider, kind))


class BrokenSink(FakeSink):
    def job_ran(self, job: str, seconds: float) -> None:
        raise RuntimeError("the metrics backend is down")


@pytest.fixture
def sink() -> Iterator[FakeSink]:
    fake, before = FakeSink(), metrics.installed()
    metrics.install(fake)
    yield fake
    metrics.install(before)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    EventOutboxRow.__table__.create(eng)
    yield eng
    eng.dispose()


def test_a_commit_reports_its_events_and_a_rollback_none(sink: FakeSink, engine: Engine) -> None:
    uow = UnitOfWork(make_session_factory(engine), handlers=EventHandlers())
    with uow:
        uow.publish(Thing(1, "a"))
    assert sink.events == []
    with uow:
        uow.publish(Thing(1, "b"))
        uow.commit()
    assert sink.events == ["Thing"]


def test_a_failing_event_handler_counts_as_a_failed_delivery(sink: FakeSink, engine: Engine) -> None:
    handlers = EventHandlers()

    def explode(_: UnitOfWork, event: Thing) -> None:
        raise RuntimeError(f"cannot handle {event.what}")

    handlers.register(Thing, explode)
    uow = UnitOfWork(make_session_factory(engine), handlers=handlers)
    with uow:
        uow.publish(Thing(1, "x"))
        uow.commit()
    assert sink.failures == [(metrics.EVENT_DELIVERY, 1)]


def test_a_timed_job_reports_its_run_or_its_failure_but_not_a_users_mistake(sink: FakeSink) -> None:
    with metrics.timed_job("nightly"):
        pass
    assert [job for job, _ in sink.runs] == ["nightly"] and sink.runs[0][1] >= 0
    with pytest.raises(RuntimeError), metrics.timed_job("nightly", expected=(ValidationError,)):
        raise RuntimeError("disk full")
    with pytest.raises(ValidationError), metrics.timed_job("nightly", expected=(ValidationError,)):
        raise ValidationError("date: not a business date")
    assert sink.failures == [("nightly", 1)]
    assert len(sink.runs) == 1
    metrics.job_failed("nightly", 0)
    assert sink.failures == [("nightly", 1)]


def test_a_provider_error_is_counted_and_raised_as_it_was(sink: FakeSink) -> None:
    with pytest.raises(TimeoutError), metrics.provider_call("credit_bureau"):
        raise TimeoutError("bureau did not answer")
    with metrics.provider_call("credit_bureau"):
        pass
    assert sink.provider_errors == [("credit_bureau", "TimeoutError")]


def test_a_broken_sink_never_fails_the_work(sink: FakeSink, caplog: pytest.LogCaptureFixture) -> None:
    metrics.install(BrokenSink())
    with metrics.timed_job("nightly"):
        done = True
    assert done and "could not record job_ran" in caplog.text


def test_without_a_sink_nothing_is_recorded(sink: FakeSink) -> None:
    metrics.install(None)
    with metrics.timed_job("nightly"), metrics.provider_call("bureau"):
        metrics.job_failed("nightly")
    assert metrics.installed() is None and sink.runs == [] and sink.failures == []
