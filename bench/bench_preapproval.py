"""Benchmark: pre-approval of N generated customers with the full live credit rules, in a scratch database.

Run: .venv/bin/python bench/bench_preapproval.py [--customers 200000 1000000] [--database-url URL]

Generates, in memory and never in a real bank, N small businesses with everything the live rules read (the
obligor group's exposure from active loans, arrears at the bank, blacklist, the credit report's overdue flag,
turnover and the bank's turnover multiple, the per-borrower cap, consent, age at maturity, the business
features the expert scorecard and the policy read, the data sources' statuses). Then times, per N, what a run
over the bank's customers does after reading them: the champion (the expert micro-business scorecard) scores
every customer in one batch, the default published policy decides them on the columnar evaluator, and the
offers are written to a scratch SQLite file (or the database at --database-url) in chunks, resumably. Prints
customers/s for that (target >= 50,000) with the process's CPU time and the load average (the machine may be
shared), and checks every offer against the rules it must keep: no offer to an overdue or blacklisted
customer, and limit + exposure <= min(cap, turnover x multiple).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
from sqlalchemy import select

import microlend.core.tables
import microlend.marketing.tables  # noqa: F401
from microlend.core.db import Base, make_engine, make_session_factory
from microlend.core.identity import system_principal
from microlend.core.tables import TenantRow
from microlend.core.uow import UnitOfWork
from microlend.decisioning.policy import default_policy, policy_hash
from microlend.marketing.bank_preapproval import (
    PrecomputedScore,
    live_policy_facts,
    score_profiles,
)
from microlend.marketing.preapproval import OfferParameters, run_over_table
from microlend.marketing.tables import OfferRow
from microlend.risk.artefacts import load_model
from microlend.risk.starter import EXPERT_STARTER_DIR

AS_OF = date(2026, 3, 1)
NOON = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)


def business_features(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """A small-business base as a bank's customers look: mostly sound shops, some declining, some with
    enforcement cases or arrears in their credit report; about 3 % of each value unknown."""
    weak = rng.random(n) < 0.2
    frame = pd.DataFrame({
        "tax_sales_12m": np.round(rng.lognormal(13.3, 0.8, n), -2),
        "tax_sales_growth_yoy": np.where(weak, rng.normal(-0.2, 0.2, n), rng.normal(0.1, 0.15, n)),
        "tax_months_declared_24m": np.where(rng.random(n) < 0.9, 24.0, rng.integers(6, 24, n).astype(float)),
        "tax_grade": rng.choice(np.array(["A", "B", "M", "C", "D"], dtype=object), n, p=[0.4, 0.35, 0.15, 0.07, 0.03]),
        "inv_red_ratio_12m": rng.beta(1, 60, n),
        "inv_sales_gap": rng.normal(0.0, 0.08, n),
        "inv_top_customer_share": rng.beta(2, 5, n),
        "mer_active_days_3m": rng.integers(20, 91, n).astype(float),
        "business_age_months": rng.integers(12, 240, n).astype(float),
        "reg_legal_rep_changes_12m": (rng.random(n) < 0.05).astype(float),
        "enf_cases_open": (rng.random(n) < 0.03).astype(float),
        "enf_dishonest": (rng.random(n) < 0.01).astype(float),
        "bur_overdue_months_24m": np.where(weak, rng.poisson(1.5, n), rng.poisson(0.1, n)).astype(float),
        "bur_max_overdue_level_24m": np.where(weak, rng.integers(0, 4, n), 0).astype(float),
        "bur_lenders_open": rng.integers(0, 4, n).astype(float),
        "bur_inquiries_3m": rng.poisson(0.8, n).astype(float),
        "bur_history_months": rng.integers(6, 200, n).astype(float),
        "own_bounced_6m": (rng.random(n) < 0.05).astype(float),
        "years_in_business": rng.uniform(1, 20, n),
        "bur_overdue_now": (weak & (rng.random(n) < 0.15)).astype(float),
        "bur_bad_debt": (rng.random(n) < 0.005).astype(float),
    })
    for column in frame.columns:
        frame.loc[rng.random(n) < 0.03, column] = None
    return frame


def customers(n: int, seed: int = 7) -> tuple[pl.DataFrame, pd.DataFrame]:
    """(the facts table as the customer view gives it, the profiles the champion scores)."""
    rng = np.random.default_rng(seed)
    features = business_features(n, rng)
    turnover = np.round(rng.lognormal(12.9, 0.7, n), -3)
    has_loan = rng.random(n) < 0.45
    exposure = np.where(has_loan, np.round(rng.uniform(5_000, 150_000, n), -2), 0.0)
    dpd = np.where(has_loan & (rng.random(n) < 0.04), rng.integers(1, 90, n), 0).astype(float)
    unknown = pl.repeat(None, n, dtype=pl.Float64, eager=True)  # a number the view has no value for, as it gives it
    frame = pl.DataFrame({
        "customer_id": np.arange(1, n + 1, dtype=np.int64),
        "customer_kind": np.full(n, "business", dtype=object),
        "age": rng.integers(25, 62, n).astype(float),
        "annual_turnover": turnover,
        "annual_income": unknown,
        "years_in_business": features["years_in_business"].to_numpy(),
        "blacklisted": rng.random(n) < 0.01,
        "overdue_elsewhere": rng.random(n) < 0.03,
        "bureau_data_present": rng.random(n) < 0.9,
        "credit_history_months": features["bur_history_months"].to_numpy(),
        "bureau_lenders_open": features["bur_lenders_open"].to_numpy(),
        "bureau_inquiries_3m": features["bur_inquiries_3m"].to_numpy(),
        "own_days_past_due": dpd,
        "own_npl_loans": (dpd > 90).astype(float),
        "own_written_off": np.zeros(n),
        "applications_30d": rng.poisson(0.1, n).astype(float),
        "pending_offers": np.zeros(n),
        "exposure_total": exposure,
        "exposure_cap": np.full(n, 1_000_000.0),
        "verified_turnover": unknown,
        "turnover_multiple": np.full(n, 0.5),
        "debt_to_income_ceiling": np.full(n, 2.0),
        "age_at_maturity": rng.integers(26, 63, n).astype(float),
        "id_document_expired": np.zeros(n, dtype=bool),
        "credit_report_consent": rng.random(n) < 0.95,
        "tax_loan_fraction": np.full(n, 0.3),
        "verified_sales_12m": unknown,
    }, strict=False)
    scored = ["tax_sales_12m", "tax_sales_growth_yoy", "enf_cases_open", "enf_dishonest", "bur_overdue_now",
              "bur_bad_debt"]
    extra = {name: features[name].to_numpy(dtype=float) for name in scored}
    frame = frame.with_columns([pl.Series(k, v, dtype=pl.Float64) for k, v in extra.items()])
    profiles = features.assign(subject_kind="business")
    return frame, profiles


def check(frame: pl.DataFrame, offers: dict[int, Decimal]) -> int:
    """Offers that break a rule (must be 0)."""
    rows = frame.select("customer_id", "own_days_past_due", "blacklisted", "exposure_total", "exposure_cap",
                        "annual_turnover", "turnover_multiple").to_dicts()
    bad = 0
    for r in rows:
        limit = offers.get(int(r["customer_id"]))
        if limit is None:
            continue
        cap = min(Decimal(str(r["exposure_cap"])), Decimal(str(r["annual_turnover"])) * Decimal("0.5"))
        if r["own_days_past_due"] > 0 or r["blacklisted"] or limit + Decimal(str(r["exposure_total"])) > cap:
            bad += 1
    return bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file in a temporary folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-preapproval-"))
    url = args.database_url or f"sqlite:///{work / 'scratch.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    model = load_model(EXPERT_STARTER_DIR).model
    policy = default_policy()
    params = OfferParameters(product_code="EI-STD", requested_amount=Decimal("200000"), term_months=12)
    print(f"scratch database: {engine.url.render_as_string(hide_password=True)}")
    for n in args.customers:
        with factory() as s:
            row = TenantRow(name=f"scratch-{n}-{int(time.time())}", display_name="Scratch bank", business_date=AS_OF,
                            created_at=NOON)
            s.add(row)
            s.commit()
            who = system_principal(row.id, username="bench")
        t0 = time.perf_counter()
        frame, profiles = customers(n)
        generated = time.perf_counter() - t0
        t0, cpu0 = time.perf_counter(), time.process_time()
        scores = score_profiles(model, profiles)
        table = frame.with_columns(pl.Series("model_score", scores, dtype=pl.Float64)).to_arrow()
        scored = time.perf_counter() - t0
        t1 = time.perf_counter()
        summary = run_over_table(UnitOfWork(factory), who, table, as_of=AS_OF, started_at=NOON, segment_name=None,
                                 segment_version=None, scorer=PrecomputedScore("starter-expert-micro-business v1"),
                                 policy=policy, policy_version=f"default_micro_loan@{policy_hash(policy)[:12]}",
                                 params=params, facts=live_policy_facts, chunk_rows=args.chunk_rows, progress=None)
        decided = time.perf_counter() - t1
        took, cpu = scored + decided, time.process_time() - cpu0
        with factory() as s:
            offers = {int(c): lim for c, lim in s.execute(select(OfferRow.customer_id, OfferRow.limit).where(
                OfferRow.run_id == summary.run_id))}
        print(f"{n:,} customers (generated in {generated:.1f} s, not timed): scored {scored:.2f} s + decided and "
              f"written {decided:.2f} s = {took:.2f} s -> {n / took:,.0f} customers/s (target >= 50,000); "
              f"{summary.offers:,} offers, {check(frame, offers)} breaking a rule; CPU {cpu:.2f} s "
              f"({n / cpu:,.0f} customers per CPU second), load average {os.getloadavg()[0]:.1f}; "
              f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
