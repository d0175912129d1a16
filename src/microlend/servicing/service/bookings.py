"""Direct booking (直接录入) of a loan or a credit line by operations — moving a book from another system, a
correction — never a lending shortcut: the booking is checked like any loan (this bank's customer and
application, the product's ranges, the rate cap) and waits; money moves only when a second person (another
operations user or an approver, never the booker) approves it. Every step is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from microlend.core.clock import utcnow
from microlend.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.servicing.ports import application_customer
from microlend.servicing.repository import KEY_REUSED, audit_trail, loans
from microlend.servicing.schedules import RepaymentMethod, check_repayment_day
from microlend.servicing.service._common import P, _cents, _key, _money, request_hash, require_customer
from microlend.servicing.service.credit_lines import open_line
from microlend.servicing.service.disbursement import Disbursement, checked_terms, pay_out
from microlend.servicing.tables import LoanBookingRow

LOAN, CREDIT_LINE = "loan", "credit_line"


@dataclass(frozen=True)
class BookingView:
    id: int
    kind: str
    product_code: str
    amount: Decimal
    term_months: int
    annual_rate: Decimal
    customer_id: int | None
    application_id: int | None
    status: str
    booked_by: str
    booked_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    reason: str
    loan_id: int | None
    credit_line_id: int | None
    repayment_day: int | None = None

    @classmethod
    def from_row(cls, r: LoanBookingRow) -> BookingView:
        return cls(r.id, r.kind, r.product_code, r.amount, r.term_months, r.annual_rate, r.customer_id,
                   r.application_id, r.status, r.booked_by, r.booked_at, r.decided_by, r.decided_at, r.reason,
                   r.loan_id, r.credit_line_id, r.repayment_day)


@dataclass(frozen=True)
class CreditLineBooking:
    """A request to open a revolving line (循环额度) for a customer."""

    product_code: str
    limit: Decimal
    customer_id: int | None = None
    annual_rate: Decimal | None = None
    months: int = 12
    idempotency_key: str | None = None


def _require_application(uow: UnitOfWork, who: Principal, application_id: int | None,
                         customer_id: int | None) -> None:
    """An application named in a booking is this bank's and, when a customer is named too, that customer's."""
    if application_id is None:
        return
    owner = application_customer(uow, who, application_id)
    if owner is None:
        raise NotFound(f"application {application_id} not found", field="application_id")
    if customer_id is not None and owner != customer_id:
        raise ValidationError(f"application_id: application {application_id} is not customer {customer_id}'s",
                              field="application_id")


def _replayed(uow: UnitOfWork, who: Principal, key: str | None, digest: str) -> LoanBookingRow | None:
    if key is None:
        return None
    row = uow.session.execute(select(LoanBookingRow).where(
        LoanBookingRow.tenant_id == who.tenant_id, LoanBookingRow.idempotency_key == key)).scalar_one_or_none()
    if row is not None and row.request_hash != digest:
        raise ValidationError(KEY_REUSED, field="idempotency_key")
    return row


def _store(uow: UnitOfWork, who: Principal, row: LoanBookingRow, after: dict[str, Any]) -> BookingView:
    try:
        with uow.session.begin_nested():
            uow.session.add(row)
            uow.session.flush()
    except IntegrityError:  # a concurrent request took the key meanwhile
        again = _replayed(uow, who, row.idempotency_key, row.request_hash)
        if again is None:
            raise
        return BookingView.from_row(again)
    audit_trail(uow).record(who, "booking.create", "booking", row.id, after=after)
    view = BookingView.from_row(row)
    uow.commit()
    return view


def _new_row(who: Principal, kind: str, body: dict[str, Any], amount: Decimal, term: int, rate: Decimal,
             key: str | None, digest: str) -> LoanBookingRow:
    return LoanBookingRow(
        tenant_id=who.tenant_id, kind=kind, product_code=body["product_code"], amount=amount, term_months=term,
        annual_rate=rate, customer_id=body.get("customer_id"), application_id=body.get("application_id"),
        status="pending", booked_by_id=who.user_id, booked_by=who.username, booked_at=utcnow(), reason="",
        idempotency_key=key, request_hash=digest,
    )


def book_loan(uow: UnitOfWork, who: Principal, cmd: Disbursement) -> BookingView:
    """Book a loan for a second person's approval; nothing is paid out yet."""
    who.require(P.BOOK_LOANS)
    key = _key(cmd.idempotency_key)
    amount = _cents(cmd.principal, "principal")
    body = {**cmd.body(), "kind": LOAN}
    digest = request_hash(body)
    with uow:
        existing = _replayed(uow, who, key, digest)
        if existing is not None:
            return BookingView.from_row(existing)
        repo = loans(uow)
        require_customer(repo, who, cmd.customer_id)
        _require_application(uow, who, cmd.application_id, cmd.customer_id)
        terms, rate = checked_terms(repo, who, cmd.product_code, amount, cmd.term_months, cmd.annual_rate)
        if terms.product.method == RepaymentMethod.REVOLVING:
            raise ValidationError(
                "product_code: a revolving product is used through a credit line drawdown", field="product_code"
            )
        check_repayment_day(cmd.repayment_day)
        if cmd.repayment_day is not None and terms.product.method == RepaymentMethod.BULLET:
            raise ValidationError("repayment_day: a bullet loan is repaid once at maturity; it has no monthly "
                                  "repayment day", field="repayment_day")
        row = _new_row(who, LOAN, body, amount, cmd.term_months, rate, key, digest)
        row.repayment_day = cmd.repayment_day
        return _store(uow, who, row, {**body, "annual_rate": str(rate)})


def book_credit_line(uow: UnitOfWork, who: Principal, cmd: CreditLineBooking) -> BookingView:
    """Book a credit line for a second person's approval; nothing is opened yet."""
    who.require(P.BOOK_LOANS)
    key = _key(cmd.idempotency_key)
    amount = _cents(cmd.limit, "limit")
    body = {"kind": CREDIT_LINE, "product_code": cmd.product_code, "limit": str(amount),
            "customer_id": cmd.customer_id, "annual_rate": str(cmd.annual_rate), "months": cmd.months}
    digest = request_hash(body)
    with uow:
        existing = _replayed(uow, who, key, digest)
        if existing is not None:
            return BookingView.from_row(existing)
        repo = loans(uow)
        require_customer(repo, who, cmd.customer_id)
        terms, rate = checked_terms(repo, who, cmd.product_code, amount, cmd.months, cmd.annual_rate)
        if terms.product.method != RepaymentMethod.REVOLVING:
            raise ValidationError("product_code: a credit line needs a revolving product", field="product_code")
        row = _new_row(who, CREDIT_LINE, body, amount, cmd.months, rate, key, digest)
        return _store(uow, who, row, {**body, "annual_rate": str(rate)})


def _pending(uow: UnitOfWork, who: Principal, booking_id: int) -> LoanBookingRow:
    row = uow.session.execute(select(LoanBookingRow).where(
        LoanBookingRow.id == booking_id, LoanBookingRow.tenant_id == who.tenant_id).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"booking {booking_id} not found")
    if row.status != "pending":
        raise Conflict(f"booking {booking_id} is already {row.status}")
    if row.booked_by_id == who.user_id and row.booked_by == who.username:
        raise PermissionDenied(f"booking {booking_id}: {who.username} booked it; a second person must decide it "
                               "(four eyes)")
    return row


def approve_booking(uow: UnitOfWork, who: Principal, booking_id: int) -> BookingView:
    """四眼 approve a pending booking: the loan is disbursed (or the line opened) now, on today's business date."""
    who.require(P.APPROVE_BOOKINGS)
    with uow:
        row = _pending(uow, who, booking_id)
        if row.kind == LOAN:
            loan = pay_out(uow, who, Disbursement(
                row.product_code, row.amount, row.term_months, row.annual_rate, row.customer_id,
                row.application_id, f"booking:{row.id}", row.repayment_day))
            row.loan_id = loan.id
        else:
            line = open_line(uow, who, row.product_code, row.amount, customer_id=row.customer_id,
                             annual_rate=row.annual_rate, months=row.term_months)
            row.credit_line_id = line.id
        row.status, row.decided_by_id, row.decided_by, row.decided_at = "approved", who.user_id, who.username, utcnow()
        uow.session.flush()
        audit_trail(uow).record(who, "booking.approve", "booking", row.id, before={"status": "pending"},
                                after={"status": "approved", "booked_by": row.booked_by, "loan_id": row.loan_id,
                                       "credit_line_id": row.credit_line_id, "amount": _money(row.amount)})
        view = BookingView.from_row(row)
        uow.commit()
    return view


def reject_booking(uow: UnitOfWork, who: Principal, booking_id: int, reason: str) -> BookingView:
    """Turn a pending booking down, with the reason; nothing moves."""
    who.require(P.APPROVE_BOOKINGS)
    if not reason.strip():
        raise ValidationError("reason: say why the booking is rejected", field="reason")
    with uow:
        row = _pending(uow, who, booking_id)
        row.status, row.decided_by_id, row.decided_by, row.decided_at = "rejected", who.user_id, who.username, utcnow()
        row.reason = reason.strip()[:500]
        uow.session.flush()
        audit_trail(uow).record(who, "booking.reject", "booking", row.id, before={"status": "pending"},
                                after={"status": "rejected"}, reason=row.reason)
        view = BookingView.from_row(row)
        uow.commit()
    return view


def _may_see_bookings(who: Principal) -> None:
    if not (who.can(P.BOOK_LOANS) or who.can(P.APPROVE_BOOKINGS)):
        who.require(P.APPROVE_BOOKINGS)


def list_bookings(uow: UnitOfWork, who: Principal, *, status: str | None = None, limit: int = 100,
                  offset: int = 0) -> list[BookingView]:
    """The bank's bookings, newest first (``status``: pending, approved or rejected)."""
    _may_see_bookings(who)
    with uow:
        stmt = select(LoanBookingRow).where(LoanBookingRow.tenant_id == who.tenant_id)
        if status is not None:
            stmt = stmt.where(LoanBookingRow.status == status)
        rows = uow.session.execute(stmt.order_by(LoanBookingRow.id.desc()).limit(limit).offset(offset)).scalars()
        return [BookingView.from_row(r) for r in rows]


def get_booking(uow: UnitOfWork, who: Principal, booking_id: int) -> BookingView:
    _may_see_bookings(who)
    with uow:
        row = uow.session.execute(select(LoanBookingRow).where(
            LoanBookingRow.id == booking_id, LoanBookingRow.tenant_id == who.tenant_id)).scalar_one_or_none()
        if row is None:
            raise NotFound(f"booking {booking_id} not found")
        return BookingView.from_row(row)

