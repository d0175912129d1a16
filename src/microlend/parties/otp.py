"""One-time codes (短信验证码) by which a borrower who is not signed in agrees in person: an officer in the
field asks for a code, the bank texts it to the customer's registered mobile, and the borrower reads it out.
A code is 6 digits, kept only as a keyed hash, valid 5 minutes, allows 5 tries, is used once, and is bound
to one customer and one purpose (a consent scope or a contract number)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from microlend.core import audit, crypto
from microlend.core.clock import utcnow
from microlend.core.errors import NotFound, PermissionDenied
from microlend.core.identity import Permission, Principal, Role
from microlend.core.settings import get_settings
from microlend.core.uow import UnitOfWork
from microlend.parties.notify import sms_sender
from microlend.parties.tables import CustomerRow, OtpChallengeRow

CODE_DIGITS = 6
VALID_FOR = timedelta(minutes=5)
MAX_ATTEMPTS = 5

_MESSAGE = {
    "zh_CN": "【{bank}】验证码{code}，您正在{what}。5分钟内有效。如非本人办理，请勿将验证码告诉任何人。",
    "en": "[{bank}] Code {code}: you are {what}. Valid for 5 minutes. If this is not you, tell nobody the code.",
}


@dataclass(frozen=True)
class CodeSent:
    challenge_id: int
    customer_id: int
    purpose: str
    sent_to: str  # masked
    expires_at: datetime
    message_id: str = ""  # the SMS gateway's


@dataclass(frozen=True)
class CodeAccepted:
    """What a verified code proves: this customer's phone received it for this purpose."""

    challenge_id: int
    customer_id: int
    purpose: str
    context: dict[str, Any]
    sent_to: str
    requested_by: str
    verified_at: datetime

    def evidence(self) -> dict[str, Any]:
        return {"otp_challenge_id": self.challenge_id, "sent_to": self.sent_to, "requested_by": self.requested_by,
                "verified_at": self.verified_at.isoformat()}


def consent_purpose(scope: str) -> str:
    return f"consent:{scope}"


def contract_purpose(number: str) -> str:
    return f"contract:{number}"


def _digest(code: str, salt: str) -> str:
    key = hashlib.sha256(b"microlend/one-time-code/" + get_settings().secret_key.encode()).digest()
    return hmac.new(key, f"{salt}:{code}".encode(), hashlib.sha256).hexdigest()


def is_staff(who: Principal) -> bool:
    return not who.has_role(Role.BORROWER) or who.has_role(Role.ADMIN, Role.CREDIT_OFFICER, Role.SYSTEM)


def send_code(uow: UnitOfWork, who: Principal, customer_id: int, purpose: str, *, what: dict[str, str],
              locale: str = "zh_CN", bank: str = "", context: dict[str, Any] | None = None) -> CodeSent:
    """Text a new code for `purpose` to the customer's registered mobile (staff assisting a borrower).
    `what` says in each language what the borrower agrees to by giving the code."""
    who.require(Permission.ASSIST_SIGNING)
    if not is_staff(who):
        raise PermissionDenied("one-time codes are requested by bank staff assisting a borrower")
    loc = "en" if locale == "en" else "zh_CN"
    with uow:
        s = uow.session
        customer = s.get(CustomerRow, customer_id)
        if customer is None or customer.tenant_id != who.tenant_id:
            raise NotFound(f"customer {customer_id} not found", field="customer_id")
        now = utcnow()
        code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
        salt = secrets.token_hex(16)
        sender = sms_sender()
        row = OtpChallengeRow(tenant_id=who.tenant_id, customer_id=customer.id, purpose=purpose[:80],
                              context=dict(context or {}), salt=salt, code_hash=_digest(code, salt),
                              sent_to=customer.phone_masked, sender=sender.name, requested_by=who.username,
                              created_at=now, expires_at=now + VALID_FOR, attempts=0)
        s.add(row)
        s.flush()
        text = _MESSAGE[loc].format(bank=bank or "Microlend", code=code, what=what.get(loc) or what.get("zh_CN", ""))
        row.message_id = sender.send(crypto.decrypt(customer.phone_enc), text, at=now)[:100]
        audit.record(s, who, "otp.send", "customer", customer.id,
                     after={"challenge_id": row.id, "purpose": row.purpose, "sent_to": row.sent_to,
                            "sender": sender.name, "expires_at": row.expires_at.isoformat()})
        sent = CodeSent(row.id, customer.id, row.purpose, row.sent_to, row.expires_at, row.message_id)
        uow.commit()
    return sent


def _refuse(uow: UnitOfWork, who: Principal, row: OtpChallengeRow, why: str, message: str) -> PermissionDenied:
    audit.record(uow.session, who, "otp.refuse", "customer", row.customer_id,
                 after={"challenge_id": row.id, "purpose": row.purpose, "why": why, "attempts": row.attempts})
    uow.commit()
    return PermissionDenied(message, field="code")


def consume_code(uow: UnitOfWork, who: Principal, customer_id: int, purpose: str, code: str,
                 challenge_id: int | None = None) -> CodeAccepted:
    """Check a code the borrower read out and use it up. A wrong code counts a try, which is committed even
    though the request is refused: call this outside any open unit of work (it commits its own)."""
    if not code.strip():
        raise PermissionDenied("a one-time code sent to the borrower's registered mobile is needed", field="code")
    with uow:
        s = uow.session
        q = select(OtpChallengeRow).where(OtpChallengeRow.tenant_id == who.tenant_id,
                                          OtpChallengeRow.customer_id == customer_id,
                                          OtpChallengeRow.purpose == purpose)
        if challenge_id is not None:
            q = q.where(OtpChallengeRow.id == challenge_id)
        row = s.execute(q.order_by(OtpChallengeRow.id.desc()).limit(1).with_for_update()).scalar_one_or_none()
        if row is None:
            raise PermissionDenied("no one-time code was sent for this; request a code first", field="code")
        now = utcnow()
        if row.used_at is not None:
            raise _refuse(uow, who, row, "used", "this one-time code was already used; request a new one")
        if row.expires_at < now:
            raise _refuse(uow, who, row, "expired", "the one-time code has expired; request a new one")
        if row.attempts >= MAX_ATTEMPTS:
            raise _refuse(uow, who, row, "attempts", "too many wrong codes; request a new one")
        if not hmac.compare_digest(row.code_hash, _digest(code.strip(), row.salt)):
            row.attempts += 1
            left = MAX_ATTEMPTS - row.attempts
            raise _refuse(uow, who, row, "wrong", f"the one-time code is not right ({left} tries left)"
                          if left else "the one-time code is not right; request a new one")
        row.used_at = now
        accepted = CodeAccepted(row.id, row.customer_id, row.purpose, dict(row.context or {}), row.sent_to,
                                row.requested_by, now)
        uow.commit()
    return accepted

