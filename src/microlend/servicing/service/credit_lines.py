"""Credit lines (循环额度): opening a line, changing its limit, drawing down on it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from microlend.core.errors import Conflict, NotFound, ValidationError
from microlend.core.identity import Principal
from microlend.core.money import parse_amount, round_half_up
from microlend.core.uow import UnitOfWork
from microlend.servicing.domain import NEW, CreditLine, Loan
from microlend.servicing.repository import audit_trail, ledger, loans
from microlend.servicing.schedules import RepaymentMethod, add_months
from microlend.servicing.service._common import ZERO, P, _cents, _key, _money, request_hash, require_customer
from microlend.servicing.service.disbursement import checked_terms, paid_out, replayed_loan
from microlend.servicing.service.loans import LoanView, loan_view


@dataclass(frozen=True)
class CreditLineView:
    id: int
    product_id: int
    customer_id: int | None
    limit: Decimal
    annual_rate: Decimal
    opened_on: date
    expires_on: date
    status: str
    drawn: Decimal

    @property
    def available(self) -> Decimal:
        return max(self.limit - self.drawn, ZERO)


def _view(line: CreditLine, drawn: Decimal) -> CreditLineView:
    return CreditLineView(
        line.id, line.product_id, line.customer_id, line.limit, line.annual_rate, line.opened_on, line.expires_on,
        line.status, drawn,
    )


def open_credit_line(
    uow: UnitOfWork,
    who: Principal,
    product_code: str,
    limit: Decimal,
    *,
    customer_id: int | None = None,
    annual_rate: Decimal | None = None,
    months: int = 12,
) -> CreditLineView:
    """Open a revolving line (循环额度) under a revolving product, valid ``months`` from today."""
    who.require(P.MANAGE_CREDIT_LINES)
    return open_line(uow, who, product_code, limit, customer_id=customer_id, annual_rate=annual_rate, months=months)


def open_line(
    uow: UnitOfWork,
    who: Principal,
    product_code: str,
    limit: Decimal,
    *,
    customer_id: int | None = None,
    annual_rate: Decimal | None = None,
    months: int = 12,
) -> CreditLineView:
    """Opening the line itself, for a caller whose authority was checked (``open_credit_line``, a booking's
    approval): within the product's ranges and the bank's rate cap."""
    amount = _cents(limit, "limit")
    with uow:
        repo = loans(uow)
        require_customer(repo, who, customer_id)
        terms, rate = checked_terms(repo, who, product_code, amount, months, annual_rate)
        if terms.product.method != RepaymentMethod.REVOLVING:
            raise ValidationError("product_code: a credit line needs a revolving product", field="product_code")
        on = ledger(uow).business_date(who.tenant_id)
        line = repo.add_credit_line(
            CreditLine(NEW, who.tenant_id, terms.id, customer_id, amount, rate, on, add_months(on, months), "open")
        )
        audit_trail(uow).record(
            who,
            "credit_line.open",
            "credit_line",
            line.id,
            after={"limit": _money(amount), "annual_rate": str(rate), "product": product_code},
        )
        view = _view(line, ZERO)
        uow.commit()
    return view


def change_credit_line_limit(
    uow: UnitOfWork, who: Principal, line_id: int, new_limit: Decimal, reason: str
) -> CreditLineView:
    """Raise (提额) or lower (降额) an open line's limit, audited with the reason. A lower limit may fall below
    what is drawn (no new drawdowns until repaid); a higher one stays within the product's maximum."""
    who.require(P.MANAGE_CREDIT_LINES)
    if not reason.strip():
        raise ValidationError("reason: say why the limit changes", field="reason")
    amount = parse_amount(new_limit, "new_limit")
    if amount < 0 or round_half_up(amount) != amount:
        raise ValidationError("new_limit: a non-negative amount with at most 2 decimal places", field="new_limit")
    with uow:
        repo = loans(uow)
        line = repo.credit_line(who.tenant_id, line_id, lock=True)
        if line is None:
            raise NotFound(f"credit line {line_id} not found")
        if line.status != "open":
            raise Conflict(f"credit line {line_id} is {line.status}; only an open line's limit can change")
        maximum = repo.product_by_id(line.product_id).product.max_amount
        if amount > line.limit and amount > maximum:
            raise ValidationError(f"new_limit: above the product's maximum {_money(maximum)}", field="new_limit")
        cap = repo.rate_cap(who.tenant_id)
        if amount > line.limit and line.annual_rate > cap:
            raise ValidationError(
                f"new_limit: the line's rate {line.annual_rate} is above the bank's rate cap {cap}; it cannot be "
                "raised", field="new_limit",
            )
        before = {"limit": _money(line.limit)}
        line = replace(line, limit=amount)
        repo.save_credit_line(line)
        audit_trail(uow).record(
            who, "credit_line.change_limit", "credit_line", line.id, before=before,
            after={"limit": _money(amount)}, reason=reason.strip()[:500],
        )
        view = _view(line, repo.drawn(line.id))
        uow.commit()
    return view


def draw_down(
    uow: UnitOfWork, who: Principal, line_id: int, amount: Decimal, *, idempotency_key: str | None = None
) -> LoanView:
    """用信 a drawdown on an open line: a revolving loan accruing daily interest until repaid."""
    who.require(P.DISBURSE)
    key = _key(idempotency_key)
    value = _cents(amount, "amount")
    digest = request_hash({"credit_line_id": line_id, "amount": str(value)})
    with uow:
        repo = loans(uow)
        existing = replayed_loan(repo, who, key, digest)
        if existing is not None:
            return loan_view(existing)
        line = repo.credit_line(who.tenant_id, line_id, lock=True)
        if line is None:
            raise NotFound(f"credit line {line_id} not found")
        on = ledger(uow).business_date(who.tenant_id)
        line.check_drawdown(value, on, repo.drawn(line.id))
        loan = Loan.draw_down(line, repo.product_by_id(line.product_id), value, on, key=key, digest=digest)
        after = {"credit_line_id": line_id, "amount": _money(value)}
        return paid_out(uow, who, loan, digest, "loan.drawdown", after)
