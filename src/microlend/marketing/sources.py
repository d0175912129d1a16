"""What marketing knows from other modules (客户与贷款数据来源).

Customers come from parties, which marketing may import. Applications (origination) and loans (servicing)
sit beside marketing, not below it, so marketing reads them through two ports that the composition root,
`bootstrap.py`, connects to `origination.queries.application_steps` and `servicing.queries.worst_days_past_due`.
A bank that runs marketing without those modules leaves a port unconnected, and it answers nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

import polars as pl

from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.parties import queries as parties
from microlend.parties.queries import ContactCard

#: ids per IN (...) list, so that a large customer base never builds one huge statement
IN_CHUNK = 5_000

#: customer profile attributes the marketing frame carries as columns
_PROFILE_KEYS = ("status_of_existing_checking_account", "duration_in_month", "credit_history",
                 "savings_account_and_bonds", "present_employment_since", "property", "purpose", "credit_amount",
                 "other_installment_plans", "housing", "installment_rate_in_percentage_of_disposable_income",
                 "years_in_business", "annual_turnover")

#: (customer_id, kind, at, campaign_id): applied, approved or disbursed
FunnelEvent = tuple[int, str, datetime, int | None]


class ApplicationStep(Protocol):
    """One step of a customer's way to a loan, as the lending side reports it."""

    @property
    def customer_id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def campaign_id(self) -> int | None: ...


#: (uow, who, business date, now) -> the bank's lending limits and every customer's credit facts as a live
#: decision reads them (origination.queries.BankCreditFacts)
CreditFacts = Callable[[UnitOfWork, Principal, date, datetime], Any]
ApplicationSteps = Callable[[UnitOfWork, Principal, Sequence[int], datetime], Sequence[ApplicationStep]]
WorstArrears = Callable[[UnitOfWork, Principal], Mapping[int, int]]


@dataclass
class LendingPorts:
    """Where marketing learns of applications and arrears; unconnected ports answer nothing."""

    application_steps: ApplicationSteps | None = None
    worst_days_past_due: WorstArrears | None = None
    credit_facts: CreditFacts | None = None


lending = LendingPorts()


def connect_lending(*, application_steps: ApplicationSteps | None, worst_days_past_due: WorstArrears | None,
                    credit_facts: CreditFacts | None = None) -> None:
    """Connect the ports (the composition root does this once at start-up)."""
    lending.application_steps = application_steps
    lending.worst_days_past_due = worst_days_past_due
    lending.credit_facts = credit_facts


def bank_credit_facts(uow: UnitOfWork, who: Principal, on: date, now: datetime) -> Any:
    """The bank's lending limits and its customers' credit facts (exposure, arrears, credit report, loans and
    applications), as a live decision reads them; None when the bank runs no lending here."""
    if lending.credit_facts is None:
        return None
    return lending.credit_facts(uow, who, on, now)


def marketing_consent(uow: UnitOfWork, who: Principal, customer_ids: Sequence[int]) -> set[int]:
    """The ids among `customer_ids` who agreed to marketing (营销授权), as parties holds it now."""
    return parties.marketing_consented(uow, who, customer_ids)


def applications_for_funnel(uow: UnitOfWork, who: Principal, customer_ids: Sequence[int], since: datetime
                            ) -> list[FunnelEvent]:
    """The funnel steps of these customers' applications submitted since `since`; nothing when the bank runs
    no origination here."""
    if not customer_ids or lending.application_steps is None:
        return []
    return [(s.customer_id, s.kind, s.at, s.campaign_id)
            for s in lending.application_steps(uow, who, customer_ids, since)]


def customer_loan_status(uow: UnitOfWork, who: Principal) -> dict[int, int]:
    """Each overdue customer's worst days past due over their active loans; empty when the bank runs no
    servicing here."""
    if lending.worst_days_past_due is None:
        return {}
    return dict(lending.worst_days_past_due(uow, who))


def customer_officers(uow: UnitOfWork, who: Principal, customer_ids: Sequence[int]) -> dict[int, int]:
    """The officer in charge of each of these customers that has one (for their visit tasks)."""
    return parties.officers_of(uow, who, customer_ids)


def customer_contacts(uow: UnitOfWork, who: Principal, customer_ids: Sequence[int]) -> dict[int, ContactCard]:
    """Name, masked phone, address and branch of these customers, by id."""
    return parties.contact_cards(uow, who, customer_ids)


def customers_frame(uow: UnitOfWork, who: Principal, as_of: date,
                    days_past_due: Mapping[int, int] | None = None) -> pl.DataFrame:
    """The bank's customers as marketing's frame: id, age, months on book, industry, kind, branch,
    consent, officer, current days past due (passed in) and the profile attributes."""
    dpd = days_past_due or {}
    records = [customer_record(vars(c), as_of, dpd) for c in parties.all_customers(uow, who)]
    return pl.DataFrame(records, infer_schema_length=None)


def customer_record(row: Mapping[Any, Any], as_of: date, days_past_due: Mapping[int, int]) -> dict[str, Any]:
    """One customer as a record of marketing's frame (age and months on book as of `as_of`)."""
    birth = row["birth_date"]
    if isinstance(birth, str):
        birth = date.fromisoformat(birth)
    attrs = dict(row["attributes"] or {})
    age = attrs.get("age_in_years", attrs.get("owner_age"))  # a business: its owner's age, as decisions take it
    if birth is not None:
        age = as_of.year - birth.year - ((as_of.month, as_of.day) < (birth.month, birth.day))
    created: datetime = row["created_at"]
    months = (as_of.year - created.year) * 12 + as_of.month - created.month
    record: dict[str, Any] = {
        "customer_id": int(row["id"]), "age": None if age is None else float(age),
        "months_on_book": float(max(months, 0)), "industry": row["industry"] or None, "customer_kind": row["kind"],
        "branch": row["branch"] or None, "has_officer": row["officer_user_id"] is not None,
        "officer_user_id": row["officer_user_id"], "marketing_consent": bool(row["marketing_consent"]),
        "current_days_past_due": float(days_past_due.get(int(row["id"]), 0)), "created_at": created,
        "birth_date": birth,
    }
    for key in _PROFILE_KEYS:
        value = attrs.get(key)
        record[key] = float(value) if key in ("annual_turnover", "years_in_business") and value is not None \
            else value
    return record
