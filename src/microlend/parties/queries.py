"""Read functions other modules call about customers: views and frames, never rows. Every id is resolved
within the caller's tenant."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, func, select

from microlend.core.errors import NotFound
from microlend.core.identity import Principal, Role
from microlend.core.uow import UnitOfWork
from microlend.parties.tables import CustomerRow, PartyLinkRow

#: Ids per IN (...) list: well below every database's limit on bound parameters.
_CHUNK = 500


@dataclass(frozen=True)
class CustomerView:
    """What another module may know of a customer: no ID number or phone, not even masked."""

    id: int
    kind: str
    name: str
    branch: str
    industry: str
    birth_date: date | None
    officer_user_id: int | None
    marketing_consent: bool
    attributes: dict[str, Any]
    created_at: datetime

    @classmethod
    def from_row(cls, row: CustomerRow) -> CustomerView:
        return cls(row.id, row.kind, row.name, row.branch, row.industry, row.birth_date, row.officer_user_id,
                   bool(row.marketing_consent), dict(row.attributes or {}), row.created_at)


@dataclass(frozen=True)
class ContactCard:
    """How staff reach a customer: masked phone, address and branch."""

    id: int
    name: str
    phone_masked: str
    address: str
    branch: str


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    unique = sorted({int(i) for i in ids})
    for start in range(0, len(unique), _CHUNK):
        yield unique[start : start + _CHUNK]


def _is_borrower(who: Principal) -> bool:
    return who.has_role(Role.BORROWER) and not who.has_role(Role.ADMIN, Role.CREDIT_OFFICER, Role.SYSTEM)


def customer(uow: UnitOfWork, who: Principal, customer_id: int) -> CustomerView:
    """One customer of the caller's bank; a borrower sees only themselves. NotFound names `customer_id`."""
    with uow:
        row = uow.session.get(CustomerRow, customer_id)
        if row is None or row.tenant_id != who.tenant_id or (_is_borrower(who) and who.customer_id != row.id):
            raise NotFound(f"customer {customer_id} not found", field="customer_id")
        return CustomerView.from_row(row)


def customer_names(uow: UnitOfWork, who: Principal, customer_ids: Sequence[int]) -> dict[int, str]:
    """Customer id -> name, for the ids of the caller's bank (others are left out)."""
    names: dict[int, str] = {}
    with uow:
        for chunk in _chunks(customer_ids):
            names.update((int(i), n) for i, n in uow.session.execute(
                select(CustomerRow.id, CustomerRow.name)
                .where(CustomerRow.tenant_id == who.tenant_id, CustomerRow.id.in_(chunk))).all())
    return names


def customer_attributes(uow: UnitOfWork, who: Principal, customer_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Customer id -> stored profile attributes (the credit profile scorecards read)."""
    found: dict[int, dict[str, Any]] = {}
    with uow:
        for chunk in _chunks(customer_ids):
            found.update((int(i), dict(a or {})) for i, a in uow.session.execute(
                select(CustomerRow.id, CustomerRow.attributes)
                .where(CustomerRow.tenant_id == who.tenant_id, CustomerRow.id.in_(chunk))).all())
    return found


def all_customer_attributes(uow: UnitOfWork, who: Principal) -> list[tuple[int, dict[str, Any]]]:
    """Every customer of the caller's bank with its profile attributes, by id."""
    with uow:
        return [(int(i), dict(a or {})) for i, a in uow.session.execute(
            select(CustomerRow.id, CustomerRow.attributes)
            .where(CustomerRow.tenant_id == who.tenant_id).order_by(CustomerRow.id)).all()]


def of_this_bank(uow: UnitOfWork, who: Principal, customer_ids: Sequence[int]) -> set[int]:
    """The ids among `customer_ids` that are customers of the caller's bank (a reference another module was
    handed is resolved here, never taken on trust)."""
    found: set[int] = set()
    with uow:
        for chunk in _chunks(customer_ids):
            found.update(int(i) for i in uow.session.execute(
                select(CustomerRow.id).where(CustomerRow.tenant_id == who.tenant_id, CustomerRow.id.in_(chunk))
            ).scalars())
    return found


def customer_count(uow: UnitOfWork, who: Principal) -> int:
    with uow:
        return int(uow.session.execute(select(func.count()).select_from(CustomerRow)
                                       .where(CustomerRow.tenant_id == who.tenant_id)).scalar_one())


def marketing_consented(uow: UnitOfWork, who: Principal, customer_ids: Sequence[int]) -> set[int]:
    """The ids among `customer_ids` that agreed to marketing (营销授权)."""
    agreed: set[int] = set()
    with uow:
        for chunk in _chunks(customer_ids):
            agreed.update(int(i) for i in uow.session.execute(
                select(CustomerRow.id).where(CustomerRow.tenant_id == who.tenant_id, CustomerRow.id.in_(chunk),
                                             CustomerRow.marketing_consent.is_(True))).scalars())
    return agreed


def contact_cards(uow: UnitOfWork, who: Principal, customer_ids: Sequence[int]) -> dict[int, ContactCard]:
    cards: dict[int, ContactCard] = {}
    with uow:
        for chunk in _chunks(customer_ids):
            for r in uow.session.execute(
                select(CustomerRow.id, CustomerRow.name, CustomerRow.phone_masked, CustomerRow.address,
                       CustomerRow.branch)
                .where(CustomerRow.tenant_id == who.tenant_id, CustomerRow.id.in_(chunk))).all():
                cards[int(r.id)] = ContactCard(int(r.id), r.name, r.phone_masked, r.address, r.branch)
    return cards


def all_customers(uow: UnitOfWork, who: Principal) -> list[CustomerView]:
    """The caller's bank's customers for batch work, by id (no ID number or phone is read)."""
    with uow:
        rows = uow.session.execute(
            select(CustomerRow.id, CustomerRow.kind, CustomerRow.name, CustomerRow.branch, CustomerRow.industry,
                   CustomerRow.birth_date, CustomerRow.officer_user_id, CustomerRow.marketing_consent,
                   CustomerRow.attributes, CustomerRow.created_at)
            .where(CustomerRow.tenant_id == who.tenant_id).order_by(CustomerRow.id)).all()
    return [CustomerView(int(r.id), r.kind, r.name, r.branch, r.industry, r.birth_date, r.officer_user_id,
                         bool(r.marketing_consent), dict(r.attributes or {}), r.created_at) for r in rows]


def ids_in_branch(who: Principal, branch: str) -> Select[int]:
    """The ids of the caller's bank's customers of one branch, as a sub-select for set-based queries."""
    return select(CustomerRow.id).where(CustomerRow.tenant_id == who.tenant_id, CustomerRow.branch == branch)


#: Links are followed until a group has this many customers (a long chain is cut, never followed forever).
MAX_GROUP = 50


def obligor_group(uow: UnitOfWork, who: Principal, customer_id: int) -> list[int]:
    """The customer and everyone linked to them, directly or through other links (关联方, 集团客户), sorted:
    a business, its legal representatives and owners, and their other businesses."""
    group, frontier = {int(customer_id)}, {int(customer_id)}
    with uow:
        while frontier and len(group) < MAX_GROUP:
            rows = uow.session.execute(select(PartyLinkRow.business_id, PartyLinkRow.person_id).where(
                PartyLinkRow.tenant_id == who.tenant_id,
                PartyLinkRow.business_id.in_(frontier) | PartyLinkRow.person_id.in_(frontier))).all()
            found = {int(i) for pair in rows for i in pair} - group
            group |= found
            frontier = found
    return sorted(group)
