"""Servicing use cases: products, disbursement, repayments (idempotent, reversible), early repayment,
write-off, trial balance and reconciliation. Each takes ``(uow, who, ...)``, checks permission and tenant,
posts one balanced journal entry per money event, and writes an audit record in the same transaction."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.db import Amount
from microlend.core.errors import Conflict, NotFound, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.money import parse_amount, round_half_up
from microlend.core.tables import TenantRow
from microlend.core.tenancy import business_date
from microlend.core.uow import UnitOfWork
from microlend.servicing.allocation import (
    AllocatedPart,
    Allocation,
    AllocationTarget,
    Component,
    Due,
    allocate,
    parse_order,
)
from microlend.servicing.apr import apr
from microlend.servicing.events import LoanDisbursed, LoanRepaid, LoanWrittenOff, RepaymentPosted
from microlend.servicing.ledger import (
    ACCOUNTS_BY_CODE,
    CHART_OF_ACCOUNTS,
    Acct,
    JournalEntry,
    JournalLine,
    credit,
    debit,
    natural_balance,
)
from microlend.servicing.products import STANDARD_CATALOGUE, Product
from microlend.servicing.schedules import (
    FeeMode,
    PrepaymentMode,
    RepaymentMethod,
    Schedule,
    accrued_interest,
    add_months,
    build_schedule,
    reamortise,
)
from microlend.servicing.tables import (
    AccountRow,
    CreditLineRow,
    InstallmentRow,
    JournalEntryRow,
    JournalLineRow,
    LoanEventRow,
    LoanRow,
    ProductRow,
    RepaymentRow,
)

ZERO = Decimal(0)
P = Permission
RATE_SCALE = 10**8


# ------------------------------------------------------------------------------------------ helpers


def request_hash(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _money(value: Decimal) -> str:
    return str(round_half_up(value))


def _cents(value: Any, field_name: str) -> Decimal:
    amount = parse_amount(value, field_name)
    if amount <= 0:
        raise ValidationError(f"{field_name}: must be a positive amount", field=field_name)
    if round_half_up(amount) != amount:
        raise ValidationError(f"{field_name}: at most 2 decimal places", field=field_name)
    return amount


def _key(key: str | None) -> str | None:
    if key is not None and not 1 <= len(key) <= 255:
        raise ValidationError("idempotency_key: must be 1-255 characters", field="idempotency_key")
    return key


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
    session.add_all(
        [
            JournalLineRow(
                entry_id=row.id,
                tenant_id=who.tenant_id,
                account_code=line.account,
                loan_id=line.loan_id,
                debit=line.debit,
                credit=line.credit,
            )
            for line in entry.lines
        ]
    )
    session.flush()
    return row


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


def _signed_line(account: str, signed: Decimal, loan_id: int) -> JournalLine:
    """A line from a signed amount: positive debits, negative credits."""
    return debit(account, signed, loan_id) if signed >= 0 else credit(account, -signed, loan_id)


def _loan(session: Session, who: Principal, loan_id: int, *, lock: bool = False) -> LoanRow:
    """The caller's loan; another tenant's loan is indistinguishable from a missing one."""
    stmt = select(LoanRow).where(LoanRow.id == loan_id, LoanRow.tenant_id == who.tenant_id)
    if lock:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).scalar_one_or_none()
    if row is None:
        raise NotFound(f"loan {loan_id} not found")
    return row


def _installments(session: Session, loan_id: int) -> list[InstallmentRow]:
    return list(
        session.execute(
            select(InstallmentRow).where(InstallmentRow.loan_id == loan_id).order_by(InstallmentRow.number)
        ).scalars()
    )


def _event(session: Session, loan: LoanRow, on: date, kind: str, data: dict[str, Any] | None = None) -> None:
    session.add(LoanEventRow(tenant_id=loan.tenant_id, loan_id=loan.id, business_date=on, kind=kind, data=data))


def _today(session: Session, who: Principal) -> date:
    return business_date(session, who.tenant_id)


# ------------------------------------------------------------------------------------------ products


@dataclass(frozen=True)
class ProductView:
    id: int
    code: str
    name: str
    name_zh: str
    method: str
    currency: str
    min_amount: Decimal
    max_amount: Decimal
    min_term_months: int
    max_term_months: int
    annual_rate: Decimal
    min_rate: Decimal
    max_rate: Decimal
    penalty_multiplier: Decimal
    grace_days: int
    upfront_fee_rate: Decimal
    fee_mode: str
    allocation_order: list[str]
    early_repayment_allowed: bool

    @classmethod
    def from_row(cls, r: ProductRow) -> ProductView:
        return cls(
            r.id,
            r.code,
            r.name,
            r.name_zh,
            r.method,
            r.currency,
            r.min_amount,
            r.max_amount,
            r.min_term_months,
            r.max_term_months,
            r.annual_rate,
            r.min_rate,
            r.max_rate,
            r.penalty_multiplier,
            r.grace_days,
            r.upfront_fee_rate,
            r.fee_mode,
            list(r.allocation_order),
            r.early_repayment_allowed,
        )

    def to_product(self) -> Product:
        return Product(
            self.code,
            self.name,
            RepaymentMethod(self.method),
            self.min_amount,
            self.max_amount,
            self.min_term_months,
            self.max_term_months,
            self.annual_rate,
            self.min_rate,
            self.max_rate,
            self.penalty_multiplier,
            self.grace_days,
            self.upfront_fee_rate,
            FeeMode(self.fee_mode),
            parse_order(self.allocation_order),
            self.early_repayment_allowed,
            self.name_zh,
            self.currency,
        )


def _product_row(tenant_id: int, p: Product) -> ProductRow:
    return ProductRow(
        tenant_id=tenant_id,
        code=p.code,
        name=p.name,
        name_zh=p.name_zh,
        method=p.method.value,
        currency=p.currency,
        min_amount=p.min_amount,
        max_amount=p.max_amount,
        min_term_months=p.min_term_months,
        max_term_months=p.max_term_months,
        annual_rate=p.annual_rate,
        min_rate=p.min_rate,
        max_rate=p.max_rate,
        penalty_multiplier=p.penalty_multiplier,
        grace_days=p.grace_days,
        upfront_fee_rate=p.upfront_fee_rate,
        fee_mode=p.fee_mode.value,
        allocation_order=[t.value for t in p.allocation_order],
        early_repayment_allowed=p.early_repayment_allowed,
        active=True,
        created_at=utcnow(),
    )


def setup_tenant(session: Session, tenant: TenantRow) -> None:
    """Tenant-setup hook: the chart of accounts and the standard product catalogue (拎包入住)."""
    session.add_all(
        [
            AccountRow(tenant_id=tenant.id, code=a.code, name=a.name, name_zh=a.name_zh, type=a.type.value)
            for a in CHART_OF_ACCOUNTS
        ]
    )
    session.add_all([_product_row(tenant.id, p) for p in STANDARD_CATALOGUE if p.currency == tenant.currency])
    session.flush()


def create_product(uow: UnitOfWork, who: Principal, product: Product) -> ProductView:
    who.require(P.MANAGE_PRODUCTS)
    with uow:
        s = uow.session
        exists = s.execute(
            select(ProductRow.id).where(ProductRow.tenant_id == who.tenant_id, ProductRow.code == product.code)
        ).first()
        if exists:
            raise Conflict(f"code: a product '{product.code}' already exists", field="code")
        row = _product_row(who.tenant_id, product)
        s.add(row)
        s.flush()
        view = ProductView.from_row(row)
        audit.record(s, who, "product.create", "product", row.id, after=_jsonable(view))
        uow.commit()
    return view


def list_products(uow: UnitOfWork, who: Principal) -> list[ProductView]:
    who.require(P.VIEW_LOANS)
    with uow:
        rows = uow.session.execute(
            select(ProductRow)
            .where(ProductRow.tenant_id == who.tenant_id, ProductRow.active.is_(True))
            .order_by(ProductRow.id)
        ).scalars()
        return [ProductView.from_row(r) for r in rows]


def _product_by_code(session: Session, who: Principal, code: str) -> ProductRow:
    row = session.execute(
        select(ProductRow).where(ProductRow.tenant_id == who.tenant_id, ProductRow.code == code)
    ).scalar_one_or_none()
    if row is None or not row.active:
        raise NotFound(f"product_code: no product '{code}'", field="product_code")
    return row


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj.__dict__ if hasattr(obj, "__dict__") else obj, default=str))


# ------------------------------------------------------------------------------------------ loans


@dataclass(frozen=True)
class InstallmentView:
    number: int
    period_start: date
    due_date: date
    principal: Decimal
    interest: Decimal
    fee: Decimal
    principal_paid: Decimal
    interest_paid: Decimal
    fee_paid: Decimal
    interest_accrued: Decimal
    status: str

    @property
    def payment(self) -> Decimal:
        return self.principal + self.interest + self.fee

    @property
    def outstanding(self) -> Decimal:
        return self.payment - self.principal_paid - self.interest_paid - self.fee_paid

    @classmethod
    def from_row(cls, r: InstallmentRow) -> InstallmentView:
        return cls(
            r.number,
            r.period_start,
            r.due_date,
            r.principal,
            r.interest,
            r.fee,
            r.principal_paid,
            r.interest_paid,
            r.fee_paid,
            r.interest_accrued,
            r.status,
        )


@dataclass(frozen=True)
class LoanView:
    id: int
    product_id: int
    customer_id: int | None
    method: str
    currency: str
    principal: Decimal
    annual_rate: Decimal
    term_months: int
    upfront_fee: Decimal
    fee_mode: str
    disbursed_on: date
    maturity_date: date
    status: str
    days_past_due: int
    bucket: str
    loan_class: str
    outstanding_principal: Decimal
    interest_receivable: Decimal
    penalty_due: Decimal
    credit_balance: Decimal
    credit_line_id: int | None
    installments: tuple[InstallmentView, ...] = field(default=(), repr=False)


def _loan_view(loan: LoanRow, insts: Sequence[InstallmentRow]) -> LoanView:
    return LoanView(
        loan.id,
        loan.product_id,
        loan.customer_id,
        loan.method,
        loan.currency,
        loan.principal,
        loan.annual_rate,
        loan.term_months,
        loan.upfront_fee,
        loan.fee_mode,
        loan.disbursed_on,
        loan.maturity_date,
        loan.status,
        loan.days_past_due,
        loan.bucket,
        loan.loan_class,
        sum((i.principal - i.principal_paid for i in insts), ZERO),
        sum((i.interest_accrued - i.interest_paid for i in insts), ZERO),
        loan.penalty_accrued - loan.penalty_paid,
        loan.credit_balance,
        loan.credit_line_id,
        tuple(InstallmentView.from_row(i) for i in insts),
    )


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
    _event(session, loan, on, "LoanDisbursed", {"principal": _money(principal)})
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


KEY_REUSED = "idempotency_key: already used with a different request"


def _replayed(session: Session, who: Principal, key_column: Any, key: str | None, digest: str) -> Any:
    """The row this tenant already stored under `key` in `key_column` (a loan's disbursement key or a
    repayment's key), or None; the same key with another request is refused."""
    if key is None:
        return None
    model = key_column.class_
    row = session.execute(
        select(model).where(model.tenant_id == who.tenant_id, key_column == key)
    ).scalar_one_or_none()
    if row is not None and row.request_hash != digest:
        raise ValidationError(KEY_REUSED, field="idempotency_key")
    return row


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
            return _loan_view(existing, _installments(s, existing.id))
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
            return _loan_view(again, _installments(s, again.id))
        audit.record(
            s,
            who,
            "loan.disburse",
            "loan",
            loan.id,
            after={**cmd.body(), "annual_rate": str(rate), "apr": str(apr(schedule))},
        )
        uow.publish(LoanDisbursed(who.tenant_id, loan.id, on, _money(amount)))
        view = _loan_view(loan, _installments(s, loan.id))
        uow.commit()
    return view


def get_loan(uow: UnitOfWork, who: Principal, loan_id: int) -> LoanView:
    who.require(P.VIEW_LOANS)
    with uow:
        loan = _loan(uow.session, who, loan_id)
        return _loan_view(loan, _installments(uow.session, loan.id))


def loan_schedule(uow: UnitOfWork, who: Principal, loan_id: int) -> list[InstallmentView]:
    return list(get_loan(uow, who, loan_id).installments)


@dataclass(frozen=True)
class TransactionView:
    entry_id: int
    business_date: date
    kind: str
    memo: str
    lines: tuple[JournalLine, ...]


def loan_transactions(uow: UnitOfWork, who: Principal, loan_id: int) -> list[TransactionView]:
    """Every journal entry that touched a loan, oldest first."""
    who.require(P.VIEW_LOANS)
    with uow:
        s = uow.session
        _loan(s, who, loan_id)
        rows = s.execute(
            select(JournalEntryRow)
            .where(JournalEntryRow.tenant_id == who.tenant_id, JournalEntryRow.loan_id == loan_id)
            .order_by(JournalEntryRow.id)
        ).scalars()
        return [TransactionView(r.id, r.business_date, r.kind, r.memo, load_entry(s, r.id).lines) for r in rows]


# ------------------------------------------------------------------------------------------ credit lines


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


def _drawn(session: Session, line_id: int) -> Decimal:
    total = session.execute(
        select(func.sum(InstallmentRow.principal - InstallmentRow.principal_paid, type_=Amount()))
        .join(LoanRow, LoanRow.id == InstallmentRow.loan_id)
        .where(LoanRow.credit_line_id == line_id, LoanRow.status == "active")
    ).scalar_one()
    return Decimal(total) if total is not None else ZERO


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
    amount = _cents(limit, "limit")
    with uow:
        s = uow.session
        product = _product_by_code(s, who, product_code)
        if product.method != RepaymentMethod.REVOLVING:
            raise ValidationError("product_code: a credit line needs a revolving product", field="product_code")
        rate = annual_rate if annual_rate is not None else product.annual_rate
        ProductView.from_row(product).to_product().check_offer(amount, months, rate)
        on = _today(s, who)
        row = CreditLineRow(
            tenant_id=who.tenant_id,
            product_id=product.id,
            customer_id=customer_id,
            limit=amount,
            annual_rate=rate,
            opened_on=on,
            expires_on=add_months(on, months),
            status="open",
            created_at=utcnow(),
        )
        s.add(row)
        s.flush()
        audit.record(
            s,
            who,
            "credit_line.open",
            "credit_line",
            row.id,
            after={"limit": _money(amount), "annual_rate": str(rate), "product": product_code},
        )
        view = CreditLineView(
            row.id,
            row.product_id,
            row.customer_id,
            row.limit,
            row.annual_rate,
            row.opened_on,
            row.expires_on,
            row.status,
            ZERO,
        )
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
        s = uow.session
        line = s.execute(
            select(CreditLineRow).where(CreditLineRow.id == line_id).with_for_update()
        ).scalar_one_or_none()
        if line is None or line.tenant_id != who.tenant_id:
            raise NotFound(f"credit line {line_id} not found")
        if line.status != "open":
            raise Conflict(f"credit line {line_id} is {line.status}; only an open line's limit can change")
        product = s.get(ProductRow, line.product_id)
        if product is not None and amount > line.limit and amount > product.max_amount:
            raise ValidationError(
                f"new_limit: above the product's maximum {_money(product.max_amount)}", field="new_limit"
            )
        before = {"limit": _money(line.limit)}
        line.limit = amount
        audit.record(
            s, who, "credit_line.change_limit", "credit_line", line.id, before=before,
            after={"limit": _money(amount)}, reason=reason.strip()[:500],
        )
        view = CreditLineView(
            line.id, line.product_id, line.customer_id, line.limit, line.annual_rate, line.opened_on,
            line.expires_on, line.status, _drawn(s, line.id),
        )
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
        s = uow.session
        existing = _replayed_loan(s, who, key, digest)
        if existing is not None:
            return _loan_view(existing, _installments(s, existing.id))
        line = s.execute(
            select(CreditLineRow)
            .where(CreditLineRow.id == line_id, CreditLineRow.tenant_id == who.tenant_id)
            .with_for_update()
        ).scalar_one_or_none()
        if line is None:
            raise NotFound(f"credit line {line_id} not found")
        on = _today(s, who)
        if line.status != "open" or on >= line.expires_on:
            raise Conflict(f"credit line {line_id} is not open for drawdowns")
        available = line.limit - _drawn(s, line.id)
        if value > available:
            raise ValidationError(f"amount: exceeds the available limit {_money(available)}", field="amount")
        product = s.get(ProductRow, line.product_id)
        assert product is not None
        loan = _new_loan(
            s,
            who,
            product,
            principal=value,
            rate=line.annual_rate,
            term_months=0,
            on=on,
            schedule=None,
            maturity=line.expires_on,
            customer_id=line.customer_id,
            credit_line_id=line.id,
            key=key,
            digest=digest,
        )
        audit.record(
            s, who, "loan.drawdown", "loan", loan.id, after={"credit_line_id": line_id, "amount": _money(value)}
        )
        uow.publish(LoanDisbursed(who.tenant_id, loan.id, on, _money(value)))
        view = _loan_view(loan, _installments(s, loan.id))
        uow.commit()
    return view


# ------------------------------------------------------------------------------------------ repayments


@dataclass(frozen=True)
class RepaymentView:
    id: int
    loan_id: int
    kind: str
    amount: Decimal
    value_date: date
    status: str
    credit: Decimal
    allocation: dict[str, Any]
    journal_entry_id: int
    loan_status: str


def _repayment_view(r: RepaymentRow, loan: LoanRow) -> RepaymentView:
    return RepaymentView(
        r.id,
        r.loan_id,
        r.kind,
        r.amount,
        r.value_date,
        r.status,
        r.credit,
        r.allocation,
        r.journal_entry_id,
        loan.status,
    )


def _require_active(loan: LoanRow) -> None:
    if loan.status != "active":
        raise Conflict(f"loan {loan.id} is {loan.status.replace('_', ' ')}: it takes no repayments")


def current_dues(loan: LoanRow, insts: Sequence[InstallmentRow], on: date, *, everything: bool = False) -> list[Due]:
    """What a payment on ``on`` may settle: penalty, every overdue installment and the current one
    (with ``everything``, every unpaid installment: a payoff)."""
    dues: list[Due] = []
    penalty = loan.penalty_accrued - loan.penalty_paid
    if penalty > 0:
        dues.append(Due(0, Component.PENALTY, penalty, True))
    for inst in insts:
        if inst.status in ("paid", "written_off"):
            continue
        overdue = inst.due_date < on
        for component, owed in (
            (Component.FEE, inst.fee - inst.fee_paid),
            (Component.INTEREST, inst.interest - inst.interest_paid),
            (Component.PRINCIPAL, inst.principal - inst.principal_paid),
        ):
            if owed > 0:
                dues.append(Due(inst.number, component, owed, overdue))
        if not overdue and not everything:
            break  # the current installment; later ones are not due yet
    return dues


def _is_paid(inst: InstallmentRow) -> bool:
    return inst.principal_paid == inst.principal and inst.interest_paid == inst.interest and inst.fee_paid == inst.fee


def _apply(
    loan: LoanRow, insts: Sequence[InstallmentRow], alloc: Allocation, on: date, sign: int = 1
) -> dict[str, Decimal]:
    """Add (or with sign -1 take back) allocated parts on the sub-ledger; returns totals per component."""
    by_number = {i.number: i for i in insts}
    totals = {c.value: ZERO for c in Component}
    for part in alloc.parts:
        amount = part.amount * sign
        totals[part.component.value] += part.amount
        if part.component == Component.PENALTY:
            loan.penalty_paid += amount
            continue
        inst = by_number[part.installment]
        if part.component == Component.PRINCIPAL:
            inst.principal_paid += amount
        elif part.component == Component.INTEREST:
            inst.interest_paid += amount
        else:
            inst.fee_paid += amount
    for inst in insts:
        if inst.status == "written_off":
            continue
        if _is_paid(inst):
            if inst.status != "paid":
                inst.status, inst.paid_on = "paid", on
        elif inst.status == "paid":
            inst.status, inst.paid_on = "pending", None  # close of business marks it overdue again if late
    loan.credit_balance += alloc.credit * sign
    return totals


def _repayment_lines(
    loan: LoanRow,
    amount: Decimal,
    totals: dict[str, Decimal],
    credit_part: Decimal,
    recognised: Decimal,
    source: str = Acct.CASH,
) -> tuple[JournalLine, ...]:
    lid = loan.id
    return (
        debit(source, amount, lid),
        credit(Acct.PENALTY_RECEIVABLE, totals[Component.PENALTY], lid),
        credit(Acct.FEE_INCOME, totals[Component.FEE], lid),
        credit(Acct.INTEREST_RECEIVABLE, totals[Component.INTEREST], lid),
        credit(Acct.LOAN_PRINCIPAL, totals[Component.PRINCIPAL], lid),
        credit(Acct.BORROWER_CREDIT, credit_part, lid),
        debit(Acct.INTEREST_RECEIVABLE, recognised, lid),
        credit(Acct.INTEREST_INCOME, recognised, lid),
    )


def _settle(loan: LoanRow, insts: Sequence[InstallmentRow], on: date) -> list[dict[str, str | int]]:
    """Close a loan with nothing left to pay: interest paid ahead of its accrual is recognised now."""
    if loan.penalty_accrued != loan.penalty_paid or not all(_is_paid(i) for i in insts):
        return []
    recognised: list[dict[str, str | int]] = []
    for inst in insts:
        if inst.interest_accrued < inst.interest:
            recognised.append({"installment": inst.number, "amount": _money(inst.interest - inst.interest_accrued)})
            inst.interest_accrued = inst.interest
    loan.status, loan.closed_on, loan.days_past_due, loan.bucket = "closed", on, 0, "M0"
    return recognised or [{"installment": 0, "amount": "0.00"}]


def _allocation_json(alloc: Allocation, recognised: list[dict[str, str | int]]) -> dict[str, Any]:
    return {
        "parts": [
            {"installment": p.installment, "component": p.component.value, "amount": _money(p.amount)}
            for p in alloc.parts
        ],
        "credit": _money(alloc.credit),
        "recognised": [r for r in recognised if r["installment"] != 0],
        "closed": bool(recognised),
    }


def _allocation_from_json(data: dict[str, Any]) -> Allocation:
    parts = tuple(
        AllocatedPart(int(p["installment"]), Component(p["component"]), Decimal(p["amount"])) for p in data["parts"]
    )
    return Allocation(parts, Decimal(data["credit"]))


def _order(loan: LoanRow) -> tuple[AllocationTarget, ...]:
    return parse_order(loan.allocation_order)


def _post_allocated(
    s: Session,
    who: Principal,
    uow: UnitOfWork,
    loan: LoanRow,
    insts: Sequence[InstallmentRow],
    amount: Decimal,
    on: date,
    kind: str,
    alloc: Allocation,
    *,
    prepaid: Decimal = ZERO,
    recognised_extra: Decimal = ZERO,
    source: str = Acct.CASH,
) -> tuple[JournalEntryRow, dict[str, Any]]:
    totals = _apply(loan, insts, alloc, on)
    totals[Component.PRINCIPAL] += prepaid  # principal the re-amortised schedule no longer owes
    recognised = _settle(loan, insts, on)
    recognised_total = recognised_extra + sum((Decimal(str(r["amount"])) for r in recognised), ZERO)
    entry = post_entry(
        s,
        who,
        on,
        JournalEntry(
            kind,
            _repayment_lines(loan, amount, totals, alloc.credit, recognised_total, source),
            f"{kind} on loan {loan.id}",
            loan.currency,
            loan.id,
        ),
    )
    if recognised:
        _event(s, loan, on, "LoanRepaid")
        uow.publish(LoanRepaid(loan.tenant_id, loan.id, on))
    return entry, _allocation_json(alloc, recognised)


def _replayed_repayment(s: Session, who: Principal, key: str | None, digest: str) -> RepaymentRow | None:
    row: RepaymentRow | None = _replayed(s, who, RepaymentRow.idempotency_key, key, digest)
    return row


def _store_repayment(
    s: Session,
    who: Principal,
    loan: LoanRow,
    *,
    kind: str,
    amount: Decimal,
    on: date,
    key: str | None,
    digest: str,
    entry: JournalEntryRow,
    allocation: dict[str, Any],
    credit_part: Decimal,
) -> RepaymentRow:
    row = RepaymentRow(
        tenant_id=who.tenant_id,
        loan_id=loan.id,
        kind=kind,
        amount=amount,
        value_date=on,
        idempotency_key=key,
        request_hash=digest,
        allocation=allocation,
        credit=credit_part,
        status="posted",
        journal_entry_id=entry.id,
        created_by=who.username,
        created_at=utcnow(),
    )
    try:
        with s.begin_nested():  # the key may have been taken meanwhile by a request on another loan
            s.add(row)
            s.flush()
    except IntegrityError:
        raise ValidationError(KEY_REUSED, field="idempotency_key") from None
    return row


def post_repayment(
    uow: UnitOfWork, who: Principal, loan_id: int, amount: Decimal, *, idempotency_key: str | None = None
) -> RepaymentView:
    """还款 allocate a payment in the product's order and post it; an overpayment is held as credit.

    The same idempotency key with the same request replays the first answer; with another request it is 422."""
    who.require(P.POST_REPAYMENT)
    key = _key(idempotency_key)
    value = _cents(amount, "amount")
    digest = request_hash({"loan_id": loan_id, "amount": str(value), "kind": "repayment"})
    with uow:
        s = uow.session
        loan = _loan(s, who, loan_id, lock=True)  # serialises repayments of one loan
        replay = _replayed_repayment(s, who, key, digest)
        if replay is not None:
            return _repayment_view(replay, loan)
        _require_active(loan)
        on = _today(s, who)
        insts = _installments(s, loan.id)
        alloc = allocate(value, current_dues(loan, insts, on), _order(loan))
        entry, allocation = _post_allocated(s, who, uow, loan, insts, value, on, "repayment", alloc)
        row = _store_repayment(
            s,
            who,
            loan,
            kind="repayment",
            amount=value,
            on=on,
            key=key,
            digest=digest,
            entry=entry,
            allocation=allocation,
            credit_part=alloc.credit,
        )
        uow.publish(RepaymentPosted(who.tenant_id, loan.id, row.id, loan.customer_id, "repayment", value, on))
        audit.record(
            s,
            who,
            "repayment.post",
            "repayment",
            row.id,
            after={"loan_id": loan.id, "amount": _money(value), "allocation": allocation},
        )
        view = _repayment_view(row, loan)
        uow.commit()
    return view


def reverse_repayment(uow: UnitOfWork, who: Principal, repayment_id: int, reason: str) -> RepaymentView:
    """冲正 reverse a repayment with a new reversing entry, then replay the later repayments of the loan
    in order, so the loan ends as if the reversed payment had never been posted."""
    who.require(P.REVERSE_REPAYMENT)
    if not reason.strip():
        raise ValidationError("reason: say why the repayment is reversed", field="reason")
    with uow:
        s = uow.session
        rep = s.execute(
            select(RepaymentRow).where(RepaymentRow.id == repayment_id, RepaymentRow.tenant_id == who.tenant_id)
        ).scalar_one_or_none()
        if rep is None:
            raise NotFound(f"repayment {repayment_id} not found")
        loan = _loan(s, who, rep.loan_id, lock=True)
        if rep.status == "reversed":
            raise Conflict(f"repayment {repayment_id} is already reversed")
        if loan.status == "written_off":
            raise Conflict(f"loan {loan.id} is written off: its repayments can no longer be reversed")
        later = list(
            s.execute(
                select(RepaymentRow)
                .where(RepaymentRow.loan_id == loan.id, RepaymentRow.id > rep.id, RepaymentRow.status == "posted")
                .order_by(RepaymentRow.id)
            ).scalars()
        )
        if any(r.kind != "repayment" for r in [rep, *later]):
            raise Conflict(
                "an early repayment or a credit application changed the loan after this payment: "
                "correct it with a new adjusting payment instead"
            )
        on = _today(s, who)
        insts = _installments(s, loan.id)
        for r in reversed([rep, *later]):  # take back newest first
            _unapply(loan, insts, r.allocation, on)
            original = load_entry(s, r.journal_entry_id)
            reversal = post_entry(
                s,
                who,
                on,
                original.reversal("repayment.reversal", f"reversal of repayment {r.id}: {reason}", r.journal_entry_id),
            )
            if r is rep:
                rep.status, rep.reversal_entry_id = "reversed", reversal.id
        for r in later:  # replay in the original order, each on its own value date
            alloc = allocate(r.amount, current_dues(loan, insts, r.value_date), _order(loan))
            entry, allocation = _post_allocated(s, who, uow, loan, insts, r.amount, on, "repayment.replay", alloc)
            r.allocation, r.journal_entry_id, r.credit = allocation, entry.id, alloc.credit
        _event(s, loan, on, "RepaymentReversed", {"repayment_id": rep.id, "replayed": [r.id for r in later]})
        audit.record(
            s,
            who,
            "repayment.reverse",
            "repayment",
            rep.id,
            reason=reason,
            after={"loan_id": loan.id, "replayed": [r.id for r in later]},
        )
        view = _repayment_view(rep, loan)
        uow.commit()
    return view


def _unapply(loan: LoanRow, insts: Sequence[InstallmentRow], allocation: dict[str, Any], on: date) -> None:
    by_number = {i.number: i for i in insts}
    for r in allocation.get("recognised", []):
        by_number[int(r["installment"])].interest_accrued -= Decimal(r["amount"])
    if allocation.get("closed"):
        loan.status, loan.closed_on = "active", None
    _apply(loan, insts, _allocation_from_json(allocation), on, sign=-1)


def apply_credit_balance(uow: UnitOfWork, who: Principal, loan_id: int) -> RepaymentView:
    """Use the borrower's credit balance (溢缴款) to settle what is due now, in the product's order."""
    who.require(P.POST_REPAYMENT)
    with uow:
        s = uow.session
        loan = _loan(s, who, loan_id, lock=True)
        _require_active(loan)
        if loan.credit_balance <= 0:
            raise Conflict(f"loan {loan.id} has no credit balance")
        on = _today(s, who)
        insts = _installments(s, loan.id)
        dues = current_dues(loan, insts, on)
        owed = sum((d.amount for d in dues), ZERO)
        if owed <= 0:
            raise Conflict(f"loan {loan.id}: nothing is due to apply the credit balance to")
        amount = min(loan.credit_balance, owed)
        alloc = allocate(amount, dues, _order(loan))
        loan.credit_balance -= amount
        entry, allocation = _post_allocated(
            s, who, uow, loan, insts, amount, on, "credit.applied", alloc, source=Acct.BORROWER_CREDIT
        )
        row = _store_repayment(
            s,
            who,
            loan,
            kind="credit_applied",
            amount=amount,
            on=on,
            key=None,
            digest="",
            entry=entry,
            allocation=allocation,
            credit_part=ZERO,
        )
        uow.publish(RepaymentPosted(who.tenant_id, loan.id, row.id, loan.customer_id, "credit_applied", amount, on))
        audit.record(
            s,
            who,
            "repayment.apply_credit",
            "repayment",
            row.id,
            after={"loan_id": loan.id, "amount": _money(amount), "allocation": allocation},
        )
        view = _repayment_view(row, loan)
        uow.commit()
    return view


# ------------------------------------------------------------------------------------------ early repayment


def repay_early(
    uow: UnitOfWork,
    who: Principal,
    loan_id: int,
    *,
    amount: Decimal | None = None,
    mode: PrepaymentMode | str = PrepaymentMode.REDUCE_INSTALLMENT,
    idempotency_key: str | None = None,
) -> RepaymentView:
    """提前还款 full (``amount`` None: pays off everything, interest only to date) or partial on a due date
    (what is due today first, the rest repays principal and the remaining schedule is re-amortised)."""
    who.require(P.POST_REPAYMENT)
    key = _key(idempotency_key)
    mode = PrepaymentMode(mode)
    value = _cents(amount, "amount") if amount is not None else None
    kind = "early_full" if value is None else "early_partial"
    digest = request_hash({"loan_id": loan_id, "amount": str(value), "kind": kind, "mode": mode.value})
    with uow:
        s = uow.session
        loan = _loan(s, who, loan_id, lock=True)
        replay = _replayed_repayment(s, who, key, digest)
        if replay is not None:
            return _repayment_view(replay, loan)
        _require_active(loan)
        product = s.get(ProductRow, loan.product_id)
        if product is not None and not product.early_repayment_allowed:
            raise Conflict(f"loan {loan.id}: its product does not allow early repayment")
        on = _today(s, who)
        insts = _installments(s, loan.id)
        prepaid = recognised_now = ZERO
        if value is None:
            value, recognised_now, extra = _prepare_payoff(loan, insts, on)
            if value <= 0:
                raise Conflict(f"loan {loan.id}: nothing is owed")
            alloc = allocate(value, current_dues(loan, insts, on, everything=True), _order(loan))
        else:
            alloc, prepaid, extra = _prepare_partial(s, loan, insts, on, value, mode)
        entry, allocation = _post_allocated(
            s,
            who,
            uow,
            loan,
            insts,
            value,
            on,
            f"repayment.{kind}",
            alloc,
            prepaid=prepaid,
            recognised_extra=recognised_now,
        )
        allocation.update(extra)
        row = _store_repayment(
            s,
            who,
            loan,
            kind=kind,
            amount=value,
            on=on,
            key=key,
            digest=digest,
            entry=entry,
            allocation=allocation,
            credit_part=alloc.credit,
        )
        _event(s, loan, on, "EarlyRepayment", {"kind": kind, "amount": _money(value)})
        uow.publish(RepaymentPosted(who.tenant_id, loan.id, row.id, loan.customer_id, kind, value, on))
        audit.record(
            s,
            who,
            f"repayment.{kind}",
            "repayment",
            row.id,
            after={"loan_id": loan.id, "amount": _money(value), "mode": mode.value},
        )
        view = _repayment_view(row, loan)
        uow.commit()
    return view


def _prepare_payoff(
    loan: LoanRow, insts: Sequence[InstallmentRow], on: date
) -> tuple[Decimal, Decimal, dict[str, Any]]:
    """Cut the schedule to today: the current period's interest becomes what has accrued up to yesterday,
    later periods lose their interest, and all remaining principal becomes due now."""
    recognised_now = ZERO
    current_found = False
    rescheduled: list[dict[str, Any]] = []
    for inst in insts:
        if inst.status in ("paid", "written_off") or inst.due_date < on:
            continue
        before = inst.interest
        if not current_found and loan.method != RepaymentMethod.REVOLVING:
            to_date = accrued_interest(inst.interest, inst.period_start, inst.due_date, on - timedelta(days=1))
            new_interest = max(to_date, inst.interest_paid, inst.interest_accrued)
            current_found = True
        elif loan.method == RepaymentMethod.REVOLVING:
            new_interest = inst.interest
        else:
            new_interest = max(inst.interest_paid, inst.interest_accrued)
        recognised_now += max(new_interest - inst.interest_accrued, ZERO)
        inst.interest = new_interest
        inst.interest_accrued = max(inst.interest_accrued, new_interest)
        inst.due_date, inst.due_day = on, on.toordinal()
        if inst.period_start > on:
            inst.period_start, inst.start_day = on, on.toordinal()
        rescheduled.append({"installment": inst.number, "interest_before": _money(before)})
    owed = (loan.penalty_accrued - loan.penalty_paid) + sum(
        (
            i.principal - i.principal_paid + i.interest - i.interest_paid + i.fee - i.fee_paid
            for i in insts
            if i.status not in ("paid", "written_off")
        ),
        ZERO,
    )
    return owed, recognised_now, {"recognised_now": _money(recognised_now), "rescheduled": rescheduled}


def _prepare_partial(
    s: Session, loan: LoanRow, insts: list[InstallmentRow], on: date, value: Decimal, mode: PrepaymentMode
) -> tuple[Allocation, Decimal, dict[str, Any]]:
    """Partial prepayment on a due date: settle everything due today, then re-amortise the rest."""
    if loan.method == RepaymentMethod.REVOLVING:
        raise ValidationError("amount: a revolving drawdown is repaid with an ordinary repayment", field="amount")
    today = next((i for i in insts if i.due_date == on), None)
    if today is None:
        nxt = next((i.due_date for i in insts if i.due_date > on), None)
        raise ValidationError(
            f"value_date: a partial early repayment is taken on a due date (next: {nxt})", field="value_date"
        )
    dues = current_dues(loan, insts, on)
    owed_today = sum((d.amount for d in dues), ZERO)
    later = [i for i in insts if i.number > today.number]
    outstanding_after = sum((i.principal - i.principal_paid for i in later), ZERO)
    prepaid = value - owed_today
    if prepaid <= 0:
        raise ValidationError(f"amount: must exceed what is due today ({_money(owed_today)})", field="amount")
    if prepaid >= outstanding_after:
        raise ValidationError("amount: covers the whole loan; use a full early repayment", field="amount")
    if any(i.interest_accrued or i.principal_paid or i.interest_paid or i.fee_paid for i in later):
        raise Conflict(f"loan {loan.id}: later installments already accrued or were paid")
    alloc = allocate(owed_today, dues, _order(loan)) if owed_today > 0 else Allocation((), ZERO)
    old = [
        {
            "installment": i.number,
            "due_date": i.due_date.isoformat(),
            "principal": _money(i.principal),
            "interest": _money(i.interest),
        }
        for i in later
    ]
    rows = reamortise(
        outstanding_after - prepaid,
        loan.annual_rate,
        loan.method,
        [i.due_date for i in later],
        today.due_date,
        mode,
        first_number=today.number + 1,
        current_payment=later[0].principal + later[0].interest,
        current_principal_part=later[0].principal,
        currency=loan.currency,
    )
    for inst in later:
        s.delete(inst)
    s.flush()
    new_rows = [
        _installment_row(loan, r.number, r.period_start, r.due_date, r.principal, r.interest, r.fee) for r in rows
    ]
    s.add_all(new_rows)
    s.flush()
    insts[:] = [i for i in insts if i.number <= today.number] + new_rows
    loan.maturity_date = new_rows[-1].due_date if new_rows else today.due_date
    return alloc, prepaid, {"prepaid_principal": _money(prepaid), "mode": mode.value, "replaced_schedule": old}


# ------------------------------------------------------------------------------------------ write-off


def write_off(uow: UnitOfWork, who: Principal, loan_id: int, reason: str) -> LoanView:
    """核销 remove an uncollectable loan from the books: its receivables go to write-off expense."""
    who.require(P.WRITE_OFF)
    if not reason.strip():
        raise ValidationError("reason: say why the loan is written off", field="reason")
    with uow:
        s = uow.session
        loan = _loan(s, who, loan_id, lock=True)
        _require_active(loan)
        on = _today(s, who)
        insts = _installments(s, loan.id)
        principal = sum((i.principal - i.principal_paid for i in insts), ZERO)
        interest = sum((i.interest_accrued - i.interest_paid for i in insts), ZERO)
        penalty = loan.penalty_accrued - loan.penalty_paid
        total = principal + interest + penalty
        lines = (
            _signed_line(Acct.WRITE_OFF_EXPENSE, total, loan.id),
            credit(Acct.LOAN_PRINCIPAL, principal, loan.id),
            _signed_line(Acct.INTEREST_RECEIVABLE, -interest, loan.id),
            credit(Acct.PENALTY_RECEIVABLE, penalty, loan.id),
        )
        if total != 0:
            post_entry(
                s,
                who,
                on,
                JournalEntry("write_off", lines, f"write-off of loan {loan.id}: {reason}", loan.currency, loan.id),
            )
        for inst in insts:
            if inst.status != "paid" or inst.interest_accrued < inst.interest:
                inst.status = "written_off"
        loan.status, loan.closed_on = "written_off", on
        _event(s, loan, on, "LoanWrittenOff", {"amount": _money(total), "reason": reason})
        audit.record(
            s,
            who,
            "loan.write_off",
            "loan",
            loan.id,
            reason=reason,
            after={"principal": _money(principal), "interest": _money(interest), "penalty": _money(penalty)},
        )
        uow.publish(LoanWrittenOff(who.tenant_id, loan.id, on, _money(total)))
        view = _loan_view(loan, insts)
        uow.commit()
    return view


# ------------------------------------------------------------------------------------------ ledger reports


@dataclass(frozen=True)
class TrialBalanceRow:
    code: str
    name: str
    name_zh: str
    type: str
    debit: Decimal
    credit: Decimal

    @property
    def balance(self) -> Decimal:
        """On the account's normal side: assets/expenses debit minus credit, others the reverse."""
        return natural_balance(self.code, self.debit - self.credit)


@dataclass(frozen=True)
class TrialBalance:
    """试算平衡表 totals per account; the ledger is sound when total debits equal total credits."""

    rows: tuple[TrialBalanceRow, ...]
    total_debit: Decimal
    total_credit: Decimal

    @property
    def balanced(self) -> bool:
        return self.total_debit == self.total_credit


def trial_balance_in(session: Session, tenant_id: int) -> TrialBalance:
    sums = {
        code: (Decimal(d or 0), Decimal(c or 0))
        for code, d, c in session.execute(
            select(JournalLineRow.account_code, func.sum(JournalLineRow.debit), func.sum(JournalLineRow.credit))
            .where(JournalLineRow.tenant_id == tenant_id)
            .group_by(JournalLineRow.account_code)
        )
    }
    accounts = session.execute(
        select(AccountRow).where(AccountRow.tenant_id == tenant_id).order_by(AccountRow.code)
    ).scalars()
    rows = tuple(TrialBalanceRow(a.code, a.name, a.name_zh, a.type, *sums.get(a.code, (ZERO, ZERO))) for a in accounts)
    return TrialBalance(rows, sum((r.debit for r in rows), ZERO), sum((r.credit for r in rows), ZERO))


def trial_balance(uow: UnitOfWork, who: Principal) -> TrialBalance:
    who.require(P.VIEW_LEDGER)
    with uow:
        return trial_balance_in(uow.session, who.tenant_id)


@dataclass(frozen=True)
class ReconciliationRow:
    account: str
    name: str
    general_ledger: Decimal
    sub_ledger: Decimal

    @property
    def difference(self) -> Decimal:
        return self.general_ledger - self.sub_ledger


@dataclass(frozen=True)
class Reconciliation:
    """对账 the loan sub-ledger (installments, penalties, credit balances) against the general ledger."""

    rows: tuple[ReconciliationRow, ...]
    trial_balance_balanced: bool

    @property
    def ok(self) -> bool:
        return self.trial_balance_balanced and all(r.difference == 0 for r in self.rows)


def _dec(value: Any) -> Decimal:
    return ZERO if value is None else Decimal(value)


def reconcile_in(session: Session, tenant_id: int) -> Reconciliation:
    tb = trial_balance_in(session, tenant_id)
    gl = {r.code: r.balance for r in tb.rows}
    open_loans = (LoanRow.tenant_id == tenant_id) & (LoanRow.status != "written_off")
    inst = (
        select(
            func.sum(InstallmentRow.principal - InstallmentRow.principal_paid, type_=Amount()),
            func.sum(InstallmentRow.interest_accrued - InstallmentRow.interest_paid, type_=Amount()),
        )
        .join(LoanRow, LoanRow.id == InstallmentRow.loan_id)
        .where(open_loans)
    )
    principal, interest = session.execute(inst).one()
    penalty = session.execute(
        select(func.sum(LoanRow.penalty_accrued - LoanRow.penalty_paid, type_=Amount())).where(open_loans)
    ).scalar_one()
    credit_total = session.execute(
        select(func.sum(LoanRow.credit_balance)).where(LoanRow.tenant_id == tenant_id)
    ).scalar_one()
    sub = {
        Acct.LOAN_PRINCIPAL: _dec(principal),
        Acct.INTEREST_RECEIVABLE: _dec(interest),
        Acct.PENALTY_RECEIVABLE: _dec(penalty),
        Acct.BORROWER_CREDIT: _dec(credit_total),
    }
    rows = tuple(
        ReconciliationRow(code.value, ACCOUNTS_BY_CODE[code].name, gl.get(code.value, ZERO), value)
        for code, value in sub.items()
    )
    return Reconciliation(rows, tb.balanced)


def reconcile(uow: UnitOfWork, who: Principal) -> Reconciliation:
    who.require(P.VIEW_LEDGER)
    with uow:
        return reconcile_in(uow.session, who.tenant_id)


def list_loans(
    uow: UnitOfWork, who: Principal, *, status: str | None = None, limit: int = 100, offset: int = 0
) -> list[LoanView]:
    who.require(P.VIEW_LOANS)
    with uow:
        s = uow.session
        stmt = select(LoanRow).where(LoanRow.tenant_id == who.tenant_id)
        if status:
            stmt = stmt.where(LoanRow.status == status)
        loans = list(s.execute(stmt.order_by(LoanRow.id).limit(min(limit, 500)).offset(offset)).scalars())
        return [_loan_view(loan, _installments(s, loan.id)) for loan in loans]
