"""Importing a loan book (存量贷款迁移) from another system: one row per loan, all or nothing. Each loan is an
ordinary loan of this bank — its customer's, under one of its products, within the product's limits and the
rate cap — on its schedule from the day it was disbursed; what was repaid so far is posted as a repayment, and
the next close of business brings it to today's state (what is unpaid and past due becomes overdue)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from microlend.core.errors import ValidationError
from microlend.core.identity import Principal
from microlend.core.money import parse_amount, round_half_up
from microlend.core.uow import UnitOfWork
from microlend.parties import queries as parties
from microlend.servicing.domain import Loan, ProductTerms
from microlend.servicing.rate_cap import check_offer_within_cap
from microlend.servicing.repository import LoanRepository, audit_trail, ledger, loans
from microlend.servicing.schedules import RepaymentMethod, build_schedule
from microlend.servicing.service._common import ZERO, P, _money
from microlend.servicing.service.repayments import _book

COLUMNS = ("id_number", "product_code", "principal", "annual_rate", "term_months", "disbursed_on")
OPTIONAL_COLUMNS = ("repaid_amount",)
_FIELD_TO_COLUMN = {"amount": "principal", "term_months": "term_months", "annual_rate": "annual_rate"}


@dataclass(frozen=True)
class ImportedLoan:
    row: int
    customer_id: int
    terms: ProductTerms
    principal: Decimal
    annual_rate: Decimal
    term_months: int
    disbursed_on: date
    repaid: Decimal


@dataclass(frozen=True)
class ImportResult:
    loan_ids: list[int]
    principal: Decimal
    repaid: Decimal


class ImportRefused(ValidationError):
    """The file has bad rows: nothing was imported. ``problems`` names each (row, column, why)."""

    def __init__(self, problems: list[str]) -> None:
        shown = problems[:50] + ([f"... and {len(problems) - 50} more"] if len(problems) > 50 else [])
        super().__init__("nothing was imported; fix these rows:\n" + "\n".join(shown), field="file")
        self.problems = problems


def check_header(header: Sequence[str]) -> None:
    """The file's columns: every required one, nothing unknown."""
    missing = [c for c in COLUMNS if c not in header]
    unknown = [c for c in header if c not in COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown:
        parts = ([f"missing column(s): {', '.join(missing)}"] if missing else []) + (
            [f"unknown column(s): {', '.join(unknown)}"] if unknown else [])
        raise ValidationError(f"file: {'; '.join(parts)} (columns: {', '.join(COLUMNS + OPTIONAL_COLUMNS)})",
                              field="file")


class _Row:
    """One record being read: each bad value is noted as 'row N, column: why' and reads as None."""

    def __init__(self, number: int, record: dict[str, str], problems: list[str]) -> None:
        self.number, self.record, self.problems = number, record, problems

    def bad(self, column: str, why: str) -> None:
        self.problems.append(f"row {self.number}, {column}: {why}")

    def text(self, column: str) -> str | None:
        value = (self.record.get(column) or "").strip()
        if not value and column in COLUMNS:
            self.bad(column, "required")
        return value or None

    def amount(self, column: str, *, cents: bool) -> Decimal | None:
        value = self.text(column)
        if value is None:
            return None
        try:
            amount = parse_amount(value, column)
        except ValidationError as e:
            self.bad(column, str(e).removeprefix(f"{column}: "))
            return None
        if amount < 0 or (cents and round_half_up(amount) != amount):
            self.bad(column, f"'{value}' must be a non-negative amount{' in cents' if cents else ''}")
            return None
        return amount

    def whole(self, column: str) -> int | None:
        value = self.text(column)
        if value is None:
            return None
        if not value.isdigit() or not 1 <= int(value) <= 360:
            self.bad(column, f"'{value}' must be a whole number of months from 1 to 360")
            return None
        return int(value)

    def day(self, column: str, today: date) -> date | None:
        value = self.text(column)
        if value is None:
            return None
        try:
            on = date.fromisoformat(value)
        except ValueError:
            self.bad(column, f"'{value}' is not a date (use YYYY-MM-DD)")
            return None
        if on > today:
            self.bad(column, f"{on} is after today's business date {today}")
            return None
        return on


def _product(repo: LoanRepository, who: Principal, row: _Row, code: str | None) -> ProductTerms | None:
    if code is None:
        return None
    terms = repo.product(who.tenant_id, code)
    if terms is None or not terms.active:
        row.bad("product_code", f"no product '{code}'")
        return None
    if terms.product.method == RepaymentMethod.REVOLVING:
        row.bad("product_code", f"'{code}' is revolving: import its credit line instead")
        return None
    return terms


def _within_product(repo: LoanRepository, who: Principal, row: _Row, loan: ImportedLoan) -> None:
    product = loan.terms.product
    try:
        product.check_offer(loan.principal, loan.term_months, loan.annual_rate)
        check_offer_within_cap(product, loan.principal, loan.annual_rate, loan.term_months,
                               repo.rate_cap(who.tenant_id))
    except ValidationError as e:
        column = _FIELD_TO_COLUMN.get(e.field or "", "annual_rate")
        row.bad(column, str(e).split(": ", 1)[-1])


def read_rows(uow: UnitOfWork, who: Principal, records: Sequence[dict[str, str]], today: date,
              first_row: int = 2) -> list[ImportedLoan]:
    """Every record checked (row numbers as in the file, the header being row 1); raises ``ImportRefused``
    naming every bad row and column, or returns the loans to import."""
    problems: list[str] = []
    repo = loans(uow)
    customers = parties.customers_by_id_number(uow, who, [r.get("id_number") or "" for r in records])
    parsed: list[ImportedLoan] = []
    for offset, record in enumerate(records):
        row = _Row(first_row + offset, record, problems)
        before = len(problems)
        id_number = row.text("id_number")
        customer_id = customers.get(id_number or "")
        if id_number is not None and customer_id is None:
            row.bad("id_number", "no customer of this bank has this ID number")
        terms = _product(repo, who, row, row.text("product_code"))
        principal = row.amount("principal", cents=True)
        rate = row.amount("annual_rate", cents=False)
        term = row.whole("term_months")
        on = row.day("disbursed_on", today)
        repaid = row.amount("repaid_amount", cents=True) or ZERO
        if len(problems) > before:
            continue
        assert customer_id is not None and terms is not None and principal is not None and rate is not None
        assert term is not None and on is not None
        loan = ImportedLoan(row.number, customer_id, terms, principal, rate, term, on, repaid)
        _within_product(repo, who, row, loan)
        parsed.append(loan)
    if problems:
        raise ImportRefused(problems)
    if not parsed:
        raise ValidationError("file: no loans in it", field="file")
    return parsed


def _book_one(uow: UnitOfWork, who: Principal, item: ImportedLoan, today: date, source: str) -> tuple[Loan, str]:
    """Put one loan on the books on its own schedule; returns it and a problem with its repaid amount, if any."""
    product = item.terms.product
    schedule = build_schedule(product.method, item.principal, item.annual_rate, item.term_months, item.disbursed_on,
                              upfront_fee=product.upfront_fee(item.principal), fee_mode=product.fee_mode,
                              currency=product.currency)
    repo = loans(uow)
    loan = repo.add(Loan.disburse(item.terms, schedule, customer_id=item.customer_id))
    ledger(uow).post(who, today, loan.disbursement_entry())
    problem = ""
    if item.repaid > 0:
        try:
            loan.check_payment(item.repaid, today, repo.overpayment_tolerance(loan))
        except ValidationError as e:
            return loan, f"row {item.row}, repaid_amount: {str(e).split(': ', 1)[-1]}"
        _book(uow, who, loan, loan.repay(item.repaid, today), today, kind="repayment")
    else:
        repo.save(loan)
    audit_trail(uow).record(who, "loan.import", "loan", loan.id, after={
        "source": source, "row": item.row, "customer_id": item.customer_id, "product": product.code,
        "principal": _money(item.principal), "annual_rate": str(item.annual_rate),
        "term_months": item.term_months, "disbursed_on": item.disbursed_on.isoformat(),
        "repaid_amount": _money(item.repaid)})
    return loan, problem


def import_loans(uow: UnitOfWork, who: Principal, records: Sequence[dict[str, str]], *, source: str = "",
                 progress: Callable[[int], None] | None = None) -> ImportResult:
    """Import every record or none: a bad row anywhere leaves the books as they were (``ImportRefused``)."""
    who.require(P.BOOK_LOANS)
    with uow:
        today = ledger(uow).business_date(who.tenant_id)
        items = read_rows(uow, who, records, today)
        ids: list[int] = []
        problems: list[str] = []
        for item in items:
            loan, problem = _book_one(uow, who, item, today, source)
            if problem:
                problems.append(problem)
            ids.append(loan.id)
            if progress is not None:
                progress(1)
        if problems:
            raise ImportRefused(problems)  # leaving the unit of work without commit keeps nothing
        uow.commit()
    return ImportResult(ids, sum((i.principal for i in items), ZERO), sum((i.repaid for i in items), ZERO))
