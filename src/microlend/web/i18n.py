"""Languages of the pages: English source strings, zh-CN catalogue (Babel .po read at start-up)."""

from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from importlib import resources

from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
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


def money(amount: Decimal | None, currency: str, locale: str) -> str:
    if amount is None:
        return ""
    return format_currency(amount, currency, locale=locale)


def number(value: Decimal | float | int | None, locale: str) -> str:
    return "" if value is None else format_decimal(value, locale=locale)


def day(value: date | None, locale: str) -> str:
    return "" if value is None else format_date(value, format="medium", locale=locale)


def moment(value: datetime | None, locale: str) -> str:
    return "" if value is None else format_datetime(value, format="short", locale=locale, tzinfo=None)
