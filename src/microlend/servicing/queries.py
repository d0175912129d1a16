"""Read functions other modules call about loans and credit lines: views, never rows. Every query is
scoped to the caller's tenant; sets of ids come either as a list or as a sub-select of the caller's own
(so that a question over a whole portfolio stays one set-based query)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
from sqlalchemy import Select, and_, case, func, or_, select, text, type_coerce
from sqlalchemy.sql.elements import ColumnElement

from microlend.core.db import Amount
from microlend.core.frames import read_frame, storage_to_cents
from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.servicing.portfolio_sql import Window, roll_sql, vintage_sql
from microlend.servicing.rate_cap import price_within_cap
from microlend.servicing.repository import bank_rate_cap, product_terms
from microlend.servicing.tables import (
    CobRunRow,
    CreditLineRow,
    InstallmentRow,
    LoanEventRow,
    LoanRow,
    ProductRow,
    RepaymentRow,
    ServicingSettingsRow,
)

#: A loan has gone bad (坏账口径) once it is more than this many days past due, or written off.
BAD_DAYS_PAST_DUE = 30
#: Ids per IN (...) list: well below every database's limit on bound parameters.
_CHUNK = 500

Ids = Sequence[int] | Select[Any]


def _id_sets(ids: Ids) -> Iterator[Select[Any] | list[int]]:
    if isinstance(ids, Select):
        yield ids
        return
    unique = sorted({int(i) for i in ids})
    for start in range(0, len(unique), _CHUNK):
        yield unique[start : start + _CHUNK]


def _is_bad() -> ColumnElement[bool]:
    return or_(LoanRow.days_past_due > BAD_DAYS_PAST_DUE, LoanRow.status == "written_off")


def _rate(part: int, whole: int) -> Decimal | None:
    return None if whole == 0 else (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"))


# ---------------------------------------------------------------------------------------- loans


@dataclass(frozen=True)
class LoanLine:
    """A loan in a list: what it is, what is owed (principal outstanding) and how late it is."""

    id: int
    status: str
    method: str
    principal: Decimal
    outstanding: Decimal
    days_past_due: int
    bucket: str
    disbursed_on: date
    maturity_date: date
    customer_id: int | None


def loan_lines(uow: UnitOfWork, who: Principal, *, customer_id: int | None = None,
               customers: Select[Any] | None = None, overdue_first: bool = False,
               limit: int = 200, offset: int = 0) -> list[LoanLine]:
    """Loans of one customer, or of a set of customers, or all; newest first, or active and most overdue
    first with `overdue_first`."""
    cond: list[ColumnElement[bool]] = [LoanRow.tenant_id == who.tenant_id]
    if customer_id is not None:
        cond.append(LoanRow.customer_id == customer_id)
    if customers is not None:
        cond.append(LoanRow.customer_id.in_(customers))
    order: list[Any] = [LoanRow.id.desc()]
    if overdue_first:
        order = [case((LoanRow.status == "active", 0), else_=1), LoanRow.days_past_due.desc(), *order]
    outstanding = (select(InstallmentRow.loan_id.label("loan_id"),
                          type_coerce(func.sum(InstallmentRow.principal - InstallmentRow.principal_paid),
                                      Amount()).label("outstanding"))
                   .group_by(InstallmentRow.loan_id).subquery())
    with uow:
        rows = uow.session.execute(
            select(LoanRow, outstanding.c.outstanding)
            .outerjoin(outstanding, outstanding.c.loan_id == LoanRow.id)
            .where(*cond).order_by(*order).offset(max(offset, 0)).limit(limit)).all()
        return [LoanLine(loan.id, loan.status, loan.method, loan.principal,
                         owed if owed is not None else Decimal(0), loan.days_past_due, loan.bucket,
                         loan.disbursed_on, loan.maturity_date, loan.customer_id) for loan, owed in rows]


def loan_owner(uow: UnitOfWork, who: Principal, loan_id: int) -> int | None:
    """The customer of a loan of the caller's bank (None when there is no such loan or no customer)."""
    with uow:
        return uow.session.execute(select(LoanRow.customer_id).where(
            LoanRow.id == loan_id, LoanRow.tenant_id == who.tenant_id)).scalar_one_or_none()


def loan_ids_of_customer(uow: UnitOfWork, who: Principal, customer_id: int, limit: int = 50) -> list[int]:
    """A customer's loans, newest first."""
    with uow:
        return [int(i) for i in uow.session.execute(select(LoanRow.id).where(
            LoanRow.tenant_id == who.tenant_id, LoanRow.customer_id == customer_id)
            .order_by(LoanRow.id.desc()).limit(limit)).scalars()]


@dataclass(frozen=True)
class CustomerLoans:
    """A customer's history at this bank (行内表现): loans ever, active now, worst days past due now."""

    loans_count: int
    active_loans: int
    max_days_past_due: int


def customer_loans(uow: UnitOfWork, who: Principal, customer_id: int) -> CustomerLoans:
    active = case((LoanRow.status == "active", 1), else_=0)
    with uow:
        count, n_active, worst = uow.session.execute(
            select(func.count(), func.sum(active), func.max(LoanRow.days_past_due))
            .where(LoanRow.tenant_id == who.tenant_id, LoanRow.customer_id == customer_id)).one()
    return CustomerLoans(int(count or 0), int(n_active or 0), int(worst or 0))


def worst_days_past_due(uow: UnitOfWork, who: Principal) -> dict[int, int]:
    """Customer id -> worst days past due over their active loans, for customers overdue today."""
    with uow:
        return {c: int(d) for c, d in uow.session.execute(
            select(LoanRow.customer_id, func.max(LoanRow.days_past_due))
            .where(LoanRow.tenant_id == who.tenant_id, LoanRow.status == "active", LoanRow.customer_id.is_not(None),
                   LoanRow.days_past_due > 0)
            .group_by(LoanRow.customer_id)).all() if c is not None}


def active_and_overdue(uow: UnitOfWork, who: Principal, customers: Select[Any] | None = None) -> tuple[int, int]:
    """Active loans and those among them past due, of a set of customers (all when None)."""
    cond: list[ColumnElement[bool]] = [LoanRow.tenant_id == who.tenant_id, LoanRow.status == "active"]
    if customers is not None:
        cond.append(LoanRow.customer_id.in_(customers))
    with uow:
        active, overdue = uow.session.execute(select(
            func.count(), func.sum(case((LoanRow.days_past_due > 0, 1), else_=0))).where(*cond)).one()
    return int(active or 0), int(overdue or 0)


@dataclass(frozen=True)
class LoanOutcome:
    loan_id: int
    days_past_due: int
    status: str

    @property
    def bad(self) -> bool:
        return self.days_past_due > BAD_DAYS_PAST_DUE or self.status == "written_off"


def loan_outcomes(uow: UnitOfWork, who: Principal, loan_ids: Ids) -> dict[int, LoanOutcome]:
    """Loan id -> days past due and status now, for the loans of the caller's bank among `loan_ids`."""
    found: dict[int, LoanOutcome] = {}
    with uow:
        for chunk in _id_sets(loan_ids):
            for i, dpd, status in uow.session.execute(
                select(LoanRow.id, LoanRow.days_past_due, LoanRow.status)
                .where(LoanRow.tenant_id == who.tenant_id, LoanRow.id.in_(chunk))).all():
                found[int(i)] = LoanOutcome(int(i), int(dpd or 0), status)
    return found


def count_bad(uow: UnitOfWork, who: Principal, loan_ids: Ids) -> tuple[int, int]:
    """(loans, bad loans) among `loan_ids` in the caller's bank, counted in the database."""
    loans = bad = 0
    with uow:
        for chunk in _id_sets(loan_ids):
            n, b = uow.session.execute(
                select(func.count(), func.sum(case((_is_bad(), 1), else_=0)))
                .where(LoanRow.tenant_id == who.tenant_id, LoanRow.id.in_(chunk))).one()
            loans, bad = loans + int(n or 0), bad + int(b or 0)
    return loans, bad


@dataclass(frozen=True)
class RepaymentBehaviour:
    """还款表现 over every loan of the customer: installments due so far and how they were paid."""

    installments_due: int
    paid_on_time: int
    paid_late: int
    unpaid_overdue: int
    max_days_past_due: int
    repaid_total: Decimal
    on_time_rate: Decimal | None


def repayment_behaviour(uow: UnitOfWork, who: Principal, customer_id: int, on: date) -> RepaymentBehaviour:
    loan_ids = select(LoanRow.id).where(LoanRow.tenant_id == who.tenant_id, LoanRow.customer_id == customer_id)
    due = and_(InstallmentRow.loan_id.in_(loan_ids), InstallmentRow.due_date <= on)
    paid = InstallmentRow.status == "paid"
    with uow:
        s = uow.session
        row = s.execute(select(
            func.count(InstallmentRow.id),
            func.sum(case((and_(paid, InstallmentRow.paid_on <= InstallmentRow.due_date), 1), else_=0)),
            func.sum(case((and_(paid, InstallmentRow.paid_on > InstallmentRow.due_date), 1), else_=0)),
            func.sum(case((InstallmentRow.status == "overdue", 1), else_=0)),
        ).where(due)).one()
        n_due, on_time, late, overdue = (int(x or 0) for x in row)
        max_dpd = s.execute(select(func.max(LoanRow.days_past_due)).where(
            LoanRow.tenant_id == who.tenant_id, LoanRow.customer_id == customer_id)).scalar_one()
        repaid = s.execute(select(type_coerce(func.sum(RepaymentRow.amount), Amount())).where(
            RepaymentRow.loan_id.in_(loan_ids), RepaymentRow.status == "posted")).scalar_one()
    return RepaymentBehaviour(n_due, on_time, late, overdue, int(max_dpd or 0), repaid or Decimal(0),
                              _rate(on_time, on_time + late + overdue))


# ---------------------------------------------------------------------------------------- credit lines


@dataclass(frozen=True)
class OpenCreditLine:
    id: int
    customer_id: int | None
    limit: Decimal
    opened_on: date


def open_credit_lines(uow: UnitOfWork, who: Principal) -> list[OpenCreditLine]:
    with uow:
        return [OpenCreditLine(int(i), None if c is None else int(c), limit, opened) for i, c, limit, opened in
                uow.session.execute(
                    select(CreditLineRow.id, CreditLineRow.customer_id, CreditLineRow.limit, CreditLineRow.opened_on)
                    .where(CreditLineRow.tenant_id == who.tenant_id, CreditLineRow.status == "open")
                    .order_by(CreditLineRow.id)).all()]


def drawn_by_credit_line(uow: UnitOfWork, who: Principal) -> dict[int, Decimal]:
    """Credit line id -> principal outstanding on its active drawdowns."""
    with uow:
        return {line: Decimal(owed or 0) for line, owed in uow.session.execute(
            select(LoanRow.credit_line_id, func.sum(InstallmentRow.principal - InstallmentRow.principal_paid,
                                                    type_=Amount()))
            .join(InstallmentRow, InstallmentRow.loan_id == LoanRow.id)
            .where(LoanRow.tenant_id == who.tenant_id, LoanRow.status == "active",
                   LoanRow.credit_line_id.is_not(None))
            .group_by(LoanRow.credit_line_id)).all() if line is not None}


def credit_line_arrears(uow: UnitOfWork, who: Principal) -> dict[int, tuple[int, int]]:
    """Credit line id -> (worst days past due now over its drawdowns, how many were written off)."""
    with uow:
        return {line: (int(now or 0), int(written or 0)) for line, now, written in uow.session.execute(
            select(LoanRow.credit_line_id, func.max(LoanRow.days_past_due),
                   func.sum(case((LoanRow.status == "written_off", 1), else_=0)))
            .where(LoanRow.tenant_id == who.tenant_id, LoanRow.credit_line_id.is_not(None))
            .group_by(LoanRow.credit_line_id)).all() if line is not None}


def credit_line_instalments(uow: UnitOfWork, who: Principal, on: date,
                            days: int = 365) -> list[tuple[int, date, date | None]]:
    """(credit line id, due date, paid on) of the drawdown instalments due in the `days` up to `on`."""
    with uow:
        return [(line, due, paid) for line, due, paid in uow.session.execute(
            select(LoanRow.credit_line_id, InstallmentRow.due_date, InstallmentRow.paid_on)
            .join(InstallmentRow, InstallmentRow.loan_id == LoanRow.id)
            .where(LoanRow.tenant_id == who.tenant_id, LoanRow.credit_line_id.is_not(None),
                   InstallmentRow.due_date <= on, InstallmentRow.due_date > on - timedelta(days=days))).all()
            if line is not None]


def behaviour_subjects(uow: UnitOfWork, who: Principal) -> list[tuple[int, str, int | None, Decimal, date, int]]:
    """What the behaviour scorecard scores: (id, kind, customer id, limit, opened on, days past due now) of
    every open credit line (worst drawdown; 999 once one was written off) and every active loan that is not
    a drawdown of a line (its principal as the limit)."""
    with uow:
        s = uow.session
        worst: dict[int, int] = dict(s.execute(
            select(LoanRow.credit_line_id,
                   func.max(case((LoanRow.status == "written_off", 999), else_=LoanRow.days_past_due)))
            .where(LoanRow.tenant_id == who.tenant_id, LoanRow.credit_line_id.is_not(None))
            .group_by(LoanRow.credit_line_id)).tuples().all())
        lines = [(int(i), "line", None if c is None else int(c), limit, opened, int(worst.get(i) or 0))
                 for i, c, limit, opened in s.execute(
                     select(CreditLineRow.id, CreditLineRow.customer_id, CreditLineRow.limit, CreditLineRow.opened_on)
                     .where(CreditLineRow.tenant_id == who.tenant_id, CreditLineRow.status == "open")
                     .order_by(CreditLineRow.id)).all()]
        loans = [(int(i), "loan", None if c is None else int(c), principal, opened, int(dpd or 0))
                 for i, c, principal, opened, dpd in s.execute(
                     select(LoanRow.id, LoanRow.customer_id, LoanRow.principal, LoanRow.disbursed_on,
                            LoanRow.days_past_due)
                     .where(LoanRow.tenant_id == who.tenant_id, LoanRow.status == "active",
                            LoanRow.credit_line_id.is_(None))
                     .order_by(LoanRow.id)).all()]
    return lines + loans


def behaviour_instalments(uow: UnitOfWork, who: Principal, on: date,
                          days: int = 400) -> list[tuple[str, int, date, date, date | None, Decimal]]:
    """(kind, subject id, disbursed on, due date, paid on, principal) of the instalments of every drawdown
    (subject: its credit line) and every loan outside a line, that fell due in the `days` up to `on` or were
    unpaid at some point in them: one set-based read for the monthly behaviour score."""
    since = on - timedelta(days=days)
    recent = or_(InstallmentRow.due_date > since, InstallmentRow.paid_on.is_(None), InstallmentRow.paid_on > since)
    with uow:
        rows = uow.session.execute(
            select(LoanRow.credit_line_id, LoanRow.id, LoanRow.disbursed_on, InstallmentRow.due_date,
                   InstallmentRow.paid_on, InstallmentRow.principal)
            .join(InstallmentRow, InstallmentRow.loan_id == LoanRow.id)
            .where(LoanRow.tenant_id == who.tenant_id, LoanRow.disbursed_on <= on, recent)).all()
    return [("line", int(line), disbursed, due, paid, principal) if line is not None
            else ("loan", int(loan), disbursed, due, paid, principal)
            for line, loan, disbursed, due, paid, principal in rows]


#: The columns of `behaviour_frames`: subjects and their instalments, amounts in integer cents.
BEHAVIOUR_SUBJECTS = {"subject_id": pl.Int64, "kind": pl.Utf8, "customer_id": pl.Int64, "limit_cents": pl.Int64,
                      "opened_on": pl.Date, "current_dpd": pl.Int32}
BEHAVIOUR_INSTALMENTS = {"kind": pl.Utf8, "subject_id": pl.Int64, "disbursed_on": pl.Date, "due": pl.Date,
                         "paid_on": pl.Date, "principal_cents": pl.Int64}

_SUBJECTS_SQL = """
SELECT l.id, 'line', l.customer_id, l."limit", l.opened_on, COALESCE(w.worst, 0) FROM credit_lines l
LEFT JOIN (SELECT credit_line_id, MAX(CASE WHEN status = 'written_off' THEN 999 ELSE days_past_due END) AS worst
           FROM loans WHERE tenant_id = :tenant AND credit_line_id IS NOT NULL GROUP BY credit_line_id) w
       ON w.credit_line_id = l.id
WHERE l.tenant_id = :tenant AND l.status = 'open'
UNION ALL
SELECT id, 'loan', customer_id, principal, disbursed_on, COALESCE(days_past_due, 0) FROM loans
WHERE tenant_id = :tenant AND status = 'active' AND credit_line_id IS NULL
"""


def behaviour_frames(uow: UnitOfWork, who: Principal, on: date, days: int = 400) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`behaviour_subjects` and `behaviour_instalments` as columns (`BEHAVIOUR_SUBJECTS`,
    `BEHAVIOUR_INSTALMENTS`), one SQL statement each, amounts in integer cents: the whole-book read of the
    monthly behaviour score and the early-warning scan (subjects: lines by id, then loans by id)."""
    with uow:
        s = uow.session
        subjects = read_frame(s, _SUBJECTS_SQL, {"tenant": who.tenant_id}, {
            **BEHAVIOUR_SUBJECTS, "limit_cents": pl.Int64})
        instalments = instalment_rows(uow, who, on, days=days)
    subjects = subjects.with_columns(storage_to_cents("limit_cents").alias("limit_cents"))
    order = pl.when(pl.col("kind") == "line").then(0).otherwise(1)
    return subjects.sort(order, "subject_id").select(list(BEHAVIOUR_SUBJECTS)), instalments


#: Every loan's instalments in one row (their due days as ordinals, paid dates, principals: comma-separated, in
#: the same order), the loan's subject and disbursement date beside them: the database steps over the instalments
#: in loan order (the covering index on them) and joins each loan once, and nothing is worked out per instalment
#: in SQL, whose per-row expressions cost SQLite several times the read itself. `instalment_rows` unpacks them.
_PACKED_SQL = """
SELECT CASE WHEN n.credit_line_id IS NULL THEN 'loan' ELSE 'line' END, COALESCE(n.credit_line_id, n.id),
       n.disbursed_on, t.dues, t.paid, t.principal
FROM (SELECT i.loan_id, {concat}(i.due_day{text}, ',') AS dues, {concat}(COALESCE(i.paid_on{text}, ''), ',') AS paid,
             {concat}(i.principal{text}, ',') AS principal
      FROM loan_installments i
      WHERE i.tenant_id = :tenant AND (i.due_day > :since_day OR i.paid_on IS NULL OR i.paid_on > :since){loans}
      GROUP BY i.loan_id) t
JOIN loans n ON n.id = t.loan_id
WHERE n.tenant_id = :tenant AND n.disbursed_on <= :on{of}
"""
_PACKED = {"kind": pl.Utf8, "subject_id": pl.Int64, "disbursed_on": pl.Date, "dues": pl.Utf8, "paid": pl.Utf8,
           "principal": pl.Utf8}


def instalment_rows(uow: UnitOfWork, who: Principal, on: date, loans: tuple[int, int] | None = None,
                    days: int = 400) -> pl.DataFrame:
    """The instalments of `behaviour_frames` (`BEHAVIOUR_INSTALMENTS`, principal in integer cents) that fell
    due in the `days` up to `on` or were unpaid at some point in them, of every loan of the bank disbursed by
    `on` or of those with ids in `loans` (first, last): read one row per loan (`_PACKED_SQL`) and unpacked here
    (on SQLite about half the time of totalling them in SQL, a third of reading a row per instalment)."""
    since = on - timedelta(days=days)
    params: dict[str, Any] = {"tenant": who.tenant_id, "on": on, "since": since, "since_day": since.toordinal()}
    ids = ""
    if loans is not None:
        params.update(first=loans[0], last=loans[1])
        ids = " AND {} BETWEEN :first AND :last"
    with uow:
        s = uow.session
        # SQLite's group_concat takes the values as they are (a cast is one more step per instalment)
        postgres = s.get_bind().dialect.name == "postgresql"
        concat, as_text = ("string_agg", "::text") if postgres else ("group_concat", "")
        sql = _PACKED_SQL.format(concat=concat, text=as_text, loans=ids.format("i.loan_id"), of=ids.format("n.id"))
        packed = read_frame(s, sql, params, _PACKED)
    ordinal = date(1970, 1, 1).toordinal()
    return (packed.lazy()
            .with_columns(pl.col("dues").str.split(","), pl.col("paid").str.split(","),
                          pl.col("principal").str.split(","))
            .explode("dues", "paid", "principal")
            .select(pl.col("kind"), pl.col("subject_id"), pl.col("disbursed_on"),
                    (pl.col("dues").cast(pl.Int32) - ordinal).cast(pl.Date).alias("due"),
                    pl.when(pl.col("paid") != "").then(pl.col("paid")).str.to_date("%Y-%m-%d").alias("paid_on"),
                    storage_to_cents(pl.col("principal").cast(pl.Int64)).alias("principal_cents"))
            .collect())


#: The columns of `behaviour_totals`' totals (and `owed_<k>` per month-end asked, cents), after kind and subject.
BEHAVIOUR_TOTALS = {"subject_id": pl.Int64, "due_12m": pl.Int32, "on_time_12m": pl.Int32,
                    "overdue_count_12m": pl.Int32, "max_late": pl.Int32}
#: Stored ten-thousandths -> integer cents of one instalment in SQL, as `storage_to_cents` rounds (half to even,
#: floor division whatever the sign); most amounts are whole cents and take the first branch.
_CENTS_SQL = """CASE WHEN principal % 100 = 0 THEN principal / 100 ELSE
 (principal - (principal % 100 + 100) % 100) / 100
 + CASE WHEN (principal % 100 + 100) % 100 > 50 OR ((principal % 100 + 100) % 100 = 50
             AND ((principal - (principal % 100 + 100) % 100) / 100) % 2 <> 0) THEN 1 ELSE 0 END END"""


def _totals_sql(months: int, ranged: bool = False) -> str:
    """Every loan's instalment totals (`behaviour_totals`, per loan with its subject's kind and id) in one pass
    over the instalments in loan order (PostgreSQL): the rows `behaviour_instalments` reads, totalled in the
    database. Each instalment's cents and paid day (an ordinal, as `due_day`) are worked out once, in the ordered
    subquery (its ORDER BY keeps it apart, so they are not worked out again in every total that uses them), and
    the totals are filtered aggregates of them; the covering index on the loan's due days, paid dates and
    principals serves the read without the rows. With `ranged`, of the loans with ids from `:first` to
    `:last`."""
    window = "i.due_day <= :on_day AND i.due_day > :year_ago_day"
    owed = ",\n".join(f"SUM(i.cents) FILTER (WHERE i.paid_on IS NULL OR i.paid_on > :end_{k}) AS owed_{k}"
                       for k in range(months))
    owed_of = ", ".join(f"CASE WHEN n.disbursed_on <= :end_{k} THEN t.owed_{k} ELSE 0 END" for k in range(months))
    ids = " AND {} BETWEEN :first AND :last" if ranged else ""
    loans, of = ids.format("loan_id"), ids.format("n.id")
    return f"""
SELECT CASE WHEN n.credit_line_id IS NULL THEN 'loan' ELSE 'line' END, COALESCE(n.credit_line_id, n.id),
       t.due_12m, t.on_time_12m, t.overdue_count_12m, t.max_late, {owed_of}
FROM (SELECT i.loan_id,
  COUNT(*) FILTER (WHERE {window}) AS due_12m,
  COUNT(*) FILTER (WHERE {window} AND i.paid_on IS NOT NULL AND i.paid_day <= i.due_day) AS on_time_12m,
  COUNT(*) FILTER (WHERE {window} AND i.paid_day > i.due_day) AS overdue_count_12m,
  MAX(GREATEST(i.paid_day - i.due_day, 0)) FILTER (WHERE {window}) AS max_late,
  {owed}
  FROM (SELECT loan_id, due_day, paid_on, COALESCE(paid_on - DATE '0001-01-01' + 1, :on_day) AS paid_day,
               {_CENTS_SQL} AS cents
        FROM loan_installments
        WHERE tenant_id = :tenant AND (due_day > :since_day OR paid_on IS NULL OR paid_on > :since){loans}
        ORDER BY loan_id) i
  GROUP BY i.loan_id) t
JOIN loans n ON n.id = t.loan_id
WHERE n.tenant_id = :tenant AND n.disbursed_on <= :on{of}
"""


def behaviour_subjects_frame(uow: UnitOfWork, who: Principal) -> pl.DataFrame:
    """The subjects of `behaviour_frames` (`BEHAVIOUR_SUBJECTS`: lines by id, then loans by id), read alone."""
    with uow:
        subjects = read_frame(uow.session, _SUBJECTS_SQL, {"tenant": who.tenant_id}, {
            **BEHAVIOUR_SUBJECTS, "limit_cents": pl.Int64})
    subjects = subjects.with_columns(storage_to_cents("limit_cents").alias("limit_cents"))
    order = pl.when(pl.col("kind") == "line").then(0).otherwise(1)
    return subjects.sort(order, "subject_id").select(list(BEHAVIOUR_SUBJECTS))


def loan_id_ranges(uow: UnitOfWork, who: Principal, parts: int) -> list[tuple[int, int]]:
    """The ids of the bank's loans cut into `parts` ranges of about as many ids (first, last, both included), for
    reading a whole book's totals in parts at once (`loan_totals`); none when it has no loans."""
    with uow:
        low, high = uow.session.execute(select(func.min(LoanRow.id), func.max(LoanRow.id)).where(
            LoanRow.tenant_id == who.tenant_id)).one()
    if low is None or high is None:
        return []
    step = max(1, -(-(int(high) - int(low) + 1) // max(1, parts)))
    return [(first, min(first + step - 1, int(high))) for first in range(int(low), int(high) + 1, step)]


def loan_totals(uow: UnitOfWork, who: Principal, on: date, year_ago: date, month_ends: Sequence[date],
                totals_of: Callable[[pl.DataFrame], pl.DataFrame], loans: tuple[int, int] | None = None,
                days: int = 400) -> pl.DataFrame:
    """The instalment totals of `behaviour_totals` (with the subject's kind and id, per loan or per subject: a
    line's drawdowns are added up by `subject_totals`), of every loan of the bank or of those with ids in `loans`
    (first, last). PostgreSQL totals them itself in one ordered pass (`_totals_sql`; on a range without parallel
    workers for the rest of its transaction: their partial totals of a million loans, merged and combined again,
    cost more than they save; the ranges are the parallel reads). On SQLite, whose per-row arithmetic costs
    several times the read, the instalments are read packed (`instalment_rows`) and `totals_of` totals them (the
    scorecard's own totals of `BEHAVIOUR_INSTALMENTS` rows: kind and the columns of `BEHAVIOUR_TOTALS`)."""
    with uow:
        s = uow.session
        if s.get_bind().dialect.name != "postgresql":
            return totals_of(instalment_rows(uow, who, on, loans, days))
        since = on - timedelta(days=days)
        params: dict[str, Any] = {
            "tenant": who.tenant_id, "on": on, "on_day": on.toordinal(), "since": since,
            "since_day": since.toordinal(), "year_ago_day": year_ago.toordinal(),
            **{f"end_{k}": end for k, end in enumerate(month_ends)}}
        if loans is not None:
            params.update(first=loans[0], last=loans[1])
            s.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
        schema = {"kind": pl.Utf8, **BEHAVIOUR_TOTALS, **{f"owed_{k}": pl.Int64 for k in range(len(month_ends))}}
        return read_frame(s, _totals_sql(len(month_ends), loans is not None), params, schema)


def subject_totals(per_loan: Sequence[pl.DataFrame], months: int) -> pl.DataFrame:
    """`loan_totals` (of the whole book, or its parts) added up per subject: the totals of `behaviour_totals`."""
    schema = {"kind": pl.Utf8, **BEHAVIOUR_TOTALS, **{f"owed_{k}": pl.Int64 for k in range(months)}}
    loans = pl.concat(list(per_loan)) if per_loan else pl.DataFrame(schema=schema)
    return loans.group_by("kind", "subject_id").agg(
        *(pl.col(c).sum() for c in ("due_12m", "on_time_12m", "overdue_count_12m")), pl.col("max_late").max(),
        *(pl.col(f"owed_{k}").sum() for k in range(months)),
    ).select([pl.col(c).cast(t) for c, t in schema.items()])


def behaviour_totals(uow: UnitOfWork, who: Principal, on: date, year_ago: date, month_ends: Sequence[date],
                     totals_of: Callable[[pl.DataFrame], pl.DataFrame], days: int = 400
                     ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(subjects, their instalments' totals with their kind): `behaviour_frames` with the instalments totalled
    per subject (`BEHAVIOUR_TOTALS`): of those due in (`year_ago`, `on`] how many, how many paid by their due
    date, how many paid late or still unpaid and the worst days late (clipped at 0; null: none fell due), and
    the principal owed at each of `month_ends` (cents): on PostgreSQL taken by the database per loan, on SQLite
    by `totals_of` from the instalments read one row per loan (`loan_totals`), added up per credit line here;
    the same figures as totalling `behaviour_frames`' instalments. In one unit of work;
    `behaviour_subjects_frame`, `loan_totals` and `subject_totals` read the same in parts."""
    with uow:
        subjects = behaviour_subjects_frame(uow, who)
        per_loan = loan_totals(uow, who, on, year_ago, month_ends, totals_of, days=days)
    return subjects, subject_totals([per_loan], len(month_ends))


def loan_count(uow: UnitOfWork, who: Principal) -> int:
    """Loans the caller's bank has ever booked."""
    with uow:
        return int(uow.session.execute(select(func.count()).select_from(LoanRow)
                                       .where(LoanRow.tenant_id == who.tenant_id)).scalar_one())


@dataclass(frozen=True)
class AmountDue:
    """What an active loan owes by a date: instalments due and unpaid plus penalty, and the oldest due date."""

    loan_id: int
    customer_id: int | None
    amount: Decimal
    oldest_due: date


def amounts_due(uow: UnitOfWork, who: Principal, on: date) -> list[AmountDue]:
    """Every active loan of the caller's bank with something due by `on`."""
    remaining = (InstallmentRow.principal + InstallmentRow.interest + InstallmentRow.fee
                 - InstallmentRow.principal_paid - InstallmentRow.interest_paid - InstallmentRow.fee_paid)
    with uow:
        rows = uow.session.execute(
            select(LoanRow.id, LoanRow.customer_id, type_coerce(func.sum(remaining), Amount()),
                   type_coerce(LoanRow.penalty_accrued - LoanRow.penalty_paid, Amount()),
                   func.min(InstallmentRow.due_date))
            .join(InstallmentRow, InstallmentRow.loan_id == LoanRow.id)
            .where(LoanRow.tenant_id == who.tenant_id, LoanRow.status == "active",
                   InstallmentRow.status.in_(("pending", "overdue")), InstallmentRow.due_date <= on)
            .group_by(LoanRow.id, LoanRow.customer_id, LoanRow.penalty_accrued, LoanRow.penalty_paid)
        ).all()
    return [AmountDue(loan_id, customer, due + (penalty or Decimal(0)), first)
            for loan_id, customer, due, penalty, first in rows if due]


def capped_rate(uow: UnitOfWork, who: Principal, product_code: str, amount: Decimal, rate: Decimal,
                term_months: int) -> Decimal:
    """The highest rate at or below ``rate`` (and the product's highest rate) that keeps an offer under
    ``product_code`` within the bank's rate cap (利率上限): its rate, its penalty rate and its APR with fees."""
    with uow:
        s = uow.session
        row = s.execute(select(ProductRow).where(ProductRow.tenant_id == who.tenant_id,
                                                 ProductRow.code == product_code)).scalar_one_or_none()
        cap = bank_rate_cap(s, who.tenant_id)
        if row is None:
            return min(rate, cap)
        product = product_terms(row).product
        return price_within_cap(product, amount, min(rate, product.max_rate), term_months, cap)
# ---------------------------------------------------------------------------------------- exposure and history

#: 五级分类 classes that make a loan non-performing (不良).
NON_PERFORMING = ("substandard", "doubtful", "loss")


@dataclass(frozen=True)
class LoanExposure:
    """What the bank has lent a customer: principal outstanding on active loans, and the unused part of open
    credit lines (a line's limit less the principal outstanding on its drawdowns)."""

    outstanding: Decimal
    undrawn: Decimal


def loan_exposure(uow: UnitOfWork, who: Principal, customer_ids: Sequence[int]) -> dict[int, LoanExposure]:
    """Customer id -> outstanding principal and undrawn credit-line limits, for the given customers."""
    ids = sorted({int(i) for i in customer_ids})
    owed = type_coerce(func.sum(InstallmentRow.principal - InstallmentRow.principal_paid), Amount())
    out: dict[int, LoanExposure] = {}
    with uow:
        s = uow.session
        by_customer = dict(s.execute(
            select(LoanRow.customer_id, owed).join(InstallmentRow, InstallmentRow.loan_id == LoanRow.id)
            .where(LoanRow.tenant_id == who.tenant_id, LoanRow.status == "active", LoanRow.customer_id.in_(ids))
            .group_by(LoanRow.customer_id)).tuples().all())
        drawn = dict(s.execute(
            select(LoanRow.credit_line_id, owed).join(InstallmentRow, InstallmentRow.loan_id == LoanRow.id)
            .where(LoanRow.tenant_id == who.tenant_id, LoanRow.status == "active", LoanRow.customer_id.in_(ids),
                   LoanRow.credit_line_id.is_not(None))
            .group_by(LoanRow.credit_line_id)).tuples().all())
        lines = s.execute(select(CreditLineRow.id, CreditLineRow.customer_id, CreditLineRow.limit).where(
            CreditLineRow.tenant_id == who.tenant_id, CreditLineRow.status == "open",
            CreditLineRow.customer_id.in_(ids))).all()
    undrawn: dict[int, Decimal] = {}
    for line_id, customer, limit in lines:
        if customer is not None:
            unused = max(limit - (drawn.get(line_id) or Decimal(0)), Decimal(0))
            undrawn[int(customer)] = undrawn.get(int(customer), Decimal(0)) + unused
    for customer_id in ids:
        out[customer_id] = LoanExposure(by_customer.get(customer_id) or Decimal(0),
                                        undrawn.get(customer_id, Decimal(0)))
    return out


@dataclass(frozen=True)
class CreditHistory:
    """A group of customers' own record at this bank (行内记录): the worst days past due on an active loan now,
    loans non-performing now or classed so since a date, and loans written off since that date."""

    days_past_due: int
    non_performing: int
    written_off: int


def credit_history(uow: UnitOfWork, who: Principal, customer_ids: Sequence[int], since: date) -> CreditHistory:
    ids = sorted({int(i) for i in customer_ids})
    with uow:
        s = uow.session
        loans = s.execute(select(LoanRow.id, LoanRow.status, LoanRow.days_past_due, LoanRow.loan_class,
                                 LoanRow.closed_on).where(
            LoanRow.tenant_id == who.tenant_id, LoanRow.customer_id.in_(ids))).all()
        recent = {i for i, status, _, _, closed in loans if status == "active" or closed is None or closed >= since}
        classed = {int(loan_id) for loan_id, data in s.execute(
            select(LoanEventRow.loan_id, LoanEventRow.data).where(
                LoanEventRow.tenant_id == who.tenant_id, LoanEventRow.kind == "LoanClassChanged",
                LoanEventRow.business_date >= since,
                LoanEventRow.loan_id.in_([i for i, *_ in loans]))).all()
            if (data or {}).get("to_class") in NON_PERFORMING}
    worst = max((int(dpd or 0) for _, status, dpd, _, _ in loans if status == "active"), default=0)
    npl = {i for i, _, _, loan_class, _ in loans if i in recent and loan_class in NON_PERFORMING} | classed
    written_off = sum(1 for i, status, *_ in loans if status == "written_off" and i in recent)
    return CreditHistory(worst, len(npl), written_off)


@dataclass(frozen=True)
class CloseOfBusinessCpu:
    """The CPU time closes of business took and the loan-days they served (one active loan through one
    close is one loan-day)."""

    runs: int
    cpu_ms: int
    loan_days: int


def close_of_business_cpu(uow: UnitOfWork, who: Principal, *, since: datetime | None = None,
                          until: datetime | None = None) -> CloseOfBusinessCpu:
    """The caller's bank's closes of business that started in [since, until)."""
    cond = [CobRunRow.tenant_id == who.tenant_id]
    if since is not None:
        cond.append(CobRunRow.started_at >= since)
    if until is not None:
        cond.append(CobRunRow.started_at < until)
    with uow:
        runs, cpu, days = uow.session.execute(
            select(func.count(), func.coalesce(func.sum(CobRunRow.cpu_ms), 0),
                   func.coalesce(func.sum(CobRunRow.loans_active), 0)).where(*cond)).one()
    return CloseOfBusinessCpu(int(runs), int(cpu), int(days))


def loan_days(uow: UnitOfWork, who: Principal, *, loan_id: int | None = None,
              credit_line_id: int | None = None) -> int:
    """The closes of business a loan (or a credit line's drawdowns) went through while it was open."""
    if loan_id is None and credit_line_id is None:
        return 0
    which = LoanRow.id == loan_id if loan_id is not None else LoanRow.credit_line_id == credit_line_id
    with uow:
        return int(uow.session.execute(
            select(func.count()).select_from(LoanRow)
            .join(CobRunRow, and_(CobRunRow.tenant_id == LoanRow.tenant_id,
                                  CobRunRow.business_date >= LoanRow.disbursed_on,
                                  or_(LoanRow.closed_on.is_(None), CobRunRow.business_date < LoanRow.closed_on)))
            .where(LoanRow.tenant_id == who.tenant_id, which)).scalar_one())


# ---------------------------------------------------------------------------------------- pricing and provisioning


#: The loss given default of an unsecured loan when the bank has set none (the provisioning default).
DEFAULT_LGD = Decimal("0.45")


def loss_given_default(uow: UnitOfWork, who: Principal) -> Decimal:
    """The bank's LGD from its provisioning settings (违约损失率; the default 45 % until it sets one)."""
    with uow.read_only():
        lgd = uow.session.execute(
            select(ServicingSettingsRow.lgd).where(ServicingSettingsRow.tenant_id == who.tenant_id)
        ).scalar_one_or_none()
    return DEFAULT_LGD if lgd is None else Decimal(lgd)


@dataclass(frozen=True)
class ProductPrice:
    """What a product charges: its annual rate and the upfront fee as a share of the amount."""

    annual_rate: Decimal
    upfront_fee_rate: Decimal


def product_prices(uow: UnitOfWork, who: Principal) -> dict[str, ProductPrice]:
    """Product code -> rate and upfront fee rate, for the bank's active products."""
    with uow.read_only():
        rows = uow.session.execute(
            select(ProductRow.code, ProductRow.annual_rate, ProductRow.upfront_fee_rate)
            .where(ProductRow.tenant_id == who.tenant_id, ProductRow.active.is_(True))
        ).all()
    return {code: ProductPrice(Decimal(rate), Decimal(fee)) for code, rate, fee in rows}
@dataclass(frozen=True)
class LoanPerformanceFacts:
    """When a loan was paid out and the first day it was bad: more than `BAD_DAYS_PAST_DUE` days past due on
    some installment (its due date + 31 days, the installment still unpaid then), or written off (its closing
    day) when that came first; None while it never was, as of the day asked."""

    loan_id: int
    disbursed_on: date
    bad_on: date | None


def loan_performance(uow: UnitOfWork, who: Principal, loan_ids: Ids, on: date) -> dict[int, LoanPerformanceFacts]:
    """Loan id -> paid-out day and first bad day as of `on`, for the caller's bank's loans among `loan_ids`."""
    late = timedelta(days=BAD_DAYS_PAST_DUE + 1)
    found: dict[int, LoanPerformanceFacts] = {}
    with uow:
        s = uow.session
        for chunk in _id_sets(loan_ids):
            loans = {int(i): (d, status, closed) for i, d, status, closed in s.execute(
                select(LoanRow.id, LoanRow.disbursed_on, LoanRow.status, LoanRow.closed_on)
                .where(LoanRow.tenant_id == who.tenant_id, LoanRow.id.in_(chunk), LoanRow.disbursed_on <= on)).all()}
            first_bad: dict[int, date] = {}
            for loan_id, due, paid_on in s.execute(
                select(InstallmentRow.loan_id, InstallmentRow.due_date, InstallmentRow.paid_on).where(
                    InstallmentRow.tenant_id == who.tenant_id, InstallmentRow.loan_id.in_(chunk),
                    or_(InstallmentRow.paid_on.is_(None), InstallmentRow.paid_on > InstallmentRow.due_date))).all():
                went_bad: date = due + late
                if went_bad > on or (paid_on is not None and paid_on < went_bad):
                    continue
                if int(loan_id) not in first_bad or went_bad < first_bad[int(loan_id)]:
                    first_bad[int(loan_id)] = went_bad
            for loan_id, (disbursed_on, status, closed_on) in loans.items():
                bad_on = first_bad.get(loan_id)
                if status == "written_off":
                    written_off = closed_on if closed_on is not None and closed_on <= on else on
                    bad_on = written_off if bad_on is None else min(bad_on, written_off)
                found[loan_id] = LoanPerformanceFacts(loan_id, disbursed_on, bad_on)
    return found
# ---------------------------------------------------------------------------------------- the whole book, per customer


@dataclass(frozen=True)
class CustomerLoanSummary:
    """One customer's loans at this bank in one row (for batch work over the whole customer base): loans ever
    and active now, principal outstanding on active loans, worst days past due now and ever, loans non-performing
    (now, or classed so since `since`) and written off since `since`, installments due so far and paid by their
    due date, the last early repayment (提前还款) and the last loan disbursed and closed."""

    loans_count: int
    active_loans: int
    outstanding: Decimal
    days_past_due: int
    max_days_past_due_ever: int
    non_performing: int
    written_off: int
    installments_due: int
    paid_on_time: int
    last_early_repayment: date | None
    last_disbursed: date | None
    last_closed: date | None


def loan_summaries(uow: UnitOfWork, who: Principal, on: date, since: date) -> dict[int, CustomerLoanSummary]:
    """Customer id -> their loan summary as of `on`, for every customer of the caller's bank with a loan, in a
    handful of set-based queries (no query per customer)."""
    t = who.tenant_id
    owed = type_coerce(func.sum(InstallmentRow.principal - InstallmentRow.principal_paid), Amount())
    with uow:
        s = uow.session
        loans = s.execute(select(LoanRow.id, LoanRow.customer_id, LoanRow.status, LoanRow.days_past_due,
                                 LoanRow.loan_class, LoanRow.disbursed_on, LoanRow.closed_on).where(
            LoanRow.tenant_id == t, LoanRow.customer_id.is_not(None))).all()
        outstanding = dict(s.execute(
            select(LoanRow.customer_id, owed).join(InstallmentRow, InstallmentRow.loan_id == LoanRow.id)
            .where(LoanRow.tenant_id == t, LoanRow.status == "active", LoanRow.customer_id.is_not(None))
            .group_by(LoanRow.customer_id)).tuples().all())
        paid = InstallmentRow.status == "paid"
        schedule = {int(c): (int(n or 0), int(ok or 0)) for c, n, ok in s.execute(
            select(LoanRow.customer_id, func.count(InstallmentRow.id),
                   func.sum(case((and_(paid, InstallmentRow.paid_on <= InstallmentRow.due_date), 1), else_=0)))
            .join(InstallmentRow, InstallmentRow.loan_id == LoanRow.id)
            .where(LoanRow.tenant_id == t, LoanRow.customer_id.is_not(None), InstallmentRow.due_date <= on)
            .group_by(LoanRow.customer_id)).all()}
        early = {int(c or 0): d for c, d in s.execute(
            select(LoanRow.customer_id, func.max(RepaymentRow.value_date))
            .join(RepaymentRow, RepaymentRow.loan_id == LoanRow.id)
            .where(LoanRow.tenant_id == t, LoanRow.customer_id.is_not(None), RepaymentRow.status == "posted",
                   RepaymentRow.kind.in_(("early_full", "early_partial")), RepaymentRow.value_date <= on)
            .group_by(LoanRow.customer_id)).all()}
        classed = {int(loan_id) for loan_id, data in s.execute(
            select(LoanEventRow.loan_id, LoanEventRow.data).where(
                LoanEventRow.tenant_id == t, LoanEventRow.kind == "LoanClassChanged",
                LoanEventRow.business_date >= since)).all()
            if (data or {}).get("to_class") in NON_PERFORMING}
    acc: dict[int, dict[str, Any]] = {}
    for loan_id, customer, status, dpd, loan_class, disbursed, closed in loans:
        a = acc.setdefault(int(customer or 0), {"n": 0, "active": 0, "dpd": 0, "ever": 0, "npl": 0, "wo": 0,
                                           "disbursed": None, "closed": None})
        recent = status == "active" or closed is None or closed >= since
        a["n"] += 1
        a["ever"] = max(a["ever"], int(dpd or 0))
        if status == "active":
            a["active"] += 1
            a["dpd"] = max(a["dpd"], int(dpd or 0))
        if (recent and loan_class in NON_PERFORMING) or int(loan_id) in classed:
            a["npl"] += 1
        if status == "written_off" and recent:
            a["wo"] += 1
        if disbursed is not None and (a["disbursed"] is None or disbursed > a["disbursed"]):
            a["disbursed"] = disbursed
        if closed is not None and (a["closed"] is None or closed > a["closed"]):
            a["closed"] = closed
    out: dict[int, CustomerLoanSummary] = {}
    for customer, a in acc.items():
        n_due, on_time = schedule.get(customer, (0, 0))
        out[customer] = CustomerLoanSummary(
            a["n"], a["active"], outstanding.get(customer) or Decimal(0), a["dpd"], a["ever"],
            a["npl"], a["wo"], n_due, on_time, early.get(customer), a["disbursed"], a["closed"])
    return out


def undrawn_by_customer(uow: UnitOfWork, who: Principal) -> dict[int, Decimal]:
    """Customer id -> the unused part of their open credit lines (limit less principal outstanding on the
    line's drawdowns), for every customer of the caller's bank with an open line."""
    owed = type_coerce(func.sum(InstallmentRow.principal - InstallmentRow.principal_paid), Amount())
    with uow:
        s = uow.session
        drawn = dict(s.execute(
            select(LoanRow.credit_line_id, owed).join(InstallmentRow, InstallmentRow.loan_id == LoanRow.id)
            .where(LoanRow.tenant_id == who.tenant_id, LoanRow.status == "active",
                   LoanRow.credit_line_id.is_not(None)).group_by(LoanRow.credit_line_id)).tuples().all())
        lines = s.execute(select(CreditLineRow.id, CreditLineRow.customer_id, CreditLineRow.limit).where(
            CreditLineRow.tenant_id == who.tenant_id, CreditLineRow.status == "open",
            CreditLineRow.customer_id.is_not(None))).all()
    out: dict[int, Decimal] = {}
    for line_id, customer, limit in lines:
        unused = max(limit - (drawn.get(line_id) or Decimal(0)), Decimal(0))
        out[int(customer or 0)] = out.get(int(customer or 0), Decimal(0)) + unused
    return out


# ---------------------------------------------------------------------------------------- portfolio analytics


def vintage_counts(uow: UnitOfWork, who: Principal, window: Window) -> list[tuple[int, int | None, int | None, int]]:
    """The bank's loans disbursed in the window's months, counted by (cohort month index, index of the month
    they first went 30+ past due or None, the same for 90+), in one set-based statement (see `portfolio_sql`)."""
    with uow.read_only():
        sql = vintage_sql(window, who.tenant_id, uow.session.get_bind().dialect.name)
        return [(int(c), None if k30 is None else int(k30), None if k90 is None else int(k90), int(n))
                for c, k30, k90, n in uow.session.execute(text(sql)).all()]


def roll_counts(uow: UnitOfWork, who: Principal, window: Window) -> list[tuple[int, str, str, int]]:
    """The bank's loans open at a month end, counted by (month index, state then, state a month later)."""
    with uow.read_only():
        sql = roll_sql(window, who.tenant_id, uow.session.get_bind().dialect.name)
        return [(int(j), str(a), str(b), int(n)) for j, a, b, n in uow.session.execute(text(sql)).all()]
