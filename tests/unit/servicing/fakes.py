"""In-memory fakes of the servicing repositories and a unit of work holding them: the service layer's use
cases run against these without a database. Nothing is kept unless the unit of work commits."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from types import TracebackType
from typing import Any, TypeVar, cast

from sqlalchemy.orm import Session

from microlend.core.errors import NotFound, ValidationError
from microlend.core.events import DomainEvent
from microlend.core.identity import Principal, Role
from microlend.core.uow import UnitOfWork
from microlend.servicing.domain import NEW, CreditLine, HistoryEntry, Installment, Loan, ProductTerms, Repayment
from microlend.servicing.ledger import JournalEntry
from microlend.servicing.products import STANDARD_CATALOGUE
from microlend.servicing.repository import (
    KEY_REUSED,
    AuditTrail,
    DisbursementKeyTaken,
    Ledger,
    LoanRepository,
)
from microlend.servicing.schedules import RepaymentMethod, build_schedule

_R = TypeVar("_R")
TENANT = 1


@dataclass
class _LoanState:
    loans: dict[int, Loan] = field(default_factory=dict)
    history: dict[int, list[HistoryEntry]] = field(default_factory=dict)
    repayments: dict[int, Repayment] = field(default_factory=dict)
    no_early_repayment: set[int] = field(default_factory=set)  # product ids
    products: dict[int, ProductTerms] = field(default_factory=dict)
    credit_lines: dict[int, CreditLine] = field(default_factory=dict)
    customers: dict[int, int] = field(default_factory=lambda: {7: TENANT, 8: 2})  # customer id -> its bank
    next_id: int = 1000


class FakeLoanRepository(LoanRepository):
    """Loans kept as copies: a change is seen only after ``save``, and kept only after commit."""

    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow
        self.state = _LoanState()

    def add(self, loan: Loan) -> Loan:
        """Store a new loan (``NEW``: it gets its id, records its disbursement, publishes on commit); a loan
        that has an id is put on the books as it is (a loan disbursed before the test)."""
        if loan.id == NEW:
            key = loan.disbursement_key
            if key is not None and self.by_disbursement_key(loan.tenant_id, key) is not None:
                raise DisbursementKeyTaken(key)
            loan.stored_as(self._next_id())
        for inst in loan.installments:
            inst.id = inst.id or self._next_id()
        self.save(loan)
        return loan

    def customers_of_bank(self, who: Principal, customer_ids: Sequence[int]) -> set[int]:
        return {c for c in customer_ids if self.state.customers.get(c) == who.tenant_id}

    def by_disbursement_key(self, tenant_id: int, key: str) -> Loan | None:
        for loan in self.state.loans.values():
            if loan.tenant_id == tenant_id and loan.disbursement_key == key:
                return copy.deepcopy(loan)
        return None

    def overpayment_tolerance(self, loan: Loan) -> Decimal:
        terms = self.state.products.get(loan.product_id)
        return Decimal(0) if terms is None else terms.product.overpayment_tolerance

    def product(self, tenant_id: int, code: str) -> ProductTerms | None:
        return next(
            (p for p in self.state.products.values() if p.tenant_id == tenant_id and p.product.code == code), None
        )

    def product_by_id(self, product_id: int) -> ProductTerms:
        return self.state.products[product_id]

    def credit_line(self, tenant_id: int, line_id: int, *, lock: bool = False) -> CreditLine | None:
        line = self.state.credit_lines.get(line_id)
        return line if line is not None and line.tenant_id == tenant_id else None

    def add_credit_line(self, line: CreditLine) -> CreditLine:
        line = replace(line, id=self._next_id())
        self.state.credit_lines[line.id] = line
        return line

    def save_credit_line(self, line: CreditLine) -> None:
        self.state.credit_lines[line.id] = line

    def drawn(self, line_id: int) -> Decimal:
        return sum(
            (
                loan.outstanding_principal
                for loan in self.state.loans.values()
                if loan.credit_line_id == line_id and loan.status == "active"
            ),
            Decimal(0),
        )

    def _next_id(self) -> int:
        self.state.next_id += 1
        return self.state.next_id

    def get(self, tenant_id: int, loan_id: int, *, lock: bool = False) -> Loan:
        loan = self.state.loans.get(loan_id)
        if loan is None or loan.tenant_id != tenant_id:
            raise NotFound(f"loan {loan_id} not found")
        return copy.deepcopy(loan)

    def save(self, loan: Loan) -> None:
        for inst in loan.installments:
            inst.id = inst.id or self._next_id()
        self.state.history.setdefault(loan.id, []).extend(loan.history)
        loan.history.clear()
        for event in loan.events:
            self._uow.publish(event)
        loan.events.clear()
        self.state.loans[loan.id] = copy.deepcopy(loan)

    def history(self, loan_id: int) -> list[str]:
        return [h.kind for h in self.state.history.get(loan_id, [])]

    def early_repayment_allowed(self, loan: Loan) -> bool:
        return loan.product_id not in self.state.no_early_repayment

    def repayment(self, tenant_id: int, repayment_id: int) -> Repayment:
        found = self.state.repayments.get(repayment_id)
        if found is None or self.state.loans[found.loan_id].tenant_id != tenant_id:
            raise NotFound(f"repayment {repayment_id} not found")
        return copy.deepcopy(found)

    def repayment_by_key(self, tenant_id: int, key: str) -> Repayment | None:
        for r in self.state.repayments.values():
            if r.idempotency_key == key and self.state.loans[r.loan_id].tenant_id == tenant_id:
                return copy.deepcopy(r)
        return None

    def posted_after(self, repayment: Repayment) -> list[Repayment]:
        assert repayment.id is not None
        return [
            copy.deepcopy(r)
            for rid, r in sorted(self.state.repayments.items())
            if r.loan_id == repayment.loan_id and rid > repayment.id and r.status == "posted"
        ]

    def add_repayment(self, repayment: Repayment) -> Repayment:
        tenant = self.state.loans[repayment.loan_id].tenant_id
        if repayment.idempotency_key is not None and self.repayment_by_key(tenant, repayment.idempotency_key):
            raise ValidationError(KEY_REUSED, field="idempotency_key")
        repayment.id = self._next_id()
        self.state.repayments[repayment.id] = copy.deepcopy(repayment)
        return repayment

    def save_repayment(self, repayment: Repayment) -> None:
        assert repayment.id is not None
        self.state.repayments[repayment.id] = copy.deepcopy(repayment)

    def repayments_of(self, loan_id: int) -> list[Repayment]:
        return [r for _, r in sorted(self.state.repayments.items()) if r.loan_id == loan_id]


@dataclass
class _Books:
    business_date: date
    entries: list[tuple[date, JournalEntry]] = field(default_factory=list)


class FakeLedger(Ledger):
    def __init__(self, on: date) -> None:
        self.state = _Books(on)

    def business_date(self, tenant_id: int) -> date:
        return self.state.business_date

    def post(self, who: Principal, on: date, entry: JournalEntry) -> int:
        self.state.entries.append((on, entry))
        return len(self.state.entries)

    def entry(self, entry_id: int) -> JournalEntry:
        if not 1 <= entry_id <= len(self.state.entries):
            raise NotFound(f"journal entry {entry_id} not found")
        return self.state.entries[entry_id - 1][1]

    def entries(self) -> list[JournalEntry]:
        return [e for _, e in self.state.entries]

    def closed_dates(self, tenant_id: int, first: date, last: date) -> list[date]:
        return []  # no close of business runs on the fake books

    def penalty_charged(self, tenant_id: int, loan_id: int, first: date, last: date) -> Decimal:
        return sum(
            (
                line.signed
                for on, e in self.state.entries
                if first <= on <= last and e.kind in ("cob.penalty", "cob.off_balance")
                for line in e.lines
                if line.loan_id == loan_id and line.account in ("1303", "7102")
            ),
            Decimal(0),
        )

    def balance(self, account: str, loan_id: int | None = None) -> Decimal:
        """Debits minus credits on one account (of one loan)."""
        return sum(
            (
                line.signed
                for e in self.entries()
                for line in e.lines
                if line.account == account and (loan_id is None or line.loan_id == loan_id)
            ),
            Decimal(0),
        )


@dataclass
class _Trail:
    records: list[tuple[str, object, dict[str, Any]]] = field(default_factory=list)


class FakeAuditTrail(AuditTrail):
    def __init__(self) -> None:
        self.state = _Trail()

    def record(
        self, who: Principal, action: str, object_type: str, object_id: object,
        *, before: Any = None, after: Any = None, reason: str = "",
    ) -> None:
        self.state.records.append((action, object_id, {"before": before, "after": after, "reason": reason}))

    def actions(self) -> list[str]:
        return [a for a, _, _ in self.state.records]


class FakeUnitOfWork(UnitOfWork):
    """A unit of work over the in-memory fakes; leaving it without ``commit()`` restores what it held."""

    def __init__(self, business_date: date = date(2026, 1, 15)) -> None:
        # no session factory: nothing here touches a database
        self._depth = 0
        self._events: list[DomainEvent] = []
        self._read_only = False
        self.loans = FakeLoanRepository(self)
        self.ledger = FakeLedger(business_date)
        self.audit = FakeAuditTrail()
        self._repositories: dict[type[Any], Any] = {
            LoanRepository: self.loans, Ledger: self.ledger, AuditTrail: self.audit,
        }
        self._snapshot: tuple[Any, ...] | None = None
        self.commits = 0
        self.published: list[DomainEvent] = []

    @property
    def session(self) -> Session:
        raise RuntimeError("a fake unit of work has no database session")

    def repository(self, kind: type[_R]) -> _R:
        return cast(_R, self._repositories[kind])

    def _state(self) -> tuple[Any, ...]:
        return (self.loans.state, self.ledger.state, self.audit.state)

    def __enter__(self) -> FakeUnitOfWork:
        if self._depth == 0:
            self._snapshot = copy.deepcopy(self._state())
            self._events = []
        self._depth += 1
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._depth -= 1
        if self._depth == 0 and self._snapshot is not None:  # not committed: roll back
            self.loans.state, self.ledger.state, self.audit.state = self._snapshot
            self._snapshot = None

    def publish(self, event: DomainEvent) -> None:
        self._events.append(event)

    def commit(self) -> None:
        if self._depth > 1:
            return
        self._snapshot = copy.deepcopy(self._state()) if self._depth else None
        self.commits += 1
        self.published.extend(self._events)
        self._events = []


def staff(tenant_id: int = TENANT) -> Principal:
    return Principal(user_id=1, tenant_id=tenant_id, username="officer", roles=frozenset({Role.ADMIN}))


DEFAULT_ORDER_NAMES = (
    "penalty", "fee", "overdue_interest", "overdue_principal", "current_interest", "current_principal",
)


def make_loan(
    principal: str = "12000.00",
    rate: str = "0.12",
    term_months: int = 12,
    start: date = date(2026, 1, 15),
    *,
    loan_id: int = 1,
    tenant_id: int = TENANT,
    method: RepaymentMethod = RepaymentMethod.EQUAL_INSTALLMENT,
    order: tuple[str, ...] = DEFAULT_ORDER_NAMES,
    product_id: int = 1,
) -> Loan:
    """A freshly disbursed loan on its contract schedule (no fee)."""
    schedule = build_schedule(method, Decimal(principal), Decimal(rate), term_months, start)
    return Loan(
        loan_id, tenant_id, product_id, None, None, method.value, "CNY", Decimal(principal), Decimal(rate),
        term_months, Decimal(0), "deduct", order, start, schedule.maturity_date,
        [Installment(i.number, i.period_start, i.due_date, i.principal, i.interest, i.fee)
         for i in schedule.installments],
    )


def stock_catalogue(uow: FakeUnitOfWork, tenant_id: int = TENANT) -> dict[str, ProductTerms]:
    """Give a bank the standard catalogue (as tenant setup does); returns its products by code."""
    state = uow.loans.state
    added: dict[str, ProductTerms] = {}
    for product in STANDARD_CATALOGUE:
        state.next_id += 1
        terms = ProductTerms(state.next_id, tenant_id, True, product)
        state.products[terms.id] = added[product.code] = terms
    return added


def give_credit_line(
    uow: FakeUnitOfWork, limit: str, *, tenant_id: int = TENANT, customer_id: int | None = 7,
    opened_on: date = date(2026, 1, 15), expires_on: date = date(2027, 1, 15), status: str = "open",
) -> CreditLine:
    """An open revolving line under the bank's RV-STD product (its catalogue must be stocked)."""
    state = uow.loans.state
    product = next(p for p in state.products.values() if p.tenant_id == tenant_id and p.product.code == "RV-STD")
    state.next_id += 1
    line = CreditLine(state.next_id, tenant_id, product.id, customer_id, Decimal(limit), Decimal("0.108"),
                      opened_on, expires_on, status)
    state.credit_lines[line.id] = line
    return line
