"""The early-warning rules (预警规则): the shipped policy's golden tests, its lint, and the columnar evaluation
over a whole book against the rule engine row by row."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from microlend.decisioning import early_warning as rules
from microlend.decisioning.golden import run_golden_tests
from microlend.decisioning.lint import lint_policy
from microlend.decisioning.policy import compile_policy

DOC = rules.default_early_warning()
COMPILED = compile_policy(DOC)


def row(**facts: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"subject_kind": "line", "subject_id": 1, "customer_id": 1}
    return {**base, **{f: None for f in rules.FACTS}, "dpd.now": 0, **facts}


def engine_input(r: dict[str, Any]) -> rules.EarlyWarningInput:
    def dec(v: Any) -> str | None:
        return None if v is None else repr(v)

    return rules.EarlyWarningInput.from_canonical({
        "subject": {"kind": r["subject_kind"]}, "dpd": {"now": r["dpd.now"], "before": r["dpd.before"]},
        "score": {"value": r["score.value"], "drop": r["score.drop"]},
        "tax": {"sales_growth": dec(r["tax.sales_growth"])}, "merchant": {"flow_trend": dec(r["merchant.flow_trend"])},
        "enforcement": {"cases_open": r["enforcement.cases_open"], "dishonest": r["enforcement.dishonest"]},
        "bureau": {"overdue_now": r["bureau.overdue_now"]}, "line": {"months_at_limit": r["line.months_at_limit"]}})


class TestTheShippedRules:
    def test_every_golden_test_passes_and_the_policy_lints_clean(self) -> None:
        results = run_golden_tests(DOC)
        assert results and all(r.passed for r in results), [r for r in results if not r.passed]
        report = lint_policy(DOC)
        assert report.ok, [f.text() for f in report.errors]
        assert "unknown_field" not in report.kinds()

    def test_a_fact_the_bank_does_not_hold_raises_nothing(self) -> None:
        assessed = rules.assess_book(DOC, rules.book_frame([row()]))
        assert {s: assessed[s][0] for s in rules.SIGNALS} == {s: "none" for s in rules.SIGNALS}
        assert rules.raised(assessed).height == 0

    def test_thresholds_give_each_signal_its_severity(self) -> None:
        book = rules.book_frame([
            row(subject_id=1, **{"dpd.now": 31, "dpd.before": 30}),
            row(subject_id=2, **{"dpd.now": 31, "dpd.before": 31}),
            row(subject_id=3, **{"score.value": 600, "score.drop": 10}),
            row(subject_id=4, **{"tax.sales_growth": -0.5, "merchant.flow_trend": -0.29}),
            row(subject_id=5, **{"enforcement.cases_open": 2, "enforcement.dishonest": False,
                                 "bureau.overdue_now": 2, "line.months_at_limit": 6}),
        ])
        found = {(r[1], r[3]): r[4] for r in rules.raised(rules.assess_book(DOC, book)).iter_rows()}
        assert found == {(1, "dpd_transition"): "high", (3, "behaviour_score"): "low",
                         (4, "tax_sales_drop"): "high", (5, "enforcement_case"): "medium",
                         (5, "bureau_overdue"): "high", (5, "limit_exhausted"): "high"}

    def test_a_severity_the_policy_does_not_know_is_refused(self) -> None:
        import copy

        import pytest

        from microlend.core.errors import ValidationError

        doc = copy.deepcopy(DOC)
        doc["nodes"][1]["content"]["rules"][0]["dpd_sev"] = '"urgent"'
        with pytest.raises(ValidationError, match="urgent"):
            rules.assess_book(doc, rules.book_frame([row(**{"dpd.now": 40, "dpd.before": 0})]))


_int = st.one_of(st.none(), st.integers(min_value=0, max_value=200))
_ratio = st.one_of(st.none(), st.integers(min_value=-100, max_value=100).map(lambda x: x / 100))


@st.composite
def books(draw: Any) -> list[dict[str, Any]]:
    n = draw(st.integers(min_value=1, max_value=12))
    return [row(subject_id=i, subject_kind=draw(st.sampled_from(["line", "loan"])),
                **{"dpd.now": draw(st.integers(min_value=0, max_value=200)), "dpd.before": draw(_int),
                   "score.value": draw(st.one_of(st.none(), st.integers(min_value=300, max_value=800))),
                   "score.drop": draw(st.one_of(st.none(), st.integers(min_value=-200, max_value=200))),
                   "tax.sales_growth": draw(_ratio), "merchant.flow_trend": draw(_ratio),
                   "enforcement.cases_open": draw(st.one_of(st.none(), st.integers(min_value=0, max_value=3))),
                   "enforcement.dishonest": draw(st.one_of(st.none(), st.booleans())),
                   "bureau.overdue_now": draw(st.one_of(st.none(), st.integers(min_value=0, max_value=3))),
                   "line.months_at_limit": draw(st.one_of(st.none(), st.integers(min_value=0, max_value=6)))})
            for i in range(n)]


@settings(max_examples=40, deadline=None)
@given(books())
def test_the_whole_book_at_once_equals_the_rule_engine_row_by_row(rows: list[dict[str, Any]]) -> None:
    assessed = rules.assess_book(DOC, rules.book_frame(rows))
    for r, got in zip(rows, assessed.iter_rows(named=True), strict=True):
        assert rules.assess_one(COMPILED, engine_input(r)) == {s: got[s] for s in rules.SIGNALS}


def test_the_simulation_counts_alerts_of_both_versions_on_the_book() -> None:
    import copy

    stricter = copy.deepcopy(DOC)
    stricter["nodes"][2]["content"]["rules"][0]["beh_0"] = "< 640"
    book = rules.book_frame([row(subject_id=1, **{"score.value": 610}), row(subject_id=2, **{"score.value": 500})])
    evidence = rules.simulation(stricter, DOC, book)
    assert evidence["source"] == "current_book" and evidence["rows"] == 2
    assert evidence["candidate"]["alerts"]["behaviour_score"] == {"high": 2, "medium": 0, "low": 0}
    assert evidence["champion"]["alerts"]["behaviour_score"] == {"high": 1, "medium": 0, "low": 1}
    assert evidence["changed"]["behaviour_score"] == 1
    assert rules.simulation(stricter, DOC, None)["source"] == "none"
