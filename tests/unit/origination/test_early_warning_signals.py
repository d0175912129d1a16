"""The early-warning signals of a book, set-based, from the scorecard's frames (in-memory fakes of what
servicing, the stored scores and the data gateway give): days past due then and now, the score's fall, months
drawn to the limit, the external facts of a customer."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import polars as pl

from microlend.decisioning import behaviour
from microlend.decisioning import early_warning as rules
from microlend.origination.early_warning import book_signals

ON = date(2026, 11, 30)


def subjects(*rows: tuple[int, str, int, int, int]) -> pl.DataFrame:
    """(id, kind, customer, limit in cents, days past due now), opened two years ago."""
    return pl.DataFrame([(i, k, c, lim, ON - timedelta(days=730), dpd) for i, k, c, lim, dpd in rows],
                        schema=behaviour.SUBJECT_SCHEMA, orient="row")


def instalments(*rows: tuple[str, int, date, date, date | None, int]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema={"kind": pl.Utf8, **behaviour.INSTALMENT_SCHEMA}, orient="row")


def month_end(months_back: int) -> date:
    end = ON
    for _ in range(months_back):
        end = end.replace(day=1) - timedelta(days=1)
    return end


def by_id(book: pl.DataFrame) -> dict[tuple[str, int], dict[str, Any]]:
    return {(r["subject_kind"], r["subject_id"]): r for r in book.iter_rows(named=True)}


def test_a_line_drawn_to_the_full_counts_its_month_ends_in_a_row() -> None:
    opened = ON - timedelta(days=400)
    book = book_signals(
        subjects((1, "line", 10, 1_000_000, 0), (2, "line", 11, 1_000_000, 0), (1, "loan", 12, 1_000_000, 0)),
        instalments(
            ("line", 1, opened, ON + timedelta(days=30), None, 960_000),  # drawn to 96% since long ago
            ("line", 2, month_end(2) - timedelta(days=1), ON + timedelta(days=30), None, 1_000_000),  # 3 ends
            ("loan", 1, opened, ON + timedelta(days=30), None, 1_000_000),  # a loan: no limit to exhaust
        ), ON)
    facts = by_id(book)
    assert facts[("line", 1)]["line.months_at_limit"] == 6
    assert facts[("line", 2)]["line.months_at_limit"] == 3
    assert facts[("loan", 1)]["line.months_at_limit"] is None


def test_the_transition_and_the_fall_compare_with_last_months_scores() -> None:
    before = pl.DataFrame({"subject_kind": ["line", "loan"], "subject_id": [1, 1], "score_before": [700, 600],
                           "dpd_before": [0, 12]}, schema={"subject_kind": pl.Utf8, "subject_id": pl.Int64,
                                                           "score_before": pl.Int32, "dpd_before": pl.Int32})
    book = book_signals(subjects((1, "line", 10, 1_000_000, 35), (1, "loan", 10, 500_000, 0),
                                 (2, "loan", 11, 500_000, 0)), instalments(), ON, before=before)
    facts = by_id(book)
    line = facts[("line", 1)]
    assert (line["dpd.now"], line["dpd.before"]) == (35, 0)
    assert line["score.drop"] == 700 - line["score.value"] and line["score.value"] == line["score"]
    assert facts[("loan", 2)]["dpd.before"] is None and facts[("loan", 2)]["score.drop"] is None
    severities = rules.assess_book(rules.default_early_warning(), book.select(list(rules.BOOK_SCHEMA)))
    assert by_id(severities)[("line", 1)]["dpd_transition"] == "high"
    assert by_id(severities)[("loan", 1)]["dpd_transition"] == "none"  # was 12 days late, now current


def test_external_facts_join_by_customer_and_are_null_where_the_bank_holds_none() -> None:
    external = pl.DataFrame({"customer_id": [10], "tax.sales_growth": [-0.6], "merchant.flow_trend": [None],
                             "enforcement.cases_open": [1], "enforcement.dishonest": [False],
                             "bureau.overdue_now": [None]},
                            schema={"customer_id": pl.Int64, "tax.sales_growth": pl.Float64,
                                    "merchant.flow_trend": pl.Float64, "enforcement.cases_open": pl.Int32,
                                    "enforcement.dishonest": pl.Boolean, "bureau.overdue_now": pl.Int32})
    book = book_signals(subjects((1, "loan", 10, 500_000, 0), (2, "loan", 11, 500_000, 0)), instalments(), ON,
                        external=external)
    facts = by_id(book)
    assert facts[("loan", 1)]["tax.sales_growth"] == -0.6 and facts[("loan", 1)]["enforcement.cases_open"] == 1
    assert all(facts[("loan", 2)][f] is None for f in ("tax.sales_growth", "enforcement.cases_open",
                                                       "bureau.overdue_now"))
    found = rules.raised(rules.assess_book(rules.default_early_warning(), book.select(list(rules.BOOK_SCHEMA))))
    assert {(r[1], r[3], r[4]) for r in found.iter_rows() if r[3] != "behaviour_score"} == {
        (1, "tax_sales_drop", "high"), (1, "enforcement_case", "medium")}
