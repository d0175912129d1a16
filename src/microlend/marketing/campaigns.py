"""Campaigns (营销活动) as pure rules: a stable random control group (对照组), message templates in zh-CN and
en, quiet hours (免打扰时段), and the sender interface the outbox hands messages to.

Nothing here touches a database or the wall clock: instants are passed in, and `service.py` stores the
results in the outbox.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from babel.dates import format_date
from babel.numbers import format_currency, format_percent
from jinja2 import StrictUndefined
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from microlend.core.errors import ValidationError
from microlend.core.money import round_half_up
from microlend.marketing.segments import Channel, check_channel

BUCKETS = 10_000
LOCALES = ("zh_CN", "en")
log = logging.getLogger("microlend.marketing.outbox")

# --- control group ----------------------------------------------------------------------------------------


def control_bucket(campaign_key: str, customer_id: int | str) -> int:
    """0..9999 from sha256 of campaign key and customer id: the same customer lands in the same bucket on
    every run and every machine, and independently from one campaign to the next."""
    digest = hashlib.sha256(f"{campaign_key}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def check_control_share(share_bp: int) -> int:
    if not 0 <= share_bp < BUCKETS:
        raise ValidationError(f"control_share_bp: must be 0..{BUCKETS - 1} basis points, got {share_bp}",
                              field="control_share_bp")
    return share_bp


def in_control_group(campaign_key: str, customer_id: int | str, share_bp: int) -> bool:
    """True for the customers held out: they receive nothing, and measure what the campaign adds."""
    return control_bucket(campaign_key, customer_id) < check_control_share(share_bp)


def control_mask(campaign_key: str, customer_ids: Sequence[int] | npt.NDArray[np.int64], share_bp: int
                 ) -> npt.NDArray[np.bool_]:
    """`in_control_group` for many customers at once."""
    check_control_share(share_bp)
    prefix = f"{campaign_key}:".encode()
    sha = hashlib.sha256
    buckets = np.fromiter(
        (int.from_bytes(sha(prefix + str(int(c)).encode()).digest()[:8], "big") % BUCKETS for c in customer_ids),
        dtype=np.int64, count=len(customer_ids),
    )
    return buckets < share_bp


# --- quiet hours ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuietHours:
    """No SMS or push between `start` and `end` local time (21:00-08:00 by default); visits are tasks for
    officers and are not held back. A message falling in the quiet period goes out at its end."""

    start: time = time(21, 0)
    end: time = time(8, 0)
    timezone: str = "Asia/Shanghai"

    def is_quiet(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_allowed(self, at: datetime, channel: str) -> datetime:
        """The earliest instant at or after `at` when `channel` may reach a customer (UTC in, UTC out)."""
        if at.tzinfo is None:
            raise ValidationError("at: needs a timezone", field="at")
        if check_channel(channel) == Channel.VISIT:
            return at
        zone = ZoneInfo(self.timezone)
        local = at.astimezone(zone)
        if not self.is_quiet(local.time()):
            return at
        day = local.date() if local.time() < self.end else local.date() + timedelta(days=1)
        return datetime.combine(day, self.end, tzinfo=zone).astimezone(at.tzinfo)


# --- offers and templates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OfferTerms:
    """A pre-approved offer (预授信额度) as shown to the customer: limit, rate, APR and expiry."""

    limit: Decimal
    annual_rate: Decimal
    apr: Decimal
    expires_on: date
    currency: str = "CNY"

    def __post_init__(self) -> None:
        for name in ("limit", "annual_rate", "apr"):
            if not isinstance(getattr(self, name), Decimal):
                raise ValidationError(f"{name}: must be a Decimal", field=name)


DEFAULT_TEMPLATES: dict[tuple[str, str], str] = {
    ("sms", "zh_CN"): "【{{ bank }}】尊敬的客户，您已获得预授信额度{{ limit | money }}，年利率{{ rate | percent }}"
                      "（年化利率{{ apr | percent }}），{{ expires_on | longdate }}前有效。"
                      "立即申请：{{ link }} 回T退订",
    ("sms", "en"): "[{{ bank }}] You are pre-approved for up to {{ limit | money }} at {{ rate | percent }} a year "
                   "(APR {{ apr | percent }}), valid until {{ expires_on | longdate }}. Apply: {{ link }} "
                   "Reply STOP to opt out",
    ("push", "zh_CN"): "您有一笔{{ limit | money }}的预授信额度待领取，年化利率{{ apr | percent }}起",
    ("push", "en"): "A pre-approved limit of {{ limit | money }} is waiting for you, APR from {{ apr | percent }}",
    ("visit", "zh_CN"): "上门拜访：客户已获预授信额度{{ limit | money }}，年利率{{ rate | percent }}，"
                        "{{ expires_on | longdate }}前有效",
    ("visit", "en"): "Visit: the customer is pre-approved for {{ limit | money }} at {{ rate | percent }}, "
                     "valid until {{ expires_on | longdate }}",
}

#: Texts for campaigns over a segment, where no pre-approved figures exist yet (an invitation to apply).
DEFAULT_INVITATIONS: dict[tuple[str, str], str] = {
    ("sms", "zh_CN"): "【{{ bank }}】小微经营贷，随借随还，线上申请几分钟出额度：{{ link }} 回T退订",
    ("sms", "en"): "[{{ bank }}] Small business credit, apply online in minutes: {{ link }} Reply STOP to opt out",
    ("push", "zh_CN"): "小微经营贷，线上申请几分钟出额度",
    ("push", "en"): "Small business credit: apply online in minutes",
    ("visit", "zh_CN"): "上门拜访：介绍小微经营贷产品",
    ("visit", "en"): "Visit: present the small business loan",
}


class MessageTemplates:
    """Message texts per channel and locale, rendered in Jinja2's sandbox (a template cannot reach Python
    objects beyond the offer's figures) with money, percentages and dates formatted by Babel."""

    def __init__(self, templates: Mapping[tuple[str, str], str] | None = None,
                 invitations: Mapping[tuple[str, str], str] | None = None) -> None:
        self.env = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)
        self.env.filters["money"] = self._money
        self.env.filters["percent"] = self._percent
        self.env.filters["longdate"] = self._date
        self._locale = "zh_CN"
        self._currency = "CNY"
        self.sources = dict(DEFAULT_TEMPLATES if templates is None else templates)
        self._compiled: dict[tuple[str, str], Any] = {}
        self._invitations: dict[tuple[str, str], Any] = {}
        invitation_sources = dict(DEFAULT_INVITATIONS if invitations is None else invitations)
        for key, text in invitation_sources.items():
            self._invitations[key] = self.env.from_string(text)
        for key, text in self.sources.items():
            check_channel(key[0])
            if key[1] not in LOCALES:
                raise ValidationError(f"locale: must be one of {', '.join(LOCALES)}, got '{key[1]}'", field="locale")
            try:
                self._compiled[key] = self.env.from_string(text)
            except TemplateError as exc:
                raise ValidationError(f"template: {key[0]}/{key[1]}: {exc}", field="template") from None

    def _money(self, amount: Decimal) -> str:
        return str(format_currency(round_half_up(Decimal(amount), self._currency), self._currency,
                                   locale=self._locale))

    def _percent(self, rate: Decimal) -> str:
        return str(format_percent(Decimal(rate), "#,##0.00%", locale=self._locale))

    def _date(self, day: date) -> str:
        return str(format_date(day, "long", locale=self._locale))

    def render(self, channel: str, locale: str, offer: OfferTerms | None, *, bank: str = "", link: str = "") -> str:
        """One message text; the same figures always give the same text, so `render_cached` can reuse it."""
        key = (channel, locale)
        pool = self._compiled if offer is not None or not self._invitations else self._invitations
        template = pool.get(key) or pool.get((channel, "zh_CN"))
        if template is None:
            raise ValidationError(f"template: none for channel '{channel}'", field="template")
        self._locale, self._currency = locale, offer.currency if offer else "CNY"
        values: dict[str, Any] = {"bank": bank, "link": link}
        if offer is not None:
            values.update(limit=offer.limit, rate=offer.annual_rate, apr=offer.apr, expires_on=offer.expires_on)
        try:
            return str(template.render(**values))
        except (TemplateError, SecurityError, TypeError, ArithmeticError) as exc:
            raise ValidationError(f"template: {channel}/{locale}: {exc}", field="template") from None


class RenderCache:
    """Renders a campaign's messages once per distinct offer and pastes in each customer's tracked link:
    a campaign has few distinct figures, so 100,000 messages cost a few hundred renders."""

    _LINK = "\x00link\x00"

    def __init__(self, templates: MessageTemplates, channel: str, locale: str, bank: str = "") -> None:
        self.templates, self.channel, self.locale, self.bank = templates, channel, locale, bank
        self._cache: dict[OfferTerms | None, str] = {}

    def render(self, offer: OfferTerms | None, link: str) -> str:
        text = self._cache.get(offer)
        if text is None:
            text = self.templates.render(self.channel, self.locale, offer, bank=self.bank, link=self._LINK)
            self._cache[offer] = text
        return text.replace(self._LINK, link)


def tracking_token(campaign_id: int, customer_id: int, secret: str) -> str:
    """An opaque token for the tracked link in a message (same inputs give the same token)."""
    return hashlib.sha256(f"{secret}:{campaign_id}:{customer_id}".encode()).hexdigest()[:24]


# --- sending ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutgoingMessage:
    """A message handed to a sender: where to, what, and the outbox row it comes from."""

    message_id: int
    campaign_id: int
    customer_id: int
    channel: str
    locale: str
    body: str


@runtime_checkable
class Sender(Protocol):
    """Delivers a batch of messages (an SMS gateway, a push service, ...); returns the ids it accepted."""

    name: str

    def send(self, messages: Sequence[OutgoingMessage]) -> set[int]:
        ...


class LogSender:
    """The default sender: accepts every message and writes it to the log; the outbox table is the record."""

    name = "log"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or log
        self.sent = 0

    def send(self, messages: Sequence[OutgoingMessage]) -> set[int]:
        if self.logger.isEnabledFor(logging.DEBUG):
            for m in messages:
                self.logger.debug("outbox %s -> customer %s via %s: %s", m.message_id, m.customer_id, m.channel, m.body)
        self.logger.info("outbox: %d message(s) delivered by the log sender", len(messages))
        self.sent += len(messages)
        return {m.message_id for m in messages}
