"""The money of a simulation against a hand computation on five applications, exact to the cent."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microlend.core.errors import ValidationError
from microlend.decisioning.columnar import BatchResult
from microlend.decisioning.money import MoneyAssumptions, ProductPricing, money_by_segment, money_report

D = Decimal
CENT = D("0.01")

FRAME = pd.DataFrame({
    "customer.customer_id": ["a", "b", "c", "d", "e"],
    "application.amount": ["10000", "20000", "5000", "8000", "30000"],
    "application.term_months": [12, 24, 6, 12, 36],
    "application.product_code": ["MICRO_BIZ", "MICRO_PERSONAL", "MICRO_BIZ", "MICRO_PERSONAL", "MICRO_BIZ"],
    "application.channel": ["app", "branch", "app", "app", "branch"],
    "model.pd": [0.02, 0.05, None, 0.10, 0.03],
    "model.score": [None, None, None, None, None],
})
ASSUMPTIONS = MoneyAssumptions(
    lgd=D("0.40"), funding_rate=D("0.03"), operating_cost_per_loan=D("5.50"),
    products={"MICRO_BIZ": ProductPricing(D("0.10"), D("0.01")), "MICRO_PERSONAL": ProductPricing(D("0.12"))},
)


def result(outcomes: list[str], limits: list[float], rates: list[float], grades: list[str | None],
           reasons: list[tuple[str, ...]]) -> BatchResult:
    r = np.empty(len(reasons), dtype=object)
    r[:] = reasons
    return BatchResult(np.array(outcomes, dtype=object), np.array(limits), np.array(rates), r,
                       np.array(grades, dtype=object))


POLICY = result(
    ["approve", "approve", "approve", "decline", "approve"],
    [10000.0, 15000.005, 5000.0, 0.0, 30000.0],
    [0.085, np.nan, np.nan, np.nan, 0.1150],
    ["B", "C", "A", None, "C"],
    [(), (), (), ("AGE_ABOVE_MAX",), ()],
)
BASELINE = result(
    ["approve", "refer", "approve", "approve", "decline"],
    [10000.0, 0.0, 5000.0, 8000.0, 0.0],
    [0.085, np.nan, np.nan, 0.15, np.nan],
    ["B", "C", "A", "D", None],
    [(), ("THIN_FILE",), (), (), ("SCORE_BELOW_CUTOFF", "AGE_ABOVE_MAX")],
)


def by_hand(rows: list[tuple[D, D, D | None, int, D]], a: MoneyAssumptions) -> dict[str, D]:
    """(EAD, PD, rate, term, fee rate) of each approved loan -> the figures, each rounded once."""
    r = {k: D(0) for k in ("ead", "el", "interest", "fees", "funding")}
    for ead, pd_, rate, term, fee in rows:
        r["ead"] += ead
        r["el"] += pd_ * a.lgd * ead
        if rate is not None:
            r["interest"] += ead * rate * (term + 1) / 24 * (1 - pd_)
        r["fees"] += ead * fee
        r["funding"] += ead * a.funding_rate * (term + 1) / 24
    out = {k: v.quantize(CENT, rounding=ROUND_HALF_UP) for k, v in r.items()}
    out["opex"] = (a.operating_cost_per_loan * len(rows)).quantize(CENT)
    out["profit"] = out["interest"] + out["fees"] - out["el"] - out["funding"] - out["opex"]
    return out


def test_overall_money_equals_the_hand_computation() -> None:
    mean_pd = (D("0.02") + D("0.05") + D("0.03")) / 3  # c has no PD: it takes the approved mean
    mean_pd = mean_pd.quantize(D("0.000001"), rounding=ROUND_HALF_UP)
    expected = by_hand([
        (D("10000.00"), D("0.02"), D("0.085"), 12, D("0.01")),
        (D("15000.01"), D("0.05"), D("0.12"), 24, D(0)),  # 15000.005 rounds half-up; the product's rate
        (D("5000.00"), mean_pd, D("0.10"), 6, D("0.01")),
        (D("30000.00"), D("0.03"), D("0.115"), 36, D("0.01")),
    ], ASSUMPTIONS)
    money = money_by_segment(FRAME, POLICY, ASSUMPTIONS)["overall"]["all"]
    assert (money.applications, money.approved, money.pd_imputed, money.unpriced) == (5, 4, 1, 0)
    assert money.ead == expected["ead"] == D("60000.01")
    assert money.expected_loss == expected["el"]
    assert money.interest_income == expected["interest"]
    assert money.fee_income == expected["fees"] == D("450.00")
    assert money.funding_cost == expected["funding"]
    assert money.operating_cost == expected["opex"] == D("22.00")
    assert money.profit == expected["profit"]


def test_segments_and_baseline_deltas_equal_the_hand_computation() -> None:
    report = money_report(FRAME, POLICY, BASELINE, ASSUMPTIONS)
    channel = {row["value"]: row for row in report["segments"]["channel"]}
    assert set(channel) == {"app", "branch"}
    branch = by_hand([(D("15000.01"), D("0.05"), D("0.12"), 24, D(0)),
                      (D("30000.00"), D("0.03"), D("0.115"), 36, D("0.01"))], ASSUMPTIONS)
    assert channel["branch"]["policy"]["profit"] == str(branch["profit"])
    assert channel["branch"]["baseline"]["approved"] == 0
    assert channel["branch"]["delta"]["profit"] == str(branch["profit"])
    personal = {row["value"]: row for row in report["segments"]["product"]}["MICRO_PERSONAL"]
    d_loan = by_hand([(D("8000.00"), D("0.10"), D("0.15"), 12, D(0))], ASSUMPTIONS)  # baseline approved d
    b_loan = by_hand([(D("15000.01"), D("0.05"), D("0.12"), 24, D(0))], ASSUMPTIONS)
    assert personal["baseline"]["expected_loss"] == str(d_loan["el"])
    assert personal["delta"]["expected_loss"] == str(b_loan["el"] - d_loan["el"])
    assert personal["delta"]["approved"] == 0
    grades = {row["value"] for row in report["segments"]["grade"]}
    assert grades == {"A", "B", "C", "D", "–"}


def test_swaps_are_counted_by_the_reason_code_that_changed() -> None:
    report = money_report(FRAME, POLICY, BASELINE, ASSUMPTIONS)
    assert report["swap_reasons"] == {
        "swap_in": [{"code": "AGE_ABOVE_MAX", "applications": 1}, {"code": "SCORE_BELOW_CUTOFF", "applications": 1},
                    {"code": "THIN_FILE", "applications": 1}],
        "swap_out": [{"code": "AGE_ABOVE_MAX", "applications": 1}],
    }


def test_a_swap_with_the_same_codes_counts_under_no_code() -> None:
    base = result(["approve"] * 5, [1.0] * 5, [0.1] * 5, ["A"] * 5, [("X",)] * 5)
    ours = result(["refer"] + ["approve"] * 4, [1.0] * 5, [0.1] * 5, ["A"] * 5, [("X",)] * 5)
    assert money_report(FRAME, ours, base)["swap_reasons"]["swap_out"] == [{"code": "", "applications": 1}]


def test_assumptions_out_of_range_are_refused() -> None:
    with pytest.raises(ValidationError, match="lgd"):
        MoneyAssumptions(lgd=D("1.5"))
    with pytest.raises(ValidationError, match="operating_cost_per_loan"):
        MoneyAssumptions(operating_cost_per_loan=D("-1"))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50_000_000), st.integers(0, 1_000_000), st.integers(1, 60),
                          st.integers(0, 240_000), st.booleans()), min_size=1, max_size=30))
def test_any_portfolio_matches_the_hand_computation(loans: list[tuple[int, int, int, int, bool]]) -> None:
    """Limits in cents, PDs and rates in millionths: the vectorised sums are the Decimal sums."""
    n = len(loans)
    frame = pd.DataFrame({
        "customer.customer_id": [str(i) for i in range(n)],
        "application.amount": ["1"] * n,
        "application.term_months": [t for _, _, t, _, _ in loans],
        "application.product_code": ["P"] * n,
        "model.pd": [p / 1_000_000 for _, p, _, _, _ in loans],
    })
    policy = result(["approve" if ok else "decline" for *_, ok in loans], [c / 100 for c, *_ in loans],
                    [r / 1_000_000 for _, _, _, r, _ in loans], ["A"] * n, [()] * n)
    a = MoneyAssumptions(lgd=D("0.45"), funding_rate=D("0.021"), operating_cost_per_loan=D("2.3"),
                         products={"P": ProductPricing(D("0.1"), D("0.005"))})
    expected = by_hand([(D(c) / 100, D(p) / 1_000_000, D(r) / 1_000_000, t, D("0.005"))
                        for c, p, t, r, ok in loans if ok], a)
    money = money_by_segment(frame, policy, a)["overall"]["all"]
    assert (money.ead, money.expected_loss, money.interest_income, money.fee_income, money.funding_cost,
            money.operating_cost, money.profit) == (expected["ead"], expected["el"], expected["interest"],
                                                    expected["fees"], expected["funding"], expected["opex"],
                                                    expected["profit"])
