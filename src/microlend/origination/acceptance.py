"""Accepting an offer is signing its loan contract (签署借款合同), by the borrower: in their own signed-in
session, or — when an officer assists in the field — with a one-time code texted to the borrower's
registered mobile. The signature keeps the document's SHA-256 and the evidence; only then is the money
released (放款)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.errors import Conflict, PermissionDenied
from microlend.core.identity import Permission, Principal, system_principal
from microlend.core.money import round_half_up
from microlend.core.tables import TenantRow
from microlend.core.tenancy import business_date
from microlend.core.uow import UnitOfWork
from microlend.origination import service
from microlend.origination.applications import Status, check_transition
from microlend.origination.contracts import ContractDocument, ContractTerms, Party, contract_number, render_contract
from microlend.origination.tables import ApplicationRow, LoanContractRow
from microlend.parties import otp
from microlend.parties import queries as parties
from microlend.parties.consents import ASSISTED, SELF, Evidence
from microlend.servicing.schedules import RepaymentMethod


@dataclass(frozen=True)
class ContractView:
    """The contract of an application: signed (with its signature) or, while the offer is open, the draft."""

    application_id: int
    borrower: str
    number: str
    status: str  # draft | signed
    locale: str
    document: str
    sha256: str
    signed_at: datetime | None = None
    channel: str | None = None
    signed_by: str | None = None
    evidence: dict[str, Any] | None = None


def _terms(uow: UnitOfWork, row: ApplicationRow, on: date) -> ContractTerms:
    system = system_principal(row.tenant_id, "contracts")
    assert row.offer_amount is not None and row.offer_rate is not None
    product = service._product(uow, row.product_code, row.tenant_id)
    party = parties.contract_party(uow, system, row.customer_id)
    tenant = uow.session.get(TenantRow, row.tenant_id)
    revolving = product.method == RepaymentMethod.REVOLVING
    schedule = None if revolving else service._schedule(product, row.offer_amount, row.offer_rate,
                                                        row.term_months, on)
    return ContractTerms(
        number=contract_number(row.tenant_id, row.id), bank=tenant.display_name if tenant else "",
        borrower=Party(party.name, party.kind, party.id_number_masked, party.phone_masked, party.address),
        application_id=row.id, product_name=product.name, product_name_zh=product.name_zh, method=product.method,
        currency=product.currency, amount=row.offer_amount, term_months=row.term_months,
        annual_rate=row.offer_rate, apr=service.offer_apr(product, row.offer_amount, row.offer_rate,
                                                           row.term_months, on),
        penalty_rate=service.penalty_rate(product, row.offer_rate),
        upfront_fee=round_half_up(row.offer_amount * product.upfront_fee_rate, product.currency),
        fee_mode=str(product.fee_mode), grace_days=product.grace_days,
        early_repayment_allowed=product.early_repayment_allowed, purpose=row.purpose, as_of=on, schedule=schedule)


def _open_offer(row: ApplicationRow, now: datetime) -> None:
    check_transition(Status(row.status), Status.ACCEPTED, "accept the offer")
    if row.offer_expires_at is not None and row.offer_expires_at < now:
        raise Conflict(f"cannot accept: the offer expired on {row.offer_expires_at:%Y-%m-%d %H:%M} UTC")


def _draft(uow: UnitOfWork, row: ApplicationRow, locale: str) -> ContractDocument:
    return render_contract(_terms(uow, row, business_date(uow.session, row.tenant_id)), locale)


def _signed(uow: UnitOfWork, row: ApplicationRow) -> LoanContractRow | None:
    return uow.session.execute(select(LoanContractRow).where(
        LoanContractRow.tenant_id == row.tenant_id, LoanContractRow.application_id == row.id)).scalar_one_or_none()


def contract(uow: UnitOfWork, who: Principal, application_id: int, locale: str = "zh_CN") -> ContractView:
    """The signed contract; while the offer is open, the draft the borrower is asked to sign."""
    if not service._is_borrower(who):
        who.require(Permission.VIEW_APPLICATIONS)
    with uow:
        row = service._application(uow.session, who, application_id)
        signed = _signed(uow, row)
        borrower = parties.customer_names(uow, who, [row.customer_id]).get(row.customer_id, "")
        if signed is not None:
            return ContractView(row.id, borrower, signed.number, "signed", signed.locale, signed.document,
                                signed.sha256, signed.signed_at, signed.channel, signed.signed_by,
                                dict(signed.evidence or {}))
        if row.status != Status.APPROVED or row.offer_amount is None:
            raise Conflict(f"application {application_id} has no contract: it is {row.status}")
        doc = _draft(uow, row, locale)
        return ContractView(row.id, borrower, doc.number, "draft", doc.locale, doc.html, doc.sha256)


def application_customer(uow: UnitOfWork, who: Principal, application_id: int) -> int:
    """The customer an application of the caller's bank belongs to (NotFound otherwise)."""
    if not service._is_borrower(who):
        who.require(Permission.VIEW_APPLICATIONS)
    with uow:
        return service._application(uow.session, who, application_id).customer_id


def request_signing_code(uow: UnitOfWork, who: Principal, application_id: int,
                         locale: str = "zh_CN") -> otp.CodeSent:
    """An officer assisting the borrower asks the bank to text them the code that signs this contract."""
    who.require(Permission.ASSIST_SIGNING)
    with uow:
        row = service._application(uow.session, who, application_id)
        _open_offer(row, utcnow())
        doc = _draft(uow, row, locale)
        customer_id, amount, term = row.customer_id, row.offer_amount, row.term_months
        tenant = uow.session.get(TenantRow, row.tenant_id)
        bank = tenant.display_name if tenant else ""
    what = {"zh_CN": f"签署借款合同{doc.number}，借款金额{amount:,.2f}元，期限{term}个月",
            "en": f"signing loan contract {doc.number} for CNY {amount:,.2f} over {term} months"}
    return otp.send_code(uow, who, customer_id, otp.contract_purpose(doc.number), what=what, locale=doc.locale,
                         bank=bank, context={"locale": doc.locale, "sha256": doc.sha256, "application_id": row.id})


@dataclass(frozen=True)
class _Signing:
    channel: str
    locale: str
    evidence: dict[str, Any]
    challenge_id: int | None = None
    texted_sha256: str | None = None  # the document the code was texted for


def _proof(uow: UnitOfWork, who: Principal, row: ApplicationRow, doc: ContractDocument, evidence: Evidence,
           code: str, challenge_id: int | None, shown_sha256: str) -> _Signing:
    """How the borrower signs: in their own session, or (staff assisting) with the borrower's code."""
    if service._is_borrower(who):
        if shown_sha256 and shown_sha256 != doc.sha256:
            raise Conflict("the contract changed since you read it; read it again before signing")
        return _Signing(SELF, doc.locale, evidence.as_dict())
    who.require(Permission.ASSIST_SIGNING)
    if not code.strip():
        raise PermissionDenied("the borrower signs: in their own session, or give the one-time code texted to "
                               "their registered mobile", field="code")
    accepted = otp.consume_code(uow, who, row.customer_id, otp.contract_purpose(doc.number), code, challenge_id)
    proof = {**accepted.evidence(), "assisted_by": who.username, "officer": evidence.as_dict()}
    return _Signing(ASSISTED, str(accepted.context.get("locale", doc.locale)), proof, accepted.challenge_id,
                    str(accepted.context.get("sha256", "")))


def accept(uow: UnitOfWork, who: Principal, application_id: int, *, locale: str = "zh_CN",
           evidence: Evidence | None = None, code: str = "", challenge_id: int | None = None,
           shown_sha256: str = "") -> service.Application:
    """The borrower accepts the offer by signing its contract before it expires; within the automatic
    authority the money is paid out at once (放款), above it staff release it."""
    who.require(Permission.APPLY)
    evidence = evidence or Evidence()
    with uow:
        row = service._application(uow.session, who, application_id)
        _open_offer(row, utcnow())
        doc = _draft(uow, row, locale)
    signing = _proof(uow, who, row, doc, evidence, code, challenge_id, shown_sha256)
    with uow:
        s = uow.session
        row = service._application(s, who, application_id, lock=True)
        before = service._audit_view(row)
        now = utcnow()
        _open_offer(row, now)
        doc = _draft(uow, row, signing.locale)
        if signing.texted_sha256 is not None and signing.texted_sha256 != doc.sha256:
            # the code was texted for one exact document; one that changed since (the business date moved)
            raise Conflict("the contract changed since the code was sent; request a new code", field="code")
        signature = LoanContractRow(tenant_id=row.tenant_id, application_id=row.id, customer_id=row.customer_id,
                                    number=doc.number, locale=doc.locale, document=doc.html, sha256=doc.sha256,
                                    signed_at=now, channel=signing.channel, signed_by=who.username,
                                    otp_challenge_id=signing.challenge_id, evidence=signing.evidence)
        s.add(signature)
        s.flush()
        audit.record(s, who, "contract.sign", "application", row.id,
                     after={"number": doc.number, "sha256": doc.sha256, "channel": signing.channel,
                            "locale": doc.locale, "otp_challenge_id": signing.challenge_id})
        row.status, row.accepted_at = Status.ACCEPTED, now
        audit.record(s, who, "application.accept", "application", row.id, before=before,
                     after=service._audit_view(row))
        if row.offer_amount is not None and row.offer_amount <= service.AUTOMATIC_DISBURSEMENT_LIMIT:
            service._release_funds(uow, row, service._product(uow, row.product_code, who.tenant_id))
            audit.record(s, system_principal(who.tenant_id, "origination"), "application.disburse",
                         "application", row.id, after=service._audit_view(row))
        row.version += 1
        view = service._current(uow, row)
        try:
            uow.commit()
        except IntegrityError:  # a concurrent acceptance signed first
            raise Conflict("cannot accept: the contract of this application is already signed") from None
    return view

