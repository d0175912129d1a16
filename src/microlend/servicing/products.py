"""Loan products (贷款产品): amount, term and rate ranges, method, fees, penalty and allocation rules."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from microlend.core.errors import ValidationError
from microlend.core.money import MAX_AMOUNT, round_half_up
from microlend.servicing.allocation import DEFAULT_ORDER, AllocationTarget
from microlend.servicing.schedules import MAX_TERM_MONTHS, FeeMode, RepaymentMethod, check_repayment_day

_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,39}$")
DEFAULT_PENALTY_MULTIPLIER = Decimal("1.5")
#: How far a repayment may exceed what is owed (held as credit, 溢缴款): nothing by default; a bank taking cash
#: at a counter may allow a little, e.g. 100.00.
DEFAULT_OVERPAYMENT_TOLERANCE = Decimal(0)
#: The rate above which courts do not protect a financial loan's interest, penalty and fees together (24 % a
#: year); a bank may set its own cap lower.
DEFAULT_RATE_CAP = Decimal("0.24")


@dataclass(frozen=True)
class Product:
    """A tenant's loan product. ``annual_rate`` is the list price; a decision may price within
    ``min_rate``..``max_rate``. ``upfront_fee_rate`` is a share of the principal charged once."""

    code: str
    name: str
    method: RepaymentMethod
    min_amount: Decimal
    max_amount: Decimal
    min_term_months: int
    max_term_months: int
    annual_rate: Decimal
    min_rate: Decimal
    max_rate: Decimal
    penalty_multiplier: Decimal = DEFAULT_PENALTY_MULTIPLIER
    grace_days: int = 0
    upfront_fee_rate: Decimal = Decimal(0)
    fee_mode: FeeMode = FeeMode.DEDUCT
    allocation_order: tuple[AllocationTarget, ...] = DEFAULT_ORDER
    early_repayment_allowed: bool = True
    name_zh: str = ""
    currency: str = "CNY"
    extra: dict[str, str] = field(default_factory=dict)
    overpayment_tolerance: Decimal = DEFAULT_OVERPAYMENT_TOLERANCE
    #: a borrower's credit balance (溢缴款) settles each installment on its due date, so credit never lets a
    #: loan fall overdue
    auto_apply_credit: bool = True
    #: 复利 penalty interest is charged on overdue interest as well as on overdue principal (a loan keeps the
    #: setting it was disbursed with)
    compound_interest: bool = True
    #: 固定还款日 every installment on this day of the month (1..28), the first period broken; None: on the
    #: disbursement day-of-month
    repayment_day: int | None = None
    #: revolving lines: interest is settled monthly on this day (结息日, 1-28) and falls due this many days later
    settlement_day: int = 20
    interest_due_days: int = 1

    def __post_init__(self) -> None:
        check_product(self)

    def check_offer(self, amount: Decimal, term_months: int, annual_rate: Decimal) -> None:
        """Refuse an amount, term or rate outside this product's ranges."""
        if not self.min_amount <= amount <= self.max_amount:
            raise ValidationError(
                f"amount: must be between {self.min_amount} and {self.max_amount} for product {self.code}",
                field="amount",
            )
        if self.method != RepaymentMethod.REVOLVING and not (
            self.min_term_months <= term_months <= self.max_term_months
        ):
            raise ValidationError(
                f"term_months: must be between {self.min_term_months} and "
                f"{self.max_term_months} for product {self.code}",
                field="term_months",
            )
        if not self.min_rate <= annual_rate <= self.max_rate:
            raise ValidationError(
                f"annual_rate: must be between {self.min_rate} and {self.max_rate} for product {self.code}",
                field="annual_rate",
            )

    def upfront_fee(self, amount: Decimal) -> Decimal:
        return round_half_up(amount * self.upfront_fee_rate, self.currency)

    @property
    def penalty_rate(self) -> Decimal:
        """The highest penalty rate the product charges: its highest rate × the penalty multiplier."""
        return self.max_rate * self.penalty_multiplier


def check_product(p: Product) -> None:
    if not _CODE.match(p.code):
        raise ValidationError("code: 2-40 capital letters, digits, '_' or '-'", field="code")
    if not p.name.strip():
        raise ValidationError("name: must not be empty", field="name")
    if not (0 < p.min_amount <= p.max_amount):
        raise ValidationError("min_amount: must be positive and not above max_amount", field="min_amount")
    if p.max_amount > MAX_AMOUNT:
        raise ValidationError(f"max_amount: must not be above {MAX_AMOUNT}", field="max_amount")
    for name in ("min_amount", "max_amount"):
        if round_half_up(getattr(p, name), p.currency) != getattr(p, name):
            raise ValidationError(f"{name}: at most 2 decimal places", field=name)
    if not (1 <= p.min_term_months <= p.max_term_months <= MAX_TERM_MONTHS):
        raise ValidationError(f"min_term_months: need 1 <= min <= max <= {MAX_TERM_MONTHS}", field="min_term_months")
    if not (0 <= p.min_rate <= p.annual_rate <= p.max_rate < 10):
        raise ValidationError("annual_rate: need 0 <= min_rate <= annual_rate <= max_rate", field="annual_rate")
    if not (1 <= p.penalty_multiplier <= 3):
        raise ValidationError("penalty_multiplier: must be between 1 and 3", field="penalty_multiplier")
    if p.penalty_multiplier != p.penalty_multiplier.quantize(Decimal("0.01")):
        raise ValidationError("penalty_multiplier: at most 2 decimal places", field="penalty_multiplier")
    if not (0 <= p.grace_days <= 30):
        raise ValidationError("grace_days: must be between 0 and 30", field="grace_days")
    if not (1 <= p.settlement_day <= 28):
        raise ValidationError("settlement_day: a day of the month from 1 to 28", field="settlement_day")
    if not (0 <= p.interest_due_days <= 30):
        raise ValidationError("interest_due_days: must be between 0 and 30", field="interest_due_days")
    if not (0 <= p.upfront_fee_rate < Decimal("0.2")):
        raise ValidationError("upfront_fee_rate: must be between 0 and 0.2", field="upfront_fee_rate")
    if not (0 <= p.overpayment_tolerance <= MAX_AMOUNT) or round_half_up(p.overpayment_tolerance) != (
        p.overpayment_tolerance
    ):
        raise ValidationError(
            "overpayment_tolerance: a non-negative amount with at most 2 decimal places", field="overpayment_tolerance"
        )
    check_repayment_day(p.repayment_day)
    if p.repayment_day is not None and p.method in (RepaymentMethod.BULLET, RepaymentMethod.REVOLVING):
        raise ValidationError(
            f"repayment_day: a {p.method.value} product has no monthly repayment day", field="repayment_day"
        )
    if sorted(p.allocation_order) != sorted(AllocationTarget):
        raise ValidationError("allocation_order: list every target once", field="allocation_order")


def _cny(value: str) -> Decimal:
    return Decimal(value)


#: The catalogue a new bank starts with (拎包入住): one standard product per repayment method and three on
#: small-business data, each within the default rate cap: its highest rate × the 1.5 penalty multiplier is at
#: most 24 %, fees included at the shortest term.
STANDARD_CATALOGUE: tuple[Product, ...] = (
    Product(
        "EI-STD",
        "Business loan, equal installments",
        RepaymentMethod.EQUAL_INSTALLMENT,
        _cny("1000"),
        _cny("300000"),
        3,
        36,
        Decimal("0.0888"),
        Decimal("0.0435"),
        Decimal("0.16"),
        grace_days=3,
        name_zh="经营贷（等额本息）",
    ),
    Product(
        "EP-STD",
        "Business loan, equal principal",
        RepaymentMethod.EQUAL_PRINCIPAL,
        _cny("1000"),
        _cny("500000"),
        3,
        36,
        Decimal("0.0780"),
        Decimal("0.0435"),
        Decimal("0.16"),
        grace_days=3,
        name_zh="经营贷（等额本金）",
    ),
    Product(
        "IO-STD",
        "Working capital, interest first",
        RepaymentMethod.INTEREST_ONLY,
        _cny("5000"),
        _cny("500000"),
        3,
        12,
        Decimal("0.0720"),
        Decimal("0.0435"),
        Decimal("0.15"),
        upfront_fee_rate=Decimal("0.005"),
        name_zh="流动资金贷（先息后本）",
    ),
    Product(
        "BL-STD",
        "Short bridge loan, bullet",
        RepaymentMethod.BULLET,
        _cny("1000"),
        _cny("200000"),
        1,
        12,
        Decimal("0.0960"),
        Decimal("0.0435"),
        Decimal("0.16"),
        name_zh="短期周转贷（到期一次还本付息）",
    ),
    Product(
        "RV-STD",
        "Revolving credit line, daily interest",
        RepaymentMethod.REVOLVING,
        _cny("1000"),
        _cny("300000"),
        1,
        12,
        Decimal("0.1080"),
        Decimal("0.0435"),
        Decimal("0.16"),
        name_zh="随借随还循环额度",
    ),
    # Products decided on the business's own data (the default policy requires the source named): a tax-data
    # loan on tax declarations (税贷, up to the bank's share of a year's declared sales), a merchant-flow loan
    # on acquiring flows (流水贷) and an invoice loan on e-invoices (发票贷: a short loan per need rather than a
    # revolving line, so it is decided and booked like any other loan).
    Product(
        "TAX_LOAN",
        "Tax-data loan, interest first",
        RepaymentMethod.INTEREST_ONLY,
        _cny("10000"),
        _cny("500000"),
        3,
        12,
        Decimal("0.0650"),
        Decimal("0.0435"),
        Decimal("0.15"),
        grace_days=3,
        name_zh="税贷（先息后本）",
    ),
    Product(
        "FLOW_LOAN",
        "Merchant-flow loan, equal installments",
        RepaymentMethod.EQUAL_INSTALLMENT,
        _cny("5000"),
        _cny("200000"),
        3,
        12,
        Decimal("0.0880"),
        Decimal("0.0435"),
        Decimal("0.16"),
        grace_days=3,
        name_zh="流水贷（等额本息）",
    ),
    Product(
        "INVOICE_LINE",
        "Invoice loan, bullet",
        RepaymentMethod.BULLET,
        _cny("10000"),
        _cny("300000"),
        1,
        6,
        Decimal("0.0720"),
        Decimal("0.0435"),
        Decimal("0.16"),
        name_zh="发票贷（到期一次还本付息）",
    ),
)
