"""Customers API: create, read, list, update. Bodies are separate from tables (Create/Update/Public)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from microlend.api.deps import CurrentPrincipal, UnitOfWorkDep
from microlend.origination import customers as svc

router = APIRouter(prefix="/api/v1/customers", tags=["customers"])


class CustomerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["person", "business"]
    name: str = Field(min_length=1, max_length=200)
    id_number: str = Field(min_length=1, max_length=40, description="resident ID (person) or USCC (business)")
    phone: str = Field(min_length=1, max_length=20)
    address: str = Field(default="", max_length=300)
    industry: str = Field(default="", max_length=60)
    branch: str = Field(default="", max_length=100)
    officer_user_id: int | None = None
    marketing_consent: bool = False
    attributes: dict[str, Any] = Field(default_factory=dict)


class CustomerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    phone: str | None = Field(default=None, min_length=1, max_length=20)
    address: str | None = Field(default=None, max_length=300)
    industry: str | None = Field(default=None, max_length=60)
    branch: str | None = Field(default=None, max_length=100)
    officer_user_id: int | None = None
    marketing_consent: bool | None = None
    attributes: dict[str, Any] | None = None


class CustomerPublic(BaseModel):
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

    @classmethod
    def from_domain(cls, c: svc.Customer) -> CustomerPublic:
        return cls(**c.__dict__)


class CustomerPagePublic(BaseModel):
    items: list[CustomerPublic]
    total: int
    page: int
    page_size: int


@router.post("", status_code=201)
def create_customer(body: CustomerCreate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> CustomerPublic:
    cmd = svc.NewCustomer(**body.model_dump())
    return CustomerPublic.from_domain(svc.create_customer(uow, who, cmd))


@router.get("")
def list_customers(
    request: Request, who: CurrentPrincipal, uow: UnitOfWorkDep,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
    q: Annotated[str, Query(max_length=100)] = "",
    kind: Literal["person", "business"] | None = None,
) -> CustomerPagePublic:
    result = svc.list_customers(uow, who, page=page, page_size=page_size, q=q, kind=kind,
                                max_page_size=request.app.state.settings.page_size_max)
    return CustomerPagePublic(items=[CustomerPublic.from_domain(c) for c in result.items], total=result.total,
                              page=result.page, page_size=result.page_size)


@router.get("/{customer_id}")
def get_customer(customer_id: int, who: CurrentPrincipal, uow: UnitOfWorkDep, reveal: bool = False) -> CustomerPublic:
    """Personal data is masked; `?reveal=true` shows it in full to roles allowed, and is audited."""
    return CustomerPublic.from_domain(svc.get_customer(uow, who, customer_id, reveal=reveal))


@router.patch("/{customer_id}")
def update_customer(customer_id: int, body: CustomerUpdate, who: CurrentPrincipal,
                    uow: UnitOfWorkDep) -> CustomerPublic:
    changes = body.model_dump(exclude_unset=True)
    return CustomerPublic.from_domain(svc.update_customer(uow, who, customer_id, changes))
