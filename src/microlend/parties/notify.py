"""Text messages to a customer's registered mobile (短信通知): the port a bank connects its SMS gateway to,
and the sandbox sender used until it does (local and test modes, the demo), which keeps what it sent in
memory so a test — or the demo acting as the borrower's phone — can read it."""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from microlend.core.crypto import mask_phone

log = logging.getLogger("microlend.parties.sms")
_CODE = re.compile(r"(?:验证码|Code )(\d{6})(?!\d)")  # as the code texts say it (a bank's name may hold digits)


class SmsSender(Protocol):
    """Delivers one text message to one mobile; returns the gateway's message id."""

    name: str

    def send(self, mobile: str, text: str, *, at: datetime) -> str: ...


@dataclass(frozen=True)
class SentSms:
    message_id: str
    mobile: str
    text: str
    at: datetime

    @property
    def code(self) -> str | None:
        """The six-digit one-time code the message carries, if any."""
        found = _CODE.search(self.text)
        return found.group(1) if found else None


class SandboxSms:
    """Sends nothing: keeps the messages (the last 1,000) for whoever holds the phone in a test or the demo.
    The log names only the masked mobile, never the text (it may carry a code)."""

    name = "sandbox"

    def __init__(self, keep: int = 1_000) -> None:
        self._keep = keep
        self._sent: list[SentSms] = []
        self._lock = threading.Lock()
        self._seq = 0

    def send(self, mobile: str, text: str, *, at: datetime) -> str:
        with self._lock:
            self._seq += 1
            message = SentSms(f"sandbox-{self._seq}", mobile, text, at)
            self._sent = [*self._sent[-(self._keep - 1):], message]
        log.info("sms %s to %s held by the sandbox sender", message.message_id, mask_phone(mobile))
        return message.message_id

    def message(self, message_id: str) -> SentSms | None:
        with self._lock:
            return next((m for m in reversed(self._sent) if m.message_id == message_id), None)

    def messages_to(self, mobile: str) -> list[SentSms]:
        with self._lock:
            return [m for m in self._sent if m.mobile == mobile]

    def last_to(self, mobile: str) -> SentSms | None:
        found = self.messages_to(mobile)
        return found[-1] if found else None

    def last_code(self, mobile: str) -> str | None:
        """The code in the latest message to `mobile` (what the borrower reads off their phone)."""
        last = self.last_to(mobile)
        return last.code if last else None


sandbox = SandboxSms()
_sender: SmsSender = sandbox


def set_sms_sender(sender: SmsSender) -> None:
    """Connect the bank's SMS gateway (the sandbox sender answers until then)."""
    global _sender
    _sender = sender


def sms_sender() -> SmsSender:
    return _sender
