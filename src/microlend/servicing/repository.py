"""Loads and saves Loan aggregates (SQLAlchemy), and the servicing books they post to.

Exposed on a unit of work through typed accessors — ``loans(uow)``, ``ledger(uow)``, ``audit_trail(uow)`` —
which a fake unit of work answers with in-memory fakes. The tables do not change: a loan is one ``loans``
row and its ``loan_installments``; its history lands in ``loan_events``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.db import Amount
from microlend.core.errors import NotFound, ValidationError
from microlend.core.identity import Principal
from microlend.core.money import to_storage
from microlend.core.tenancy import business_date
from microlend.core.uow import UnitOfWork, register_repository
from microlend.parties import queries as parties
from microlend.servicing.accrued import accrued_on, closed_through
from microlend.servicing.allocation import parse_order
from microlend.servicing.domain import RATE_SCALE, CreditLine, Installment, Loan, ProductTerms, Repayment
from microlend.servicing.ledger import Acct, JournalEntry, JournalLine
from microlend.servicing.nonaccrual import DEFAULT_NONACCRUAL, AccruedInterestPolicy, NonAccrualSettings
from microlend.servicing.products import DEFAULT_RATE_CAP, Product
from microlend.servicing.schedules import FeeMode, RepaymentMethod
from microlend.servicing.tables import (
    CobRunRow,
    CreditLineRow,
    InstallmentRow,
    JournalEntryRow,
    JournalLineRow,
    LoanAccrualRow,
    LoanEventRow,
    LoanRow,
    ProductRow,
    RepaymentRow,
    ServicingSettingsRow,
)

KEY_REUSED = "idempotency_key: already used with a different request"


class DisbursementKeyTaken(Exception):
    """Another request stored a loan under the same disbursement key meanwhile."""


# ------------------------------------------------------------------------------------------ ports


class LoanRepository:
    """Loans of one unit of work and their repayments; another tenant's loan is a missing one."""

    def get(self, tenant_id: int, loan_id: int, *, lock: bool = False) -> Loan:
        """The loan with its installments; ``lock`` serialises writers of one loan until commit."""
        raise NotImplementedError

    def customers_of_bank(self, who: Principal, customer_ids: Sequence[int]) -> set[int]:
        """The ids among `customer_ids` that are customers of the caller's bank (parties decides)."""
        raise NotImplementedError

    def save(self, loan: Loan) -> None:
        """Write the loan's changes back and hand its recorded events to the unit of work."""
        raise NotImplementedError

    def add(self, loan: Loan) -> Loan:
        """Store a new loan with its installments: it gets its id (``Loan.stored_as``), its history is written
        and its events handed to the unit of work. A disbursement key taken meanwhile raises
        ``DisbursementKeyTaken``."""
        raise NotImplementedError

    def by_disbursement_key(self, tenant_id: int, key: str) -> Loan | None:
        raise NotImplementedError

    def product(self, tenant_id: int, code: str) -> ProductTerms | None:
        """The bank's product of that code (offered or not), or None."""
        raise NotImplementedError

    def product_by_id(self, product_id: int) -> ProductTerms:
        raise NotImplementedError

    def rate_cap(self, tenant_id: int) -> Decimal:
        """The bank's rate cap (利率上限); the legal line unless the bank set its own."""
        return DEFAULT_RATE_CAP

    def overpayment_tolerance(self, loan: Loan) -> Decimal:
        """How far a payment on this loan may exceed its payoff (its product's tolerance)."""
        return self.product_by_id(loan.product_id).product.overpayment_tolerance

    def credit_line(self, tenant_id: int, line_id: int, *, lock: bool = False) -> CreditLine | None:
        raise NotImplementedError

    def drawn(self, line_id: int) -> Decimal:
        """Principal still owed on the line's active drawdowns."""
        raise NotImplementedError

    def add_credit_line(self, line: CreditLine) -> CreditLine:
        """Store a new line (id ``NEW``); returns it with its id."""
        raise NotImplementedError

    def save_credit_line(self, line: CreditLine) -> None:
        """Write back a line read with ``credit_line`` in this unit of work (its limit and status)."""
        raise NotImplementedError

    def early_repayment_allowed(self, loan: Loan) -> bool:
        raise NotImplementedError

    def repayment(self, tenant_id: int, repayment_id: int) -> Repayment:
        raise NotImplementedError

    def repayment_by_key(self, tenant_id: int, key: str) -> Repayment | None:
        raise NotImplementedError

    def posted_after(self, repayment: Repayment) -> list[Repayment]:
        """The loan's repayments posted after ``repayment`` and still standing, oldest first."""
        raise NotImplementedError

    def add_repayment(self, repayment: Repayment) -> Repayment:
        """Store a new repayment (it gets its id); a key taken meanwhile is refused."""
        raise NotImplementedError

    def save_repayment(self, repayment: Repayment) -> None:
        raise NotImplementedError


class Ledger:
    """The books: the business date entries are posted on, and the journal."""

    def business_date(self, tenant_id: int) -> date:
        raise NotImplementedError

    def post(self, who: Principal, on: date, entry: JournalEntry) -> int:
        """Store a (necessarily balanced) journal entry; returns its id."""
        raise NotImplementedError

    def entry(self, entry_id: int) -> JournalEntry:
        raise NotImplementedError

    def penalty_charged(self, tenant_id: int, loan_id: int, first: date, last: date) -> Decimal:
        """Penalty close of business charged a loan on dates ``first``..``last`` (to income or off-balance)."""
        raise NotImplementedError

    def closed_dates(self, tenant_id: int, first: date, last: date) -> list[date]:
        """The business dates ``first``..``last`` close of business has closed, oldest first."""
        raise NotImplementedError


class AuditTrail:
    """Audit records written in the use case's transaction."""

    def record(
        self, who: Principal, action: str, object_type: str, object_id: object,
        *, before: Any = None, after: Any = None, reason: str = "",
    ) -> None:
        raise NotImplementedError


def loans(uow: UnitOfWork) -> LoanRepository:
    return uow.repository(LoanRepository)


def ledger(uow: UnitOfWork) -> Ledger:
    return uow.repository(Ledger)


def audit_trail(uow: UnitOfWork) -> AuditTrail:
    return uow.repository(AuditTrail)


# ------------------------------------------------------------------------------------------ SQL journal


def post_entry(session: Session, who: Principal, on: date, entry: JournalEntry) -> JournalEntryRow:
    """Store a (necessarily balanced) journal entry and its lines; returns the entry row."""
    row = JournalEntryRow(
        tenant_id=who.tenant_id,
        business_date=on,
        kind=entry.kind,
        memo=entry.memo,
        loan_id=entry.loan_id,
        reverses_id=entry.reverses,
        currency=entry.currency,
        total_debit=entry.total_debit,
        total_credit=entry.total_credit,
        created_by=who.username,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    if len(entry.lines) >= COPY_LINES_FROM and session.get_bind().dialect.name == "postgresql":
        _copy_lines(session, row.id, who.tenant_id, entry.lines)
        return row
    # one multi-row INSERT per batch, not one ORM object per line: an entry may carry a line pair per loan
    session.execute(
        insert(JournalLineRow),
        [
            {
                "entry_id": row.id,
                "tenant_id": who.tenant_id,
                "account_code": line.account,
                "loan_id": line.loan_id,
                "debit": line.debit,
                "credit": line.credit,
            }
            for line in entry.lines
        ],
    )
    return row


#: from this many lines an entry's lines reach PostgreSQL by COPY in the session's transaction (one stream, not
#: a statement per line; the constraints and foreign keys are checked as for any insert)
COPY_LINES_FROM = 64


def _copy_lines(session: Session, entry_id: int, tenant_id: int, lines: Sequence[JournalLine]) -> None:
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(
            "COPY journal_lines (entry_id, tenant_id, account_code, loan_id, debit, credit) FROM STDIN"
        ) as copy:
            for line in lines:
                debit, credit = to_storage(line.debit), to_storage(line.credit)
                copy.write_row((entry_id, tenant_id, str(line.account), line.loan_id, debit, credit))
    finally:
        cursor.close()


def load_entry(session: Session, entry_id: int) -> JournalEntry:
    row = session.get(JournalEntryRow, entry_id)
    if row is None:
        raise NotFound(f"journal entry {entry_id} not found")
    lines = session.execute(
        select(JournalLineRow).where(JournalLineRow.entry_id == entry_id).order_by(JournalLineRow.id)
    ).scalars()
    return JournalEntry(
        row.kind,
        tuple(JournalLine(x.account_code, x.debit, x.credit, x.loan_id) for x in lines),
        row.memo,
        row.currency,
        row.loan_id,
    )


class SqlLedger(Ledger):
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def business_date(self, tenant_id: int) -> date:
        return business_date(self._uow.session, tenant_id, hold=True)

    def post(self, who: Principal, on: date, entry: JournalEntry) -> int:
        return post_entry(self._uow.session, who, on, entry).id

    def entry(self, entry_id: int) -> JournalEntry:
        return load_entry(self._uow.session, entry_id)

    def closed_dates(self, tenant_id: int, first: date, last: date) -> list[date]:
        return list(
            self._uow.session.execute(
                select(CobRunRow.business_date)
                .where(CobRunRow.tenant_id == tenant_id, CobRunRow.business_date >= first,
                       CobRunRow.business_date <= last)
                .order_by(CobRunRow.business_date)
            ).scalars()
        )

    def penalty_charged(self, tenant_id: int, loan_id: int, first: date, last: date) -> Decimal:
        """The penalty close of business charged the loan on ``first``..``last``: its sub-ledger rows on the penalty
        accounts, and its lines of the (earlier, per-loan) nightly penalty entries."""
        session = self._uow.session
        charged = session.execute(
            select(func.sum(JournalLineRow.debit - JournalLineRow.credit, type_=Amount()))
            .join(JournalEntryRow, JournalEntryRow.id == JournalLineRow.entry_id)
            .where(
                JournalEntryRow.tenant_id == tenant_id,
                JournalEntryRow.kind.in_(("cob.penalty", "cob.off_balance")),
                JournalEntryRow.business_date >= first,
                JournalEntryRow.business_date <= last,
                JournalLineRow.loan_id == loan_id,
                JournalLineRow.account_code.in_(_PENALTY_ACCOUNTS),
            )
        ).scalar()
        in_subledger = session.execute(
            select(func.sum(LoanAccrualRow.amount, type_=Amount())).where(
                LoanAccrualRow.loan_id == loan_id,
                LoanAccrualRow.tenant_id == tenant_id,
                LoanAccrualRow.business_date >= first,
                LoanAccrualRow.business_date <= last,
                LoanAccrualRow.debit_account.in_(_PENALTY_ACCOUNTS),
            )
        ).scalar()
        return Decimal(charged or 0) + Decimal(in_subledger or 0)


_PENALTY_ACCOUNTS = (Acct.PENALTY_RECEIVABLE.value, Acct.OFF_BALANCE_PENALTY.value)


class SqlAuditTrail(AuditTrail):
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def record(
        self, who: Principal, action: str, object_type: str, object_id: object,
        *, before: Any = None, after: Any = None, reason: str = "",
    ) -> None:
        audit.record(self._uow.session, who, action, object_type, object_id, before=before, after=after, reason=reason)


# ------------------------------------------------------------------------------------------ SQL loans


def installment_rows(session: Session, loan_id: int) -> list[InstallmentRow]:
    return list(
        session.execute(
            select(InstallmentRow).where(InstallmentRow.loan_id == loan_id).order_by(InstallmentRow.number)
        ).scalars()
    )


def loan_from_rows(row: LoanRow, insts: Sequence[InstallmentRow], closed: int) -> Loan:
    """The domain loan of its rows, its installments' interest accrued through the ordinal ``closed`` (the
    tenant's last closed business date, ``accrued.closed_through``)."""
    return Loan(
        row.id, row.tenant_id, row.product_id, row.customer_id, row.credit_line_id, row.method, row.currency,
        row.principal, row.annual_rate, row.term_months, row.upfront_fee, row.fee_mode,
        tuple(row.allocation_order), row.disbursed_on, row.maturity_date,
        [_installment(i, closed) for i in insts],
        status=row.status, days_past_due=row.days_past_due, bucket=row.bucket, loan_class=row.loan_class,
        penalty_accrued=row.penalty_accrued, penalty_paid=row.penalty_paid, credit_balance=row.credit_balance,
        accrual_status=row.accrual_status, interest_suspended=row.interest_suspended,
        penalty_suspended=row.penalty_suspended, closed_on=row.closed_on, application_id=row.application_id,
        grace_days=row.grace_days, compound_interest=bool(row.compound_interest),
        penalty_rate=Decimal(row.penalty_rate_e8) / RATE_SCALE, disbursement_key=row.disbursement_key,
        request_hash=row.request_hash,
    )


#: PostgreSQL memory for one sort or hash of a portfolio-wide batch: a date's per-loan aggregates and joins over
#: every loan stay in memory instead of spilling to disk, and the planner does not avoid them for fear of it
BATCH_WORK_MEM = "256MB"
#: SQLite page cache of a batch's connection (KiB): the database file, within these bounds. A date's set-based
#: statements touch most of the portfolio's pages (installments, loans, their indexes), which a smaller cache
#: would spill and re-read statement after statement
SQLITE_BATCH_CACHE_KIB = (256 * 1024, 4 * 1024 * 1024)


#: PostgreSQL: whether the batch's role may set ``wal_compression`` for its own transaction, and to what (lz4 when
#: the server has it) when the server leaves it off
_WAL_COMPRESSION = (
    "SELECT current_setting('wal_compression') = 'off' AND {may_set}, "
    "COALESCE((SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'wal_compression'), false)"
)


_WORK_LOANS = "SELECT loan_id FROM cob_work WHERE tenant_id = :t"


def of_work_rows(session: Session, loan_id: str) -> str:
    """SQL: ``loan_id`` is the loan of one of close of business's scratch rows (``cob_work``): on PostgreSQL the
    rows' ids as an array, which lead to the loans by the primary key (the few percent of the book overdue, back to
    current or classed by rule) instead of a hash join over a scan of every loan."""
    if session.get_bind().dialect.name != "postgresql":
        return f"{loan_id} IN ({_WORK_LOANS})"
    return f"{loan_id} = ANY(ARRAY({_WORK_LOANS}))"


def in_work_rows(session: Session, loan_id: str) -> str:
    """SQL to AND to a statement that already joins the scratch rows to their loans: ``of_work_rows`` on
    PostgreSQL, for the plan it leads to; nothing on SQLite, whose plans already start from the scratch rows."""
    if session.get_bind().dialect.name != "postgresql":
        return ""
    return f" AND {of_work_rows(session, loan_id)}"


def create_temporary_as(session: Session, table: str, select: str, params: dict[str, Any]) -> int:
    """PostgreSQL: (re)create the temporary ``table`` of the caller's connection from ``select``, a portfolio-wide
    read of regular tables, and return its number of rows. PostgreSQL runs CREATE TABLE … AS with parallel workers
    and INSERT … SELECT never (``pg_temp``: never a table of the schema)."""
    session.execute(text(f"DROP TABLE IF EXISTS pg_temp.{table}"))
    created = session.execute(text(f"CREATE TEMPORARY TABLE {table} AS {select}"), params)
    return int(getattr(created, "rowcount", 0) or 0)


def tune_batch_transaction(session: Session) -> None:
    """For a portfolio-wide set-based batch (close of business, the provisioning run): on PostgreSQL, for the rest
    of the caller's transaction, no JIT compilation (compiling each large statement takes longer than it saves
    on statements that mostly read and write rows), a batch-sized work memory and, when the server leaves it off
    and the role may set it, compressed full-page images in the WAL (a batch changes rows on most pages of the
    loans, their installments and their indexes: after each checkpoint the first change of a page logs the whole
    page, most of a close's WAL, and the WAL a close writes itself brings on the next checkpoint); on SQLite a
    page cache the size of the database (a setting of the connection)."""
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))
        session.execute(text(f"SET LOCAL work_mem = '{BATCH_WORK_MEM}'"))
        # a superuser's setting; from PostgreSQL 15 a role may be granted it (GRANT SET ON PARAMETER)
        version = dialect.server_version_info or (0,)
        may_set = "has_parameter_privilege('wal_compression', 'SET')" if version >= (15,) else (
            "current_setting('is_superuser') = 'on'"
        )
        compress, lz4 = session.execute(text(_WAL_COMPRESSION.format(may_set=may_set))).one()
        if compress:
            session.execute(text(f"SET LOCAL wal_compression = {'lz4' if lz4 else 'pglz'}"))
    elif dialect.name == "sqlite":
        pages = int(session.execute(text("PRAGMA page_count")).scalar() or 0)
        page_size = int(session.execute(text("PRAGMA page_size")).scalar() or 0)
        low, high = SQLITE_BATCH_CACHE_KIB
        session.execute(text(f"PRAGMA cache_size = -{max(low, min(high, pages * page_size // 1024))}"))


def bank_nonaccrual(session: Session, tenant_id: int) -> NonAccrualSettings:
    """The bank's non-accrual rule from its settings, or the default (over 90 days past due or NPL, reverse)."""
    row = session.get(ServicingSettingsRow, tenant_id)
    if row is None:
        return DEFAULT_NONACCRUAL
    return NonAccrualSettings(row.nonaccrual_days, bool(row.nonaccrual_on_npl),
                              AccruedInterestPolicy(row.nonaccrual_policy))


def bank_rate_cap(session: Session, tenant_id: int) -> Decimal:
    """The bank's rate cap from its settings, or the legal line (24 %) when it set none."""
    cap = session.execute(
        select(ServicingSettingsRow.rate_cap).where(ServicingSettingsRow.tenant_id == tenant_id)
    ).scalar_one_or_none()
    return DEFAULT_RATE_CAP if cap is None else cap


def product_terms(row: ProductRow) -> ProductTerms:
    product = Product(
        row.code, row.name, RepaymentMethod(row.method), row.min_amount, row.max_amount, row.min_term_months,
        row.max_term_months, row.annual_rate, row.min_rate, row.max_rate, row.penalty_multiplier, row.grace_days,
        row.upfront_fee_rate, FeeMode(row.fee_mode), parse_order(row.allocation_order),
        row.early_repayment_allowed, row.name_zh, row.currency,
        overpayment_tolerance=row.overpayment_tolerance, auto_apply_credit=bool(row.auto_apply_credit),
        compound_interest=bool(row.compound_interest), repayment_day=row.repayment_day,
        settlement_day=row.settlement_day, interest_due_days=row.interest_due_days,
    )
    return ProductTerms(row.id, row.tenant_id, row.active, product)


def _credit_line(r: CreditLineRow) -> CreditLine:
    return CreditLine(
        r.id, r.tenant_id, r.product_id, r.customer_id, r.limit, r.annual_rate, r.opened_on, r.expires_on, r.status
    )


def _drawn_on_line(session: Session, line_id: int) -> Decimal:
    """Principal still owed on a credit line's active drawdowns."""
    total = session.execute(
        select(func.sum(InstallmentRow.principal - InstallmentRow.principal_paid, type_=Amount()))
        .join(LoanRow, LoanRow.id == InstallmentRow.loan_id)
        .where(LoanRow.credit_line_id == line_id, LoanRow.status == "active")
    ).scalar_one()
    return Decimal(total) if total is not None else Decimal(0)


def _rate_e8(rate: Decimal) -> int:
    return int(rate * RATE_SCALE)


def _installment(r: InstallmentRow, closed: int) -> Installment:
    return Installment(
        r.number, r.period_start, r.due_date, r.principal, r.interest, r.fee, r.principal_paid, r.interest_paid,
        r.fee_paid, accrued_on(r, closed), r.status, r.paid_on, r.id, r.fee_amortisation, r.fee_amortised,
    )


def _write_installment(row: InstallmentRow, inst: Installment, closed: int) -> None:
    """The installment into its row; its interest accrued holds through ``closed``, the day it was read for."""
    row.number = inst.number
    row.period_start, row.start_day = inst.period_start, inst.period_start.toordinal()
    row.due_date, row.due_day = inst.due_date, inst.due_date.toordinal()
    row.principal, row.interest, row.fee = inst.principal, inst.interest, inst.fee
    row.principal_paid, row.interest_paid, row.fee_paid = inst.principal_paid, inst.interest_paid, inst.fee_paid
    row.interest_accrued, row.status, row.paid_on = inst.interest_accrued, inst.status, inst.paid_on
    row.accrued_through = closed
    row.fee_amortisation, row.fee_amortised = inst.fee_amortisation, inst.fee_amortised


def _repayment(r: RepaymentRow) -> Repayment:
    return Repayment(
        r.loan_id, r.kind, r.amount, r.value_date, r.allocation, r.credit, r.journal_entry_id, r.created_by,
        r.idempotency_key, r.request_hash, r.status, r.reversal_entry_id, r.id,
    )


def _new_loan_row(loan: Loan) -> LoanRow:
    return LoanRow(
        tenant_id=loan.tenant_id, product_id=loan.product_id, customer_id=loan.customer_id,
        credit_line_id=loan.credit_line_id, application_id=loan.application_id, method=loan.method,
        currency=loan.currency, principal=loan.principal, annual_rate=loan.annual_rate,
        rate_e8=_rate_e8(loan.annual_rate), penalty_rate_e8=_rate_e8(loan.penalty_rate), grace_days=loan.grace_days,
        compound_interest=loan.compound_interest,
        term_months=loan.term_months, upfront_fee=loan.upfront_fee, fee_mode=loan.fee_mode,
        allocation_order=list(loan.allocation_order), disbursed_on=loan.disbursed_on,
        maturity_date=loan.maturity_date, status=loan.status, days_past_due=loan.days_past_due, bucket=loan.bucket,
        loan_class=loan.loan_class, penalty_accrued=loan.penalty_accrued, penalty_paid=loan.penalty_paid,
        credit_balance=loan.credit_balance, disbursement_key=loan.disbursement_key,
        request_hash=loan.request_hash, created_at=utcnow(),
    )


class SqlLoanRepository(LoanRepository):
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._loans: dict[int, tuple[LoanRow, dict[int, InstallmentRow]]] = {}
        #: per loan read, the tenant's last closed date its installments' accruals were read through
        self._closed: dict[int, int] = {}
        self._repayments: dict[int, RepaymentRow] = {}
        self._lines: dict[int, CreditLineRow] = {}

    def customers_of_bank(self, who: Principal, customer_ids: Sequence[int]) -> set[int]:
        return parties.of_this_bank(self._uow, who, customer_ids)

    @property
    def _session(self) -> Session:
        return self._uow.session

    def get(self, tenant_id: int, loan_id: int, *, lock: bool = False) -> Loan:
        stmt = select(LoanRow).where(LoanRow.id == loan_id, LoanRow.tenant_id == tenant_id)
        if lock:  # the business date first: every lock is taken in the order a close of business takes them
            business_date(self._session, tenant_id, hold=True)
            stmt = stmt.with_for_update()
        row = self._session.execute(stmt).scalar_one_or_none()
        if row is None:
            raise NotFound(f"loan {loan_id} not found")
        insts = installment_rows(self._session, row.id)
        self._loans[row.id] = (row, {i.id: i for i in insts})
        closed = self._closed[row.id] = closed_through(self._session, tenant_id)
        return loan_from_rows(row, insts, closed)

    def save(self, loan: Loan) -> None:
        s = self._session
        row, inst_rows = self._loans[loan.id]
        row.status, row.closed_on, row.maturity_date = loan.status, loan.closed_on, loan.maturity_date
        row.days_past_due, row.bucket, row.loan_class = loan.days_past_due, loan.bucket, loan.loan_class
        row.penalty_accrued, row.penalty_paid = loan.penalty_accrued, loan.penalty_paid
        row.credit_balance = loan.credit_balance
        row.accrual_status = loan.accrual_status
        row.interest_suspended, row.penalty_suspended = loan.interest_suspended, loan.penalty_suspended
        if row.annual_rate != loan.annual_rate:  # a restructuring's new rate
            row.annual_rate, row.rate_e8 = loan.annual_rate, _rate_e8(loan.annual_rate)
        closed = self._closed[loan.id]
        kept = {i.id for i in loan.installments}
        removed = [r for rid, r in inst_rows.items() if rid not in kept]
        for r in removed:
            del inst_rows[r.id]
            s.delete(r)
        if removed:
            s.flush()  # the numbers of removed installments are taken by their replacements
        added: list[tuple[Installment, InstallmentRow]] = []
        for inst in loan.installments:
            if inst.id is None:
                new = InstallmentRow(tenant_id=loan.tenant_id, loan_id=loan.id)
                _write_installment(new, inst, closed)
                s.add(new)
                added.append((inst, new))
            else:
                _write_installment(inst_rows[inst.id], inst, closed)
        if added:
            s.flush()
            for inst, new in added:
                inst.id = new.id
                inst_rows[new.id] = new
        self._record(loan)

    def _record(self, loan: Loan) -> None:
        """The loan's history into ``loan_events``; its events to the unit of work."""
        self._session.add_all(
            [
                LoanEventRow(tenant_id=loan.tenant_id, loan_id=loan.id, business_date=h.business_date,
                             kind=h.kind, data=h.data)
                for h in loan.history
            ]
        )
        loan.history.clear()
        for event in loan.events:
            self._uow.publish(event)
        loan.events.clear()

    def add(self, loan: Loan) -> Loan:
        s = self._session
        row = _new_loan_row(loan)
        try:
            with s.begin_nested():  # the key may have been taken meanwhile by a concurrent request
                s.add(row)
                s.flush()
        except IntegrityError as exc:
            if loan.disbursement_key is None:
                raise
            raise DisbursementKeyTaken(loan.disbursement_key) from exc
        loan.stored_as(row.id)
        closed = self._closed[row.id] = closed_through(s, loan.tenant_id)
        inst_rows = []
        for inst in loan.installments:
            new = InstallmentRow(tenant_id=loan.tenant_id, loan_id=loan.id)
            _write_installment(new, inst, closed)
            inst_rows.append(new)
        s.add_all(inst_rows)
        s.flush()
        for inst, new in zip(loan.installments, inst_rows, strict=True):
            inst.id = new.id
        self._loans[row.id] = (row, {r.id: r for r in inst_rows})
        self._record(loan)
        return loan

    def by_disbursement_key(self, tenant_id: int, key: str) -> Loan | None:
        row = self._session.execute(
            select(LoanRow).where(LoanRow.tenant_id == tenant_id, LoanRow.disbursement_key == key)
        ).scalar_one_or_none()
        if row is None:
            return None
        insts = installment_rows(self._session, row.id)
        self._loans[row.id] = (row, {i.id: i for i in insts})
        closed = self._closed[row.id] = closed_through(self._session, tenant_id)
        return loan_from_rows(row, insts, closed)

    def product(self, tenant_id: int, code: str) -> ProductTerms | None:
        row = self._session.execute(
            select(ProductRow).where(ProductRow.tenant_id == tenant_id, ProductRow.code == code)
        ).scalar_one_or_none()
        return None if row is None else product_terms(row)

    def rate_cap(self, tenant_id: int) -> Decimal:
        return bank_rate_cap(self._session, tenant_id)

    def product_by_id(self, product_id: int) -> ProductTerms:
        row = self._session.get(ProductRow, product_id)
        if row is None:
            raise NotFound(f"product {product_id} not found")
        return product_terms(row)

    def credit_line(self, tenant_id: int, line_id: int, *, lock: bool = False) -> CreditLine | None:
        stmt = select(CreditLineRow).where(CreditLineRow.id == line_id, CreditLineRow.tenant_id == tenant_id)
        if lock:  # the business date first, as ``get`` takes it
            business_date(self._session, tenant_id, hold=True)
            stmt = stmt.with_for_update()
        row = self._session.execute(stmt).scalar_one_or_none()
        if row is None:
            return None
        self._lines[row.id] = row
        return _credit_line(row)

    def drawn(self, line_id: int) -> Decimal:
        return _drawn_on_line(self._session, line_id)

    def add_credit_line(self, line: CreditLine) -> CreditLine:
        row = CreditLineRow(
            tenant_id=line.tenant_id, product_id=line.product_id, customer_id=line.customer_id, limit=line.limit,
            annual_rate=line.annual_rate, opened_on=line.opened_on, expires_on=line.expires_on, status=line.status,
            created_at=utcnow(),
        )
        self._session.add(row)
        self._session.flush()
        self._lines[row.id] = row
        return replace(line, id=row.id)

    def save_credit_line(self, line: CreditLine) -> None:
        row = self._lines[line.id]
        row.limit, row.status = line.limit, line.status

    def early_repayment_allowed(self, loan: Loan) -> bool:
        product = self._session.get(ProductRow, loan.product_id)
        return product is None or product.early_repayment_allowed

    def repayment(self, tenant_id: int, repayment_id: int) -> Repayment:
        row = self._session.execute(
            select(RepaymentRow).where(RepaymentRow.id == repayment_id, RepaymentRow.tenant_id == tenant_id)
        ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"repayment {repayment_id} not found")
        return self._seen(row)

    def repayment_by_key(self, tenant_id: int, key: str) -> Repayment | None:
        row = self._session.execute(
            select(RepaymentRow).where(RepaymentRow.tenant_id == tenant_id, RepaymentRow.idempotency_key == key)
        ).scalar_one_or_none()
        return None if row is None else self._seen(row)

    def posted_after(self, repayment: Repayment) -> list[Repayment]:
        rows = self._session.execute(
            select(RepaymentRow)
            .where(
                RepaymentRow.loan_id == repayment.loan_id,
                RepaymentRow.id > repayment.id,
                RepaymentRow.status == "posted",
            )
            .order_by(RepaymentRow.id)
        ).scalars()
        return [self._seen(r) for r in rows]

    def _seen(self, row: RepaymentRow) -> Repayment:
        self._repayments[row.id] = row
        return _repayment(row)

    def add_repayment(self, repayment: Repayment) -> Repayment:
        s = self._session
        loan_row, _ = self._loans[repayment.loan_id]
        row = RepaymentRow(
            tenant_id=loan_row.tenant_id,
            loan_id=repayment.loan_id,
            kind=repayment.kind,
            amount=repayment.amount,
            value_date=repayment.value_date,
            idempotency_key=repayment.idempotency_key,
            request_hash=repayment.request_hash,
            allocation=repayment.allocation,
            credit=repayment.credit,
            status=repayment.status,
            journal_entry_id=repayment.journal_entry_id,
            created_by=repayment.created_by,
            created_at=utcnow(),
        )
        try:
            with s.begin_nested():  # the key may have been taken meanwhile by a request on another loan
                s.add(row)
                s.flush()
        except IntegrityError:
            raise ValidationError(KEY_REUSED, field="idempotency_key") from None
        repayment.id = row.id
        self._repayments[row.id] = row
        return repayment

    def save_repayment(self, repayment: Repayment) -> None:
        assert repayment.id is not None
        row = self._repayments[repayment.id]
        row.status, row.reversal_entry_id = repayment.status, repayment.reversal_entry_id
        row.allocation, row.journal_entry_id, row.credit = (
            repayment.allocation, repayment.journal_entry_id, repayment.credit,
        )


register_repository(LoanRepository, SqlLoanRepository)
register_repository(Ledger, SqlLedger)
register_repository(AuditTrail, SqlAuditTrail)
