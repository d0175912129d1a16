"""Read functions other modules call about customers: views and frames, never rows. Every id is resolved
within the caller's tenant."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import polars as pl
from sqlalchemy import Select, func, select

from microlend.core import crypto
from microlend.core.errors import NotFound
from microlend.core.frames import read_frame
from microlend.core.identity import Principal, Role
from microlend.core.uow import UnitOfWork
from microlend.parties.consents import COUNTING_CHANNELS
from microlend.parties.tables import ConsentRow, CustomerRow, PartyLinkRow

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


@dataclass(frozen=True)
class ContractParty:
    """A customer as named in a contract: ID number and mobile masked."""

    id: int
    kind: str
    name: str
    id_number_masked: str
    phone_masked: str
    address: str


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


def contract_party(uow: UnitOfWork, who: Principal, customer_id: int) -> ContractParty:
    """The customer as a party to a contract (a borrower sees only themselves)."""
    with uow:
        row = uow.session.get(CustomerRow, customer_id)
        if row is None or row.tenant_id != who.tenant_id or (_is_borrower(who) and who.customer_id != row.id):
            raise NotFound(f"customer {customer_id} not found", field="customer_id")
        return ContractParty(row.id, row.kind, row.name, row.id_number_masked, row.phone_masked, row.address)


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


def consented_scopes(uow: UnitOfWork, who: Principal, customer_id: int) -> set[str]:
    """The scopes this customer has authorised (授权) and not revoked, as given by the borrower (in their own
    session or with a one-time code); what a decision may use."""
    with uow:
        return set(uow.session.execute(select(ConsentRow.scope).where(
            ConsentRow.tenant_id == who.tenant_id, ConsentRow.customer_id == customer_id,
            ConsentRow.revoked_at.is_(None), ConsentRow.channel.in_(COUNTING_CHANNELS))).scalars())


def has_consent(uow: UnitOfWork, who: Principal, customer_id: int, scope: str) -> bool:
    """True while the customer's consent to `scope` stands (given by the borrower, not revoked)."""
    return scope in consented_scopes(uow, who, customer_id)


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


def customers_by_id_number(uow: UnitOfWork, who: Principal, id_numbers: Sequence[str]) -> dict[str, int]:
    """The caller's bank's customer for each of these resident IDs or USCCs (as written, compared upper-case
    through the blind index); a number the bank does not know is absent."""
    wanted = {crypto.blind_index(n.strip().upper()): n for n in id_numbers if n.strip()}
    found: dict[str, int] = {}
    with uow:
        indexes = sorted(wanted)
        for start in range(0, len(indexes), 500):
            chunk = indexes[start : start + 500]
            for cid, index in uow.session.execute(select(CustomerRow.id, CustomerRow.id_number_index).where(
                    CustomerRow.tenant_id == who.tenant_id, CustomerRow.id_number_index.in_(chunk))):
                found[wanted[index]] = int(cid)
    return found
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


def query_subject(uow: UnitOfWork, who: Principal, customer_id: int) -> tuple[str, str]:
    """(identifier, kind) to query an external source about the customer: the resident ID of a person or the
    USCC of a business, in clear. Only for a source the borrower authorised (the data gateway checks the
    consent and records the call); never for display."""
    with uow:
        row = uow.session.execute(select(CustomerRow).where(
            CustomerRow.tenant_id == who.tenant_id, CustomerRow.id == customer_id)).scalar_one_or_none()
        if row is None:
            raise NotFound(f"customer {customer_id} not found")
        return crypto.decrypt(row.id_number_enc), row.kind


def obligor_groups(uow: UnitOfWork, who: Principal) -> dict[int, int]:
    """Customer id -> the smallest id of their obligor group (关联方, 集团客户), for every linked customer of the
    caller's bank (a customer not listed is a group of one): `obligor_group` over the whole base at once."""
    with uow:
        links = uow.session.execute(select(PartyLinkRow.business_id, PartyLinkRow.person_id).where(
            PartyLinkRow.tenant_id == who.tenant_id)).all()
    parent: dict[int, int] = {}

    def root(i: int) -> int:
        while parent.setdefault(i, i) != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for business, person in links:
        a, b = root(int(business)), root(int(person))
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {i: root(i) for i in list(parent)}


def customers_with_consent(uow: UnitOfWork, who: Principal, scope: str) -> set[int]:
    """The caller's bank's customers whose consent to `scope` stands (given by the borrower, not revoked):
    `has_consent` over the whole base at once."""
    with uow:
        return {int(c) for c in uow.session.execute(select(ConsentRow.customer_id).where(
            ConsentRow.tenant_id == who.tenant_id, ConsentRow.scope == scope, ConsentRow.revoked_at.is_(None),
            ConsentRow.channel.in_(COUNTING_CHANNELS))).scalars()}


def customer_kinds_and_attributes(uow: UnitOfWork, who: Principal, customer_ids: Sequence[int]
                                  ) -> list[tuple[int, str, dict[str, Any]]]:
    """(id, kind, stored attributes) of these customers of the caller's bank, by id."""
    out: list[tuple[int, str, dict[str, Any]]] = []
    with uow:
        for chunk in _chunks(customer_ids):
            out.extend((int(i), k, dict(a or {})) for i, k, a in uow.session.execute(
                select(CustomerRow.id, CustomerRow.kind, CustomerRow.attributes).where(
                    CustomerRow.tenant_id == who.tenant_id, CustomerRow.id.in_(chunk))))
    return sorted(out)


def subject_indexes(uow: UnitOfWork, who: Principal) -> dict[int, str]:
    """Customer id -> the blind index of their resident ID or USCC (what the data gateway records a call
    about), for every customer of the caller's bank; never the number itself."""
    with uow:
        return {int(i): str(x) for i, x in uow.session.execute(
            select(CustomerRow.id, CustomerRow.id_number_index).where(CustomerRow.tenant_id == who.tenant_id))
            if x}


SUBJECT_INDEXES = {"customer_id": pl.Int64, "subject_index": pl.String}


def subject_index_frame(uow: UnitOfWork, who: Principal, indexes: Sequence[str] | None = None) -> pl.DataFrame:
    """`subject_indexes` as columns (`SUBJECT_INDEXES`), read in one SQL statement: what a whole-book job
    matches the data gateway's records with; with `indexes`, only the customers of those blind indexes (the
    few the gateway holds answers about, not the whole base)."""
    sql = ("SELECT id, id_number_index FROM customers WHERE tenant_id = :tenant "
           "AND id_number_index IS NOT NULL AND id_number_index <> ''")
    params: dict[str, Any] = {"tenant": who.tenant_id}
    with uow:
        s = uow.session
        if indexes is not None:
            if not indexes:
                return pl.DataFrame(schema=SUBJECT_INDEXES)
            if s.get_bind().dialect.name == "postgresql":
                sql += " AND id_number_index = ANY(:indexes)"
                params["indexes"] = list(indexes)
            else:
                sql += " AND id_number_index IN (SELECT value FROM json_each(:indexes))"
                params["indexes"] = json.dumps(list(indexes))
        return read_frame(s, sql, params, SUBJECT_INDEXES)


def officers_of(uow: UnitOfWork, who: Principal, customer_ids: Sequence[int]) -> dict[int, int]:
    """The loan officer in charge of each of these customers that has one, by customer id."""
    found: dict[int, int] = {}
    with uow:
        for chunk in _chunks(customer_ids):
            for cid, officer in uow.session.execute(
                    select(CustomerRow.id, CustomerRow.officer_user_id).where(
                        CustomerRow.tenant_id == who.tenant_id, CustomerRow.id.in_(chunk),
                        CustomerRow.officer_user_id.is_not(None))).all():
                if officer is not None:
                    found[int(cid)] = int(officer)
    return found
