"""What a provider's payload becomes once its contract holds: frozen records, money as Decimal, dates as date.

Every record carries the envelope every answer has: the subject, the day the data is served as of and the
provider that served it. A month (`period`) is the first day of that month."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal


@dataclass(frozen=True)
class Envelope:
    subject: str
    as_of: date
    provider: str


@dataclass(frozen=True)
class BureauReport(Envelope):
    """The credit bureau's report (征信报告) summarised."""

    report_date: date
    credit_history_months: int
    open_accounts: int
    lenders_open: int
    total_balance: Decimal
    overdue_accounts_now: int
    overdue_months_24m: int
    max_overdue_level_24m: int  # 0..7, months-overdue level in the 24-month history
    inquiries_3m: int
    inquiries_12m: int
    guarantees_given: int
    guarantee_amount: Decimal
    bad_debt: bool


@dataclass(frozen=True)
class TaxDeclaration:
    period: date
    sales: Decimal
    vat_paid: Decimal


@dataclass(frozen=True)
class TaxRecord(Envelope):
    """Monthly tax declarations (纳税申报) of the 24 months before as_of's month; a missing month was not
    declared. `credit_grade` is the tax credit grade (纳税信用等级) A, B, M, C or D."""

    credit_grade: str
    declarations: tuple[TaxDeclaration, ...]


@dataclass(frozen=True)
class InvoiceMonth:
    period: date
    issued_count: int
    issued_amount: Decimal
    received_count: int
    received_amount: Decimal
    red_count: int  # red-letter (credit note) invoices, 红字发票
    red_amount: Decimal
    cancelled_count: int


@dataclass(frozen=True)
class TopCustomer:
    counterparty: str  # sha256 hex of the customer's USCC
    amount: Decimal


@dataclass(frozen=True)
class EInvoiceSummary(Envelope):
    """E-invoices (电子发票) issued and received per month, and the largest customers of the last 12 months."""

    months: tuple[InvoiceMonth, ...]
    counterparties_12m: int
    top_customers_12m: tuple[TopCustomer, ...]


@dataclass(frozen=True)
class MerchantDay:
    date: date
    count: int
    amount: Decimal


@dataclass(frozen=True)
class MerchantFlows(Envelope):
    """Card and QR acquiring flows (收单流水) per day of the 180 days before as_of (idle days omitted)."""

    merchant_since: date
    days: tuple[MerchantDay, ...]


@dataclass(frozen=True)
class RegistryChange:
    date: date
    item: str  # legal_representative, address, capital or scope


@dataclass(frozen=True)
class RegistryRecord(Envelope):
    """The business registry's record (工商登记)."""

    name: str
    registered_on: date
    capital: Decimal
    status: str  # 存续 / 在业 (active), 吊销 (revoked), 注销 (deregistered)
    legal_representative: str  # masked by the provider
    industry_code: str  # GB/T 4754: a letter and 4 digits
    entity_type: str  # 个体工商户 (individual business) or 有限责任公司 (limited company)
    changes: tuple[RegistryChange, ...]


@dataclass(frozen=True)
class EnforcementCase:
    case_no: str
    filed_on: date
    amount: Decimal
    status: str  # open or closed
    dishonest: bool  # on the list of dishonest judgment debtors (失信被执行人)


@dataclass(frozen=True)
class EnforcementRecord(Envelope):
    """Court enforcement cases (被执行人); no case is a clean record."""

    cases: tuple[EnforcementCase, ...]


ProviderRecord = BureauReport | TaxRecord | EInvoiceSummary | MerchantFlows | RegistryRecord | EnforcementRecord
