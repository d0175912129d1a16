"""Customers with KYC: create, read (masked unless revealed and audited), list, update."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from microlend.core import audit, crypto
from microlend.core.clock import utcnow
from microlend.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Permission, Principal, Role
from microlend.core.tenancy import business_date
from microlend.core.uow import UnitOfWork
from microlend.parties.kyc import birth_date_of, validate_mobile, validate_resident_id, validate_uscc
from microlend.parties.tables import CustomerRow

CustomerKind = Literal["person", "business"]
#: Fields a user may change after creation; identity (kind, ID number) is fixed once verified.
UPDATABLE = ("name", "phone", "address", "industry", "branch", "officer_user_id", "marketing_consent",
             "attributes")


@dataclass(frozen=True)
class NewCustomer:
    kind: CustomerKind
    name: str
    id_number: str
    phone: str
    address: str = ""
    industry: str = ""
    branch: str = ""
    officer_user_id: int | None = None
    marketing_consent: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Customer:
    id: int
    kind: str
    name: str
    id_number: str  # masked unless revealed
    phone: str  # masked unless revealed
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
    def from_row(cls, row: CustomerRow, reveal: bool = False) -> Customer:
        return cls(
            id=row.id, kind=row.kind, name=row.name,
            id_number=crypto.decrypt(row.id_number_enc) if reveal else row.id_number_masked,
            phone=crypto.decrypt(row.phone_enc) if reveal else row.phone_masked,
            masked=not reveal, birth_date=row.birth_date, address=row.address, industry=row.industry,
            branch=row.branch, officer_user_id=row.officer_user_id, marketing_consent=row.marketing_consent,
            attributes=dict(row.attributes or {}), created_at=row.created_at, updated_at=row.updated_at,
            version=row.version,
        )


def _public(row: CustomerRow) -> dict[str, Any]:
    """The audit view of a customer: personal data masked, never in clear in the log."""
    return {"kind": row.kind, "name": row.name, "id_number": row.id_number_masked, "phone": row.phone_masked,
            "address": row.address, "industry": row.industry, "branch": row.branch,
            "officer_user_id": row.officer_user_id, "marketing_consent": row.marketing_consent,
            "attributes": row.attributes}


def _validate_identity(kind: str, id_number: str, as_of: date) -> tuple[str, date | None]:
    if kind == "person":
        v = validate_resident_id(id_number, as_of=as_of)
        return v, birth_date_of(v)
    if kind == "business":
        return validate_uscc(id_number), None
    raise ValidationError("kind: must be 'person' or 'business'", field="kind")


def _validate_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise ValidationError("name: must be 1-200 characters", field="name")
    return name


def _get_row(session: Session, who: Principal, customer_id: int) -> CustomerRow:
    row = session.get(CustomerRow, customer_id)
    if row is None or row.tenant_id != who.tenant_id:
        raise NotFound(f"customer {customer_id} not found")
    if who.has_role(Role.BORROWER) and not who.has_role(Role.ADMIN) and who.customer_id != row.id:
        raise NotFound(f"customer {customer_id} not found")
    return row


def add_customer(session: Session, who: Principal, cmd: NewCustomer) -> CustomerRow:
    """Validate and insert inside an open transaction (shared by the use case and bulk seeding)."""
    as_of = business_date(session, who.tenant_id)
    id_number, birth = _validate_identity(cmd.kind, cmd.id_number, as_of)
    phone = validate_mobile(cmd.phone)
    index = crypto.blind_index(id_number)
    dup = session.execute(
        select(CustomerRow.id).where(CustomerRow.tenant_id == who.tenant_id, CustomerRow.id_number_index == index)
    ).first()
    if dup:
        raise Conflict(f"id_number: a customer with this ID number already exists (customer {dup[0]})",
                       field="id_number")
    now = utcnow()
    row = CustomerRow(
        tenant_id=who.tenant_id, kind=cmd.kind, name=_validate_name(cmd.name),
        id_number_enc=crypto.encrypt(id_number), id_number_index=index, id_number_masked=crypto.mask(id_number),
        phone_enc=crypto.encrypt(phone), phone_index=crypto.blind_index(phone), phone_masked=crypto.mask_phone(phone),
        birth_date=birth, address=cmd.address.strip(), industry=cmd.industry.strip(), branch=cmd.branch.strip(),
        officer_user_id=cmd.officer_user_id, marketing_consent=cmd.marketing_consent,
        attributes=dict(cmd.attributes), created_at=now, updated_at=now, version=1,
    )
    session.add(row)
    session.flush()
    return row


def create_customer(uow: UnitOfWork, who: Principal, cmd: NewCustomer) -> Customer:
    who.require(Permission.MANAGE_CUSTOMERS)
    with uow:
        row = add_customer(uow.session, who, cmd)
        audit.record(uow.session, who, "customer.create", "customer", row.id, after=_public(row))
        customer = Customer.from_row(row)
        try:
            uow.commit()
        except IntegrityError:  # a concurrent request inserted the same ID number first
            raise Conflict("id_number: a customer with this ID number already exists", field="id_number") from None
    return customer


def get_customer(uow: UnitOfWork, who: Principal, customer_id: int, reveal: bool = False) -> Customer:
    """Read one customer. Personal data is masked; `reveal` needs VIEW_PERSONAL_DATA and is audited."""
    if not who.has_role(Role.BORROWER):
        who.require(Permission.VIEW_CUSTOMERS)
    if reveal and not who.can(Permission.VIEW_PERSONAL_DATA) and not who.has_role(Role.BORROWER):
        raise PermissionDenied("your roles do not allow viewing unmasked ID numbers and phones")
    with uow:
        row = _get_row(uow.session, who, customer_id)
        customer = Customer.from_row(row, reveal=reveal)
        if reveal:
            audit.record(uow.session, who, "customer.reveal", "customer", row.id,
                         reason="unmasked personal data viewed")
            uow.commit()
    return customer


@dataclass(frozen=True)
class CustomerPage:
    items: list[Customer]
    total: int
    page: int
    page_size: int


def list_customers(
    uow: UnitOfWork, who: Principal, *, page: int = 1, page_size: int = 50, q: str = "",
    kind: str | None = None, max_page_size: int = 200,
) -> CustomerPage:
    who.require(Permission.VIEW_CUSTOMERS)
    if page < 1:
        raise ValidationError("page: must be 1 or more", field="page")
    if not 1 <= page_size <= max_page_size:
        raise ValidationError(f"page_size: must be between 1 and {max_page_size}", field="page_size")
    with uow:
        cond = [CustomerRow.tenant_id == who.tenant_id]
        if kind:
            cond.append(CustomerRow.kind == kind)
        q = q.strip()
        if q:
            alternatives = [CustomerRow.name.contains(q)]
            if q.isdigit() and len(q) == 11:
                alternatives.append(CustomerRow.phone_index == crypto.blind_index(q))
            if len(q) == 18:
                alternatives.append(CustomerRow.id_number_index == crypto.blind_index(q))
            if q.isdigit() and len(q) <= 9:  # a customer number (fits any integer column)
                alternatives.append(CustomerRow.id == int(q))
            cond.append(or_(*alternatives))
        total = uow.session.execute(select(func.count()).select_from(CustomerRow).where(*cond)).scalar_one()
        rows = uow.session.execute(
            select(CustomerRow).where(*cond).order_by(CustomerRow.id.desc())
            .offset((page - 1) * page_size).limit(page_size)
        ).scalars()
        return CustomerPage([Customer.from_row(r) for r in rows], total, page, page_size)


def update_customer(uow: UnitOfWork, who: Principal, customer_id: int, changes: dict[str, Any]) -> Customer:
    who.require(Permission.MANAGE_CUSTOMERS)
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        field_name = sorted(unknown)[0]
        raise ValidationError(f"{field_name}: cannot be changed", field=field_name)
    with uow:
        row = _get_row(uow.session, who, customer_id)
        before = _public(row)
        for key, value in changes.items():
            if value is None and key != "officer_user_id":
                raise ValidationError(f"{key}: cannot be empty", field=key)
            if key == "name":
                row.name = _validate_name(value)
            elif key == "phone":
                phone = validate_mobile(value)
                row.phone_enc, row.phone_index = crypto.encrypt(phone), crypto.blind_index(phone)
                row.phone_masked = crypto.mask_phone(phone)
            elif key == "attributes":
                if not isinstance(value, dict):
                    raise ValidationError("attributes: must be an object", field="attributes")
                row.attributes = {**(row.attributes or {}), **value}
            else:
                setattr(row, key, value.strip() if isinstance(value, str) else value)
        row.updated_at = utcnow()
        row.version += 1
        audit.record(uow.session, who, "customer.update", "customer", row.id, before=before, after=_public(row))
        customer = Customer.from_row(row)
        uow.commit()
    return customer
