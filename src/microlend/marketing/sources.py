"""What marketing reads from other modules' tables, all in one place (客户与贷款数据来源).

Marketing must not import origination or servicing (architecture: marketing -> decisioning, data, parties),
so the `customers`, `applications` and `loans` tables are read here through SQLAlchemy Core by table and
column name. Every such read lives in this file and nowhere else in marketing, so that moving them onto
the owning modules' query functions is a change to this one file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import polars as pl
from sqlalchemy import column, func, inspect, select, table
from sqlalchemy.orm import Session

from microlend.core.db import JSONText, UTCDateTime

#: ids per IN (...) list, so that a large customer base never builds one huge statement
IN_CHUNK = 5_000

#: customer profile attributes the marketing frame carries as columns
_PROFILE_KEYS = ("status_of_existing_checking_account", "duration_in_month", "credit_history",
                 "savings_account_and_bonds", "present_employment_since", "property", "purpose", "credit_amount",
                 "other_installment_plans", "housing", "installment_rate_in_percentage_of_disposable_income",
                 "years_in_business", "annual_turnover")


def marketing_consent(session: Session, tenant_id: int, customer_ids: Sequence[int]) -> set[int]:
    """The ids among `customer_ids` whose `customers` row carries the marketing_consent flag (营销授权)."""
    customers = table("customers", column("id"), column("tenant_id"), column("marketing_consent"))
    out: set[int] = set()
    ids = list(customer_ids)
    for start in range(0, len(ids), IN_CHUNK):
        rows = session.execute(
            select(customers.c.id).where(
                customers.c.tenant_id == tenant_id, customers.c.id.in_(ids[start:start + IN_CHUNK]),
                customers.c.marketing_consent.is_(True))
        ).scalars()
        out.update(int(r) for r in rows)
    return out


def applications_for_funnel(session: Session, tenant_id: int, customer_ids: Sequence[int], since: datetime
                            ) -> list[tuple[int, int | None, str, datetime, datetime | None, datetime | None]]:
    """Applications of these customers submitted since `since` (origination's `applications` table):
    (customer_id, campaign_id, status, submitted_at, decided_at, disbursed_at); nothing when the bank runs
    no origination here."""
    if not customer_ids or not inspect(session.connection()).has_table("applications"):
        return []
    apps = table("applications", column("tenant_id"), column("customer_id"), column("campaign_id"),
                 column("status"), column("submitted_at", UTCDateTime()), column("decided_at", UTCDateTime()),
                 column("disbursed_at", UTCDateTime()))
    out: list[tuple[int, int | None, str, datetime, datetime | None, datetime | None]] = []
    ids = list(customer_ids)
    for start in range(0, len(ids), IN_CHUNK):
        rows = session.execute(select(apps.c.customer_id, apps.c.campaign_id, apps.c.status, apps.c.submitted_at,
                                      apps.c.decided_at, apps.c.disbursed_at).where(
            apps.c.tenant_id == tenant_id, apps.c.customer_id.in_(ids[start:start + IN_CHUNK]),
            apps.c.submitted_at >= since)).all()
        for customer, campaign, status, submitted, decided, disbursed in rows:
            out.append((int(customer), None if campaign is None else int(campaign), status, submitted, decided,
                        disbursed))
    return out


def customer_loan_status(session: Session, tenant_id: int) -> dict[int, int]:
    """Each customer's worst days past due over their active loans (servicing's `loans` table); empty when
    the bank runs no servicing here."""
    if not inspect(session.connection()).has_table("loans"):
        return {}
    loans = table("loans", column("tenant_id"), column("customer_id"), column("status"), column("days_past_due"))
    rows = session.execute(
        select(loans.c.customer_id, func.max(loans.c.days_past_due))
        .where(loans.c.tenant_id == tenant_id, loans.c.status == "active", loans.c.customer_id.is_not(None),
               loans.c.days_past_due > 0)
        .group_by(loans.c.customer_id)).all()
    return {int(c): int(d) for c, d in rows}


def customer_contacts(session: Session, tenant_id: int, customer_ids: Sequence[int]) -> dict[int, Any]:
    """Name, masked phone, address and branch of these customers (the `customers` table), by id; empty
    when the bank keeps no customers here."""
    if not inspect(session.connection()).has_table("customers"):
        return {}
    customers = table("customers", column("id"), column("tenant_id"), column("name"), column("phone_masked"),
                      column("address"), column("branch"))
    return {int(r.id): r for r in session.execute(select(customers).where(
        customers.c.tenant_id == tenant_id, customers.c.id.in_(list(customer_ids)))).all()}


def customers_frame(session: Session, tenant_id: int, as_of: date,
                    days_past_due: Mapping[int, int] | None = None) -> pl.DataFrame:
    """The tenant's customers as marketing's frame: id, age, months on book, industry, kind, branch,
    consent, officer, current days past due (from servicing, passed in) and the profile attributes."""
    customers = table("customers", column("id"), column("tenant_id"), column("kind"), column("birth_date"),
                      column("industry"), column("branch"), column("officer_user_id"), column("marketing_consent"),
                      column("attributes", JSONText()), column("created_at", UTCDateTime()))
    rows = session.execute(select(customers).where(customers.c.tenant_id == tenant_id)
                           .order_by(customers.c.id)).mappings().all()
    dpd = days_past_due or {}
    return pl.DataFrame([customer_record(r, as_of, dpd) for r in rows], infer_schema_length=None)


def customer_record(row: Mapping[Any, Any], as_of: date, days_past_due: Mapping[int, int]) -> dict[str, Any]:
    """One `customers` row as a record of marketing's frame (age and months on book as of `as_of`)."""
    birth = row["birth_date"]
    if isinstance(birth, str):
        birth = date.fromisoformat(birth)
    attrs = dict(row["attributes"] or {})
    age = attrs.get("age_in_years")
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
