"""Text messages from the bank to its customers' registered mobiles (service notices such as repayment
reminders), through the SMS port of `notify`: the caller gives customer ids and texts, never a number."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from microlend.core import crypto
from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.parties.notify import sms_sender
from microlend.parties.tables import CustomerRow

log = logging.getLogger("microlend.parties.sms")
_CHUNK = 500


def sender_name() -> str:
    return sms_sender().name


def text_customers(uow: UnitOfWork, who: Principal, texts: Sequence[tuple[int, str]], *, at: datetime
                   ) -> list[str | None]:
    """Send each (customer id, text) to that customer's registered mobile, in the caller's transaction; the
    gateway's message id for each, or None where the customer is not the bank's or the gateway refused."""
    ids = sorted({c for c, _ in texts})
    mobiles: dict[int, str] = {}
    with uow:
        for start in range(0, len(ids), _CHUNK):
            for cid, enc in uow.session.execute(
                    select(CustomerRow.id, CustomerRow.phone_enc).where(
                        CustomerRow.tenant_id == who.tenant_id, CustomerRow.id.in_(ids[start:start + _CHUNK]))).all():
                if enc:
                    mobiles[int(cid)] = enc
    sender = sms_sender()
    sent: list[str | None] = []
    for customer_id, text in texts:
        token = mobiles.get(customer_id)
        if token is None:
            sent.append(None)
            continue
        try:
            mobile = crypto.decrypt(token)
            sent.append(sender.send(mobile, text, at=at)[:100] if mobile else None)
        except Exception as exc:  # a gateway's refusal fails this message only; the rest still go
            log.warning("sms to customer %s not accepted by %s: %s", customer_id, sender.name, exc)
            sent.append(None)
    return sent
