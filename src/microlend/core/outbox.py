"""The event outbox (事件发件箱): a domain event is written here by the commit that recorded it, one row per
subscribed handler, so it can never be lost between the commit and its handlers.

After the commit each handler runs in its own new unit of work; the row is marked done in that same
transaction, so a handler's effect and its "done" land together, and a delivery that another process
finished meanwhile is rolled back instead of applied twice. A failing handler is logged with its error and
tried again later, waiting longer each time; after `MAX_ATTEMPTS` the delivery is marked failed and stays
visible (`microlend events list --failed`) until someone gives it another round (`events retry --failed`).

A commit that must not wait for its handlers (a web request) hands them to `background`, one thread per
process that delivers in the order received; whatever it has not delivered when the process ends is still
pending in the outbox. `deliver_due` is what a scheduled job (or `microlend events retry`) calls to deliver
what is waiting."""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from microlend.core import audit, metrics
from microlend.core.clock import utcnow
from microlend.core.events import DomainEvent, EventHandlers, from_payload, to_payload
from microlend.core.identity import system_principal
from microlend.core.tables import EventOutboxRow

if TYPE_CHECKING:
    from microlend.core.uow import UnitOfWork

log = logging.getLogger(__name__)

PENDING, DONE, FAILED = "pending", "done", "failed"
#: A delivery that failed this many times is marked failed and no longer retried by itself.
MAX_ATTEMPTS = 8
#: The wait after the first failure; it doubles with every further failure, up to `LONGEST_WAIT`.
FIRST_RETRY = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=6)
#: Deliveries a commit makes itself; more (a close of business over a large book) wait for `deliver_due`.
INLINE_DELIVERIES = 100

_OUTBOX = cast(Table, EventOutboxRow.__table__)
_INSERT = insert(_OUTBOX)
_THIS = (_OUTBOX.c.event_id == bindparam("eid")) & (_OUTBOX.c.handler == bindparam("hname"))
_MARK_DONE = (
    update(_OUTBOX)
    .where(_THIS, _OUTBOX.c.status == PENDING)
    .values(status=DONE, attempts=_OUTBOX.c.attempts + 1, delivered_at=bindparam("at"))
)
_MARK_FAILED = (
    update(_OUTBOX)
    .where(_THIS, _OUTBOX.c.status == PENDING)
    .values(attempts=bindparam("n"), last_error=bindparam("error"), next_attempt_at=bindparam("next_at"),
            status=bindparam("new_status"))
)


@dataclass(frozen=True)
class Delivery:
    """One event for one handler, as staged by a commit or read back from the outbox."""

    event: DomainEvent
    handler: str
    attempts: int = 0


@dataclass(frozen=True)
class DeliveryReport:
    """What one round of deliveries did: done, failed and to be retried, failed for good, or already
    delivered elsewhere (skipped)."""

    done: int = 0
    retrying: int = 0
    failed: int = 0
    skipped: int = 0

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(self.done + other.done, self.retrying + other.retrying, self.failed + other.failed,
                              self.skipped + other.skipped)


def stage(session: Session, handlers: EventHandlers, events: Sequence[DomainEvent]) -> list[Delivery]:
    """Write one outbox row per (event, subscribed handler) in the session's transaction (one statement);
    an event nobody subscribes to costs nothing."""
    now = utcnow()
    rows: list[dict[str, Any]] = []
    deliveries: list[Delivery] = []
    for event in events:
        names = handlers.handlers_for(event)
        if not names:
            continue
        payload = to_payload(event)
        for name in names:
            rows.append({"event_id": event.event_id, "tenant_id": event.tenant_id,
                         "event_type": type(event).__name__, "handler": name, "payload": payload,
                         "status": PENDING, "attempts": 0, "created_at": now, "next_attempt_at": now})
            deliveries.append(Delivery(event, name))
    if rows:
        session.connection().execute(_INSERT, rows[0] if len(rows) == 1 else rows)
    return deliveries


def deliver(fresh: Callable[[], UnitOfWork], handlers: EventHandlers, deliveries: Sequence[Delivery],
            *, now: datetime | None = None) -> DeliveryReport:
    """Run each delivery's handler in its own unit of work from `fresh`; never raises for a handler."""
    report = DeliveryReport()
    for delivery in deliveries:
        report += _deliver_one(fresh, handlers, delivery, now)
    return report


def _deliver_one(fresh: Callable[[], UnitOfWork], handlers: EventHandlers, d: Delivery,
                 now: datetime | None) -> DeliveryReport:
    try:
        handler = handlers.handler(d.handler)
        with fresh() as uow:
            handler(uow, d.event)
            marked = uow.session.connection().execute(
                _MARK_DONE, {"eid": d.event.event_id, "hname": d.handler, "at": now or utcnow()})
            if marked.rowcount != 1:  # delivered (or given up) meanwhile by another process: undo ours
                return DeliveryReport(skipped=1)
            uow.commit()
        return DeliveryReport(done=1)
    except Exception as exc:  # a handler's failure is recorded for a retry; it never reaches the publisher
        return _record_failure(fresh, d, exc, now or utcnow())


def _record_failure(fresh: Callable[[], UnitOfWork], d: Delivery, exc: Exception, now: datetime) -> DeliveryReport:
    attempts = d.attempts + 1
    give_up = attempts >= MAX_ATTEMPTS
    error = f"{type(exc).__name__}: {exc}"[:2000]
    log.error("event handler %s failed on %s %s (attempt %d of %d): %s", d.handler, type(d.event).__name__,
              d.event.event_id, attempts, MAX_ATTEMPTS, error, exc_info=exc)
    metrics.job_failed(metrics.EVENT_DELIVERY)
    try:
        with fresh() as uow:
            uow.session.connection().execute(_MARK_FAILED, {
                "eid": d.event.event_id, "hname": d.handler, "n": attempts, "error": error,
                "next_at": now + backoff(attempts), "new_status": FAILED if give_up else PENDING})
            uow.commit()
    except Exception:  # the row stays pending as it was: the next round tries again
        log.exception("could not record the failure of event handler %s on %s", d.handler, d.event.event_id)
    return DeliveryReport(failed=1) if give_up else DeliveryReport(retrying=1)


def backoff(attempts: int) -> timedelta:
    """The wait before the next try after `attempts` failures: 30 s, 1 min, 2 min, ... at most 6 h."""
    return min(FIRST_RETRY * (1 << min(max(attempts - 1, 0), 20)), LONGEST_WAIT)


class BackgroundDelivery:
    """Deliveries handed over by commits that do not wait for them, delivered by one daemon thread."""

    def __init__(self, linger_s: float = 0.02) -> None:
        self.linger_s = linger_s
        self._queue: queue.Queue[tuple[Callable[[], UnitOfWork], EventHandlers, list[Delivery]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, fresh: Callable[[], UnitOfWork], handlers: EventHandlers, deliveries: Sequence[Delivery]) -> None:
        self._queue.put((fresh, handlers, list(deliveries)))
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="event-delivery", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            time.sleep(self.linger_s)  # let the request that handed it over finish first, and gather more
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            for fresh, handlers, deliveries in batch:
                try:
                    deliver(fresh, handlers, deliveries)
                except Exception:  # e.g. the database went away: they stay pending for the next round
                    log.exception("event deliveries stopped; %d stay pending in the outbox", len(deliveries))
                finally:
                    self._queue.task_done()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until everything handed over so far is delivered (tests, shutdown); False if time ran out."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)
        return True


#: This process's background deliveries (a web server's requests hand theirs over here).
background = BackgroundDelivery()
atexit.register(background.drain, 10.0)


# ------------------------------------------------------------------------------------------ later rounds


def deliver_due(uow: UnitOfWork, *, now: datetime | None = None, limit: int = 500,
                tenant_id: int | None = None, include_not_due: bool = False) -> DeliveryReport:
    """Deliver waiting deliveries whose next attempt is due (all waiting ones with `include_not_due`),
    oldest first, at most `limit`; each in its own unit of work. For the scheduled job and the CLI."""
    now = now or utcnow()
    cond = [EventOutboxRow.status == PENDING]
    if not include_not_due:
        cond.append(EventOutboxRow.next_attempt_at <= now)
    if tenant_id is not None:
        cond.append(EventOutboxRow.tenant_id == tenant_id)
    with uow.read_only():
        rows = uow.session.execute(
            select(EventOutboxRow.event_id, EventOutboxRow.event_type, EventOutboxRow.handler,
                   EventOutboxRow.payload, EventOutboxRow.attempts)
            .where(*cond).order_by(EventOutboxRow.id).limit(limit)
        ).all()
    report = DeliveryReport()
    for event_id, event_type, handler, payload, attempts in rows:
        try:
            event = from_payload(uow.handlers.event_type(event_type), payload, event_id)
        except Exception as exc:  # an event this process cannot read is a failed attempt like any other
            report += _record_failure(uow.fresh, Delivery(_Unreadable(0, event_id=event_id), handler, attempts),
                                      exc, now)
            continue
        report += _deliver_one(uow.fresh, uow.handlers, Delivery(event, handler, attempts), now)
    return report


@dataclass(frozen=True)
class _Unreadable(DomainEvent):
    """Stands for a stored event whose type or payload this process cannot read (for the failure record)."""


def requeue_failed(uow: UnitOfWork, *, tenant_id: int | None = None, now: datetime | None = None) -> int:
    """Give every failed delivery one more attempt (after the cause was fixed); returns how many. Each bank
    whose deliveries were given another attempt gets an audit record of how many."""
    with uow:
        where = [_OUTBOX.c.status == FAILED]
        if tenant_id is not None:
            where.append(_OUTBOX.c.tenant_id == tenant_id)
        per_tenant = _count_per_tenant(uow.session, where)
        count = uow.session.connection().execute(
            update(_OUTBOX).where(*where).values(status=PENDING, next_attempt_at=now or utcnow())).rowcount
        _audit_job(uow.session, "events.requeue", per_tenant, "deliveries_requeued")
        uow.commit()
    return int(count)


def purge_done(uow: UnitOfWork, *, older_than: timedelta, now: datetime | None = None) -> int:
    """Delete deliveries done more than `older_than` ago (the effects stay; the outbox stays small), with an
    audit record of how many for each bank that had some."""
    with uow:
        where = [_OUTBOX.c.status == DONE, _OUTBOX.c.delivered_at < (now or utcnow()) - older_than]
        per_tenant = _count_per_tenant(uow.session, where)
        count = uow.session.connection().execute(_OUTBOX.delete().where(*where)).rowcount
        _audit_job(uow.session, "events.purge", per_tenant, "deliveries_removed",
                   older_than_days=older_than.total_seconds() / 86400)
        uow.commit()
    return int(count)


def _count_per_tenant(session: Session, where: list[Any]) -> dict[int, int]:
    rows = session.connection().execute(
        select(_OUTBOX.c.tenant_id, func.count()).where(*where).group_by(_OUTBOX.c.tenant_id))
    return {int(t): int(n) for t, n in rows}


def _audit_job(session: Session, action: str, per_tenant: dict[int, int], counted: str, **facts: Any) -> None:
    entries = [audit.Entry(system_principal(t, "events"), action, "event_outbox", t, after={counted: n, **facts})
               for t, n in sorted(per_tenant.items()) if n]
    if entries:
        audit.record_many(session, entries)


@dataclass(frozen=True)
class DeliveryView:
    id: int
    tenant_id: int
    event_id: str
    event_type: str
    handler: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None


def list_deliveries(uow: UnitOfWork, *, status: str | None = None, tenant_id: int | None = None,
                    limit: int = 50) -> list[DeliveryView]:
    """Deliveries, newest first, optionally of one status (pending, done, failed) and one tenant."""
    cond = []
    if status is not None:
        cond.append(EventOutboxRow.status == status)
    if tenant_id is not None:
        cond.append(EventOutboxRow.tenant_id == tenant_id)
    with uow.read_only():
        rows = uow.session.execute(
            select(EventOutboxRow).where(*cond).order_by(EventOutboxRow.id.desc()).limit(limit)).scalars()
        return [DeliveryView(r.id, r.tenant_id, r.event_id, r.event_type, r.handler, r.status, r.attempts,
                             r.last_error, r.created_at, r.next_attempt_at, r.delivered_at) for r in rows]


def counts(uow: UnitOfWork, *, tenant_id: int | None = None) -> dict[str, int]:
    """How many deliveries are pending, done and failed."""
    stmt = select(EventOutboxRow.status, func.count()).group_by(EventOutboxRow.status)
    if tenant_id is not None:
        stmt = stmt.where(EventOutboxRow.tenant_id == tenant_id)
    with uow.read_only():
        found = {str(s): int(n) for s, n in uow.session.execute(stmt).all()}
    return {s: found.get(s, 0) for s in (PENDING, DONE, FAILED)}
