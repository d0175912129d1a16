"""Pre-approval over the bank's own customers with the live credit rules (批量预授信, 与实时审批同一规则).

What a live decision uses, read through the owning modules' query functions:
- the model: the bank's champion (`risk.queries.champion_model`; a new bank's is the expert micro-business
  scorecard), scoring each customer's stored profile and own-account features in one batch;
- the policy: the credit policy the bank published (`decisioning.queries.published_credit_policy`), evaluated in
  batch by the columnar evaluator (the row-by-row engine when it cannot be compiled);
- the facts: the marketing customer view (`customerview.customer_view`), which carries the obligor group's
  exposure (principal outstanding, undrawn lines, open offers, applications in review) netted by the policy
  against the bank's per-borrower cap, the group's arrears, non-performing and written-off loans, the blacklist
  and the credit report (only with credit-report consent, as in a live decision), the turnover and the bank's
  turnover multiple (capacity: limit <= multiple x annual turnover), the age at maturity and the ID's expiry.

Every one of those columns is in the run's data fingerprint, so a re-run after any change (a customer
blacklisted, a loan falling overdue, a new loan) is a new run with new offers, never the old run returned.
Not available in batch (a live decision asks external providers under the borrower's consent): the tax,
e-invoice, merchant, registry and enforcement sources; the policy sees them as not called, as a live decision
without those sources does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import polars as pl

from microlend.batch.engine import Progress
from microlend.core.errors import DomainError
from microlend.core.identity import Principal, system_principal
from microlend.core.uow import UnitOfWork
from microlend.data.business import FEATURE_NAMES
from microlend.decisioning import queries as decisions
from microlend.marketing.customerview import customer_view
from microlend.marketing.preapproval import OfferParameters, PreapprovalSummary, run_over_table
from microlend.risk import queries as models

SUBJECT_KIND = "subject_kind"


@dataclass
class PrecomputedScore:
    """The champion's scores, computed once over the whole base and carried in the table's `model_score`."""

    version: str
    features: tuple[str, ...] = ("model_score",)

    def __call__(self, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
        return np.asarray(frame["model_score"], dtype=np.float64)


def score_profiles(model: Any, profiles: list[dict[str, Any]] | pd.DataFrame) -> npt.NDArray[np.float64]:
    """The model's score of each profile (NaN where it cannot read one), in one batch."""
    n = len(profiles)
    if n == 0:
        return np.zeros(0)
    features = list(getattr(model, "features", []))
    frame = profiles if isinstance(profiles, pd.DataFrame) else pd.DataFrame.from_records(profiles)
    wanted = features + ([SUBJECT_KIND] if SUBJECT_KIND in frame.columns and SUBJECT_KIND not in features else [])
    for name in wanted:
        if name not in frame.columns:
            frame[name] = np.nan
    try:
        scored = model.score_batch(frame[wanted], with_reasons=False)
    except DomainError:
        return np.full(n, np.nan)
    return np.asarray(scored["score"], dtype=np.float64).round(2)


def add_months(on: date, months: int) -> date:
    """The same day `months` later (the month's last day when it is shorter), as a live decision counts."""
    month = on.month - 1 + months
    year, month = on.year + month // 12, month % 12 + 1
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    last = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return date(year, month, min(on.day, last))


def age_at_maturity(frame: pl.DataFrame, as_of: date, term_months: int) -> pl.Expr:
    """The borrower's (a business: its owner's) age on the last due date, vectorised."""
    m = add_months(as_of, term_months)
    birth = pl.col("birth_or_owner_birth")
    later = (birth.dt.month() > m.month) | ((birth.dt.month() == m.month) & (birth.dt.day() > m.day))
    from_birth = (pl.lit(m.year) - birth.dt.year() - later.cast(pl.Int32)).cast(pl.Float64)
    from_owner_age = pl.col("owner_age_at_maturity_base") + float((term_months + 11) // 12)
    return pl.coalesce(from_birth, from_owner_age).alias("age_at_maturity")


def bank_table(uow: UnitOfWork, who: Principal, as_of: date, now: datetime, params: OfferParameters
               ) -> tuple[pl.DataFrame, str, dict[str, Any], str]:
    """(the customers with every fact the policy reads and the champion's score, sorted by id; the model's
    label; the published policy; its label)."""
    system = system_principal(who.tenant_id, "preapproval")
    model, model_label = models.champion_model(uow, system)
    policy, policy_label = decisions.published_credit_policy(uow, system)
    frame, facts, profiles = customer_view(uow, who, as_of, now, with_attributes=True)
    scores = score_profiles(model, profiles)

    def setting(value: Decimal | None) -> pl.Expr:
        return pl.lit(None if value is None else float(value), dtype=pl.Float64)

    frame = frame.with_columns(
        pl.Series("model_score", scores, dtype=pl.Float64),
        setting(facts.borrower_exposure_cap if facts else None).alias("exposure_cap"),
        setting(facts.turnover_multiple if facts else None).alias("turnover_multiple"),
        setting(facts.debt_to_income_ceiling if facts else None).alias("debt_to_income_ceiling"),
        setting(facts.tax_loan_fraction if facts else None).alias("tax_loan_fraction"),
    ).with_columns(age_at_maturity(frame, as_of, params.term_months)).sort("customer_id")
    return frame, model_label, policy, policy_label


def _v(frame: pl.DataFrame, name: str, kind: str) -> Any:
    """A column as the columnar evaluator's value: nulls stay null (the rules on an unknown fact stay silent)."""
    from microlend.decisioning.columnar import V

    n = frame.height
    if name not in frame.columns or frame.get_column(name).null_count() == n:
        return V("null", None, np.ones(n, dtype=bool), np.zeros(n, dtype=bool))
    s = frame.get_column(name)
    null = s.is_null().to_numpy()
    if kind == "num":
        data: Any = s.cast(pl.Float64).fill_null(0.0).to_numpy()
    elif kind == "bool":
        data = s.cast(pl.Boolean).fill_null(False).to_numpy()
    else:
        data = s.cast(pl.Utf8).fill_null("").to_numpy().astype(object)
    return V(kind, data, null, np.zeros(n, dtype=bool))


def live_policy_facts(frame: pl.DataFrame, score: npt.NDArray[np.float64], params: OfferParameters
                      ) -> dict[str, Any]:
    """The policy's input fields as `origination.inputs.decision_input` assembles them for one application."""
    from microlend.decisioning.columnar import V
    from microlend.marketing.preapproval import _const

    n = frame.height
    score_null = np.isnan(score)
    facts: dict[str, Any] = {
        "application.amount": _const(n, "num", params.requested_amount),
        "application.term_months": _const(n, "num", params.term_months),
        "application.product_code": _const(n, "str", params.product_code),
        "model.score": V("num", np.nan_to_num(score), score_null, np.zeros(n, dtype=bool)),
    }
    for path, column, kind in (
        ("customer.age", "age", "num"),
        ("customer.annual_turnover", "annual_turnover", "num"),
        ("customer.annual_income", "annual_income", "num"),
        ("customer.years_in_business", "years_in_business", "num"),
        ("customer.blacklisted", "blacklisted", "bool"),
        ("customer.overdue_elsewhere", "overdue_elsewhere", "bool"),
        ("customer.bureau_data_present", "bureau_data_present", "bool"),
        ("features.credit_history_months", "credit_history_months", "num"),
        ("features.bureau_lenders_open", "bureau_lenders_open", "num"),
        ("features.bureau_inquiries_3m", "bureau_inquiries_3m", "num"),
        ("features.own_days_past_due", "own_days_past_due", "num"),
        ("features.own_npl_loans", "own_npl_loans", "num"),
        ("features.own_written_off", "own_written_off", "num"),
        ("features.applications_30d", "applications_30d", "num"),
        ("features.pending_offers", "pending_offers", "num"),
        ("exposure.total", "exposure_total", "num"),
        ("exposure.cap", "exposure_cap", "num"),
        ("capacity.borrower_kind", "customer_kind", "str"),
        ("capacity.verified_turnover", "verified_turnover", "num"),
        ("capacity.turnover_multiple", "turnover_multiple", "num"),
        ("capacity.debt_to_income_ceiling", "debt_to_income_ceiling", "num"),
        ("capacity.age_at_maturity", "age_at_maturity", "num"),
        ("capacity.id_document_expired", "id_document_expired", "bool"),
        ("capacity.credit_report_consent", "credit_report_consent", "bool"),
        ("capacity.tax_loan_fraction", "tax_loan_fraction", "num"),
        ("capacity.verified_sales_12m", "verified_sales_12m", "num"),
    ):
        facts[path] = _v(frame, column, kind)
    for name in FEATURE_NAMES:
        if name != "tax_grade":
            facts[f"features.{name}"] = _v(frame, name, "num")
    for kind in ("bureau", "tax", "einvoice", "merchant", "registry", "enforcement"):
        facts[f"data.sources.{kind}"] = _v(frame, f"source_{kind}", "str")
    return facts


def run_bank_preapproval(
    uow: UnitOfWork, who: Principal, *, as_of: date, started_at: datetime, segment_name: str | None = None,
    segment_version: int | None = None, params: OfferParameters | None = None, chunk_rows: int = 100_000,
    progress: Progress | None = None,
) -> PreapprovalSummary:
    """Pre-approve the bank's own customers (or a segment of them) with its champion model and published
    policy; see the module docstring."""
    from microlend.core.identity import Permission

    who.require(Permission.MANAGE_CAMPAIGNS)
    params = params or OfferParameters()
    frame, model_label, policy, policy_label = bank_table(uow, who, as_of, started_at, params)
    return run_over_table(uow, who, frame.to_arrow(), as_of=as_of, started_at=started_at,
                          segment_name=segment_name, segment_version=segment_version,
                          scorer=PrecomputedScore(model_label), policy=policy, policy_version=policy_label,
                          params=params, facts=live_policy_facts, chunk_rows=chunk_rows, progress=progress)
