"""Money on Decimal with an explicit currency; rounding happens only in the named helpers here."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from microlend.core.errors import ValidationError

#: ISO 4217 minor units of the currencies we know; unknown codes are refused.
MINOR_UNITS: dict[str, int] = {
    "CNY": 2, "HKD": 2, "USD": 2, "EUR": 2, "GBP": 2, "SGD": 2, "JPY": 0, "KRW": 0,
    "IDR": 2, "PHP": 2, "VND": 0, "KHR": 2, "LAK": 2, "MMK": 2, "THB": 2, "KES": 2,
}
DEFAULT_CURRENCY = "CNY"

#: Scale at which amounts are stored (ten-thousandths): enough for accrual fractions, exact in an integer.
STORAGE_SCALE = 4
_STORAGE_FACTOR = Decimal(10) ** STORAGE_SCALE
#: The largest amount the platform accepts anywhere (just under a trillion). Stored as BIGINT ten-thousandths
#: an amount could reach 922 trillion; the bound leaves room for sums over a whole portfolio in the same type.
MAX_AMOUNT = Decimal("999999999999.99")
#: The largest amount a BIGINT of ten-thousandths holds.
STORAGE_MAX = Decimal(2**63 - 1) / _STORAGE_FACTOR


def minor_unit(currency: str) -> int:
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise ValidationError(f"currency: unknown currency code '{currency}'", field="currency") from None


def quantum(currency: str = DEFAULT_CURRENCY) -> Decimal:
    """The smallest coin of a currency, e.g. Decimal('0.01') for CNY."""
    return Decimal(1).scaleb(-minor_unit(currency))


def round_half_up(amount: Decimal, currency: str = DEFAULT_CURRENCY) -> Decimal:
    """Round to the currency's minor unit, half away from zero (四舍五入)."""
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def parse_amount(value: Any, field: str = "amount") -> Decimal:
    """Read an amount from user input (str, int or Decimal; never float) with a clear error."""
    if isinstance(value, float):
        raise ValidationError(f"{field}: send amounts as decimal strings, not floating point", field=field)
    if isinstance(value, bool):
        raise ValidationError(f"{field}: expected a decimal amount", field=field)
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValidationError(f"{field}: '{value}' is not a decimal amount", field=field) from None
    if not amount.is_finite():
        raise ValidationError(f"{field}: '{value}' is not a finite amount", field=field)
    if abs(amount) > MAX_AMOUNT:
        raise ValidationError(f"{field}: '{value}' is beyond the largest amount, {MAX_AMOUNT}", field=field)
    if amount != amount.quantize(Decimal("1e-12")):
        raise ValidationError(f"{field}: '{value}' has more than 12 decimal places", field=field)
    return amount + 0  # a plain Decimal: '1E+3' reads as 1000, '-0' as 0


def to_storage(amount: Decimal) -> int:
    """Decimal -> integer ten-thousandths, refusing anything that would lose a digit or not fit the column."""
    if not amount.is_finite():
        raise ValidationError(f"amount {amount} is not a finite amount")
    if abs(amount) > STORAGE_MAX:
        raise ValidationError(f"amount {amount} is beyond what can be stored ({STORAGE_MAX})")
    scaled = amount * _STORAGE_FACTOR
    if scaled != scaled.to_integral_value():
        raise ValidationError(f"amount {amount} has more than {STORAGE_SCALE} decimal places")
    return int(scaled)


def from_storage(value: int) -> Decimal:
    return (Decimal(value) / _STORAGE_FACTOR).quantize(Decimal(1).scaleb(-STORAGE_SCALE))


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount in a currency. Arithmetic keeps full precision; call `.rounded()` where the
    business rounds."""

    amount: Decimal
    currency: str = DEFAULT_CURRENCY

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError(f"Money needs a Decimal amount, got {type(self.amount).__name__}")
        minor_unit(self.currency)

    @classmethod
    def of(cls, value: str | int | Decimal, currency: str = DEFAULT_CURRENCY) -> Money:
        return cls(parse_amount(value), currency)

    @classmethod
    def zero(cls, currency: str = DEFAULT_CURRENCY) -> Money:
        return cls(Decimal(0), currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValidationError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        if isinstance(factor, float):
            raise TypeError("multiply Money by a Decimal, not a float")
        return Money(self.amount * factor, self.currency)

    __rmul__ = __mul__

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def is_zero(self) -> bool:
        return self.amount == 0

    def rounded(self) -> Money:
        return Money(round_half_up(self.amount, self.currency), self.currency)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"
