"""Unit of work: one database transaction per use case; nothing is saved unless `commit()` is called."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast

from sqlalchemy.orm import Session, sessionmaker

from microlend.core import metrics, outbox
from microlend.core.db import READ_APART, READ_ONLY
from microlend.core.events import DomainEvent, EventHandlers, registry

_R = TypeVar("_R")
_REPOSITORIES: dict[type[Any], Callable[[UnitOfWork], Any]] = {}


def register_repository(kind: type[_R], factory: Callable[[UnitOfWork], _R]) -> None:
    """A module makes its repository of ``kind`` available as ``uow.repository(kind)``."""
    _REPOSITORIES[kind] = factory


class UnitOfWork:
    """`with uow: ...; uow.commit()` — leaving the block without commit rolls everything back.

    Events added with `publish` are written to the event outbox by the commit, in its transaction, and then
    delivered: each subscribed handler runs in its own new unit of work (`core.outbox`), before `commit()`
    returns, or on the process's delivery thread with `deliver_in_background` (a web request does not wait
    for them). A rollback drops them.

    `with uow.read_only(): ...` opens a unit of work that only reads and costs the database least: on SQLite
    a deferred transaction (no write lock, one snapshot), on PostgreSQL no transaction at all (each
    statement reads the latest committed data, with no BEGIN and ROLLBACK round trips) — for reads that
    need no snapshot across statements. Inside an open unit of work it simply joins it."""

    def __init__(self, session_factory: sessionmaker[Session], *, handlers: EventHandlers | None = None,
                 deliver_in_background: bool = False) -> None:
        self._factory = session_factory
        self._handlers = registry if handlers is None else handlers
        self._background = deliver_in_background
        self._session: Session | None = None
        self._events: list[DomainEvent] = []
        self._depth = 0
        self._read_only = False
        self._streamed = False
        self._apart = False
        self._repositories: dict[type[Any], Any] = {}

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("the unit of work is not open: use `with uow:`")
        return self._session

    def repository(self, kind: type[_R]) -> _R:
        """This unit of work's repository of ``kind`` (one per open unit of work), from its module's factory."""
        if kind not in self._repositories:
            self._repositories[kind] = _REPOSITORIES[kind](self)
        return cast(_R, self._repositories[kind])

    @property
    def handlers(self) -> EventHandlers:
        """Who reacts to the events published here (the process's registry unless one was given)."""
        return self._handlers

    def fresh(self) -> UnitOfWork:
        """A new unit of work on the same database and handlers: an event handler runs in one."""
        return UnitOfWork(self._factory, handlers=self._handlers)

    def reading_apart(self, apart: bool = True) -> UnitOfWork:
        """Its read-only units of work on a SQLite file from now on run their `read_frame` statements in Python
        processes of their own, each on a connection of its own (`core.frames`), so that reads made at once in
        threads use every core (Python's sqlite3 holds the GIL while it builds rows): for reads of a whole book,
        where starting a process (a few tenths of a second) is small. Each statement then reads the latest
        committed rows, as a read-only unit of work does on PostgreSQL."""
        self._apart = apart
        return self

    def read_only(self, *, streamed: bool = False) -> UnitOfWork:
        """Open for reading only. `streamed` reads results in chunks through a server-side cursor on
        PostgreSQL, which needs a transaction: one read-only snapshot then serves every chunk."""
        if self._depth == 0:
            self._read_only = True
            self._streamed = streamed
        return self

    def __enter__(self) -> UnitOfWork:
        if self._depth == 0:
            self._session = (
                self._factory(execution_options=_read_only_options(self._factory, self._streamed, self._apart))
                if self._read_only
                else self._factory()
            )
            self._events = []
            self._repositories = {}
        self._depth += 1
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._depth -= 1
        if self._depth > 0:
            return
        assert self._session is not None
        try:
            # detach first, so objects read in this unit of work stay readable after it (a rollback
            # would expire them); anything not committed is still discarded by the rollback
            self._session.expunge_all()
            self._session.rollback()
        finally:
            self._session.close()
            self._session = None
            self._read_only = False
            self._streamed = False

    def publish(self, event: DomainEvent) -> None:
        self._events.append(event)

    def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        if self._depth > 1:
            return  # the outermost block commits
        events, self._events = self._events, []
        deliveries = outbox.stage(self.session, self._handlers, events) if events else []
        self.session.commit()
        metrics.events_committed(events)
        if not deliveries:
            return
        batch = deliveries[: outbox.INLINE_DELIVERIES]  # more wait for the next round (deliver_due)
        if self._background:
            outbox.background.submit(self.fresh, self._handlers, batch)
        else:
            outbox.deliver(self.fresh, self._handlers, batch)

    def flush(self) -> None:
        self.session.flush()


def _read_only_options(factory: sessionmaker[Session], streamed: bool = False,
                       apart: bool = False) -> dict[str, object]:
    bind = factory.kw.get("bind")
    if bind is not None and bind.dialect.name == "postgresql":
        if streamed:
            return {READ_ONLY: True, "isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        return {READ_ONLY: True, "isolation_level": "AUTOCOMMIT"}
    return {READ_ONLY: True, READ_APART: True} if apart else {READ_ONLY: True}
