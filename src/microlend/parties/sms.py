"""Text messages from the bank to its customers' registered mobiles (service notices such as repayment
reminders, campaign messages): the caller gives customer ids and texts, never a number. A bank that set up
its SMS gateway (`core.delivery`) sends through it; otherwise the SMS port of `notify` (the sandbox) does."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from microlend.core import crypto, delivery
from microlend.core.delivery import GatewayMessage, HttpGateway, SendResult
from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.parties.notify import SmsSender, sms_sender
from microlend.parties.tables import CustomerRow

log = logging.getLogger("microlend.parties.sms")
_CHUNK = 500


def sender_name(uow: UnitOfWork | None = None, tenant_id: int | None = None) -> str:
    """Who sends the bank's texts: its gateway when it has one (given the bank), else the port's sender."""
    if uow is not None and tenant_id is not None:
        with uow:
            if delivery.gateway_config(uow.session, tenant_id, delivery.SMS) is not None:
                return "http-sms"
    return sms_sender().name


def _mobiles(uow: UnitOfWork, tenant_id: int, ids: Sequence[int]) -> dict[int, str]:
    """The encrypted registered mobiles of these customers of the bank."""
    ids = sorted(set(ids))
    mobiles: dict[int, str] = {}
    with uow:
        for start in range(0, len(ids), _CHUNK):
            for cid, enc in uow.session.execute(
                    select(CustomerRow.id, CustomerRow.phone_enc).where(
                        CustomerRow.tenant_id == tenant_id, CustomerRow.id.in_(ids[start:start + _CHUNK]))).all():
                if enc:
                    mobiles[int(cid)] = enc
    return mobiles


def _sender_for(uow: UnitOfWork, tenant_id: int) -> SmsSender:
    """The bank's SMS gateway when it has one, else the port's sender."""
    with uow:
        config = delivery.gateway_config(uow.session, tenant_id, delivery.SMS)
    return sms_sender() if config is None else delivery.GatewaySms(HttpGateway(config))


def send_batch(uow: UnitOfWork, who: Principal, gateway: HttpGateway, items: Sequence[tuple[int, str, str]]
               ) -> list[SendResult]:
    """Send each (customer id, idempotency key, text) through `gateway` to the customer's registered mobile,
    in batches; one result per item. A customer of another bank, or without a mobile, is refused for good."""
    mobiles = _mobiles(uow, who.tenant_id, [c for c, _, _ in items])
    results: dict[str, SendResult] = {}
    go: list[GatewayMessage] = []
    for customer_id, key, text in items:
        token = mobiles.get(customer_id)
        mobile = crypto.decrypt(token) if token else ""
        if not mobile:
            results[key] = SendResult(key, False, None, False, "no registered mobile")
        else:
            go.append(GatewayMessage(key, mobile, text, delivery.SMS))
    for result in gateway.send(go):
        results[result.key] = result
    return [results[key] for _, key, _ in items]


def text_customers(uow: UnitOfWork, who: Principal, texts: Sequence[tuple[int, str]], *, at: datetime
                   ) -> list[str | None]:
    """Send each (customer id, text) to that customer's registered mobile, in the caller's transaction; the
    gateway's message id for each, or None where the customer is not the bank's or the gateway refused."""
    mobiles = _mobiles(uow, who.tenant_id, [c for c, _ in texts])
    sender = _sender_for(uow, who.tenant_id)
    sent: list[str | None] = []
    for customer_id, text in texts:
        token = mobiles.get(customer_id)
        if token is None:
            sent.append(None)
            continue
        try:
            mobile = crypto.decrypt(token)
            if not mobile:
                sent.append(None)
            elif isinstance(sender, delivery.GatewaySms):  # its key names the customer, for their replies
                sent.append(sender.send_to_customer(who.tenant_id, customer_id, mobile, text, at=at)[:100])
            else:
                sent.append(sender.send(mobile, text, at=at)[:100])
        except Exception as exc:  # a gateway's refusal fails this message only; the rest still go
            log.warning("sms to customer %s not accepted by %s: %s", customer_id, sender.name, exc)
            sent.append(None)
    if isinstance(sender, delivery.GatewaySms):
        sender.gateway.close()
    return sent
