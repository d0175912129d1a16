"""A borrower's authorisations (授权), given by the borrower: in their own signed-in session, or with a
one-time code texted to their registered mobile when an officer assists them. Each consent records the
text version and hash agreed to, the channel and the evidence (session, address, browser, code), and can
be revoked; a revoked consent no longer counts for anything."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Permission, Principal, Role
from microlend.core.tables import TenantRow
from microlend.core.uow import UnitOfWork
from microlend.parties import consent_texts, otp
from microlend.parties.tables import ConsentRow, CustomerRow

#: Scopes a borrower may authorise (授权).
CONSENT_SCOPES = consent_texts.SCOPES
SELF, ASSISTED = "self", "assisted-otp"
#: Channels whose consents count: given by the borrower ("borrower" is the self channel before evidence).
COUNTING_CHANNELS = (SELF, ASSISTED, "borrower")


@dataclass(frozen=True)
class Evidence:
    """Where a request came from: a fingerprint of the signed-in session, the address and the browser."""

    session_id: str = ""
    ip: str = ""
    user_agent: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"session_id": self.session_id[:64], "ip": self.ip[:64], "user_agent": self.user_agent[:300]}


@dataclass(frozen=True)
class Consent:
    id: int
    customer_id: int
    scope: str
    given_at: datetime
    given_by: str
    channel: str
    locale: str
    text_version: str
    text_hash: str
    evidence: dict[str, Any]
    application_id: int | None
    revoked_at: datetime | None
    revoked_by: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.channel in COUNTING_CHANNELS

    @classmethod
    def from_row(cls, r: ConsentRow) -> Consent:
        return cls(r.id, r.customer_id, r.scope, r.granted_at, r.granted_by, r.channel, r.locale, r.text_version,
                   r.text_hash, dict(r.evidence or {}), r.application_id, r.revoked_at, r.revoked_by)


def check_scopes(scopes: Iterable[str]) -> None:
    """Refuse a scope nobody can authorise, naming it and the known ones."""
    unknown = set(scopes) - set(CONSENT_SCOPES)
    if unknown:
        raise ValidationError(f"consents: unknown scope '{sorted(unknown)[0]}' (one of: {', '.join(CONSENT_SCOPES)})",
                              field="consents")


def own_session(who: Principal, customer_id: int) -> bool:
    """The caller is this customer, signed in themselves."""
    return who.has_role(Role.BORROWER) and not otp.is_staff(who) and who.customer_id == customer_id


def _customer(s: Session, who: Principal, customer_id: int) -> CustomerRow:
    row = s.get(CustomerRow, customer_id)
    if row is None or row.tenant_id != who.tenant_id or (
            who.has_role(Role.BORROWER) and not otp.is_staff(who) and who.customer_id != row.id):
        raise NotFound(f"customer {customer_id} not found", field="customer_id")
    return row


def _add(s: Session, who: Principal, customer: CustomerRow, scope: str, *, locale: str, channel: str,
         evidence: dict[str, Any], at: datetime, application_id: int | None = None) -> ConsentRow:
    text = consent_texts.current(scope)
    row = ConsentRow(tenant_id=who.tenant_id, customer_id=customer.id, scope=scope, granted_at=at,
                     granted_by=who.username, channel=channel, application_id=application_id, locale=locale,
                     text_version=text.version, text_hash=text.sha256(locale), evidence=evidence)
    s.add(row)
    if scope == "marketing":
        customer.marketing_consent = True
    s.flush()
    return row


def record_in_session(uow: UnitOfWork, who: Principal, customer_id: int, scopes: Iterable[str], *, locale: str,
                      evidence: Evidence, application_id: int | None = None) -> None:
    """The signed-in borrower agrees to the current text of each scope (e.g. ticking it when applying), inside
    the caller's open unit of work: the caller commits them with what they authorise."""
    chosen = sorted(set(scopes))
    check_scopes(chosen)
    if not own_session(who, customer_id):
        raise PermissionDenied("consents are given by the borrower: in their own session or with a one-time code "
                               "sent to their registered mobile")
    loc = consent_texts.check_locale(locale)
    with uow:
        customer = _customer(uow.session, who, customer_id)
        now = utcnow()
        for scope in chosen:
            _add(uow.session, who, customer, scope, locale=loc, channel=SELF, evidence=evidence.as_dict(), at=now,
                 application_id=application_id)


def request_code(uow: UnitOfWork, who: Principal, customer_id: int, scope: str, *,
                 locale: str = "zh_CN") -> otp.CodeSent:
    """Text the borrower a code to agree to the current text of `scope` (an officer assisting in the field)."""
    text = consent_texts.current(scope)
    loc = consent_texts.check_locale(locale)
    with uow:
        _customer(uow.session, who, customer_id)
        tenant = uow.session.get(TenantRow, who.tenant_id)
        bank = tenant.display_name if tenant is not None else ""
    what = {"zh_CN": f"授权《{text.title['zh_CN']}》（{text.version}）",
            "en": f"giving consent: {text.title['en']} ({text.version})"}
    return otp.send_code(uow, who, customer_id, otp.consent_purpose(scope), what=what, locale=loc, bank=bank,
                         context={"locale": loc, "text_version": text.version, "text_hash": text.sha256(loc)})


def give_consent(uow: UnitOfWork, who: Principal, customer_id: int, scope: str, *, locale: str = "zh_CN",
                 evidence: Evidence | None = None, code: str = "", challenge_id: int | None = None) -> Consent:
    """Record a consent the borrower gives: in their own session, or (staff) with the code texted to them."""
    consent_texts.check_scope(scope)
    loc = consent_texts.check_locale(locale)
    proof: dict[str, Any] = dict((evidence or Evidence()).as_dict())
    with uow:
        _customer(uow.session, who, customer_id)  # another bank's customer is not found, before any code
    if own_session(who, customer_id):
        who.require(Permission.APPLY)
        channel = SELF
    else:
        who.require(Permission.ASSIST_SIGNING)
        accepted = otp.consume_code(uow, who, customer_id, otp.consent_purpose(scope), code, challenge_id)
        loc = str(accepted.context.get("locale", loc))
        if accepted.context.get("text_hash") != consent_texts.current(scope).sha256(loc):
            raise Conflict("the consent text changed after the code was sent; request a new code", field="code")
        channel, proof = ASSISTED, {**accepted.evidence(), "assisted_by": who.username, "officer": proof}
    with uow:
        s = uow.session
        row = _add(s, who, _customer(s, who, customer_id), scope, locale=loc, channel=channel, evidence=proof,
                   at=utcnow())
        audit.record(s, who, "consent.give", "customer", customer_id,
                     after={"scope": scope, "channel": channel, "text_version": row.text_version,
                            "text_hash": row.text_hash, "consent_id": row.id})
        consent = Consent.from_row(row)
        uow.commit()
    return consent


def revoke_consent(uow: UnitOfWork, who: Principal, customer_id: int, scope: str, *,
                   evidence: Evidence | None = None) -> int:
    """撤回授权 the borrower withdraws a consent (themselves, or staff record the borrower's request); every
    active consent of the scope is revoked. Returns how many were."""
    consent_texts.check_scope(scope)
    if not own_session(who, customer_id):
        who.require(Permission.MANAGE_CUSTOMERS)
    with uow:
        s = uow.session
        customer = _customer(s, who, customer_id)
        active = list(s.execute(select(ConsentRow.id).where(
            ConsentRow.tenant_id == who.tenant_id, ConsentRow.customer_id == customer_id, ConsentRow.scope == scope,
            ConsentRow.revoked_at.is_(None))).scalars())
        if not active and not (scope == "marketing" and customer.marketing_consent):
            raise NotFound(f"customer {customer_id} has no consent '{scope}' to revoke", field="scope")
        now = utcnow()
        if active:
            s.execute(update(ConsentRow).where(ConsentRow.id.in_(active)).values(revoked_at=now,
                                                                               revoked_by=who.username))
        if scope == "marketing":
            customer.marketing_consent = False
        audit.record(s, who, "consent.revoke", "customer", customer_id,
                     after={"scope": scope, "consents": active, **(evidence or Evidence()).as_dict()})
        uow.commit()
    return len(active)


def list_consents(uow: UnitOfWork, who: Principal, customer_id: int) -> list[Consent]:
    """A customer's consents, given and revoked, newest first."""
    if not own_session(who, customer_id):
        who.require(Permission.VIEW_CUSTOMERS)
    with uow:
        _customer(uow.session, who, customer_id)
        rows = uow.session.execute(select(ConsentRow).where(
            ConsentRow.tenant_id == who.tenant_id, ConsentRow.customer_id == customer_id)
            .order_by(ConsentRow.id.desc())).scalars()
        return [Consent.from_row(r) for r in rows]
