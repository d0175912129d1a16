"""What the bank can know about an applicant's business at decision time: the external sources behind the data
gateway (only those the borrower authorised), the bank's own account data, turned into point-in-time business
features — the same computation as the batch over the whole base (`microlend.data.business`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.data import accounts, business
from microlend.data.gateway import CallStatus, Gateway, GatheredData, default_gateway
from microlend.parties import queries as parties
from microlend.risk.expert import SUBJECT_KIND

#: The sources asked about a business (by its USCC) and about a person (by the resident ID).
KINDS: Mapping[str, tuple[str, ...]] = {
    "business": ("bureau", "tax", "einvoice", "merchant", "registry", "enforcement"),
    "person": ("bureau", "merchant", "enforcement"),
}

_CATEGORIES = frozenset(f.name for f in business.BUSINESS_FEATURES if f.dtype == "category")
_gateway: Gateway | None = None


def set_gateway(gateway: Gateway | None) -> None:
    """Use this gateway for decisions (tests pass one over a fake transport; None: the process default)."""
    global _gateway
    _gateway = gateway


def gateway() -> Gateway:
    return _gateway or default_gateway()


@dataclass(frozen=True)
class BusinessData:
    """The applicant's data as the decision sees it: features (None where unknown), each source's status,
    the exactly verified sales for limit formulas, what the calls cost and the recorded call ids."""

    features: dict[str, float | None] = field(default_factory=dict)
    categories: dict[str, str | None] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    verified_sales_12m: Decimal | None = None
    cost: Decimal = Decimal(0)
    call_ids: tuple[int, ...] = ()

    @property
    def unavailable(self) -> tuple[str, ...]:
        """Sources that could not answer now (a provider down, slow or broken), as opposed to answering 'no'."""
        bad = (CallStatus.UNAVAILABLE.value, CallStatus.DATA_ERROR.value)
        return tuple(k for k, s in self.sources.items() if s in bad)

    def scoring_case(self) -> dict[str, Any]:
        """What a model sees of the data: numbers and categories by feature name."""
        return {**self.features, **self.categories}


def _split(values: Mapping[str, float | str | None]) -> tuple[dict[str, float | None], dict[str, str | None]]:
    numbers: dict[str, float | None] = {}
    categories: dict[str, str | None] = {}
    for name, value in values.items():
        if isinstance(value, str):
            categories[name] = value
        elif name in _CATEGORIES:
            categories[name] = None
        else:
            numbers[name] = value
    return numbers, categories


def from_gathered(gathered: GatheredData, own: Mapping[str, float | None], on: date) -> BusinessData:
    """Features and statuses from what the gateway gathered and the bank's own account features (pure)."""
    values, exact = business.online_features(gathered.payloads(), on)
    numbers, categories = _split(values)
    sales = exact.get("tax_sales_12m")
    return BusinessData(
        features={**numbers, **own}, categories=categories,
        sources={k: r.status.value for k, r in gathered.results.items()},
        verified_sales_12m=sales, cost=gathered.cost,
        call_ids=tuple(r.call_id for r in gathered.results.values() if r.call_id is not None))


def gather(uow: UnitOfWork, who: Principal, customer_id: int, consents: Collection[str], *, purpose: str,
           on: date, application_id: int | None = None) -> BusinessData:
    """Ask the authorised sources about the customer as of `on` (in parallel, cached, costed; one recorded call
    per source) and compute the features. A source that fails is reported, never raised."""
    subject, kind = parties.query_subject(uow, who, customer_id)
    gathered = gateway().fetch(uow, who, subject, kind, KINDS.get(kind, KINDS["person"]), consents=consents,
                               purpose=purpose, application_id=application_id, as_of=on)
    own = accounts.own_account_features(uow, who, [customer_id], on).get(customer_id, {})
    data = from_gathered(gathered, own, on)
    return replace(data, categories={**data.categories, SUBJECT_KIND: kind})
