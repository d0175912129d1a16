"""Domain events reach subscribers only after a successful commit."""

from dataclasses import dataclass

from sqlalchemy import text

from microlend.core.db import make_engine, make_session_factory
from microlend.core.events import DomainEvent, subscribe
from microlend.core.uow import UnitOfWork


@dataclass(frozen=True)
class SomethingHappened(DomainEvent):
    what: str


def test_events_are_dispatched_after_commit_and_dropped_on_rollback(tmp_path: object) -> None:
    seen: list[str] = []
    subscribe(SomethingHappened, lambda e: seen.append(e.what))
    uow = UnitOfWork(make_session_factory(make_engine("sqlite://")))
    with uow:
        uow.session.execute(text("select 1"))
        uow.publish(SomethingHappened(tenant_id=1, what="rolled back"))
    with uow:
        uow.publish(SomethingHappened(tenant_id=1, what="committed"))
        assert seen == []
        uow.commit()
    assert seen == ["committed"]


def test_a_failing_listener_does_not_undo_the_commit() -> None:
    @dataclass(frozen=True)
    class Boom(DomainEvent):
        pass

    def explode(_: Boom) -> None:
        raise RuntimeError("listener failed")

    subscribe(Boom, explode)
    uow = UnitOfWork(make_session_factory(make_engine("sqlite://")))
    with uow:
        uow.publish(Boom(tenant_id=1))
        uow.commit()  # no exception escapes
