"""The worker and the bank's calendar on SQLite and PostgreSQL: two workers with their own connections never
run the same job at once and run each business date once; every run is recorded with its figures; a failed
run is retried later for the same date; a dead worker's lease lapses; a person can ask for a run again."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from microlend import worker
from microlend.core import clock, jobs, tenancy
from microlend.core.clock import FixedClock
from microlend.core.db import make_engine, make_session_factory
from microlend.core.errors import NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Principal, Role
from microlend.core.job_tables import JobRunRow, ScheduledJobRow
from microlend.core.jobs import JobSpec
from microlend.core.uow import UnitOfWork
from microlend.servicing.service import setup_tenant

START = date(2026, 3, 1)
NOW = datetime(2026, 3, 6, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai on 6 March: 1–5 March (and 6th at 00:00) are due


@pytest.fixture
def calendar_db(fresh_engine: Engine, fresh_db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int]]:
    monkeypatch.setattr(tenancy, "TENANT_SETUP", [])
    monkeypatch.setattr(clock, "_clock", FixedClock(NOW))
    tenant_id = tenancy.create_tenant(UnitOfWork(make_session_factory(fresh_engine)), "cal", business_date=START).id
    yield fresh_db_url, tenant_id


def _uow(url: str) -> tuple[UnitOfWork, Engine]:
    engine = make_engine(url)
    return UnitOfWork(make_session_factory(engine)), engine


def _calendar(uow: UnitOfWork, tenant_id: int, *specs: JobSpec) -> None:
    with uow:
        jobs.ensure_calendar(uow.session, tenant_id, list(specs), starting=START)
        uow.commit()


def _runs(uow: UnitOfWork, tenant_id: int) -> list[JobRunRow]:
    with uow:
        return list(uow.session.execute(select(JobRunRow).where(JobRunRow.tenant_id == tenant_id)
                                        .order_by(JobRunRow.id)).scalars())


def test_two_workers_never_run_the_same_job_at_once(calendar_db: tuple[str, int]) -> None:
    url, tenant_id = calendar_db
    setup, setup_engine = _uow(url)
    _calendar(setup, tenant_id, JobSpec("ledger_a", jobs.DAILY, "00:00"), JobSpec("ledger_b", jobs.DAILY, "00:00"))
    running: Counter[str] = Counter()
    most: Counter[str] = Counter()
    done: list[tuple[str, date, str]] = []
    lock = threading.Lock()

    def probe(kind: str) -> worker.JobFunction:
        def run(uow: UnitOfWork, who: Principal, on: date) -> dict[str, Any]:
            with lock:
                running[kind] += 1
                most[kind] = max(most[kind], running[kind])
            time.sleep(0.03)  # long enough for the other worker to try the same job meanwhile
            with lock:
                running[kind] -= 1
                done.append((kind, on, threading.current_thread().name))
            return {"on": on.isoformat()}
        return run

    functions = {"ledger_a": probe("ledger_a"), "ledger_b": probe("ledger_b")}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        uow, engine = _uow(url)  # a connection pool of its own
        try:
            worker.run_due(uow, worker=name, tenant_id=tenant_id, functions=functions)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=work, args=(f"w{k}",), name=f"w{k}") for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert most == {"ledger_a": 1, "ledger_b": 1}  # never twice at once
    # every business date from 1 to 6 March ran exactly once per job
    assert Counter((k, d) for k, d, _ in done) == {(k, START + timedelta(days=n)): 1
                                                   for k in functions for n in range(6)}
    runs = _runs(setup, tenant_id)
    assert len(runs) == 12 and {r.status for r in runs} == {"succeeded"}
    assert all(r.finished_at is not None and r.figures["on"] == r.business_date.isoformat() for r in runs)
    with setup:
        assert {j.next_business_date for j in setup.session.execute(select(ScheduledJobRow)).scalars()} == {
            date(2026, 3, 7)}
    setup_engine.dispose()


def test_a_claimed_job_is_not_claimed_again_until_its_lease_lapses(calendar_db: tuple[str, int]) -> None:
    url, tenant_id = calendar_db
    first, e1 = _uow(url)
    second, e2 = _uow(url)
    _calendar(first, tenant_id, JobSpec("probe", jobs.DAILY, "00:00"))
    claim = jobs.claim_due(first, "alive", tenant_id=tenant_id)
    assert claim is not None and claim.business_date == START
    assert jobs.claim_due(second, "other", tenant_id=tenant_id) is None
    # the first worker died: after the lease the job is taken over, for the same business date
    later = NOW + jobs.LEASE + timedelta(seconds=1)
    taken = jobs.claim_due(second, "other", tenant_id=tenant_id, now=later)
    assert taken is not None and taken.business_date == START and taken.worker == "other"
    # the dead worker's late outcome does not move the job on
    assert jobs.succeed(first, claim, {"late": 1}, now=later) is False
    assert jobs.succeed(second, taken, {"ok": 1}, now=later) is True
    statuses = [(r.worker, r.status) for r in _runs(first, tenant_id)]
    assert statuses == [("alive", "failed"), ("other", "succeeded")]
    e1.dispose()
    e2.dispose()


def test_a_failed_run_is_recorded_and_retried_later_for_the_same_date(calendar_db: tuple[str, int],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    url, tenant_id = calendar_db
    uow, engine = _uow(url)
    _calendar(uow, tenant_id, JobSpec("flaky", jobs.MONTH_END, "23:00"))
    calls: list[date] = []

    def flaky(u: UnitOfWork, who: Principal, on: date) -> dict[str, Any]:
        calls.append(on)
        if len(calls) == 1:
            raise RuntimeError("the ledger was busy")
        return {"loans": 7}

    month_end = date(2026, 3, 31)
    after = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)
    monkeypatch.setattr(clock, "_clock", FixedClock(after))
    [failed] = worker.run_due(uow, tenant_id=tenant_id, functions={"flaky": flaky})
    assert not failed.ok and failed.error == "RuntimeError: the ledger was busy"
    assert worker.run_due(uow, tenant_id=tenant_id, functions={"flaky": flaky}) == []  # waits before a retry
    with uow:
        job = uow.session.execute(select(ScheduledJobRow)).scalar_one()
        assert (job.failures, job.next_run_at, job.lease_owner) == (1, after + jobs.FIRST_RETRY, None)
    monkeypatch.setattr(clock, "_clock", FixedClock(after + timedelta(minutes=2)))
    [retried] = worker.run_due(uow, tenant_id=tenant_id, functions={"flaky": flaky})
    assert retried.ok and retried.claim.attempt == 2
    assert calls == [month_end, month_end]
    runs = _runs(uow, tenant_id)
    assert [(r.status, r.attempt, r.business_date) for r in runs] == [
        ("failed", 1, month_end), ("succeeded", 2, month_end)]
    assert runs[0].error == "RuntimeError: the ledger was busy" and runs[1].figures["loans"] == 7
    with uow:
        job = uow.session.execute(select(ScheduledJobRow)).scalar_one()
        assert (job.failures, job.next_business_date) == (0, date(2026, 4, 30))
        assert job.next_run_at == datetime(2026, 4, 30, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    engine.dispose()


def test_a_person_asks_for_a_run_again(calendar_db: tuple[str, int]) -> None:
    url, tenant_id = calendar_db
    uow, engine = _uow(url)
    _calendar(uow, tenant_id, JobSpec("probe", jobs.DAILY, "00:00"))
    ran: list[date] = []
    functions: dict[str, worker.JobFunction] = {"probe": lambda u, w, on: ran.append(on) or {}}
    worker.run_due(uow, tenant_id=tenant_id, functions=functions)
    ops = Principal(5, tenant_id, "ops", frozenset({Role.OPERATIONS}))
    [job] = jobs.list_jobs(uow, ops)
    with pytest.raises(ValidationError, match="after the job's next business date"):
        jobs.request_rerun(uow, ops, job.id, date(2026, 3, 9))
    with pytest.raises(PermissionDenied):
        jobs.request_rerun(uow, Principal(6, tenant_id, "m", frozenset({Role.MARKETER})), job.id)
    with pytest.raises(NotFound):
        jobs.request_rerun(uow, Principal(5, tenant_id + 1, "ops", frozenset({Role.OPERATIONS})), job.id)
    view = jobs.request_rerun(uow, ops, job.id, date(2026, 3, 2))
    assert view.rerun_date == date(2026, 3, 2)
    [again] = worker.run_due(uow, tenant_id=tenant_id, functions=functions)
    assert again.claim.trigger == "rerun" and again.claim.business_date == date(2026, 3, 2)
    [job] = jobs.list_jobs(uow, ops)
    assert (job.rerun_date, job.next_business_date) == (None, date(2026, 3, 7))  # the schedule is unchanged
    latest = jobs.list_runs(uow, ops, limit=1)[0]
    assert (latest.trigger, latest.requested_by, latest.status) == ("rerun", "ops", "succeeded")
    engine.dispose()


def test_the_bank_calendar_runs_close_of_business_and_reminders(fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    monkeypatch.setattr(tenancy, "TENANT_SETUP", [setup_tenant])
    uow = UnitOfWork(make_session_factory(fresh_engine))
    tenant_id = tenancy.create_tenant(uow, "bank", business_date=date(2026, 3, 1)).id
    monkeypatch.setattr(clock, "_clock", FixedClock(datetime(2026, 3, 1, 1, 0, tzinfo=UTC)))
    assert worker.ensure_calendars(uow) == len(worker.DEFAULT_CALENDAR) == 9
    assert worker.ensure_calendars(uow) == 0
    # 3 March, 23:30 in Shanghai: close of business for 1–3 March, reminders for 1–3 March, hourly sending, the
    # journeys' and the audit chain check's hourly rounds, and the re-pull of external data (at 23:40: no borrower
    # yet) and the early-warning scan of 1 and 2 March (at 23:45)
    monkeypatch.setattr(clock, "_clock", FixedClock(datetime(2026, 3, 3, 15, 30, tzinfo=UTC)))
    outcomes = worker.run_due(uow, tenant_id=tenant_id)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    kinds = Counter(o.claim.kind for o in outcomes)
    assert kinds == {"close_of_business": 3, "reminders": 3, "messages": 1, "data_refresh": 2, "early_warning": 2,
                     "journeys": 1, "audit_check": 1}
    audit_check = next(o for o in outcomes if o.claim.kind == "audit_check")
    assert audit_check.figures["audit_chain_ok"] is True and audit_check.figures["audit_records"] > 0
    refresh = next(o for o in outcomes if o.claim.kind == "data_refresh")
    assert (refresh.figures["borrowers"], refresh.figures["calls"], refresh.figures["cost"]) == (0, 0, "0")
    with uow:
        from microlend.core.tables import TenantRow
        assert uow.session.get(TenantRow, tenant_id).business_date == date(2026, 3, 4)  # type: ignore[union-attr]
    cob_runs = [o for o in outcomes if o.claim.kind == "close_of_business"]
    assert [o.figures["closed"] for o in cob_runs] == [1, 1, 1]
    assert worker.run_due(uow, tenant_id=tenant_id) == []


def test_a_run_asked_for_while_the_job_runs_comes_right_after_it(calendar_db: tuple[str, int]) -> None:
    url, tenant_id = calendar_db
    uow, engine = _uow(url)
    _calendar(uow, tenant_id, JobSpec("probe", jobs.MONTH_END, "23:00"))
    ops = Principal(5, tenant_id, "ops", frozenset({Role.OPERATIONS}))
    claim = jobs.claim_due(uow, "w1", tenant_id=tenant_id, now=datetime(2026, 4, 1, tzinfo=UTC))
    assert claim is not None and claim.business_date == date(2026, 3, 31)
    [job] = jobs.list_jobs(uow, ops)
    jobs.request_rerun(uow, ops, job.id, date(2026, 3, 31))
    assert jobs.succeed(uow, claim, {}, now=datetime(2026, 4, 1, 0, 5, tzinfo=UTC))
    again = jobs.claim_due(uow, "w1", tenant_id=tenant_id, now=datetime(2026, 4, 1, 0, 6, tzinfo=UTC))
    assert again is not None and (again.trigger, again.business_date) == ("rerun", date(2026, 3, 31))
    engine.dispose()


def test_the_worker_process_keeps_the_calendar_until_stopped(fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.setattr(tenancy, "TENANT_SETUP", [setup_tenant])
    uow = UnitOfWork(make_session_factory(fresh_engine))
    tenant_id = tenancy.create_tenant(uow, "served", business_date=date(2026, 3, 1)).id
    monkeypatch.setattr(clock, "_clock", FixedClock(datetime(2026, 3, 1, 2, 0, tzinfo=UTC)))  # 10:00 in Shanghai
    stop = threading.Event()
    serving = threading.Thread(target=worker.serve, args=(uow,), kwargs={"poll_s": 0.05, "stop": stop})
    serving.start()
    reader = UnitOfWork(make_session_factory(fresh_engine))  # this thread's own (a unit of work is one thread's)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(_runs(reader, tenant_id)) < 4:
        time.sleep(0.05)
    stop.set()
    serving.join(30)
    assert not serving.is_alive()
    assert {(r.kind, r.status) for r in _runs(reader, tenant_id)} == {("reminders", "succeeded"),
                                                                     ("messages", "succeeded"),
                                                                     ("journeys", "succeeded"),
                                                                     ("audit_check", "succeeded")}
