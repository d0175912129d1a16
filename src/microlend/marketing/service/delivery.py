"""Real delivery of campaign messages (消息投递): the outbox dispatched through the bank's HTTP gateways (SMS to
the customer's registered mobile through `parties.sms`, push to the customer in the bank's app), paced by
the bank's throttle; and what the gateways call back with: delivery receipts, and replies, where STOP, T or
退订 opt the customer out of the channel and withdraw their marketing consent in parties.

Callbacks carry no user's sign-in: the bank is the one whose message the callback names, and the callback
must be signed with that bank's gateway secret (`core.delivery.verify`), or nothing is read or changed."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from microlend.core import audit, delivery
from microlend.core.delivery import GatewayMessage, HttpGateway, SendResult, Throttle
from microlend.core.errors import AuthenticationFailed, NotFound, ValidationError
from microlend.core.identity import Permission, Principal, system_principal
from microlend.core.uow import UnitOfWork
from microlend.marketing.campaigns import LogSender, OutgoingMessage, Sender
from microlend.marketing.service.common import policy_of
from microlend.marketing.service.outbox import DispatchSummary, dispatch_outbox, record_opt_out
from microlend.marketing.tables import OutboxRow
from microlend.parties import consents
from microlend.parties import sms as parties_sms

log = logging.getLogger("microlend.marketing.delivery")

KEY_PREFIX = "mkt-"
#: Replies that opt the customer out (compared without case and surrounding spaces or punctuation).
STOP_WORDS = frozenset({"T", "TD", "STOP", "UNSUBSCRIBE", "退订", "退定", "取消"})
RECEIPT_STATUSES = ("delivered", "failed", "expired", "undeliverable")


def message_key(message_id: int) -> str:
    """The idempotency key of an outbox message at the gateway (the same on every try)."""
    return f"{KEY_PREFIX}{message_id}"


def message_id_of(key: str) -> int | None:
    tail = key[len(KEY_PREFIX):] if key.startswith(KEY_PREFIX) else ""
    return int(tail) if tail.isdigit() and len(tail) < 16 else None


def is_stop(text: str) -> bool:
    return text.strip().strip("。.!！ ").upper() in STOP_WORDS


class GatewaySender:
    """A `Sender` over the bank's gateways: each channel's messages in the gateway's batch size, each batch
    after the throttle lets it go; `deliver` reports every message's outcome (accepted, or refused and
    whether to try again)."""

    name = "gateway"

    def __init__(self, uow: UnitOfWork, who: Principal, gateways: dict[str, HttpGateway],
                 throttle: Throttle | None = None) -> None:
        self.uow, self.who, self.gateways, self.throttle = uow, who, gateways, throttle

    def send(self, messages: Sequence[OutgoingMessage]) -> set[int]:
        return {mid for mid, r in self.deliver(messages).items() if r.accepted}

    def deliver(self, messages: Sequence[OutgoingMessage]) -> dict[int, SendResult]:
        out: dict[int, SendResult] = {}
        by_channel: dict[str, list[OutgoingMessage]] = {}
        for m in messages:
            by_channel.setdefault(m.channel, []).append(m)
        for channel, group in by_channel.items():
            gateway = self.gateways.get(channel)
            if gateway is None:
                out.update({m.message_id: SendResult(message_key(m.message_id), False, None, False,
                                                     f"no {channel} gateway set up") for m in group})
                continue
            size = gateway.config.batch_size
            for start in range(0, len(group), size):
                chunk = group[start:start + size]
                if self.throttle is not None:
                    self.throttle.acquire(len(chunk))
                if channel == delivery.SMS:
                    results = parties_sms.send_batch(self.uow, self.who, gateway, [
                        (m.customer_id, message_key(m.message_id), m.body) for m in chunk])
                else:  # push: the bank's app knows its customers by id
                    results = gateway.send([GatewayMessage(message_key(m.message_id), str(m.customer_id), m.body,
                                                           channel) for m in chunk])
                out.update({m.message_id: r for m, r in zip(chunk, results, strict=True)})
        return out


def bank_sender(uow: UnitOfWork, who: Principal) -> tuple[Sender, list[HttpGateway]]:
    """The bank's gateways as one sender throttled to its policy (the log sender while it has none)."""
    with uow.read_only():
        configs = [c for c in (delivery.gateway_config(uow.session, who.tenant_id, ch) for ch in delivery.CHANNELS)
                   if c is not None]
        policy = policy_of(uow.session, who.tenant_id)
    if not configs:
        return LogSender(), []
    gateways = {c.channel: HttpGateway(c) for c in configs}
    rate = min([policy.throttle_per_s, *(c.throttle_per_s for c in configs)])
    return GatewaySender(uow, who, gateways, Throttle(rate)), list(gateways.values())


def dispatch_bank_outbox(uow: UnitOfWork, who: Principal, *, now: datetime, limit: int | None = None
                         ) -> DispatchSummary:
    """Dispatch the bank's due campaign messages through its gateways (the worker's messages job)."""
    who.require(Permission.MANAGE_CAMPAIGNS)
    sender, gateways = bank_sender(uow, who)
    try:
        return dispatch_outbox(uow, who, now=now, sender=sender, limit=limit)
    finally:
        for gateway in gateways:
            gateway.close()


# --- callbacks -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallbackResult:
    tenant_id: int
    recorded: int
    unknown: int = 0
    opted_out: bool = False


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("body: not JSON", field="body") from None
    if not isinstance(data, dict):
        raise ValidationError("body: a JSON object", field="body")
    return data


def _authenticated(uow: UnitOfWork, keys: Sequence[str], body: bytes, timestamp: str, signature: str,
                   now: datetime) -> tuple[int, dict[int, OutboxRow]]:
    """The bank the messages named belong to, checked against the signature with that bank's gateway secret;
    the messages found. Messages of two banks in one callback, or a bad signature, are refused."""
    ids = sorted({i for i in (message_id_of(k) for k in keys) if i is not None})
    with uow.read_only():
        rows = {r.id: r for r in uow.session.execute(select(OutboxRow).where(OutboxRow.id.in_(ids))).scalars()}
        if not rows:  # the same answer as a bad signature: a caller learns nothing of which ids exist
            raise AuthenticationFailed("callback not valid: no message of a bank with this signature")
        tenants = {r.tenant_id for r in rows.values()}
        channels = {r.channel for r in rows.values()}
        if len(tenants) != 1 or len(channels) != 1:
            raise ValidationError("id: the messages of one callback belong to one bank and channel", field="id")
        tenant_id, channel = tenants.pop(), channels.pop()
        config = delivery.gateway_config(uow.session, tenant_id, channel)
        uow.session.expunge_all()
    if config is None or not delivery.verify(config.secret, body, timestamp, signature, now=now):
        raise AuthenticationFailed("callback signature not valid for the bank of these messages")
    return tenant_id, rows


def record_receipts(uow: UnitOfWork, body: bytes, *, timestamp: str, signature: str, now: datetime
                    ) -> CallbackResult:
    """Delivery receipts (送达回执): `{"receipts": [{"id": our key, "status": delivered|failed|expired|
    undeliverable, "at": ISO time}]}`; each message keeps its last receipt. Ids of no message are counted."""
    data = _json(body)
    receipts = data.get("receipts")
    if not isinstance(receipts, list) or not 1 <= len(receipts) <= 1000:
        raise ValidationError("receipts: a list of 1 to 1000 receipts", field="receipts")
    parsed: list[tuple[str, str, datetime]] = []
    for r in receipts:
        if not isinstance(r, dict) or not isinstance(r.get("id"), str) or r.get("status") not in RECEIPT_STATUSES:
            raise ValidationError(f"receipts: each with an id and a status ({', '.join(RECEIPT_STATUSES)})",
                                  field="receipts")
        try:
            at = datetime.fromisoformat(str(r.get("at") or now.isoformat()))
        except ValueError:
            raise ValidationError("receipts: 'at' is an ISO 8601 time", field="receipts") from None
        parsed.append((r["id"], r["status"], at if at.tzinfo else now))
    tenant_id, rows = _authenticated(uow, [k for k, _, _ in parsed], body, timestamp, signature, now)
    who = system_principal(tenant_id, "gateway")
    recorded = 0
    with uow:
        s = uow.session
        for key, status, at in parsed:
            mid = message_id_of(key)
            row = s.get(OutboxRow, mid) if mid in rows else None
            if row is None or row.tenant_id != tenant_id:
                continue
            row.delivery_status, row.delivered_at = status, at
            recorded += 1
        audit.record(s, who, "outbox.receipts", "marketing_outbox", f"{min(rows)}-{max(rows)}",
                     after={"recorded": recorded, "unknown": len(parsed) - recorded})
        uow.commit()
    return CallbackResult(tenant_id, recorded, len(parsed) - recorded)


def record_reply(uow: UnitOfWork, body: bytes, *, timestamp: str, signature: str, now: datetime) -> CallbackResult:
    """A customer's reply to a message: `{"id": the key of the message replied to, "text": ...}`. STOP, T or
    退订 opt the customer out of that channel and withdraw their marketing consent (parties)."""
    data = _json(body)
    key, text = data.get("id"), data.get("text")
    if not isinstance(key, str) or not isinstance(text, str) or len(text) > 1000:
        raise ValidationError("id and text: the key of the message replied to and the reply's text", field="id")
    tenant_id, rows = _authenticated(uow, [key], body, timestamp, signature, now)
    row = next(iter(rows.values()))
    who = system_principal(tenant_id, "gateway")
    stop = is_stop(text)
    with uow:
        audit.record(uow.session, who, "outbox.reply", "marketing_outbox", row.id,
                     after={"stop": stop, "length": len(text)})
        uow.commit()
    if stop:
        record_opt_out(uow, who, row.customer_id, row.channel, at=now)
        try:
            consents.revoke_consent(uow, who, row.customer_id, "marketing",
                                    evidence=consents.Evidence(session_id=f"reply:{key}"))
        except NotFound:  # no marketing consent on record (an imported customer base): the opt-out holds
            log.info("reply STOP for message %s: no marketing consent to withdraw", row.id)
    return CallbackResult(tenant_id, 1, 0, stop)
