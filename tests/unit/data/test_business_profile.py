"""The officer's business profile from the providers' payloads: exact sums, point in time, statuses, warnings."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from microlend.data.profile import KINDS, MonthValue, SourceSnapshot, bar_chart_svg, business_profile

AS_OF = date(2026, 11, 30)
AT = datetime(2026, 11, 30, 9, tzinfo=UTC)


def _tax(sales_last: str, sales_prev: str) -> dict[str, object]:
    prev = [{"period": f"2024-{m:02d}", "sales": sales_prev, "vat_paid": "1.00"} for m in range(11, 13)]
    prev += [{"period": f"2025-{m:02d}", "sales": sales_prev, "vat_paid": "1.00"} for m in range(1, 11)]
    last = [{"period": f"2025-{m:02d}", "sales": sales_last, "vat_paid": "1.00"} for m in range(11, 13)]
    last += [{"period": f"2026-{m:02d}", "sales": sales_last, "vat_paid": "1.00"} for m in range(1, 11)]
    # a declaration for the as-of month is not yet a full month: it is left out
    return {"found": True, "credit_grade": "A", "declarations": [*prev, *last, {"period": "2026-11", "sales": "9"}]}


def test_declared_sales_are_summed_exactly_over_the_twelve_months_before_the_as_of_month() -> None:
    p = business_profile({"tax": SourceSnapshot("tax", "ok", AT, _tax("10000.01", "8000.00"))}, AS_OF)
    assert p.tax is not None
    assert p.tax.sales_12m == Decimal("120000.12")
    assert p.tax.sales_prev_12m == Decimal("96000.00")
    assert p.tax.months_declared_24m == 24
    assert p.tax.growth == Decimal("0.250")
    assert p.tax.months[0].period == "2024-11" and p.tax.months[-1].period == "2026-10"
    assert not p.warnings


def test_falling_sales_shell_invoices_enforcement_and_a_closed_business_are_flagged() -> None:
    top = [{"counterparty": "x", "amount": "600000"}]
    invoices = {"found": True, "counterparties_12m": 3, "top_customers_12m": top,
                "months": [{"period": f"2026-{m:02d}", "issued_amount": "100000", "received_amount": "0",
                            "red_amount": "5000", "issued_count": 3} for m in range(1, 11)]}
    snaps = {"tax": SourceSnapshot("tax", "ok", AT, _tax("1000", "8000")),
             "einvoice": SourceSnapshot("einvoice", "ok", AT, invoices),
             "enforcement": SourceSnapshot("enforcement", "ok", AT, {"found": True, "cases": [
                 {"case_no": "(2025)浙0102执1号", "filed_on": "2025-02-01", "amount": "5000.00", "status": "closed",
                  "dishonest": False},
                 {"case_no": "(2026)浙0102执9号", "filed_on": "2026-05-01", "amount": "50000.00", "status": "open",
                  "dishonest": True}]}),
             "registry": SourceSnapshot("registry", "ok", AT, {"found": True, "status": "吊销",
                                                               "registered_on": "2020-12-15", "changes": [
                                                                   {"date": "2026-01-01", "item": "address"},
                                                                   {"date": "2024-01-01", "item": "capital"}]})}
    p = business_profile(snaps, AS_OF)
    assert p.invoices is not None and p.invoices.issued_12m == Decimal("1000000")
    assert p.invoices.red_ratio == Decimal("0.050") and p.invoices.top_share == Decimal("0.600")
    assert p.enforcement is not None and p.enforcement[0].status == "open" and p.enforcement[0].dishonest
    assert p.registry is not None and p.registry["age_months"] == 71
    assert [c["item"] for c in p.registry["changes_12m"]] == ["address"]
    assert set(p.warnings) == {"Declared sales fell by more than 30% year on year",
                               "Invoices issued far exceed declared sales", "Open court enforcement case",
                               "The business is not active in the registry"}


def test_flows_count_only_the_ninety_days_before_the_as_of_date() -> None:
    days = [{"date": "2026-11-30", "count": 5, "amount": "999.00"},  # the as-of day itself: not yet complete
            {"date": "2026-11-29", "count": 2, "amount": "100.50"},
            {"date": "2026-09-01", "count": 1, "amount": "10.00"},
            {"date": "2026-08-31", "count": 0, "amount": "0.00"},
            {"date": "2026-08-01", "count": 4, "amount": "400.00"}]  # 121 days before: outside
    p = business_profile({"merchant": SourceSnapshot("merchant", "ok", AT, {"found": True, "days": days})}, AS_OF)
    assert p.flows is not None
    assert (p.flows.amount_90d, p.flows.count_90d, p.flows.active_days_90d) == (Decimal("110.50"), 3, 2)
    assert [m.period for m in p.flows.months] == ["2026-08", "2026-09", "2026-11"]


def test_sources_that_did_not_answer_show_their_status_and_give_no_section() -> None:
    snaps = {"tax": SourceSnapshot("tax", "unavailable", AT), "bureau": SourceSnapshot("bureau", "ok", AT, {
        "found": False}), "registry": SourceSnapshot("registry", "data_error", AT)}
    p = business_profile(snaps, AS_OF)
    assert p.tax is None and p.bureau is None and p.registry is None
    # the newest call failed, an older answer is still shown beside the failure
    older = {"tax": SourceSnapshot("tax", "unavailable", AT, _tax("100", "100"))}
    shown = business_profile(older, AS_OF)
    assert shown.source("tax").status == "unavailable" and shown.tax is not None
    assert [s.kind for s in p.sources] == list(KINDS)
    assert p.source("tax").status == "unavailable" and p.source("merchant").status == "not_called"
    assert not p.empty
    assert business_profile({}, AS_OF).empty


def test_the_chart_escapes_its_label_and_scales_to_the_peak() -> None:
    svg = bar_chart_svg([MonthValue("2026-09", Decimal("50")), MonthValue("2026-10", Decimal("100"))], 'a "b" <c>')
    assert 'aria-label="a &quot;b&quot; &lt;c&gt;"' in svg
    assert svg.count("<rect") == 2 and ">100<" in svg and "2026-09" in svg
