"""The expert scorecard for micro-businesses: its points table, Missing and unseen values, reasons, calibration of
the three profiles a credit expert set it for, batch against one by one, and its files."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microlend.core.errors import ValidationError
from microlend.risk.artefacts import EXPERT_FILE, ScoringModel, load_model
from microlend.risk.expert import (
    CATEGORICAL,
    ExpertBin,
    ExpertCharacteristic,
    ExpertScorecardModel,
    categorical,
    numeric,
)
from microlend.risk.gates import ModelGates, gates_apply, summary
from microlend.risk.reasons import reason_message
from microlend.risk.starter import EXPERT_STARTER_DIR, build_expert_starter
from microlend.risk.starter.micro_business import micro_business_scorecard

CUT_OFF = 520.0

CLEAN: dict[str, Any] = {
    "tax_sales_12m": 1_200_000,
    "tax_sales_growth_yoy": 0.15,
    "tax_months_declared_24m": 24,
    "tax_grade": "B",
    "inv_red_ratio_12m": 0.01,
    "inv_sales_gap": 0.03,
    "inv_top_customer_share": 0.25,
    "mer_active_days_3m": 82,
    "business_age_months": 60,
    "reg_legal_rep_changes_12m": 0,
    "enf_cases_open": 0,
    "enf_dishonest": 0,
    "bur_overdue_months_24m": 0,
    "bur_max_overdue_level_24m": 0,
    "bur_lenders_open": 1,
    "bur_inquiries_3m": 1,
    "bur_history_months": 48,
    "own_bounced_6m": 0,
    "years_in_business": 5,
}
DECLINING = {**CLEAN, "tax_sales_growth_yoy": -0.35}
DISHONEST = {**CLEAN, "enf_cases_open": 1, "enf_dishonest": 1}
THIN = {
    **CLEAN,
    "tax_months_declared_24m": 10,
    "tax_sales_growth_yoy": None,
    "tax_grade": "M",
    "business_age_months": 10,
    "years_in_business": 0.8,
    "tax_sales_12m": 1_000_000,
}


@pytest.fixture(scope="module")
def model() -> ExpertScorecardModel:
    return micro_business_scorecard()


def score(model: ExpertScorecardModel, case: dict[str, Any]) -> float:
    return model.score_one(case)[1]


def points_of(model: ExpertScorecardModel, name: str, value: Any) -> float:
    """The points one characteristic gives a value (the score of a case differing only there)."""
    return (
        score(model, {**CLEAN, name: value}) - score(model, {**CLEAN, name: CLEAN[name]}) + _clean_points(model, name)
    )


def _clean_points(model: ExpertScorecardModel, name: str) -> float:
    frame = pd.DataFrame([CLEAN])
    return float(model.points_matrix(frame)[0, model.features.index(name)])


class TestPointsTable:
    def test_is_the_scoring_model_the_runtime_expects(self, model: ExpertScorecardModel) -> None:
        assert isinstance(model, ScoringModel)
        assert model.kind == "expert" and len(model.features) == 19
        assert model.scaling.to_dict() == {"base_points": 600.0, "base_odds": 50.0, "pdo": 20.0}

    def test_uses_the_shared_business_feature_names_and_the_application_form(self, model: ExpertScorecardModel) -> None:
        prefixes = ("tax_", "inv_", "mer_", "reg_", "enf_", "bur_", "own_")
        assert all(f.startswith(prefixes) or f in ("business_age_months", "years_in_business") for f in model.features)

    def test_every_characteristic_has_a_rationale_in_both_languages_and_a_stable_reason_code(
        self, model: ExpertScorecardModel
    ) -> None:
        for c in model.characteristics:
            assert len(c.rationale["en"]) > 40 and len(c.rationale["zh-CN"]) > 10
            assert c.reason_code.isupper()
            assert reason_message(c.reason_code, "zh-CN") != reason_message("unknown-feature", "zh-CN")
        assert {"TAX_SALES_LOW", "SALES_DECLINING", "ENFORCEMENT_CASES", "DISHONEST_DEBTOR"} <= set(model.reason_codes)

    @pytest.mark.parametrize(
        ("name", "values", "expected"),
        [
            (
                "tax_sales_12m",
                [0, 99_999.99, 100_000, 299_999, 300_000, 1_000_000, 5_000_000, 9e9],
                [-20, -20, 0, 0, 8, 16, 20, 20],
            ),
            (
                "tax_sales_growth_yoy",
                [-1, -0.31, -0.30, -0.11, -0.10, 0.04, 0.05, 0.49, 0.50, 1.99, 2.0, 10],
                [-65, -65, -15, -15, 10, 10, 25, 25, 15, 15, -5, -5],
            ),
            ("tax_months_declared_24m", [0, 5, 6, 11, 12, 17, 18, 23, 24], [-10, -10, 2, 2, 3, 3, 4, 4, 5]),
            ("tax_grade", ["A", "B", "M", "C", "D"], [12, 8, 5, -25, -60]),
            ("inv_red_ratio_12m", [0, 0.019, 0.02, 0.05, 0.10, 0.19, 0.20, 1.0], [6, 6, 3, 0, -12, -12, -25, -25]),
            ("inv_sales_gap", [-1, -0.51, -0.5, -0.1, 0.0, 0.1, 0.3, 0.6, 1.0], [0, 0, 4, 8, 8, 0, -20, -50, -50]),
            ("inv_top_customer_share", [0, 0.29, 0.3, 0.5, 0.8, 1.0], [6, 6, 3, -5, -12, -12]),
            ("mer_active_days_3m", [0, 9, 10, 29, 30, 59, 60, 79, 80, 92], [-10, -10, -3, -3, 0, 0, 4, 4, 8, 8]),
            ("business_age_months", [0, 11, 12, 24, 36, 60, 300], [-2, -2, 0, 2, 4, 5, 5]),
            ("reg_legal_rep_changes_12m", [0, 1, 2, 5], [4, -10, -25, -25]),
            ("enf_cases_open", [0, 1, 2, 9], [8, -25, -45, -45]),
            ("enf_dishonest", [0, 1, True, False], [5, -70, -70, 5]),
            ("bur_overdue_months_24m", [0, 1, 2, 3, 5, 6, 24], [10, 0, 0, -20, -20, -40, -40]),
            ("bur_max_overdue_level_24m", [0, 1, 2, 3, 4, 5, 7], [6, 0, -20, -40, -40, -60, -60]),
            ("bur_lenders_open", [0, 1, 2, 3, 4, 5, 6, 20], [0, 6, 6, 0, -15, -15, -30, -30]),
            ("bur_inquiries_3m", [0, 1, 2, 3, 4, 6, 7, 30], [6, 6, 0, 0, -15, -15, -30, -30]),
            ("bur_history_months", [0, 11, 12, 23, 24, 59, 60, 400], [-5, -5, 0, 0, 4, 4, 6, 6]),
            ("own_bounced_6m", [0, 1, 2, 3, 10], [4, -6, -6, -12, -12]),
            ("years_in_business", [0, 0.99, 1, 2.5, 3, 4.9, 5, 40], [-2, -2, 0, 0, 1, 1, 2, 2]),
        ],
    )
    def test_each_characteristic_bins_its_values(
        self, model: ExpertScorecardModel, name: str, values: list[Any], expected: list[float]
    ) -> None:
        got = [points_of(model, name, v) for v in values]
        assert got == expected
        frame = pd.DataFrame([{**CLEAN, name: v} for v in values])
        assert model.points_matrix(frame)[:, model.features.index(name)].tolist() == expected

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("tax_sales_12m", -5),
            ("tax_sales_growth_yoy", -1.5),
            ("tax_months_declared_24m", 25),
            ("tax_grade", "Z"),
            ("tax_grade", "a"),
            ("inv_sales_gap", 1.5),
            ("inv_top_customer_share", 1.2),
            ("mer_active_days_3m", 120),
            ("enf_dishonest", 2),
            ("bur_max_overdue_level_24m", 8),
            ("tax_sales_12m", math.inf),
            ("bur_lenders_open", -1),
        ],
    )
    def test_a_value_the_table_does_not_know_scores_the_unseen_points(
        self, model: ExpertScorecardModel, name: str, value: Any
    ) -> None:
        c = model.characteristics[model.features.index(name)]
        assert points_of(model, name, value) == c.unseen_points <= c.worst_points
        assert model.unseen_features({**CLEAN, name: value}) == [name]
        assert model.score_batch(pd.DataFrame([{**CLEAN, name: value}]))["unseen"].tolist() == [1]

    def test_missing_scores_the_missing_points(self, model: ExpertScorecardModel) -> None:
        for c in model.characteristics:
            # an optional source's absence (no account here, no card acquiring) scores neutral, never better
            ceiling = c.neutral_points if c.absent_is_neutral else c.worst_points
            assert points_of(model, c.name, None) == c.missing_points <= ceiling
            assert points_of(model, c.name, float("nan")) == c.missing_points
        assert {c.name for c in model.characteristics if c.absent_is_neutral} == {"mer_active_days_3m",
                                                                                  "own_bounced_6m"}

    def test_an_optional_source_missing_is_neutral_and_gives_no_reason(self, model: ExpertScorecardModel) -> None:
        for name in ("mer_active_days_3m", "own_bounced_6m"):
            _, _, reasons = model.score_one({**CLEAN, name: None})
            assert all(r.feature != model.characteristics[model.features.index(name)].reason_code for r in reasons)
        with pytest.raises(ValidationError, match="neutral point"):
            replace(model.characteristics[model.features.index("own_bounced_6m")], missing_points=4.0)

    def test_text_that_is_not_a_number_is_refused_by_name(self, model: ExpertScorecardModel) -> None:
        with pytest.raises(ValidationError, match="tax_sales_12m"):
            model.score_one({**CLEAN, "tax_sales_12m": "lots"})
        with pytest.raises(ValidationError, match="tax_sales_12m"):
            model.score_batch(pd.DataFrame([{**CLEAN, "tax_sales_12m": "lots"}]))

    def test_a_missing_column_is_named(self, model: ExpertScorecardModel) -> None:
        with pytest.raises(ValidationError, match="enf_dishonest: column is missing"):
            model.score_batch(pd.DataFrame([CLEAN]).drop(columns=["enf_dishonest"]))


class TestTableRules:
    def test_missing_better_than_the_worst_bin_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="Missing scores 5, better than the worst bin"):
            numeric(
                "x",
                [1],
                ["< 1", ">= 1"],
                [0, 10],
                neutral=0,
                reason_code="X_LOW",
                en="e" * 5,
                zh="z",
                source="s",
                missing=5,
            )

    def test_unseen_better_than_the_worst_bin_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="unseen value scores 1"):
            categorical(
                "g", [(["A"], 5), (["B"], 0)], neutral=0, reason_code="G_LOW", en="e", zh="z", source="s", unseen=1
            )

    def test_a_category_in_two_bins_and_unordered_splits_are_refused(self) -> None:
        with pytest.raises(ValidationError, match="category 'A' is in two bins"):
            categorical("g", [(["A"], 5), (["A", "B"], 0)], neutral=0, reason_code="G_LOW", en="e", zh="z", source="s")
        with pytest.raises(ValidationError, match="splits must increase"):
            numeric("x", [2, 1], ["a", "b", "c"], [0, 1, 2], neutral=0, reason_code="X_LOW", en="e", zh="z", source="s")

    def test_a_reason_code_used_twice_is_refused(self) -> None:
        a = numeric("a", [1], ["< 1", ">= 1"], [0, 1], neutral=0, reason_code="SAME", en="e", zh="z", source="s")
        b = numeric("b", [1], ["< 1", ">= 1"], [0, 1], neutral=0, reason_code="SAME", en="e", zh="z", source="s")
        with pytest.raises(ValidationError, match="reason code 'SAME' is used twice"):
            ExpertScorecardModel([a, b], 500.0)

    def test_a_rationale_in_one_language_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="rationale in en and zh-CN"):
            ExpertCharacteristic("g", CATEGORICAL, (ExpertBin("A", 1, ("A",)),), 0, 0, 1, "G_LOW", {"en": "x"})


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    """Any case: each feature a number (in or out of range, inf), a category, or missing."""
    model = micro_business_scorecard()
    case: dict[str, Any] = {}
    for c in model.characteristics:
        if c.kind == CATEGORICAL:
            case[c.name] = draw(st.one_of(st.none(), st.sampled_from(["A", "B", "M", "C", "D", "X", "", "b"])))
        else:
            case[c.name] = draw(
                st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 400))
            )
    return case


class TestMissingAndUnseenProperty:
    @settings(max_examples=150, deadline=None)
    @given(case=cases(), which=st.sampled_from(range(19)), how=st.sampled_from(["missing", "unseen"]))
    def test_no_data_or_an_unknown_value_never_beats_any_known_value(
        self, case: dict[str, Any], which: int, how: str
    ) -> None:
        model = micro_business_scorecard()
        c = model.characteristics[which]
        if how == "missing" and c.absent_is_neutral:
            how = "unseen"  # an optional source's absence is neutral by design (tested above); unseen is not
        unknown = None if how == "missing" else ("not-a-grade" if c.kind == CATEGORICAL else -1e12)
        worst_known = min(
            score(model, {**case, c.name: (b.categories[0] if c.kind == CATEGORICAL else _inside(c, i))})
            for i, b in enumerate(c.bins)
        )
        assert score(model, {**case, c.name: unknown}) <= worst_known

    @settings(max_examples=60, deadline=None)
    @given(rows=st.lists(cases(), min_size=1, max_size=25))
    def test_batch_equals_one_by_one(self, rows: list[dict[str, Any]]) -> None:
        model = micro_business_scorecard()
        frame = pd.DataFrame(rows, columns=model.features).astype(
            {c.name: "float64" for c in model.characteristics if c.kind != CATEGORICAL}
        )
        batch = model.score_batch(frame)
        for i, case in enumerate(rows):
            pd_, s, reasons = model.score_one(case)
            assert batch["score"].iloc[i] == s
            assert batch["pd"].iloc[i] == pytest.approx(pd_, rel=1e-12)
            assert batch["reasons"].iloc[i] == ";".join(r.feature for r in reasons)


def _inside(c: ExpertCharacteristic, i: int) -> float:
    """A value inside numeric bin i of c (and inside its valid range)."""
    low = c.splits[i - 1] if i > 0 else max(c.valid_min, (c.splits[0] - 1) if c.splits else 0.0)
    return max(low, c.valid_min)


class TestReasons:
    def test_a_clean_business_has_no_reason(self, model: ExpertScorecardModel) -> None:
        assert model.score_one(CLEAN)[2] == []

    def test_only_characteristics_below_neutral_at_most_three_largest_shortfall_first(
        self, model: ExpertScorecardModel
    ) -> None:
        case = {
            **CLEAN,
            "bur_inquiries_3m": 5,
            "tax_grade": "C",
            "enf_cases_open": 1,
            "own_bounced_6m": 1,
            "bur_lenders_open": 3,
        }
        _, _, reasons = model.score_one(case)
        assert [r.feature for r in reasons] == ["ENFORCEMENT_CASES", "TAX_GRADE_LOW", "MANY_INQUIRIES"]
        assert [r.impact for r in reasons] == [33.0, 30.0, 15.0]
        assert (
            model.score_batch(pd.DataFrame([case]))["reasons"].iloc[0]
            == "ENFORCEMENT_CASES;TAX_GRADE_LOW;MANY_INQUIRIES"
        )
        # bur_lenders_open = 3 scores 0, its neutral point: no reason
        assert "MANY_LENDERS" not in [r.feature for r in model.score_one(case, top_n=10)[2]]

    def test_reasons_in_the_applicants_language(self, model: ExpertScorecardModel) -> None:
        (reason,) = model.score_one(DECLINING)[2]
        assert reason.feature == "SALES_DECLINING"
        assert "同比下降" in reason.message("zh-CN") and "falling" in reason.message("en")


class TestCalibration:
    def test_a_clean_growing_business_scores_well_above_the_cut_off(self, model: ExpertScorecardModel) -> None:
        assert 580 <= score(model, CLEAN) <= 650
        assert score(model, {**CLEAN, "own_bounced_6m": None}) >= 580  # not a customer of the bank yet

    def test_an_open_dishonest_debtor_case_scores_below_the_cut_off(self, model: ExpertScorecardModel) -> None:
        assert score(model, DISHONEST) < CUT_OFF

    def test_sales_falling_more_than_30_percent_score_below_the_cut_off(self, model: ExpertScorecardModel) -> None:
        assert score(model, DECLINING) < CUT_OFF
        assert score(model, {**CLEAN, "tax_sales_growth_yoy": -0.25}) > CUT_OFF

    def test_a_thin_file_lands_around_the_cut_off(self, model: ExpertScorecardModel) -> None:
        assert abs(score(model, THIN) - CUT_OFF) <= 25

    def test_all_missing_scores_the_lowest_score_of_the_table(self, model: ExpertScorecardModel) -> None:
        nothing = score(model, {})
        optional = sum(c.neutral_points - c.worst_points for c in model.characteristics if c.absent_is_neutral)
        assert nothing == model.min_score + optional
        assert nothing < min(score(model, p) for p in (CLEAN, DECLINING, DISHONEST, THIN))

    def test_pd_follows_the_german_starters_points_scaling(self, model: ExpertScorecardModel) -> None:
        german = load_model(Path(EXPERT_STARTER_DIR).parent / "german_credit_scorecard").model
        for case in (CLEAN, THIN, DISHONEST):
            pd_, s, _ = model.score_one(case)
            assert pd_ == pytest.approx(german.scaling.pd_from_score(s))
        assert model.score_one(CLEAN)[0] < 0.03 < model.score_one(DECLINING)[0]


class TestShippedFiles:
    def test_ship_as_json_with_the_pd_stated_as_an_assumption(self) -> None:
        artefact = load_model(EXPERT_STARTER_DIR)
        assert sorted(p.name for p in EXPERT_STARTER_DIR.iterdir()) == [EXPERT_FILE, "model.json"]
        meta = artefact.metadata
        assert (meta.kind, meta.name) == ("expert", "starter-expert-micro-business")
        assert meta.metrics["basis"] == "expert judgement, no development sample"
        mapping = meta.parameters["pd_mapping"]
        assert "assumption" in mapping and mapping["note"]["zh-CN"].startswith("假设")
        assert (mapping["base_points"], mapping["base_odds"], mapping["pdo"]) == (600.0, 50.0, 20.0)
        table = json.loads((EXPERT_STARTER_DIR / EXPERT_FILE).read_text(encoding="utf-8"))
        assert all(c["rationale"]["en"] and c["rationale"]["zh-CN"] for c in table["characteristics"])

    def test_are_what_the_table_builds_today(self, tmp_path: Path) -> None:
        fresh = load_model(build_expert_starter(tmp_path / "expert")).metadata
        assert fresh.content_hash == load_model(EXPERT_STARTER_DIR).metadata.content_hash

    def test_round_trip_scores_the_same(self, model: ExpertScorecardModel, tmp_path: Path) -> None:
        loaded = load_model(build_expert_starter(tmp_path / "expert")).model
        frame = pd.DataFrame([CLEAN, DECLINING, DISHONEST, THIN, {}], columns=model.features)
        pd.testing.assert_frame_equal(loaded.score_batch(frame), model.score_batch(frame))

    def test_an_edited_points_table_is_refused(self, tmp_path: Path) -> None:
        folder = tmp_path / "edited"
        shutil.copytree(EXPERT_STARTER_DIR, folder)
        path = folder / EXPERT_FILE
        path.write_text(path.read_text(encoding="utf-8").replace('"points": -70.0', '"points": 5.0'), encoding="utf-8")
        with pytest.raises(ValidationError, match=r"expert_scorecard\.json changed after the model was saved"):
            load_model(folder)

    def test_the_model_gates_do_not_apply(self) -> None:
        assert not gates_apply("expert") and gates_apply("scorecard")
        result = summary(load_model(EXPERT_STARTER_DIR).metadata.metrics, ModelGates(), kind="expert")
        assert (result["applies"], result["passed"], result["results"]) == (False, True, [])
        assert not summary({}, ModelGates(), kind="scorecard")["passed"]


def test_reasons_of_a_large_batch_match_a_sort(model: ExpertScorecardModel) -> None:
    """The running top-3 of the batch path picks what a stable sort of the shortfalls would."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            c.name: rng.choice([None, "A", "B", "M", "C", "D"], 400)
            if c.kind == CATEGORICAL
            else rng.choice([np.nan, *range(-1, 30)], 400) * 1.0
            for c in model.characteristics
        }
    )
    shortfall = model._neutral - model.points_matrix(frame)
    order = np.argsort(-shortfall, axis=1, kind="stable")[:, :3]
    expected = [";".join(model.reason_codes[j] for j in row if shortfall[i, j] > 0) for i, row in enumerate(order)]
    assert model.score_batch(frame)["reasons"].tolist() == expected


class TestAPersonApplicant:
    """An individual business owner (a resident ID, no USCC) has no tax declarations, invoices or registry
    entry: those characteristics do not apply and score the neutral point; for a business they are missing."""

    BUSINESS_ONLY = ("tax_sales_12m", "tax_sales_growth_yoy", "tax_months_declared_24m", "tax_grade",
                     "inv_red_ratio_12m", "inv_sales_gap", "inv_top_customer_share", "business_age_months",
                     "reg_legal_rep_changes_12m")

    def test_business_sources_do_not_apply_to_a_person(self, model: ExpertScorecardModel) -> None:
        without = {**CLEAN, **dict.fromkeys(self.BUSINESS_ONLY)}
        person = {**without, "subject_kind": "person"}
        neutral = sum(c.neutral_points for c in model.characteristics if c.name in self.BUSINESS_ONLY)
        worst = sum(c.missing_points for c in model.characteristics if c.name in self.BUSINESS_ONLY)
        assert score(model, person) - score(model, {**without, "subject_kind": "business"}) == neutral - worst
        _, _, reasons = model.score_one(person)
        codes = {model.characteristics[model.features.index(n)].reason_code for n in self.BUSINESS_ONLY}
        assert not codes & {r.feature for r in reasons}
        frame = pd.DataFrame([person, {**without, "subject_kind": "business"}, without])
        batch = model.score_batch(frame)["score"].tolist()
        assert batch == [score(model, person), score(model, {**without, "subject_kind": "business"}),
                         score(model, without)]

    def test_a_person_s_own_bad_data_still_counts(self, model: ExpertScorecardModel) -> None:
        person = {**CLEAN, **dict.fromkeys(self.BUSINESS_ONLY), "subject_kind": "person"}
        assert score(model, {**person, "enf_dishonest": 1}) < score(model, person) - 50
        assert score(model, {**person, "tax_grade": "D"}) < score(model, person)  # a known value is scored
