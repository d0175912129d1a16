"""Servicing API: products, loans and schedules, idempotent money movements, credit lines, ledger reports and
close of business. Thin: parse, call the service (which authorises), shape the answer; amounts are strings."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from microlend.api.deps import CurrentPrincipal, IdempotencyKey, UnitOfWorkDep
from microlend.core.idempotency import run_idempotent
from microlend.core.money import parse_amount
from microlend.servicing import cob, service
from microlend.servicing.allocation import DEFAULT_ORDER, parse_order
from microlend.servicing.products import Product
from microlend.servicing.schedules import FeeMode, RepaymentMethod

router = APIRouter(prefix="/api/v1", tags=["servicing"])

AmountStr = Annotated[str, Field(min_length=1, max_length=30, description="decimal string, e.g. '888.49'")]


def _m(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


# ------------------------------------------------------------------------------------------ products


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=2, max_length=40)
    name: str = Field(min_length=1, max_length=200)
    name_zh: str = Field(default="", max_length=200)
    method: Literal["equal-installment", "equal-principal", "interest-only", "bullet", "revolving"]
    min_amount: AmountStr
    max_amount: AmountStr
    min_term_months: int = Field(ge=1, le=360)
    max_term_months: int = Field(ge=1, le=360)
    annual_rate: AmountStr
    min_rate: AmountStr | None = None
    max_rate: AmountStr | None = None
    penalty_multiplier: AmountStr = "1.5"
    grace_days: int = Field(default=0, ge=0, le=30)
    upfront_fee_rate: AmountStr = "0"
    fee_mode: Literal["deduct", "first-installment"] = "deduct"
    allocation_order: list[str] = Field(default_factory=lambda: [t.value for t in DEFAULT_ORDER])
    early_repayment_allowed: bool = True

    def to_domain(self) -> Product:
        rate = parse_amount(self.annual_rate, "annual_rate")
        return Product(
            self.code,
            self.name,
            RepaymentMethod(self.method),
            parse_amount(self.min_amount, "min_amount"),
            parse_amount(self.max_amount, "max_amount"),
            self.min_term_months,
            self.max_term_months,
            rate,
            parse_amount(self.min_rate, "min_rate") if self.min_rate else rate,
            parse_amount(self.max_rate, "max_rate") if self.max_rate else rate,
            parse_amount(self.penalty_multiplier, "penalty_multiplier"),
            self.grace_days,
            parse_amount(self.upfront_fee_rate, "upfront_fee_rate"),
            FeeMode(self.fee_mode),
            parse_order(self.allocation_order),
            self.early_repayment_allowed,
            self.name_zh,
        )


class ProductPublic(BaseModel):
    id: int
    code: str
    name: str
    name_zh: str
    method: str
    currency: str
    min_amount: str
    max_amount: str
    min_term_months: int
    max_term_months: int
    annual_rate: str
    min_rate: str
    max_rate: str
    penalty_multiplier: str
    grace_days: int
    upfront_fee_rate: str
    fee_mode: str
    allocation_order: list[str]
    early_repayment_allowed: bool

    @classmethod
    def from_domain(cls, p: service.ProductView) -> ProductPublic:
        return cls(
            id=p.id,
            code=p.code,
            name=p.name,
            name_zh=p.name_zh,
            method=p.method,
            currency=p.currency,
            min_amount=_m(p.min_amount),
            max_amount=_m(p.max_amount),
            min_term_months=p.min_term_months,
            max_term_months=p.max_term_months,
            annual_rate=str(p.annual_rate),
            min_rate=str(p.min_rate),
            max_rate=str(p.max_rate),
            penalty_multiplier=str(p.penalty_multiplier),
            grace_days=p.grace_days,
            upfront_fee_rate=str(p.upfront_fee_rate),
            fee_mode=p.fee_mode,
            allocation_order=p.allocation_order,
            early_repayment_allowed=p.early_repayment_allowed,
        )


@router.get("/products")
def list_products(who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[ProductPublic]:
    return [ProductPublic.from_domain(p) for p in service.list_products(uow, who)]


@router.post("/products", status_code=201)
def create_product(body: ProductCreate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> ProductPublic:
    return ProductPublic.from_domain(service.create_product(uow, who, body.to_domain()))


# ------------------------------------------------------------------------------------------ loans


class InstallmentPublic(BaseModel):
    number: int
    period_start: date
    due_date: date
    principal: str
    interest: str
    fee: str
    payment: str
    principal_paid: str
    interest_paid: str
    fee_paid: str
    interest_accrued: str
    outstanding: str
    status: str

    @classmethod
    def from_domain(cls, i: service.InstallmentView) -> InstallmentPublic:
        return cls(
            number=i.number,
            period_start=i.period_start,
            due_date=i.due_date,
            principal=_m(i.principal),
            interest=_m(i.interest),
            fee=_m(i.fee),
            payment=_m(i.payment),
            principal_paid=_m(i.principal_paid),
            interest_paid=_m(i.interest_paid),
            fee_paid=_m(i.fee_paid),
            interest_accrued=_m(i.interest_accrued),
            outstanding=_m(i.outstanding),
            status=i.status,
        )


class LoanPublic(BaseModel):
    id: int
    product_id: int
    customer_id: int | None
    credit_line_id: int | None
    method: str
    currency: str
    principal: str
    annual_rate: str
    term_months: int
    upfront_fee: str
    fee_mode: str
    disbursed_on: date
    maturity_date: date
    status: str
    days_past_due: int
    bucket: str
    loan_class: str
    outstanding_principal: str
    interest_receivable: str
    penalty_due: str
    credit_balance: str

    @classmethod
    def from_domain(cls, v: service.LoanView) -> LoanPublic:
        return cls(
            id=v.id,
            product_id=v.product_id,
            customer_id=v.customer_id,
            credit_line_id=v.credit_line_id,
            method=v.method,
            currency=v.currency,
            principal=_m(v.principal),
            annual_rate=str(v.annual_rate),
            term_months=v.term_months,
            upfront_fee=_m(v.upfront_fee),
            fee_mode=v.fee_mode,
            disbursed_on=v.disbursed_on,
            maturity_date=v.maturity_date,
            status=v.status,
            days_past_due=v.days_past_due,
            bucket=v.bucket,
            loan_class=v.loan_class,
            outstanding_principal=_m(v.outstanding_principal),
            interest_receivable=_m(v.interest_receivable),
            penalty_due=_m(v.penalty_due),
            credit_balance=_m(v.credit_balance),
        )


class LoanCreate(BaseModel):
    """Staff disbursement (放款) until origination disburses approved applications itself."""

    model_config = ConfigDict(extra="forbid")

    product_code: str = Field(min_length=2, max_length=40)
    principal: AmountStr
    term_months: int = Field(ge=1, le=360)
    annual_rate: AmountStr | None = None
    customer_id: int | None = None
    application_id: int | None = None


class SchedulePublic(BaseModel):
    loan_id: int
    installments: list[InstallmentPublic]
    total_interest: str


class RepaymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: AmountStr


class EarlyRepaymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: AmountStr | None = Field(default=None, description="omit for a full early repayment")
    mode: Literal["reduce-term", "reduce-installment"] = "reduce-installment"


class ReasonBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


class RepaymentPublic(BaseModel):
    id: int
    loan_id: int
    kind: str
    amount: str
    value_date: date
    status: str
    credit: str
    allocation: dict[str, Any]
    journal_entry_id: int
    loan_status: str

    @classmethod
    def from_domain(cls, r: service.RepaymentView) -> RepaymentPublic:
        return cls(
            id=r.id,
            loan_id=r.loan_id,
            kind=r.kind,
            amount=_m(r.amount),
            value_date=r.value_date,
            status=r.status,
            credit=_m(r.credit),
            allocation=r.allocation,
            journal_entry_id=r.journal_entry_id,
            loan_status=r.loan_status,
        )


def _idempotent(
    uow: UnitOfWorkDep, who: CurrentPrincipal, key: str | None, endpoint: str, body: Any, run: Any
) -> JSONResponse:
    """Stripe semantics through the shared idempotency store: one execution per (tenant, key)."""
    status, payload = run_idempotent(
        uow, who.tenant_id, key, endpoint, body, lambda: (201, run().model_dump(mode="json"))
    )
    return JSONResponse(payload, status_code=status)


@router.post("/loans", status_code=201, response_model=LoanPublic)
def disburse(body: LoanCreate, who: CurrentPrincipal, uow: UnitOfWorkDep, key: IdempotencyKey) -> JSONResponse:
    cmd = service.Disbursement(
        body.product_code,
        parse_amount(body.principal, "principal"),
        body.term_months,
        parse_amount(body.annual_rate, "annual_rate") if body.annual_rate else None,
        body.customer_id,
        body.application_id,
        key,
    )
    return _idempotent(
        uow,
        who,
        key,
        "POST /api/v1/loans",
        body.model_dump(),
        lambda: LoanPublic.from_domain(service.disburse(uow, who, cmd)),
    )


@router.get("/loans")
def list_loans(
    who: CurrentPrincipal, uow: UnitOfWorkDep, status: str | None = None, limit: int = 100, offset: int = 0
) -> list[LoanPublic]:
    return [LoanPublic.from_domain(v) for v in service.list_loans(uow, who, status=status, limit=limit, offset=offset)]


@router.get("/loans/{loan_id}")
def get_loan(loan_id: int, who: CurrentPrincipal, uow: UnitOfWorkDep) -> LoanPublic:
    return LoanPublic.from_domain(service.get_loan(uow, who, loan_id))


@router.get("/loans/{loan_id}/schedule")
def get_schedule(loan_id: int, who: CurrentPrincipal, uow: UnitOfWorkDep) -> SchedulePublic:
    rows = service.loan_schedule(uow, who, loan_id)
    return SchedulePublic(
        loan_id=loan_id,
        installments=[InstallmentPublic.from_domain(i) for i in rows],
        total_interest=_m(sum((i.interest for i in rows), Decimal(0))),
    )


@router.get("/loans/{loan_id}/transactions")
def get_transactions(loan_id: int, who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[dict[str, Any]]:
    return [
        {
            "entry_id": t.entry_id,
            "business_date": t.business_date.isoformat(),
            "kind": t.kind,
            "memo": t.memo,
            "lines": [{"account": ln.account, "debit": _m(ln.debit), "credit": _m(ln.credit)} for ln in t.lines],
        }
        for t in service.loan_transactions(uow, who, loan_id)
    ]


@router.post("/loans/{loan_id}/repayments", status_code=201, response_model=RepaymentPublic)
def post_repayment(
    loan_id: int, body: RepaymentCreate, who: CurrentPrincipal, uow: UnitOfWorkDep, key: IdempotencyKey
) -> JSONResponse:
    amount = parse_amount(body.amount, "amount")
    return _idempotent(
        uow,
        who,
        key,
        f"POST /api/v1/loans/{loan_id}/repayments",
        body.model_dump(),
        lambda: RepaymentPublic.from_domain(service.post_repayment(uow, who, loan_id, amount, idempotency_key=key)),
    )


@router.post("/loans/{loan_id}/early-repayments", status_code=201, response_model=RepaymentPublic)
def early_repayment(
    loan_id: int, body: EarlyRepaymentCreate, who: CurrentPrincipal, uow: UnitOfWorkDep, key: IdempotencyKey
) -> JSONResponse:
    amount = parse_amount(body.amount, "amount") if body.amount is not None else None
    return _idempotent(
        uow,
        who,
        key,
        f"POST /api/v1/loans/{loan_id}/early-repayments",
        body.model_dump(),
        lambda: RepaymentPublic.from_domain(
            service.repay_early(uow, who, loan_id, amount=amount, mode=body.mode, idempotency_key=key)
        ),
    )


@router.post("/loans/{loan_id}/credit-applications", status_code=201)
def apply_credit(loan_id: int, who: CurrentPrincipal, uow: UnitOfWorkDep) -> RepaymentPublic:
    """Settle what is due now from the borrower's credit balance."""
    return RepaymentPublic.from_domain(service.apply_credit_balance(uow, who, loan_id))


@router.post("/repayments/{repayment_id}/reversal", status_code=201)
def reverse_repayment(
    repayment_id: int, body: ReasonBody, who: CurrentPrincipal, uow: UnitOfWorkDep
) -> RepaymentPublic:
    return RepaymentPublic.from_domain(service.reverse_repayment(uow, who, repayment_id, body.reason))


@router.post("/loans/{loan_id}/write-off")
def write_off(loan_id: int, body: ReasonBody, who: CurrentPrincipal, uow: UnitOfWorkDep) -> LoanPublic:
    return LoanPublic.from_domain(service.write_off(uow, who, loan_id, body.reason))


# ------------------------------------------------------------------------------------------ credit lines


class CreditLineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_code: str = Field(min_length=2, max_length=40)
    limit: AmountStr
    customer_id: int | None = None
    annual_rate: AmountStr | None = None
    months: int = Field(default=12, ge=1, le=60)


class DrawdownCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: AmountStr


@router.post("/credit-lines", status_code=201)
def open_credit_line(body: CreditLineCreate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> dict[str, Any]:
    line = service.open_credit_line(
        uow,
        who,
        body.product_code,
        parse_amount(body.limit, "limit"),
        customer_id=body.customer_id,
        months=body.months,
        annual_rate=parse_amount(body.annual_rate, "annual_rate") if body.annual_rate else None,
    )
    return {
        "id": line.id,
        "limit": _m(line.limit),
        "annual_rate": str(line.annual_rate),
        "opened_on": line.opened_on.isoformat(),
        "expires_on": line.expires_on.isoformat(),
        "status": line.status,
        "available": _m(line.available),
    }


@router.post("/credit-lines/{line_id}/drawdowns", status_code=201, response_model=LoanPublic)
def draw_down(
    line_id: int, body: DrawdownCreate, who: CurrentPrincipal, uow: UnitOfWorkDep, key: IdempotencyKey
) -> JSONResponse:
    amount = parse_amount(body.amount, "amount")
    return _idempotent(
        uow,
        who,
        key,
        f"POST /api/v1/credit-lines/{line_id}/drawdowns",
        body.model_dump(),
        lambda: LoanPublic.from_domain(service.draw_down(uow, who, line_id, amount, idempotency_key=key)),
    )


# ------------------------------------------------------------------------------------------ ledger and COB


@router.get("/ledger/trial-balance")
def trial_balance(who: CurrentPrincipal, uow: UnitOfWorkDep) -> dict[str, Any]:
    tb = service.trial_balance(uow, who)
    return {
        "accounts": [
            {
                "code": r.code,
                "name": r.name,
                "name_zh": r.name_zh,
                "type": r.type,
                "debit": _m(r.debit),
                "credit": _m(r.credit),
                "balance": _m(r.balance),
            }
            for r in tb.rows
        ],
        "total_debit": _m(tb.total_debit),
        "total_credit": _m(tb.total_credit),
        "balanced": tb.balanced,
    }


@router.get("/ledger/reconciliation")
def reconciliation(who: CurrentPrincipal, uow: UnitOfWorkDep) -> dict[str, Any]:
    r = service.reconcile(uow, who)
    return {
        "accounts": [
            {
                "code": x.account,
                "name": x.name,
                "general_ledger": _m(x.general_ledger),
                "sub_ledger": _m(x.sub_ledger),
                "difference": _m(x.difference),
            }
            for x in r.rows
        ],
        "trial_balance_balanced": r.trial_balance_balanced,
        "ok": r.ok,
    }


class CobRunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    through: date | None = Field(default=None, alias="date", description="close every open date up to this one")


@router.post("/cob/runs", status_code=201)
def run_cob(body: CobRunCreate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> dict[str, Any]:
    results = cob.run_close_of_business(uow, who, through=body.through)
    return {
        "runs": [
            {
                "business_date": r.business_date.isoformat(),
                "loans_active": r.loans_active,
                "interest_accrued": _m(r.interest_accrued),
                "penalty_accrued": _m(r.penalty_accrued),
                "newly_overdue": r.newly_overdue,
                "bucket_changes": r.bucket_changes,
            }
            for r in results
        ]
    }
