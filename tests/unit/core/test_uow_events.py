"""Domain events are kept in the outbox by the commit that published them and reach each handler after it,
in the handler's own unit of work; a failing handler is retried later and never undoes the commit."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, func, insert, select

from microlend.core import outbox
from microlend.core.clock import utcnow
from microlend.core.db import make_engine, make_session_factory
from microlend.core.events import DomainEvent, EventHandlers, handler_name
from microlend.core.tables import AuditHeadRow, AuditRow, EventOutboxRow
from microlend.core.uow import UnitOfWork

scratch = MetaData()
things = Table("things", scratch, Column("id", Integer, primary_key=True), Column("what", String(50)))
effects = Table("effects", scratch, Column("id", Integer, primary_key=True), Column("event_id", String(32)),
                Column("by", String(50)))


@dataclass(frozen=True)
class SomethingHappened(DomainEvent):
    what: str


@dataclass(frozen=True)
class Boom(DomainEvent):
    what: str


@dataclass(frozen=True)
class Nobody(DomainEvent):
    """An event no handler subscribes to."""


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'events.db'}")
    for table in (EventOutboxRow, AuditRow, AuditHeadRow):  # requeueing failed deliveries is audited
        table.__table__.create(eng)
    scratch.create_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def handlers() -> EventHandlers:
    return EventHandlers()


def new_uow(engine: Engine, handlers: EventHandlers) -> UnitOfWork:
    return UnitOfWork(make_session_factory(engine), handlers=handlers)


def outbox_rows(engine: Engine) -> list[EventOutboxRow]:
    with UnitOfWork(make_session_factory(engine)) as u:
        return list(u.session.execute(select(EventOutboxRow).order_by(EventOutboxRow.id)).scalars())


def count(engine: Engine, table: Table) -> int:
    with engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(table)).scalar_one())


def effect(by: str) -> Callable[[UnitOfWork, DomainEvent], None]:
    """A handler whose effect is a row in `effects`, written in the unit of work it is given."""

    def handle(uow: UnitOfWork, event: DomainEvent) -> None:
        uow.session.execute(insert(effects).values(event_id=event.event_id, by=by))

    handle.__qualname__ = f"effect[{by}]"
    return handle


def test_events_are_delivered_after_commit_and_dropped_on_rollback(engine: Engine, handlers: EventHandlers) -> None:
    seen: list[tuple[str, UnitOfWork]] = []
    handlers.register(SomethingHappened, lambda u, e: seen.append((e.what, u)))
    uow = new_uow(engine, handlers)
    with uow:
        uow.session.execute(insert(things).values(what="rolled back"))
        uow.publish(SomethingHappened(tenant_id=1, what="rolled back"))
    assert outbox_rows(engine) == []
    with uow:
        uow.publish(SomethingHappened(tenant_id=1, what="committed"))
        assert seen == []
        uow.commit()
    assert [what for what, _ in seen] == ["committed"]
    assert seen[0][1] is not uow  # the handler ran in a unit of work of its own
    [row] = outbox_rows(engine)
    assert (row.tenant_id, row.event_type, row.status, row.attempts) == (1, "SomethingHappened", "done", 1)
    assert row.payload == {"tenant_id": 1, "what": "committed"}
    assert row.delivered_at is not None


def test_an_event_nobody_subscribes_to_writes_nothing(engine: Engine, handlers: EventHandlers) -> None:
    uow = new_uow(engine, handlers)
    with uow:
        uow.publish(Nobody(tenant_id=1))
        uow.commit()
    assert outbox_rows(engine) == []


def test_a_failing_listener_does_not_undo_the_commit(
    engine: Engine, handlers: EventHandlers, caplog: pytest.LogCaptureFixture
) -> None:
    broken = [True]

    def explode(uow: UnitOfWork, event: Boom) -> None:
        uow.session.execute(insert(effects).values(event_id=event.event_id, by="explode"))
        if broken[0]:
            raise RuntimeError("listener failed")

    handlers.register(Boom, explode)
    uow = new_uow(engine, handlers)
    with caplog.at_level(logging.ERROR, logger="microlend.core.outbox"), uow:
        uow.session.execute(insert(things).values(what="kept"))
        uow.publish(Boom(tenant_id=1, what="kept"))
        uow.commit()  # no exception escapes
    with engine.connect() as c:
        assert c.execute(select(things.c.what)).scalars().all() == ["kept"]
    assert count(engine, effects) == 0  # the failed handler's own writes were rolled back
    [row] = outbox_rows(engine)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error == "RuntimeError: listener failed"
    assert row.next_attempt_at > utcnow()  # backs off before the next try
    assert handler_name(explode) in caplog.text and "listener failed" in caplog.text

    assert outbox.deliver_due(new_uow(engine, handlers)) == outbox.DeliveryReport()  # not due yet
    broken[0] = False
    report = outbox.deliver_due(new_uow(engine, handlers), now=utcnow() + timedelta(minutes=1))
    assert report == outbox.DeliveryReport(done=1)
    [row] = outbox_rows(engine)
    assert (row.status, row.attempts) == ("done", 2)
    with engine.connect() as c:
        assert c.execute(select(effects.c.event_id)).scalars().all() == [row.event_id]


def test_a_handler_that_keeps_failing_is_marked_failed_and_can_be_given_another_round(
    engine: Engine, handlers: EventHandlers
) -> None:
    def explode(uow: UnitOfWork, event: Boom) -> None:
        raise ValueError(f"cannot handle {event.what}")

    handlers.register(Boom, explode)
    uow = new_uow(engine, handlers)
    with uow:
        uow.publish(Boom(tenant_id=7, what="this"))
        uow.commit()
    later = utcnow()
    for _ in range(outbox.MAX_ATTEMPTS + 2):
        later += outbox.LONGEST_WAIT
        outbox.deliver_due(uow, now=later)
    [row] = outbox_rows(engine)
    assert (row.status, row.attempts) == ("failed", outbox.MAX_ATTEMPTS)
    [failed] = outbox.list_deliveries(uow, status="failed", tenant_id=7)
    assert (failed.event_type, failed.handler, failed.last_error) == ("Boom", handler_name(explode),
                                                                        "ValueError: cannot handle this")
    assert outbox.list_deliveries(uow, status="failed", tenant_id=8) == []
    assert outbox.counts(uow) == {"pending": 0, "done": 0, "failed": 1}

    fixed = effect("fixed")
    fixed.__qualname__ = explode.__qualname__  # the same handler, its bug fixed in a new release
    handlers.register(Boom, fixed)
    assert outbox.requeue_failed(uow) == 1
    assert outbox.deliver_due(uow) == outbox.DeliveryReport(done=1)
    assert outbox.counts(uow) == {"pending": 0, "done": 1, "failed": 0}
    assert count(engine, effects) == 1


def test_each_handler_is_its_own_delivery(engine: Engine, handlers: EventHandlers) -> None:
    calls: list[str] = []
    broken = [True]

    def steady(uow: UnitOfWork, event: Boom) -> None:
        calls.append("steady")

    def flaky(uow: UnitOfWork, event: Boom) -> None:
        calls.append("flaky")
        if broken[0]:
            raise RuntimeError("not now")

    handlers.register(Boom, steady)
    handlers.register(Boom, flaky)
    uow = new_uow(engine, handlers)
    with uow:
        uow.publish(Boom(tenant_id=1, what="x"))
        uow.commit()
    assert calls == ["steady", "flaky"]
    assert {(r.handler, r.status) for r in outbox_rows(engine)} == {
        (handler_name(steady), "done"), (handler_name(flaky), "pending")}
    broken[0] = False
    outbox.deliver_due(uow, include_not_due=True)
    assert calls == ["steady", "flaky", "flaky"]  # the steady handler did not run again
    assert {r.status for r in outbox_rows(engine)} == {"done"}


def test_a_delivery_made_twice_applies_once(engine: Engine, handlers: EventHandlers) -> None:
    handle = effect("once")
    handlers.register(SomethingHappened, handle)
    uow = new_uow(engine, handlers)
    with uow:
        event = SomethingHappened(tenant_id=1, what="x")
        uow.publish(event)
        uow.commit()
    # another process delivers the same row again (it read it before the first delivery was done)
    again = outbox.deliver(uow.fresh, handlers, [outbox.Delivery(event, handler_name(handle))])
    assert again == outbox.DeliveryReport(skipped=1)
    assert count(engine, effects) == 1


def test_events_a_handler_publishes_are_delivered_after_its_commit(engine: Engine, handlers: EventHandlers) -> None:
    def react(uow: UnitOfWork, event: SomethingHappened) -> None:
        uow.publish(Boom(tenant_id=event.tenant_id, what=f"after {event.what}"))

    seen: list[str] = []
    handlers.register(SomethingHappened, react)
    handlers.register(Boom, lambda u, e: seen.append(e.what))
    uow = new_uow(engine, handlers)
    with uow:
        uow.publish(SomethingHappened(tenant_id=1, what="first"))
        uow.commit()
    assert seen == ["after first"]
    assert [r.status for r in outbox_rows(engine)] == ["done", "done"]


def test_a_commit_delivers_a_bounded_number_itself(
    engine: Engine, handlers: EventHandlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "INLINE_DELIVERIES", 2)
    seen: list[str] = []
    handlers.register(SomethingHappened, lambda u, e: seen.append(e.what))
    uow = new_uow(engine, handlers)
    with uow:
        for i in range(5):
            uow.publish(SomethingHappened(tenant_id=1, what=str(i)))
        uow.commit()
    assert seen == ["0", "1"]
    assert outbox.deliver_due(uow) == outbox.DeliveryReport(done=3)
    assert seen == ["0", "1", "2", "3", "4"]


def test_a_commit_can_leave_its_deliveries_to_the_background(engine: Engine, handlers: EventHandlers) -> None:
    started, release = threading.Event(), threading.Event()
    seen: list[str] = []

    def slow(uow: UnitOfWork, event: SomethingHappened) -> None:
        started.set()
        assert release.wait(10)
        seen.append(event.what)

    handlers.register(SomethingHappened, slow)
    uow = UnitOfWork(make_session_factory(engine), handlers=handlers, deliver_in_background=True)
    with uow:
        uow.publish(SomethingHappened(tenant_id=1, what="later"))
        uow.commit()  # returns while the handler has not finished
    assert started.wait(10) and seen == []
    assert [r.status for r in outbox_rows(engine)] == ["pending"]
    release.set()
    assert outbox.background.drain()
    assert seen == ["later"] and [r.status for r in outbox_rows(engine)] == ["done"]
