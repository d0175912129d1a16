"""The loan contract (借款合同) as a document: its terms, rendered from a Jinja2 template in zh-CN or en, and
the SHA-256 of the exact text the borrower signs. Pure: the terms are gathered by `acceptance`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from microlend.core.errors import ValidationError
from microlend.servicing.schedules import Schedule

LOCALES = ("zh_CN", "en")


@dataclass(frozen=True)
class Party:
    name: str
    kind: str  # person | business
    id_number: str  # masked
    mobile: str  # masked
    address: str


@dataclass(frozen=True)
class ContractTerms:
    """Everything the contract states; equal terms render to an equal document (and hash)."""

    number: str
    bank: str
    borrower: Party
    application_id: int
    product_name: str
    product_name_zh: str
    method: str
    currency: str
    amount: Decimal
    term_months: int
    annual_rate: Decimal
    apr: Decimal
    penalty_rate: Decimal
    upfront_fee: Decimal
    fee_mode: str
    grace_days: int
    early_repayment_allowed: bool
    purpose: str
    as_of: date
    schedule: Schedule | None  # None for a revolving credit line


@dataclass(frozen=True)
class ContractDocument:
    number: str
    locale: str
    html: str
    sha256: str


def contract_number(tenant_id: int, application_id: int) -> str:
    """借款合同编号: one contract per application, readable on the phone and on paper."""
    return f"JK-{tenant_id:03d}-{application_id:08d}"


def check_locale(locale: str) -> str:
    loc = "zh_CN" if locale in ("zh", "zh-CN", "zh_CN") else locale
    if loc not in LOCALES:
        raise ValidationError(f"locale: must be one of {', '.join(LOCALES)}", field="locale")
    return loc


@lru_cache(maxsize=2)
def _environment(locale: str) -> Environment:
    env = Environment(loader=PackageLoader("microlend.origination", "templates"),
                      autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["money"] = lambda v, currency="CNY": format_currency(v, currency, locale=locale)
    env.filters["number"] = lambda v: format_decimal(v, format="#,##0.00", locale=locale)
    env.filters["percent"] = lambda v: f"{(Decimal(v) * 100).quantize(Decimal('0.01'))}%"
    env.filters["day"] = lambda v: format_date(v, format="long" if locale == "en" else "yyyy年M月d日", locale=locale)
    return env


def render_contract(terms: ContractTerms, locale: str) -> ContractDocument:
    """The contract as a printable HTML document, and the SHA-256 of its UTF-8 bytes."""
    loc = check_locale(locale)
    html = _environment(loc).get_template(f"loan_contract.{loc}.html").render(t=terms)
    return ContractDocument(terms.number, loc, html, sha256(html))


def sha256(document: str) -> str:
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def printable(document: str, locale: str, **context: object) -> str:
    """The document with its signature record (or a draft mark) and a print button added at the end; the
    document itself, which the hash covers, is left as signed."""
    panel = _environment(check_locale(locale)).get_template("_signature.html").render(locale=locale, **context)
    at = document.rfind("</body>")
    return document[:at] + panel + document[at:] if at >= 0 else document + panel
