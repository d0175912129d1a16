"""The bank's record of its data partners (联合建模合作方): who the partner is, where its server answers, which
partnership key (by fingerprint only: the key itself stays in its file), which of the partner's features it
covers, for what purpose, on which consent basis, under which contract, valid from when to when (its expiry), and
whether it is active or suspended. A joint model is trained, registered and used online only while its
partnership is active and within its dates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Permission, Principal, Role
from microlend.core.uow import UnitOfWork
from microlend.risk.tables import PartnershipRow

#: who records and changes partnerships: the people who manage the bank's models
MANAGER_ROLES = (Role.RISK_ANALYST, Role.ADMIN)
_FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")
_FEATURE = re.compile(r"^[^\s,;]{1,64}$")
MAX_FEATURES = 200


class PartnershipStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


@dataclass(frozen=True)
class PartnershipCreate:
    name: str
    endpoint_url: str
    key_fingerprint: str
    purpose: str
    contract_ref: str
    valid_from: date
    valid_to: date
    features: tuple[str, ...] = ()
    consent_basis: str = ""


@dataclass(frozen=True)
class Partnership:
    id: int
    name: str
    endpoint_url: str
    key_fingerprint: str
    purpose: str
    contract_ref: str
    valid_from: date
    valid_to: date
    status: str
    status_reason: str
    created_by_name: str
    created_at: datetime
    updated_at: datetime
    features: tuple[str, ...] = ()
    consent_basis: str = ""

    @classmethod
    def from_row(cls, r: PartnershipRow) -> Partnership:
        return cls(r.id, r.name, r.endpoint_url, r.key_fingerprint, r.purpose, r.contract_ref, r.valid_from,
                   r.valid_to, r.status, r.status_reason, r.created_by_name, r.created_at, r.updated_at,
                   tuple(r.features or ()), r.consent_basis or "")

    def usable_on(self, on: date) -> str | None:
        """Why this partnership cannot be used on `on` (None: it can)."""
        if self.status != PartnershipStatus.ACTIVE:
            return f"partnership '{self.name}' is {self.status}"
        if on < self.valid_from:
            return f"partnership '{self.name}' starts on {self.valid_from.isoformat()}"
        if on > self.valid_to:
            return f"partnership '{self.name}' ended on {self.valid_to.isoformat()}"
        return None


def checked(cmd: PartnershipCreate) -> PartnershipCreate:
    """The command with its text trimmed, or a ValidationError naming the first field that is wrong."""
    name = cmd.name.strip()
    if not 1 <= len(name) <= 100:
        raise ValidationError("name: give the partner's name (at most 100 characters)", field="name")
    url = cmd.endpoint_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 300:
        raise ValidationError(f"endpoint_url: '{cmd.endpoint_url}' is not an http(s) URL with a host",
                              field="endpoint_url")
    if parts.username or parts.password:
        raise ValidationError("endpoint_url: no credentials in the URL; the partnership key authenticates",
                              field="endpoint_url")
    fingerprint = cmd.key_fingerprint.strip().lower()
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise ValidationError("key_fingerprint: 16 hexadecimal characters, as `microlend federation keygen` "
                              "prints (never the key itself)", field="key_fingerprint")
    purpose = cmd.purpose.strip()
    if not 1 <= len(purpose) <= 500:
        raise ValidationError("purpose: say what the partner's data is used for (at most 500 characters)",
                              field="purpose")
    contract = cmd.contract_ref.strip()
    if not 1 <= len(contract) <= 100:
        raise ValidationError("contract_ref: give the contract's reference (at most 100 characters)",
                              field="contract_ref")
    if cmd.valid_to < cmd.valid_from:
        raise ValidationError(f"valid_to: {cmd.valid_to.isoformat()} is before valid_from "
                              f"{cmd.valid_from.isoformat()}", field="valid_to")
    features = tuple(dict.fromkeys(f.strip() for f in cmd.features if f.strip()))
    if not 1 <= len(features) <= MAX_FEATURES:
        raise ValidationError(f"features: list the partner's features the partnership covers (1 to {MAX_FEATURES} "
                              "names)", field="features")
    bad = next((f for f in features if not _FEATURE.fullmatch(f)), None)
    if bad is not None:
        raise ValidationError(f"features: '{bad[:70]}' is not a feature name (no spaces, commas or semicolons, "
                              "at most 64 characters)", field="features")
    basis = cmd.consent_basis.strip()
    if not 1 <= len(basis) <= 500:
        raise ValidationError("consent_basis: say on which consent or legal basis the partner's data is used (at "
                              "most 500 characters)", field="consent_basis")
    return PartnershipCreate(name, url, fingerprint, purpose, contract, cmd.valid_from, cmd.valid_to, features,
                             basis)


def _manager(who: Principal) -> None:
    who.require(Permission.APPROVE_MODELS)
    if not who.has_role(*MANAGER_ROLES):
        raise PermissionDenied("partnership: only a risk analyst or an admin records or changes a data partnership")


def _summary(r: PartnershipRow) -> dict[str, Any]:
    return {"name": r.name, "endpoint_url": r.endpoint_url, "key_fingerprint": r.key_fingerprint,
            "purpose": r.purpose, "contract_ref": r.contract_ref, "valid_from": r.valid_from.isoformat(),
            "valid_to": r.valid_to.isoformat(), "features": list(r.features or ()),
            "consent_basis": r.consent_basis or "", "status": r.status}


def _get(session: Session, who: Principal, partnership_id: int) -> PartnershipRow:
    row = session.get(PartnershipRow, partnership_id)
    if row is None or row.tenant_id != who.tenant_id:
        raise NotFound(f"partnership {partnership_id} not found")
    return row


def register_partnership(uow: UnitOfWork, who: Principal, cmd: PartnershipCreate) -> Partnership:
    """Record a new data partner, active from the start (its dates decide when it may be used)."""
    _manager(who)
    cmd = checked(cmd)
    with uow:
        s = uow.session
        clash = s.execute(select(PartnershipRow.id).where(PartnershipRow.tenant_id == who.tenant_id,
                                                          PartnershipRow.name == cmd.name)).first()
        if clash is not None:
            raise Conflict(f"name: a partnership named '{cmd.name}' already exists (id {clash[0]})", field="name")
        now = utcnow()
        row = PartnershipRow(tenant_id=who.tenant_id, name=cmd.name, endpoint_url=cmd.endpoint_url,
                             key_fingerprint=cmd.key_fingerprint, purpose=cmd.purpose, contract_ref=cmd.contract_ref,
                             valid_from=cmd.valid_from, valid_to=cmd.valid_to, features=list(cmd.features),
                             consent_basis=cmd.consent_basis, status=PartnershipStatus.ACTIVE.value,
                             status_reason="", created_by=who.user_id, created_by_name=who.username,
                             created_at=now, updated_at=now)
        s.add(row)
        s.flush()
        audit.record(s, who, "partnership.register", "partnership", row.id, after=_summary(row))
        result = Partnership.from_row(row)
        uow.commit()
    return result


def set_status(uow: UnitOfWork, who: Principal, partnership_id: int, status: str, *, reason: str) -> Partnership:
    """Suspend a partnership (its joint models fall back to the bank's own at once) or make it active again;
    a reason is required and audited."""
    _manager(who)
    try:
        to = PartnershipStatus(status)
    except ValueError:
        raise ValidationError(f"status: must be active or suspended, not '{status}'", field="status") from None
    reason = reason.strip()
    if not 1 <= len(reason) <= 500:
        raise ValidationError("reason: say why the partnership's status changes (at most 500 characters)",
                              field="reason")
    with uow:
        s = uow.session
        row = _get(s, who, partnership_id)
        if row.status == to.value:
            raise Conflict(f"status: partnership {row.id} is already {to.value}", field="status")
        before = _summary(row)
        row.status, row.status_reason, row.updated_at = to.value, reason, utcnow()
        s.flush()
        audit.record(s, who, f"partnership.{'suspend' if to == PartnershipStatus.SUSPENDED else 'activate'}",
                     "partnership", row.id, before=before, after=_summary(row), reason=reason)
        result = Partnership.from_row(row)
        uow.commit()
    return result


def get_partnership(uow: UnitOfWork, who: Principal, partnership_id: int) -> Partnership:
    who.require(Permission.VIEW_MODELS)
    with uow:
        return Partnership.from_row(_get(uow.session, who, partnership_id))


def find_partnership(uow: UnitOfWork, who: Principal, name: str) -> Partnership:
    who.require(Permission.VIEW_MODELS)
    with uow:
        row = uow.session.execute(select(PartnershipRow).where(PartnershipRow.tenant_id == who.tenant_id,
                                                               PartnershipRow.name == name.strip())).scalar()
        if row is None:
            raise NotFound(f"partnership '{name}' not found")
        return Partnership.from_row(row)


def list_partnerships(uow: UnitOfWork, who: Principal, *, status: str | None = None) -> list[Partnership]:
    who.require(Permission.VIEW_MODELS)
    if status is not None and status not in set(PartnershipStatus):
        raise ValidationError(f"status: must be active or suspended, not '{status}'", field="status")
    with uow:
        query = select(PartnershipRow).where(PartnershipRow.tenant_id == who.tenant_id)
        if status is not None:
            query = query.where(PartnershipRow.status == status)
        return [Partnership.from_row(r) for r in uow.session.execute(query.order_by(PartnershipRow.id)).scalars()]


def scoring_partners(uow: UnitOfWork, tenant_id: int, on: date) -> list[str]:
    """The names of the bank's partnerships usable on `on`, with which an applicant may consent to be scored
    (what an applicant is told before consenting: the partners' names, nothing else about them)."""
    with uow.read_only():
        rows = uow.session.execute(select(PartnershipRow).where(
            PartnershipRow.tenant_id == tenant_id, PartnershipRow.status == PartnershipStatus.ACTIVE,
        ).order_by(PartnershipRow.name)).scalars()
        return [r.name for r in rows if Partnership.from_row(r).usable_on(on) is None]


def partnership_for_scoring(uow: UnitOfWork, who: Principal, partnership_id: int) -> Partnership | None:
    """The partnership a joint model scores under, for the one scoring (None when the bank has no such one)."""
    who.require(Permission.SCORE)
    with uow:
        row = uow.session.get(PartnershipRow, partnership_id)
        return None if row is None or row.tenant_id != who.tenant_id else Partnership.from_row(row)


def partnership_for_training(uow: UnitOfWork, who: Principal, name: str, *, on: date, key_fingerprint: str,
                             endpoint_url: str) -> Partnership:
    """The partnership a joint training runs under, or a Conflict saying why none may run: not recorded, suspended,
    not yet started or expired, another key, another server."""
    who.require(Permission.TRAIN_MODELS)
    partnership = find_partnership(uow, who, name)
    why_not = partnership.usable_on(on)
    if why_not:
        raise Conflict(f"partnership: {why_not}; no joint training under it", field="partnership")
    if partnership.key_fingerprint != key_fingerprint:
        raise Conflict(f"partnership: '{partnership.name}' holds key {partnership.key_fingerprint}, not "
                       f"{key_fingerprint}; no joint training under another key", field="key-file")
    if partnership.endpoint_url.rstrip("/") != endpoint_url.rstrip("/"):
        raise Conflict(f"partnership: '{partnership.name}' answers at {partnership.endpoint_url}, not "
                       f"{endpoint_url}", field="partner")
    return partnership
