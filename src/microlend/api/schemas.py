"""What the public schemas share: amounts and rates as exact strings, and schemas read from a service's
views (`XPublic.of(view)`) instead of copied field by field."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, PlainSerializer

CENT = Decimal("0.01")


def money_text(amount: Decimal) -> str:
    """An amount to the cent as a decimal string, e.g. '888.49': how every amount reads in JSON."""
    return str(amount.quantize(CENT))


#: An amount: a Decimal inside, a string to the cent on the wire ('888.49').
MoneyStr = Annotated[Decimal, PlainSerializer(money_text, return_type=str)]
#: A rate or a factor, exactly as stored ('0.1800', '1.5'): a Decimal inside, its string on the wire.
DecimalStr = Annotated[Decimal, PlainSerializer(str, return_type=str)]


class PublicSchema(BaseModel):
    """A response body read from a service view by attribute name."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def of(cls, view: object) -> Self:
        return cls.model_validate(view, from_attributes=True)
