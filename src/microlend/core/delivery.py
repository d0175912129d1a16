"""Message delivery (消息投递) through a bank's HTTP gateway: one adapter for SMS and push, shared by marketing's
outbox and servicing's reminders (through `parties.sms`).

A gateway takes a batch of messages as JSON (`POST {url}/messages`), each with our idempotency key, so a
batch sent twice after a lost answer is delivered once. Requests carry the bank's API key as a bearer token
and an HMAC-SHA256 signature of timestamp and body; the gateway signs its callbacks (delivery receipts,
replies) the same way with the same secret, and `verify` checks them. A 429, a 5xx, a timeout or a broken
connection is worth another try (`retryable`); any other refusal is final. `Throttle` keeps a dispatcher under
the bank's messages per second, and `retry_at` spaces the tries of one message out.

Credentials are stored encrypted (`core.crypto`) and never shown or logged in clear (`GatewayConfig.masked`)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select

from microlend.core import audit, crypto
from microlend.core.delivery_tables import MessageGatewayRow
from microlend.core.errors import ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork

log = logging.getLogger("microlend.core.delivery")

SMS, PUSH = "sms", "push"
CHANNELS = (SMS, PUSH)
#: Tries of one message before it is marked failed.
MAX_ATTEMPTS = 5
FIRST_RETRY = timedelta(minutes=1)
LONGEST_WAIT = timedelta(hours=2)
#: How old a signed callback may be (its timestamp against our clock), either way.
SIGNATURE_TOLERANCE_S = 300
SIGNATURE_HEADER, TIMESTAMP_HEADER = "X-Signature", "X-Timestamp"


class DeliveryFailed(Exception):
    """A gateway did not take a message (the reason says why; `retryable` whether to try again)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


# --- configuration -------------------------------------------------------------------------------------------


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError("url: an http(s) address such as https://sms.example.com/v1", field="url")
    return url.rstrip("/")


@dataclass(frozen=True)
class GatewayConfig:
    """Where and how a bank's gateway for one channel is reached. `secret` signs requests and checks the
    gateway's callbacks; `throttle_per_s` is the most messages a second the bank sends through it."""

    channel: str
    url: str
    api_key: str = field(default="", repr=False)
    secret: str = field(default="", repr=False)
    batch_size: int = 100
    timeout_s: float = 5.0
    throttle_per_s: int = 200

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValidationError(f"channel: one of {', '.join(CHANNELS)}", field="channel")
        object.__setattr__(self, "url", _check_url(self.url))
        if not 1 <= self.batch_size <= 1000:
            raise ValidationError("batch_size: 1 to 1000 messages a request", field="batch_size")
        if not 0.1 <= self.timeout_s <= 60:
            raise ValidationError("timeout_s: 0.1 to 60 seconds", field="timeout_s")
        if not 1 <= self.throttle_per_s <= 100_000:
            raise ValidationError("throttle_per_s: 1 to 100,000 messages a second", field="throttle_per_s")
        if len(self.api_key) > 500 or len(self.secret) > 500:
            raise ValidationError("api_key: at most 500 characters", field="api_key")

    def masked(self) -> dict[str, Any]:
        """What may be shown or logged: the credentials masked."""
        return {"channel": self.channel, "url": self.url, "api_key": mask_secret(self.api_key),
                "secret": mask_secret(self.secret), "batch_size": self.batch_size, "timeout_s": self.timeout_s,
                "throttle_per_s": self.throttle_per_s}


def mask_secret(value: str) -> str:
    """`sk-live-1234567890` -> `sk********90`; nothing of a short value; empty stays empty."""
    if not value:
        return ""
    return "****" if len(value) < 10 else value[:2] + "*" * 8 + value[-2:]


# --- signing -------------------------------------------------------------------------------------------------


def sign(secret: str, body: bytes, timestamp: str) -> str:
    """HMAC-SHA256 of `timestamp.body` under `secret`, hex."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, now: datetime) -> dict[str, str]:
    timestamp = str(int(now.timestamp()))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, body, timestamp)}


def verify(secret: str, body: bytes, timestamp: str, signature: str, *, now: datetime,
           tolerance_s: int = SIGNATURE_TOLERANCE_S) -> bool:
    """The signature is the secret's over this body and the timestamp is recent (no replay of an old one)."""
    if not secret or not timestamp.isdigit() or abs(int(now.timestamp()) - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), signature)


# --- sending -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayMessage:
    """One message for the gateway: our idempotency key, the address (a mobile, or a push target), the text."""

    key: str
    to: str
    text: str
    channel: str = SMS


@dataclass(frozen=True)
class SendResult:
    key: str
    accepted: bool
    gateway_id: str | None = None
    retryable: bool = False
    error: str = ""


def _failed(messages: Sequence[GatewayMessage], error: str, retryable: bool) -> list[SendResult]:
    return [SendResult(m.key, False, None, retryable, error[:200]) for m in messages]


class HttpGateway:
    """The HTTP adapter for one channel of one bank's gateway; `send` never raises for the gateway's sake."""

    def __init__(self, config: GatewayConfig, *, client: httpx.Client | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.config = config
        self.name = f"http-{config.channel}"
        self._client = client or httpx.Client(timeout=config.timeout_s)
        self._own_client = client is None
        from microlend.core.clock import utcnow

        self._clock = clock or utcnow

    def __repr__(self) -> str:
        return f"HttpGateway({self.config.masked()})"

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def send(self, messages: Sequence[GatewayMessage]) -> list[SendResult]:
        """One result per message, in order: accepted with the gateway's id, or refused (retryable or not)."""
        results: list[SendResult] = []
        size = self.config.batch_size
        for start in range(0, len(messages), size):
            results.extend(self._send_batch(messages[start:start + size]))
        return results

    def _send_batch(self, batch: Sequence[GatewayMessage]) -> list[SendResult]:
        body = json.dumps({"messages": [{"id": m.key, "to": m.to, "text": m.text, "channel": m.channel}
                                        for m in batch]}, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.config.api_key}",
                   "Idempotency-Key": hashlib.sha256("|".join(m.key for m in batch).encode()).hexdigest()[:40],
                   **signed_headers(self.config.secret, body, self._clock())}
        try:
            response = self._client.post(f"{self.config.url}/messages", content=body, headers=headers)
        except httpx.TimeoutException:
            return _failed(batch, "gateway timed out", True)
        except httpx.HTTPError as exc:
            return _failed(batch, f"gateway unreachable: {type(exc).__name__}", True)
        if response.status_code == 429 or response.status_code >= 500:
            return _failed(batch, f"gateway answered {response.status_code}", True)
        if response.status_code >= 400:
            return _failed(batch, f"gateway refused the request ({response.status_code})", False)
        try:
            answers = {str(a["id"]): a for a in response.json()["results"]}
        except (ValueError, KeyError, TypeError):
            return _failed(batch, "gateway answer unreadable", True)
        out = []
        for m in batch:
            a = answers.get(m.key)
            if a is None:
                out.append(SendResult(m.key, False, None, True, "not in the gateway's answer"))
            elif a.get("status") == "accepted":
                out.append(SendResult(m.key, True, str(a.get("gateway_id") or "")[:64] or None))
            else:
                out.append(SendResult(m.key, False, None, bool(a.get("retryable")),
                                      str(a.get("error") or "refused")[:200]))
        return out

    def send_one(self, to: str, text: str, *, key: str) -> str:
        """Send one message; its gateway id, or `DeliveryFailed`."""
        result = self.send([GatewayMessage(key, to, text, self.config.channel)])[0]
        if not result.accepted:
            raise DeliveryFailed(result.error, retryable=result.retryable)
        return result.gateway_id or key


SERVICE_PREFIX = "svc-"


def service_key(tenant_id: int, customer_id: int, text: str, at: datetime) -> str:
    """The idempotency key of a service text (a reminder, a receipt) to a known customer of a bank:
    `svc-<bank>-<customer>-<digest>`, so a reply to it names whom it came from (the callback is signed with
    that bank's secret, so the bank and customer in the key are the gateway's word, checked)."""
    digest = hashlib.sha256(f"{tenant_id}|{customer_id}|{text}|{at.isoformat()}".encode()).hexdigest()[:16]
    return f"{SERVICE_PREFIX}{tenant_id}-{customer_id}-{digest}"


def service_key_parts(key: str) -> tuple[int, int] | None:
    """(bank, customer) of a service text's key, or None for any other key."""
    if not key.startswith(SERVICE_PREFIX) or len(key) > 40:
        return None
    parts = key[len(SERVICE_PREFIX):].split("-")
    if len(parts) != 3 or not all(p.isdigit() and len(p) < 12 for p in parts[:2]):
        return None
    return int(parts[0]), int(parts[1])


class GatewaySms:
    """The `parties.notify.SmsSender` port over an `HttpGateway` (service texts such as reminders)."""

    def __init__(self, gateway: HttpGateway) -> None:
        self.gateway = gateway
        self.name = gateway.name

    def send(self, mobile: str, text: str, *, at: datetime) -> str:
        key = SERVICE_PREFIX + hashlib.sha256(f"{mobile}|{text}|{at.isoformat()}".encode()).hexdigest()[:32]
        return self.gateway.send_one(mobile, text, key=key)

    def send_to_customer(self, tenant_id: int, customer_id: int, mobile: str, text: str, *, at: datetime) -> str:
        """Send a service text whose key names the bank and customer (see `service_key`)."""
        return self.gateway.send_one(mobile, text, key=service_key(tenant_id, customer_id, text, at))


# --- pacing --------------------------------------------------------------------------------------------------


class Throttle:
    """At most `rate` messages a second, in bursts of at most one second's worth (a token bucket). The clock
    and the sleep are given, so a test can run it without waiting."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValidationError("throttle: must be above 0 messages a second", field="throttle_per_s")
        self.rate = float(rate)
        self._clock, self._sleep = clock, sleep
        self._tokens = self.rate
        self._last = clock()
        self._lock = threading.Lock()
        self.waited_s = 0.0

    def acquire(self, n: int = 1) -> float:
        """Take `n` messages' worth, waiting as long as needed; the seconds waited."""
        waited = 0.0
        with self._lock:
            remaining = float(n)
            while remaining > 1e-6:  # a float's rounding never leaves a sliver to wait for
                now = self._clock()
                self._tokens = min(self.rate, self._tokens + (now - self._last) * self.rate)
                self._last = now
                take = min(remaining, self._tokens)
                self._tokens -= take
                remaining -= take
                if remaining > 1e-6:
                    pause = min(remaining, self.rate) / self.rate
                    self._sleep(pause)
                    waited += pause
        self.waited_s += waited
        return waited


def retry_at(attempts: int, now: datetime, *, first: timedelta = FIRST_RETRY,
             longest: timedelta = LONGEST_WAIT) -> datetime:
    """When to try a message again after `attempts` failed tries: 1 min, 2, 4, ... at most 2 h later."""
    return now + min(first * (1 << min(max(attempts - 1, 0), 20)), longest)


def absolute_link(public_host: str, path: str) -> str:
    """A link on the bank's public host (`https://bank.example.cn` + `/t/abc`); the path as it is without one."""
    if not public_host:
        return path
    host = public_host.rstrip("/")
    if "://" not in host:
        host = "https://" + host
    return host + ("" if path.startswith("/") else "/") + path


def check_public_host(value: str) -> str:
    """`https://host[:port]` (or empty); no path, query or credentials."""
    if not value:
        return ""
    parts = urlsplit(value if "://" in value else "https://" + value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/") or parts.query \
            or parts.username:
        raise ValidationError("public_host: the bank's address such as https://www.bank.example.cn",
                              field="public_host")
    return f"{parts.scheme}://{parts.netloc}"


# --- stored settings ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayView:
    """A bank's gateway as staff see it: credentials masked."""

    channel: str
    url: str
    api_key: str
    secret: str
    batch_size: int
    timeout_s: float
    throttle_per_s: int
    updated_by: str
    updated_at: datetime


def _config_of(row: MessageGatewayRow) -> GatewayConfig:
    return GatewayConfig(row.channel, row.url, crypto.decrypt(row.api_key_enc) if row.api_key_enc else "",
                         crypto.decrypt(row.secret_enc) if row.secret_enc else "", row.batch_size,
                         row.timeout_ms / 1000, row.throttle_per_s)


def gateway_config(session: Any, tenant_id: int, channel: str) -> GatewayConfig | None:
    """The bank's gateway for `channel` with its credentials in clear (for sending, never for showing)."""
    row = session.execute(select(MessageGatewayRow).where(
        MessageGatewayRow.tenant_id == tenant_id, MessageGatewayRow.channel == channel)).scalar_one_or_none()
    return None if row is None else _config_of(row)


def _view(row: MessageGatewayRow) -> GatewayView:
    c = _config_of(row).masked()
    return GatewayView(row.channel, row.url, c["api_key"], c["secret"], row.batch_size, row.timeout_ms / 1000,
                       row.throttle_per_s, row.updated_by, row.updated_at)


def list_gateways(uow: UnitOfWork, who: Principal) -> list[GatewayView]:
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow.read_only():
        rows = uow.session.execute(select(MessageGatewayRow).where(MessageGatewayRow.tenant_id == who.tenant_id)
                                   .order_by(MessageGatewayRow.channel)).scalars()
        return [_view(r) for r in rows]


def save_gateway(uow: UnitOfWork, who: Principal, config: GatewayConfig, *, at: datetime,
                 keep_credentials: bool = False) -> GatewayView:
    """Set the bank's gateway for a channel; with `keep_credentials` an empty key or secret keeps the stored one."""
    who.require(Permission.MANAGE_MESSAGING)
    with uow:
        s = uow.session
        row = s.execute(select(MessageGatewayRow).where(
            MessageGatewayRow.tenant_id == who.tenant_id, MessageGatewayRow.channel == config.channel)
        ).scalar_one_or_none()
        before = None if row is None else _config_of(row).masked()
        if row is None:
            row = MessageGatewayRow(tenant_id=who.tenant_id, channel=config.channel)
            s.add(row)
        row.url, row.batch_size = config.url, config.batch_size
        row.timeout_ms, row.throttle_per_s = int(config.timeout_s * 1000), config.throttle_per_s
        if config.api_key or not keep_credentials or row.api_key_enc is None:
            row.api_key_enc = crypto.encrypt(config.api_key) if config.api_key else None
        if config.secret or not keep_credentials or row.secret_enc is None:
            row.secret_enc = crypto.encrypt(config.secret) if config.secret else None
        row.updated_by, row.updated_at = who.username, at
        s.flush()
        view = _view(row)
        audit.record(s, who, "messaging.gateway", "message_gateway", row.id, before=before,
                     after=_config_of(row).masked())
        uow.commit()
    log.info("gateway for %s of bank %s set: %s", config.channel, who.tenant_id, config.masked())
    return view


def gateway_for(session: Any, tenant_id: int, channel: str) -> HttpGateway | None:
    config = gateway_config(session, tenant_id, channel)
    return None if config is None else HttpGateway(config)
