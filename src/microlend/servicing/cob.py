"""Close of business (日终批处理): set-based SQL over a tenant's whole portfolio, once per business date.

Each business date is one transaction: accrue the day's interest (so a period's accruals sum exactly to its
scheduled interest; a scheduled installment's accrual is a function of the day, read by ``accrued`` and not
written each night), add revolving daily interest, move unpaid installments past their due date to overdue,
recompute days past due, buckets and the five-category class, charge penalty interest on overdue
principal, post the day's accrual and penalty entries, record loan events and advance the business date.
Killed at any moment, the transaction rolls back and a rerun gives the same result as a clean run.

Amounts are handled as the stored integers (ten-thousandths, whole cents here); ``(2·a·b + c) / (2·c)`` on
non-negative integers is ``a·b / c`` rounded half-up, identical to the domain functions' rounding."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, bindparam, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from microlend.core import audit, metrics
from microlend.core.clock import utcnow
from microlend.core.errors import DomainError, NotFound, ValidationError
from microlend.core.identity import Permission, Principal, system_principal
from microlend.core.money import from_storage
from microlend.core.tables import TenantRow
from microlend.core.tenancy import list_tenants
from microlend.core.uow import UnitOfWork
from microlend.servicing.accrued import accrued_sql, closed_through, scheduled_to_date_sql
from microlend.servicing.classification import apply_class_rules
from microlend.servicing.classification import class_changes as class_changes_of
from microlend.servicing.delinquency import CLASS_THRESHOLDS, DEFAULT_BUCKETS, BucketScheme, LoanClass
from microlend.servicing.domain import Repayment
from microlend.servicing.events import LoanBecameOverdue, LoanBucketChanged, LoanClassChanged, RepaymentPosted
from microlend.servicing.fee_accrual import amortise_fees
from microlend.servicing.ledger import Acct, JournalEntry, credit, debit
from microlend.servicing.nonaccrual import AccruedInterestPolicy, NonAccrualSettings
from microlend.servicing.provisions import month_end, provision_in
from microlend.servicing.repository import (
    SqlLedger,
    SqlLoanRepository,
    bank_nonaccrual,
    create_temporary_as,
    in_work_rows,
    of_work_rows,
    post_entry,
    tune_batch_transaction,
)
from microlend.servicing.revolving import BALANCES, revolving_day_interest, settle_revolving
from microlend.servicing.subledger import post_loan_lines as post_loan_lines  # the kill tests patch it here
from microlend.servicing.tables import CobRunRow, LoanEventRow, LoanRow

#: 360 days × 10^8 (rates are stored × 10^8), doubled for half-up rounding
_DAY_DENOMINATOR = 2 * 360 * 10**8
MAX_CATCH_UP_DAYS = 3660


@dataclass(frozen=True)
class CobResult:
    """What one business date's close of business did."""

    business_date: date
    loans_active: int
    interest_accrued: Decimal
    penalty_accrued: Decimal
    newly_overdue: int
    bucket_changes: int
    seconds: float
    skipped: bool = False
    steps: dict[str, float] = field(default_factory=dict, compare=False)
    #: interest and penalty of non-accrual loans, to the off-balance memo accounts instead of income
    interest_off_balance: Decimal = Decimal(0)
    penalty_off_balance: Decimal = Decimal(0)
    #: loans that stopped accruing today, and what of their accrued-but-unpaid amounts was reversed
    stopped_accruing: int = 0
    reversed_to_off_balance: Decimal = Decimal(0)
    #: active loans past due once the date is closed
    loans_overdue: int = 0


def _bucket_case(scheme: BucketScheme, dpd: str) -> str:
    parts = [f"WHEN {dpd} <= {b.high} THEN '{b.name}'" for b in scheme.buckets if b.high is not None]
    return f"CASE {' '.join(parts)} ELSE '{scheme.buckets[-1].name}' END"


def _class_case(dpd: str) -> str:
    parts = [f"WHEN {dpd} > {threshold} THEN '{klass.value}'" for threshold, klass in CLASS_THRESHOLDS]
    return f"CASE {' '.join(parts)} ELSE '{LoanClass.NORMAL.value}' END"


#: its day's interest: accrued by the end of :d less accrued through :c (nothing stored: see ``accrued``)
_DAY_SCHEDULED = f"({scheduled_to_date_sql(':d')} - {accrued_sql(':c')})"
_REVOLVING_DAY = revolving_day_interest("i", "l", "b")
#: a revolving loan's open drawdowns with the loan and its balance product (a loan without one: none yet)
_REVOLVING_FROM = f"loan_installments i JOIN loans l ON l.id = i.loan_id LEFT JOIN {BALANCES} b ON b.loan_id = l.id"
_REVOLVING_WHERE = (
    "l.tenant_id = :t AND l.status = 'active' "
    "AND l.method = 'revolving' AND i.tenant_id = :t AND i.start_day <= :d AND i.due_day > :d "
    "AND i.principal > i.principal_paid"
)
_REVOLVING_LOANS = "SELECT id FROM loans WHERE tenant_id = :t AND status = 'active' AND method = 'revolving'"
#: the day's interest (storage units), computed once per date before any accrual moves, a row per accruing
#: installment or open drawdown (loan, scheduled, revolving; the other part zero): scheduled (accrued-to-date less
#: accrued) and revolving (a day on the outstanding drawdown). Not summed per loan here: nearly every loan has one
#: accruing row, and the readers that need a loan's figure sum its rows (the posting lines, in loan order). A
#: temporary table private to the closing connection, emptied before the date commits
_DAY_TABLE = "cob_day_interest"
#: the revolving loans' drawdowns open today, one row each (installment id, loan, the day's interest, outstanding
#: principal in cents), read once per date by step 0 for the revolving accrual and the balance products
_DRAWN_TABLE = "cob_day_drawdowns"
#: from this many loans accruing today the date's temporary tables are analysed for the planner (below, the
#: catalog writes of analysing cost more than any plan saves)
_ANALYZE_FROM = 10_000


def _accruing(postgres: bool) -> str:
    """SQL: an installment accruing on :d: started, not written off and, through the last closed date :c, accrued
    less than its interest (the stored figure less than it too, which the accruing index of SQLite holds). On
    PostgreSQL the day's accruing rows are read in table order: started periods are most of the table, which the
    (tenant, start day) index would first list in a bitmap of millions of rows before reading every page anyway;
    ``+ 0`` keeps the planner off that index."""
    started = "start_day + 0 <= :d" if postgres else "start_day <= :d"
    return (
        f"tenant_id = :t AND {started} AND interest_accrued < interest AND status <> 'written_off' "
        f"AND {accrued_sql(':c')} < interest"
    )


def _scalar(session: Session, sql: str, **params: Any) -> int:
    value = session.execute(text(sql), params).scalar()
    return int(value or 0)


class _Laps:
    """Seconds spent per step of a run, for the run's report."""

    def __init__(self) -> None:
        self.started = self._mark = time.perf_counter()
        self.steps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.steps[name] = now - self._mark
        self._mark = now


def close_business_date(
    session: Session, who: Principal, on: date, buckets: BucketScheme = DEFAULT_BUCKETS
) -> tuple[CobResult, list[Any]]:
    """Run every step of one date inside the caller's transaction; returns the result and the events."""
    laps = _Laps()
    # :c the last closed date, through which the installments' accruals are read (the day before, or earlier when
    # the business date moved without a close)
    p = {"t": who.tenant_id, "d": on.toordinal(), "c": min(closed_through(session, who.tenant_id), on.toordinal() - 1)}
    rule = bank_nonaccrual(session, who.tenant_id)
    _day_interest(session, p)
    laps.lap("day_interest")
    memo_interest = _suspend_interest(session, p)
    laps.lap("non_accrual_memo")
    accrued = _scalar(session, f"SELECT SUM(scheduled) FROM {_DAY_TABLE}")
    revolving = _scalar(session, f"SELECT SUM(revolving) FROM {_DAY_TABLE}")
    _post_day_interest(session, who, on, p, accrued + revolving - memo_interest, memo_interest)
    laps.lap("interest_postings")
    _accrue_revolving_interest(session, p, revolving)
    settle_revolving(session, on, p, _DRAWN_TABLE)
    laps.lap("revolving")
    amortise_fees(session, who, on, post_loan_lines)
    laps.lap("fee_amortisation")
    _mark_overdue(session, p)
    laps.lap("overdue")
    _compute_delinquency(session, p, buckets)
    reasons = apply_class_rules(session, who.tenant_id, on)
    laps.lap("delinquency")
    _record_delinquency_events(session, p, on)
    laps.lap("events")
    class_changes = class_changes_of(session, who.tenant_id, on, reasons)
    penalty_total, memo_penalty = _update_loans(session, p)
    _post_day_penalty(session, who, on, p, penalty_total - memo_penalty, memo_penalty)
    laps.lap("loan_update")
    stopped, reversed_loans = _stop_accruing(session, p, on, rule)
    # every active loan past due is in the scratch rows (with its days past due), not found by reading every loan
    overdue = _scalar(session, "SELECT COUNT(*) FROM cob_work WHERE tenant_id = :t AND days_past_due > 0", **p)
    session.execute(text("DELETE FROM cob_work WHERE tenant_id = :t"), p)
    _empty_day_table(session)
    laps.lap("non_accrual")
    interest_total = from_storage(accrued + revolving - memo_interest)
    penalty_amount = from_storage(penalty_total - memo_penalty)
    reversed_interest = sum(r[1] for r in reversed_loans)
    reversed_penalty = sum(r[2] for r in reversed_loans)
    _post_reversed_to_off_balance(session, who, on, reversed_loans)
    laps.lap("non_accrual_reversal")
    if month_end(on):  # month-end provisioning (月末拨备): the allowance follows the day's classes
        provision_in(session, who, on, accrued_through=p["d"])
        laps.lap("provisions")
    events = _events(session, who.tenant_id, on)
    active = _scalar(session, "SELECT COUNT(*) FROM loans WHERE tenant_id = :t AND status = 'active'", **p)
    laps.lap("postings")
    newly_overdue = sum(isinstance(e, LoanBecameOverdue) for e in events)
    result = CobResult(
        on,
        active,
        interest_total,
        penalty_amount,
        newly_overdue,
        len(events) - newly_overdue,
        time.perf_counter() - laps.started,
        steps=laps.steps,
        interest_off_balance=from_storage(memo_interest),
        penalty_off_balance=from_storage(memo_penalty),
        stopped_accruing=stopped,
        reversed_to_off_balance=from_storage(reversed_interest + reversed_penalty),
        loans_overdue=overdue,
    )
    return result, [*events, *class_changes]


#: the loans not accruing when the date's close starts, read once into a temporary table (the off-balance
#: interest, the postings and the penalty split read it; only step 6b, after them, changes who is in it)
_NON_ACCRUAL_TABLE = "cob_day_non_accrual"
_NON_ACCRUAL_LOANS = f"SELECT loan_id FROM {_NON_ACCRUAL_TABLE}"
_NPL_CLASSES = ", ".join(f"'{c.value}'" for c in LoanClass if c.non_performing)
_DAY_COLUMNS = "loan_id INTEGER NOT NULL, scheduled BIGINT NOT NULL, revolving BIGINT NOT NULL"
_DAY_TABLES = (_DAY_TABLE, _DRAWN_TABLE, _NON_ACCRUAL_TABLE)


def _day_interest(session: Session, p: dict[str, int]) -> None:
    """Step 0: the day's scheduled and revolving interest of each accruing installment and open drawdown (a row
    each, the other part zero), in one pass over the accruing installments and one over the revolving loans' open
    drawdowns, into the date's temporary tables: the day's totals, the off-balance part and the per-loan posting
    lines read the day's table instead of reading the installments again; the revolving accrual and the balance
    products read the open drawdowns' rows (id, loan, day's interest, outstanding cents) from theirs. The
    scheduled accrual is read, not written (step 1 is its formula: ``accrued``), so the scheduled installments are
    only read."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if not postgres:  # PostgreSQL recreates it each date from the accruing rows (below)
        session.execute(text(f"CREATE TEMPORARY TABLE IF NOT EXISTS {_DAY_TABLE} ({_DAY_COLUMNS})"))
    session.execute(
        text(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_DRAWN_TABLE} (id INTEGER NOT NULL PRIMARY KEY, "
            "loan_id INTEGER NOT NULL, amount BIGINT NOT NULL, open_cents BIGINT NOT NULL)"
        )
    )
    session.execute(
        text(f"CREATE TEMPORARY TABLE IF NOT EXISTS {_NON_ACCRUAL_TABLE} (loan_id INTEGER NOT NULL PRIMARY KEY)")
    )
    _empty_day_table(session, (_DRAWN_TABLE, _NON_ACCRUAL_TABLE) if postgres else _DAY_TABLES)
    session.execute(
        text(
            f"INSERT INTO {_NON_ACCRUAL_TABLE} (loan_id) "
            "SELECT id FROM loans WHERE tenant_id = :t AND accrual_status = 'non-accrual'"
        ),
        p,
    )
    # on PostgreSQL the revolving loans' ids, as an array, lead to their rows by the loan index: the planner
    # would otherwise read every installment started by today for the few that are drawdowns
    by_loan = f" AND i.loan_id = ANY(ARRAY({_REVOLVING_LOANS}))" if postgres else ""
    session.execute(
        text(
            f"INSERT INTO {_DRAWN_TABLE} (id, loan_id, amount, open_cents) SELECT i.id, i.loan_id, {_REVOLVING_DAY}, "
            f"(i.principal - i.principal_paid) / 100 FROM {_REVOLVING_FROM} WHERE {_REVOLVING_WHERE}"
            + by_loan
        ),
        p,
    )
    drawn = f"SELECT loan_id, 0, amount FROM {_DRAWN_TABLE}"
    if postgres:
        # the accruing installments read with parallel workers (``create_temporary_as``); the drawdowns' rows are
        # added after it (a temporary table is read by its own connection only, which would keep the whole
        # statement serial). The columns' types are those of SQLite's table
        accruing = create_temporary_as(
            session,
            _DAY_TABLE,
            f"SELECT loan_id, CAST({_DAY_SCHEDULED} AS BIGINT) AS scheduled, CAST(0 AS BIGINT) AS revolving "
            f"FROM loan_installments WHERE {_accruing(postgres)}",
            p,
        )
        session.execute(text(f"INSERT INTO {_DAY_TABLE} (loan_id, scheduled, revolving) {drawn}"))
        # the planner has no statistics of a temporary table until it is analysed: worth it for a portfolio's worth
        if accruing >= _ANALYZE_FROM:
            session.execute(text(f"ANALYZE {_DAY_TABLE}, {_DRAWN_TABLE}, {_NON_ACCRUAL_TABLE}"))
    else:
        session.execute(
            text(
                f"INSERT INTO {_DAY_TABLE} (loan_id, scheduled, revolving) SELECT loan_id, {_DAY_SCHEDULED}, 0 "
                f"FROM loan_installments WHERE {_accruing(postgres)} UNION ALL {drawn}"
            ),
            p,
        )


def _empty_day_table(session: Session, tables: tuple[str, ...] = _DAY_TABLES) -> None:
    if session.get_bind().dialect.name == "postgresql":
        # temporary tables: nothing shared locked
        session.execute(text(f"TRUNCATE {', '.join(tables)}"))
    else:
        for table in tables:
            session.execute(text(f"DELETE FROM {table}"))


def _suspend_interest(session: Session, p: dict[str, int]) -> int:
    """Step 0, before the day's accrual: what non-accrual loans accrue today (scheduled and revolving, as step 0
    read it) goes to their off-balance interest; returns it in storage units (the day's income leaves it out)."""
    if session.execute(text(_NON_ACCRUAL_LOANS + " LIMIT 1"), p).first() is None:
        return 0
    session.execute(
        text(
            "UPDATE loans SET interest_suspended = interest_suspended + d.amount FROM (SELECT loan_id, "
            f"SUM(scheduled + revolving) AS amount FROM {_DAY_TABLE} WHERE loan_id IN ({_NON_ACCRUAL_LOANS}) "
            "GROUP BY loan_id) d WHERE loans.id = d.loan_id AND loans.tenant_id = :t "
            "AND loans.accrual_status = 'non-accrual'"
        ),
        p,
    )
    return _scalar(
        session,
        f"SELECT SUM(scheduled + revolving) FROM {_DAY_TABLE} WHERE loan_id IN ({_NON_ACCRUAL_LOANS})",
        **p,
    )


def _stop_accruing(
    session: Session, p: dict[str, int], on: date, rule: NonAccrualSettings
) -> tuple[int, list[tuple[int, int, int]]]:
    """Step 6b: loans reaching the bank's threshold stop accruing (an event each); by the bank's policy their
    accrued-but-unpaid interest and penalty are reversed to the off-balance accounts or kept. Returns the
    number of loans and, per loan reversed, its id and its reversed interest and penalty in storage units."""
    npl = f" OR loan_class IN ({_NPL_CLASSES})" if rule.on_npl else ""
    # only a loan overdue today (in the scratch table) can have reached the threshold since yesterday
    reaching = (
        "tenant_id = :t AND status = 'active' AND accrual_status = 'accruing' "
        f"AND (days_past_due > {int(rule.days)}{npl}) AND {of_work_rows(session, 'id')}"
    )
    stopped = _scalar(session, f"SELECT COUNT(*) FROM loans WHERE {reaching}", **p)
    if not stopped:
        return 0, []
    session.execute(
        text(
            "INSERT INTO loan_events (tenant_id, loan_id, business_date, kind, data) "
            "SELECT :t, id, :bd, 'LoanStoppedAccruing', '{\"days_past_due\": ' || days_past_due || "
            f"', \"loan_class\": \"' || loan_class || '\", \"policy\": \"{rule.policy.value}\"}}' "
            f"FROM loans WHERE {reaching}"
        ).bindparams(bindparam("bd", type_=Date())),
        {**p, "bd": on},
    )
    reversed_loans: list[tuple[int, int, int]] = []
    if rule.policy is AccruedInterestPolicy.REVERSE:
        owed = f"{accrued_sql(':d')} - interest_paid"  # accrued through today, the date being closed
        unpaid = (
            f"(SELECT CASE WHEN SUM({owed}) > 0 THEN SUM({owed}) ELSE 0 END FROM loan_installments "
            "WHERE loan_id = loans.id)"
        )
        reversed_loans = [
            (int(r[0]), int(r[1] or 0), int(r[2] or 0))
            for r in session.execute(
                text(f"SELECT id, {unpaid}, penalty_accrued - penalty_paid FROM loans WHERE {reaching} ORDER BY id"), p
            )
        ]
        session.execute(
            text(
                f"UPDATE loans SET accrual_status = 'non-accrual', interest_suspended = interest_suspended + {unpaid}, "
                f"penalty_suspended = penalty_suspended + penalty_accrued - penalty_paid WHERE {reaching}"
            ),
            p,
        )
    else:
        session.execute(text(f"UPDATE loans SET accrual_status = 'non-accrual' WHERE {reaching}"), p)
    return stopped, reversed_loans


def _accrue_revolving_interest(session: Session, p: dict[str, int], revolving: int) -> None:
    """Step 2, revolving drawdowns: one day's interest on the outstanding principal (annual / 360), as step 0
    computed it for each open drawdown."""
    if revolving:
        # PostgreSQL: the ids as an array lead to the rows by the primary key (not a scan of every installment)
        by_id = ""
        if session.get_bind().dialect.name == "postgresql":
            by_id = f" AND loan_installments.id = ANY(ARRAY(SELECT id FROM {_DRAWN_TABLE}))"
        session.execute(
            text(
                "UPDATE loan_installments SET interest = loan_installments.interest + r.amount, "
                "interest_accrued = loan_installments.interest_accrued + r.amount "
                f"FROM {_DRAWN_TABLE} r WHERE loan_installments.id = r.id{by_id}"
            ),
            p,
        )


def _mark_overdue(session: Session, p: dict[str, int]) -> None:
    """Step 3: unpaid installments past their due date are overdue."""
    session.execute(
        text(
            "UPDATE loan_installments SET status = 'overdue' "
            "WHERE tenant_id = :t AND status = 'pending' AND due_day < :d"
        ),
        p,
    )


def _compute_delinquency(session: Session, p: dict[str, int], buckets: BucketScheme) -> None:
    """Step 4, per loan: days past due, bucket, class and today's penalty, into the scratch table (loans
    back to current included, so they leave their bucket). Penalty is charged on overdue principal and, for a
    loan under compound interest (复利), on its overdue interest too. Within the grace period (宽限期) none is
    charged; on the day it is exceeded the grace days are charged back (penalty from the first day overdue)."""
    session.execute(text("DELETE FROM cob_work WHERE tenant_id = :t"), p)
    dpd = "(:d - o.oldest)"
    base = "(o.overdue_principal + CASE WHEN l.compound_interest THEN o.overdue_interest ELSE 0 END)"
    days = f"CASE WHEN {dpd} = l.grace_days + 1 THEN l.grace_days + 1 ELSE 1 END"
    penalty = (
        f"CASE WHEN {dpd} > l.grace_days THEN 100 * ((2 * ({base} / 100) * l.penalty_rate_e8"
        f" + {_DAY_DENOMINATOR // 2}) / {_DAY_DENOMINATOR}) * ({days}) ELSE 0 END"
    )
    session.execute(
        text(
            "INSERT INTO cob_work (tenant_id, loan_id, days_past_due, bucket, loan_class, overdue_principal, penalty) "
            f"SELECT :t, o.loan_id, {dpd}, {_bucket_case(buckets, dpd)}, {_class_case(dpd)}, o.overdue_principal, "
            f"{penalty} FROM (SELECT loan_id, MIN(due_day) AS oldest, "
            "CAST(SUM(principal - principal_paid) AS BIGINT) AS overdue_principal, "
            "CAST(SUM(interest - interest_paid) AS BIGINT) AS overdue_interest FROM loan_installments "
            "WHERE tenant_id = :t AND status = 'overdue' GROUP BY loan_id) o "
            "JOIN loans l ON l.id = o.loan_id WHERE l.status = 'active'"
        ),
        p,
    )
    current = buckets.bucket_for(0)
    session.execute(
        text(
            "INSERT INTO cob_work (tenant_id, loan_id, days_past_due, bucket, loan_class, overdue_principal, penalty) "
            f"SELECT :t, l.id, 0, '{current}', '{LoanClass.NORMAL.value}', 0, 0 FROM loans l "
            "WHERE l.tenant_id = :t AND l.status = 'active' AND (l.days_past_due > 0 OR l.bucket <> :current) "
            "AND NOT EXISTS (SELECT 1 FROM cob_work w WHERE w.tenant_id = :t AND w.loan_id = l.id)"
        ),
        {**p, "current": current},
    )


def _record_delinquency_events(session: Session, p: dict[str, int], on: date) -> None:
    """Step 5, events: newly overdue, and bucket moves (both ways)."""
    on_param = bindparam("bd", type_=Date())
    session.execute(
        text(
            "INSERT INTO loan_events (tenant_id, loan_id, business_date, kind, data) "
            "SELECT :t, w.loan_id, :bd, 'LoanBecameOverdue', '{\"days_past_due\": ' || w.days_past_due || '}' "
            "FROM cob_work w JOIN loans l ON l.id = w.loan_id "
            f"WHERE w.tenant_id = :t AND l.days_past_due = 0 AND w.days_past_due > 0{in_work_rows(session, 'l.id')}"
        ).bindparams(on_param),
        {**p, "bd": on},
    )
    session.execute(
        text(
            "INSERT INTO loan_events (tenant_id, loan_id, business_date, kind, data) "
            "SELECT :t, w.loan_id, :bd, 'LoanBucketChanged', '{\"days_past_due\": ' || w.days_past_due || "
            '\', "from_bucket": "\' || l.bucket || \'", "to_bucket": "\' || w.bucket || \'"}\' '
            "FROM cob_work w JOIN loans l ON l.id = w.loan_id "
            f"WHERE w.tenant_id = :t AND l.bucket <> w.bucket{in_work_rows(session, 'l.id')}"
        ).bindparams(on_param),
        {**p, "bd": on},
    )


def _update_loans(session: Session, p: dict[str, int]) -> tuple[int, int]:
    """Step 6: the loans take their new state and penalty (a non-accrual loan's off-balance); returns the day's
    penalty and the part of it that is off-balance, in storage units (the scratch rows stay for step 6b)."""
    by_id = in_work_rows(session, "loans.id")
    session.execute(
        text(
            "UPDATE loans SET days_past_due = w.days_past_due, bucket = w.bucket, loan_class = w.loan_class, "
            "penalty_accrued = loans.penalty_accrued + w.penalty, penalty_suspended = loans.penalty_suspended "
            "+ CASE WHEN loans.accrual_status = 'non-accrual' THEN w.penalty ELSE 0 END "
            f"FROM cob_work w WHERE w.tenant_id = :t AND w.loan_id = loans.id{by_id}"
        ),
        p,
    )
    penalty_total = _scalar(session, "SELECT SUM(penalty) FROM cob_work WHERE tenant_id = :t", **p)
    memo = 0
    if penalty_total:
        memo = _scalar(
            session,
            f"SELECT SUM(penalty) FROM cob_work WHERE tenant_id = :t AND loan_id IN ({_NON_ACCRUAL_LOANS})",
            **p,
        )
    return penalty_total, memo


def _by_loan(part: str, where: str) -> str:
    """SQL: (loan_id, amount) of the day's ``part`` (scheduled or revolving) per loan, of the loans ``where``."""
    return (
        f"SELECT loan_id, CAST(SUM({part}) AS BIGINT) AS amount FROM {_DAY_TABLE} WHERE {part} <> 0 AND {where} "
        "GROUP BY loan_id"
    )


def _post_day_interest(
    session: Session, who: Principal, on: date, p: dict[str, int], income: int, off_balance: int
) -> None:
    """Step 1a, before the accruals move: the day's interest, one debit and one credit line per loan: to income
    for accruing loans, to the off-balance memo accounts (表外, against their contra) for non-accrual ones."""
    accruing = f"loan_id NOT IN ({_NON_ACCRUAL_LOANS})"
    post_loan_lines(
        session, who, on, "cob.accrual", f"interest accrued for {on.isoformat()}", income,
        [
            (Acct.INTEREST_RECEIVABLE, Acct.INTEREST_INCOME, _by_loan("scheduled", accruing)),
            (Acct.INTEREST_RECEIVABLE, Acct.INTEREST_INCOME, _by_loan("revolving", accruing)),
        ],
        p,
    )
    non_accrual = f"loan_id IN ({_NON_ACCRUAL_LOANS})"
    post_loan_lines(
        session, who, on, "cob.off_balance", f"off-balance interest of non-accrual loans for {on.isoformat()}",
        off_balance,
        [
            (Acct.OFF_BALANCE_INTEREST, Acct.OFF_BALANCE_CONTRA, _by_loan("scheduled", non_accrual)),
            (Acct.OFF_BALANCE_INTEREST, Acct.OFF_BALANCE_CONTRA, _by_loan("revolving", non_accrual)),
        ],
        p,
    )


def _post_day_penalty(
    session: Session, who: Principal, on: date, p: dict[str, int], income: int, off_balance: int
) -> None:
    """Step 6a, from the scratch rows: the day's penalty interest per loan, to income or (non-accrual) off-balance."""
    rows = "SELECT loan_id, penalty AS amount FROM cob_work WHERE tenant_id = :t AND loan_id "
    post_loan_lines(
        session, who, on, "cob.penalty", f"penalty interest for {on.isoformat()}", income,
        [(Acct.PENALTY_RECEIVABLE, Acct.PENALTY_INCOME, rows + f"NOT IN ({_NON_ACCRUAL_LOANS})")],
        p,
    )
    post_loan_lines(
        session, who, on, "cob.off_balance", f"off-balance penalty of non-accrual loans for {on.isoformat()}",
        off_balance,
        [(Acct.OFF_BALANCE_PENALTY, Acct.OFF_BALANCE_CONTRA, rows + f"IN ({_NON_ACCRUAL_LOANS})")],
        p,
    )


def _post_reversed_to_off_balance(
    session: Session, who: Principal, on: date, reversed_loans: list[tuple[int, int, int]]
) -> None:
    """Step 7: what loans stopping accruing today had accrued but not been paid leaves income for the memo
    accounts, loan by loan."""
    lines = []
    for loan_id, interest, penalty in reversed_loans:
        i, pen = from_storage(interest), from_storage(penalty)
        lines += [
            debit(Acct.INTEREST_INCOME, i, loan_id),
            credit(Acct.INTEREST_RECEIVABLE, i, loan_id),
            debit(Acct.PENALTY_INCOME, pen, loan_id),
            credit(Acct.PENALTY_RECEIVABLE, pen, loan_id),
            debit(Acct.OFF_BALANCE_INTEREST, i, loan_id),
            debit(Acct.OFF_BALANCE_PENALTY, pen, loan_id),
            credit(Acct.OFF_BALANCE_CONTRA, i + pen, loan_id),
        ]
    if any(line.debit or line.credit for line in lines):
        post_entry(
            session,
            who,
            on,
            JournalEntry(
                "cob.non_accrual",
                tuple(lines),
                f"accrued interest and penalty of loans stopping accruing on {on.isoformat()} moved off-balance",
            ),
        )


def _events(session: Session, tenant_id: int, on: date) -> list[Any]:
    rows = session.execute(  # columns, not ORM objects: one row per event of the day, read in one statement
        select(LoanEventRow.loan_id, LoanEventRow.kind, LoanEventRow.data, LoanRow.customer_id)
        .join(LoanRow, LoanRow.id == LoanEventRow.loan_id)
        .where(
            LoanEventRow.tenant_id == tenant_id,
            LoanEventRow.business_date == on,
            LoanEventRow.kind.in_(("LoanBecameOverdue", "LoanBucketChanged")),
        )
        .order_by(LoanEventRow.id)
    ).tuples()
    events: list[Any] = []
    for loan_id, kind, stored, customer_id in rows:
        data = stored or {}
        if kind == "LoanBecameOverdue":
            events.append(LoanBecameOverdue(tenant_id, loan_id, on, int(data["days_past_due"]), customer_id))
        else:
            events.append(
                LoanBucketChanged(
                    tenant_id, loan_id, on, data["from_bucket"], data["to_bucket"], int(data["days_past_due"])
                )
            )
    return events


def run_close_of_business(
    uow: UnitOfWork, who: Principal, *, through: date | None = None, buckets: BucketScheme = DEFAULT_BUCKETS
) -> list[CobResult]:
    """Close every open business date up to ``through`` (default: the current one), oldest first, each in its
    own transaction. A date already closed is never closed again; a crash leaves the next run to redo it."""
    who.require(Permission.RUN_CLOSE_OF_BUSINESS)
    return close_open_dates(uow, who, through, lambda day: _close_one(uow, who, day, buckets))


def close_open_dates(
    uow: UnitOfWork, who: Principal, through: date | None, close_one: Callable[[date], CobResult]
) -> list[CobResult]:
    """Run ``close_one`` for every open business date up to ``through`` (default: the current one), oldest first,
    counting each run and failure; the checks on ``through`` every way of closing shares."""
    with uow:
        tenant = uow.session.get(TenantRow, who.tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {who.tenant_id} not found")
        first = tenant.business_date
    last = through or first
    if last < first - timedelta(days=1):
        raise ValidationError(f"date: {last} is already closed (the open business date is {first})", field="date")
    if (last - first).days > MAX_CATCH_UP_DAYS:
        raise ValidationError(f"date: more than {MAX_CATCH_UP_DAYS} days to catch up", field="date")
    results: list[CobResult] = []
    day = first
    while day <= last:
        with metrics.failures_counted(metrics.CLOSE_OF_BUSINESS, expected=(DomainError,)):
            result = close_one(day)
        if not result.skipped:
            metrics.job_ran(metrics.CLOSE_OF_BUSINESS, result.seconds)
        results.append(result)
        day += timedelta(days=1)
    return results


def _close_one(uow: UnitOfWork, who: Principal, on: date, buckets: BucketScheme) -> CobResult:
    with uow:
        s = uow.session
        tune_batch_transaction(s)  # PostgreSQL: no JIT, batch work memory; SQLite: a page cache the database's size
        tenant = s.execute(select(TenantRow).where(TenantRow.id == who.tenant_id).with_for_update()).scalar_one()
        done = s.execute(
            select(CobRunRow.id).where(CobRunRow.tenant_id == who.tenant_id, CobRunRow.business_date == on)
        ).first()
        if done or tenant.business_date > on:
            return CobResult(on, 0, Decimal(0), Decimal(0), 0, 0, 0.0, skipped=True)
        started_at = utcnow()
        cpu_started = time.thread_time()
        credit_started = time.perf_counter()
        applied = apply_credit_balances(uow, who, on)
        credit_seconds = time.perf_counter() - credit_started
        result, events = close_business_date(s, who, on, buckets)
        result = replace(
            result, seconds=result.seconds + credit_seconds, steps={"credit_applied": credit_seconds, **result.steps}
        )
        events = [*applied, *events]
        cpu_ms = round((time.thread_time() - cpu_started) * 1000)
        s.add(
            CobRunRow(
                tenant_id=who.tenant_id,
                business_date=on,
                status="done",
                loans_active=result.loans_active,
                interest_accrued=result.interest_accrued,
                penalty_accrued=result.penalty_accrued,
                newly_overdue=result.newly_overdue,
                bucket_changes=result.bucket_changes,
                started_at=started_at,
                finished_at=utcnow(),
                cpu_ms=cpu_ms,
            )
        )
        tenant.business_date = on + timedelta(days=1)
        try:
            s.flush()
        except IntegrityError:  # a concurrent run closed this date first
            return CobResult(on, 0, Decimal(0), Decimal(0), 0, 0, 0.0, skipped=True)
        audit.record(s, who, "cob.run", "business_date", on.isoformat(), after=_audit_facts(result, events))
        for event in events:
            uow.publish(event)
        uow.commit()
    return result


def apply_credit_balances(uow: UnitOfWork, who: Principal, on: date) -> list[Any]:
    """溢缴款自动扣款 before the day is closed: a loan holding a credit balance under a product that applies it
    automatically settles what is due by today from it (in the product's order), so credit never lets it fall
    overdue nor be charged penalty. Few loans hold credit: each goes through the domain code. Returns the
    events to publish."""
    s = uow.session
    due = (
        "SELECT l.id FROM loans l JOIN servicing_products sp ON sp.id = l.product_id "
        "WHERE l.tenant_id = :t AND l.status = 'active' AND l.credit_balance > 0 AND sp.auto_apply_credit "
        "AND (l.penalty_accrued > l.penalty_paid OR EXISTS (SELECT 1 FROM loan_installments i "
        "WHERE i.loan_id = l.id AND i.status IN ('pending', 'overdue') AND i.due_day <= :d)) ORDER BY l.id"
    )
    ids = [int(r[0]) for r in s.execute(text(due), {"t": who.tenant_id, "d": on.toordinal()})]
    events: list[Any] = []
    repo, books = SqlLoanRepository(uow), SqlLedger(uow)
    for loan_id in ids:
        loan = repo.get(who.tenant_id, loan_id, lock=True)
        posting = loan.apply_credit_balance(on)
        entry_id = books.post(who, on, posting.entry)
        loan.record(on, "CreditBalanceApplied", {"amount": str(posting.amount)})
        repo.save(loan)
        stored = repo.add_repayment(
            Repayment(loan.id, "credit_applied", posting.amount, on, posting.record, Decimal(0), entry_id,
                      who.username)
        )
        assert stored.id is not None
        events.append(
            RepaymentPosted(who.tenant_id, loan.id, stored.id, loan.customer_id, "credit_applied", posting.amount, on)
        )
    return events


def _audit_facts(result: CobResult, events: list[Any]) -> dict[str, Any]:
    """What the close of one business date did, for its audit record."""
    return {
        "business_date": result.business_date.isoformat(), "loans_accrued": result.loans_active,
        "loans_overdue": result.loans_overdue, "newly_overdue": result.newly_overdue,
        "bucket_changes": result.bucket_changes,
        "class_changes": sum(isinstance(e, LoanClassChanged) for e in events),
        "interest_accrued": str(result.interest_accrued), "penalty_accrued": str(result.penalty_accrued),
        "seconds": round(result.seconds, 3),
    }


def close_all_tenants(uow: UnitOfWork, *, through: date | None = None) -> dict[str, list[CobResult]]:
    """The scheduled job: close of business for every tenant, each as its own system identity."""
    return {
        t.name: run_close_of_business(uow, system_principal(t.id, "cob"), through=through) for t in list_tenants(uow)
    }
