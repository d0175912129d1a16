"""Related parties (关联方): the bank records that a person is a business's legal representative (法定代表人)
or owner (实际控制人); linked customers form one obligor group (集团客户) whose exposure is counted as one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.errors import Conflict, NotFound, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.parties.tables import CustomerRow, PartyLinkRow

LINK_ROLES = ("legal_representative", "owner")


@dataclass(frozen=True)
class PartyLink:
    id: int
    business_id: int
    business_name: str
    person_id: int
    person_name: str
    role: str
    created_at: datetime
    created_by: str


def _customer(uow: UnitOfWork, who: Principal, customer_id: int, field: str) -> CustomerRow:
    row = uow.session.get(CustomerRow, customer_id)
    if row is None or row.tenant_id != who.tenant_id:
        raise NotFound(f"customer {customer_id} not found", field=field)
    return row


def _pair(uow: UnitOfWork, who: Principal, customer_id: int, related_id: int) -> tuple[CustomerRow, CustomerRow]:
    """(business, person) of two customers of the caller's bank, in either order."""
    if customer_id == related_id:
        raise ValidationError("related_customer_id: a customer cannot be linked to itself",
                              field="related_customer_id")
    one = _customer(uow, who, customer_id, "customer_id")
    other = _customer(uow, who, related_id, "related_customer_id")
    kinds = {one.kind, other.kind}
    if kinds != {"business", "person"}:
        raise ValidationError("related_customer_id: a link joins a business and a person (its legal "
                              "representative or owner)", field="related_customer_id")
    return (one, other) if one.kind == "business" else (other, one)


def link(uow: UnitOfWork, who: Principal, customer_id: int, related_id: int, role: str) -> PartyLink:
    """Record that a person is a business's legal representative or owner (one obligor group from now on)."""
    who.require(Permission.MANAGE_CUSTOMERS)
    if role not in LINK_ROLES:
        raise ValidationError(f"role: unknown role '{role}' (one of: {', '.join(LINK_ROLES)})", field="role")
    with uow:
        business, person = _pair(uow, who, customer_id, related_id)
        found = uow.session.execute(select(PartyLinkRow.id).where(
            PartyLinkRow.tenant_id == who.tenant_id, PartyLinkRow.business_id == business.id,
            PartyLinkRow.person_id == person.id)).first()
        if found:
            raise Conflict(f"customers {business.id} and {person.id} are already linked", field="related_customer_id")
        row = PartyLinkRow(tenant_id=who.tenant_id, business_id=business.id, person_id=person.id, role=role,
                           created_at=utcnow(), created_by=who.username)
        uow.session.add(row)
        uow.flush()
        audit.record(uow.session, who, "customer.link", "customer", business.id,
                     after={"business_id": business.id, "person_id": person.id, "role": role})
        result = PartyLink(row.id, business.id, business.name, person.id, person.name, role, row.created_at,
                           row.created_by)
        try:
            uow.commit()
        except IntegrityError:  # a concurrent request recorded the same link first
            raise Conflict(f"customers {business.id} and {person.id} are already linked",
                           field="related_customer_id") from None
    return result


def unlink(uow: UnitOfWork, who: Principal, link_id: int) -> None:
    """Remove a recorded link (the two customers are separate obligors again)."""
    who.require(Permission.MANAGE_CUSTOMERS)
    with uow:
        row = uow.session.get(PartyLinkRow, link_id)
        if row is None or row.tenant_id != who.tenant_id:
            raise NotFound(f"link {link_id} not found")
        audit.record(uow.session, who, "customer.unlink", "customer", row.business_id,
                     before={"business_id": row.business_id, "person_id": row.person_id, "role": row.role})
        uow.session.delete(row)
        uow.commit()


def links_of(uow: UnitOfWork, who: Principal, customer_id: int) -> list[PartyLink]:
    """The links recorded for one customer (as the business or as the person)."""
    who.require(Permission.VIEW_CUSTOMERS)
    with uow:
        _customer(uow, who, customer_id, "customer_id")
        rows = uow.session.execute(select(PartyLinkRow).where(
            PartyLinkRow.tenant_id == who.tenant_id,
            or_(PartyLinkRow.business_id == customer_id, PartyLinkRow.person_id == customer_id))
            .order_by(PartyLinkRow.id)).scalars().all()
        names = dict(uow.session.execute(select(CustomerRow.id, CustomerRow.name).where(
            CustomerRow.tenant_id == who.tenant_id,
            CustomerRow.id.in_({r.business_id for r in rows} | {r.person_id for r in rows}))).tuples().all())
        return [PartyLink(r.id, r.business_id, names.get(r.business_id, ""), r.person_id, names.get(r.person_id, ""),
                          r.role, r.created_at, r.created_by) for r in rows]
