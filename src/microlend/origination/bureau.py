"""The credit bureau (征信) edge: a report is queried only with the borrower's authorisation.

`ProfileBureau` answers from the credit profile held with the customer (the demo bank's customers carry
one from the German credit data); a bank connects its real bureau by implementing `CreditBureau`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

#: Employment length categories of the profile -> months of credit history the report shows.
_HISTORY_MONTHS = {
    "unemployed": 0, "... < 1 year": 6, "1 <= ... < 4 years": 30, "4 <= ... < 7 years": 66,
    "... >= 7 years": 96,
}


@dataclass(frozen=True)
class BureauReport:
    present: bool
    credit_history_months: int | None = None
    overdue_elsewhere: bool = False
    blacklisted: bool = False
    existing_credits: int | None = None
    lenders_with_open_credit: int | None = None  # 多头借贷: lenders where the borrower has open credit now
    inquiries_3m: int | None = None  # credit report inquiries by lenders in the last 3 months


class CreditBureau(Protocol):
    def report(self, customer_kind: str, attributes: dict[str, Any]) -> BureauReport: ...


class ProfileBureau:
    """Reads the bureau facts from the customer's stored credit profile; no profile, no report."""

    def report(self, customer_kind: str, attributes: dict[str, Any]) -> BureauReport:
        employment = attributes.get("present_employment_since")
        history = attributes.get("credit_history")
        if employment is None and history is None and "credit_history_months" not in attributes:
            return BureauReport(present=False)
        months = attributes.get("credit_history_months")
        if months is None:
            months = _HISTORY_MONTHS.get(str(employment), 12)
        return BureauReport(
            present=True,
            credit_history_months=int(months),
            overdue_elsewhere=bool(attributes.get("overdue_elsewhere", False)),
            blacklisted=bool(attributes.get("blacklisted", False)),
            existing_credits=attributes.get("number_of_existing_credits_at_this_bank"),
            lenders_with_open_credit=_count(attributes.get("bureau_lenders_open")),
            inquiries_3m=_count(attributes.get("bureau_inquiries_3m")),
        )


def _count(value: Any) -> int | None:
    """A count from the profile (None when absent or not a whole number)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(str(value))
    except ValueError:
        return None
