"""Real delivery of campaign messages (消息投递): the outbox dispatched through the bank's HTTP gateways (SMS to
the customer's registered mobile through `parties.sms`, push to the customer in the bank's app), paced by
the bank's throttle; and what the gateways call back with: delivery receipts, and replies to any message
(campaign or service text), where STOP, T or 退订 opt the customer out of all marketing on every channel and
withdraw their marketing consent in parties (service notices still go, see `record_reply`).

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
from microlend.core.clock import utcnow
from microlend.core.delivery import GatewayMessage, HttpGateway, SendResult, Throttle
from microlend.core.errors import AuthenticationFailed, NotFound, ValidationError
from microlend.core.identity import Permission, Principal, system_principal
from microlend.core.uow import UnitOfWork
from microlend.marketing.campaigns import LogSender, OutgoingMessage, Sender
from microlend.marketing.segments import Channel
from microlend.marketing.service.common import policy_of
from microlend.marketing.service.outbox import DispatchSummary, dispatch_outbox, record_opt_out
from microlend.marketing.tables import OutboxRow
from microlend.parties import consents, devices
from microlend.parties import queries as parties_queries
from microlend.parties import sms as parties_sms

log = logging.getLogger("microlend.marketing.delivery")

KEY_PREFIX = "mkt-"
#: Replies that opt the customer out (compared without case and surrounding spaces or punctuation).
STOP_WORDS = frozenset({"T", "TD", "STOP", "UNSUBSCRIBE", "退订", "退定", "取消"})
RECEIPT_STATUSES = ("delivered", "failed", "expired", "undeliverable")
#: what a push gateway says (as a refusal's error or a receipt's reason) of a token its service no longer knows
INVALID_TOKEN_REASONS = frozenset({"invalid_token", "unregistered", "bad_device_token", "not_registered"})


def is_invalid_token(reason: str | None) -> bool:
    return (reason or "").strip().lower() in INVALID_TOKEN_REASONS


def message_key(message_id: int) -> str:
    """The idempotency key of an outbox message at the gateway (the same on every try)."""
    return f"{KEY_PREFIX}{message_id}"


def device_key(message_id: int, device_id: int) -> str:
    """The key of a push message to one of the customer's devices (one message, a key per device)."""
    return f"{KEY_PREFIX}{message_id}.{device_id}"


def _key_parts(key: str) -> tuple[int, int | None] | None:
    tail = key[len(KEY_PREFIX):] if key.startswith(KEY_PREFIX) else ""
    head, dot, device = tail.partition(".")
    if not (head.isdigit() and len(head) < 16):
        return None
    if not dot:
        return int(head), None
    return (int(head), int(device)) if device.isdigit() and len(device) < 16 else None


def message_id_of(key: str) -> int | None:
    parts = _key_parts(key)
    return None if parts is None else parts[0]


def device_id_of(key: str) -> int | None:
    """The device a push key was addressed to (None for an SMS key)."""
    parts = _key_parts(key)
    return None if parts is None else parts[1]


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
                    out.update({m.message_id: r for m, r in zip(chunk, results, strict=True)})
                else:
                    out.update(self._push(gateway, chunk))
        return out

    def _push(self, gateway: HttpGateway, chunk: Sequence[OutgoingMessage]) -> dict[int, SendResult]:
        """App pushes go to every active device the customer's app registered (parties), one key per device;
        a message is accepted when one device's push is. A token the gateway calls invalid is disabled at once;
        a customer without a device is refused for good."""
        targets = devices.push_targets(self.uow, self.who, [m.customer_id for m in chunk])
        go: list[GatewayMessage] = []
        out: dict[int, SendResult] = {}
        for m in chunk:
            tokens = targets.get(m.customer_id, [])
            if not tokens:
                out[m.message_id] = SendResult(message_key(m.message_id), False, None, False, "no registered device")
            go.extend(GatewayMessage(device_key(m.message_id, d), token, m.body, delivery.PUSH) for d, token in tokens)
        per_message: dict[int, list[SendResult]] = {}
        invalid: list[int] = []
        for r in gateway.send(go):
            mid, device = message_id_of(r.key), device_id_of(r.key)
            if mid is None:
                continue
            per_message.setdefault(mid, []).append(r)
            if not r.accepted and device is not None and is_invalid_token(r.error):
                invalid.append(device)
        if invalid:
            devices.disable_devices(self.uow, self.who, invalid, reason=devices.INVALID_TOKEN, at=utcnow())
        for mid, results in per_message.items():
            ok = next((r for r in results if r.accepted), None)
            out[mid] = ok or SendResult(message_key(mid), False, None, any(r.retryable for r in results),
                                        "; ".join(sorted({r.error for r in results}))[:200])
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
    undeliverable, "at": ISO time, "reason": optional}]}`; each message keeps its last receipt, except that a
    message delivered to one of the customer's devices stays delivered. A push receipt whose reason says the
    token is invalid disables that device (parties). Ids of no message are counted."""
    data = _json(body)
    receipts = data.get("receipts")
    if not isinstance(receipts, list) or not 1 <= len(receipts) <= 1000:
        raise ValidationError("receipts: a list of 1 to 1000 receipts", field="receipts")
    parsed: list[tuple[str, str, datetime, str]] = []
    for r in receipts:
        if not isinstance(r, dict) or not isinstance(r.get("id"), str) or r.get("status") not in RECEIPT_STATUSES:
            raise ValidationError(f"receipts: each with an id and a status ({', '.join(RECEIPT_STATUSES)})",
                                  field="receipts")
        try:
            at = datetime.fromisoformat(str(r.get("at") or now.isoformat()))
        except ValueError:
            raise ValidationError("receipts: 'at' is an ISO 8601 time", field="receipts") from None
        reason = r.get("reason")
        parsed.append((r["id"], r["status"], at if at.tzinfo else now, reason if isinstance(reason, str) else ""))
    tenant_id, rows = _authenticated(uow, [k for k, _, _, _ in parsed], body, timestamp, signature, now)
    who = system_principal(tenant_id, "gateway")
    recorded = 0
    invalid: list[int] = []
    with uow:
        s = uow.session
        for key, status, at, reason in parsed:
            mid = message_id_of(key)
            row = s.get(OutboxRow, mid) if mid in rows else None
            if row is None or row.tenant_id != tenant_id:
                continue
            device = device_id_of(key)
            if device is not None and status != "delivered" and is_invalid_token(reason):
                invalid.append(device)
            if not (row.delivery_status == "delivered" and status != "delivered" and device is not None):
                row.delivery_status, row.delivered_at = status, at
            recorded += 1
        audit.record(s, who, "outbox.receipts", "marketing_outbox", f"{min(rows)}-{max(rows)}",
                     after={"recorded": recorded, "unknown": len(parsed) - recorded, "invalid_tokens": len(invalid)})
        if invalid:
            devices.disable_devices(uow, who, invalid, reason=devices.INVALID_TOKEN, at=now)
        uow.commit()
    return CallbackResult(tenant_id, recorded, len(parsed) - recorded)


def _reply_sender(uow: UnitOfWork, key: str, body: bytes, timestamp: str, signature: str, now: datetime
                  ) -> tuple[int, int, str]:
    """(bank, customer, what was replied to) of a signed reply: to a campaign message (its outbox row), or to
    a service text such as a repayment reminder (its key names bank and customer, and the signature must be
    that bank's SMS gateway's). Anything else is refused like a bad signature."""
    parts = delivery.service_key_parts(key)
    if parts is None:
        tenant_id, rows = _authenticated(uow, [key], body, timestamp, signature, now)
        row = next(iter(rows.values()))
        return tenant_id, row.customer_id, f"marketing_outbox:{row.id}"
    tenant_id, customer_id = parts
    with uow.read_only():
        config = delivery.gateway_config(uow.session, tenant_id, delivery.SMS)
    if config is None or not delivery.verify(config.secret, body, timestamp, signature, now=now):
        raise AuthenticationFailed("callback signature not valid for the bank of these messages")
    if customer_id not in parties_queries.of_this_bank(uow, system_principal(tenant_id, "gateway"), [customer_id]):
        raise AuthenticationFailed("callback not valid: no message of a bank with this signature")
    return tenant_id, customer_id, "service_text"


def record_reply(uow: UnitOfWork, body: bytes, *, timestamp: str, signature: str, now: datetime) -> CallbackResult:
    """A customer's reply to any message of the bank: a campaign message, or a service text (a repayment
    reminder, a receipt): `{"id": the key of the message replied to, "text": ...}`.

    The rule (退订规则): STOP, T or 退订 in reply to ANY message opts the customer out of all marketing, on
    every channel (SMS, push, officer visits of campaigns), and withdraws their marketing consent (parties);
    every later campaign launch and every dispatch honours it. Service notices about the customer's own loans
    (due-date and overdue reminders, repayment receipts, contract notices) are not marketing and still go: the
    bank owes them under the contract and the law; a borrower stops courtesy reminders separately
    (`servicing.reminders.opt_out`)."""
    data = _json(body)
    key, text = data.get("id"), data.get("text")
    if not isinstance(key, str) or not isinstance(text, str) or len(text) > 1000 or len(key) > 40:
        raise ValidationError("id and text: the key of the message replied to and the reply's text", field="id")
    tenant_id, customer_id, replied_to = _reply_sender(uow, key, body, timestamp, signature, now)
    who = system_principal(tenant_id, "gateway")
    stop = is_stop(text)
    with uow:
        audit.record(uow.session, who, "outbox.reply", "customer", customer_id,
                     after={"stop": stop, "length": len(text), "replied_to": replied_to})
        uow.commit()
    if stop:
        record_opt_out(uow, who, customer_id, Channel.ALL, at=now)
        try:
            consents.revoke_consent(uow, who, customer_id, "marketing",
                                    evidence=consents.Evidence(session_id=f"reply:{key}"))
        except NotFound:  # no marketing consent on record (an imported customer base): the opt-out holds
            log.info("reply STOP to %s: no marketing consent to withdraw", replied_to)
    return CallbackResult(tenant_id, 1, 0, stop)
