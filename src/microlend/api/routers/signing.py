"""Consents and contracts evidenced by the borrower: the consent text catalogue, giving (in the borrower's
own session, or with a one-time code texted to their registered mobile) and revoking consents, requesting a
code as staff assisting a borrower, and the loan contract of an application."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from microlend.api.deps import CurrentPrincipal, Id, UnitOfWorkDep, request_evidence
from microlend.api.references import OptionalApplicationRef
from microlend.api.routing import api_router
from microlend.api.schemas import PublicSchema
from microlend.api.security import report_page
from microlend.core.errors import ValidationError
from microlend.origination import acceptance
from microlend.origination.contracts import printable
from microlend.parties import consent_texts, consents

router = api_router(prefix="/api/v1", tags=["consents and contracts"])
Scope = Annotated[str, Path(max_length=40, description="a consent scope, e.g. credit_report")]


def locale_of(request: Request) -> str:
    lang = request.headers.get("accept-language", "")
    return "en" if lang.lower().startswith("en") else "zh_CN"


class ConsentTextPublic(BaseModel):
    scope: str
    version: str
    effective: str
    title: dict[str, str]
    body: dict[str, str]
    sha256: dict[str, str]


class ConsentGive(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: str = Field(max_length=40)
    locale: Literal["zh_CN", "en"] | None = Field(default=None, description="the language of the text shown")
    code: str = Field(default="", max_length=12, description="staff: the code the borrower received by SMS")
    challenge_id: int | None = Field(default=None, ge=1, le=2**31 - 1)


class ConsentPublic(PublicSchema):
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
    active: bool
    revoked_at: datetime | None
    revoked_by: str | None



class CodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: Literal["consent", "contract"]
    scope: str | None = Field(default=None, max_length=40, description="for a consent: its scope")
    application_id: OptionalApplicationRef = Field(default=None, description="for a contract")
    locale: Literal["zh_CN", "en"] | None = None


class CodeSentPublic(BaseModel):
    challenge_id: int
    customer_id: int
    purpose: str
    sent_to: str
    expires_at: datetime


@router.get("/consent-texts")
def consent_text_catalogue(who: CurrentPrincipal) -> list[ConsentTextPublic]:
    """Every version of every consent text, with the SHA-256 of each wording."""
    return [ConsentTextPublic(scope=t.scope, version=t.version, effective=t.effective.isoformat(), title=t.title,
                              body=t.body, sha256={loc: t.sha256(loc) for loc in consent_texts.LOCALES})
            for t in consent_texts.catalogue()]


@router.get("/customers/{customer_id}/consents")
def list_consents(customer_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[ConsentPublic]:
    return [ConsentPublic.of(c) for c in consents.list_consents(uow, who, customer_id)]


@router.post("/customers/{customer_id}/consents", status_code=201)
def give_consent(request: Request, customer_id: Id, body: ConsentGive, who: CurrentPrincipal,
                 uow: UnitOfWorkDep) -> ConsentPublic:
    """The borrower gives a consent: signed in themselves, or (staff assisting) with the texted code."""
    return ConsentPublic.of(consents.give_consent(
        uow, who, customer_id, body.scope, locale=body.locale or locale_of(request),
        evidence=request_evidence(request), code=body.code, challenge_id=body.challenge_id))


@router.delete("/customers/{customer_id}/consents/{scope}", status_code=204)
def revoke_consent(request: Request, customer_id: Id, scope: Scope, who: CurrentPrincipal,
                   uow: UnitOfWorkDep) -> Response:
    """撤回授权: the consent is kept as revoked and no longer counts for any decision."""
    consents.revoke_consent(uow, who, customer_id, scope, evidence=request_evidence(request))
    return Response(status_code=204)


@router.post("/customers/{customer_id}/one-time-codes", status_code=201)
def request_code(request: Request, customer_id: Id, body: CodeRequest, who: CurrentPrincipal,
                 uow: UnitOfWorkDep) -> CodeSentPublic:
    """Staff assisting a borrower: text a one-time code to the customer's registered mobile (masked here)."""
    locale = body.locale or locale_of(request)
    if body.purpose == "consent":
        if not body.scope:
            raise ValidationError("scope: a consent code needs the scope", field="scope")
        sent = consents.request_code(uow, who, customer_id, body.scope, locale=locale)
    else:
        if body.application_id is None:
            raise ValidationError("application_id: a contract code needs the application", field="application_id")
        if acceptance.application_customer(uow, who, body.application_id) != customer_id:
            raise ValidationError("application_id: not an application of this customer", field="application_id")
        sent = acceptance.request_signing_code(uow, who, body.application_id, locale)
    return CodeSentPublic(challenge_id=sent.challenge_id, customer_id=sent.customer_id, purpose=sent.purpose,
                          sent_to=sent.sent_to, expires_at=sent.expires_at)


@router.get("/applications/{application_id}/contract", response_class=HTMLResponse)
def get_contract(request: Request, application_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> HTMLResponse:
    """The signed loan contract as a printable HTML page (while the offer is open: the draft to be signed)."""
    view = acceptance.contract(uow, who, application_id, locale_of(request))
    html = printable(view.document, view.locale, v=view, borrower=view.borrower)
    page = report_page(html)
    page.headers.update({"X-Contract-Number": view.number, "X-Contract-Status": view.status,
                         "X-Contract-SHA256": view.sha256})
    return page
