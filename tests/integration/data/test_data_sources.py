"""Source tables read from an operational database and mapped onto the feature library's shapes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import create_engine, text

from microlend.core.errors import ValidationError
from microlend.data.features import compute_features
from microlend.data.sources import read_sources, ten_thousandths_to_decimal


class TestTenThousandths:
    def test_integer_ten_thousandths_become_exact_decimals_with_nulls_kept(self) -> None:
        values = pa.array([12_345_678, -5, None, 0, 9_000_000_000_000_000])
        assert ten_thousandths_to_decimal(values).to_pylist() == [
            Decimal("1234.5678"),
            Decimal("-0.0005"),
            None,
            Decimal("0.0000"),
            Decimal("900000000000.0000"),
        ]

    def test_a_slice_keeps_its_own_nulls(self) -> None:
        values = pa.chunked_array([[1, None, 30000], [None, 50000]]).slice(1)
        assert ten_thousandths_to_decimal(values).to_pylist() == [None, Decimal("3"), None, Decimal("5")]


@pytest.fixture
def core_banking(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'core.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE clients (id INTEGER, opened TEXT, dob TEXT)"))
        conn.execute(text("INSERT INTO clients VALUES (1, '2023-01-15 08:00:00+00:00', '1980-06-30')"))
        conn.execute(text("CREATE TABLE credits (id INTEGER, client INTEGER, start TEXT, amount BIGINT, settled TEXT)"))
        conn.execute(text("INSERT INTO credits VALUES (10, 1, '2024-01-01', 10000000, NULL)"))
        conn.execute(text("CREATE TABLE dues (credit INTEGER, due TEXT, paid TEXT, amount BIGINT)"))
        conn.execute(
            text("INSERT INTO dues VALUES (10, '2024-02-01', '2024-02-01', 2500000), (10, '2024-03-01', NULL, 2500000)")
        )
    engine.dispose()
    return url


QUERIES = {
    "customers": "SELECT id AS customer_id, opened AS created_at, dob AS birth_date FROM clients",
    "loans": "SELECT id AS loan_id, client AS customer_id, start AS disbursed_at, amount AS principal, "
    "settled AS closed_at FROM credits",
    "installments": "SELECT credit AS loan_id, due AS due_date, paid AS paid_date, amount AS amount_due FROM dues",
}


class TestReadSources:
    def test_a_bank_schema_is_mapped_onto_the_source_tables(self, core_banking: str) -> None:
        tables = read_sources(
            core_banking, QUERIES, ten_thousandths={"loans": ["principal"], "installments": ["amount_due"]}
        )
        assert tables["loans"].column("principal").to_pylist() == [Decimal("1000.0000")]
        assert tables["installments"].column("due_date").to_pylist() == [date(2024, 2, 1), date(2024, 3, 1)]
        features = compute_features(tables, as_of=date(2024, 4, 15)).to_pylist()[0]
        assert (features["loans_count"], features["current_days_past_due"]) == (1, 45)

    def test_a_broken_query_names_its_table(self, core_banking: str) -> None:
        with pytest.raises(ValidationError, match=r"queries\.loans"):
            read_sources(core_banking, {"loans": "SELECT * FROM nowhere"})
