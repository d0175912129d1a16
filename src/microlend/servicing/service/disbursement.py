"""Disbursement (放款): paying out a loan under a product, idempotent on its key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.errors import ValidationError
from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.servicing.apr import apr
from microlend.servicing.events import LoanDisbursed
from microlend.servicing.ledger import Acct, JournalEntry, credit, debit
from microlend.servicing.repository import installment_rows, post_entry
from microlend.servicing.schedules import FeeMode, RepaymentMethod, Schedule, build_schedule
from microlend.servicing.service._common import (
    RATE_SCALE,
    ZERO,
    P,
    _cents,
    _key,
    _money,
    _replayed,
    _today,
    request_hash,
)
from microlend.servicing.service.loans import LoanView, _loan_view
from microlend.servicing.service.products import ProductView, _product_by_code
from microlend.servicing.tables import InstallmentRow, LoanEventRow, LoanRow, ProductRow


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

    def body(self) -> dict[str, Any]:
        return {
            "product_code": self.product_code,
            "principal": str(self.principal),
            "term_months": self.term_months,
            "annual_rate": str(self.annual_rate),
            "customer_id": self.customer_id,
            "application_id": self.application_id,
        }


def _rate_e8(rate: Decimal, field_name: str) -> int:
    scaled = rate * RATE_SCALE
    if scaled != scaled.to_integral_value():
        raise ValidationError(f"{field_name}: at most 8 decimal places", field=field_name)
    return int(scaled)


def _new_loan(
    session: Session,
    who: Principal,
    product: ProductRow,
    *,
    principal: Decimal,
    rate: Decimal,
    term_months: int,
    on: date,
    schedule: Schedule | None,
    maturity: date,
    customer_id: int | None,
    application_id: int | None = None,
    credit_line_id: int | None = None,
    key: str | None = None,
    digest: str = "",
) -> LoanRow:
    fee = schedule.upfront_fee if schedule else ZERO
    loan = LoanRow(
        tenant_id=who.tenant_id,
        product_id=product.id,
        customer_id=customer_id,
        credit_line_id=credit_line_id,
        application_id=application_id,
        method=product.method,
        currency=product.currency,
        principal=principal,
        annual_rate=rate,
        rate_e8=_rate_e8(rate, "annual_rate"),
        penalty_rate_e8=_rate_e8(rate * product.penalty_multiplier, "annual_rate"),
        grace_days=product.grace_days,
        term_months=term_months,
        upfront_fee=fee,
        fee_mode=product.fee_mode,
        allocation_order=list(product.allocation_order),
        disbursed_on=on,
        maturity_date=maturity,
        status="active",
        days_past_due=0,
        bucket="M0",
        loan_class="normal",
        penalty_accrued=ZERO,
        penalty_paid=ZERO,
        credit_balance=ZERO,
        disbursement_key=key,
        request_hash=digest,
        created_at=utcnow(),
    )
    session.add(loan)
    session.flush()
    if schedule is not None:
        session.add_all(
            [
                _installment_row(loan, i.number, i.period_start, i.due_date, i.principal, i.interest, i.fee)
                for i in schedule.installments
            ]
        )
    else:  # a revolving drawdown: one open row until the line expires, interest added daily
        session.add(_installment_row(loan, 1, on, maturity, principal, ZERO, ZERO))
    cash_out = principal - fee if fee and product.fee_mode == FeeMode.DEDUCT else principal
    lines = [debit(Acct.LOAN_PRINCIPAL, principal, loan.id), credit(Acct.CASH, cash_out, loan.id)]
    if cash_out != principal:
        lines.append(credit(Acct.FEE_INCOME, principal - cash_out, loan.id))
    post_entry(
        session,
        who,
        on,
        JournalEntry("disbursement", tuple(lines), f"loan {loan.id} disbursed", product.currency, loan.id),
    )
    session.add(
        LoanEventRow(tenant_id=loan.tenant_id, loan_id=loan.id, business_date=on, kind="LoanDisbursed",
                     data={"principal": _money(principal)})
    )
    return loan


def _installment_row(
    loan: LoanRow, number: int, start: date, due: date, principal: Decimal, interest: Decimal, fee: Decimal
) -> InstallmentRow:
    return InstallmentRow(
        tenant_id=loan.tenant_id,
        loan_id=loan.id,
        number=number,
        period_start=start,
        due_date=due,
        start_day=start.toordinal(),
        due_day=due.toordinal(),
        principal=principal,
        interest=interest,
        fee=fee,
        principal_paid=ZERO,
        interest_paid=ZERO,
        fee_paid=ZERO,
        interest_accrued=ZERO,
        status="pending",
    )



def _replayed_loan(session: Session, who: Principal, key: str | None, digest: str) -> LoanRow | None:
    row: LoanRow | None = _replayed(session, who, LoanRow.disbursement_key, key, digest)
    return row


def disburse(uow: UnitOfWork, who: Principal, cmd: Disbursement) -> LoanView:
    """Pay out a loan on today's business date; the same idempotency key replays the same loan."""
    who.require(P.DISBURSE)
    key = _key(cmd.idempotency_key)
    amount = _cents(cmd.principal, "principal")
    digest = request_hash(cmd.body())
    with uow:
        s = uow.session
        existing = _replayed_loan(s, who, key, digest)
        if existing is not None:
            return _loan_view(existing, installment_rows(s, existing.id))
        product = _product_by_code(s, who, cmd.product_code)
        if product.method == RepaymentMethod.REVOLVING:
            raise ValidationError(
                "product_code: a revolving product is used through a credit line drawdown", field="product_code"
            )
        domain = ProductView.from_row(product).to_product()
        rate = cmd.annual_rate if cmd.annual_rate is not None else product.annual_rate
        domain.check_offer(amount, cmd.term_months, rate)
        on = _today(s, who)
        schedule = build_schedule(
            product.method,
            amount,
            rate,
            cmd.term_months,
            on,
            upfront_fee=domain.upfront_fee(amount),
            fee_mode=product.fee_mode,
            currency=product.currency,
        )
        try:
            with s.begin_nested():
                loan = _new_loan(
                    s,
                    who,
                    product,
                    principal=amount,
                    rate=rate,
                    term_months=cmd.term_months,
                    on=on,
                    schedule=schedule,
                    maturity=schedule.maturity_date,
                    customer_id=cmd.customer_id,
                    application_id=cmd.application_id,
                    key=key,
                    digest=digest,
                )
        except IntegrityError:
            s.rollback()
            again = _replayed_loan(s, who, key, digest)
            if again is None:
                raise
            return _loan_view(again, installment_rows(s, again.id))
        audit.record(
            s,
            who,
            "loan.disburse",
            "loan",
            loan.id,
            after={**cmd.body(), "annual_rate": str(rate), "apr": str(apr(schedule))},
        )
        uow.publish(LoanDisbursed(who.tenant_id, loan.id, on, _money(amount)))
        view = _loan_view(loan, installment_rows(s, loan.id))
        uow.commit()
    return view

