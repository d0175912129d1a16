"""The behaviour scorecard (行为评分卡): points by bin, bands, texts in both languages, the facts read from the
servicing history, and the set-based score equal to the per-subject reference."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microlend.decisioning import behaviour as bhv

ON = date(2026, 11, 30)
CLEAN = {"current_dpd": 0, "max_dpd_12m": 0, "overdue_count_12m": 0, "on_time_bp": None, "utilisation_bp": 0,
         "months_on_book": 0}


def subjects(*rows: tuple[int, str, int, date, int]) -> pl.DataFrame:
    return pl.DataFrame([(i, kind, 100 + i, limit, opened, dpd) for i, kind, limit, opened, dpd in
                         [(r[0], r[1], r[2], r[3], r[4]) for r in rows]],
                        schema=bhv.SUBJECT_SCHEMA, orient="row")


def instalments(*rows: tuple[int, date, date, date | None, int]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=bhv.INSTALMENT_SCHEMA, orient="row")


class TestPoints:
    def test_a_new_clean_line_scores_the_base_plus_its_clean_factors(self) -> None:
        result = bhv.score_one(CLEAN)
        assert result.score == bhv.BASE_POINTS + 60 + 40 + 30 == 630
        assert result.band == "C"

    def test_the_best_line_is_band_a_and_the_worst_band_e(self) -> None:
        best = bhv.score_one({"current_dpd": 0, "max_dpd_12m": 0, "overdue_count_12m": 0, "on_time_bp": 10_000,
                              "utilisation_bp": 5000, "months_on_book": 30})
        worst = bhv.score_one({"current_dpd": 999, "max_dpd_12m": 999, "overdue_count_12m": 9, "on_time_bp": 0,
                               "utilisation_bp": 10_000, "months_on_book": 1})
        assert (best.score, best.band) == (750, "A")
        assert (worst.score, worst.band) == (140, "E")

    @pytest.mark.parametrize(("dpd", "points"), [(0, 60), (1, -40), (30, -40), (31, -100), (60, -100), (61, -160)])
    def test_days_past_due_now_fall_in_their_bin(self, dpd: int, points: int) -> None:
        part = bhv.score_one({**CLEAN, "current_dpd": dpd}).factors[0]
        assert (part.name, part.points) == ("current_dpd", points)

    def test_a_loan_earns_nothing_for_utilisation(self) -> None:
        line = bhv.score_one({**CLEAN, "utilisation_bp": 5000}, kind="line")
        loan = bhv.score_one({**CLEAN, "utilisation_bp": 5000}, kind="loan")
        assert line.score - loan.score == 30
        assert loan.factors[4].bin == -1 and loan.factors[4].text("en") == "Not applicable (a loan)"

    @pytest.mark.parametrize(("score", "band"), [(700, "A"), (699, "B"), (660, "B"), (659, "C"), (620, "C"),
                                                 (619, "D"), (560, "D"), (559, "E")])
    def test_bands_meet_the_review_policys_cut_offs(self, score: int, band: str) -> None:
        assert bhv.band_of(score) == band

    def test_every_bin_has_a_chinese_and_an_english_text(self) -> None:
        for factor in bhv.FACTORS:
            assert factor.zh and factor.en and factor.zh != factor.en
            for b in factor.bins:
                assert b.zh and b.en and b.zh != b.en

    def test_the_bins_of_each_factor_cover_every_value_once(self) -> None:
        for factor in bhv.FACTORS:
            for value in (None, -5, 0, 1, 7, 8, 30, 31, 2999, 3000, 7999, 8000, 9499, 9500, 10_000, 10**6):
                if value is None and not any(b.missing for b in factor.bins):
                    continue
                assert sum(b.holds(value) for b in factor.bins) == 1, (factor.name, value)

    def test_a_factor_round_trips_through_its_stored_form(self) -> None:
        part = bhv.score_one({**CLEAN, "current_dpd": 12}).factors[0]
        assert bhv.FactorPoints.from_dict(part.as_dict()) == part
        assert part.text("zh_CN") == "当前逾期1至30天" and part.label("en") == "Days past due now"


facts_rows = st.fixed_dictionaries({
    "kind": st.sampled_from(["line", "loan"]),
    "current_dpd": st.integers(0, 400),
    "max_dpd_12m": st.integers(0, 400),
    "overdue_count_12m": st.integers(0, 12),
    "on_time_bp": st.one_of(st.none(), st.integers(0, 10_000)),
    "utilisation_bp": st.integers(0, 10_000),
    "months_on_book": st.integers(0, 120),
})


@settings(max_examples=40, deadline=None)
@given(st.lists(facts_rows, min_size=1, max_size=30))
def test_the_set_based_score_equals_the_reference_row_by_row(rows: list[dict[str, Any]]) -> None:
    frame = pl.DataFrame(rows, schema={"kind": pl.Utf8, "current_dpd": pl.Int32, "max_dpd_12m": pl.Int32,
                                       "overdue_count_12m": pl.Int32, "on_time_bp": pl.Int32,
                                       "utilisation_bp": pl.Int32, "months_on_book": pl.Int32})
    scored = bhv.score_facts(frame)
    for row, got in zip(rows, scored.iter_rows(named=True), strict=True):
        expected = bhv.score_one(row, row["kind"])
        assert (got["score"], got["band"]) == (expected.score, expected.band)
        assert bhv.factors_of(got) == expected.factors


class TestFacts:
    def test_history_becomes_lateness_counts_on_time_share_and_months_on_book(self) -> None:
        opened = date(2025, 1, 10)
        subs = subjects((1, "line", 4_000_000, opened, 0))
        inst = instalments(
            (1, date(2026, 5, 1), date(2026, 6, 1), date(2026, 6, 1), 1_000_000),    # on time
            (1, date(2026, 5, 1), date(2026, 7, 1), date(2026, 7, 11), 1_000_000),   # 10 days late
            (1, date(2026, 5, 1), date(2026, 8, 1), date(2026, 7, 30), 1_000_000),   # early
            (1, date(2026, 5, 1), date(2027, 1, 1), None, 1_000_000),                # not due yet
        )
        [row] = bhv.behaviour_facts(subs, inst, ON).iter_rows(named=True)
        assert row["max_dpd_12m"] == 10 and row["overdue_count_12m"] == 1
        assert row["on_time_bp"] == 6666  # 2 of 3 due
        assert row["months_on_book"] == 22

    def test_utilisation_averages_what_was_owed_at_six_month_ends(self) -> None:
        subs = subjects((1, "line", 1_000_000, date(2026, 1, 1), 0))
        # half the limit drawn on 2026-09-15 and owed ever since: owed at the ends of Sep, Oct and Nov (today)
        inst = instalments((1, date(2026, 9, 15), date(2027, 3, 15), None, 500_000))
        [row] = bhv.behaviour_facts(subs, inst, ON).iter_rows(named=True)
        assert row["utilisation_bp"] == 3 * 5000 // 6

    def test_an_unpaid_instalment_is_late_until_today_and_a_line_without_history_has_no_on_time_share(self) -> None:
        subs = subjects((1, "line", 1_000_000, date(2026, 1, 1), 45), (2, "line", 1_000_000, ON, 0))
        inst = instalments((1, date(2026, 9, 1), ON - timedelta(days=45), None, 100_000))
        rows = {r["subject_id"]: r for r in bhv.behaviour_facts(subs, inst, ON).iter_rows(named=True)}
        assert rows[1]["max_dpd_12m"] == 45 and rows[1]["current_dpd"] == 45 and rows[1]["on_time_bp"] == 0
        assert rows[2]["on_time_bp"] is None and rows[2]["max_dpd_12m"] == 0 and rows[2]["utilisation_bp"] == 0

    def test_instalments_due_more_than_a_year_ago_do_not_count(self) -> None:
        subs = subjects((1, "loan", 1_000_000, date(2024, 1, 1), 0))
        inst = instalments((1, date(2024, 1, 1), date(2025, 6, 1), date(2025, 8, 1), 100_000))
        [row] = bhv.behaviour_facts(subs, inst, ON).iter_rows(named=True)
        assert row["max_dpd_12m"] == 0 and row["overdue_count_12m"] == 0 and row["on_time_bp"] is None


def test_days_past_due_read_off_a_stored_breakdown_are_what_decoding_its_json_finds() -> None:
    from microlend.decisioning.behaviour_scores import _FACTOR_VALUES, stored_dpd

    stored = pl.Series([
        '[{"bin": 0, "name": "current_dpd", "points": 60, "value": 0}, {"bin": 1, "name": "max_dpd_12m", "value": 5}]',
        '[{"name": "current_dpd", "value": 35, "points": -100, "bin": 2}]',
        '[{"name": "current_dpd", "value": null, "points": 0, "bin": 0}]',
        '[{"name": "max_dpd_12m", "value": 3}]', "[]", None, '[{"name":"current_dpd","value":-4}]',
        '[{"name": "current_dpd", "value": 12, "note": {"a": 1}}]',
        '[{"name": "x", "value": 1}, {"name": "current_dpd", "value": 7}, {"name": "current_dpd", "value": 8}]'],
        dtype=pl.Utf8)
    decoded = (stored.str.json_decode(_FACTOR_VALUES)
               .list.filter(pl.element().struct.field("name") == "current_dpd").list.first().struct.field("value"))
    assert stored_dpd(stored).to_list() == decoded.to_list() == [0, 35, None, None, None, None, -4, 12, 7]


@settings(max_examples=60, deadline=None)
@given(st.lists(facts_rows, min_size=1, max_size=30))
def test_a_compact_score_is_explained_again_by_its_runs_definition(rows: list[dict[str, Any]]) -> None:
    """Kept compactly (bins and values per factor, the scorecard once per run), every row's breakdown is
    rebuilt exactly — value, bin and points of each factor — and adds up to its score."""
    from microlend.decisioning.behaviour_scores import (
        compact,
        explain,
        factor_bins,
        factor_values,
        scorecard_definition,
    )

    frame = pl.DataFrame(rows, schema={"kind": pl.Utf8, **{k: pl.Int64 for k in bhv.FACTOR_NAMES}})
    scored = bhv.score_facts(frame)
    stored = scored.select(factor_bins(scored).alias("bins"), factor_values(scored).alias("values"))
    definition = scorecard_definition()
    for row, (bins, values) in zip(scored.iter_rows(named=True), stored.iter_rows(), strict=True):
        expected = bhv.score_one({k: row[k] for k in bhv.FACTOR_NAMES}, row["kind"])
        assert compact(expected.factors) == (bins, values)
        explained = explain(definition, bins, values)
        assert explained == expected.factors
        assert bhv.BASE_POINTS + sum(f.points for f in explained) == expected.score == row["score"]


def test_a_compact_score_that_does_not_fit_its_definition_is_refused() -> None:
    from microlend.decisioning.behaviour_scores import explain, scorecard_definition

    with pytest.raises(ValueError, match="6 factors"):
        explain(scorecard_definition(), "0000", "0,0,0,0")
