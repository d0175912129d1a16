"""The live credit rules in batch (pure): the facts the pre-approval hands the policy decide each customer exactly
as the rule engine does one customer at a time, and the offers keep the arrears, blacklist, exposure and
capacity rules."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import numpy as np
import polars as pl
import pytest

from microlend.decisioning.columnar import ColumnarPolicy
from microlend.decisioning.policy import default_policy
from microlend.marketing.bank_preapproval import add_months, age_at_maturity, live_policy_facts
from microlend.marketing.preapproval import OfferParameters, RowByRowPolicy

PARAMS = OfferParameters(product_code="EI-STD", requested_amount=Decimal("200000"), term_months=12)
N = 400


def _frame(seed: int) -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)

    def maybe(values: np.ndarray, share: float = 0.1) -> list[object]:
        return [None if rng.random() < share else v.item() for v in values]

    kind = rng.choice(["business", "person"], N, p=[0.7, 0.3])
    sources = ["ok", "not_found", "unavailable", None]
    frame = pl.DataFrame({
        "customer_id": np.arange(1, N + 1),
        "customer_kind": kind.tolist(),
        "age": maybe(rng.integers(18, 70, N).astype(float)),
        "annual_turnover": maybe(np.round(rng.lognormal(12.5, 0.9, N), -3)),
        "annual_income": maybe(np.round(rng.lognormal(11.5, 0.5, N), -3), 0.5),
        "years_in_business": maybe(rng.integers(0, 20, N).astype(float)),
        "blacklisted": rng.random(N) < 0.05,
        "overdue_elsewhere": rng.random(N) < 0.05,
        "bureau_data_present": rng.random(N) < 0.8,
        "credit_history_months": maybe(rng.integers(0, 120, N).astype(float)),
        "bureau_lenders_open": maybe(rng.integers(0, 8, N).astype(float)),
        "bureau_inquiries_3m": maybe(rng.integers(0, 9, N).astype(float)),
        "own_days_past_due": np.where(rng.random(N) < 0.1, rng.integers(1, 60, N), 0).astype(float),
        "own_npl_loans": (rng.random(N) < 0.03).astype(float),
        "own_written_off": (rng.random(N) < 0.02).astype(float),
        "applications_30d": rng.poisson(0.3, N).astype(float),
        "pending_offers": (rng.random(N) < 0.05).astype(float),
        "exposure_total": np.where(rng.random(N) < 0.5, np.round(rng.uniform(0, 300_000, N), -2), 0.0),
        "exposure_cap": np.full(N, 1_000_000.0),
        "verified_turnover": maybe(np.round(rng.lognormal(12.5, 0.9, N), -3), 0.7),
        "turnover_multiple": np.full(N, 0.5),
        "debt_to_income_ceiling": np.full(N, 2.0),
        "age_at_maturity": maybe(rng.integers(19, 72, N).astype(float)),
        "id_document_expired": maybe(rng.random(N) < 0.03, 0.5),
        "credit_report_consent": rng.random(N) < 0.9,
        "tax_loan_fraction": np.full(N, 0.3),
        "verified_sales_12m": maybe(np.round(rng.lognormal(13, 0.8, N), -2), 0.5),
        "tax_sales_12m": maybe(np.round(rng.lognormal(13, 0.8, N), -2), 0.5),
        "enf_dishonest": (rng.random(N) < 0.03).astype(float),
        "source_tax": [sources[i] for i in rng.integers(0, len(sources), N)],
        "source_registry": [sources[i] for i in rng.integers(0, len(sources), N)],
    }, strict=False)
    score = rng.normal(590, 40, N).round(2)
    score[rng.random(N) < 0.05] = np.nan
    return frame, score


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_batch_decides_every_customer_as_the_rule_engine_does(seed: int) -> None:
    frame, score = _frame(seed)
    facts = live_policy_facts(frame, score, PARAMS)
    batch = ColumnarPolicy(default_policy()).evaluate(facts, n=N)
    one_by_one = RowByRowPolicy(default_policy()).evaluate(facts, N)
    assert list(batch.outcome) == list(one_by_one.outcome)
    approved = batch.outcome == "approve"
    assert approved.any() and (~approved).any()
    assert np.array_equal(batch.limit[approved], one_by_one.limit[approved])
    assert np.array_equal(batch.annual_rate[approved], one_by_one.annual_rate[approved])


@pytest.mark.parametrize("seed", [4, 5])
def test_no_offer_breaks_the_arrears_blacklist_exposure_or_capacity_rules(seed: int) -> None:
    frame, score = _frame(seed)
    result = ColumnarPolicy(default_policy()).evaluate(live_policy_facts(frame, score, PARAMS), n=N)
    rows = frame.to_dicts()
    offers = 0
    for i, row in enumerate(rows):
        if result.outcome[i] != "approve" or result.limit[i] <= 0:
            continue
        offers += 1
        assert row["own_days_past_due"] == 0 and not row["blacklisted"] and not row["overdue_elsewhere"]
        assert result.limit[i] + row["exposure_total"] <= row["exposure_cap"] + 1e-6
        if row["customer_kind"] == "business":
            turnover = row["verified_turnover"] or row["annual_turnover"] or row["annual_income"] or 0
            assert result.limit[i] + row["exposure_total"] <= turnover * 0.5 + 1e-6
    assert offers > 0


def test_add_months_keeps_the_day_or_takes_the_months_last() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2027, 12, 31), 2) == date(2028, 2, 29)
    assert add_months(date(2026, 3, 1), 12) == date(2027, 3, 1)


def test_age_at_maturity_from_the_birth_date_or_the_owners_age() -> None:
    frame = pl.DataFrame({"birth_or_owner_birth": [date(1980, 6, 15), date(1980, 3, 1), date(1980, 3, 2), None],
                          "owner_age_at_maturity_base": [None, None, None, 50.0]},
                         schema={"birth_or_owner_birth": pl.Date, "owner_age_at_maturity_base": pl.Float64})
    ages = frame.select(age_at_maturity(frame, date(2026, 3, 1), 12)).to_series().to_list()
    assert ages == [46.0, 47.0, 46.0, 51.0]
