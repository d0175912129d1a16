"""What a credit decision (授信决策) consumes and produces, and how numbers cross the rule engine exactly.

Exactness: the rule engine (zen-engine) computes on 96-bit decimals internally. We hand it a context
written as JSON text in which every Decimal is printed in full (never through float), and we read its
numeric outputs back through `exact_decimal`: a string is taken as is, an int exactly, and a float by its
shortest round-trip repr (`repr(1e5/4)` -> '25000.0'), which is the decimal the engine produced for any
value with at most 15 significant digits (limits up to 10^13 CNY at 2 places, rates at 6 places).
Then limits are rounded half up to the currency's minor unit and rates half up to `RATE_PLACES` places.
"""

from __future__ import annotations

import json
import json.encoder
import math
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from microlend.core.errors import ValidationError
from microlend.core.money import round_half_up

Outcome = Literal["approve", "decline", "refer"]
OUTCOMES: tuple[str, ...] = ("approve", "decline", "refer")
REQUIRED_OUTPUTS: tuple[str, ...] = ("outcome", "limit", "annual_rate", "reasons")
#: Outputs each kind of policy must produce (`metadata.kind`; a credit decision when absent).
OUTPUTS_BY_KIND: dict[str, tuple[str, ...]] = {
    "credit_decision": REQUIRED_OUTPUTS,
    "limit_review": ("outcome", "action", "limit", "reasons"),
    # the severity of each early-warning signal (`early_warning.SIGNALS`)
    "early_warning": ("dpd_transition", "behaviour_score", "tax_sales_drop", "merchant_flow_drop",
                      "enforcement_case", "bureau_overdue", "limit_exhausted"),
}

#: Annual rates leave the engine rounded half up to this many decimal places (0.123456 = 12.3456%).
RATE_PLACES = 6
_RATE_QUANTUM = Decimal(1).scaleb(-RATE_PLACES)


class _Facts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ApplicationFacts(_Facts):
    """The loan asked for: amount (CNY), term, product and purpose (贷款用途)."""

    amount: Decimal
    term_months: int
    product_code: str
    purpose: str = ""

    @field_validator("amount", mode="before")
    @classmethod
    def _no_float_amount(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError("send amounts as decimal strings, not floating point")
        return value

    @field_validator("amount")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or value <= 0:
            raise ValueError("must be a positive amount")
        return value

    @field_validator("term_months")
    @classmethod
    def _term(cls, value: int) -> int:
        if not 1 <= value <= 360:
            raise ValueError("must be between 1 and 360")
        return value


class CustomerFacts(_Facts):
    """What we know of the borrower; unknown facts are None (the policy decides what is required)."""

    customer_id: str
    age: int | None = None
    industry: str | None = None
    years_in_business: Decimal | None = None
    annual_turnover: Decimal | None = None  # 年营业额, for businesses
    annual_income: Decimal | None = None  # 年收入, for individual proprietors
    blacklisted: bool = False  # 黑名单
    overdue_elsewhere: bool = False  # currently overdue at another lender (per the credit report)
    bureau_data_present: bool = False  # a credit report (征信) was obtained with authorisation

    @field_validator("annual_turnover", "annual_income", "years_in_business", mode="before")
    @classmethod
    def _no_float(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError("send amounts as decimal strings, not floating point")
        return value


class ModelResult(_Facts):
    """The risk model's answer: score (600 at odds 50:1, 20 points to double the odds; higher is safer),
    probability of default, and its reason codes."""

    model_version: str = ""
    score: Decimal | None = None
    pd: Decimal | None = None
    reason_codes: tuple[str, ...] = ()


class ExposureFacts(_Facts):
    """授信敞口 of the borrower's obligor group (关联方) before this application, and the bank's cap on it:
    principal outstanding, undrawn credit-line limits, open offers, applications in review; None = unknown."""

    outstanding: Decimal = Decimal(0)
    undrawn: Decimal = Decimal(0)
    offers: Decimal = Decimal(0)
    in_review: Decimal = Decimal(0)
    total: Decimal = Decimal(0)
    cap: Decimal | None = None  # the bank's cap on one obligor group's exposure (None: no cap set)

    @field_validator("outstanding", "undrawn", "offers", "in_review", "total", "cap", mode="before")
    @classmethod
    def _no_float(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError("send amounts as decimal strings, not floating point")
        return value


class CapacityFacts(_Facts):
    """Ability to repay and eligibility at this application (None: not known, the rules on it stay silent)."""

    borrower_kind: str | None = None  # person | business
    verified_turnover: Decimal | None = None  # 核实年营业额 (e.g. from tax data shared under consent)
    turnover_multiple: Decimal | None = None  # the bank's ceiling: limit <= multiple x annual turnover
    debt_to_income_ceiling: Decimal | None = None  # the bank's ceiling: a person's debt <= ceiling x income
    age_at_maturity: int | None = None  # the borrower's (or owner's) age on the last due date
    id_document_expired: bool | None = None  # the identity document expired before the application
    credit_report_consent: bool | None = None  # the borrower authorised the credit report (征信授权)
    product_min_amount: Decimal | None = None  # the product's smallest loan: less headroom than this, no offer
    #: the bank's setting: a tax-data loan (税贷) <= this share of the verified declared sales (None: the
    #: policy's own default, 0.3)
    tax_loan_fraction: Decimal | None = None
    verified_sales_12m: Decimal | None = None  # 近12个月申报销售额, exactly as the tax authority reports it

    @field_validator("verified_turnover", "turnover_multiple", "debt_to_income_ceiling", "product_min_amount",
                     "tax_loan_fraction", "verified_sales_12m", mode="before")
    @classmethod
    def _no_float(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError("send amounts as decimal strings, not floating point")
        return value


#: The external data sources (provider kinds) behind the business features.
SOURCE_KINDS: tuple[str, ...] = ("bureau", "tax", "einvoice", "merchant", "registry", "enforcement")
#: What a call to an external data source (外部数据源) gave, by provider kind.
SOURCE_STATUSES: tuple[str, ...] = ("ok", "not_found", "unavailable", "data_error", "no_consent", "not_configured")


class DataFacts(_Facts):
    """The external data sources behind the business features: each kind called (bureau, tax, einvoice,
    merchant, registry, enforcement) with its status, and the kinds that could not be reached. A kind listed in
    `unavailable` reads as status "unavailable" (unless it already says "data_error"), so a policy needs to look
    at `data.sources.<kind>` only; a kind not called is absent (null)."""

    sources: dict[str, str] = Field(default_factory=dict)
    unavailable: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _fold_unavailable(cls, value: Any) -> Any:
        if not isinstance(value, dict) or not value.get("unavailable"):
            return value
        sources = dict(value.get("sources") or {})
        unavailable = value["unavailable"]
        if isinstance(unavailable, list | tuple):
            for kind in unavailable:
                if isinstance(kind, str) and sources.get(kind) != "data_error":
                    sources[kind] = "unavailable"
        return {**value, "sources": sources}

    @field_validator("sources")
    @classmethod
    def _known_statuses(cls, value: dict[str, str]) -> dict[str, str]:
        for kind, status in value.items():
            if status not in SOURCE_STATUSES:
                raise ValueError(f"source '{kind}': status '{status}' is not one of {', '.join(SOURCE_STATUSES)}")
        return value


#: Sections added after decisions were first stored: left out of the canonical form while they hold their
#: defaults, so that a decision stored before them reads back to exactly what was stored.
_OPTIONAL_SECTIONS = {"exposure": ExposureFacts(), "capacity": CapacityFacts(), "data": DataFacts()}
#: Fields added to a section after decisions were first stored: left out while None, for the same reason.
_OPTIONAL_FIELDS = {"capacity": ("tax_loan_fraction", "verified_sales_12m")}


class DecisionInput(_Facts):
    """Everything a policy may look at. Its canonical JSON is what a decision stores and replays."""

    application: ApplicationFacts
    customer: CustomerFacts
    features: dict[str, float | None] = Field(default_factory=dict)
    model: ModelResult = Field(default_factory=ModelResult)
    exposure: ExposureFacts = Field(default_factory=ExposureFacts)
    capacity: CapacityFacts = Field(default_factory=CapacityFacts)
    data: DataFacts = Field(default_factory=DataFacts)

    @field_validator("features")
    @classmethod
    def _finite(cls, value: dict[str, float | None]) -> dict[str, float | None]:
        for name, x in value.items():
            if x is not None and not math.isfinite(x):
                raise ValueError(f"feature '{name}' is not a finite number")
        return value

    def canonical(self) -> dict[str, Any]:
        """The JSON form (Decimals as strings) used for storage, hashing and replay."""
        data = self.model_dump(mode="json")
        for key, default in _OPTIONAL_SECTIONS.items():
            if getattr(self, key) == default:
                del data[key]
        for key, names in _OPTIONAL_FIELDS.items():
            for name in names:
                if key in data and data[key].get(name) is None:
                    del data[key][name]
        return data

    def canonical_json(self) -> str:
        return canonical_json(self.canonical())

    @classmethod
    def from_canonical(cls, data: Any) -> DecisionInput:
        """Parse the JSON form, raising a ValidationError that names the field."""
        return validate_facts(cls, data)

    def engine_context(self) -> str:
        """The context handed to the engine as JSON text with exact numbers (see the module docstring)."""
        return engine_json(self.model_dump(mode="python"))


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text: equal content gives equal bytes, hence equal hashes."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


_quote: Callable[[str], str] = json.encoder.encode_basestring  # a JSON string literal, as json.dumps writes it


def engine_json(value: Any) -> str:
    """JSON text in which Decimals are written as exact numbers (json.dumps would need floats)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{_quote(str(k))}:{engine_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(engine_json(v) for v in value) + "]"
    raise TypeError(f"cannot hand {type(value).__name__} to the rule engine")


def exact_decimal(value: Any, field: str) -> Decimal:
    """A number from the engine as an exact Decimal (strings exactly, floats by shortest repr)."""
    if isinstance(value, bool) or value is None:
        raise ValidationError(f"{field}: the policy gave {value!r}, expected a number", field=field)
    if isinstance(value, str | int):
        try:
            result = Decimal(str(value).strip())
        except ArithmeticError:
            raise ValidationError(f"{field}: the policy gave '{value}', not a number", field=field) from None
    elif isinstance(value, float):
        result = Decimal(repr(value))
    else:
        raise ValidationError(f"{field}: the policy gave a {type(value).__name__}, expected a number", field=field)
    if not result.is_finite():
        raise ValidationError(f"{field}: the policy gave a non-finite number", field=field)
    return result


def engine_limit(value: Any, currency: str = "CNY") -> Decimal:
    """A limit from the engine, rounded half up to the currency's minor unit; never negative."""
    limit = round_half_up(exact_decimal(value, "limit"), currency)
    if limit < 0:
        raise ValidationError(f"limit: the policy gave a negative limit {limit}", field="limit")
    return limit


def engine_rate(value: Any) -> Decimal | None:
    """An annual rate from the engine, rounded half up to RATE_PLACES places; None when not priced."""
    if value is None:
        return None
    return exact_decimal(value, "annual_rate").quantize(_RATE_QUANTUM, rounding=ROUND_HALF_UP)


M = TypeVar("M", bound=BaseModel)


def validate_facts(model: type[M], data: Any) -> M:
    """Parse a policy input's JSON form into `model`, raising a ValidationError that names the first bad field."""
    from pydantic import ValidationError as PydanticError

    try:
        return model.model_validate(data)
    except PydanticError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ValidationError(f"{field}: {first['msg']}", field=field) from None
