"""Servicing API: products, loans and schedules, idempotent money movements, credit lines, ledger reports and
close of business. Thin: parse, call the service (which authorises), shape the answer; amounts are strings."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import Query
from fastapi.responses import JSONResponse
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from microlend.api.deps import CurrentPrincipal, Id, IdempotencyKey, Limit, Offset, UnitOfWorkDep
from microlend.api.references import OptionalApplicationRef, OptionalCustomerRef
from microlend.api.routing import api_router
from microlend.api.schemas import DecimalStr, MoneyStr, PublicSchema
from microlend.core.idempotency import run_idempotent, user_key
from microlend.core.money import parse_amount
from microlend.servicing import cob, cob_engine, provisions, service
from microlend.servicing.allocation import DEFAULT_ORDER, parse_order
from microlend.servicing.products import Product
from microlend.servicing.schedules import FeeMode, RepaymentMethod

router = api_router(prefix="/api/v1", tags=["servicing"])

AmountStr = Annotated[str, Field(min_length=1, max_length=30, description="decimal string, e.g. '888.49'")]


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
    overpayment_tolerance: AmountStr = "0"
    auto_apply_credit: bool = True
    compound_interest: bool = True
    repayment_day: int | None = Field(
        default=None, ge=1, le=28, description="固定还款日: every installment on this day of the month"
    )
    settlement_day: int = Field(default=20, ge=1, le=28, description="revolving: monthly interest settlement day")
    interest_due_days: int = Field(default=1, ge=0, le=30, description="revolving: days from settlement to due")

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
            overpayment_tolerance=parse_amount(self.overpayment_tolerance, "overpayment_tolerance"),
            auto_apply_credit=self.auto_apply_credit,
            compound_interest=self.compound_interest,
            repayment_day=self.repayment_day,
            settlement_day=self.settlement_day,
            interest_due_days=self.interest_due_days,
        )


class ProductUpdate(BaseModel):
    """The terms to change; what is left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    name_zh: str | None = Field(default=None, max_length=200)
    min_amount: AmountStr | None = None
    max_amount: AmountStr | None = None
    min_term_months: int | None = Field(default=None, ge=1, le=360)
    max_term_months: int | None = Field(default=None, ge=1, le=360)
    annual_rate: AmountStr | None = None
    min_rate: AmountStr | None = None
    max_rate: AmountStr | None = None
    penalty_multiplier: AmountStr | None = None
    grace_days: int | None = Field(default=None, ge=0, le=30)
    upfront_fee_rate: AmountStr | None = None
    overpayment_tolerance: AmountStr | None = None
    early_repayment_allowed: bool | None = None
    auto_apply_credit: bool | None = None
    compound_interest: bool | None = None
    repayment_day: int | None = Field(default=None, ge=0, le=28, description="1-28, or 0 for none")
    settlement_day: int | None = Field(default=None, ge=1, le=28)
    interest_due_days: int | None = Field(default=None, ge=0, le=30)
    active: bool | None = None

    def changes(self) -> dict[str, Any]:
        given = self.model_dump(exclude_unset=True, exclude_none=True)
        text = {"name", "name_zh", "min_term_months", "max_term_months", "grace_days", "early_repayment_allowed",
                "auto_apply_credit", "compound_interest", "active", "settlement_day", "interest_due_days"}
        day = given.pop("repayment_day", None)
        changes = {k: v if k in text else parse_amount(v, k) for k, v in given.items()}
        if day is not None:
            changes["repayment_day"] = day or None
        return changes


class ProductPublic(PublicSchema):
    id: int
    code: str
    name: str
    name_zh: str
    method: str
    currency: str
    min_amount: MoneyStr
    max_amount: MoneyStr
    min_term_months: int
    max_term_months: int
    annual_rate: DecimalStr
    min_rate: DecimalStr
    max_rate: DecimalStr
    penalty_multiplier: DecimalStr
    grace_days: int
    upfront_fee_rate: DecimalStr
    fee_mode: str
    allocation_order: list[str]
    early_repayment_allowed: bool
    overpayment_tolerance: MoneyStr
    auto_apply_credit: bool
    compound_interest: bool
    repayment_day: int | None = None
    settlement_day: int
    interest_due_days: int


@router.get("/products")
def list_products(who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[ProductPublic]:
    return [ProductPublic.of(p) for p in service.list_products(uow, who)]


@router.post("/products", status_code=201)
def create_product(body: ProductCreate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> ProductPublic:
    return ProductPublic.of(service.create_product(uow, who, body.to_domain()))


@router.patch("/products/{code}")
def update_product(code: str, body: ProductUpdate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> ProductPublic:
    return ProductPublic.of(service.update_product(uow, who, code, body.changes()))


class RateCapBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rate_cap: AmountStr = Field(description="a yearly rate, e.g. '0.24'; at most the legal line 0.24")


class RateCapPublic(BaseModel):
    rate_cap: DecimalStr


@router.get("/rate-cap")
def get_rate_cap(who: CurrentPrincipal, uow: UnitOfWorkDep) -> RateCapPublic:
    return RateCapPublic(rate_cap=service.rate_cap(uow, who))


@router.put("/rate-cap")
def put_rate_cap(body: RateCapBody, who: CurrentPrincipal, uow: UnitOfWorkDep) -> RateCapPublic:
    return RateCapPublic(rate_cap=service.set_rate_cap(uow, who, parse_amount(body.rate_cap, "rate_cap")))


# ------------------------------------------------------------------------------------------ loans


class InstallmentPublic(PublicSchema):
    number: int
    period_start: date
    due_date: date
    principal: MoneyStr
    interest: MoneyStr
    fee: MoneyStr
    payment: MoneyStr
    principal_paid: MoneyStr
    interest_paid: MoneyStr
    fee_paid: MoneyStr
    interest_accrued: MoneyStr
    outstanding: MoneyStr
    status: str
    days: int = Field(description="days from period start to due date")
    broken_period: bool = Field(description="不足月/超月: not a whole number of months, interest on actual days")


class LoanPublic(PublicSchema):
    id: int
    product_id: int
    customer_id: int | None
    credit_line_id: int | None
    method: str
    currency: str
    principal: MoneyStr
    annual_rate: DecimalStr
    term_months: int
    upfront_fee: MoneyStr
    fee_mode: str
    disbursed_on: date
    maturity_date: date
    status: str
    days_past_due: int
    bucket: str
    loan_class: str
    accrual_status: str = Field(description="accruing | non-accrual (停止计息) | written-off")
    outstanding_principal: MoneyStr
    interest_receivable: MoneyStr
    penalty_due: MoneyStr
    credit_balance: MoneyStr
    deferred_fee: MoneyStr = Field(description="upfront fee not yet recognised (effective-interest method)")


class LoanCreate(BaseModel):
    """A loan booked directly by operations; it is paid out when a second person approves the booking."""

    model_config = ConfigDict(extra="forbid")

    product_code: str = Field(min_length=2, max_length=40)
    principal: AmountStr
    term_months: int = Field(ge=1, le=360)
    annual_rate: AmountStr | None = None
    customer_id: OptionalCustomerRef = None
    application_id: OptionalApplicationRef = None
    repayment_day: int | None = Field(
        default=None, ge=1, le=28,
        description="固定还款日: every installment on this day of the month, the first period broken; "
        "omit for the product's",
    )


class SchedulePublic(BaseModel):
    loan_id: int
    installments: list[InstallmentPublic]
    total_interest: MoneyStr


class TransactionLinePublic(PublicSchema):
    account: str
    debit: MoneyStr
    credit: MoneyStr


class TransactionPublic(PublicSchema):
    entry_id: int
    business_date: date
    kind: str
    memo: str
    lines: list[TransactionLinePublic]


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


class RepaymentPublic(PublicSchema):
    id: int
    loan_id: int
    kind: str
    amount: MoneyStr
    value_date: date
    status: str
    credit: MoneyStr
    allocation: dict[str, Any]
    journal_entry_id: int
    loan_status: str


def _idempotent(
    uow: UnitOfWorkDep, who: CurrentPrincipal, key: str | None, endpoint: str, body: Any, run: Any,
    status_code: int = 201,
) -> JSONResponse:
    """Stripe semantics through the shared idempotency store: one execution per (user, key)."""
    status, payload = run_idempotent(
        uow, who, key, endpoint, body, lambda: (status_code, run().model_dump(mode="json"))
    )
    return JSONResponse(payload, status_code=status)


class BookingPublic(PublicSchema):
    id: int
    kind: str
    product_code: str
    amount: MoneyStr
    term_months: int
    annual_rate: DecimalStr
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


@router.post("/loans", status_code=202, response_model=BookingPublic)
def book_loan(body: LoanCreate, who: CurrentPrincipal, uow: UnitOfWorkDep, key: IdempotencyKey) -> JSONResponse:
    """Book a loan (operations): 202, a pending booking; the money moves when a second person approves it."""
    cmd = service.Disbursement(
        body.product_code,
        parse_amount(body.principal, "principal"),
        body.term_months,
        parse_amount(body.annual_rate, "annual_rate") if body.annual_rate else None,
        body.customer_id,
        body.application_id,
        user_key(who, key),
        body.repayment_day,
    )
    return _idempotent(
        uow,
        who,
        key,
        "POST /api/v1/loans",
        body.model_dump(),
        lambda: BookingPublic.of(service.book_loan(uow, who, cmd)),
        202,
    )


@router.get("/bookings")
def list_bookings(
    who: CurrentPrincipal, uow: UnitOfWorkDep, status: Literal["pending", "approved", "rejected"] | None = None,
    limit: Limit = 100, offset: Offset = 0,
) -> list[BookingPublic]:
    return [BookingPublic.of(b) for b in service.list_bookings(uow, who, status=status, limit=limit, offset=offset)]


@router.get("/bookings/{booking_id}")
def get_booking(booking_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> BookingPublic:
    return BookingPublic.of(service.get_booking(uow, who, booking_id))


@router.post("/bookings/{booking_id}/approval", status_code=201)
def approve_booking(booking_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> BookingPublic:
    """A second person approves the booking: the loan is paid out (or the line opened) now."""
    return BookingPublic.of(service.approve_booking(uow, who, booking_id))


@router.post("/bookings/{booking_id}/rejection", status_code=201)
def reject_booking(booking_id: Id, body: ReasonBody, who: CurrentPrincipal, uow: UnitOfWorkDep) -> BookingPublic:
    return BookingPublic.of(service.reject_booking(uow, who, booking_id, body.reason))


@router.get("/loans")
def list_loans(
    who: CurrentPrincipal, uow: UnitOfWorkDep, status: str | None = None, limit: Limit = 100, offset: Offset = 0
) -> list[LoanPublic]:
    return [LoanPublic.of(v) for v in service.list_loans(uow, who, status=status, limit=limit, offset=offset)]


@router.get("/loans/{loan_id}")
def get_loan(loan_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> LoanPublic:
    return LoanPublic.of(service.get_loan(uow, who, loan_id))


@router.get("/loans/{loan_id}/schedule")
def get_schedule(loan_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> SchedulePublic:
    rows = service.loan_schedule(uow, who, loan_id)
    return SchedulePublic(
        loan_id=loan_id,
        installments=[InstallmentPublic.of(i) for i in rows],
        total_interest=sum((i.interest for i in rows), Decimal(0)),
    )


@router.get("/loans/{loan_id}/transactions")
def get_transactions(loan_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[TransactionPublic]:
    return [TransactionPublic.of(t) for t in service.loan_transactions(uow, who, loan_id)]


@router.post("/loans/{loan_id}/repayments", status_code=201, response_model=RepaymentPublic)
def post_repayment(
    loan_id: Id, body: RepaymentCreate, who: CurrentPrincipal, uow: UnitOfWorkDep, key: IdempotencyKey
) -> JSONResponse:
    amount = parse_amount(body.amount, "amount")
    return _idempotent(
        uow,
        who,
        key,
        f"POST /api/v1/loans/{loan_id}/repayments",
        body.model_dump(),
        lambda: RepaymentPublic.of(
            service.post_repayment(uow, who, loan_id, amount, idempotency_key=user_key(who, key))
        ),
    )


@router.post("/loans/{loan_id}/early-repayments", status_code=201, response_model=RepaymentPublic)
def early_repayment(
    loan_id: Id, body: EarlyRepaymentCreate, who: CurrentPrincipal, uow: UnitOfWorkDep, key: IdempotencyKey
) -> JSONResponse:
    amount = parse_amount(body.amount, "amount") if body.amount is not None else None
    return _idempotent(
        uow,
        who,
        key,
        f"POST /api/v1/loans/{loan_id}/early-repayments",
        body.model_dump(),
        lambda: RepaymentPublic.of(
            service.repay_early(uow, who, loan_id, amount=amount, mode=body.mode,
                               idempotency_key=user_key(who, key))
        ),
    )


@router.post("/loans/{loan_id}/credit-applications", status_code=201)
def apply_credit(loan_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> RepaymentPublic:
    """Settle what is due now from the borrower's credit balance."""
    return RepaymentPublic.of(service.apply_credit_balance(uow, who, loan_id))


@router.post("/repayments/{repayment_id}/reversal", status_code=201)
def reverse_repayment(
    repayment_id: Id, body: ReasonBody, who: CurrentPrincipal, uow: UnitOfWorkDep
) -> RepaymentPublic:
    return RepaymentPublic.of(service.reverse_repayment(uow, who, repayment_id, body.reason))


# ------------------------------------------------------------------------------------------ credit lines


class CreditLineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_code: str = Field(min_length=2, max_length=40)
    limit: AmountStr
    customer_id: OptionalCustomerRef = None
    annual_rate: AmountStr | None = None
    months: int = Field(default=12, ge=1, le=60)


class CreditLinePublic(PublicSchema):
    id: int
    limit: MoneyStr
    annual_rate: DecimalStr
    opened_on: date
    expires_on: date
    status: str
    available: MoneyStr


class DrawdownCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: AmountStr


@router.post("/credit-lines", status_code=202, response_model=BookingPublic)
def book_credit_line(
    body: CreditLineCreate, who: CurrentPrincipal, uow: UnitOfWorkDep, key: IdempotencyKey
) -> JSONResponse:
    """Book a credit line (operations): 202, a pending booking; the line opens when a second person approves."""
    cmd = service.CreditLineBooking(
        body.product_code,
        parse_amount(body.limit, "limit"),
        body.customer_id,
        parse_amount(body.annual_rate, "annual_rate") if body.annual_rate else None,
        body.months,
        key,
    )
    return _idempotent(
        uow, who, key, "POST /api/v1/credit-lines", body.model_dump(),
        lambda: BookingPublic.of(service.book_credit_line(uow, who, cmd)), 202,
    )


@router.post("/credit-lines/{line_id}/drawdowns", status_code=201, response_model=LoanPublic)
def draw_down(
    line_id: Id, body: DrawdownCreate, who: CurrentPrincipal, uow: UnitOfWorkDep, key: IdempotencyKey
) -> JSONResponse:
    amount = parse_amount(body.amount, "amount")
    return _idempotent(
        uow,
        who,
        key,
        f"POST /api/v1/credit-lines/{line_id}/drawdowns",
        body.model_dump(),
        lambda: LoanPublic.of(service.draw_down(uow, who, line_id, amount, idempotency_key=user_key(who, key))),
    )


# ------------------------------------------------------------------------------------------ ledger and COB


class TrialBalanceAccountPublic(PublicSchema):
    code: str
    name: str
    name_zh: str
    type: str
    debit: MoneyStr
    credit: MoneyStr
    balance: MoneyStr


class TrialBalancePublic(PublicSchema):
    accounts: list[TrialBalanceAccountPublic] = Field(validation_alias=AliasChoices("accounts", "rows"))
    total_debit: MoneyStr
    total_credit: MoneyStr
    balanced: bool


class ReconciliationAccountPublic(PublicSchema):
    code: str = Field(validation_alias=AliasChoices("code", "account"))
    name: str
    general_ledger: MoneyStr
    sub_ledger: MoneyStr
    difference: MoneyStr


class ReconciliationPublic(PublicSchema):
    accounts: list[ReconciliationAccountPublic] = Field(validation_alias=AliasChoices("accounts", "rows"))
    trial_balance_balanced: bool
    ok: bool


@router.get("/ledger/trial-balance")
def trial_balance(who: CurrentPrincipal, uow: UnitOfWorkDep) -> TrialBalancePublic:
    return TrialBalancePublic.of(service.trial_balance(uow, who))


@router.get("/ledger/reconciliation")
def reconciliation(who: CurrentPrincipal, uow: UnitOfWorkDep) -> ReconciliationPublic:
    return ReconciliationPublic.of(service.reconcile(uow, who))


class CobRunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    through: date | None = Field(default=None, alias="date", description="close every open date up to this one")


class CobRunPublic(PublicSchema):
    business_date: date
    loans_active: int
    interest_accrued: MoneyStr
    penalty_accrued: MoneyStr
    newly_overdue: int
    bucket_changes: int


class CobRunsPublic(BaseModel):
    runs: list[CobRunPublic]


@router.post("/cob/runs", status_code=201)
def run_cob(body: CobRunCreate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> CobRunsPublic:
    return CobRunsPublic(runs=[CobRunPublic.of(r) for r in cob.run_close_of_business(uow, who, through=body.through)])


class CobEngineBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: str = Field(min_length=1, max_length=40, description="how the nightly close of business runs: "
                        "'database' (in the database, no batch engine), 'local' (DuckDB) or 'spark'")


class CobEnginePublic(BaseModel):
    engine: str = Field(description="'database', 'local' or 'spark'")


@router.get("/cob/engine")
def get_cob_engine(who: CurrentPrincipal, uow: UnitOfWorkDep) -> CobEnginePublic:
    return CobEnginePublic(engine=cob_engine.cob_engine_choice(uow, who))


@router.put("/cob/engine")
def put_cob_engine(body: CobEngineBody, who: CurrentPrincipal, uow: UnitOfWorkDep) -> CobEnginePublic:
    return CobEnginePublic(engine=cob_engine.set_cob_engine(uow, who, body.engine))


class ProvisionRunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    on: date | None = Field(default=None, alias="date", description="booking date (not after the open one)")


class ProvisionRunPublic(PublicSchema):
    id: int
    as_of: date
    loans: int
    total: MoneyStr
    change: MoneyStr
    by_stage: dict[str, MoneyStr]


@router.post("/provisions/runs", status_code=201)
def run_provisions(body: ProvisionRunCreate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> ProvisionRunPublic:
    return ProvisionRunPublic.of(provisions.run_provisioning(uow, who, body.on))


@router.get("/portfolio/report")
def portfolio_report(
    who: CurrentPrincipal, uow: UnitOfWorkDep, on: Annotated[date | None, Query(alias="date")] = None
) -> dict[str, Any]:
    return provisions.portfolio_report(uow, who, on)
