"""Products (贷款产品): the catalogue a bank moves in with, and the products it adds."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.errors import Conflict, NotFound, ValidationError
from microlend.core.identity import Principal
from microlend.core.tables import TenantRow
from microlend.core.uow import UnitOfWork
from microlend.servicing.allocation import parse_order
from microlend.servicing.ledger import CHART_OF_ACCOUNTS
from microlend.servicing.nonaccrual import NonAccrualSettings
from microlend.servicing.products import DEFAULT_RATE_CAP, STANDARD_CATALOGUE, Product
from microlend.servicing.rate_cap import check_cap, check_product_within_cap
from microlend.servicing.repository import bank_nonaccrual, bank_rate_cap, product_terms
from microlend.servicing.schedules import FeeMode, RepaymentMethod
from microlend.servicing.service._common import P, _jsonable
from microlend.servicing.tables import AccountRow, ProductRow, ServicingSettingsRow


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
    overpayment_tolerance: Decimal
    auto_apply_credit: bool
    compound_interest: bool
    repayment_day: int | None = None
    settlement_day: int = 20
    interest_due_days: int = 1

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
            r.overpayment_tolerance,
            bool(r.auto_apply_credit),
            bool(r.compound_interest),
            r.repayment_day,
            r.settlement_day,
            r.interest_due_days,
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
            overpayment_tolerance=self.overpayment_tolerance,
            auto_apply_credit=self.auto_apply_credit,
            compound_interest=self.compound_interest,
            repayment_day=self.repayment_day,
            settlement_day=self.settlement_day,
            interest_due_days=self.interest_due_days,
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
        overpayment_tolerance=p.overpayment_tolerance,
        auto_apply_credit=p.auto_apply_credit,
        compound_interest=p.compound_interest,
        repayment_day=p.repayment_day,
        settlement_day=p.settlement_day,
        interest_due_days=p.interest_due_days,
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
    """A new product, within the bank's rate cap (its rates, penalty rate and APR with fees)."""
    who.require(P.MANAGE_PRODUCTS)
    with uow:
        s = uow.session
        check_product_within_cap(product, bank_rate_cap(s, who.tenant_id))
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


#: What a product update may change (its code, currency and method stay: loans and offers refer to them).
_CHANGEABLE = frozenset(Product.__dataclass_fields__) - {"code", "currency", "method", "extra"} | {"active"}


def update_product(uow: UnitOfWork, who: Principal, code: str, changes: dict[str, Any]) -> ProductView:
    """Change a product's terms (rates, amounts, fees, ...); the result must still be within the rate cap.
    Loans already disbursed keep the terms they were disbursed on."""
    who.require(P.MANAGE_PRODUCTS)
    with uow:
        s = uow.session
        row = s.execute(
            select(ProductRow).where(ProductRow.tenant_id == who.tenant_id, ProductRow.code == code)
        ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"product '{code}' not found")
        before = ProductView.from_row(row)
        fixed = sorted(set(changes) - _CHANGEABLE)
        if fixed:
            raise ValidationError(f"{fixed[0]}: cannot be changed", field=fixed[0])
        active = bool(changes.pop("active", row.active))
        product = replace(before.to_product(), **changes)  # checks the product's own rules
        if active:
            check_product_within_cap(product, bank_rate_cap(s, who.tenant_id))
        updated = _product_row(who.tenant_id, product)
        for column in [c.key for c in ProductRow.__table__.columns]:
            if column not in ("id", "tenant_id", "created_at", "active"):
                setattr(row, column, getattr(updated, column))
        row.active = active
        s.flush()
        view = ProductView.from_row(row)
        audit.record(s, who, "product.update", "product", row.id, before=_jsonable(before), after=_jsonable(view))
        uow.commit()
    return view


def rate_cap(uow: UnitOfWork, who: Principal) -> Decimal:
    """The bank's rate cap (利率上限)."""
    who.require(P.VIEW_LOANS)
    with uow:
        return bank_rate_cap(uow.session, who.tenant_id)


def set_rate_cap(uow: UnitOfWork, who: Principal, cap: Decimal) -> Decimal:
    """Set the bank's own cap, at most the legal line; refused while an offered product prices above it."""
    who.require(P.MANAGE_PRODUCTS)
    cap = check_cap(cap)
    with uow:
        s = uow.session
        before = bank_rate_cap(s, who.tenant_id)
        for row in s.execute(select(ProductRow).where(ProductRow.tenant_id == who.tenant_id,
                                                      ProductRow.active.is_(True))).scalars():
            try:
                check_product_within_cap(product_terms(row).product, cap)
            except ValidationError as e:
                raise ValidationError(f"rate_cap: product {row.code} prices above {cap}: {e}",
                                      field="rate_cap") from None
        settings = s.get(ServicingSettingsRow, who.tenant_id)
        if settings is None:
            settings = ServicingSettingsRow(tenant_id=who.tenant_id, rate_cap=cap, updated_by=who.username,
                                            updated_at=utcnow())
            s.add(settings)
        settings.rate_cap, settings.updated_by, settings.updated_at = cap, who.username, utcnow()
        s.flush()
        audit.record(s, who, "servicing.rate_cap", "tenant", who.tenant_id, before={"rate_cap": str(before)},
                     after={"rate_cap": str(cap)})
        uow.commit()
    return cap


def nonaccrual_settings(uow: UnitOfWork, who: Principal) -> NonAccrualSettings:
    """The bank's non-accrual rule (停止计息): threshold in days past due, NPL trigger, accrued-interest policy."""
    who.require(P.VIEW_LOANS)
    with uow:
        return bank_nonaccrual(uow.session, who.tenant_id)


def set_nonaccrual_settings(uow: UnitOfWork, who: Principal, rule: NonAccrualSettings) -> NonAccrualSettings:
    """Set the bank's non-accrual rule; it applies from the next close of business (loans already
    non-accrual stay so)."""
    who.require(P.MANAGE_PRODUCTS)
    with uow:
        s = uow.session
        before = bank_nonaccrual(s, who.tenant_id)
        settings = s.get(ServicingSettingsRow, who.tenant_id)
        if settings is None:
            settings = ServicingSettingsRow(tenant_id=who.tenant_id, rate_cap=DEFAULT_RATE_CAP,
                                            updated_by=who.username, updated_at=utcnow())
            s.add(settings)
        settings.nonaccrual_days, settings.nonaccrual_on_npl = rule.days, rule.on_npl
        settings.nonaccrual_policy = rule.policy.value
        settings.updated_by, settings.updated_at = who.username, utcnow()
        s.flush()
        audit.record(s, who, "servicing.nonaccrual", "tenant", who.tenant_id, before=_rule_facts(before),
                     after=_rule_facts(rule))
        uow.commit()
    return rule


def _rule_facts(rule: NonAccrualSettings) -> dict[str, Any]:
    return {"nonaccrual_days": rule.days, "nonaccrual_on_npl": rule.on_npl, "nonaccrual_policy": rule.policy.value}


def list_products(uow: UnitOfWork, who: Principal) -> list[ProductView]:
    who.require(P.VIEW_LOANS)
    with uow:
        rows = uow.session.execute(
            select(ProductRow)
            .where(ProductRow.tenant_id == who.tenant_id, ProductRow.active.is_(True))
            .order_by(ProductRow.id)
        ).scalars()
        return [ProductView.from_row(r) for r in rows]
