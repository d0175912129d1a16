from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microlend.core.errors import ValidationError
from microlend.risk.datasets import bad_flag, lending_club, out_of_time_split, stratified_split


class TestShippedDatasets:
    def test_german_credit_has_1000_applicants_and_30_percent_bad(self, german) -> None:  # type: ignore[no-untyped-def]
        assert len(german.frame) == 1000
        assert german.bad_flag().sum() == 300
        assert german.target not in german.features

    def test_lending_club_has_its_9857_loans_without_the_row_number(self) -> None:
        ds = lending_club()
        assert len(ds.frame) == 9857
        assert "rownames" not in ds.frame.columns
        assert ds.bad_flag().sum() == 517


class TestBadFlag:
    def test_marks_the_bad_value_as_one(self) -> None:
        assert bad_flag(pd.Series(["good", "bad", "bad"]), "bad").tolist() == [0, 1, 1]

    def test_numeric_target_matches_the_text_of_the_bad_value(self) -> None:
        assert bad_flag(pd.Series([0, 1, 1, 0]), "1").tolist() == [0, 1, 1, 0]

    def test_target_without_the_bad_value_is_refused_naming_the_values_seen(self) -> None:
        with pytest.raises(ValidationError, match=r"no row has the bad value 'BAD'.*bad, good"):
            bad_flag(pd.Series(["good", "bad"]), "BAD", column="creditability")

    def test_target_with_only_bad_rows_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="need good rows"):
            bad_flag(pd.Series(["bad", "bad"]), "bad")

    def test_missing_target_values_are_refused(self) -> None:
        with pytest.raises(ValidationError, match="1 rows have no target"):
            bad_flag(pd.Series(["bad", None, "good"]), "bad")


class TestStratifiedSplit:
    def test_seventy_thirty_with_the_same_bad_rate(self, german) -> None:  # type: ignore[no-untyped-def]
        train, test = stratified_split(german.frame, german.target, german.bad, seed=7)
        assert (len(train), len(test)) == (700, 300)
        assert (train[german.target] == "bad").sum() == 210
        assert (test[german.target] == "bad").sum() == 90

    def test_the_same_seed_gives_the_same_split(self, german) -> None:  # type: ignore[no-untyped-def]
        a, _ = stratified_split(german.frame, german.target, german.bad, seed=3)
        b, _ = stratified_split(german.frame, german.target, german.bad, seed=3)
        c, _ = stratified_split(german.frame, german.target, german.bad, seed=4)
        pd.testing.assert_frame_equal(a, b)
        assert not a.equals(c)


class TestOutOfTimeSplit:
    def test_the_latest_dates_form_the_out_of_time_sample(self) -> None:
        frame = pd.DataFrame({"applied_on": pd.date_range("2024-01-01", periods=10, freq="MS").astype(str),
                              "x": np.arange(10)})
        dev, oot = out_of_time_split(frame, "applied_on", oot_fraction=0.2)
        assert oot["x"].tolist() == [8, 9]
        assert dev["x"].max() == 7

    def test_unreadable_dates_are_refused(self) -> None:
        frame = pd.DataFrame({"applied_on": ["2024-01-01", "not a date"]})
        with pytest.raises(ValidationError, match="applied_on: 1 rows have no readable date"):
            out_of_time_split(frame, "applied_on")
