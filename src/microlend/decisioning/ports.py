"""What decisioning reads from modules it may not import, through ports the composition root connects
(`bootstrap.PORTS`): the bank's LGD and product prices (servicing) and its operating cost per loan
(origination), for the money of a simulation. A port left unconnected gives the default assumption."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.decisioning.money import DEFAULT_ASSUMPTIONS, MoneyAssumptions, ProductPricing

LossGivenDefault = Callable[[UnitOfWork, Principal], Decimal]
ProductPrices = Callable[[UnitOfWork, Principal], Mapping[str, Any]]
OperatingCost = Callable[[UnitOfWork, Principal], Decimal]


@dataclass
class LendingPorts:
    loss_given_default: LossGivenDefault | None = None
    product_prices: ProductPrices | None = None
    operating_cost_per_loan: OperatingCost | None = None


lending = LendingPorts()

#: The current book's early-warning facts (a polars frame of `early_warning.BOOK_SCHEMA`), for simulating an
#: early-warning version before it is published; origination assembles them.
EarlyWarningBook = Callable[[UnitOfWork, Principal], Any]
_book: list[EarlyWarningBook] = []


def connect_early_warning(*, book: EarlyWarningBook | None) -> None:
    _book.clear()
    if book is not None:
        _book.append(book)


def early_warning_book(uow: UnitOfWork, who: Principal) -> Any:
    """The current book's signals, or None when no module assembles them (the golden tests then stand alone)."""
    return _book[0](uow, who) if _book else None


def connect_lending(*, loss_given_default: LossGivenDefault | None, product_prices: ProductPrices | None,
                    operating_cost_per_loan: OperatingCost | None) -> None:
    """Connect the ports (the composition root does this once at start-up)."""
    lending.loss_given_default = loss_given_default
    lending.product_prices = product_prices
    lending.operating_cost_per_loan = operating_cost_per_loan


def money_assumptions(uow: UnitOfWork, who: Principal, funding_rate: Decimal | None = None) -> MoneyAssumptions:
    """The bank's LGD (its provisioning settings), product rates and fees (its products) and operating cost
    per loan (its unit-cost settings); the funding rate is the default unless given."""
    sources = {"lgd": "default", "products": "none", "operating_cost_per_loan": "default",
               "funding_rate": "default" if funding_rate is None else "given"}
    lgd, cost = DEFAULT_ASSUMPTIONS.lgd, DEFAULT_ASSUMPTIONS.operating_cost_per_loan
    products: dict[str, ProductPricing] = {}
    if lending.loss_given_default is not None:
        lgd, sources["lgd"] = lending.loss_given_default(uow, who), "servicing.provisioning"
    if lending.product_prices is not None:
        products = {code: ProductPricing(Decimal(p.annual_rate), Decimal(p.upfront_fee_rate))
                    for code, p in lending.product_prices(uow, who).items()}
        sources["products"] = "servicing.products"
    if lending.operating_cost_per_loan is not None:
        cost = lending.operating_cost_per_loan(uow, who)
        sources["operating_cost_per_loan"] = "origination.unit_cost"
    return MoneyAssumptions(lgd=lgd, funding_rate=DEFAULT_ASSUMPTIONS.funding_rate if funding_rate is None
                            else funding_rate, operating_cost_per_loan=cost, products=products, sources=sources)
