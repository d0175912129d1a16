"""The simulated world behind the provider sandboxes: one small business per subject id, drawn once from the
subject and a seed, whose monthly sales, days of card takings and life events (loans, overdue spells, court
cases, registry changes) are fixed in time. A provider reads this world as of a date and shows only what had
happened by then, so an earlier `as_of` always sees a prefix of a later one's history."""

from __future__ import annotations

import calendar
import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Literal, TypeVar
from zoneinfo import ZoneInfo

from microlend.core.errors import ValidationError
from microlend.demo import identities
from microlend.demo.sandbox.profiles import profile_of
from microlend.parties.kyc import validate_resident_id, validate_uscc

T = TypeVar("T")
SubjectKind = Literal["business", "person"]
CHINA = ZoneInfo("Asia/Shanghai")
CENT = Decimal("0.01")

#: Yearly sales (CNY) of an individual business (个体工商户) and of a small company, by industry: the lower and
#: upper end of a log-uniform draw (a village shop sells 0.2-1 M a year, a small manufacturer 2-10 M).
SALES_RANGE: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "retail": ((200_000, 1_000_000), (1_000_000, 5_000_000)),
    "catering": ((300_000, 1_500_000), (1_000_000, 6_000_000)),
    "agriculture": ((150_000, 800_000), (1_000_000, 8_000_000)),
    "manufacturing": ((800_000, 3_000_000), (2_000_000, 10_000_000)),
    "transport": ((300_000, 1_500_000), (1_000_000, 6_000_000)),
    "services": ((150_000, 800_000), (800_000, 4_000_000)),
    "wholesale": ((500_000, 3_000_000), (3_000_000, 15_000_000)),
}
#: Share of sales invoiced through the e-invoice platform (shops sell mostly to people who ask for no fapiao).
INVOICE_SHARE = {
    "retail": (0.15, 0.40),
    "catering": (0.20, 0.50),
    "agriculture": (0.20, 0.60),
    "manufacturing": (0.90, 1.00),
    "transport": (0.70, 1.00),
    "services": (0.30, 0.70),
    "wholesale": (0.85, 1.00),
}
#: Average invoice and average card/QR payment (CNY).
INVOICE_TICKET = {
    "retail": 400,
    "catering": 600,
    "agriculture": 5_000,
    "manufacturing": 25_000,
    "transport": 3_000,
    "services": 2_000,
    "wholesale": 12_000,
}
PAYMENT_TICKET = {
    "retail": 38,
    "catering": 52,
    "agriculture": 300,
    "manufacturing": 2_000,
    "transport": 500,
    "services": 80,
    "wholesale": 1_500,
}
#: Whether a business takes card/QR payments through an acquirer (probability) and the share of its sales paid so.
MERCHANT = {
    "retail": (0.92, 0.55, 0.90),
    "catering": (0.95, 0.60, 0.90),
    "services": (0.85, 0.40, 0.80),
    "agriculture": (0.30, 0.10, 0.30),
    "transport": (0.30, 0.20, 0.40),
    "manufacturing": (0.15, 0.05, 0.20),
    "wholesale": (0.25, 0.05, 0.25),
}
#: GB/T 4754-2017 industry codes (门类 letter + 小类 4 digits) typical of each industry.
INDUSTRY_CODES = {
    "retail": ("F5211", "F5212", "F5213"),
    "catering": ("H6210", "H6220"),
    "agriculture": ("A0141", "A0151", "A0311"),
    "manufacturing": ("C1761", "C3311", "C2927"),
    "transport": ("G5431",),
    "services": ("O8010", "O8040", "O8060"),
    "wholesale": ("F5121", "F5131", "F5191"),
}
INDUSTRY_WORD = {
    "retail": "商贸",
    "catering": "餐饮管理",
    "agriculture": "农业开发",
    "manufacturing": "机械制造",
    "transport": "物流",
    "services": "信息咨询",
    "wholesale": "贸易",
}
#: What an individual business (个体工商户) of each industry calls itself: 王记便利店, 李记果园.
SHOP_KINDS = {
    "retail": ("便利店", "五金店", "服装店", "茶叶店", "农资店"),
    "catering": ("小吃店", "面馆", "饭店"),
    "agriculture": ("养殖场", "果园", "种植场"),
    "services": ("修车铺", "快递点", "理发店"),
    "transport": ("货运部",),
    "manufacturing": ("加工厂",),
    "wholesale": ("批发部",),
}
TRADE_NAMES = ("鑫源", "恒达", "顺发", "华盛", "永丰", "金旺", "宏远", "兴隆", "瑞丰", "佳和", "盛泰", "广源")
#: County-level cities of `identities.REGIONS` and the one-character name of their province (for case numbers).
COUNTIES = {
    "330782": "义乌",
    "330381": "瑞安",
    "350583": "南安",
    "370283": "平度",
    "410184": "新郑",
    "420281": "大冶",
    "430181": "浏阳",
    "440981": "高州",
    "510181": "都江堰",
    "520181": "清镇",
    "130181": "辛集",
    "320582": "张家港",
    "340181": "巢湖",
    "360281": "乐平",
    "450881": "桂平",
    "610481": "兴平",
}
PROVINCES = {
    "33": "浙",
    "35": "闽",
    "37": "鲁",
    "41": "豫",
    "42": "鄂",
    "43": "湘",
    "44": "粤",
    "51": "川",
    "52": "贵",
    "13": "冀",
    "32": "苏",
    "34": "皖",
    "36": "赣",
    "45": "桂",
    "61": "陕",
    "11": "京",
}
#: Spring Festival (春节) day by year: the month around it is the low point of most small businesses' year.
SPRING_FESTIVAL = {
    2014: date(2014, 1, 31),
    2015: date(2015, 2, 19),
    2016: date(2016, 2, 8),
    2017: date(2017, 1, 28),
    2018: date(2018, 2, 16),
    2019: date(2019, 2, 5),
    2020: date(2020, 1, 25),
    2021: date(2021, 2, 12),
    2022: date(2022, 2, 1),
    2023: date(2023, 1, 22),
    2024: date(2024, 2, 10),
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
    2028: date(2028, 1, 26),
    2029: date(2029, 2, 13),
    2030: date(2030, 2, 3),
    2031: date(2031, 1, 23),
    2032: date(2032, 2, 11),
    2033: date(2033, 1, 31),
    2034: date(2034, 2, 19),
    2035: date(2035, 2, 8),
}
#: Month-of-year deviation of sales (before the Spring Festival effect): a fourth-quarter peak for most, the
#: harvest for farms.
MONTH_SHAPE = {
    "default": (0.00, 0.00, -0.05, -0.03, 0.00, 0.02, -0.04, -0.04, 0.02, 0.05, 0.10, 0.18),
    "agriculture": (-0.10, -0.15, -0.20, -0.15, -0.05, 0.00, 0.05, 0.15, 0.35, 0.40, 0.10, 0.00),
    "catering": (0.05, 0.00, -0.05, 0.00, 0.05, 0.00, 0.02, 0.02, 0.00, 0.10, 0.00, 0.12),
}
TAX_GRADES = {
    "good": "AAB",
    "average": "BBM",
    "declining": "BMC",
    "seasonal": "ABB",
    "overdue": "MCC",
    "enforcement": "CDD",
    "shell": "MMD",
    "thin": "MMM",
}
#: Monthly sales noise (sigma of a log-normal factor) and the share of months not declared, by profile.
NOISE = {
    "good": 0.06,
    "average": 0.15,
    "declining": 0.10,
    "seasonal": 0.10,
    "overdue": 0.14,
    "enforcement": 0.18,
    "shell": 0.30,
    "thin": 0.20,
}
UNDECLARED = {
    "good": 0.005,
    "average": 0.04,
    "declining": 0.03,
    "seasonal": 0.01,
    "overdue": 0.04,
    "enforcement": 0.08,
    "shell": 0.02,
    "thin": 0.02,
}
#: Credit inquiries per month (Poisson mean), by profile.
INQUIRY_RATE = {
    "good": 0.12,
    "average": 0.30,
    "declining": 0.60,
    "seasonal": 0.20,
    "overdue": 0.50,
    "enforcement": 0.60,
    "shell": 0.40,
    "thin": 0.50,
}


def today_in_china() -> date:
    return datetime.now(CHINA).date()


def subject_kind(subject: str) -> tuple[str, SubjectKind] | None:
    """The normalised id and its kind (a USCC is a business, a resident ID a person), None if neither."""
    value = subject.strip().upper()
    checks: list[tuple[SubjectKind, bool]] = (
        [("business", True)] if value[:1] == "9" else [("person", False), ("business", True)]
    )
    for kind, is_uscc in checks:
        try:
            return (validate_uscc(value) if is_uscc else validate_resident_id(value)), kind
        except ValidationError:
            continue
    return None


class Draws:
    """Uniform draws in [0, 1) fixed by (seed, subject, question): the same question gets the same answer, in
    any order and in any process, so a month's figure never depends on which months were asked before it."""

    def __init__(self, seed: int, subject: str) -> None:
        self._key = f"{seed}|{subject}|".encode()

    def unit(self, *question: object) -> float:
        digest = hashlib.blake2b(self._key + "|".join(map(str, question)).encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    def uniform(self, lo: float, hi: float, *question: object) -> float:
        return lo + (hi - lo) * self.unit(*question)

    def log_uniform(self, lo: float, hi: float, *question: object) -> float:
        return math.exp(self.uniform(math.log(lo), math.log(hi), *question))

    def integer(self, lo: int, hi: int, *question: object) -> int:
        """lo..hi inclusive."""
        return lo + min(int(self.unit(*question) * (hi - lo + 1)), hi - lo)

    def choice(self, options: Sequence[T], *question: object) -> T:
        return options[self.integer(0, len(options) - 1, *question)]

    def normal(self, *question: object) -> float:
        u1 = max(self.unit(*question, "n1"), 1e-12)
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * self.unit(*question, "n2"))

    def poisson(self, mean: float, *question: object) -> int:
        u, k = self.unit(*question), 0
        p = cumulative = math.exp(-mean)
        while u > cumulative and k < 50:
            k += 1
            p *= mean / k
            cumulative += p
        return k

    def rng(self, *question: object) -> random.Random:
        """A stdlib generator for the helpers of `microlend.demo.identities`."""
        return random.Random(int(self.unit(*question) * 2**53))


def month_index(d: date) -> int:
    return d.year * 12 + d.month - 1


def month_of(index: int) -> tuple[int, int]:
    return index // 12, index % 12 + 1


def period(index: int) -> str:
    year, month = month_of(index)
    return f"{year:04d}-{month:02d}"


def add_months(d: date, months: int) -> date:
    year, month = month_of(month_index(d) + months)
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def cents(amount: float) -> Decimal:
    """A simulated amount in whole cents (never negative)."""
    return Decimal(max(int(amount * 100), 0)).scaleb(-2)


def money(amount: Decimal) -> str:
    """Money on the wire: a string with two decimals."""
    return str(amount.quantize(CENT))


@dataclass(frozen=True)
class Loan:
    lender: int
    opened: date
    due: date
    amount: Decimal
    amortising: bool

    def balance(self, as_of: date) -> Decimal:
        if not self.amortising:
            return self.amount
        term = (self.due - self.opened).days
        left = (self.due - as_of).days
        return (self.amount * left / term).quantize(CENT)


@dataclass(frozen=True)
class OverdueSpell:
    """Months overdue 1, 2, ... from `start` (a month index) for `months` months."""

    start: int
    months: int


@dataclass(frozen=True)
class Case:
    case_no: str
    filed_on: date
    closed_on: date | None
    amount: Decimal


@dataclass(frozen=True)
class Business:
    """What one subject is, drawn once: every provider reads the same business."""

    subject: str
    kind: SubjectKind
    profile: str
    seed: int
    anchor: date
    industry: str
    individual: bool
    region: str
    registered_on: date
    annual_sales: float
    growth: float
    decline_from: int | None
    decline_rate: float
    seasonality: float
    invoice_share: float
    cost_ratio: float
    merchant_since: date | None
    card_share: float

    @property
    def draws(self) -> Draws:
        return Draws(self.seed, self.subject)

    # --- sales -------------------------------------------------------------------------------------------

    def monthly_sales(self, index: int) -> Decimal:
        """What the business really sold in the month `index` (before it opened: nothing)."""
        opened = month_index(self.registered_on)
        if index < opened:
            return Decimal("0.00")
        d = self.draws
        year, month = month_of(index)
        level = self.annual_sales / 12
        anchor = month_index(self.anchor)
        if self.decline_from is not None:
            level *= (1 + self.growth) ** (max(min(index, self.decline_from) - anchor, -120) / 12)
            level *= (1 - self.decline_rate) ** (max(index - self.decline_from, 0) / 12)
        else:
            level *= (1 + self.growth) ** (max(index - anchor, -120) / 12)
        shape = MONTH_SHAPE.get(self.industry, MONTH_SHAPE["default"])[month - 1]
        level *= max(1 + self.seasonality * shape, 0.05) * festival_month_factor(self.industry, year, month)
        level *= min(0.3 + 0.7 * (index - opened) / 6, 1.0)
        level *= math.exp(NOISE[self.profile] * d.normal("sales", index) - NOISE[self.profile] ** 2 / 2)
        if self.profile == "average" and d.unit("zero", index) < 0.04:
            return Decimal("0.00")
        return cents(level)

    def declared_sales(self, index: int) -> Decimal | None:
        """The month's VAT declaration (None: not declared); a shell declares nothing or next to nothing."""
        if index < month_index(self.registered_on) or self.draws.unit("undeclared", index) < UNDECLARED[self.profile]:
            return None
        if self.profile == "shell":
            if self.draws.unit("shell-declares") < 0.6:
                return Decimal("0.00")
            return cents(float(self.issued_amount(index)) * self.draws.uniform(0.0, 0.02, "shell-sales", index))
        return self.monthly_sales(index)

    def vat_rate(self) -> Decimal:
        """Small-scale taxpayers pay 1 % (3 % reduced); a general taxpayer's net VAT is a few % of sales."""
        if self.annual_sales < 5_000_000:
            return Decimal("0.01")
        return Decimal(self.draws.integer(20, 40, "vat")) / 1000

    def vat_paid(self, sales: Decimal) -> Decimal:
        if self.individual and sales <= 100_000:  # exempt below 100 000 CNY a month
            return Decimal("0.00")
        return (sales * self.vat_rate()).quantize(CENT)

    # --- invoices -----------------------------------------------------------------------------------------

    def issued_amount(self, index: int) -> Decimal:
        d = self.draws
        if index < month_index(self.registered_on):
            return Decimal("0.00")
        if self.profile == "shell":
            if d.unit("shell-issues", index) > 0.7:
                return Decimal("0.00")
            return cents(self.annual_sales / 12 * d.uniform(0.4, 2.2, "shell-amount", index))
        share = min(self.invoice_share * d.uniform(0.9, 1.08, "inv-share", index), 1.0)
        return cents(float(self.monthly_sales(index)) * share)

    def received_amount(self, index: int) -> Decimal:
        if self.profile == "shell":
            return cents(float(self.issued_amount(index)) * self.draws.uniform(0.85, 1.0, "shell-in", index))
        purchases = float(self.monthly_sales(index)) * self.cost_ratio
        return cents(purchases * self.draws.uniform(0.5, 0.95, "inv-in", index))

    # --- card and QR takings ------------------------------------------------------------------------------

    def daily_takings(self, day: date, month_sales: Decimal | None = None) -> tuple[int, Decimal] | None:
        """Card/QR payments the business took that day (count, amount); None when closed or nothing sold."""
        if self.merchant_since is None or day < self.merchant_since:
            return None
        d = self.draws
        if d.unit("closed", day) < (0.08 if self.individual else 0.03):
            return None
        weights = month_weights(self.industry, day.year, day.month)
        weight = weights[day.day - 1]
        if weight < 0.3 and self.individual:  # the shop closes over the Spring Festival
            return None
        sales = self.monthly_sales(month_index(day)) if month_sales is None else month_sales
        amount = float(sales) * self.card_share * weight / sum(weights)
        amount *= math.exp(0.25 * d.normal("day", day) - 0.25**2 / 2)
        value = cents(amount)
        if value <= 0:
            return None
        ticket = PAYMENT_TICKET[self.industry] * d.uniform(0.7, 1.4, "ticket")
        return max(round(float(value) / ticket), 1), value

    # --- events -------------------------------------------------------------------------------------------

    def loans(self) -> list[Loan]:
        """The credit facilities of the business, each lender's renewed one after another."""
        d = self.draws
        slots = {
            "good": (1, 3),
            "average": (1, 4),
            "declining": (2, 4),
            "seasonal": (1, 3),
            "overdue": (2, 5),
            "enforcement": (1, 3),
            "shell": (0, 1),
            "thin": (0, 1),
        }[self.profile]
        first = self.first_credit()
        if first is None:
            return []
        out: list[Loan] = []
        end = add_months(self.anchor, 36)
        for slot in range(d.integer(*slots, "slots")):
            start = first + timedelta(days=d.integer(0, max((self.anchor - first).days, 1), "slot-start", slot))
            stop = (
                None
                if d.unit("slot-ends", slot) < 0.7
                else start + timedelta(days=d.integer(200, 2000, "slot-length", slot))
            )
            term = d.choice((12, 12, 24, 36), "term", slot)
            amount = Decimal(max(int(self.annual_sales * d.uniform(0.05, 0.3, "loan", slot) / 1000), 10) * 1000)
            lender = d.integer(1, 8, "lender", slot)
            opened = start
            while opened < end and (stop is None or opened < stop):
                due = add_months(opened, term)
                out.append(Loan(lender, opened, due, amount, d.unit("amortising", slot) < 0.5))
                opened = due
        return out

    def first_credit(self) -> date | None:
        """The first day the bureau knows the subject (None: no file at all)."""
        d = self.draws
        if self.profile == "thin":
            if d.unit("no-file") < 0.35:
                return None
            return self.anchor - timedelta(days=d.integer(20, 330, "first-credit"))
        return self.registered_on - timedelta(days=d.integer(0, 5 * 365, "first-credit"))

    def overdue_spells(self) -> list[OverdueSpell]:
        d = self.draws
        anchor = month_index(self.anchor)
        if self.profile == "overdue":
            spells = []
            for n in range(d.integer(1, 3, "spells")):
                months = min(1 + d.poisson(1.4, "spell-length", n), 7)
                start = anchor - d.integer(months, 22, "spell-start", n)
                spells.append(OverdueSpell(start, months))
            if d.unit("overdue-now") < 0.5:
                months = d.integer(1, 3, "spell-now")
                spells.append(OverdueSpell(anchor - months + 1, months + 2))
            return spells
        if self.profile == "enforcement" and d.unit("enf-overdue") < 0.5:
            return [OverdueSpell(anchor - d.integer(8, 20, "enf-spell"), d.integer(3, 7, "enf-length"))]
        if self.profile not in ("shell", "thin") and d.unit("slip") < 0.05:
            return [OverdueSpell(anchor - d.integer(1, 30, "slip-start"), 1)]
        return []

    def inquiries(self, index: int) -> list[date]:
        """Credit report inquiries (by lenders considering the subject) in the month `index`."""
        d = self.draws
        year, month = month_of(index)
        count = d.poisson(INQUIRY_RATE[self.profile], "inquiries", index)
        days = calendar.monthrange(year, month)[1]
        return [date(year, month, d.integer(1, days, "inquiry-day", index, n)) for n in range(count)]

    def guarantees(self) -> list[Loan]:
        d = self.draws
        share = {"overdue": 0.3, "enforcement": 0.3, "declining": 0.2}.get(self.profile, 0.12)
        first = self.first_credit()
        if first is None or d.unit("guarantor") >= share:
            return []
        out = []
        for n in range(d.integer(1, 2, "guarantees")):
            opened = first + timedelta(days=d.integer(0, max((self.anchor - first).days, 1), "guarantee", n))
            amount = Decimal(d.integer(5, 50, "guarantee-amount", n) * 10_000)
            out.append(Loan(0, opened, add_months(opened, d.choice((12, 24, 36), "g-term", n)), amount, False))
        return out

    def cases(self) -> list[Case]:
        """Court enforcement cases (执行案件) against the subject."""
        d = self.draws
        out: list[Case] = []
        if self.profile == "enforcement":
            for n in range(d.integer(1, 2, "open-cases")):
                filed = self.anchor - timedelta(days=d.integer(30, 540, "case-filed", n))
                out.append(self._case(filed, None, Decimal(d.integer(20, 500, "case-amount", n) * 1000), n))
        old = {"overdue": 0.15, "enforcement": 0.3, "declining": 0.06}.get(self.profile, 0.02)
        if self.profile != "thin" and d.unit("old-case") < old:
            filed = self.anchor - timedelta(days=d.integer(730, 1800, "old-filed"))
            closed = filed + timedelta(days=d.integer(60, 360, "old-closed"))
            out.append(self._case(filed, closed, Decimal(d.integer(5, 80, "old-amount") * 1000), 9))
        return out

    def _case(self, filed: date, closed: date | None, amount: Decimal, n: int) -> Case:
        province = PROVINCES.get(self.region[:2], "京")
        number = f"({filed.year}){province}{self.region[2:6]}执{self.draws.integer(100, 9999, 'case-no', n)}号"
        return Case(number, filed, closed, amount)

    def registry_changes(self) -> list[tuple[date, str]]:
        d = self.draws
        rate = {"shell": 1.5, "declining": 0.4, "enforcement": 0.4}.get(self.profile, 0.15)
        years = max((self.anchor - self.registered_on).days / 365, 0.1)
        items = ("legal_representative", "address", "capital", "scope")
        weights = (0.6, 0.2, 0.1, 0.1) if self.profile == "shell" else (0.15, 0.4, 0.15, 0.3)
        out = []
        for n in range(d.poisson(rate * years, "changes")):
            day = self.registered_on + timedelta(
                days=d.integer(1, max((self.anchor - self.registered_on).days, 1), "change-day", n)
            )
            u, item = d.unit("change-item", n), items[-1]
            for candidate, w in zip(items, weights, strict=True):
                if u < w:
                    item = candidate
                    break
                u -= w
            out.append((day, item))
        return sorted(out)

    def revoked_on(self) -> date | None:
        """The day the licence was revoked (吊销), if it was."""
        d = self.draws
        share = {"shell": 0.3, "enforcement": 0.1}.get(self.profile, 0.0)
        if d.unit("revoked") < share:
            return self.anchor - timedelta(days=d.integer(20, 240, "revoked-on"))
        return None

    def owner_name(self) -> str:
        return identities.person_name(self.draws.rng("owner"))

    def name(self) -> str:
        if self.individual or self.kind == "person":
            return f"{self.owner_name()[0]}记{self.draws.choice(SHOP_KINDS[self.industry], 'shop')}"
        county = COUNTIES.get(self.region, "")
        return f"{county}{self.draws.choice(TRADE_NAMES, 'trade')}{INDUSTRY_WORD[self.industry]}有限公司"

    def customer_weights(self) -> list[float]:
        """How much each customer invoiced buys, largest first (a few big buyers and a long tail)."""
        d = self.draws
        if self.profile == "shell":
            size, power = d.integer(2, 5, "customers"), 2.0
        elif self.industry in ("manufacturing", "transport"):
            size, power = d.integer(4, 25, "customers"), d.uniform(1.0, 1.6, "power")
        elif self.industry == "wholesale":
            size, power = d.integer(15, 60, "customers"), d.uniform(0.8, 1.3, "power")
        else:
            size, power = d.integer(10, 80, "customers"), d.uniform(0.6, 1.0, "power")
        return [1 / (n + 1) ** power for n in range(size)]

    def customer(self, n: int) -> str:
        """The `n`th customer: the sha256 of its USCC."""
        return hashlib.sha256(identities.uscc(self.draws.rng("customer", n)).encode()).hexdigest()


def festival_day(d: date) -> int | None:
    """Days from that year's Spring Festival (None if far from it)."""
    festival = SPRING_FESTIVAL.get(d.year)
    if festival is None:
        return None
    delta = (d - festival).days
    return delta if -30 <= delta <= 30 else None


def day_factor(industry: str, d: date) -> float:
    """How much of an ordinary day's sales a day brings: busy weekends for shops and restaurants, the run-up to
    the Spring Festival, the holiday itself (closed) and a slow restart after it."""
    factor = 1.0
    if industry in ("retail", "catering", "services") and d.weekday() >= 5:
        factor *= 1.2
    elif industry in ("manufacturing", "wholesale", "transport") and d.weekday() == 6:
        factor *= 0.4
    delta = festival_day(d)
    if delta is not None:
        if -1 <= delta <= 6:
            factor *= 0.2
        elif -21 <= delta < -1:
            factor *= 1.3 if industry in ("retail", "catering") else 1.1
        elif 6 < delta <= 15:
            factor *= 0.7 if industry in ("manufacturing", "transport", "agriculture") else 0.9
    return factor


@lru_cache(maxsize=4096)
def month_weights(industry: str, year: int, month: int) -> tuple[float, ...]:
    """The `day_factor` of every day of a month."""
    days = calendar.monthrange(year, month)[1]
    return tuple(day_factor(industry, date(year, month, n)) for n in range(1, days + 1))


@lru_cache(maxsize=4096)
def festival_month_factor(industry: str, year: int, month: int) -> float:
    """The month's mean `day_factor` against an ordinary month's (the Spring Festival dip and run-up)."""
    days = calendar.monthrange(year, month)[1]
    actual = sum(month_weights(industry, year, month))
    plain = sum(day_factor(industry, date(2019, 7, 1) + timedelta(days=n)) for n in range(28)) / 28 * days
    return actual / plain


@lru_cache(maxsize=8192)
def business_of(subject: str, seed: int, anchor: date) -> Business | None:
    """The business behind a subject id (None for an id that is neither a resident ID nor a USCC)."""
    known = subject_kind(subject)
    if known is None:
        return None
    sid, kind = known
    profile = profile_of(sid, seed=seed)
    d = Draws(seed, sid)
    if kind == "business":
        region, individual = sid[2:8], sid[1] == "2"
    else:
        region, individual = sid[:6], True
    if profile == "shell":
        industry = d.choice(("wholesale", "services", "manufacturing", "wholesale"), "industry")
    elif profile == "seasonal":
        industry = d.choice(("agriculture", "agriculture", "retail", "catering"), "industry")
    else:
        industry = d.choice(identities.INDUSTRIES, "industry")
    lo, hi = SALES_RANGE[industry][0 if individual else 1]
    annual = d.log_uniform(lo, hi, "scale")
    if profile == "thin":
        registered = anchor - timedelta(days=d.integer(60, 330, "age"))
    else:
        years = {"good": (3.0, 15.0), "shell": (1.0, 4.0), "declining": (3.0, 12.0)}.get(profile, (1.5, 12.0))
        registered = anchor - timedelta(days=int(365 * d.uniform(*years, "age")))
    growth = {"good": 0.08 + 0.08 * d.normal("growth"), "declining": 0.0, "thin": 0.15 + 0.1 * d.normal("growth")}.get(
        profile, 0.12 * d.normal("growth")
    )
    decline_from = None
    if profile == "declining":
        decline_from = month_index(anchor) - d.integer(13, 18, "decline-from")
    takes_cards, lo_share, hi_share = MERCHANT[industry]
    merchant_since = None
    if profile != "shell" and d.unit("merchant") < takes_cards:
        since = registered + timedelta(days=d.integer(0, 720, "merchant-since"))
        merchant_since = min(max(since, date(2016, 1, 1)), anchor - timedelta(days=30))
        merchant_since = max(merchant_since, registered)
    return Business(
        subject=sid,
        kind=kind,
        profile=profile,
        seed=seed,
        anchor=anchor,
        industry=industry,
        individual=individual,
        region=region,
        registered_on=registered,
        annual_sales=annual,
        growth=max(min(growth, 0.5), -0.25),
        decline_from=decline_from,
        decline_rate=d.uniform(0.65, 0.8, "decline-rate"),
        seasonality=d.uniform(2.5, 3.5, "season") if profile == "seasonal" else d.uniform(0.6, 1.2, "season"),
        invoice_share=d.uniform(*INVOICE_SHARE[industry], "invoice-share"),
        cost_ratio=d.uniform(0.5, 0.8, "cost"),
        merchant_since=merchant_since,
        card_share=d.uniform(lo_share, hi_share, "card-share"),
    )
