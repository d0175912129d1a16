"""Concurrent writers and readers on both backends: writers that read then write queue instead of failing
(threads of one process and separate processes), read-only units of work wait for nobody and cannot
commit, a failed writer lets the next one in, and a pooled PostgreSQL connection that died while idle is
replaced before use."""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from tests.conftest import TenantKit

from microlend.bootstrap import load_modules
from microlend.core import audit, db
from microlend.core.db import SQLiteWriteGate, make_engine, make_session_factory
from microlend.core.identity import Principal
from microlend.core.tables import AuditRow, TenantRow
from microlend.core.uow import UnitOfWork


def _append(factory: Any, who: Principal, n: int, label: str) -> None:
    """n transactions that each read the audit head and then write the next link (read-then-write)."""
    for i in range(n):
        with UnitOfWork(factory) as u:
            audit.record(u.session, who, "test.concurrent", label, i)
            u.commit()


def _records(bank: TenantKit, action: str) -> int:
    with bank.uow_factory().read_only() as u:
        rows = u.session.execute(select(AuditRow.id).where(AuditRow.tenant_id == bank.tenant.id,
                                                           AuditRow.action == action)).all()
    return len(rows)


def _chain_ok(bank: TenantKit) -> None:
    with bank.uow_factory().read_only() as u:
        report = audit.verify(u.session, bank.tenant.id)
    assert report.ok, report.problems


def test_threads_writing_at_once_all_land_in_one_unbroken_chain(engine: Engine, bank: TenantKit) -> None:
    who = bank.principal("admin")
    factory = make_session_factory(engine)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            _append(factory, who, 25, f"thread{k}")
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _records(bank, "test.concurrent") == 150
    _chain_ok(bank)


def _process_writer(url: str, who: Principal, n: int, label: str) -> None:
    load_modules()
    engine = make_engine(url)
    try:
        _append(make_session_factory(engine), who, n, label)
    finally:
        engine.dispose()


def test_processes_writing_at_once_all_land_in_one_unbroken_chain(db_url: str, bank: TenantKit) -> None:
    who = bank.principal("admin")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_process_writer, args=(db_url, who, 40, f"proc{k}")) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert _records(bank, "test.concurrent") == 80
    _chain_ok(bank)


def test_a_reader_does_not_wait_for_a_writer(engine: Engine, bank: TenantKit) -> None:
    factory = make_session_factory(engine)
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with UnitOfWork(factory) as u:
            u.session.execute(text("UPDATE tenants SET name = name WHERE id = :id"), {"id": bank.tenant.id})
            holding.set()
            release.wait(10)
            u.commit()

    t = threading.Thread(target=writer)
    t.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        with UnitOfWork(factory).read_only() as u:
            name = u.session.execute(select(TenantRow.name).where(TenantRow.id == bank.tenant.id)).scalar_one()
        assert name == bank.tenant.name
        assert time.monotonic() - started < 1.0
    finally:
        release.set()
        t.join()


def test_a_read_only_unit_of_work_cannot_commit_and_joins_an_open_one(engine: Engine, bank: TenantKit) -> None:
    factory = make_session_factory(engine)
    with pytest.raises(RuntimeError, match="read-only"), UnitOfWork(factory).read_only() as u:
        u.commit()
    uow = UnitOfWork(factory)
    with uow:
        uow.session.execute(text("UPDATE tenants SET name = :n WHERE id = :id"),
                            {"n": bank.tenant.name + "-x", "id": bank.tenant.id})
        with uow.read_only():  # joins the open unit: sees its uncommitted change
            seen = uow.session.execute(select(TenantRow.name).where(TenantRow.id == bank.tenant.id)).scalar_one()
        assert seen == bank.tenant.name + "-x"
        # nothing committed: the outer unit of work rolls back


def test_a_failed_writer_lets_the_next_one_in(engine: Engine, bank: TenantKit) -> None:
    factory = make_session_factory(engine)
    who = bank.principal("admin")
    with pytest.raises(ZeroDivisionError), UnitOfWork(factory) as u:
        audit.record(u.session, who, "test.failed", "thing", 1)
        _ = 1 / 0
    started = time.monotonic()
    _append(factory, who, 1, "after")
    assert time.monotonic() - started < 5.0
    assert _records(bank, "test.failed") == 0
    _chain_ok(bank)


class _RecordingConnection:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def execute(self, sql: str) -> _RecordingConnection:
        self.statements.append(sql)
        return self

    def close(self) -> None:
        pass


def test_the_sqlite_gate_checkpoints_after_a_commit_at_most_once_per_interval() -> None:
    gate = SQLiteWriteGate(timeout_s=1.0, checkpoint_every_s=60.0)
    conn = _RecordingConnection()
    gate.committed(conn)
    gate.committed(conn)
    assert conn.statements == ["PRAGMA wal_checkpoint(PASSIVE)"]
    eager = SQLiteWriteGate(timeout_s=1.0, checkpoint_every_s=0.0)
    eager.committed(conn)
    eager.committed(conn)
    assert len(conn.statements) == 3


def test_a_pooled_postgresql_connection_that_died_while_idle_is_replaced(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL connection pool")
    monkeypatch.setattr(db, "IDLE_PING_AFTER_S", 0.0)
    engine = make_engine(db_url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as c:
            pid = c.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with make_engine(db_url).connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            admin.commit()
        time.sleep(0.2)
        with engine.connect() as c:  # the same pooled connection: pinged, found dead, replaced
            assert c.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
    finally:
        engine.dispose()
