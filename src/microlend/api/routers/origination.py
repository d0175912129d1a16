"""Customers API: create, read, list, update. Bodies are separate from tables (Create/Update/Public)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from microlend.api.deps import CurrentPrincipal, Id, Page, PageSize, UnitOfWorkDep, request_evidence
from microlend.api.references import CustomerQuery, CustomerRef, OptionalCampaignRef, OptionalUserRef
from microlend.api.routing import api_router
from microlend.api.schemas import PublicSchema
from microlend.core.errors import Conflict
from microlend.core.identity import Role
from microlend.origination import acceptance
from microlend.origination import service as app_svc
from microlend.parties import customers as svc
from microlend.servicing.apr import apr as schedule_apr

router = api_router(prefix="/api/v1/customers", tags=["customers"])


class CustomerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["person", "business"]
    name: str = Field(min_length=1, max_length=200)
    id_number: str = Field(min_length=1, max_length=40, description="resident ID (person) or USCC (business)")
    phone: str = Field(min_length=1, max_length=20)
    address: str = Field(default="", max_length=300)
    industry: str = Field(default="", max_length=60)
    branch: str = Field(default="", max_length=100)
    officer_user_id: OptionalUserRef = None
    marketing_consent: bool = False
    attributes: dict[str, Any] = Field(default_factory=dict)


class CustomerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    phone: str | None = Field(default=None, min_length=1, max_length=20)
    address: str | None = Field(default=None, max_length=300)
    industry: str | None = Field(default=None, max_length=60)
    branch: str | None = Field(default=None, max_length=100)
    officer_user_id: OptionalUserRef = None
    marketing_consent: bool | None = None
    attributes: dict[str, Any] | None = None


class CustomerPublic(PublicSchema):
    id: int
    kind: str
    name: str
    id_number: str
    phone: str
    masked: bool
    birth_date: date | None
    address: str
    industry: str
    branch: str
    officer_user_id: int | None
    marketing_consent: bool
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    version: int


class CustomerPagePublic(BaseModel):
    items: list[CustomerPublic]
    total: int
    page: int
    page_size: int


@router.post("", status_code=201)
def create_customer(body: CustomerCreate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> CustomerPublic:
    cmd = svc.NewCustomer(**body.model_dump())
    return CustomerPublic.of(svc.create_customer(uow, who, cmd))


@router.get("")
def list_customers(
    request: Request, who: CurrentPrincipal, uow: UnitOfWorkDep,
    page: Page = 1,
    page_size: PageSize = 50,
    q: Annotated[str, Query(max_length=100)] = "",
    kind: Literal["person", "business"] | None = None,
) -> CustomerPagePublic:
    result = svc.list_customers(uow, who, page=page, page_size=page_size, q=q, kind=kind,
                                max_page_size=request.app.state.settings.page_size_max)
    return CustomerPagePublic(items=[CustomerPublic.of(c) for c in result.items], total=result.total,
                              page=result.page, page_size=result.page_size)


@router.get("/{customer_id}")
def get_customer(customer_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep, reveal: bool = False) -> CustomerPublic:
    """Personal data is masked; `?reveal=true` shows it in full to roles allowed, and is audited."""
    return CustomerPublic.of(svc.get_customer(uow, who, customer_id, reveal=reveal))


@router.patch("/{customer_id}")
def update_customer(customer_id: Id, body: CustomerUpdate, who: CurrentPrincipal,
                    uow: UnitOfWorkDep) -> CustomerPublic:
    changes = body.model_dump(exclude_unset=True)
    return CustomerPublic.of(svc.update_customer(uow, who, customer_id, changes))


# --- applications ---------------------------------------------------------------------------------------

applications_router = api_router(prefix="/api/v1/applications", tags=["applications"])


class ApplicationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerRef
    product_code: str = Field(min_length=1, max_length=40)
    amount: Decimal = Field(description="decimal string, e.g. \"50000.00\"")
    term_months: int = Field(ge=1, le=360)
    purpose: str = Field(default="", max_length=200)
    consents: list[Literal["credit_report", "external_data", "marketing", "data_sharing", "partner_scoring"]] = Field(
        default_factory=list, description="scopes the borrower authorises (授权): given here by a borrower "
                                          "applying in their own session; from staff, scopes already given")
    campaign_id: OptionalCampaignRef = None

    @field_validator("amount", mode="before")
    @classmethod
    def _no_float(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError("send amounts as decimal strings, not floating point")
        return value


class DecisionPublic(BaseModel):
    id: int | None
    outcome: str | None
    limit: Decimal | None
    annual_rate: Decimal | None
    apr: Decimal | None
    reasons: list[dict[str, Any]]
    score: Decimal | None
    pd: Decimal | None
    model_version: str
    automatic: bool
    latency_ms: int | None


class OfferPublic(BaseModel):
    amount: Decimal
    annual_rate: Decimal
    apr: Decimal
    penalty_rate: Decimal | None = Field(description="罚息利率: the annual rate on overdue amounts")
    term_months: int
    expires_at: datetime


class ReviewPublic(BaseModel):
    due_at: datetime | None
    overdue: bool
    recommended_by: int | None
    recommendation: str | None
    amount: Decimal | None
    annual_rate: Decimal | None
    notes: str
    field_visit: dict[str, Any]
    approvals: list[int]
    decided_by: str | None


class ApplicationPublic(BaseModel):
    id: int
    customer_id: int
    customer_name: str
    product_code: str
    amount: Decimal
    term_months: int
    purpose: str
    channel: str
    status: str
    branch: str
    submitted_at: datetime
    decision: DecisionPublic
    review: ReviewPublic
    offer: OfferPublic | None
    loan_id: int | None
    credit_line_id: int | None

    @classmethod
    def from_domain(cls, a: app_svc.Application) -> ApplicationPublic:
        borrower_reasons = a.reasons if a.outcome == "approve" else [r for r in a.reasons if r["tellable"]]
        return cls(
            id=a.id, customer_id=a.customer_id, customer_name=a.customer_name, product_code=a.product_code,
            amount=a.amount, term_months=a.term_months, purpose=a.purpose, channel=a.channel, status=a.status,
            branch=a.branch, submitted_at=a.submitted_at,
            decision=DecisionPublic(id=a.decision_id, outcome=a.outcome, limit=a.limit, annual_rate=a.annual_rate,
                                    apr=a.apr, reasons=borrower_reasons if a.automatic else a.reasons,
                                    score=a.score, pd=a.pd, model_version=a.model_version, automatic=a.automatic,
                                    latency_ms=a.decision_ms),
            review=ReviewPublic(due_at=a.review_due_at, overdue=a.overdue_review, recommended_by=a.recommended_by,
                                recommendation=a.recommendation, amount=a.recommended_amount,
                                annual_rate=a.recommended_rate, notes=a.review_notes, field_visit=a.field_visit,
                                approvals=a.approvals, decided_by=a.decided_by),
            offer=OfferPublic(amount=a.offer.amount, annual_rate=a.offer.annual_rate, apr=a.offer.apr,
                              penalty_rate=a.offer.penalty_rate, term_months=a.term_months,
                              expires_at=a.offer.expires_at) if a.offer else None,
            loan_id=a.loan_id, credit_line_id=a.credit_line_id,
        )


class ApplicationPagePublic(BaseModel):
    items: list[ApplicationPublic]
    total: int


class Recommendation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recommendation: Literal["approve", "decline"]
    amount: Decimal | None = None
    annual_rate: Decimal | None = None
    notes: str = Field(default="", max_length=2000)
    field_visit: dict[str, Any] = Field(default_factory=dict,
                                        description="findings of the visit: premises, stock, neighbours' view ...")

    @field_validator("amount", "annual_rate", mode="before")
    @classmethod
    def _no_float(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError("send decimal strings, not floating point")
        return value


class AcceptBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(default="", max_length=12,
                      description="staff assisting the borrower: the one-time code texted to the borrower")
    challenge_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    contract_sha256: str = Field(default="", max_length=64,
                                 description="the borrower: the SHA-256 of the contract they read")


class DeclineBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notes: str = Field(default="", max_length=2000)


class InstallmentPreview(BaseModel):
    number: int
    due_date: date
    principal: Decimal
    interest: Decimal
    fee: Decimal
    payment: Decimal
    balance: Decimal


class SchedulePreview(BaseModel):
    installments: list[InstallmentPreview]
    total_interest: Decimal
    apr: Decimal | None


def _locale(request: Request) -> str:
    lang = request.headers.get("accept-language", "")
    return "en" if lang.lower().startswith("en") else "zh_CN"


@applications_router.post("", status_code=201)
def submit_application(request: Request, body: ApplicationCreate, who: CurrentPrincipal,
                       uow: UnitOfWorkDep) -> ApplicationPublic:
    """Submit and decide at once: a small loan inside the automatic authority is approved or declined with no
    person; a large or unusual one is referred to the review queue."""
    cmd = app_svc.NewApplication(customer_id=body.customer_id, product_code=body.product_code, amount=body.amount,
                                 term_months=body.term_months, purpose=body.purpose, consents=tuple(body.consents),
                                 channel="borrower" if who.has_role(Role.BORROWER) else "api",
                                 campaign_id=body.campaign_id, locale=_locale(request),
                                 evidence=request_evidence(request))
    return ApplicationPublic.from_domain(app_svc.submit(uow, who, cmd))


@applications_router.get("")
def list_applications(
    request: Request, who: CurrentPrincipal, uow: UnitOfWorkDep,
    status: Annotated[list[str] | None, Query()] = None, branch: str | None = None, customer_id: CustomerQuery = None,
    page: Page = 1, page_size: PageSize = 50,
) -> ApplicationPagePublic:
    result = app_svc.list_applications(uow, who, status=status, branch=branch, customer_id=customer_id, page=page,
                                       page_size=page_size, locale=_locale(request))
    return ApplicationPagePublic(items=[ApplicationPublic.from_domain(a) for a in result.items], total=result.total)


@applications_router.get("/{application_id}")
def get_application(request: Request, application_id: Id, who: CurrentPrincipal,
                    uow: UnitOfWorkDep) -> ApplicationPublic:
    return ApplicationPublic.from_domain(app_svc.get(uow, who, application_id, _locale(request)))


@applications_router.get("/{application_id}/schedule")
def offer_schedule(application_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> SchedulePreview:
    """The repayment schedule the open offer would have (a preview before accepting)."""
    sched = app_svc.schedule_preview(uow, who, application_id)
    if sched is None:
        raise Conflict("there is no instalment offer to preview for this application")
    return SchedulePreview(
        installments=[InstallmentPreview(number=i.number, due_date=i.due_date, principal=i.principal,
                                         interest=i.interest, fee=i.fee, payment=i.payment, balance=i.balance)
                      for i in sched.installments],
        total_interest=sched.total_interest, apr=schedule_apr(sched))


@applications_router.post("/{application_id}/recommend")
def recommend(application_id: Id, body: Recommendation, who: CurrentPrincipal,
              uow: UnitOfWorkDep) -> ApplicationPublic:
    return ApplicationPublic.from_domain(app_svc.recommend(
        uow, who, application_id, body.recommendation, body.amount, body.annual_rate, body.notes, body.field_visit))


@applications_router.post("/{application_id}/approve")
def approve(application_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> ApplicationPublic:
    return ApplicationPublic.from_domain(app_svc.approve(uow, who, application_id))


@applications_router.post("/{application_id}/decline")
def decline(application_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep,
            body: DeclineBody | None = None) -> ApplicationPublic:
    return ApplicationPublic.from_domain(app_svc.decline(uow, who, application_id, body.notes if body else ""))


@applications_router.post("/{application_id}/accept")
def accept(request: Request, application_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep,
           body: AcceptBody | None = None) -> ApplicationPublic:
    """The borrower accepts by signing the loan contract: in their own session, or — staff assisting — with
    the one-time code texted to the borrower (without a valid code: 403). Small loans are paid out at once."""
    body = body or AcceptBody()
    return ApplicationPublic.from_domain(acceptance.accept(
        uow, who, application_id, locale=_locale(request), evidence=request_evidence(request), code=body.code,
        challenge_id=body.challenge_id, shown_sha256=body.contract_sha256))


@applications_router.post("/{application_id}/disburse")
def disburse(application_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> ApplicationPublic:
    return ApplicationPublic.from_domain(app_svc.disburse(uow, who, application_id))


@applications_router.post("/{application_id}/withdraw")
def withdraw(application_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> ApplicationPublic:
    return ApplicationPublic.from_domain(app_svc.withdraw(uow, who, application_id))
