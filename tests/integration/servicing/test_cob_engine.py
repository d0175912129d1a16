"""Close of business on a batch engine leaves the books exactly as the in-database close does: the same loans,
installments, sub-ledger rows, journal lines, loan events and run totals, to the cent, on the local engine and
on Spark, over three dates that cross a month-end; killed after a partition and rerun, it finishes the date
without applying any partition twice."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Date, Engine, bindparam, select, text
from tests.integration.servicing.kit import Bank
from tests.integration.servicing.seeded_portfolio import seed_portfolio

from microlend import worker
from microlend.batch.engine import BatchEngine, LocalEngine
from microlend.core import outbox, tenancy
from microlend.core.db import make_engine, make_session_factory
from microlend.core.errors import ValidationError
from microlend.core.identity import Principal, Role
from microlend.core.money import from_storage
from microlend.core.uow import UnitOfWork
from microlend.servicing.accrued import accrued_sql, closed_through
from microlend.servicing.cob import run_close_of_business
from microlend.servicing.cob_engine import (
    IN_DATABASE,
    Claim,
    apply_claimed_partition,
    run_close_of_business_on,
    set_cob_engine,
)
from microlend.servicing.delinquency import DEFAULT_BUCKETS
from microlend.servicing.service import post_repayment
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
    return Bank(engine, tenant_id, who), ids + _revolving_lines(engine, tenant_id)


def _d(day: date) -> int:
    return day.toordinal()


#: revolving drawdowns (随借随还) as they stand on OPEN, the first product's month settled on 1 July (按月结息, due
#: the day after), the second's on the 20th (not within the dates closed): (product, drawn on, line expires on,
#: principal and principal paid in cents, the drawdown's unpaid interest in cents, its settled interest
#: installments (due date, interest cents, paid cents), accrual status, compound interest, grace days)
_LINES: list[tuple[int, date, date, int, int, int, list[tuple[date, int, int]], str, bool, int]] = [
    (0, date(2026, 5, 10), date(2027, 5, 10), 2_500_000, 0, 18_231, [], "accruing", True, 0),
    # a month's settled interest overdue since 2 June, principal partly repaid
    (0, date(2026, 4, 2), date(2027, 4, 2), 1_800_000, 432_100, 10_007, [(date(2026, 6, 2), 15_391, 0)],
     "accruing", True, 3),
    # more than 30 days past due on 30 June: it stops accruing, its revolving interest reversed off-balance
    (0, date(2026, 3, 15), date(2027, 3, 15), 960_000, 0, 7_702, [(date(2026, 5, 30), 8_644, 2_000)],
     "accruing", True, 0),
    # non-accrual already: its day's revolving interest goes off-balance
    (0, date(2025, 12, 1), date(2026, 12, 1), 3_300_033, 0, 29_994, [(date(2026, 3, 2), 31_102, 0)],
     "non-accrual", True, 0),
    # the line expired on 15 June: overdue, no interest since; the settlement takes its interest out of the overdue
    (0, date(2025, 6, 15), date(2026, 6, 15), 300_000, 0, 1_322, [], "accruing", True, 0),
    # principal repaid, interest left: the settlement leaves the drawdown paid
    (0, date(2026, 1, 5), date(2027, 1, 5), 700_000, 700_000, 3_745, [], "accruing", False, 0),
    # settled on the 20th: the product of its balance grows over every date
    (1, date(2026, 2, 20), date(2027, 2, 20), 5_000_000, 1_234_500, 9_875, [], "accruing", True, 0),
    # a small balance: the day's interest is rounded once on the product, some days no cent
    (0, date(2026, 6, 1), date(2027, 6, 1), 37, 0, 0, [], "accruing", True, 0),
    # drawn on 30 June: it accrues from then; its settlement period starts on its first day
    (0, date(2026, 6, 30), date(2027, 6, 30), 1_200_000, 0, 0, [], "accruing", True, 0),
    # within its grace days on the first date, past them on the third (the grace days charged back)
    (0, date(2026, 5, 27), date(2027, 5, 27), 2_222_200, 0, 6_003, [(date(2026, 6, 27), 12_345, 0)],
     "accruing", True, 3),
]


def _revolving_lines(engine: Engine, tenant_id: int) -> list[int]:
    """The revolving drawdowns of ``_LINES`` under two revolving products, their days past due, bucket and class
    as of the day before OPEN and their balance products (cent-days since the last settlement) consistent with
    their outstanding principal; returns their ids."""
    from microlend.servicing.delinquency import classify
    from microlend.servicing.tables import InstallmentRow, LoanRow, ProductRow, RevolvingBalanceRow

    session = make_session_factory(engine)()
    try:
        rv = session.execute(select(ProductRow).where(ProductRow.tenant_id == tenant_id,
                                                      ProductRow.code == "RV-STD")).scalar_one()
        rv.settlement_day, rv.interest_due_days = 1, 1
        columns = [c.key for c in ProductRow.__table__.columns if c.key != "id"]
        other = ProductRow(**{c: getattr(rv, c) for c in columns})
        other.code, other.settlement_day, other.interest_due_days = "RV-20", 20, 3
        session.add(other)
        session.flush()
        products = [rv.id, other.id]
        ids = []
        for k, (product, drawn, expires, principal, repaid, interest, settled, accrual, compound, grace) in (
            enumerate(_LINES)
        ):
            last_settled = date(2026, 6, 1) if product == 0 else date(2026, 6, 20)
            since = max(drawn, last_settled + timedelta(days=1))
            outstanding = principal - repaid if drawn < OPEN else 0
            unpaid = [due for due, owed, paid in settled if owed > paid and due < OPEN]
            if expires < OPEN and principal > repaid:
                unpaid.append(expires)
            dpd = (OPEN - timedelta(days=1) - min(unpaid)).days if unpaid else 0
            rate_e8 = 10_800_000 + 100_000 * k
            loan = LoanRow(
                tenant_id=tenant_id, product_id=products[product], method="revolving", currency="CNY",
                principal=Decimal(principal) / 100, annual_rate=Decimal(rate_e8) / 10**8, rate_e8=rate_e8,
                penalty_rate_e8=rate_e8 * 3 // 2, grace_days=grace, compound_interest=compound, term_months=12,
                fee_mode="deduct", allocation_order=["penalty", "fee", "overdue_interest", "overdue_principal",
                                                     "current_interest", "current_principal"],
                disbursed_on=drawn, maturity_date=expires, status="active", accrual_status=accrual,
                days_past_due=dpd, bucket=DEFAULT_BUCKETS.bucket_for(dpd), loan_class=classify(dpd).value,
                interest_suspended=Decimal(2_000) / 100 if accrual == "non-accrual" else Decimal(0),
                created_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
            session.add(loan)
            session.flush()
            ids.append(loan.id)
            product = outstanding * max((min(OPEN, expires) - since).days, 0)
            if product:
                session.add(RevolvingBalanceRow(loan_id=loan.id, tenant_id=tenant_id, balance_product=product))
            rows = [(1, drawn, expires, principal, repaid, interest, 0,
                     "overdue" if expires < OPEN and principal > repaid else "pending")]
            start = drawn
            for n, (due, owed, paid) in enumerate(settled, start=2):
                rows.append((n, start, due, 0, 0, owed, paid, "overdue" if due < OPEN else "pending"))
            for number, period_start, due, prin, prin_paid, owed, paid, status in rows:
                session.add(InstallmentRow(
                    tenant_id=tenant_id, loan_id=loan.id, number=number, period_start=period_start, due_date=due,
                    start_day=_d(period_start), due_day=_d(due), principal=Decimal(prin) / 100,
                    interest=Decimal(owed) / 100, principal_paid=Decimal(prin_paid) / 100,
                    interest_paid=Decimal(paid) / 100, interest_accrued=Decimal(owed) / 100, status=status,
                    fee_amortisation=Decimal(0), fee_amortised=Decimal(0),
                ))
        session.commit()
    finally:
        session.close()
    return ids


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
    with bank.uow() as u:  # the installments' interest accrued as read through the last closed date
        t = {"t": bank.tenant_id, "c": closed_through(u.session, bank.tenant_id)}

    def rows(sql: str) -> list[tuple[Any, ...]]:
        with bank.engine.connect() as c:
            return [tuple(r) for r in c.execute(text(sql), t)]

    def named(row: tuple[Any, ...]) -> tuple[Any, ...]:
        return (index.get(row[0], row[0]), *[str(v) for v in row[1:]])

    return {
        "loans": sorted(named(r) for r in rows(
            "SELECT l.id, l.status, l.accrual_status, l.days_past_due, l.bucket, l.loan_class, l.penalty_accrued, "
            "l.penalty_suspended, l.interest_suspended, COALESCE(b.balance_product, 0) FROM loans l "
            "LEFT JOIN revolving_balances b ON b.loan_id = l.id WHERE l.tenant_id = :t")),
        "installments": sorted(named(r) for r in rows(
            f"SELECT loan_id, number, status, interest, {accrued_sql(':c')}, fee_amortised, period_start, due_date, "
            "start_day, due_day, paid_on FROM loan_installments WHERE tenant_id = :t")),
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
    # the revolving lines: the first product's month settled on 1 July into installments due the 2nd, one
    # drawdown left paid by it, the second product's balance products still growing, one line stopped accruing
    revolving = range(LOANS, LOANS + len(_LINES))
    settled = [i for i in in_database["installments"] if i[0] in revolving and i[7] == "2026-07-02"]
    assert len(settled) == sum(1 for line in _LINES if line[0] == 0) - 1  # all but the one drawn on 30 June
    assert [i[0] for i in in_database["installments"] if i[10] == "2026-07-01"] == [LOANS + 5]
    assert [int(loan[9]) > 0 for loan in in_database["loans"] if loan[0] in revolving] == [
        line[0] == 1 for line in _LINES]
    assert [loan[2] for loan in in_database["loans"] if loan[0] in revolving][2:4] == ["non-accrual"] * 2
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


def test_two_workers_share_the_dates_partitions_and_apply_each_once(
    db_engine: Engine, fresh_db_url: str, in_database: dict[str, Any]
) -> None:
    """Two workers, each with its own connections, close the same tenant and dates at once: each partition is
    applied by one of them, both apply some, and the books are those of the in-database close."""
    bank, ids = _bank(db_engine, "two-workers")
    applied: dict[str, list[tuple[int, int]]] = {"a": [], "b": []}
    failures: list[BaseException] = []

    def work(name: str) -> None:
        own = make_engine(fresh_db_url)
        try:
            def done(first: int, last: int) -> None:
                applied[name].append((first, last))
                time.sleep(0.05)  # the other worker claims the next partition meanwhile

            run_close_of_business_on(UnitOfWork(make_session_factory(own)), bank.who, LocalEngine(),
                                     through=THROUGH, partition_loans=32, worker=name, after_partition=done)
        except BaseException as e:  # reported below, on the test's thread
            failures.append(e)
        finally:
            own.dispose()

    workers = [threading.Thread(target=work, args=(name,)) for name in applied]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not failures
    with bank.engine.connect() as c:
        rows = c.execute(text("SELECT status, claimed_by FROM cob_partitions WHERE tenant_id = :t"),
                         {"t": bank.tenant_id}).all()
    assert {r[0] for r in rows} == {"done"}
    assert Counter(r[1] for r in rows) == Counter({name: len(done) for name, done in applied.items()})
    assert applied["a"] and applied["b"]
    assert _state(bank, ids) == in_database


class DyingEngine(LocalEngine):
    """The local engine of a worker that dies in its ``calls``-th computation, its partition claimed."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.calls = calls

    def run_sql(self, sql: str, tables: Any, params: Any = None) -> Any:
        self.calls -= 1
        if self.calls == 0:
            raise Crash
        return super().run_sql(sql, tables, params)


def test_a_dead_workers_claim_is_taken_over_once_its_lease_ends_and_never_applied_twice(
    db_engine: Engine, in_database: dict[str, Any]
) -> None:
    bank, ids = _bank(db_engine, "taken-over")
    with pytest.raises(Crash):  # dies computing its third partition (two computations a partition)
        run_close_of_business_on(bank.uow(), bank.who, DyingEngine(5), through=THROUGH, partition_loans=64,
                                 worker="dead", lease_seconds=1.0)
    with bank.engine.connect() as c:
        held = c.execute(text("SELECT id, first_loan_id, last_loan_id, status FROM cob_partitions "
                              "WHERE tenant_id = :t AND claimed_by = 'dead' ORDER BY first_loan_id"),
                         {"t": bank.tenant_id}).all()
    assert [r[3] for r in held] == ["done", "done", "claimed"]
    started = time.monotonic()
    taken: list[int] = []
    run_close_of_business_on(bank.uow(), bank.who, LocalEngine(), through=THROUGH, partition_loans=64,
                             worker="next", after_partition=lambda first, last: taken.append(first))
    assert held[2][1] in taken and time.monotonic() - started >= 0.5  # the lease was waited for
    after = _state(bank, ids)
    assert after == in_database
    # the dead worker, back to life with its lost claim, applies nothing
    claim = Claim(int(held[2][0]), int(held[2][1]), int(held[2][2]))
    assert not apply_claimed_partition(bank.uow(), bank.who, LocalEngine(), OPEN, DEFAULT_BUCKETS, claim, "dead")
    assert _state(bank, ids) == after


def test_the_nightly_job_closes_on_the_engine_the_banks_settings_name(
    db_engine: Engine, in_database: dict[str, Any]
) -> None:
    bank, ids = _bank(db_engine, "nightly")
    with pytest.raises(ValidationError, match="not an engine"):
        set_cob_engine(bank.uow(), bank.who, "hadoop")
    set_cob_engine(bank.uow(), bank.who, "local")
    assert worker.close_of_business(bank.uow(), bank.who, THROUGH)["closed"] == 3

    def partitions() -> list[tuple[Any, ...]]:
        with bank.engine.connect() as c:
            return [tuple(r) for r in c.execute(text(
                "SELECT business_date, engine, status FROM cob_partitions WHERE tenant_id = :t "
                "GROUP BY business_date, engine, status ORDER BY business_date"), {"t": bank.tenant_id})]

    assert [(str(r[0]), r[1], r[2]) for r in partitions()] == [
        (str(OPEN + timedelta(days=k)), "local", "done") for k in range(3)]
    assert _state(bank, ids) == in_database
    set_cob_engine(bank.uow(), bank.who, IN_DATABASE)  # back in the database: the next date closes there
    assert worker.close_of_business(bank.uow(), bank.who, THROUGH + timedelta(days=1))["closed"] == 1
    assert len(partitions()) == 3


def _overdue_loan(bank: Bank) -> tuple[int, Decimal]:
    """A scheduled, accruing loan overdue less than 20 days (it keeps accruing) without a class state, and a
    payment of what it owes overdue (penalty included) and 100.00 more: its overdue installments are paid by it
    and it stays active."""
    late = "i.status IN ('pending', 'overdue') AND i.due_day < :d"
    with bank.engine.connect() as c:
        loan_id = c.execute(text(
            "SELECT l.id FROM loans l WHERE l.tenant_id = :t AND l.status = 'active' AND l.method <> 'revolving' "
            "AND l.accrual_status = 'accruing' AND NOT EXISTS (SELECT 1 FROM loan_class_states s "
            f"WHERE s.loan_id = l.id) AND (SELECT MIN(i.due_day) FROM loan_installments i WHERE i.loan_id = l.id "
            f"AND {late}) > :d - 20 ORDER BY l.id"), {"t": bank.tenant_id, "d": OPEN.toordinal()}).scalars().first()
        assert loan_id is not None
        owed = c.execute(text(
            "SELECT SUM(principal - principal_paid + interest - interest_paid + fee - fee_paid) "
            f"FROM loan_installments i WHERE loan_id = :id AND {late}"), {"id": loan_id, "d": OPEN.toordinal()}
        ).scalar_one()
        penalty = c.execute(text("SELECT penalty_accrued - penalty_paid FROM loans WHERE id = :id"),
                            {"id": loan_id}).scalar_one()
    return int(loan_id), from_storage(int(owed) + int(penalty)) + Decimal("100.00")  # amounts stored as integers


class RepaidMidPartition(LocalEngine):
    """The local engine of a partition during which a repayment of ``loan_id`` is posted on a connection of its
    own: the repayment starts once the partition holding the loan has read it (at its first computation) and is
    given a second to commit before the partition writes."""

    def __init__(self, url: str, bank: Bank, loan_id: int, amount: Decimal) -> None:
        super().__init__()
        self.url, self.bank, self.loan_id, self.amount = url, bank, loan_id, amount
        self.thread: threading.Thread | None = None
        self.waited_for_the_partition: bool | None = None
        self.failures: list[BaseException] = []

    def _repay(self) -> None:
        own = make_engine(self.url)
        try:
            post_repayment(UnitOfWork(make_session_factory(own)), self.bank.who, self.loan_id, self.amount)
        except BaseException as e:  # reported on the test's thread
            self.failures.append(e)
        finally:
            own.dispose()

    def run_sql(self, sql: str, tables: Any, params: Any = None) -> Any:
        if self.thread is None and self.loan_id in tables["loans"].column("id").to_pylist():
            self.thread = threading.Thread(target=self._repay)
            self.thread.start()
            self.thread.join(1.0)
            self.waited_for_the_partition = self.thread.is_alive()
        return super().run_sql(sql, tables, params)

    def repaid(self, first: int, last: int) -> None:
        """After a partition commits: the repayment, when it is the loan's, is let finish on the same date."""
        if self.thread is not None and first <= self.loan_id <= last:
            self.thread.join(30)
            assert not self.thread.is_alive()


def test_a_repayment_during_a_partition_waits_for_it_and_is_not_lost(
    db_engine: Engine, fresh_db_url: str
) -> None:
    """A repayment posted on another connection while a partition has read its loan and not yet written it back
    waits for the partition's commit (PostgreSQL: the partition holds its loans ``FOR NO KEY UPDATE``; SQLite: the
    partition's transaction holds the write lock), then posts on the same business date: the books are those of
    the in-database close of that date followed by the same repayment, nothing of the repayment overwritten."""
    reference, ids = _bank(db_engine, "repaid-after-close")
    loan_id, amount = _overdue_loan(reference)
    loan_index = ids.index(loan_id)
    run_close_of_business(reference.uow(), reference.who, through=OPEN)
    reference.set_business_date(OPEN)  # the repayment of the day closed, posted before the date moves on
    post_repayment(reference.uow(), reference.who, loan_id, amount)
    reference.set_business_date(OPEN + timedelta(days=1))
    expected = _state(reference, ids)

    bank, ids = _bank(db_engine, "repaid-mid-partition")
    loan_id = ids[loan_index]
    engine = RepaidMidPartition(fresh_db_url, bank, loan_id, amount)
    (result,) = run_close_of_business_on(bank.uow(), bank.who, engine, through=OPEN, partition_loans=64,
                                         after_partition=engine.repaid)
    assert not result.skipped and not engine.failures
    assert engine.waited_for_the_partition is True
    after = _state(bank, ids)
    statuses = [i[2] for i in after["installments"] if i[0] == loan_index]
    assert "overdue" not in statuses and "paid" in statuses  # the repayment's allocation stands
    for state in (expected, after):  # the two banks' repayments share the database's ids
        state["events"] = Counter({(*e[:3], re.sub(r'"repayment_id": \d+', "", e[3])): n
                                   for e, n in state["events"].items()})
    for part in expected:
        assert after[part] == expected[part], part
