"""Close of business on a batch engine (批量引擎日终): the day's per-loan work computed on DuckDB or Spark, past
what one database transaction holds, with the same result to the cent as the in-database close (``cob``).

A business date is closed partition by partition, a partition being a fixed range of loan ids. For each one, in
one transaction: its loans (locked until it commits, so a repayment meanwhile waits for it instead of being
overwritten by it) and open installments are read from the database into Arrow tables, one portable-SQL
job (``microlend.batch.dialect``) computes on the engine the installments' interest accrued to date and their
overdue status, and per loan the day's interest, days past due, bucket, class by days past due, penalty interest
and whether it stops accruing; the results are written back (installment and loan updates, the day's postings as
the in-database close posts them, loan by loan under one balanced entry per batch, the loan events) together with
the partition's own row (``cob_partitions``) marked done.

Before the first partition, one transaction applies credit balances and amortises deferred fees (as the in-database
close does before the day's accrual moves), records the date's run as running (the in-database close skips a date
with a run row, so the two never both close it) and records the partitions as pending. Workers (processes, on one
machine or several) running the same tenant and date share them: each claims a pending partition under a lease
(``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, a conditional update on both databases) and applies it in a
transaction that first turns its own claim into done, so a partition is applied once; a claim whose lease ended
(its worker died) is taken over, and a rerun after a crash finishes the date the same way. After the last
partition, one transaction runs month-end provisioning, marks the run done with the partitions' totals and
advances the business date.

The classification rules beyond days past due (judgement floors, restructuring observation, the cure rule) are
applied per partition with the in-database close's own decision (``classification.decide``) to the loans under a
class state and the non-performing loans whose class by days past due ranks lower.

Revolving drawdowns (随借随还) take their day on the engine as in the database: the day's interest from the balance
product (积数计息, rounded once), the balance product grown by the day's outstanding principal, and on their
product's settlement day (按月结息) the month's interest moved to an installment of its own and the product reset,
all before days past due and penalty, which read the installments the settlement leaves."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Date, and_, bindparam, func, or_, select, text, update
from sqlalchemy.orm import Session

from microlend.batch.engine import ENGINE_NAMES, BatchEngine, Progress
from microlend.batch.spark import spark_unavailable
from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.errors import ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.money import from_storage
from microlend.core.tables import TenantRow
from microlend.core.uow import UnitOfWork
from microlend.servicing.accrued import accrued_sql, closed_through, scheduled_to_date_sql
from microlend.servicing.classification import RANK, ClassState, bank_policy, cure_observation_end, decide
from microlend.servicing.cob import CobResult, apply_credit_balances, close_open_dates
from microlend.servicing.delinquency import CLASS_THRESHOLDS, DEFAULT_BUCKETS, BucketScheme, LoanClass
from microlend.servicing.events import LoanBecameOverdue, LoanBucketChanged, LoanClassChanged
from microlend.servicing.fee_accrual import amortise_fees
from microlend.servicing.ledger import Acct, JournalEntry, credit, debit
from microlend.servicing.nonaccrual import AccruedInterestPolicy, NonAccrualSettings
from microlend.servicing.products import DEFAULT_RATE_CAP
from microlend.servicing.provisions import month_end, provision_in
from microlend.servicing.repository import bank_nonaccrual, post_entry, tune_batch_transaction
from microlend.servicing.revolving import (
    BALANCES,
    balance_product_sql,
    insert_settled_interest,
    rounded_interest_sql,
    write_balance_products,
)
from microlend.servicing.subledger import post_loan_lines
from microlend.servicing.tables import (
    CobPartitionRow,
    CobRunRow,
    InstallmentRow,
    LoanClassStateRow,
    LoanRow,
    ServicingSettingsRow,
)

#: loan ids per partition: a partition's rows are read, computed and written in one transaction
PARTITION_LOANS = 50_000
#: 360 days × 10^8 (rates are stored × 10^8), doubled for half-up rounding
_DAY_DENOMINATOR = 2 * 360 * 10**8
_NPL = tuple(c.value for c in LoanClass if c.non_performing)
RUNNING, DONE = "running", "done"
PENDING, CLAIMED = "pending", "claimed"
#: how long a worker's claim on a partition holds: a claim older than this (its worker died between claiming
#: and applying it) is taken over by another worker
LEASE_SECONDS = 60.0
#: how often a worker whose date has partitions held by others looks again
POLL_SECONDS = 0.5

_LOAN_COLUMNS = (
    "id", "customer_id", "status", "accrual_status", "days_past_due", "bucket", "loan_class", "grace_days",
    "penalty_rate_e8", "method", "product_id", "rate_e8", "balance_product", "compound_interest",
)
_LOAN_SCHEMA = pa.schema([
    ("id", pa.int64()), ("customer_id", pa.int64()), ("status", pa.string()), ("accrual_status", pa.string()),
    ("days_past_due", pa.int64()), ("bucket", pa.string()), ("loan_class", pa.string()), ("grace_days", pa.int64()),
    ("penalty_rate_e8", pa.int64()), ("method", pa.string()), ("product_id", pa.int64()), ("rate_e8", pa.int64()),
    ("balance_product", pa.int64()), ("compound_interest", pa.bool_()),
])
#: the columns as read: the loan's, its balance product from its own table (``revolving.BALANCES``)
_READ_LOAN_COLUMNS = tuple(
    f"{balance_product_sql('b')} AS balance_product" if c == "balance_product" else f"l.{c}" for c in _LOAN_COLUMNS
)
_INSTALLMENT_COLUMNS = (
    "id", "loan_id", "number", "start_day", "due_day", "status", "principal", "principal_paid", "interest",
    "interest_paid", "interest_accrued", "fee", "fee_paid",
)
#: the columns as read, the accrual through the last closed date :c
_READ_INSTALLMENT_COLUMNS = tuple(
    f"{accrued_sql(':c')} AS interest_accrued" if c == "interest_accrued" else c for c in _INSTALLMENT_COLUMNS
)
_INSTALLMENT_SCHEMA = pa.schema(
    [(c, pa.string() if c == "status" else pa.int64()) for c in _INSTALLMENT_COLUMNS]
)
#: the revolving products whose interest is settled today (按月结息): product id and the day it falls due
_SETTLING_SCHEMA = pa.schema([("product_id", pa.int64()), ("due_day", pa.int64())])
#: the installments a day can change: unpaid ones (overdue marking, days past due), those still accruing and a
#: revolving drawdown's first one holding unpaid interest (its month's settlement moves it)
_OPEN_INSTALLMENTS = (
    "(status IN ('pending', 'overdue') OR (start_day <= :d AND interest_accrued < interest "
    "AND status <> 'written_off') OR (number = 1 AND interest > interest_paid))"
)


def _bucket_case(scheme: BucketScheme, dpd: str) -> str:
    parts = [f"WHEN {dpd} <= {b.high} THEN '{b.name}'" for b in scheme.buckets if b.high is not None]
    return f"CASE {' '.join(parts)} ELSE '{scheme.buckets[-1].name}' END"


def _class_case(dpd: str) -> str:
    parts = [f"WHEN {dpd} > {threshold} THEN '{klass.value}'" for threshold, klass in CLASS_THRESHOLDS]
    return f"CASE {' '.join(parts)} ELSE '{LoanClass.NORMAL.value}' END"


def _quoted(values: Sequence[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _scheduled_accrual_sql(d: int) -> tuple[str, str]:
    """The scheduled accrual (计提) of an installment on day ``d``, over the installments' columns: whether it
    accrues today, and its interest accrued to the end of the day (``accrued.scheduled_to_date_sql``, the one
    formula of both closes, with the engines' integer division)."""
    to_date = scheduled_to_date_sql(str(d), "i.", "ml_div")
    accruing = f"(i.start_day <= {d} AND i.interest_accrued < i.interest AND i.status <> 'written_off')"
    return accruing, f"CAST(CASE WHEN {accruing} THEN {to_date} ELSE i.interest_accrued END AS BIGINT)"


def _revolving_sql(d: int) -> tuple[str, str, str]:
    """The revolving drawdowns' day (随借随还, ``revolving``), over an installment ``i`` and its loan ``l``: whether
    it is a drawdown open today, its outstanding principal in whole cents, and the day's interest in storage units:
    how much the interest on the loan's balance product (积数), rounded half-up to cents once, grows with today's
    outstanding principal."""
    drawn = (
        f"(l.status = 'active' AND l.method = 'revolving' AND i.start_day <= {d} AND i.due_day > {d} "
        "AND i.principal > i.principal_paid)"
    )
    cents = "ml_div(i.principal - i.principal_paid, 100)"
    grown = rounded_interest_sql(f"l.balance_product + {cents}", "l.rate_e8", "ml_div")
    day = f"100 * ({grown} - {rounded_interest_sql('l.balance_product', 'l.rate_e8', 'ml_div')})"
    return (drawn, f"CAST(CASE WHEN {drawn} THEN {cents} ELSE 0 END AS BIGINT)",
            f"CAST(CASE WHEN {drawn} THEN {day} ELSE 0 END AS BIGINT)")


def _installments_sql(d: int) -> str:
    """Per installment, the day in the in-database close's order: the scheduled accrual, a revolving drawdown's
    day of interest (added to its interest and accrual), the month's settlement (按月结息) of a revolving loan
    whose product settles today (``settles``: its first installment's unpaid interest leaves it for an installment
    of its own, the installment paid if nothing else is owed), then the status (unpaid past due: overdue). Columns:
    the installment's, ``accruing``/``scheduled_to`` (the scheduled accrual), ``revolving``, ``open_cents``,
    ``settles``, ``settle_due_day`` and the new ``new_interest``, ``new_accrued``, ``new_status``, ``paid_today``."""
    accruing, scheduled_to = _scheduled_accrual_sql(d)
    _, open_cents, revolving = _revolving_sql(d)
    inner = (
        "SELECT i.id, i.loan_id, i.number, i.start_day, i.due_day, i.status, i.principal, i.principal_paid, "
        "i.interest, i.interest_paid, i.interest_accrued, i.fee, i.fee_paid, "
        f"COALESCE({accruing}, FALSE) AS accruing, {scheduled_to} AS scheduled_to, "
        f"COALESCE({open_cents}, 0) AS open_cents, COALESCE({revolving}, 0) AS revolving, "
        "COALESCE(l.status = 'active' AND l.method = 'revolving' AND i.number = 1, FALSE) AND s.product_id IS NOT NULL "
        "AS in_settlement, s.due_day AS settle_due_day "
        "FROM installments i LEFT JOIN loans l ON l.id = i.loan_id LEFT JOIN settling s ON s.product_id = l.product_id"
    )
    settles = "(x.in_settlement AND x.interest + x.revolving > x.interest_paid)"
    cleared = f"({settles} AND x.principal_paid = x.principal AND x.fee_paid = x.fee)"
    return (
        "SELECT x.id, x.loan_id, x.start_day, x.due_day, x.status, x.principal, x.principal_paid, x.interest, "
        "x.interest_paid, x.interest_accrued, x.accruing, x.scheduled_to, x.revolving, x.open_cents, "
        f"{settles} AS settles, x.settle_due_day, "
        f"CAST(CASE WHEN {settles} THEN x.interest_paid ELSE x.interest + x.revolving END AS BIGINT) AS new_interest, "
        f"CAST(CASE WHEN {settles} THEN x.interest_paid ELSE x.scheduled_to + x.revolving END AS BIGINT) "
        "AS new_accrued, "
        f"CASE WHEN {cleared} THEN 'paid' WHEN x.status = 'pending' AND x.due_day < {d} THEN 'overdue' "
        f"ELSE x.status END AS new_status, {cleared} AS paid_today "
        f"FROM ({inner}) x"
    )


def installment_updates_sql(d: int) -> str:
    """The installments whose interest, accrual or status moves today: (id, interest, interest_accrued, status,
    paid_today)."""
    return (
        "SELECT id, new_interest AS interest, new_accrued AS interest_accrued, new_status AS status, paid_today "
        f"FROM ({_installments_sql(d)}) i "
        "WHERE new_interest <> interest OR new_accrued <> interest_accrued OR new_status <> status ORDER BY id"
    )


def revolving_settlements_sql(d: int) -> str:
    """The month's interest settled today, one row per revolving drawdown: (id of its first installment, loan,
    the interest that becomes an installment of its own, its due day)."""
    return (
        "SELECT id, loan_id, CAST(interest + revolving - interest_paid AS BIGINT) AS interest, "
        f"CAST(settle_due_day AS BIGINT) AS due_day FROM ({_installments_sql(d)}) i WHERE settles ORDER BY id"
    )


def loan_results_sql(d: int, buckets: BucketScheme, rule: NonAccrualSettings) -> str:
    """Per loan the day moves: the day's scheduled and revolving interest, a revolving loan's balance product after
    the day (``revolving_line``: an active revolving loan; zero after its product's settlement), and (``in_work``:
    overdue today, or back to current) days past due, bucket, class by days past due, penalty interest, and
    whether it stops accruing today. Days past due and penalty follow the day's revolving settlement. Penalty is
    charged on overdue principal and, under compound interest (复利), overdue interest; none within
    the grace period (宽限期), whose days are charged back on the day it is exceeded."""
    dpd = f"({d} - o.oldest)"
    base = "(o.overdue_principal + CASE WHEN l.compound_interest THEN o.overdue_interest ELSE 0 END)"
    days = f"CASE WHEN {dpd} = l.grace_days + 1 THEN l.grace_days + 1 ELSE 1 END"
    penalty = (
        f"CASE WHEN {dpd} > l.grace_days THEN 100 * ml_div(2 * ml_div({base}, 100) * l.penalty_rate_e8"
        f" + {_DAY_DENOMINATOR // 2}, {_DAY_DENOMINATOR}) * ({days}) ELSE 0 END"
    )
    current = buckets.bucket_for(0)
    normal = LoanClass.NORMAL.value
    npl = f" OR w.loan_class IN ({_quoted(_NPL)})" if rule.on_npl else ""
    return f"""
WITH i AS ({_installments_sql(d)}),
day AS (SELECT loan_id, CAST(SUM(scheduled_to - interest_accrued) AS BIGINT) AS scheduled FROM i
        WHERE accruing GROUP BY loan_id),
rv AS (SELECT l.id AS loan_id, CAST(COALESCE(SUM(i.revolving), 0) AS BIGINT) AS revolving,
              CAST(CASE WHEN MAX(s.product_id) IS NOT NULL THEN 0
                        ELSE MAX(l.balance_product) + COALESCE(SUM(i.open_cents), 0) END AS BIGINT) AS balance_product
       FROM loans l LEFT JOIN i ON i.loan_id = l.id LEFT JOIN settling s ON s.product_id = l.product_id
       WHERE l.status = 'active' AND l.method = 'revolving' GROUP BY l.id),
o AS (SELECT loan_id, MIN(due_day) AS oldest, CAST(SUM(principal - principal_paid) AS BIGINT) AS overdue_principal,
             CAST(SUM(new_interest - interest_paid) AS BIGINT) AS overdue_interest
      FROM i WHERE new_status = 'overdue' GROUP BY loan_id),
w AS (SELECT l.id AS loan_id, CAST({dpd} AS BIGINT) AS days_past_due, {_bucket_case(buckets, dpd)} AS bucket,
             {_class_case(dpd)} AS loan_class, CAST({penalty} AS BIGINT) AS penalty
      FROM o JOIN loans l ON l.id = o.loan_id WHERE l.status = 'active'
      UNION ALL
      SELECT l.id, CAST(0 AS BIGINT), '{current}', '{normal}', CAST(0 AS BIGINT) FROM loans l
      WHERE l.status = 'active' AND (l.days_past_due > 0 OR l.bucket <> '{current}' OR l.loan_class <> '{normal}')
        AND NOT EXISTS (SELECT 1 FROM o WHERE o.loan_id = l.id))
SELECT l.id AS loan_id, l.customer_id, CAST(COALESCE(day.scheduled, 0) AS BIGINT) AS scheduled,
       CAST(COALESCE(rv.revolving, 0) AS BIGINT) AS revolving, rv.loan_id IS NOT NULL AS revolving_line,
       CAST(COALESCE(rv.balance_product, l.balance_product) AS BIGINT) AS balance_product,
       l.accrual_status = 'non-accrual' AS non_accrual, w.loan_id IS NOT NULL AS in_work,
       l.days_past_due AS old_days_past_due, l.bucket AS old_bucket, l.loan_class AS old_class,
       COALESCE(w.days_past_due, l.days_past_due) AS days_past_due, COALESCE(w.bucket, l.bucket) AS bucket,
       COALESCE(w.loan_class, l.loan_class) AS loan_class, CAST(COALESCE(w.penalty, 0) AS BIGINT) AS penalty,
       COALESCE(w.loan_id IS NOT NULL AND l.accrual_status = 'accruing'
                AND (w.days_past_due > {int(rule.days)}{npl}), FALSE) AS stops
FROM loans l LEFT JOIN day ON day.loan_id = l.id LEFT JOIN w ON w.loan_id = l.id LEFT JOIN rv ON rv.loan_id = l.id
WHERE day.loan_id IS NOT NULL OR w.loan_id IS NOT NULL OR rv.loan_id IS NOT NULL
ORDER BY l.id"""


@dataclass(frozen=True)
class PartitionFigures:
    """What one partition posted and counted; amounts in storage units."""

    interest: int = 0
    interest_off_balance: int = 0
    penalty: int = 0
    penalty_off_balance: int = 0
    newly_overdue: int = 0
    bucket_changes: int = 0
    stopped_accruing: int = 0
    reversed_to_off_balance: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}

    @classmethod
    def of(cls, stored: dict[str, Any]) -> PartitionFigures:
        return cls(**{k: v for k, v in stored.items() if k in cls.__dataclass_fields__})


def partitions(first_id: int, last_id: int, size: int) -> Iterator[tuple[int, int]]:
    """Fixed loan-id ranges covering ``first_id``..``last_id``: range k is ``k·size + 1``..``(k + 1)·size``, the
    same on every run of a date whatever loans exist, so a rerun finds the ranges already applied."""
    for k in range((first_id - 1) // size, (last_id - 1) // size + 1):
        yield k * size + 1, (k + 1) * size


#: the setting's value for close of business in the database (no batch engine)
IN_DATABASE = ""
#: how a refusal of Spark starts, what is missing on this server following it
SPARK_UNAVAILABLE = "engine: Spark cannot run on this server: "


def bank_cob_engine(session: Session, tenant_id: int) -> str:
    """The batch engine the bank's nightly close of business runs on (``local``, ``spark``), or ``IN_DATABASE``."""
    row = session.get(ServicingSettingsRow, tenant_id)
    return IN_DATABASE if row is None else row.cob_engine


def cob_engine_choice(uow: UnitOfWork, who: Principal) -> str:
    """How the bank's nightly close of business runs, as people choose it: ``database``, ``local`` or ``spark``
    (for those who see the bank's scheduled jobs)."""
    who.require(Permission.RUN_JOBS)
    with uow:
        return bank_cob_engine(uow.session, who.tenant_id) or "database"


def set_cob_engine(uow: UnitOfWork, who: Principal, name: str) -> str:
    """Set the batch engine the bank's nightly close of business runs on (``database`` or ``IN_DATABASE``: none);
    it applies from the next run of the job. Spark is refused when it cannot run on this server (no pyspark or
    Java, a bad Spark Connect URL), saying what is missing. Audited; returns the choice as people name it."""
    who.require(Permission.MANAGE_PRODUCTS)
    name = IN_DATABASE if name == "database" else name
    if name not in (IN_DATABASE, *ENGINE_NAMES):
        raise ValidationError(f"engine: '{name}' is not an engine; choose database (no engine), local or spark",
                              field="engine")
    problem = spark_unavailable() if name == "spark" else None
    if problem:
        raise ValidationError(f"{SPARK_UNAVAILABLE}{problem}", field="engine")
    with uow:
        s = uow.session
        settings = s.get(ServicingSettingsRow, who.tenant_id)
        if settings is None:
            settings = ServicingSettingsRow(tenant_id=who.tenant_id, rate_cap=DEFAULT_RATE_CAP,
                                            updated_by=who.username, updated_at=utcnow())
            s.add(settings)
        before = settings.cob_engine or "database"
        settings.cob_engine, settings.updated_by, settings.updated_at = name, who.username, utcnow()
        s.flush()
        audit.record(s, who, "servicing.cob_engine", "tenant", who.tenant_id, before={"cob_engine": before},
                     after={"cob_engine": name or "database"})
        uow.commit()
    return name or "database"


def worker_name() -> str:
    """This process's name as a claimer of partitions: host, process id and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def run_close_of_business_on(
    uow: UnitOfWork, who: Principal, engine: BatchEngine, *, through: date | None = None,
    buckets: BucketScheme = DEFAULT_BUCKETS, partition_loans: int = PARTITION_LOANS,
    progress: Progress | None = None, after_partition: Callable[[int, int], None] | None = None,
    worker: str | None = None, lease_seconds: float = LEASE_SECONDS,
) -> list[CobResult]:
    """Close every open business date up to ``through`` (default: the current one) on ``engine``, oldest first.
    A date already closed is skipped; a date left half-done by a crash is finished, its done partitions skipped.
    Workers running the same tenant and dates share the partitions: each claims a pending one (or one whose
    claim's lease expired) for ``lease_seconds`` and applies it, until none is left; the date is finished by
    whichever worker sees every partition done first. ``worker``: the name claims are held under (default: this
    process's). ``after_partition(first_loan_id, last_loan_id)`` is called after each partition this worker
    applied commits."""
    who.require(Permission.RUN_CLOSE_OF_BUSINESS)
    if partition_loans < 1:
        raise ValidationError("partition_loans: at least 1", field="partition_loans")
    if lease_seconds <= 0:
        raise ValidationError("lease_seconds: more than 0", field="lease_seconds")
    me = worker or worker_name()
    return close_open_dates(uow, who, through, lambda day: _close_one(
        uow, who, engine, day, buckets, partition_loans, progress, after_partition, me, lease_seconds))


def _skipped(on: date) -> CobResult:
    return CobResult(on, 0, Decimal(0), Decimal(0), 0, 0, 0.0, skipped=True)


def _close_one(
    uow: UnitOfWork, who: Principal, engine: BatchEngine, on: date, buckets: BucketScheme, size: int,
    progress: Progress | None, after_partition: Callable[[int, int], None] | None, worker: str, lease: float,
) -> CobResult:
    started = time.perf_counter()
    cpu_started = time.thread_time()
    total = _open(uow, who, on, size)
    if total is None:
        return _skipped(on)
    applied = 0
    while True:
        claim = claim_partition(uow, who, on, engine.name, worker, lease)
        if isinstance(claim, Claim):
            if apply_claimed_partition(uow, who, engine, on, buckets, claim, worker):
                applied += 1
                if after_partition is not None:
                    after_partition(claim.first_loan_id, claim.last_loan_id)
                if progress is not None:
                    progress(applied, total)
        elif claim is None:
            break
        else:  # the others' partitions are being applied: look again, at the latest when a lease ends
            time.sleep(claim)
    return _finish(uow, who, engine, on, buckets, started, cpu_started)


def _open(uow: UnitOfWork, who: Principal, on: date, size: int) -> int | None:
    """The date's opening transaction: None when it is closed already; otherwise (on a first run) credit balances
    applied, deferred fees amortised and the run recorded as running, and the partitions of the tenant's loan ids
    recorded as pending (a run joining or finishing the date keeps the ranges recorded, of their size, and adds
    any for loans beyond them). Returns the number of partitions."""
    with uow:
        s = uow.session
        tune_batch_transaction(s)
        tenant = s.execute(select(TenantRow).where(TenantRow.id == who.tenant_id).with_for_update()).scalar_one()
        run = s.execute(
            select(CobRunRow).where(CobRunRow.tenant_id == who.tenant_id, CobRunRow.business_date == on)
        ).scalar_one_or_none()
        if tenant.business_date > on or (run is not None and run.status != RUNNING):
            return None
        first_id, last_id = s.execute(
            text("SELECT MIN(id), MAX(id) FROM loans WHERE tenant_id = :t"), {"t": who.tenant_id}).one()
        if run is None:
            for event in apply_credit_balances(uow, who, on):
                uow.publish(event)
            amortise_fees(s, who, on, post_loan_lines)
            now = utcnow()
            run = CobRunRow(tenant_id=who.tenant_id, business_date=on, status=RUNNING, started_at=now,
                            finished_at=now, last_loan_id=int(last_id or 0))
            s.add(run)
        elif run.last_loan_id is None:  # a date begun before the bound was recorded
            run.last_loan_id = int(last_id or 0)
        last_id = run.last_loan_id or None
        recorded = s.execute(select(CobPartitionRow.first_loan_id, CobPartitionRow.last_loan_id).where(
            CobPartitionRow.tenant_id == who.tenant_id, CobPartitionRow.business_date == on)).all()
        if recorded:
            size = int(recorded[0][1]) - int(recorded[0][0]) + 1
        known = {int(r[0]) for r in recorded}
        for lo, hi in (partitions(int(first_id), int(last_id), size) if last_id else ()):
            if lo not in known:
                s.add(CobPartitionRow(tenant_id=who.tenant_id, business_date=on, first_loan_id=lo, last_loan_id=hi,
                                      engine="", figures={}, status=PENDING, finished_at=utcnow()))
                known.add(lo)
        uow.commit()
    return len(known)


@dataclass(frozen=True)
class Claim:
    """A partition a worker holds: its row and loan-id range."""

    id: int
    first_loan_id: int
    last_loan_id: int


def claim_partition(
    uow: UnitOfWork, who: Principal, on: date, engine_name: str, worker: str, lease_seconds: float
) -> Claim | float | None:
    """Claim the date's first partition that is pending or whose claim's lease has expired (a dead worker's), for
    ``lease_seconds``, in a transaction of its own: on PostgreSQL the row is read ``FOR UPDATE SKIP LOCKED`` (a
    partition another worker is applying is locked by its transaction and passed over), and on both databases the
    claim is a conditional update that takes the row only as it was read. Returns the claim; otherwise the
    seconds to wait before looking again (partitions are held by other workers), or None when all are done."""
    with uow:
        s = uow.session
        now = utcnow()
        rows = (CobPartitionRow.tenant_id == who.tenant_id, CobPartitionRow.business_date == on)
        free = or_(CobPartitionRow.status == PENDING,
                   and_(CobPartitionRow.status == CLAIMED, CobPartitionRow.lease_until < now))
        found = s.execute(
            select(CobPartitionRow.id, CobPartitionRow.first_loan_id, CobPartitionRow.last_loan_id)
            .where(*rows, free).order_by(CobPartitionRow.first_loan_id).limit(1).with_for_update(skip_locked=True)
        ).first()
        if found is not None:
            taken = s.execute(
                update(CobPartitionRow).where(CobPartitionRow.id == found[0], free)
                .values(status=CLAIMED, claimed_by=worker, engine=engine_name,
                        lease_until=now + timedelta(seconds=lease_seconds))
                .execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
            uow.commit()
            return Claim(int(found[0]), int(found[1]), int(found[2])) if taken == 1 else 0.0
        left, first_lease_end = s.execute(
            select(func.count(), func.min(CobPartitionRow.lease_until)).where(*rows, CobPartitionRow.status != DONE)
        ).one()
    if not left:
        return None
    wait = POLL_SECONDS
    if first_lease_end is not None:
        wait = min(wait, max((first_lease_end - now).total_seconds(), 0.0) + 0.01)
    return wait


def _read_partition(session: Session, tenant_id: int, on: date, lo: int, hi: int) -> dict[str, pa.Table]:
    """The partition's loans, open installments and the revolving products settling today, as Arrow tables.

    The loans are read locked until the partition's transaction ends, and before their installments, so what the
    partition writes back is computed from the loans as they stay until it commits: on PostgreSQL ``FOR NO KEY
    UPDATE`` (in id order), which waits for a repayment, reversal, write-off or restructuring holding a loan (each
    takes its loan ``FOR UPDATE`` before touching it or its installments) and makes any that starts meanwhile wait
    for the partition's commit, while the loans' events and postings (which only take their key) pass; on SQLite
    the partition's transaction holds the database's write lock from its start (``BEGIN IMMEDIATE``), so no other
    writer commits between its read and its write."""
    # the installments' interest accrued as it stands through the last closed date (``accrued``)
    closed = min(closed_through(session, tenant_id), on.toordinal() - 1)
    p = {"t": tenant_id, "lo": lo, "hi": hi, "d": on.toordinal(), "c": closed}
    lock = " ORDER BY l.id FOR NO KEY UPDATE OF l" if session.get_bind().dialect.name == "postgresql" else ""
    loans = session.execute(
        text(f"SELECT {', '.join(_READ_LOAN_COLUMNS)} FROM loans l LEFT JOIN {BALANCES} b ON b.loan_id = l.id "
             f"WHERE l.tenant_id = :t AND l.id BETWEEN :lo AND :hi{lock}"),
        p,
    ).all()
    installments = session.execute(
        text(
            f"SELECT {', '.join(_READ_INSTALLMENT_COLUMNS)} FROM loan_installments "
            f"WHERE tenant_id = :t AND loan_id BETWEEN :lo AND :hi AND {_OPEN_INSTALLMENTS}"
        ),
        p,
    ).all()
    loan_columns: list[tuple[Any, ...]] = list(zip(*loans, strict=True)) if loans else [() for _ in _LOAN_COLUMNS]
    loan_columns[-1] = tuple(bool(v) for v in loan_columns[-1])  # SQLite answers 0/1
    inst_columns: list[tuple[Any, ...]] = (
        list(zip(*installments, strict=True)) if installments else [() for _ in _INSTALLMENT_COLUMNS]
    )
    settling = session.execute(
        text("SELECT id, interest_due_days FROM servicing_products WHERE tenant_id = :t AND method = 'revolving' "
             "AND settlement_day = :day ORDER BY id"),
        {"t": tenant_id, "day": on.day},
    ).all()
    return {
        "settling": pa.table([pa.array([int(r[0]) for r in settling], pa.int64()),
                              pa.array([(on + timedelta(days=int(r[1]))).toordinal() for r in settling], pa.int64())],
                             schema=_SETTLING_SCHEMA),
        "loans": pa.table([pa.array(c, t) for c, t in zip(loan_columns, _LOAN_SCHEMA.types, strict=True)],
                          schema=_LOAN_SCHEMA),
        "installments": pa.table(
            [pa.array(c, t) for c, t in zip(inst_columns, _INSTALLMENT_SCHEMA.types, strict=True)],
            schema=_INSTALLMENT_SCHEMA,
        ),
    }


_LOANS_TABLE = "cob_engine_loans"
_INSTALLMENTS_TABLE = "cob_engine_installments"
_SETTLED_TABLE = "cob_engine_settled"
_LOANS_TABLE_COLUMNS = ("loan_id", "scheduled", "revolving", "revolving_line", "balance_product", "non_accrual",
                        "in_work", "old_days_past_due", "old_bucket", "days_past_due", "bucket", "loan_class",
                        "penalty", "stops")
_INSTALLMENTS_TABLE_COLUMNS = ("id", "interest", "interest_accrued", "status", "paid_today")
_SETTLED_TABLE_COLUMNS = ("id", "loan_id", "interest", "due_day")


def _scratch_tables(session: Session) -> None:
    session.execute(text(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {_LOANS_TABLE} (loan_id INTEGER NOT NULL PRIMARY KEY, "
        "scheduled BIGINT NOT NULL, revolving BIGINT NOT NULL, revolving_line INTEGER NOT NULL, "
        "balance_product BIGINT NOT NULL, non_accrual INTEGER NOT NULL, in_work INTEGER NOT NULL, "
        "old_days_past_due INTEGER NOT NULL, old_bucket VARCHAR(10) NOT NULL, days_past_due INTEGER NOT NULL, "
        "bucket VARCHAR(10) NOT NULL, loan_class VARCHAR(20) NOT NULL, penalty BIGINT NOT NULL, "
        "stops INTEGER NOT NULL)"
    ))
    session.execute(text(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {_INSTALLMENTS_TABLE} (id INTEGER NOT NULL PRIMARY KEY, "
        "interest BIGINT NOT NULL, interest_accrued BIGINT NOT NULL, status VARCHAR(20) NOT NULL, "
        "paid_today INTEGER NOT NULL)"
    ))
    session.execute(text(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {_SETTLED_TABLE} (id INTEGER NOT NULL PRIMARY KEY, "
        "loan_id INTEGER NOT NULL, interest BIGINT NOT NULL, due_day INTEGER NOT NULL)"
    ))
    for table in (_LOANS_TABLE, _INSTALLMENTS_TABLE, _SETTLED_TABLE):
        session.execute(text(f"DELETE FROM {table}"))


def _bulk_insert(session: Session, table: str, columns: Sequence[str], rows: pa.Table) -> None:
    """Rows of an Arrow table into a temporary table of the transaction's connection: COPY on PostgreSQL,
    executemany on SQLite; booleans as 0/1."""
    if not rows.num_rows:
        return
    values = [
        [int(v) for v in rows.column(c).to_pylist()] if pa.types.is_boolean(rows.column(c).type)
        else rows.column(c).to_pylist()
        for c in columns
    ]
    raw = session.connection().connection.driver_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        if session.get_bind().dialect.name == "postgresql":
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in zip(*values, strict=True):
                    copy.write_row(row)
        else:
            marks = ", ".join("?" for _ in columns)
            cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                               list(zip(*values, strict=True)))
    finally:
        cursor.close()


def apply_claimed_partition(
    uow: UnitOfWork, who: Principal, engine: BatchEngine, on: date, buckets: BucketScheme, claim: Claim,
    worker: str,
) -> bool:
    """One claimed partition in one transaction, which first marks the partition done if ``worker`` still holds
    its claim (a conditional update: on PostgreSQL it locks the row until the transaction ends, so no one takes
    the claim over meanwhile): read, computed on the engine, written. False, with nothing written, when the
    claim was lost (its lease expired and another worker took it over). The partition closes its loans that
    existed when the date's close began (``CobRunRow.last_loan_id``)."""
    with uow:
        s = uow.session
        tune_batch_transaction(s)
        held = s.execute(
            update(CobPartitionRow).where(CobPartitionRow.id == claim.id, CobPartitionRow.status == CLAIMED,
                                          CobPartitionRow.claimed_by == worker)
            .values(status=DONE, engine=engine.name).execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if held != 1:
            return False
        # the loans that existed when the date's close began: those paid out since are the closing transaction's
        bound = s.execute(select(CobRunRow.last_loan_id).where(
            CobRunRow.tenant_id == who.tenant_id, CobRunRow.business_date == on)).scalar_one()
        figures, events, laps = _close_range(
            s, who, engine, on, buckets, claim.first_loan_id,
            claim.last_loan_id if bound is None else min(claim.last_loan_id, bound))
        s.execute(
            update(CobPartitionRow).where(CobPartitionRow.id == claim.id)
            .values(figures={**figures.as_json(), "seconds": laps}, finished_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        for event in events:
            uow.publish(event)
        uow.commit()
    return True


def _close_range(
    s: Session, who: Principal, engine: BatchEngine, on: date, buckets: BucketScheme, lo: int, hi: int
) -> tuple[PartitionFigures, list[Any], dict[str, float]]:
    """The date's close of the loans with ids ``lo``..``hi`` inside the caller's transaction: read, computed on
    the engine, written. Returns what it posted and counted, the events, and the seconds per step."""
    laps: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        laps[name] = round(now - mark, 4)
        mark = now

    rule = bank_nonaccrual(s, who.tenant_id)
    tables = _read_partition(s, who.tenant_id, on, lo, hi)
    lap("read")
    d = on.toordinal()
    updates = engine.run_sql(installment_updates_sql(d), tables)
    loans = engine.run_sql(loan_results_sql(d, buckets, rule), tables)
    settled = (engine.run_sql(revolving_settlements_sql(d), tables) if tables["settling"].num_rows
               else pa.table({c: pa.array([], pa.int64()) for c in _SETTLED_TABLE_COLUMNS}))
    lap("engine")
    loans, reasons = _apply_class_rules(s, who.tenant_id, on, lo, hi, loans, rule)
    lap("class_rules")
    _scratch_tables(s)
    _bulk_insert(s, _INSTALLMENTS_TABLE, _INSTALLMENTS_TABLE_COLUMNS, updates)
    _bulk_insert(s, _LOANS_TABLE, _LOANS_TABLE_COLUMNS, loans)
    _bulk_insert(s, _SETTLED_TABLE, _SETTLED_TABLE_COLUMNS, settled)
    lap("load")
    figures, events = _apply(s, who, on, loans, rule, reasons)
    lap("write")
    return figures, events, laps


def _state_of(row: LoanClassStateRow | None) -> ClassState:
    if row is None:
        return ClassState()
    return ClassState(
        row.judged_class, row.judged_reason or "", row.cured_on,
        None if row.observe_until_day is None else date.fromordinal(row.observe_until_day),
        None if row.restructure_until_day is None else date.fromordinal(row.restructure_until_day),
    )


def _apply_class_rules(
    session: Session, tenant_id: int, on: date, lo: int, hi: int, loans: pa.Table, rule: NonAccrualSettings
) -> tuple[pa.Table, dict[int, str]]:
    """The classification rules beyond days past due (``classification.decide``, as the in-database close applies
    them) on the partition's engine results: a loan with a class state joins the day's work (current: days past
    due 0, its bucket kept, normal by days past due) and takes the class the rules decide, as does a
    non-performing loan whose class by days past due ranks lower (the cure rule); their states are updated.
    Whether a loan stops accruing follows its decided class. Returns the results and the reason per loan whose
    class the rules decided."""
    states = {row.loan_id: row for row in session.execute(
        select(LoanClassStateRow).join(LoanRow, LoanRow.id == LoanClassStateRow.loan_id).where(
            LoanClassStateRow.tenant_id == tenant_id, LoanRow.status == "active",
            LoanClassStateRow.loan_id.between(lo, hi))).scalars()}
    # only the loans the rules may decide (a class state, or non-performing in the day's work) leave Arrow
    ids = loans.column("loan_id")
    picked = pc.or_(
        pc.is_in(ids, value_set=pa.array(sorted(states), ids.type)),
        pc.and_(loans.column("in_work"), pc.is_in(loans.column("old_class"), value_set=pa.array(_NPL))),
    )
    rows = {int(r["loan_id"]): r for r in loans.filter(picked).to_pylist()}
    missing = sorted(set(states) - set(rows))
    if missing:
        for loan_id, customer_id, accrual_status, dpd, bucket, loan_class in session.execute(
            select(LoanRow.id, LoanRow.customer_id, LoanRow.accrual_status, LoanRow.days_past_due, LoanRow.bucket,
                   LoanRow.loan_class).where(LoanRow.id.in_(missing))
        ).tuples():
            rows[int(loan_id)] = {
                "loan_id": int(loan_id), "customer_id": customer_id, "scheduled": 0, "revolving": 0,
                "revolving_line": False, "balance_product": 0,
                "non_accrual": accrual_status == "non-accrual", "in_work": False, "old_days_past_due": dpd,
                "old_bucket": bucket, "old_class": loan_class, "days_past_due": dpd, "bucket": bucket,
                "loan_class": loan_class, "penalty": 0, "stops": False,
            }
    decided = [
        r for loan_id, r in sorted(rows.items())
        if loan_id in states
        or (r["in_work"] and r["old_class"] in _NPL and RANK[r["loan_class"]] < RANK[r["old_class"]])
    ]
    if not decided:
        return loans, {}
    policy = bank_policy(session, tenant_id)
    reasons: dict[int, str] = {}
    for r in decided:
        loan_id = int(r["loan_id"])
        if not r["in_work"]:  # current, at its bucket: in the day's work as the in-database close puts it
            r.update(in_work=True, days_past_due=0, bucket=r["old_bucket"], loan_class=LoanClass.NORMAL.value,
                     penalty=0)
        dpd, current = int(r["days_past_due"]), str(r["old_class"])
        row = states.get(loan_id)
        state = _state_of(row)
        end = None
        if current in _NPL and dpd == 0 and state.cured_on is None:
            dues = session.execute(select(InstallmentRow.due_date).where(
                InstallmentRow.loan_id == loan_id, InstallmentRow.status == "pending")).scalars().all()
            end = cure_observation_end(on, dues, policy)
        decision = decide(current, str(r["loan_class"]), dpd, on, state, end)
        r["loan_class"] = decision.loan_class
        r["stops"] = not r["non_accrual"] and (
            dpd > rule.days or (rule.on_npl and decision.loan_class in _NPL))
        if decision.reason:
            reasons[loan_id] = decision.reason
        if decision.state != state:
            if row is None:
                row = LoanClassStateRow(loan_id=loan_id, tenant_id=tenant_id, judged_reason="")
                session.add(row)
            row.cured_on = decision.state.cured_on
            row.observe_until_day = None if decision.state.observe_until is None else (
                decision.state.observe_until.toordinal())
    session.flush()
    ruled = pa.Table.from_pylist([rows[k] for k in sorted(rows)], schema=loans.schema)
    return pa.concat_tables([loans.filter(pc.invert(picked)), ruled]).sort_by("loan_id"), reasons


def _sum(session: Session, where: str, column: str) -> int:
    value = session.execute(text(f"SELECT SUM({column}) FROM {_LOANS_TABLE} WHERE {where}")).scalar()
    return int(value or 0)


def _apply(
    session: Session, who: Principal, on: date, loans: pa.Table, rule: NonAccrualSettings, reasons: dict[int, str]
) -> tuple[PartitionFigures, list[Any]]:
    """Write one partition's results (in the scratch tables) as the in-database close writes a day's: postings
    loan by loan, installment and loan updates, loan events; returns its figures and the events to publish."""
    p = {"t": who.tenant_id}
    interest = _sum(session, "non_accrual = 0", "scheduled + revolving")
    interest_memo = _sum(session, "non_accrual = 1", "scheduled + revolving")
    scheduled = f"SELECT loan_id, scheduled AS amount FROM {_LOANS_TABLE} WHERE non_accrual = "
    revolving = f"SELECT loan_id, revolving AS amount FROM {_LOANS_TABLE} WHERE non_accrual = "
    post_loan_lines(session, who, on, "cob.accrual", f"interest accrued for {on.isoformat()}", interest,
                    [(Acct.INTEREST_RECEIVABLE, Acct.INTEREST_INCOME, scheduled + "0"),
                     (Acct.INTEREST_RECEIVABLE, Acct.INTEREST_INCOME, revolving + "0")], p)
    post_loan_lines(session, who, on, "cob.off_balance",
                    f"off-balance interest of non-accrual loans for {on.isoformat()}", interest_memo,
                    [(Acct.OFF_BALANCE_INTEREST, Acct.OFF_BALANCE_CONTRA, scheduled + "1"),
                     (Acct.OFF_BALANCE_INTEREST, Acct.OFF_BALANCE_CONTRA, revolving + "1")], p)
    if interest_memo:
        session.execute(text(
            f"UPDATE loans SET interest_suspended = interest_suspended + c.scheduled + c.revolving "
            f"FROM {_LOANS_TABLE} c WHERE loans.id = c.loan_id AND c.non_accrual = 1 AND c.scheduled + c.revolving <> 0"
        ))
    bd = {**p, "bd": on}
    _settle_revolving(session, on, bd)
    session.execute(text(
        "UPDATE loan_installments SET interest = c.interest, interest_accrued = c.interest_accrued, "
        "accrued_through = :d, status = c.status, "
        "paid_on = CASE WHEN c.paid_today = 1 THEN :bd ELSE loan_installments.paid_on END "
        f"FROM {_INSTALLMENTS_TABLE} c WHERE loan_installments.id = c.id"
    ).bindparams(bindparam("bd", type_=Date())), {**bd, "d": on.toordinal()})
    # the balance products as the engine left them (grown, or reset by the settlement)
    write_balance_products(
        session,
        f"SELECT loan_id, balance_product AS product FROM {_LOANS_TABLE} WHERE revolving_line = 1",
        p,
        grow=False,
    )
    on_param = bindparam("bd", type_=Date())
    newly_overdue = session.execute(text(
        "INSERT INTO loan_events (tenant_id, loan_id, business_date, kind, data) "
        "SELECT :t, loan_id, :bd, 'LoanBecameOverdue', '{\"days_past_due\": ' || days_past_due || '}' "
        f"FROM {_LOANS_TABLE} WHERE in_work = 1 AND old_days_past_due = 0 AND days_past_due > 0 ORDER BY loan_id"
    ).bindparams(on_param), bd).rowcount  # type: ignore[attr-defined]
    bucket_changes = session.execute(text(
        "INSERT INTO loan_events (tenant_id, loan_id, business_date, kind, data) "
        "SELECT :t, loan_id, :bd, 'LoanBucketChanged', '{\"days_past_due\": ' || days_past_due || "
        '\', "from_bucket": "\' || old_bucket || \'", "to_bucket": "\' || bucket || \'"}\' '
        f"FROM {_LOANS_TABLE} WHERE in_work = 1 AND old_bucket <> bucket ORDER BY loan_id"
    ).bindparams(on_param), bd).rowcount  # type: ignore[attr-defined]
    session.execute(text(
        "UPDATE loans SET days_past_due = c.days_past_due, bucket = c.bucket, loan_class = c.loan_class, "
        "penalty_accrued = loans.penalty_accrued + c.penalty, penalty_suspended = loans.penalty_suspended "
        "+ CASE WHEN c.non_accrual = 1 THEN c.penalty ELSE 0 END "
        f"FROM {_LOANS_TABLE} c WHERE c.in_work = 1 AND loans.id = c.loan_id"
    ))
    penalty = _sum(session, "in_work = 1 AND non_accrual = 0", "penalty")
    penalty_memo = _sum(session, "in_work = 1 AND non_accrual = 1", "penalty")
    rows = f"SELECT loan_id, penalty AS amount FROM {_LOANS_TABLE} WHERE in_work = 1 AND non_accrual = "
    post_loan_lines(session, who, on, "cob.penalty", f"penalty interest for {on.isoformat()}", penalty,
                    [(Acct.PENALTY_RECEIVABLE, Acct.PENALTY_INCOME, rows + "0")], p)
    post_loan_lines(session, who, on, "cob.off_balance",
                    f"off-balance penalty of non-accrual loans for {on.isoformat()}", penalty_memo,
                    [(Acct.OFF_BALANCE_PENALTY, Acct.OFF_BALANCE_CONTRA, rows + "1")], p)
    stopped, reversed_amount = _stop_accruing(session, who, on, rule)
    figures = PartitionFigures(interest, interest_memo, penalty, penalty_memo, newly_overdue, bucket_changes,
                               stopped, reversed_amount)
    return figures, _events(who.tenant_id, on, loans, reasons)


def _settle_revolving(session: Session, on: date, bd: dict[str, Any]) -> None:
    """按月结息, as the engine found it: each settled month of interest becomes an installment of its own
    (``revolving.insert_settled_interest``, as the in-database close inserts it); the first installments' own
    update follows."""
    due_days = [int(r[0]) for r in session.execute(text(f"SELECT DISTINCT due_day FROM {_SETTLED_TABLE}"))]
    for due_day in sorted(due_days):
        insert_settled_interest(
            session, on, date.fromordinal(due_day), "c.interest",
            f"{_SETTLED_TABLE} c JOIN loan_installments i ON i.id = c.id "
            "WHERE i.tenant_id = :t AND c.due_day = :settled_due ORDER BY c.id",
            {"t": bd["t"], "settled_due": due_day},
        )


def _stop_accruing(session: Session, who: Principal, on: date, rule: NonAccrualSettings) -> tuple[int, int]:
    """Loans the engine found reaching the bank's non-accrual threshold stop accruing (an event each); by the
    bank's policy their accrued-but-unpaid interest and penalty are reversed to the off-balance accounts, in one
    entry per partition. Returns the number of loans and the amount reversed (storage units)."""
    p = {"t": who.tenant_id, "d": on.toordinal()}
    reaching = f"tenant_id = :t AND id IN (SELECT loan_id FROM {_LOANS_TABLE} WHERE stops = 1)"
    stopped = int(session.execute(text(f"SELECT COUNT(*) FROM loans WHERE {reaching}"), p).scalar() or 0)
    if not stopped:
        return 0, 0
    session.execute(
        text(
            "INSERT INTO loan_events (tenant_id, loan_id, business_date, kind, data) "
            "SELECT :t, id, :bd, 'LoanStoppedAccruing', '{\"days_past_due\": ' || days_past_due || "
            f"', \"loan_class\": \"' || loan_class || '\", \"policy\": \"{rule.policy.value}\"}}' "
            f"FROM loans WHERE {reaching} ORDER BY id"
        ).bindparams(bindparam("bd", type_=Date())),
        {**p, "bd": on},
    )
    if rule.policy is not AccruedInterestPolicy.REVERSE:
        session.execute(text(f"UPDATE loans SET accrual_status = 'non-accrual' WHERE {reaching}"), p)
        return stopped, 0
    owed = f"{accrued_sql(':d')} - interest_paid"  # accrued through the date being closed
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
        post_entry(session, who, on, JournalEntry(
            "cob.non_accrual", tuple(lines),
            f"accrued interest and penalty of loans stopping accruing on {on.isoformat()} moved off-balance",
        ))
    return stopped, sum(r[1] + r[2] for r in reversed_loans)


def _events(tenant_id: int, on: date, loans: pa.Table, reasons: dict[int, str]) -> list[Any]:
    """The partition's events to publish: newly overdue, bucket moves and class changes, each with its reason
    (days past due unless the class rules decided it)."""
    events: list[Any] = []
    changed: list[Any] = []
    for row in loans.filter(loans.column("in_work")).to_pylist():
        loan_id, dpd = int(row["loan_id"]), int(row["days_past_due"])
        if row["old_days_past_due"] == 0 and dpd > 0:
            events.append(LoanBecameOverdue(tenant_id, loan_id, on, dpd, row["customer_id"]))
        if row["old_bucket"] != row["bucket"]:
            events.append(LoanBucketChanged(tenant_id, loan_id, on, row["old_bucket"], row["bucket"], dpd))
        if row["old_class"] != row["loan_class"]:
            changed.append(LoanClassChanged(tenant_id, loan_id, on, row["old_class"], row["loan_class"], dpd,
                                            reasons.get(loan_id, f"{dpd} days past due")))
    return [*events, *changed]


def _finish(
    uow: UnitOfWork, who: Principal, engine: BatchEngine, on: date, buckets: BucketScheme, started: float,
    cpu_started: float,
) -> CobResult:
    """The date's closing transaction: the loans paid out (or drawn) on the date while its partitions ran closed
    here, month-end provisioning, the run done with its partitions' totals, the business date advanced. It locks
    the bank's row first, so every transaction moving money on the date (each holds the date, ``business_date``
    with ``hold``) has committed, and every later one waits and moves money on the next date."""
    with uow:
        s = uow.session
        tune_batch_transaction(s)
        tenant = s.execute(select(TenantRow).where(TenantRow.id == who.tenant_id).with_for_update()).scalar_one()
        run = s.execute(
            select(CobRunRow).where(CobRunRow.tenant_id == who.tenant_id, CobRunRow.business_date == on)
        ).scalar_one()
        if run.status != RUNNING:
            return _skipped(on)
        parts = [PartitionFigures.of(f) for f in s.execute(select(CobPartitionRow.figures).where(
            CobPartitionRow.tenant_id == who.tenant_id, CobPartitionRow.business_date == on)).scalars()]
        newest = s.execute(text("SELECT MAX(id) FROM loans WHERE tenant_id = :t"), {"t": who.tenant_id}).scalar()
        if newest is not None and run.last_loan_id is not None and int(newest) > run.last_loan_id:
            late, events, _ = _close_range(s, who, engine, on, buckets, run.last_loan_id + 1, int(newest))
            parts.append(late)
            for event in events:
                uow.publish(event)
        if month_end(on):  # month-end provisioning (月末拨备): the allowance follows the day's classes
            provision_in(s, who, on, accrued_through=on.toordinal())
        active = int(s.execute(text("SELECT COUNT(*) FROM loans WHERE tenant_id = :t AND status = 'active'"),
                               {"t": who.tenant_id}).scalar() or 0)
        result = CobResult(
            on, active, from_storage(sum(f.interest for f in parts)), from_storage(sum(f.penalty for f in parts)),
            sum(f.newly_overdue for f in parts), sum(f.bucket_changes for f in parts),
            time.perf_counter() - started,
            interest_off_balance=from_storage(sum(f.interest_off_balance for f in parts)),
            penalty_off_balance=from_storage(sum(f.penalty_off_balance for f in parts)),
            stopped_accruing=sum(f.stopped_accruing for f in parts),
            reversed_to_off_balance=from_storage(sum(f.reversed_to_off_balance for f in parts)),
        )
        run.status = DONE
        run.loans_active = result.loans_active
        run.interest_accrued = result.interest_accrued
        run.penalty_accrued = result.penalty_accrued
        run.newly_overdue = result.newly_overdue
        run.bucket_changes = result.bucket_changes
        run.finished_at = utcnow()
        run.cpu_ms = round((time.thread_time() - cpu_started) * 1000)
        tenant.business_date = on + timedelta(days=1)
        audit.record(s, who, "cob.run", "business_date", on.isoformat(), after={
            "business_date": on.isoformat(), "engine": True, "partitions": len(parts),
            "loans_accrued": result.loans_active, "newly_overdue": result.newly_overdue,
            "bucket_changes": result.bucket_changes, "interest_accrued": str(result.interest_accrued),
            "penalty_accrued": str(result.penalty_accrued), "seconds": round(result.seconds, 3),
        })
        uow.commit()
    return result
