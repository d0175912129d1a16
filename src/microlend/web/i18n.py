"""Languages of the pages: English source strings, zh-CN catalogue (Babel .po read at start-up)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, get_currency_precision
from babel.support import NullTranslations, Translations

LOCALES = ("zh_CN", "en")
LOCALE_LABELS = {"zh_CN": "中文", "en": "English"}
LANG_COOKIE = "ml_lang"


@lru_cache(maxsize=4)
def translations(locale: str) -> NullTranslations:
    """Compile the locale's .po catalogues in memory (no generated .mo files in the tree). Each area of the
    pages keeps its own catalogue (messages.po, servicing.po, ...); they are merged here."""
    if locale == "en":
        return NullTranslations()
    folder = resources.files("microlend.web").joinpath("locale", locale, "LC_MESSAGES")
    merged: Translations | None = None
    for po in sorted((f for f in folder.iterdir() if f.name.endswith(".po")), key=lambda f: f.name):
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=locale)
        buf = io.BytesIO()
        write_mo(buf, catalog)
        buf.seek(0)
        part = Translations(fp=buf)
        if merged is None:
            merged = part
        else:
            merged.merge(part)
    return merged or NullTranslations()


def pick_locale(cookie: str | None, accept_language: str | None, default: str) -> str:
    if cookie in LOCALES:
        return cookie
    if accept_language:
        for part in accept_language.split(","):
            tag = part.split(";")[0].strip().lower()
            if tag.startswith("zh"):
                return "zh_CN"
            if tag.startswith("en"):
                return "en"
    return default if default in LOCALES else "zh_CN"


#: The time zone people see times in when the bank has not set one (its calendar's zone is the bank's).
DEFAULT_TIMEZONE = "Asia/Shanghai"
#: What a figure that cannot be computed (nothing to count) shows instead of a number.
NO_FIGURE = "—"


def _decimal(value: Decimal | float | int | str) -> Decimal:
    """An exact Decimal of a figure; a float goes through its shortest repr (never its binary expansion)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def minor_digits(currency: str) -> int:
    """Digits after the decimal point of a currency's amounts (CNY 2, JPY 0, KWD 3)."""
    return int(get_currency_precision(currency.upper()))


def rounded(amount: Decimal | float | int | str, currency: str) -> Decimal:
    """An amount at its currency's minor unit, half up, without a negative zero."""
    step = Decimal(1).scaleb(-minor_digits(currency))
    value = _decimal(amount).quantize(step, rounding=ROUND_HALF_UP)
    return value + 0 if value else abs(value)


def money(amount: Decimal | float | int | str | None, currency: str = "CNY", locale: str = "zh_CN") -> str:
    """An amount with its currency sign, grouped, always with the currency's minor digits (¥1,744.40)."""
    if amount is None or amount == "":
        return ""
    try:
        value = rounded(amount, currency)
    except (InvalidOperation, ValueError):
        return str(amount)
    return format_currency(value, currency.upper(), locale=locale, currency_digits=True)


def amount(value: Decimal | float | int | str | None, currency: str = "CNY", locale: str = "zh_CN") -> str:
    """An amount without its sign, grouped, with the currency's minor digits (1,744.40): table columns."""
    if value is None or value == "":
        return ""
    try:
        exact = rounded(value, currency)
    except (InvalidOperation, ValueError):
        return str(value)
    digits = minor_digits(currency)
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(exact, format=pattern, locale=locale)


def number(value: Decimal | float | int | None, locale: str) -> str:
    """A count or measure, grouped, in plain digits (never 1.842e+04); a Decimal keeps the digits it has."""
    if value is None:
        return ""
    try:
        exact = _decimal(value)
    except (InvalidOperation, ValueError):
        return str(value)
    places = -int(exact.as_tuple().exponent) if exact.is_finite() else 0
    if isinstance(value, Decimal) and 0 < places <= 12:  # an exact figure shows the digits it was given
        return format_decimal(exact, format="#,##0." + "0" * places, locale=locale)
    return format_decimal(exact, locale=locale, decimal_quantization=False)


def percent(value: Decimal | float | int | None, locale: str, digits: int = 1, *, signed: bool = False) -> str:
    """A share (0.3) as a percentage with fixed digits (30.0%); none -> "—" (nothing to divide)."""
    if value is None:
        return NO_FIGURE
    try:
        scaled = (_decimal(value) * 100).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return NO_FIGURE
    scaled = scaled + 0 if scaled else abs(scaled)
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    text = format_decimal(scaled, format=pattern, locale=locale) + "%"
    return f"+{text}" if signed and scaled > 0 else text


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def local(value: datetime, timezone: str | None = None) -> datetime:
    """A moment in the bank's time zone; a naive moment is UTC (how the database keeps them)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(zone(timezone))


def day(value: date | None, locale: str, timezone: str | None = None) -> str:
    """A date (medium form); a moment is first taken to the bank's day."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = local(value, timezone).date()
    return format_date(value, format="medium", locale=locale)


def moment(value: datetime | None, locale: str, timezone: str | None = None) -> str:
    """A moment in the bank's time zone (short form), never UTC: the demo's 1 AM UTC is 9 AM in Shanghai."""
    if value is None:
        return ""
    if not isinstance(value, datetime):
        return day(value, locale, timezone)
    return format_datetime(local(value, timezone), format="short", locale=locale, tzinfo=zone(timezone))
