"""The marketing customer view (营销客户视图): one row per customer of the bank, built only through the owning
modules' query functions — parties (who the customer is, consent, profile), the lending port (loans and their
status, repayment behaviour, exposure, arrears, the credit report, applications with their dates: origination
and servicing through `sources.bank_credit_facts`), data (balances and flows of the customer's own accounts at
the bank) — and marketing's own offers (pre-approved, with the date of their run).

`VIEW_NAMESPACE` lists exactly the fields this view carries, so every field a segment may name is a column
here; recency is written as "days since" fields (null when the event never happened, and a comparison with
null is false, so a customer who never repaid early is not in `days_since_early_repayment <= 183`).

The same view is the input of a pre-approval over the bank's own customers: it carries every flag the credit
policy reads (blacklist, arrears, exposure, turnover, credit report), so a change of any of them changes the
run's data fingerprint and a re-run gives a new result.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import polars as pl
from sqlalchemy import select

from microlend.core.identity import Principal, system_principal
from microlend.core.uow import UnitOfWork
from microlend.data import accounts, business
from microlend.data import queries as data_queries
from microlend.marketing.segments import DEFAULT_NAMESPACE, FeatureType
from microlend.marketing.sources import bank_credit_facts
from microlend.marketing.tables import OfferRow, PreapprovalRunRow
from microlend.parties import queries as parties

#: The fields of the view a segment may use, with their types: exactly the columns `customer_view` fills.
VIEW_NAMESPACE: dict[str, FeatureType] = DEFAULT_NAMESPACE

_NUMBER = pl.Float64


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(Decimal(str(value)))
    except ArithmeticError:
        return None


def _days(since: date | datetime | None, as_of: date) -> float | None:
    if since is None:
        return None
    day = since.date() if isinstance(since, datetime) else since
    return float((as_of - day).days)


def _age(birth: date | None, attrs: Mapping[str, Any], as_of: date) -> float | None:
    if birth is None:
        owner = attrs.get("owner_birth_date")
        try:
            birth = date.fromisoformat(str(owner)) if owner else None
        except ValueError:
            birth = None
    if birth is not None:
        return float(as_of.year - birth.year - ((as_of.month, as_of.day) < (birth.month, birth.day)))
    return _num(attrs.get("owner_age", attrs.get("age_in_years")))


def latest_offers(uow: UnitOfWork, who: Principal, as_of: date) -> dict[int, tuple[date, date, Decimal]]:
    """Customer id -> (date of the run, expiry, limit) of their latest pre-approved offer from a completed run
    on or before `as_of`."""
    with uow:
        rows = uow.session.execute(
            select(OfferRow.customer_id, PreapprovalRunRow.as_of, OfferRow.expires_on, OfferRow.limit)
            .join(PreapprovalRunRow, PreapprovalRunRow.id == OfferRow.run_id)
            .where(OfferRow.tenant_id == who.tenant_id, PreapprovalRunRow.status == "completed",
                   PreapprovalRunRow.as_of <= as_of)
            .order_by(OfferRow.customer_id, PreapprovalRunRow.as_of, OfferRow.id)).all()
    out: dict[int, tuple[date, date, Decimal]] = {}
    for customer, on, expires, limit in rows:
        out[int(customer)] = (on, expires, limit)
    return out


def _schema() -> dict[str, Any]:
    types: dict[str, Any] = {"customer_id": pl.Int64, "officer_user_id": pl.Int64, "marketing_consent": pl.Boolean,
                             "created_at": pl.Datetime("us", "UTC"), "birth_date": pl.Date}
    for name, kind in VIEW_NAMESPACE.items():
        types[name] = {"number": _NUMBER, "string": pl.Utf8, "boolean": pl.Boolean}[kind]
    for name in ("annual_income", "verified_turnover", "attr_tax_sales_12m", "owner_age_at_maturity_base",
                 "exposure_outstanding", "exposure_undrawn", "exposure_offers", "exposure_in_review",
                 "exposure_total", "own_days_past_due", "own_npl_loans", "own_written_off", "pending_offers",
                 "credit_history_months", "bureau_lenders_open", "bureau_inquiries_3m"):
        types[name] = _NUMBER
    for name in ("blacklisted", "overdue_elsewhere", "bureau_data_present", "credit_report_consent",
                 "id_document_expired"):
        types[name] = pl.Boolean
    types["birth_or_owner_birth"] = pl.Date
    types["subject_kind"] = pl.Utf8
    return types


def customer_view(uow: UnitOfWork, who: Principal, as_of: date, now: datetime,
                  with_attributes: bool = False) -> tuple[pl.DataFrame, Any, list[dict[str, Any]]]:
    """(the view, the bank's credit facts as the lending port gave them or None, each customer's stored profile
    attributes in the view's order when `with_attributes`). A customer's consent, profile and arrears are as of
    now; "days since" fields count to `as_of`."""
    system = system_principal(who.tenant_id, "marketing-view")
    customers = parties.all_customers(uow, who)
    facts = bank_credit_facts(uow, system, as_of, now)
    by_customer: Mapping[int, Any] = facts.customers if facts is not None else {}
    consent: frozenset[int] = facts.credit_report_consent if facts is not None else frozenset()
    own = accounts.own_account_features(uow, system, None, as_of)
    offers = latest_offers(uow, who, as_of)
    records: list[dict[str, Any]] = []
    profiles: list[dict[str, Any]] = []
    for c in customers:
        attrs = dict(c.attributes)
        f = by_customer.get(c.id)
        acct = own.get(c.id)
        offer = offers.get(c.id)
        months = (as_of.year - c.created_at.year) * 12 + as_of.month - c.created_at.month
        last_applied = f.last_applied_at if f is not None else None
        owner_birth = c.birth_date
        if owner_birth is None and attrs.get("owner_birth_date"):
            try:
                owner_birth = date.fromisoformat(str(attrs["owner_birth_date"]))
            except ValueError:
                owner_birth = None
        expiry = attrs.get("id_expiry_date")
        try:
            id_expired = None if not expiry else date.fromisoformat(str(expiry)) < as_of
        except ValueError:
            id_expired = None
        report_present = None if f is None else f.bureau_present
        records.append({
            "customer_id": c.id, "officer_user_id": c.officer_user_id, "marketing_consent": c.marketing_consent,
            "created_at": c.created_at, "birth_date": c.birth_date, "birth_or_owner_birth": owner_birth,
            "age": _age(c.birth_date, attrs, as_of), "industry": c.industry or None, "customer_kind": c.kind,
            "subject_kind": c.kind, "branch": c.branch or None, "months_on_book": float(max(months, 0)),
            "has_officer": c.officer_user_id is not None,
            "annual_turnover": _num(attrs.get("annual_turnover")), "annual_income": _num(attrs.get("annual_income")),
            "years_in_business": _num(attrs.get("years_in_business")),
            "verified_turnover": _num(attrs.get("verified_annual_turnover")),
            "attr_tax_sales_12m": _num(attrs.get("tax_sales_12m")),
            "owner_age_at_maturity_base": _num(attrs.get("owner_age")) if owner_birth is None else None,
            "id_document_expired": id_expired,
            # accounts
            "has_deposit_account": acct is not None,
            "deposit_balance_3m": None if acct is None else acct.get("own_avg_balance_3m"),
            "inflow_3m": None if acct is None else acct.get("own_inflow_3m"),
            "turnover_credits_3m": None if acct is None else acct.get("own_turnover_credits_3m"),
            "account_months": None if acct is None else acct.get("own_account_months"),
            # loans
            "has_loan": bool(f and f.active_loans),
            "has_credit_line": bool(f and f.undrawn > 0),
            "loans_count": float(f.loans_count) if f else 0.0,
            "active_loans_count": float(f.active_loans) if f else 0.0,
            "outstanding_principal": _num(f.own_outstanding) if f else 0.0,
            "current_days_past_due": float(f.days_past_due) if f else 0.0,
            "max_days_past_due_ever": float(f.max_days_past_due_ever) if f else 0.0,
            "days_since_last_loan": _days(f.last_disbursed, as_of) if f else None,
            "days_since_loan_closed": _days(f.last_closed, as_of) if f else None,
            "installments_due": float(f.installments_due) if f else 0.0,
            "on_time_repayment_rate": (f.paid_on_time / f.installments_due) if f and f.installments_due else None,
            "days_since_early_repayment": _days(f.last_early_repayment, as_of) if f else None,
            # applications and offers
            "applications_count": float(f.applications_count) if f else 0.0,
            "applications_30d": float(f.applications_30d) if f else 0.0,
            "days_since_last_application": _days(last_applied, as_of),
            "has_open_offer": offer is not None and offer[1] >= as_of,
            "offer_limit": None if offer is None else _num(offer[2]),
            "days_since_offer": None if offer is None else _days(offer[0], as_of),
            "applied_since_offer": offer is not None and last_applied is not None
            and last_applied.date() >= offer[0],
            # what the credit policy reads (as a live decision assembles it)
            "exposure_outstanding": _num(f.outstanding) if f else 0.0,
            "exposure_undrawn": _num(f.undrawn) if f else 0.0,
            "exposure_offers": _num(f.offers) if f else 0.0,
            "exposure_in_review": _num(f.in_review) if f else 0.0,
            "exposure_total": _num(f.exposure_total) if f else 0.0,
            "own_days_past_due": float(f.own_days_past_due) if f else 0.0,
            "own_npl_loans": float(f.own_npl_loans) if f else 0.0,
            "own_written_off": float(f.own_written_off) if f else 0.0,
            "pending_offers": float(f.pending_offers) if f else 0.0,
            "credit_report_consent": c.id in consent,
            "bureau_data_present": bool(report_present),
            "blacklisted": bool(attrs.get("blacklisted", False)) or bool(f and f.bureau_blacklisted),
            "overdue_elsewhere": bool(f and report_present and f.bureau_overdue_elsewhere),
            "credit_history_months": _num(f.credit_history_months) if f and report_present else None,
            "bureau_lenders_open": _num(f.bureau_lenders_open) if f and report_present else None,
            "bureau_inquiries_3m": _num(f.bureau_inquiries_3m) if f and report_present else None,
        })
        if with_attributes:
            profiles.append({**attrs, **(acct or {}), "subject_kind": c.kind})
    frame = pl.DataFrame(records, schema=_schema())
    stored = data_queries.stored_business_features(uow, system, parties.subject_indexes(uow, who), as_of)
    frame = with_business_data(frame, stored)
    if with_attributes and stored.height:
        known = {int(r["customer_id"]): r for r in stored.select(
            "customer_id", *business.FEATURE_NAMES).to_dicts()}
        ids = frame.get_column("customer_id").to_list()
        profiles = [{**p, **{k: v for k, v in known.get(i, {}).items() if k != "customer_id"}}
                    for i, p in zip(ids, profiles, strict=True)]
    return frame, facts, profiles


def with_business_data(frame: pl.DataFrame, stored: pl.DataFrame) -> pl.DataFrame:
    """The view with the business features the bank holds (null where it holds none), each source's status
    (`source_<kind>`), the verified sales (the tax source's declared sales, else the profile's) and, with the
    credit-report consent, the credit report as the bureau source gave it (as a live decision reads it)."""
    kinds = ("bureau", "tax", "einvoice", "merchant", "registry", "enforcement")
    cents = [f"{n}__cents" for n in business.MONEY_FEATURES]
    wanted = ["customer_id", *business.FEATURE_NAMES, *cents, *(f"source_{k}" for k in kinds)]
    if stored.height == 0:
        stored = pl.DataFrame(schema={"customer_id": pl.Int64})
    missing = [pl.lit(None, dtype=pl.String if c.startswith("source_") or c == "tax_grade" else pl.Float64).alias(c)
               for c in wanted if c not in stored.columns]
    stored = stored.with_columns(missing).select(wanted).with_columns(
        [pl.col(n).cast(pl.Float64) for n in business.FEATURE_NAMES if n != "tax_grade"])
    out = frame.join(stored, on="customer_id", how="left")
    bureau = pl.col("source_bureau")
    answered = pl.col("credit_report_consent") & bureau.is_in(["ok", "not_found"]).fill_null(False)
    present = answered & (bureau == "ok") & pl.col("bur_history_months").is_not_null()
    return out.with_columns(
        pl.coalesce(pl.col("tax_sales_12m__cents").cast(pl.Float64) / 100.0, pl.col("attr_tax_sales_12m"))
        .alias("verified_sales_12m"),
        pl.when(answered).then(present).otherwise(pl.col("bureau_data_present")).alias("bureau_data_present"),
        pl.when(answered).then(present & (pl.col("bur_overdue_now").fill_null(0) > 0))
        .otherwise(pl.col("overdue_elsewhere")).alias("overdue_elsewhere"),
        (pl.col("blacklisted") | (answered & (pl.col("bur_bad_debt").fill_null(0) > 0))).alias("blacklisted"),
        pl.when(answered).then(pl.when(present).then(pl.col("bur_history_months")))
        .otherwise(pl.col("credit_history_months")).alias("credit_history_months"),
        pl.when(answered).then(pl.when(present).then(pl.col("bur_lenders_open")))
        .otherwise(pl.col("bureau_lenders_open")).alias("bureau_lenders_open"),
        pl.when(answered).then(pl.when(present).then(pl.col("bur_inquiries_3m")))
        .otherwise(pl.col("bureau_inquiries_3m")).alias("bureau_inquiries_3m"),
    )
