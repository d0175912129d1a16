"""Close of business on a batch engine leaves the books exactly as the in-database close does: the same loans,
installments, sub-ledger rows, journal lines, loan events and run totals, to the cent, on the local engine and
on Spark, over three dates that cross a month-end; killed after a partition and rerun, it finishes the date
without applying any partition twice."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Date, Engine, bindparam, text
from tests.integration.servicing.kit import Bank
from tests.integration.servicing.seeded_portfolio import seed_portfolio

from microlend.batch.engine import BatchEngine, LocalEngine
from microlend.core import outbox, tenancy
from microlend.core.errors import ValidationError
from microlend.core.identity import Principal, Role
from microlend.servicing.cob import run_close_of_business
from microlend.servicing.cob_engine import run_close_of_business_on
from microlend.servicing.tables import ServicingSettingsRow

OPEN = date(2026, 6, 29)
THROUGH = date(2026, 7, 1)  # 30 June is a month-end: provisioning runs
LOANS = 240
SEED = 20260629


def _bank(engine: Engine, name: str) -> tuple[Bank, list[int]]:
    from microlend.core.db import make_session_factory
    from microlend.core.uow import UnitOfWork

    tenant_id = tenancy.create_tenant(UnitOfWork(make_session_factory(engine)), name, business_date=OPEN).id
    with UnitOfWork(make_session_factory(engine)) as u:  # loans stop accruing past 30 days: some do each day
        settings = u.session.get(ServicingSettingsRow, tenant_id)
        if settings is None:
            settings = ServicingSettingsRow(tenant_id=tenant_id, rate_cap=Decimal("0.24"), updated_by="test",
                                            updated_at=datetime(2026, 1, 1, tzinfo=UTC))
            u.session.add(settings)
        settings.nonaccrual_days = 30
        u.commit()
    who = Principal(user_id=1, tenant_id=tenant_id, username="cob", roles=frozenset({Role.ADMIN}))
    ids = seed_portfolio(engine, tenant_id, LOANS, SEED, OPEN)
    _under_class_states(engine, tenant_id)
    return Bank(engine, tenant_id, who), ids


def _under_class_states(engine: Engine, tenant_id: int) -> None:
    """Class states on some seeded loans: judgement floors on current and overdue loans, a restructuring whose
    observation ends on the second date (then the cure rule keeps it substandard and starts its cure), a cured
    loan upgraded on the second date and an overdue loan whose cure restarts; and non-performing loans without a
    class state whose class by days past due would fall (the cure rule)."""
    d = OPEN.toordinal()
    late = ("EXISTS (SELECT 1 FROM loan_installments i WHERE i.loan_id = l.id AND i.status IN ('pending', "
            "'overdue') AND i.due_day < :d)")
    with engine.begin() as c:
        def loans(where: str) -> list[int]:
            return [int(r[0]) for r in c.execute(text(
                f"SELECT l.id FROM loans l WHERE l.tenant_id = :t AND l.status = 'active' AND {where} "
                "ORDER BY l.id DESC"), {"t": tenant_id, "d": d})]

        current, overdue = loans(f"NOT {late}"), loans(late)
        insert = text(
            "INSERT INTO loan_class_states (loan_id, tenant_id, judged_class, judged_reason, cured_on, "
            "observe_until_day, restructured_on, restructure_until_day) "
            "VALUES (:id, :t, :judged, :reason, :cured, :observe, :restructured, :until)"
        ).bindparams(bindparam("cured", type_=Date()), bindparam("restructured", type_=Date()))
        none = {"judged": None, "reason": "", "cured": None, "observe": None, "restructured": None, "until": None}
        states = [
            (current[0], {"judged": "substandard", "reason": "borrower's business closed"}),
            (current[1], {"judged": "special_mention", "reason": "sector under watch"}),
            (current[2], {"restructured": date(2025, 6, 1), "until": d + 1}),
            (current[3], {"cured": date(2025, 12, 1), "observe": d + 1}),
            (overdue[0], {"judged": "doubtful", "reason": "guarantor insolvent"}),
            (overdue[1], {"cured": date(2026, 6, 1), "observe": d + 100}),
        ]
        for loan_id, state in states:
            c.execute(insert, {**none, **state, "id": loan_id, "t": tenant_id})
        c.execute(text("UPDATE loans SET loan_class = 'substandard' WHERE id IN (:a, :b)"),
                  {"a": current[3], "b": overdue[1]})
        # non-performing loans without a class state whose class by days past due is lower: current ones start
        # their cure (a class state each), overdue ones keep their class
        for loan_id, loan_class in ((current[4], "substandard"), (current[5], "loss"), (overdue[2], "doubtful"),
                                    (overdue[3], "loss")):
            c.execute(text("UPDATE loans SET loan_class = :c WHERE id = :id"), {"c": loan_class, "id": loan_id})


def _state(bank: Bank, ids: list[int]) -> dict[str, Any]:
    """Everything close of business writes, with each loan named by its place in the seeded portfolio."""
    index = {loan_id: k for k, loan_id in enumerate(ids)}
    # the events' handlers beyond a commit's inline share wait for the next round: deliver them all first
    while outbox.deliver_due(bank.uow(), tenant_id=bank.tenant_id, include_not_due=True).done:
        pass
    t = {"t": bank.tenant_id}

    def rows(sql: str) -> list[tuple[Any, ...]]:
        with bank.engine.connect() as c:
            return [tuple(r) for r in c.execute(text(sql), t)]

    def named(row: tuple[Any, ...]) -> tuple[Any, ...]:
        return (index.get(row[0], row[0]), *[str(v) for v in row[1:]])

    return {
        "loans": sorted(named(r) for r in rows(
            "SELECT id, status, accrual_status, days_past_due, bucket, loan_class, penalty_accrued, "
            "penalty_suspended, interest_suspended FROM loans WHERE tenant_id = :t")),
        "installments": sorted(named(r) for r in rows(
            "SELECT loan_id, number, status, interest_accrued, fee_amortised FROM loan_installments "
            "WHERE tenant_id = :t")),
        "sub_ledger": Counter(named(r) for r in rows(
            "SELECT a.loan_id, a.business_date, e.kind, a.debit_account, a.credit_account, a.amount "
            "FROM loan_accruals a JOIN journal_entries e ON e.id = a.entry_id WHERE a.tenant_id = :t")),
        "loan_lines": Counter(named(r) for r in rows(
            "SELECT l.loan_id, e.business_date, e.kind, l.account_code, l.debit, l.credit FROM journal_lines l "
            "JOIN journal_entries e ON e.id = l.entry_id WHERE l.tenant_id = :t AND l.loan_id IS NOT NULL")),
        "ledger": sorted(tuple(str(v) for v in r) for r in rows(
            "SELECT e.business_date, e.kind, l.account_code, SUM(l.debit), SUM(l.credit) FROM journal_lines l "
            "JOIN journal_entries e ON e.id = l.entry_id WHERE l.tenant_id = :t "
            "GROUP BY e.business_date, e.kind, l.account_code")),
        "events": Counter(named(r) for r in rows(
            "SELECT loan_id, business_date, kind, data FROM loan_events WHERE tenant_id = :t")),
        "runs": sorted(tuple(str(v) for v in r) for r in rows(
            "SELECT business_date, status, loans_active, interest_accrued, penalty_accrued, newly_overdue, "
            "bucket_changes FROM cob_runs WHERE tenant_id = :t")),
        "class_states": sorted(named(r) for r in rows(
            "SELECT loan_id, judged_class, judged_reason, cured_on, observe_until_day, restructured_on, "
            "restructure_until_day FROM loan_class_states WHERE tenant_id = :t")),
        "business_date": rows("SELECT business_date FROM tenants WHERE id = :t"),
    }


@pytest.fixture
def in_database(db_engine: Engine) -> dict[str, Any]:
    bank, ids = _bank(db_engine, "in-database")
    results = run_close_of_business(bank.uow(), bank.who, through=THROUGH)
    assert [r.skipped for r in results] == [False, False, False]
    return _state(bank, ids)


def _engines(spark_engine: BatchEngine | None) -> list[BatchEngine]:
    return [LocalEngine()] if spark_engine is None else [spark_engine]


def _run_on(engine: BatchEngine, db_engine: Engine, name: str, **kwargs: Any) -> dict[str, Any]:
    bank, ids = _bank(db_engine, name)
    results = run_close_of_business_on(bank.uow(), bank.who, engine, through=THROUGH, partition_loans=64, **kwargs)
    assert [r.skipped for r in results] == [False, False, False]
    return _state(bank, ids)


def test_the_local_engine_closes_as_the_database_does(db_engine: Engine, in_database: dict[str, Any]) -> None:
    on_engine = _run_on(LocalEngine(), db_engine, "local")
    assert len(in_database["sub_ledger"]) > LOANS and in_database["events"] and in_database["loan_lines"]
    assert any(k == "cob.penalty" for (_, _, k, *_) in in_database["sub_ledger"])
    reasons = {e[3] for e in in_database["events"] if e[2] == "LoanClassChanged"}
    assert any("judgement" in r for r in reasons) and any("restructured" in r for r in reasons)
    assert any("arrears repaid" in r for r in reasons)
    cures = [s for s in in_database["class_states"] if s[1] == "None" and s[3] != "None"]
    assert len(cures) >= 3  # cures started on loans without a state before
    for part in in_database:
        assert on_engine[part] == in_database[part], part


@pytest.mark.spark
@pytest.mark.xdist_group("spark")
def test_spark_closes_as_the_database_does(
    db_engine: Engine, in_database: dict[str, Any], spark_engine: BatchEngine
) -> None:
    on_engine = _run_on(spark_engine, db_engine, "spark")
    for part in in_database:
        assert on_engine[part] == in_database[part], part


class Crash(Exception):
    pass


def test_a_rerun_after_a_crash_finishes_the_date_and_applies_nothing_twice(
    db_engine: Engine, in_database: dict[str, Any]
) -> None:
    bank, ids = _bank(db_engine, "restarted")
    applied: list[int] = []

    def crash_after_the_second(first: int, last: int) -> None:
        applied.append(first)
        if len(applied) == 2:
            raise Crash

    with pytest.raises(Crash):
        run_close_of_business_on(bank.uow(), bank.who, LocalEngine(), through=THROUGH, partition_loans=64,
                                 after_partition=crash_after_the_second)
    # the in-database close leaves a date the engine has started alone
    assert all(r.skipped for r in run_close_of_business(bank.uow(), bank.who, through=OPEN))
    again: list[int] = []
    run_close_of_business_on(bank.uow(), bank.who, LocalEngine(), through=THROUGH, partition_loans=64,
                             after_partition=lambda first, last: again.append(first))
    with bank.engine.connect() as c:
        ranges = c.execute(text("SELECT COUNT(*) FROM cob_partitions WHERE tenant_id = :t AND business_date = :d"),
                           {"t": bank.tenant_id, "d": OPEN}).scalar_one()
    assert ranges >= 4 and len(again) == 3 * ranges - 2  # the first date's two applied partitions are skipped
    assert not set(applied) & set(again[: ranges - 2])
    assert _state(bank, ids) == in_database


def test_what_the_engine_does_not_compute_is_refused_before_anything_is_written(db_engine: Engine) -> None:
    bank, ids = _bank(db_engine, "revolving")
    with bank.engine.begin() as c:
        c.execute(text("UPDATE loans SET method = 'revolving' WHERE id = :id"), {"id": ids[0]})
    before = _state(bank, ids)
    with pytest.raises(ValidationError, match="revolving"):
        run_close_of_business_on(bank.uow(), bank.who, LocalEngine(), through=THROUGH)
    assert _state(bank, ids) == before
