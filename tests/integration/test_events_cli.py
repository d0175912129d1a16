"""`microlend events`: deliveries that failed are listed with their error, and a retry delivers them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from microlend.cli.main import app
from microlend.core import audit, outbox
from microlend.core.clock import utcnow
from microlend.core.db import make_engine, make_session_factory
from microlend.core.identity import Principal, Role
from microlend.core.settings import get_settings
from microlend.core.tables import AuditRow
from microlend.core.uow import UnitOfWork
from microlend.servicing import handlers, service
from microlend.servicing.service import Disbursement

runner = CliRunner()


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("MICROLEND_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_a_failed_delivery_is_listed_and_a_retry_delivers_it(cli_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("db", "upgrade")[0] == 0
    assert run("tenant", "create", "eventbank")[0] == 0
    code, out = run("tenant", "list", "--json")
    tenant_id = json.loads(out)[0]["id"]
    engine = make_engine(cli_db)
    uow = UnitOfWork(make_session_factory(engine))
    who = Principal(user_id=1, tenant_id=tenant_id, username="ops", roles=frozenset({Role.ADMIN}))
    loan = service.disburse(uow, who, Disbursement("EI-STD", Decimal("12000"), 12))

    def unreachable(*_: Any, **__: Any) -> None:
        raise ConnectionError("timeline store unreachable")

    timeline = handlers._on_timeline
    monkeypatch.setattr(handlers, "_on_timeline", unreachable)
    monkeypatch.setattr(outbox, "MAX_ATTEMPTS", 2)
    service.post_repayment(uow, who, loan.id, Decimal("50.00"))
    code, out = run("events", "retry")
    assert code == 0 and "0 delivered" in out  # its next attempt is not due yet
    code, out = run("events", "retry", "--all")
    assert code == 1 and "1 failed" in out
    code, out = run("events", "list", "--failed", "--json")
    [failed] = json.loads(out)
    assert (failed["event_type"], failed["status"], failed["attempts"]) == ("RepaymentPosted", "failed", 2)
    assert failed["handler"] == "microlend.servicing.handlers.record_repayment"
    assert failed["last_error"] == "ConnectionError: timeline store unreachable"
    code, out = run("events", "list", "--failed")
    assert code == 0 and "0 pending, 1 done, 1 failed" in out  # the receipt's handler was done at once

    monkeypatch.setattr(handlers, "_on_timeline", timeline)  # the store is back
    code, out = run("events", "retry", "--failed", "--tenant", "eventbank")
    assert code == 0 and "1 delivered" in out, out
    code, out = run("events", "list", "--json")
    assert [r["status"] for r in json.loads(out)] == ["done", "done"]
    assert run("events", "list", "--tenant", "nobank")[0] == 2
    code, out = run("events", "purge", "--days", "30")
    assert code == 0 and out.startswith("0 delivered events")  # delivered just now: kept
    assert outbox.purge_done(uow, older_than=timedelta(0), now=utcnow() + timedelta(seconds=1)) == 2
    assert outbox.counts(uow) == {"pending": 0, "done": 0, "failed": 0}
    with uow:  # the operator's requeue and the purge are jobs: each left an audit record in the bank's chain
        jobs = uow.session.execute(select(AuditRow.action, AuditRow.actor, AuditRow.after).where(
            AuditRow.tenant_id == tenant_id, AuditRow.action.like("events.%")).order_by(AuditRow.seq)).all()
        assert audit.verify(uow.session, tenant_id).ok
    assert [tuple(j) for j in jobs] == [("events.requeue", "events", {"deliveries_requeued": 1}),
                                       ("events.purge", "events", {"deliveries_removed": 2, "older_than_days": 0.0})]
    engine.dispose()
