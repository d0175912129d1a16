"""How the demo's borrowers agree: half of them on their phone in their own session, the others with an
officer in the field, reading out the code the bank texted them (the demo holds their phones: the sandbox
SMS sender)."""

from __future__ import annotations

from microlend.core.identity import Principal, Role
from microlend.core.uow import UnitOfWork
from microlend.origination import acceptance
from microlend.origination.service import Application
from microlend.parties import consents
from microlend.parties import queries as parties
from microlend.parties.notify import sandbox
from microlend.parties.otp import CodeSent


def borrower(tenant_id: int, customer_id: int) -> Principal:
    """The customer signed in on their own phone."""
    return Principal(user_id=0, tenant_id=tenant_id, username=f"borrower-{customer_id}",
                     roles=frozenset({Role.BORROWER}), customer_id=customer_id)


def _read_code(sent: CodeSent) -> str:
    message = sandbox.message(sent.message_id)
    if message is None or message.code is None:
        raise RuntimeError("the demo reads codes from the sandbox SMS sender; another sender is connected")
    return message.code


def _evidence(customer_id: int) -> consents.Evidence:
    return consents.Evidence(session_id=f"demo-{customer_id}", ip="127.0.0.1", user_agent="demo phone")


def give_consent(uow: UnitOfWork, officer: Principal, customer_id: int, scope: str, *, in_the_field: bool) -> None:
    """The borrower agrees to `scope` (once: a consent stands until revoked)."""
    if parties.has_consent(uow, officer, customer_id, scope):
        return
    if in_the_field:
        sent = consents.request_code(uow, officer, customer_id, scope)
        consents.give_consent(uow, officer, customer_id, scope, code=_read_code(sent), challenge_id=sent.challenge_id)
    else:
        who = borrower(officer.tenant_id, customer_id)
        consents.give_consent(uow, who, customer_id, scope, evidence=_evidence(customer_id))


def sign(uow: UnitOfWork, officer: Principal, app: Application, *, in_the_field: bool) -> Application:
    """The borrower accepts the offer by signing its contract."""
    if in_the_field:
        sent = acceptance.request_signing_code(uow, officer, app.id)
        return acceptance.accept(uow, officer, app.id, code=_read_code(sent), challenge_id=sent.challenge_id)
    who = borrower(officer.tenant_id, app.customer_id)
    return acceptance.accept(uow, who, app.id, evidence=_evidence(app.customer_id))
