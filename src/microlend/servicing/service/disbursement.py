"""Disbursement (放款): paying out a loan under a product, idempotent on its key."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from microlend.core.errors import NotFound, ValidationError
from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.servicing.apr import apr
from microlend.servicing.domain import Loan, ProductTerms
from microlend.servicing.rate_cap import check_offer_within_cap
from microlend.servicing.repository import (
    KEY_REUSED,
    DisbursementKeyTaken,
    LoanRepository,
    audit_trail,
    ledger,
    loans,
)
from microlend.servicing.schedules import RepaymentMethod, build_schedule, check_repayment_day
from microlend.servicing.service._common import P, _cents, _key, request_hash, require_customer
from microlend.servicing.service.loans import LoanView, loan_view


@dataclass(frozen=True)
class Disbursement:
    """A staff request to pay out a loan (放款) under a product."""

    product_code: str
    principal: Decimal
    term_months: int
    annual_rate: Decimal | None = None
    customer_id: int | None = None
    application_id: int | None = None
    idempotency_key: str | None = None
    #: 固定还款日 this loan's repayment day (1..28); None: the product's, if it has one
    repayment_day: int | None = None

    def body(self) -> dict[str, Any]:
        day = {} if self.repayment_day is None else {"repayment_day": self.repayment_day}
        return {
            **day,
            "product_code": self.product_code,
            "principal": str(self.principal),
            "term_months": self.term_months,
            "annual_rate": str(self.annual_rate),
            "customer_id": self.customer_id,
            "application_id": self.application_id,
        }


def replayed_loan(repo: LoanRepository, who: Principal, key: str | None, digest: str) -> Loan | None:
    """The loan this bank already disbursed under ``key``, or None; the same key with another request is
    refused."""
    if key is None:
        return None
    loan = repo.by_disbursement_key(who.tenant_id, key)
    if loan is not None and loan.request_hash != digest:
        raise ValidationError(KEY_REUSED, field="idempotency_key")
    return loan


def add_new_loan(repo: LoanRepository, who: Principal, loan: Loan, digest: str) -> tuple[Loan, bool]:
    """Store a new loan; when a concurrent request took its key meanwhile, that request's loan instead
    (``False``: nothing was added)."""
    try:
        return repo.add(loan), True
    except DisbursementKeyTaken:
        again = replayed_loan(repo, who, loan.disbursement_key, digest)
        if again is None:
            raise
        return again, False


def product_by_code(repo: LoanRepository, who: Principal, code: str) -> ProductTerms:
    terms = repo.product(who.tenant_id, code)
    if terms is None or not terms.active:
        raise NotFound(f"product_code: no product '{code}'", field="product_code")
    return terms


def paid_out(uow: UnitOfWork, who: Principal, loan: Loan, digest: str, action: str, after: dict[str, Any]) -> LoanView:
    """Store a new loan, post its disbursement and audit it, then commit; a key taken meanwhile replays the
    loan stored under it."""
    stored, added = add_new_loan(loans(uow), who, loan, digest)
    if not added:
        return loan_view(stored)
    ledger(uow).post(who, stored.disbursed_on, stored.disbursement_entry())
    audit_trail(uow).record(who, action, "loan", stored.id, after=after)
    view = loan_view(stored)
    uow.commit()
    return view


def disburse(uow: UnitOfWork, who: Principal, cmd: Disbursement) -> LoanView:
    """Pay out a loan on today's business date (an accepted application's, or an approved booking's); the same
    idempotency key replays the same loan."""
    who.require(P.DISBURSE)
    return pay_out(uow, who, cmd)


def checked_terms(repo: LoanRepository, who: Principal, code: str, amount: Decimal, term_months: int,
                  rate: Decimal | None) -> tuple[ProductTerms, Decimal]:
    """The product and the rate of a loan request, within the product's ranges and the bank's rate cap."""
    terms = product_by_code(repo, who, code)
    product = terms.product
    price = rate if rate is not None else product.annual_rate
    product.check_offer(amount, term_months, price)
    check_offer_within_cap(product, amount, price, term_months, repo.rate_cap(who.tenant_id))
    return terms, price


def pay_out(uow: UnitOfWork, who: Principal, cmd: Disbursement) -> LoanView:
    """The disbursement itself, for a caller whose authority was checked (``disburse``, a booking's
    approval)."""
    key = _key(cmd.idempotency_key)
    amount = _cents(cmd.principal, "principal")
    digest = request_hash(cmd.body())
    with uow:
        repo = loans(uow)
        existing = replayed_loan(repo, who, key, digest)
        if existing is not None:
            return loan_view(existing)
        require_customer(repo, who, cmd.customer_id)
        terms, rate = checked_terms(repo, who, cmd.product_code, amount, cmd.term_months, cmd.annual_rate)
        product = terms.product
        if product.method == RepaymentMethod.REVOLVING:
            raise ValidationError(
                "product_code: a revolving product is used through a credit line drawdown", field="product_code"
            )
        check_repayment_day(cmd.repayment_day)
        on = ledger(uow).business_date(who.tenant_id)
        schedule = build_schedule(
            product.method,
            amount,
            rate,
            cmd.term_months,
            on,
            upfront_fee=product.upfront_fee(amount),
            fee_mode=product.fee_mode,
            currency=product.currency,
            repayment_day=cmd.repayment_day if cmd.repayment_day is not None else product.repayment_day,
        )
        loan = Loan.disburse(
            terms, schedule, customer_id=cmd.customer_id, application_id=cmd.application_id, key=key, digest=digest
        )
        first_due = schedule.installments[0].due_date.isoformat()
        after = {**cmd.body(), "annual_rate": str(rate), "apr": str(apr(schedule)),
                 "repayment_day": schedule.repayment_day, "first_due_date": first_due}
        return paid_out(uow, who, loan, digest, "loan.disburse", after)
