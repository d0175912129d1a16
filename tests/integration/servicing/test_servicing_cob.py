"""Close of business: the set-based run equals the per-loan domain code, runs each date once, catches up
in order, and a run killed mid-way then rerun ends exactly where a clean run ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from tests.integration.servicing.kit import Bank

from microlend.core import audit
from microlend.core.db import Amount
from microlend.core.errors import PermissionDenied
from microlend.core.events import registry, subscribe
from microlend.core.identity import Role
from microlend.core.tables import AuditRow
from microlend.core.uow import UnitOfWork
from microlend.servicing import accrued, cob, provisions, service
from microlend.servicing.delinquency import classify, days_past_due, delinquency_bucket, penalty_for_day
from microlend.servicing.events import LoanBecameOverdue, LoanBucketChanged
from microlend.servicing.provisions import allowance_balance
from microlend.servicing.repository import BATCH_WORK_MEM, tune_batch_transaction
from microlend.servicing.schedules import LineMovement, accrued_interest, revolving_interest
from microlend.servicing.service import Disbursement
from microlend.servicing.tables import (
    CobRunRow,
    InstallmentRow,
    JournalEntryRow,
    LoanAccrualRow,
    LoanEventRow,
    LoanProvisionRow,
    LoanRow,
    ProvisionRunRow,
)

D = Decimal
START = date(2026, 1, 15)
PRODUCTS = [("EI-STD", 6), ("EP-STD", 9), ("IO-STD", 4), ("BL-STD", 3), ("EI-STD", 12), ("EP-STD", 3)]


def portfolio(bank: Bank, n: int = 12) -> tuple[list[int], int]:
    """``n`` loans of mixed methods and amounts, plus one revolving drawdown."""
    ids = []
    for k in range(n):
        code, term = PRODUCTS[k % len(PRODUCTS)]
        amount = D(5000 + 1234 * k) + D(k) / 100
        rate = D("0.0888") + D(k) / 1000
        ids.append(service.disburse(bank.uow(), bank.who, Disbursement(code, amount, term, rate)).id)
    line = service.open_credit_line(bank.uow(), bank.who, "RV-STD", D("40000"))
    revolving = service.draw_down(bank.uow(), bank.who, line.id, D("25000")).id
    return ids, revolving


def close_through(bank: Bank, last: date) -> list[cob.CobResult]:
    return cob.run_close_of_business(bank.uow(), bank.who, through=last)


class TestSetBasedEqualsDomain:
    def test_accruals_delinquency_and_penalty_match_the_per_loan_code(self, bank: Bank) -> None:
        ids, revolving = portfolio(bank)
        payers = set(ids[::3])  # every third loan pays each installment on its due date
        end = date(2026, 5, 20)
        day = START
        while day <= end:
            for loan_id in payers:
                view = service.get_loan(bank.uow(), bank.who, loan_id)
                for inst in view.installments:
                    if inst.due_date == day and inst.outstanding > 0:
                        service.post_repayment(bank.uow(), bank.who, loan_id, inst.outstanding)
            if day == date(2026, 3, 1):  # the revolving borrower repays part of the drawdown
                service.post_repayment(bank.uow(), bank.who, revolving, D("10000"))
            close_through(bank, day)
            day += timedelta(days=1)

        for loan_id in ids:
            view = service.get_loan(bank.uow(), bank.who, loan_id)
            with bank.uow() as u:
                loan = u.session.get(LoanRow, loan_id)
                assert loan is not None
                multiplier = loan.penalty_rate_e8 / loan.rate_e8
            for inst in view.installments:  # accrued-to-date per period, by the domain function
                assert inst.interest_accrued == accrued_interest(
                    inst.interest, inst.period_start, inst.due_date, end
                ), (loan_id, inst)
            unpaid = [i.due_date for i in view.installments if i.status != "paid" and i.due_date < end]
            dpd = days_past_due(min(unpaid) if unpaid else None, end)
            assert (view.days_past_due, view.bucket, view.loan_class) == (
                dpd,
                delinquency_bucket(dpd),
                classify(dpd).value,
            )
            expected_penalty = D(0)
            if loan_id not in payers:  # nothing paid: overdue principal is every installment past due
                for k in range((end - START).days + 1):
                    x = START + timedelta(days=k)
                    late = [i for i in view.installments if i.due_date < x]
                    grace = 3 * (view.method != "bullet" and view.method != "interest-only")
                    if late:
                        # compound interest (复利, the products' default): overdue interest carries penalty too;
                        # the grace days are charged back on the day the grace period is exceeded
                        overdue = sum((i.principal + i.interest for i in late), D(0))
                        dpd = days_past_due(min(i.due_date for i in late), x)
                        expected_penalty += penalty_for_day(overdue, view.annual_rate, D(str(multiplier)), dpd, grace)
            assert view.penalty_due == expected_penalty, loan_id
        rv = service.get_loan(bank.uow(), bank.who, revolving)
        moves = [
            LineMovement(START, D("25000")),
            LineMovement(date(2026, 3, 1), -repaid_principal(bank, revolving)),
        ]
        # 按月结息: the months settled on the 20th are installments of their own
        assert sum(i.interest for i in rv.installments) == revolving_interest(moves, rv.annual_rate, START, end)
        assert service.reconcile(bank.uow(), bank.who).ok


def repaid_principal(bank: Bank, loan_id: int) -> Decimal:
    """What the revolving repayment left for principal once it had settled penalty on the overdue settled
    interest (按月结息), the settled months and what the principal installment had accrued since."""
    return service.get_loan(bank.uow(), bank.who, loan_id).installments[0].principal_paid


class TestRunsOncePerDate:
    def test_catches_up_missed_dates_in_order_and_never_twice(self, bank: Bank) -> None:
        portfolio(bank, 4)
        results = close_through(bank, date(2026, 1, 20))
        assert [r.business_date for r in results] == [date(2026, 1, d) for d in range(15, 21)]
        with bank.uow() as u:
            entries = u.session.execute(select(func.count()).select_from(JournalEntryRow)).scalar_one()
        again = cob.run_close_of_business(bank.uow(), bank.who, through=date(2026, 1, 20))
        assert again == []
        with bank.uow() as u:
            assert u.session.execute(select(func.count()).select_from(JournalEntryRow)).scalar_one() == entries
            runs = u.session.execute(select(CobRunRow.business_date).order_by(CobRunRow.business_date)).scalars()
            assert list(runs) == [r.business_date for r in results]

    def test_each_date_closed_writes_one_audit_record_with_what_it_did(self, bank: Bank) -> None:
        ids, _ = portfolio(bank, 2)
        close_through(bank, date(2026, 2, 14))
        with bank.uow() as u:
            seen = u.session.execute(select(func.count()).select_from(AuditRow)
                                     .where(AuditRow.tenant_id == bank.tenant_id, AuditRow.action == "cob.run")
                                     ).scalar_one()
        results = close_through(bank, date(2026, 2, 16))
        cob.run_close_of_business(bank.uow(), bank.who, through=date(2026, 2, 16))  # nothing left: no record
        with bank.uow() as u:
            rows = list(u.session.execute(select(AuditRow).where(AuditRow.tenant_id == bank.tenant_id,
                                                                 AuditRow.action == "cob.run")
                                          .order_by(AuditRow.seq).offset(seen)).scalars())
            assert audit.verify(u.session, bank.tenant_id).ok
        assert [(r.action, r.object_type, r.object_id, r.actor) for r in rows] == [
            ("cob.run", "business_date", d.isoformat(), bank.who.username)
            for d in (date(2026, 2, 15), date(2026, 2, 16))]
        last, result = rows[-1].after, results[-1]
        assert {k: last[k] for k in ("business_date", "loans_accrued", "loans_overdue", "newly_overdue",
                                     "bucket_changes", "interest_accrued")} == {
            # and the revolving drawdown: its interest settled on January 20th (按月结息) is left unpaid
            "business_date": "2026-02-16", "loans_accrued": result.loans_active, "loans_overdue": len(ids) + 1,
            "newly_overdue": 2, "bucket_changes": 2, "interest_accrued": str(result.interest_accrued)}
        assert last["class_changes"] >= 0 and last["seconds"] >= 0

    def test_events_are_published_after_commit(self, bank: Bank) -> None:
        seen: list[Any] = []

        def record(_uow: UnitOfWork, event: Any) -> None:
            seen.append(event)

        subscribe(LoanBecameOverdue, record)
        subscribe(LoanBucketChanged, record)
        ids, _ = portfolio(bank, 2)
        try:
            close_through(bank, date(2026, 2, 16))
        finally:
            registry.unregister(LoanBecameOverdue, record)
            registry.unregister(LoanBucketChanged, record)
        # the instalment loans' (the revolving drawdown fell overdue in January, on its unpaid settled interest)
        mine = [e for e in seen if e.tenant_id == bank.tenant_id and e.loan_id in ids]
        assert {(type(e).__name__, e.loan_id) for e in mine} == {
            ("LoanBecameOverdue", ids[0]),
            ("LoanBucketChanged", ids[0]),
            ("LoanBecameOverdue", ids[1]),
            ("LoanBucketChanged", ids[1]),
        }
        assert all(e.business_date == date(2026, 2, 16) for e in mine)

    def test_needs_the_permission(self, bank: Bank) -> None:
        with pytest.raises(PermissionDenied):
            cob.run_close_of_business(bank.uow(), bank.principal(Role.CREDIT_OFFICER))


def snapshot(bank: Bank) -> dict[str, Any]:
    """Everything close of business touches, without ids or timestamps (so two tenants compare)."""
    with bank.uow() as u:
        s = u.session
        loans = list(
            s.execute(select(LoanRow).where(LoanRow.tenant_id == bank.tenant_id).order_by(LoanRow.id)).scalars()
        )
        index = {loan.id: k for k, loan in enumerate(loans)}
        closed = accrued.closed_through(s, bank.tenant_id)
        insts = [
            (index[i.loan_id], i.number, i.interest, accrued.accrued_on(i, closed), i.status, i.principal_paid)
            for i in s.execute(
                select(InstallmentRow)
                .where(InstallmentRow.tenant_id == bank.tenant_id)
                .order_by(InstallmentRow.loan_id, InstallmentRow.number)
            ).scalars()
        ]
        events = sorted(
            (index[e.loan_id], e.business_date, e.kind, str(e.data))
            for e in s.execute(select(LoanEventRow).where(LoanEventRow.tenant_id == bank.tenant_id)).scalars()
        )
        runs = [
            (r.business_date, r.interest_accrued, r.penalty_accrued, r.newly_overdue)
            for r in s.execute(
                select(CobRunRow).where(CobRunRow.tenant_id == bank.tenant_id).order_by(CobRunRow.business_date)
            ).scalars()
        ]
        state = [
            (loan.status, loan.days_past_due, loan.bucket, loan.loan_class, loan.penalty_accrued) for loan in loans
        ]
        subledger = sorted(  # the nightly postings loan by loan (分户账)
            (index[a.loan_id], a.business_date, a.leg, a.debit_account, a.credit_account, a.amount)
            for a in s.execute(select(LoanAccrualRow).where(LoanAccrualRow.tenant_id == bank.tenant_id)).scalars()
        )
    tb = service.trial_balance(bank.uow(), bank.who)
    return {
        "installments": insts,
        "events": events,
        "runs": runs,
        "loans": state,
        "ledger": [(r.code, r.debit, r.credit) for r in tb.rows],
        "subledger": subledger,
    }


class TestKillAndRerun:
    def test_a_crash_inside_a_date_rolls_it_back_and_the_rerun_matches_a_clean_run(
        self,
        bank: Bank,
        other_bank: Callable[[], Bank],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        crashed = other_bank()
        portfolio(bank, 8)
        portfolio(crashed, 8)
        close_through(bank, date(2026, 3, 20))
        close_through(crashed, date(2026, 2, 20))
        real_post = cob.post_loan_lines
        calls = {"n": 0}

        def dies_on_the_penalty_entry(*args: Any, **kwargs: Any) -> Any:
            calls["n"] += 1
            if args[3] == "cob.penalty":
                raise RuntimeError("power cut")
            return real_post(*args, **kwargs)

        monkeypatch.setattr(cob, "post_loan_lines", dies_on_the_penalty_entry)
        with pytest.raises(RuntimeError, match="power cut"):
            close_through(crashed, date(2026, 3, 20))
        monkeypatch.setattr(cob, "post_loan_lines", real_post)
        close_through(crashed, date(2026, 3, 20))
        assert snapshot(crashed) == snapshot(bank)

    @pytest.mark.slow
    def test_killed_process_then_rerun_matches_a_clean_run(self, bank: Bank, other_bank: Callable[[], Bank]) -> None:
        killed = other_bank()
        portfolio(bank, 30)
        portfolio(killed, 30)
        last = date(2027, 12, 31)
        close_through(bank, last)
        script = (
            "import sys; from datetime import date\n"
            "from microlend.core.db import make_engine, make_session_factory\n"
            "from microlend.core.identity import Principal, Role\n"
            "from microlend.core.uow import UnitOfWork\n"
            "from microlend.servicing import cob\n"
            "from microlend.bootstrap import load_modules\n"
            "load_modules()  # as the worker starts: class changes join the loans' timelines through handlers\n"
            "e = make_engine(sys.argv[1])\n"
            "who = Principal(1, int(sys.argv[2]), 'cob', frozenset({Role.SYSTEM}))\n"
            "cob.run_close_of_business(UnitOfWork(make_session_factory(e)), who, through=date(2027, 12, 31))\n"
        )
        url = bank.engine.url.render_as_string(hide_password=False)
        proc = subprocess.Popen(
            [sys.executable, "-c", script, url, str(killed.tenant_id)],
            env={**os.environ},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        # watch progress through a plain engine: its reads take no write lock, so on SQLite they never wait
        # behind the child's transactions (the platform's engine begins every transaction IMMEDIATE)
        watcher = create_engine(url)
        count_runs = select(func.count()).select_from(CobRunRow).where(CobRunRow.tenant_id == killed.tenant_id)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with watcher.connect() as conn:
                done = conn.execute(count_runs).scalar_one()
            if done >= 10 or proc.poll() is not None:
                break
            time.sleep(0.002)
        watcher.dispose()
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with killed.uow() as u:  # it really stopped part-way
            closed = u.session.execute(
                select(func.count()).select_from(CobRunRow).where(CobRunRow.tenant_id == killed.tenant_id)
            ).scalar_one()
        assert 10 <= closed < (last - START).days + 1
        close_through(killed, last)
        got, want = snapshot(killed), snapshot(bank)
        for key in want:
            assert got[key] == want[key], key


_KILLED_MID_PROVISIONING = (
    "import sys, time; from datetime import date\n"
    "from microlend.core.db import make_engine, make_session_factory\n"
    "from microlend.core.identity import Principal, Role\n"
    "from microlend.core.uow import UnitOfWork\n"
    "from microlend.servicing import cob, provisions\n"
    "import microlend.servicing.tables\n"
    "real_post = provisions.post_entry\n"
    "def held(*args, **kwargs):  # the run's loan rows are written, its posting about to be: stop here\n"
    "    print('provisioning', flush=True)\n"
    "    time.sleep(120)\n"
    "    return real_post(*args, **kwargs)\n"
    "provisions.post_entry = held\n"
    "e = make_engine(sys.argv[1])\n"
    "who = Principal(1, int(sys.argv[2]), 'cob', frozenset({Role.SYSTEM}))\n"
    "uow = UnitOfWork(make_session_factory(e))\n"
    "if sys.argv[3] == 'month-end':\n"
    "    cob.run_close_of_business(uow, who, through=date(2026, 3, 31))\n"
    "else:\n"
    "    provisions.run_provisioning(uow, who)\n"
)


def provisioning_state(bank: Bank) -> dict[str, Any]:
    """The allowance, the provisioning runs and their postings, without ids (so two tenants compare)."""
    tb = service.trial_balance(bank.uow(), bank.who)
    assert tb.balanced
    with bank.uow() as u:
        s = u.session
        runs = list(
            s.execute(select(ProvisionRunRow).where(ProvisionRunRow.tenant_id == bank.tenant_id)
                      .order_by(ProvisionRunRow.id)).scalars()
        )
        entries = s.execute(
            select(JournalEntryRow.business_date, JournalEntryRow.total_debit)
            .where(JournalEntryRow.tenant_id == bank.tenant_id, JournalEntryRow.kind == "provision")
            .order_by(JournalEntryRow.id)
        ).all()
        rows = [
            s.execute(
                select(func.count(), func.sum(LoanProvisionRow.amount, type_=Amount())).where(
                    LoanProvisionRow.run_id == r.id
                )
            ).one()
            for r in runs
        ]
        return {
            "allowance": allowance_balance(s, bank.tenant_id),
            "runs": [(r.as_of, r.loans, r.total, r.change) for r in runs],
            "loan_rows": [(int(n), total or Decimal(0)) for n, total in rows],
            "entries": [tuple(e) for e in entries],
            "ledger": [(r.code, r.debit, r.credit) for r in tb.rows],
        }


@pytest.mark.slow
@pytest.mark.parametrize("how", ["month-end", "on-demand"])
def test_killed_mid_provisioning_then_rerun_provisions_exactly_once(
    bank: Bank, other_bank: Callable[[], Bank], how: str
) -> None:
    """kill -9 while a provisioning run has written its loan rows but not yet posted the allowance's change
    (at a month-end close of business, or on demand): nothing of it stays, the ledger balances, and the rerun
    provisions once, exactly as a clean run."""
    killed = other_bank()
    for b in (bank, killed):
        portfolio(b, 12)
        close_through(b, date(2026, 3, 30))  # loans overdue since February: stages 1 and 2
    before = provisioning_state(killed)
    url = bank.engine.url.render_as_string(hide_password=False)
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_MID_PROVISIONING, url, str(killed.tenant_id), how],
        env={**os.environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the run is mid-way (or the child died)
        assert line.strip() == "provisioning", proc.stderr.read() if proc.stderr else ""
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert provisioning_state(killed) == before  # the killed run left nothing: no run, no posting
    with killed.uow() as u:
        assert u.session.execute(
            select(func.count()).select_from(CobRunRow).where(CobRunRow.tenant_id == killed.tenant_id)
        ).scalar_one() == (date(2026, 3, 30) - START).days + 1

    def run(b: Bank) -> None:
        if how == "month-end":
            close_through(b, date(2026, 3, 31))
            close_through(b, date(2026, 3, 31))  # already closed: not provisioned again
        else:
            first = provisions.run_provisioning(b.uow(), b.who)
            assert first.change > 0
            again = provisions.run_provisioning(b.uow(), b.who)  # a second run posts no change
            assert again.change == 0 and again.total == first.total

    run(killed)
    run(bank)
    got, want = provisioning_state(killed), provisioning_state(bank)
    assert got == want
    assert got["allowance"] == got["runs"][-1][2] > 0
    # one posting of the allowance on the day: never a double provision
    today = [amount for on, amount in got["entries"] if on == date(2026, 3, 31)]
    assert today == [abs(next(r[3] for r in got["runs"] if r[0] == date(2026, 3, 31)))]
    assert got["loan_rows"][-1] == (got["runs"][-1][1], got["runs"][-1][2])


def test_a_portfolio_batch_changes_the_settings_of_its_own_transaction_only(bank: Bank) -> None:
    """On PostgreSQL close of business and the provisioning run compile no statement (no JIT), sort and hash in a
    batch-sized work memory and, when the server leaves it off and the role may set it, compress the full-page
    images of their WAL, for their own transaction only; the connection keeps its settings after."""
    with bank.uow() as u:
        s = u.session
        if s.get_bind().dialect.name != "postgresql":
            pytest.skip("server settings of PostgreSQL")
        names = ("jit", "work_mem", "wal_compression")

        def settings() -> tuple[str, str, str]:
            jit, work_mem, compression = (str(s.execute(text(f"SHOW {n}")).scalar()) for n in names)
            return jit, work_mem, compression

        before = settings()
        may_set = bool(s.execute(text("SELECT has_parameter_privilege('wal_compression', 'SET')")).scalar())
        tune_batch_transaction(s)
        jit, work_mem, compression = settings()
        assert (jit, work_mem) == ("off", BATCH_WORK_MEM)
        if before[2] == "off" and may_set:
            assert compression in ("lz4", "pglz")
        else:
            assert compression == before[2]
        s.rollback()
        assert settings() == before


def test_the_days_accrual_moves_each_installment_once_by_what_it_posts(bank: Bank) -> None:
    """A date's scheduled accrual moves every accruing installment to its interest accrued to date (as
    ``accrued`` reads it: nothing is written), and the date's accrual entry carries, loan by loan, exactly what the
    loan's installments moved; no planner setting outlives the close."""
    ids, _ = portfolio(bank, 6)
    close_through(bank, START + timedelta(days=3))
    with bank.uow() as u:
        s = u.session
        postgres = s.get_bind().dialect.name == "postgresql"
        if postgres:
            shown = ("SHOW enable_hashjoin", "SHOW enable_mergejoin")
            before = [str(s.execute(text(q)).scalar()) for q in shown]
        closed = accrued.closed_through(s, bank.tenant_id)
        accrued_before = {
            row.id: accrued.accrued_on(row, closed)
            for row in s.execute(select(InstallmentRow).where(InstallmentRow.loan_id.in_(ids))).scalars()
        }
        tenant = s.execute(text("SELECT business_date FROM tenants WHERE id = :t"), {"t": bank.tenant_id}).scalar()
        on = tenant if isinstance(tenant, date) else date.fromisoformat(str(tenant))
        result, _ = cob.close_business_date(s, bank.who, on)
        if postgres:
            assert [str(s.execute(text(q)).scalar()) for q in shown] == before
        moved: dict[int, Decimal] = {}
        for row in s.execute(select(InstallmentRow).where(InstallmentRow.loan_id.in_(ids))).scalars():
            now = accrued.accrued_on(row, on.toordinal())
            if row.start_day <= on.toordinal() and accrued_before[row.id] < row.interest:
                assert now == accrued_interest(row.interest, row.period_start, row.due_date, on)
            else:
                assert now == accrued_before[row.id]
            moved[row.loan_id] = moved.get(row.loan_id, D(0)) + now - accrued_before[row.id]
        entry = s.execute(
            select(JournalEntryRow.id).where(
                JournalEntryRow.tenant_id == bank.tenant_id,
                JournalEntryRow.business_date == on,
                JournalEntryRow.kind == "cob.accrual",
            )
        ).scalar_one()
        posted = dict(
            s.execute(
                select(LoanAccrualRow.loan_id, LoanAccrualRow.amount).where(
                    LoanAccrualRow.entry_id == entry, LoanAccrualRow.leg == 0
                )
            ).tuples().all()
        )
        assert posted == {loan: amount for loan, amount in moved.items() if amount}
        assert len(posted) == len(ids) and all(amount > 0 for amount in posted.values())
        assert result.interest_accrued > sum(posted.values())  # and the drawdown's day on top


def test_interest_accrues_through_closed_dates_only_and_a_stored_figure_holds_until_the_next_close(
    bank: Bank,
) -> None:
    """Nothing stores the nightly accrual: a loan shows its interest accrued through the last closed date, a
    business date moved without a close accrues nothing, and what a repayment stores holds until the next close
    carries it forward; the books reconcile throughout."""
    loan_id = service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", D("12000"), 12, D("0.12"))).id
    close_through(bank, START + timedelta(days=9))

    def shown() -> D:
        return service.get_loan(bank.uow(), bank.who, loan_id).installments[0].interest_accrued

    first = service.get_loan(bank.uow(), bank.who, loan_id).installments[0]
    assert shown() == accrued_interest(first.interest, first.period_start, first.due_date, START + timedelta(days=9))
    bank.set_business_date(START + timedelta(days=15))  # moved, not closed: nothing more accrues
    assert shown() == accrued_interest(first.interest, first.period_start, first.due_date, START + timedelta(days=9))
    assert service.reconcile(bank.uow(), bank.who).ok
    service.post_repayment(bank.uow(), bank.who, loan_id, D("100"))
    with bank.uow() as u:
        row = u.session.execute(
            select(InstallmentRow).where(InstallmentRow.loan_id == loan_id, InstallmentRow.number == 1)
        ).scalar_one()
        assert row.accrued_through == (START + timedelta(days=9)).toordinal()  # stored as read: the last close
    assert service.reconcile(bank.uow(), bank.who).ok
    close_through(bank, START + timedelta(days=15))
    first = service.get_loan(bank.uow(), bank.who, loan_id).installments[0]
    assert first.interest_accrued == accrued_interest(
        first.interest, first.period_start, first.due_date, START + timedelta(days=15)
    )
    assert service.reconcile(bank.uow(), bank.who).ok and not service.reconcile_loans(bank.uow(), bank.who)
