"""Collections (催收), the pure rules: which queue and next action a case gets by its strategy (bucket, amount,
branch), and the conduct rules a contact must pass (allowed hours in the bank's time zone, contacts per day,
only the borrower and registered contacts, the bank's respectful templates). No I/O: times and counts are
passed in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

CHANNELS = ("call", "sms", "visit", "letter")
OUTCOMES = ("promise", "refused", "no_answer", "wrong_number")
BORROWER = "borrower"

#: the conduct rules, by the name a refused contact is given
ALLOWED_HOURS, DAILY_LIMIT, ALLOWED_PARTY, TEMPLATE = "allowed_hours", "daily_limit", "allowed_party", "template"

OPEN, CLOSED = "open", "closed"
CURED, WRITTEN_OFF = "cured", "written_off"


@dataclass(frozen=True)
class Route:
    """Where a case of a bucket goes: the queue and the actions of its strategy, first action next."""

    bucket: str
    queue: str
    actions: tuple[str, ...]
    #: a case at or above this amount overdue goes to the queue named here instead (0: never)
    large_amount: Decimal = Decimal(0)
    large_queue: str = ""


DEFAULT_ROUTES: tuple[Route, ...] = (
    Route("M1", "early", ("reminder", "call")),
    Route("M2", "officer", ("officer_call", "visit")),
    Route("M3+", "field", ("field_visit", "legal")),
)

DEFAULT_TEMPLATES: Mapping[str, Mapping[str, str]] = {
    "reminder": {"zh": "您好，您的贷款已逾期{days}天，逾期金额{amount}元，请尽快还款。如有困难请联系我们。",
                 "en": "Hello, your loan is {days} days past due ({amount} CNY). Please repay soon, or talk to us."},
    "promise_follow_up": {"zh": "您好，感谢您承诺于{date}还款{amount}元。",
                          "en": "Thank you for promising to repay {amount} CNY by {date}."},
}


@dataclass(frozen=True)
class CollectionSettings:
    """A bank's collections strategy and conduct rules; the defaults when it set none."""

    routes: tuple[Route, ...] = DEFAULT_ROUTES
    allowed_start: time = time(8, 0)
    allowed_end: time = time(21, 0)  # 00:00: until midnight
    timezone: str = "Asia/Shanghai"
    max_contacts_per_day: int = 3
    templates: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: dict(DEFAULT_TEMPLATES))
    #: branch -> queue prefix, so a branch's cases stay with its own collectors (empty: one pool)
    branch_queues: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"routes": [{"bucket": r.bucket, "queue": r.queue, "actions": list(r.actions),
                            "large_amount": str(r.large_amount), "large_queue": r.large_queue} for r in self.routes],
                "branch_queues": dict(self.branch_queues)}


def bucket_group(bucket: str) -> str:
    """M1, M2, or M3+ for every bucket from M3 on (M0 is current: no case)."""
    if bucket in ("M1", "M2"):
        return bucket
    if bucket.startswith("M") and bucket[1:].isdigit() and int(bucket[1:]) >= 3:
        return "M3+"
    return bucket


def route(settings: CollectionSettings, bucket: str, amount_overdue: Decimal, branch: str = "") -> tuple[str, str]:
    """(queue, next action) for a case by its bucket, amount overdue and branch."""
    group = bucket_group(bucket)
    chosen = next((r for r in settings.routes if r.bucket == group), settings.routes[-1])
    queue = chosen.queue
    if chosen.large_amount > 0 and amount_overdue >= chosen.large_amount and chosen.large_queue:
        queue = chosen.large_queue
    prefix = settings.branch_queues.get(branch, "")
    return (f"{prefix}:{queue}" if prefix else queue), chosen.actions[0]


def routes_from_json(data: Sequence[Mapping[str, Any]]) -> tuple[Route, ...]:
    routes = tuple(Route(str(d["bucket"]), str(d["queue"]), tuple(str(a) for a in d["actions"]),
                         Decimal(str(d.get("large_amount", "0"))), str(d.get("large_queue", ""))) for d in data)
    if not routes or any(not r.actions for r in routes):
        raise ValueError("every route needs at least one action")
    return routes


@dataclass(frozen=True)
class ContactAttempt:
    channel: str
    party: str
    at: datetime  # aware
    template: str | None = None


def conduct_violation(settings: CollectionSettings, attempt: ContactAttempt, *, contacts_today: int,
                      registered: Sequence[str]) -> tuple[str, str] | None:
    """The first conduct rule the contact breaks, as (rule name, why), or None when it may go ahead."""
    local = attempt.at.astimezone(ZoneInfo(settings.timezone))
    if not allowed_at(settings, local.time()):
        return ALLOWED_HOURS, (f"contact at {local:%H:%M} outside the allowed hours "
                               f"{settings.allowed_start:%H:%M}–{settings.allowed_end:%H:%M} ({settings.timezone})")
    if contacts_today >= settings.max_contacts_per_day:
        return DAILY_LIMIT, f"{contacts_today} contacts today already, the most allowed per day is " \
                            f"{settings.max_contacts_per_day}"
    if attempt.party != BORROWER and attempt.party not in registered:
        return ALLOWED_PARTY, "only the borrower and the borrower's registered contacts may be contacted"
    written = attempt.channel in ("sms", "letter")
    if written and (attempt.template is None or attempt.template not in settings.templates):
        return TEMPLATE, "a written message must use one of the bank's approved templates"
    return None


def allowed_at(settings: CollectionSettings, at: time) -> bool:
    """Within the bank's allowed hours (start inclusive, end exclusive; an end of 00:00 means until midnight)."""
    end_of_day = settings.allowed_end == time(0, 0)
    return settings.allowed_start <= at and (end_of_day or at < settings.allowed_end)


def local_day(settings: CollectionSettings, at: datetime) -> tuple[datetime, datetime]:
    """The bank's local day around `at`, as aware bounds (start inclusive, end exclusive)."""
    zone = ZoneInfo(settings.timezone)
    local = at.astimezone(zone)
    start = datetime.combine(local.date(), time(0), tzinfo=zone)
    end = datetime.combine(local.date(), time(23, 59, 59, 999999), tzinfo=zone)
    return start, end


#: The bucket groups a strategy routes (each once), and the words a respectful message never uses: threats,
#: insults, shaming before family or contacts (催收自律公约: no violence, threats, insults or disclosure to others).
BUCKET_GROUPS = ("M1", "M2", "M3+")
DISRESPECTFUL = ("威胁", "恐吓", "曝光", "坐牢", "抓你", "通讯录", "家人", "单位领导", "骗子", "老赖", "废物", "滚",
                 "jail", "expose", "shame", "idiot", "liar", "your family", "your employer", "threat")
MAX_TEMPLATE = 500
TEMPLATE_FIELDS = frozenset({"days", "amount", "date"})


def settings_problems(settings: CollectionSettings) -> list[tuple[str, str]]:
    """What is wrong with a strategy and its conduct rules, as (field, why); empty when the bank may use them."""
    problems: list[tuple[str, str]] = []
    buckets = [r.bucket for r in settings.routes]
    if sorted(buckets) != sorted(BUCKET_GROUPS):
        problems.append(("routes", f"one route for each of {', '.join(BUCKET_GROUPS)}, got {', '.join(buckets)}"))
    for i, r in enumerate(settings.routes):
        if not r.queue.strip() or not r.actions or any(not a.strip() for a in r.actions):
            problems.append((f"routes.{i}", "a queue and at least one action"))
        if r.large_amount < 0 or (r.large_amount > 0 and not r.large_queue.strip()):
            problems.append((f"routes.{i}.large_queue", "a large amount needs the queue its cases go to"))
    if not 1 <= settings.max_contacts_per_day <= 10:
        problems.append(("max_contacts_per_day", "between 1 and 10"))
    if settings.allowed_end != time(0, 0) and settings.allowed_start >= settings.allowed_end:
        problems.append(("allowed_end", "must be after allowed_start"))
    elif settings.allowed_start < time(7, 0) or settings.allowed_end == time(0, 0) \
            or settings.allowed_end > time(22, 0):
        problems.append(("allowed_start", "contacts fall between 07:00 and 22:00"))
    if not settings.templates:
        problems.append(("templates", "at least one approved template"))
    for name, texts in settings.templates.items():
        if set(texts) != {"zh", "en"}:
            problems.append((f"templates.{name}", "a text in zh and one in en"))
            continue
        for lang, text in texts.items():
            word = next((w for w in DISRESPECTFUL if w.lower() in text.lower()), None)
            unknown = {f for f in _fields(text) if f not in TEMPLATE_FIELDS}
            if not text.strip() or len(text) > MAX_TEMPLATE:
                problems.append((f"templates.{name}.{lang}", f"1 to {MAX_TEMPLATE} characters"))
            elif word is not None:
                problems.append((f"templates.{name}.{lang}", f"not respectful: '{word}'"))
            elif unknown:
                problems.append((f"templates.{name}.{lang}",
                                 f"unknown field {{{sorted(unknown)[0]}}}; fields are {{days}}, {{amount}}, {{date}}"))
    return problems


def _fields(text: str) -> set[str]:
    import re

    return set(re.findall(r"\{([^{}]*)\}", text))
