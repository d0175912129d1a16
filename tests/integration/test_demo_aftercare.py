"""After the loan at the demo bank, lived through the same use cases as staff and the worker: a collector works
the overdue loans' cases on the phone page's service functions (contacts, promises kept and broken, escalations),
the month-end model monitoring stores a run for the champion, and the portfolio analytics have curves to draw."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine, select, update

from microlend.core import audit
from microlend.core.clock import FixedClock, SystemClock, set_clock
from microlend.core.db import make_session_factory
from microlend.core.identity import Principal, Role
from microlend.core.job_tables import JobRunRow
from microlend.core.tables import AuditRow, TenantRow
from microlend.core.uow import UnitOfWork
from microlend.demo import providers
from microlend.demo.history import simulate
from microlend.demo.seed import seed
from microlend.risk import monitoring_runs
from microlend.servicing import portfolio
from microlend.servicing.collection_tables import CollectionActionRow, CollectionCaseRow
from microlend.servicing.portfolio_sql import Window

pytestmark = pytest.mark.slow

HISTORY_ENDS = date(2026, 11, 25)
#: 10:00 in Shanghai on the day the bank is seeded
SEEDED_AT = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def seeded_on_a_fixed_day() -> Iterator[None]:
    """The bank is seeded on a fixed day as well (its customers' data, answers and calendar start from the day it
    is seeded): which loans fall behind, and when, is the same at every hour of every day the test runs."""
    set_clock(FixedClock(SEEDED_AT))
    try:
        yield
    finally:
        set_clock(SystemClock())


@pytest.mark.usefixtures("seeded_on_a_fixed_day")
def test_the_demo_history_collects_and_monitors(fresh_engine: Engine) -> None:
    uow = UnitOfWork(make_session_factory(fresh_engine))
    bank = seed(uow, customers=200)
    with uow:  # the history ends on a fixed day, so which loans fall behind, and when, is the same on every run
        uow.session.execute(update(TenantRow).where(TenantRow.id == bank.tenant_id).values(business_date=HISTORY_ENDS))
        uow.commit()
    with providers.start(providers.anchor_of(uow, bank.tenant_id)) as sandbox:
        providers.connect(uow, bank.tenant_id, sandbox.base_url)
        simulate(uow, bank.tenant_id, days=75, per_day=6)
    with uow.read_only():
        s = uow.session
        cases = s.execute(select(CollectionCaseRow.status, CollectionCaseRow.escalation).where(
            CollectionCaseRow.tenant_id == bank.tenant_id)).all()
        actions = s.execute(select(CollectionActionRow.kind, CollectionActionRow.promise_status,
                                   CollectionActionRow.actor).where(
            CollectionActionRow.tenant_id == bank.tenant_id)).all()
        audited = Counter(s.execute(select(AuditRow.action).where(
            AuditRow.tenant_id == bank.tenant_id, AuditRow.action.like("collections.%"))).scalars())
        runs = s.execute(select(JobRunRow.kind, JobRunRow.status).where(
            JobRunRow.tenant_id == bank.tenant_id, JobRunRow.kind == "model_monitoring")).all()
        checks = s.execute(select(JobRunRow.status).where(
            JobRunRow.tenant_id == bank.tenant_id, JobRunRow.kind == "audit_check")).scalars().all()
        chain = audit.chain_status(s, bank.tenant_id)
    kinds = Counter(k for k, _, _ in actions)
    promises = Counter(p for k, p, _ in actions if k == "promise")
    assert len(cases) > 3 and kinds["contact"] > 10, (len(cases), kinds)
    assert promises["kept"] > 0 and promises["broken"] > 0, promises
    assert {actor for k, _, actor in actions if k in ("contact", "promise")} == {"collector@demo"}
    assert audited["collections.contact"] == kinds["contact"]  # each through the service, on the audit trail
    assert runs and {st for _, st in runs} == {"succeeded"}
    # the audit chain was checked every night, so its page opens on a stored check that found it intact
    assert len(checks) >= 75 and set(checks) == {"succeeded"}, Counter(checks)
    assert chain.ok and chain.checked_at is not None and chain.records > 0, chain
    analyst = Principal(user_id=0, tenant_id=bank.tenant_id, username="analyst",
                        roles=frozenset({Role.RISK_ANALYST}))
    stored = monitoring_runs.monitoring_runs(uow, analyst)
    assert stored and stored[0].cases > 0 and stored[0].result["characteristics"] is not None

    # the analytics pages have curves to draw: loans of the first months go 30+ past due, M1 rolls on or cures
    with uow.read_only():
        today = uow.session.get(TenantRow, bank.tenant_id).business_date  # type: ignore[union-attr]
    window = Window(today, 4)
    v = portfolio.vintages(uow, analyst, window)
    assert sum(c.loans for c in v.cohorts) > 20
    assert any((rate or 0) > 0 for c in v.cohorts for rate in c.rate_30), [c.ever_30 for c in v.cohorts]
    r = portfolio.roll_rates(uow, analyst, window)
    assert r.total.row_total("M1") > 0 and (r.total.rate("M1", "M2") or 0) + (r.total.cure_rate or 0) > 0
