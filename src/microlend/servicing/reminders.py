"""Repayment reminders (还款提醒), the rules: when a borrower is reminded (days before a due date, on the due
day, on chosen days past due, after each repayment), the quiet hours no message may wake anyone in, and the
wording of each message in Chinese and English. No I/O: the service queues and sends."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from microlend.core.errors import ValidationError
from microlend.core.money import round_half_up

BEFORE_DUE, DUE_DAY, OVERDUE, RECEIPT = "before_due", "due_day", "overdue", "receipt"
KINDS = (BEFORE_DUE, DUE_DAY, OVERDUE, RECEIPT)
LOCALES = ("zh_CN", "en")
SMS = "sms"

#: The words of each message; a bank may replace any of them. Fields: bank, loan, amount, due_date, days.
DEFAULT_TEMPLATES: dict[str, dict[str, str]] = {
    BEFORE_DUE: {
        "zh_CN": "【{bank}】温馨提示：您的贷款（编号{loan}）将于{due_date}到期，应还{amount}元，请按时还款。回T退订",
        "en": "[{bank}] Reminder: {amount} CNY on your loan {loan} is due on {due_date}. Please repay on time. "
              "Reply T to opt out",
    },
    DUE_DAY: {
        "zh_CN": "【{bank}】您的贷款（编号{loan}）今日（{due_date}）应还{amount}元，请确保还款账户余额充足。回T退订",
        "en": "[{bank}] {amount} CNY on your loan {loan} is due today ({due_date}). Please make sure your "
              "repayment account holds enough. Reply T to opt out",
    },
    OVERDUE: {
        "zh_CN": "【{bank}】您的贷款（编号{loan}）已逾期{days}天，逾期金额{amount}元。"
                 "请尽快还款，以免影响您的信用记录。如有困难请联系您的客户经理。回T退订",
        "en": "[{bank}] Your loan {loan} is {days} days overdue; {amount} CNY is outstanding. Please repay as soon "
              "as you can to protect your credit record, or call your loan officer if you are in difficulty. "
              "Reply T to opt out",
    },
    RECEIPT: {
        "zh_CN": "【{bank}】已收到您对贷款（编号{loan}）的还款{amount}元（入账日{due_date}），感谢您按时还款。",
        "en": "[{bank}] We received your repayment of {amount} CNY on loan {loan} (value date {due_date}). "
              "Thank you.",
    },
}
_SAMPLE = {"bank": "Bank", "loan": "1", "amount": "1,000.00", "due_date": "2026-01-01", "days": "3"}


@dataclass(frozen=True)
class ReminderSettings:
    """A bank's reminder rules; the defaults remind three days before and on the due day, send overdue
    notices on days 1, 7, 15 and 30 past due, and keep quiet from 21:00 to 08:00 in Shanghai."""

    days_before: tuple[int, ...] = (3,)
    overdue_days: tuple[int, ...] = (1, 7, 15, 30)
    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)
    timezone: str = "Asia/Shanghai"
    templates: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if any(not 1 <= d <= 30 for d in self.days_before) or len(set(self.days_before)) != len(self.days_before):
            raise ValidationError("days_before: distinct whole days between 1 and 30", field="days_before")
        if any(not 1 <= d <= 3650 for d in self.overdue_days) or len(set(self.overdue_days)) != len(self.overdue_days):
            raise ValidationError("overdue_days: distinct whole days between 1 and 3650", field="overdue_days")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationError(f"timezone: '{self.timezone}' is not a time zone", field="timezone") from exc
        for kind, by_locale in self.templates.items():
            if kind not in KINDS:
                raise ValidationError(f"templates: '{kind}' is not one of {', '.join(KINDS)}", field="templates")
            for locale, text in by_locale.items():
                if locale not in LOCALES:
                    raise ValidationError(f"templates.{kind}: '{locale}' is not zh_CN or en", field="templates")
                try:
                    text.format(**_SAMPLE)
                except (KeyError, IndexError, ValueError) as exc:
                    raise ValidationError(f"templates.{kind}.{locale}: unknown or broken field {exc}; use "
                                          "{bank} {loan} {amount} {due_date} {days}", field="templates") from exc

    def template(self, kind: str, locale: str) -> str:
        loc = locale if locale in LOCALES else "zh_CN"
        return self.templates.get(kind, {}).get(loc) or DEFAULT_TEMPLATES[kind][loc]

    def quiet(self, at: datetime) -> bool:
        """Whether `at` falls in the quiet hours (a span across midnight, e.g. 21:00–08:00, is allowed)."""
        local = at.astimezone(ZoneInfo(self.timezone)).time()
        if self.quiet_start == self.quiet_end:
            return False
        if self.quiet_start < self.quiet_end:
            return self.quiet_start <= local < self.quiet_end
        return local >= self.quiet_start or local < self.quiet_end

    def next_allowed(self, at: datetime) -> datetime:
        """`at` itself outside quiet hours, else the end of the quiet hours (UTC)."""
        if not self.quiet(at):
            return at
        tz = ZoneInfo(self.timezone)
        local = at.astimezone(tz)
        end = datetime.combine(local.date(), self.quiet_end, tzinfo=tz)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.quiet_end, tzinfo=tz)
        return end.astimezone(UTC)

    def facts(self) -> dict[str, Any]:
        return {"days_before": list(self.days_before), "overdue_days": list(self.overdue_days),
                "quiet_start": self.quiet_start.strftime("%H:%M"), "quiet_end": self.quiet_end.strftime("%H:%M"),
                "timezone": self.timezone, "templates": self.templates}


def render(settings: ReminderSettings, kind: str, locale: str, *, bank: str, loan_id: int, amount: Decimal,
           ref_date: date, days: int) -> str:
    """The text of one message in the bank's wording."""
    return settings.template(kind, locale).format(
        bank=bank, loan=loan_id, amount=f"{round_half_up(amount):,}", due_date=ref_date.isoformat(),
        days=days)
