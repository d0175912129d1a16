from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microlend.core.errors import ValidationError
from microlend.marketing.segments import (
    EXCLUSION_REASONS,
    FeatureType,
    FrequencyCap,
    Segment,
    count_segment,
    evaluate_row,
    exclusion_flags,
    exclusion_reasons,
    identifiers,
    parse_segment_expression,
    to_polars,
)

NS: dict[str, FeatureType] = {
    "age": "number", "industry": "string", "months_on_book": "number", "vip": "boolean"}
SCHEMA: dict[str, pl.DataType] = {
    "age": pl.Int64(), "industry": pl.String(), "months_on_book": pl.Int64(), "vip": pl.Boolean()}
EXPRESSIONS = [
    'age >= 25 and age <= 55 and industry in ["retail", "farming"] and months_on_book > 6',
    "vip or age > 50",
    "not vip",
    "vip and not (age < 30)",
    'industry not in ["retail"]',
    "age in [25..55)",
    "age not in (25..55]",
    "abs(age - 40) <= 10",
    'lower(industry) == "retail"',
    'startsWith(industry, "re")',
    "age * 2 + months_on_book > 60 or industry == null",
    "vip != false and age != null",
    "-age < -30",
    "months_on_book in [0, 6, null]",
    'contains(upper(industry), "ETA") or ceil(months_on_book) >= floor(age)',
]

customer_rows = st.lists(
    st.fixed_dictionaries({
        "age": st.none() | st.integers(16, 80),
        "industry": st.none() | st.sampled_from(["retail", "farming", "Retail", "repair", ""]),
        "months_on_book": st.none() | st.integers(0, 60),
        "vip": st.none() | st.booleans(),
    }),
    min_size=1, max_size=40,
)


class TestSegmentExpressionAgreesWithTheRuleEngine:
    @pytest.mark.parametrize("text", EXPRESSIONS)
    @settings(max_examples=25, deadline=None)
    @given(rows=customer_rows)
    def test_vectorised_filter_selects_exactly_what_zen_selects(self, text: str, rows: list[dict[str, object]]) -> None:
        node = parse_segment_expression(text, NS)
        frame = pl.DataFrame(rows, schema=SCHEMA)
        vectorised = frame.select(to_polars(node)).to_series().to_list()
        assert vectorised == [evaluate_row(text, r) for r in rows]

    def test_the_brief_example_selects_the_right_customers(self) -> None:
        seg = Segment("core retail", 1, EXPRESSIONS[0], NS)
        frame = pl.DataFrame([
            {"age": 30, "industry": "retail", "months_on_book": 12, "vip": None},
            {"age": 30, "industry": "retail", "months_on_book": 6, "vip": None},
            {"age": 56, "industry": "farming", "months_on_book": 12, "vip": None},
            {"age": None, "industry": "farming", "months_on_book": 12, "vip": None},
        ], schema=SCHEMA).with_row_index("customer_id")
        assert seg.select(frame).get_column("customer_id").to_list() == [0]


class TestUserExpressionsCannotReachOutsideTheFeatures:
    @pytest.mark.parametrize(("text", "name"), [
        ("age > 1 and salary > 2", "salary"),
        ('__import__("os")', "__import__"),
        ('eval("1")', "eval"),
        ("date(\"2024-01-01\") > 1", "date"),
        ("$root > 1", "expression"),
        ("age.__class__ == 1", "expression"),
        ("age > 1; drop table customers", "expression"),
    ])
    def test_unknown_identifier_or_function_is_refused_by_name(self, text: str, name: str) -> None:
        with pytest.raises(ValidationError) as err:
            parse_segment_expression(text, NS)
        assert err.value.field == name

    @pytest.mark.parametrize("text", ['age > "3"', "age", "not age > 1", "1 < age < 5", "vip and age"])
    def test_expressions_that_are_not_well_typed_conditions_are_refused(self, text: str) -> None:
        with pytest.raises(ValidationError):
            parse_segment_expression(text, NS)

    def test_identifiers_lists_the_features_read(self) -> None:
        assert identifiers(parse_segment_expression(EXPRESSIONS[0], NS)) == {"age", "industry", "months_on_book"}

    def test_segment_names_and_versions_are_checked(self) -> None:
        with pytest.raises(ValidationError):
            Segment("", 1, "age > 1", NS)
        with pytest.raises(ValidationError):
            Segment("x", 0, "age > 1", NS)


AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CAP = FrequencyCap(max_messages=2, window_days=7)

exclusion_cases = st.lists(
    st.fixed_dictionaries({
        "consent": st.none() | st.booleans(),
        "opted_out": st.lists(st.sampled_from(["sms", "push", "visit"]), max_size=3, unique=True),
        "dpd": st.none() | st.integers(0, 5),
        "contacts": st.lists(st.integers(0, 10 * 24 * 60), max_size=4),  # minutes before AT
    }),
    min_size=1, max_size=30,
)


def _frames(cases: list[dict[str, object]]) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    customers = pl.DataFrame(
        [{"customer_id": i, "marketing_consent": c["consent"], "current_days_past_due": c["dpd"]}
         for i, c in enumerate(cases)],
        schema={"customer_id": pl.Int64(), "marketing_consent": pl.Boolean(), "current_days_past_due": pl.Int64()},
    )
    opt_outs = pl.DataFrame([{"customer_id": i, "channel": ch} for i, c in enumerate(cases) for ch in c["opted_out"]],  # type: ignore[attr-defined]
                            schema={"customer_id": pl.Int64(), "channel": pl.String()})
    contacts = pl.DataFrame(
        [{"customer_id": i, "contacted_at": AT - timedelta(minutes=m)} for i, c in enumerate(cases)
         for m in c["contacts"]],  # type: ignore[attr-defined]
        schema={"customer_id": pl.Int64(), "contacted_at": pl.Datetime("us", "UTC")},
    )
    return customers, opt_outs, contacts


class TestExclusionsAlwaysApply:
    @settings(max_examples=60, deadline=None)
    @given(cases=exclusion_cases, channel=st.sampled_from(["sms", "push", "visit"]))
    def test_set_based_exclusions_equal_the_per_customer_rule(
        self, cases: list[dict[str, object]], channel: str
    ) -> None:
        customers, opt_outs, contacts = _frames(cases)
        flags = exclusion_flags(customers, channel=channel, at=AT, cap=CAP, opt_outs=opt_outs, contacts=contacts)
        for i, c in enumerate(cases):
            expected = exclusion_reasons(
                consent=c["consent"], opted_out_channels=c["opted_out"], channel=channel,  # type: ignore[arg-type]
                days_past_due=c["dpd"], contacts=[AT - timedelta(minutes=m) for m in c["contacts"]],  # type: ignore[arg-type, attr-defined]
                at=AT, cap=CAP)
            row = flags.row(i, named=True)
            assert [r for r in EXCLUSION_REASONS if row[r]] == expected
            assert row["excluded"] == bool(expected)

    @settings(max_examples=40, deadline=None)
    @given(cases=exclusion_cases)
    def test_no_segment_expression_lets_an_excluded_customer_through(self, cases: list[dict[str, object]]) -> None:
        customers, opt_outs, contacts = _frames(cases)
        ids: dict[str, FeatureType] = {"customer_id": "number"}
        everyone = Segment("everyone", 1, "customer_id >= 0", ids)
        summary, eligible = count_segment(everyone, customers, channel="sms", at=AT, cap=CAP,
                                          opt_outs=opt_outs, contacts=contacts)
        for cid in eligible.get_column("customer_id").to_list():
            c = cases[cid]
            assert c["consent"] is True
            assert "sms" not in c["opted_out"]
            assert not c["dpd"]
            assert sum(1 for m in c["contacts"] if m <= 7 * 24 * 60) < 2
        assert summary.selected == len(cases)
        assert summary.eligible == eligible.height

    def test_each_exclusion_on_its_own(self) -> None:
        cases: list[dict[str, object]] = [
            {"consent": True, "opted_out": [], "dpd": 0, "contacts": []},
            {"consent": False, "opted_out": [], "dpd": 0, "contacts": []},
            {"consent": None, "opted_out": [], "dpd": 0, "contacts": []},
            {"consent": True, "opted_out": ["sms"], "dpd": 0, "contacts": []},
            {"consent": True, "opted_out": ["push"], "dpd": 0, "contacts": []},
            {"consent": True, "opted_out": [], "dpd": 1, "contacts": []},
            {"consent": True, "opted_out": [], "dpd": 0, "contacts": [60, 24 * 60]},
            {"consent": True, "opted_out": [], "dpd": 0, "contacts": [60, 7 * 24 * 60 + 1]},
        ]
        customers, opt_outs, contacts = _frames(cases)
        flags = exclusion_flags(customers, channel="sms", at=AT, cap=CAP, opt_outs=opt_outs, contacts=contacts)
        assert flags.get_column("excluded").to_list() == [False, True, True, True, False, True, True, False]

    def test_a_contact_exactly_at_the_window_start_still_counts(self) -> None:
        edge = AT - timedelta(days=7)
        assert exclusion_reasons(consent=True, opted_out_channels=[], channel="sms", days_past_due=0,
                                 contacts=[edge, AT], at=AT, cap=CAP) == ["frequency_cap"]


class TestAnyTextIsEitherAcceptedOrRefusedCleanly:
    @settings(max_examples=300, deadline=None)
    @given(text=st.lists(st.sampled_from([*'()[]"., <>=!-+*01', "age", "vip", "industry", " and ", " or ", "not ",
                                          " in ", "..", "null", "true", "abs(", "lower(", '"retail"', "secret"]),
                         max_size=25).map("".join))
    def test_no_input_crashes_the_parser(self, text: str) -> None:
        try:
            node = parse_segment_expression(text, NS)
        except ValidationError:
            return
        frame = pl.DataFrame([{"age": 30, "industry": "retail", "months_on_book": 3, "vip": None}], schema=SCHEMA)
        assert frame.select(to_polars(node)).to_series().to_list() == [evaluate_row(text, frame.row(0, named=True))]

    def test_deep_nesting_is_refused_not_a_crash(self) -> None:
        with pytest.raises(ValidationError):
            parse_segment_expression("(" * 500 + "age > 1" + ")" * 500, NS)
        with pytest.raises(ValidationError):
            parse_segment_expression("not " * 500 + "vip", NS)
