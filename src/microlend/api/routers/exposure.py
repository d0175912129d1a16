"""授信敞口: a customer's exposure and obligor group (related parties), and the bank's lending limits."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from microlend.api.deps import CurrentPrincipal, Id, UnitOfWorkDep
from microlend.api.references import CustomerRef
from microlend.api.routing import api_router
from microlend.api.schemas import DecimalStr, MoneyStr, PublicSchema
from microlend.origination import exposure as svc
from microlend.parties import links

router = api_router(prefix="/api/v1/customers", tags=["customers"])
links_router = api_router(prefix="/api/v1/customer-links", tags=["customers"])
settings_router = api_router(prefix="/api/v1/credit-settings", tags=["credit settings"])


class FiguresPublic(PublicSchema):
    outstanding: MoneyStr
    undrawn: MoneyStr
    offers: MoneyStr
    in_review: MoneyStr
    total: MoneyStr


class ExposurePublic(BaseModel):
    """The obligor group's exposure against its cap (`cap` and `available` are null when no cap applies);
    `borrower` is the customer's own part of it."""

    customer_id: int
    outstanding: MoneyStr
    undrawn: MoneyStr
    offers: MoneyStr
    in_review: MoneyStr
    total: MoneyStr
    cap: MoneyStr | None
    available: MoneyStr | None
    currency: str
    group: list[int]
    borrower: FiguresPublic

    @classmethod
    def of(cls, e: svc.Exposure) -> ExposurePublic:
        g = e.group_figures
        return cls(customer_id=e.customer_id, outstanding=g.outstanding, undrawn=g.undrawn, offers=g.offers,
                   in_review=g.in_review, total=g.total, cap=e.cap, available=e.available, currency=e.currency,
                   group=list(e.group), borrower=FiguresPublic.of(e.borrower))


@router.get("/{customer_id}/exposure")
def customer_exposure(customer_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> ExposurePublic:
    """Outstanding principal, undrawn credit lines, open offers and applications in review of the customer's
    obligor group, the cap (the bank's per-borrower cap and the customer's grade cap) and what is available."""
    return ExposurePublic.of(svc.exposure(uow, who, customer_id))


class LinkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    related_customer_id: CustomerRef
    role: Literal["legal_representative", "owner"]


class LinkPublic(PublicSchema):
    id: int
    business_id: int
    business_name: str
    person_id: int
    person_name: str
    role: str
    created_at: datetime
    created_by: str


@router.get("/{customer_id}/links")
def list_links(customer_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[LinkPublic]:
    return [LinkPublic.of(link) for link in links.links_of(uow, who, customer_id)]


@router.post("/{customer_id}/links", status_code=201)
def create_link(customer_id: Id, body: LinkCreate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> LinkPublic:
    """Record that a person is a business's legal representative or owner: one obligor group for exposure."""
    return LinkPublic.of(links.link(uow, who, customer_id, body.related_customer_id, body.role))


@links_router.delete("/{link_id}", status_code=204)
def delete_link(link_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> Response:
    """Remove a recorded link: the business and the person are separate obligors again."""
    links.unlink(uow, who, link_id)
    return Response(status_code=204)


class CreditSettingsPublic(PublicSchema):
    borrower_exposure_cap: MoneyStr | None
    turnover_multiple: DecimalStr
    debt_to_income_ceiling: DecimalStr
    tax_loan_fraction: DecimalStr
    updated_by: str
    updated_at: datetime | None


class CreditSettingsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    borrower_exposure_cap: Decimal | None = Field(description="the most one obligor group may owe and be offered")
    turnover_multiple: Decimal = Field(description="a business's exposure <= this x its annual turnover")
    debt_to_income_ceiling: Decimal = Field(description="a person's exposure <= this x their annual income")
    tax_loan_fraction: Decimal | None = Field(
        default=None,
        description="a tax-data loan (税贷) <= this share of a year's declared sales (0 < f <= 1); left out: unchanged")

    @field_validator("borrower_exposure_cap", "turnover_multiple", "debt_to_income_ceiling", "tax_loan_fraction",
                     mode="before")
    @classmethod
    def _no_float(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError("send amounts as decimal strings, not floating point")
        return value


@settings_router.get("")
def get_credit_settings(who: CurrentPrincipal, uow: UnitOfWorkDep) -> CreditSettingsPublic:
    return CreditSettingsPublic.of(svc.read_credit_settings(uow, who))


@settings_router.put("")
def put_credit_settings(body: CreditSettingsUpdate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> CreditSettingsPublic:
    """The bank's lending limits, applied to every decision from now on."""
    fraction = body.tax_loan_fraction
    if fraction is None:
        fraction = svc.credit_settings(uow, who).tax_loan_fraction
    settings = svc.CreditSettings(body.borrower_exposure_cap, body.turnover_multiple, body.debt_to_income_ceiling,
                                  tax_loan_fraction=fraction)
    return CreditSettingsPublic.of(svc.update_credit_settings(uow, who, settings))
