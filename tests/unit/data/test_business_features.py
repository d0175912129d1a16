"""Business features: hand-computed examples per source, point in time, nulls for missing sources, and the
batch computation equal to the online one subject by subject."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microlend.core.errors import ValidationError
from microlend.data.business import (
    BUSINESS_FEATURES,
    FEATURE_NAMES,
    MONEY_FEATURES,
    business_features,
    exact_money_from_payloads,
    features_from_payloads,
)

AS_OF = date(2026, 12, 1)
SUBJECT = "91330102MA2B3C4D5E"


def period(months_before: int, as_of: date = AS_OF) -> str:
    """The 'YYYY-MM' period that many months before the as-of month."""
    m = as_of.year * 12 + as_of.month - 1 - months_before
    return f"{m // 12:04d}-{m % 12 + 1:02d}"


def tax(sales_by_ago: dict[int, str], grade: str = "A") -> dict[str, Any]:
    return {
        "subject": SUBJECT,
        "found": True,
        "schema": "tax/1",
        "credit_grade": grade,
        "declarations": [{"period": period(k), "sales": v, "vat_paid": "0.00"} for k, v in sales_by_ago.items()],
    }


def einvoice(issued_by_ago: dict[int, str], red: str = "0.00", top: str = "0.00", parties: int = 3) -> dict[str, Any]:
    months = [
        {
            "period": period(k),
            "issued_count": 1,
            "issued_amount": v,
            "received_count": 0,
            "received_amount": "0.00",
            "red_count": 0,
            "red_amount": red if k == 1 else "0.00",
            "cancelled_count": 0,
        }
        for k, v in issued_by_ago.items()
    ]
    return {
        "subject": SUBJECT,
        "found": True,
        "months": months,
        "counterparties_12m": parties,
        "top_customers_12m": [{"counterparty": "ab" * 32, "amount": top}],
    }


def features(payloads: dict[str, dict[str, Any]], as_of: date = AS_OF) -> dict[str, Any]:
    return features_from_payloads(payloads, as_of)


# --- tax ----------------------------------------------------------------------------------------------------


def test_tax_sales_growth_and_counts_by_hand() -> None:
    # last 12 months: 10 months of 1,000.00 + one zero month + one undeclared -> 10,000.00
    last = {k: "1000.00" for k in range(1, 11)} | {11: "0.00"}
    # previous 12 months: 8,000.00 in total
    prev = {k: "1000.00" for k in range(13, 21)}
    f = features({"tax": tax(last | prev, grade="B")})
    assert f["tax_sales_12m"] == 10_000.0
    assert f["tax_sales_growth_yoy"] == pytest.approx(10_000 / 8_000 - 1)
    assert f["tax_months_declared_24m"] == 19
    assert f["tax_zero_months_12m"] == 2  # the zero month and the undeclared one
    assert f["tax_grade"] == "B"
    # CV of (1000 x 10, 0, 0): mean 833.33, population std sqrt(10/12*1000^2 - mean^2)
    mean = 10_000 / 12
    std = math.sqrt(10 * 1000**2 / 12 - mean**2)
    assert f["tax_sales_volatility"] == pytest.approx(std / mean)


def test_growth_is_null_when_the_previous_twelve_months_are_zero_or_missing() -> None:
    zero_prev = features({"tax": tax({1: "500.00", 13: "0.00", 14: "0.00"})})
    assert zero_prev["tax_sales_12m"] == 500.0
    assert zero_prev["tax_sales_growth_yoy"] is None
    missing_prev = features({"tax": tax({1: "500.00"})})
    assert missing_prev["tax_sales_growth_yoy"] is None


def test_constant_sales_have_no_volatility_and_no_sales_none() -> None:
    assert features({"tax": tax({k: "700.00" for k in range(1, 13)})})["tax_sales_volatility"] == pytest.approx(0.0)
    nothing = features({"tax": tax({})})
    assert nothing["tax_sales_12m"] == 0.0
    assert nothing["tax_sales_volatility"] is None
    assert nothing["tax_months_declared_24m"] == 0
    assert nothing["tax_zero_months_12m"] == 12


def test_a_declaration_for_the_as_of_month_or_later_is_ignored() -> None:
    f = features({"tax": tax({1: "100.00", 0: "99999.00", -1: "88888.00", 25: "77777.00"})})
    assert f["tax_sales_12m"] == 100.0
    assert f["tax_months_declared_24m"] == 1


def test_tax_sales_12m_is_an_exact_decimal_sum() -> None:
    cents = {k: "0.10" for k in range(1, 13)} | {1: "12345678901.01", 2: "0.20"}
    exact = exact_money_from_payloads({"tax": tax(cents)}, AS_OF)
    assert exact["tax_sales_12m"] == Decimal("12345678901.01") + Decimal("0.20") + Decimal("0.10") * 10
    assert exact["inv_issued_12m"] is None


# --- e-invoice ----------------------------------------------------------------------------------------------


def test_invoice_red_ratio_top_share_and_shell_gap() -> None:
    inv = einvoice({1: "6000.00", 2: "4000.00", 13: "9999.00"}, red="500.00", top="2500.00", parties=7)
    f = features({"tax": tax({1: "2500.00"}), "einvoice": inv})
    assert f["inv_issued_12m"] == 10_000.0
    assert f["inv_counterparties_12m"] == 7
    assert f["inv_top_customer_share"] == pytest.approx(0.25)
    assert f["inv_red_ratio_12m"] == pytest.approx(0.05)
    assert f["inv_sales_gap"] == pytest.approx(1 - 2500 / 10_000)
    shell = features({"tax": tax({}), "einvoice": inv})
    assert shell["inv_sales_gap"] == 1.0
    over = features({"tax": tax({1: "50000.00"}), "einvoice": inv})
    assert over["inv_sales_gap"] == -1.0  # clipped
    no_tax = features({"einvoice": inv})
    assert no_tax["inv_sales_gap"] is None
    nothing_issued = features({"tax": tax({1: "1.00"}), "einvoice": einvoice({})})
    assert nothing_issued["inv_issued_12m"] == 0.0
    assert nothing_issued["inv_top_customer_share"] is None
    assert nothing_issued["inv_red_ratio_12m"] is None
    assert nothing_issued["inv_sales_gap"] is None


# --- merchant -----------------------------------------------------------------------------------------------


def merchant(days: dict[int, tuple[int, str]]) -> dict[str, Any]:
    return {
        "subject": SUBJECT,
        "found": True,
        "merchant_since": "2021-04-01",
        "days": [
            {"date": (AS_OF - timedelta(days=k)).isoformat(), "count": c, "amount": a} for k, (c, a) in days.items()
        ],
    }


def test_merchant_flow_active_days_and_trend() -> None:
    m = merchant(
        {1: (3, "100.00"), 90: (1, "50.00"), 91: (2, "75.00"), 180: (1, "25.00"), 181: (9, "999.00"), 0: (5, "777.00")}
    )
    f = features({"merchant": m})
    assert f["mer_flow_3m"] == 150.0
    assert f["mer_active_days_3m"] == 2
    assert f["mer_flow_trend"] == pytest.approx(150 / 100 - 1)
    assert features({"merchant": merchant({1: (1, "10.00")})})["mer_flow_trend"] is None


# --- registry, enforcement, bureau --------------------------------------------------------------------------


def test_registry_age_status_capital_and_changes() -> None:
    reg = {
        "subject": SUBJECT,
        "found": True,
        "registered_on": "2015-03-15",
        "capital": "500000.00",
        "status": "吊销",
        "changes": [
            {"date": "2026-11-30", "item": "legal_representative"},
            {"date": "2025-12-01", "item": "address"},
            {"date": "2025-11-30", "item": "legal_representative"},  # 12 months and a day ago: out
            {"date": "2026-12-01", "item": "scope"},  # the as-of day: not yet
        ],
    }
    f = features({"registry": reg}, date(2026, 12, 1))
    assert f["business_age_months"] == 140  # 2015-03-15 -> 2026-11-15 is 140 whole months
    assert features({"registry": reg}, date(2026, 12, 15))["business_age_months"] == 141
    assert f["reg_status_active"] == 0
    assert f["reg_capital"] == 500_000.0
    assert f["reg_changes_12m"] == 2
    assert f["reg_legal_rep_changes_12m"] == 1
    assert features({"registry": reg | {"status": "存续", "changes": []}})["reg_status_active"] == 1


def test_enforcement_open_cases_and_a_clean_record() -> None:
    cases = [
        {"case_no": "a", "filed_on": "2024-05-01", "amount": "50000.00", "status": "open", "dishonest": True},
        {"case_no": "b", "filed_on": "2023-05-01", "amount": "7000.00", "status": "closed", "dishonest": True},
        {"case_no": "c", "filed_on": "2025-01-01", "amount": "1000.50", "status": "open", "dishonest": False},
        {"case_no": "d", "filed_on": AS_OF.isoformat(), "amount": "1.00", "status": "open", "dishonest": True},
    ]
    f = features({"enforcement": {"subject": SUBJECT, "found": True, "cases": cases}})
    assert (f["enf_cases_open"], f["enf_dishonest"], f["enf_amount_open"]) == (2, 1, 51_000.5)
    clean = features({"enforcement": {"subject": SUBJECT, "found": True, "cases": []}})
    assert (clean["enf_cases_open"], clean["enf_dishonest"], clean["enf_amount_open"]) == (0, 0, 0.0)
    unknown = features({"enforcement": {"subject": SUBJECT, "found": False}})
    assert unknown["enf_cases_open"] is None


def test_bureau_fields_and_a_report_after_the_as_of_date() -> None:
    report = {
        "subject": SUBJECT,
        "found": True,
        "report_date": "2026-11-30",
        "credit_history_months": 62,
        "open_accounts": 3,
        "lenders_open": 2,
        "total_balance": "123000.00",
        "overdue_accounts_now": 1,
        "overdue_months_24m": 3,
        "max_overdue_level_24m": 2,
        "inquiries_3m": 4,
        "inquiries_12m": 9,
        "guarantees_given": 1,
        "guarantee_amount": "80000.00",
        "bad_debt": True,
    }
    f = features({"bureau": report})
    assert [f[n] for n in FEATURE_NAMES if n.startswith("bur_")] == [62, 2, 1, 3, 2, 4, 80_000.0, 1]
    assert features({"bureau": report}, date(2026, 11, 29))["bur_history_months"] is None


def test_a_missing_source_gives_nulls_never_zeros() -> None:
    f = features({"tax": tax({1: "1.00"})})
    assert all(f[n] is None for n in FEATURE_NAMES if not n.startswith("tax_") and n != "inv_sales_gap")
    assert f["tax_sales_12m"] == 1.0
    assert set(features({})) == set(FEATURE_NAMES)
    assert all(v is None for v in features({}).values())


def test_payloads_about_different_subjects_and_bad_amounts_are_refused() -> None:
    other = tax({}) | {"subject": "91330102MA2B3C4D6F"}
    with pytest.raises(ValidationError, match="different subjects"):
        features({"tax": tax({}), "einvoice": einvoice({}) | {"subject": other["subject"]}})
    with pytest.raises(ValidationError, match=r"tax\.sales"):
        features({"tax": tax({1: "12.345"})})


def test_catalogue_names_every_feature_with_both_languages() -> None:
    names = [f.name for f in BUSINESS_FEATURES]
    assert len(names) == len(set(names)) == 36
    assert all(f.description_en and f.description_zh for f in BUSINESS_FEATURES)
    assert set(MONEY_FEATURES) <= set(FEATURE_NAMES)
    assert [n for n in names if n.startswith("own_")] == [
        "own_avg_balance_3m",
        "own_inflow_3m",
        "own_turnover_credits_3m",
        "own_salary_credits_3m",
        "own_bounced_6m",
        "own_account_months",
    ]


def test_spine_order_is_kept_and_unknown_tables_refused() -> None:
    spine = pl.DataFrame({"subject": ["b", "a", "c"], "as_of": [AS_OF] * 3})
    grades = pl.DataFrame({"subject": ["a", "b"], "grade": ["A", "D"]})
    out = business_features({"tax_grades": grades}, spine)
    assert out["subject"].to_list() == ["b", "a", "c"]
    assert out["tax_grade"].to_list() == ["D", "A", None]
    assert out["tax_sales_12m"].to_list() == [0.0, 0.0, None]
    with pytest.raises(ValidationError, match="unknown business table"):
        business_features({"taxes": grades}, spine)


# --- batch equals online ------------------------------------------------------------------------------------

money = st.integers(min_value=0, max_value=10**9).map(lambda c: f"{c // 100}.{c % 100:02d}")


@st.composite
def subject_payloads(draw: st.DrawFn, subject: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if draw(st.booleans()):
        ks = draw(st.lists(st.integers(-2, 26), unique=True, max_size=26))
        out["tax"] = tax({k: draw(money) for k in ks}, grade=draw(st.sampled_from("ABMCD")))
    if draw(st.booleans()):
        ks = draw(st.lists(st.integers(0, 14), unique=True, max_size=14))
        out["einvoice"] = einvoice({k: draw(money) for k in ks}, red=draw(money), top=draw(money))
    if draw(st.booleans()):
        ks = draw(st.lists(st.integers(0, 185), unique=True, max_size=40))
        out["merchant"] = merchant({k: (draw(st.integers(0, 5)), draw(money)) for k in ks})
    if draw(st.booleans()):
        changes = [
            {
                "date": (AS_OF - timedelta(days=d)).isoformat(),
                "item": draw(st.sampled_from(["legal_representative", "scope"])),
            }
            for d in draw(st.lists(st.integers(-5, 500), max_size=5))
        ]
        out["registry"] = {
            "found": True,
            "registered_on": (AS_OF - timedelta(days=draw(st.integers(0, 8000)))).isoformat(),
            "capital": draw(money),
            "status": draw(st.sampled_from(["存续", "在业", "吊销", "注销"])),
            "changes": changes,
        }
    if draw(st.booleans()):
        cases = [
            {
                "filed_on": (AS_OF - timedelta(days=d)).isoformat(),
                "amount": draw(money),
                "status": draw(st.sampled_from(["open", "closed"])),
                "dishonest": draw(st.booleans()),
            }
            for d in draw(st.lists(st.integers(-5, 900), max_size=4))
        ]
        out["enforcement"] = {"found": draw(st.booleans()), "cases": cases}
    if draw(st.booleans()):
        out["bureau"] = {
            "found": True,
            "report_date": (AS_OF - timedelta(days=draw(st.integers(-3, 30)))).isoformat(),
            "credit_history_months": draw(st.integers(0, 300)),
            "lenders_open": 1,
            "overdue_accounts_now": 0,
            "overdue_months_24m": draw(st.integers(0, 24)),
            "max_overdue_level_24m": 1,
            "inquiries_3m": 2,
            "guarantee_amount": draw(money),
            "bad_debt": False,
        }
    for p in out.values():
        p["subject"] = subject
    return out


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None or isinstance(a, str):
        return bool(a == b)
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_batch_over_many_subjects_equals_online_per_subject(data: st.DataObject) -> None:
    from microlend.data.business import tables_from_payloads

    subjects = [f"S{i:02d}" for i in range(data.draw(st.integers(1, 6)))]
    per_subject = {s: data.draw(subject_payloads(s)) for s in subjects}
    as_ofs = {s: AS_OF - timedelta(days=data.draw(st.integers(0, 40))) for s in subjects}
    tables: dict[str, list[pl.DataFrame]] = {}
    for s, payloads in per_subject.items():
        for name, frame in tables_from_payloads(payloads, s).items():
            tables.setdefault(name, []).append(frame)
    spine = pl.DataFrame({"subject": subjects, "as_of": [as_ofs[s] for s in subjects]})
    batch = business_features({k: pl.concat(v) for k, v in tables.items()}, spine)
    for row in batch.iter_rows(named=True):
        online = features_from_payloads(per_subject[row["subject"]], as_ofs[row["subject"]])
        for name in FEATURE_NAMES:
            assert _same(row[name], online[name]), (row["subject"], name, row[name], online[name])
        assert exact_money_from_payloads(per_subject[row["subject"]], as_ofs[row["subject"]])["tax_sales_12m"] == (
            None if row["tax_sales_12m__cents"] is None else Decimal(row["tax_sales_12m__cents"]) / 100
        )
