"""The portable SQL dialect: each rule of `microlend.batch.dialect` run on the local engine and on Spark.

Every test states the answer both engines must give; where the two dialects really differ, a test pins the
difference so that the rule avoiding it stays justified."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from microlend.batch.engine import BatchEngine

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]

MONEY = pa.decimal128(18, 4)


def one_row(engine: BatchEngine, sql: str, tables: dict[str, pa.Table] | None = None) -> dict[str, Any]:
    out = engine.run_sql(sql, tables or {"t": pa.table({"k": [1]})})
    assert out.num_rows == 1
    return out.to_pylist()[0]


class TestMoney:
    def test_decimal_columns_come_back_as_the_same_decimals(self, batch_engine: BatchEngine) -> None:
        amounts = pa.table({"id": [1, 2, 3], "amount": pa.array(
            [Decimal("0.0001"), Decimal("99999999999999.9999"), None], MONEY)})
        out = batch_engine.run_sql("SELECT id, amount FROM t ORDER BY id", {"t": amounts})
        assert out.schema.field("amount").type == MONEY
        assert out.column("amount").to_pylist() == [Decimal("0.0001"), Decimal("99999999999999.9999"), None]

    def test_a_product_cast_to_cents_rounds_half_up_on_both_sides_of_zero(self, batch_engine: BatchEngine) -> None:
        t = pa.table({"id": [1, 2, 3, 4], "amount": pa.array(
            [Decimal("1234.5650"), Decimal("-1234.5650"), Decimal("1234.5649"), Decimal("0.0050")], MONEY)})
        out = batch_engine.run_sql(
            "SELECT id, CAST(amount * CAST(1 AS DECIMAL(18, 4)) AS DECIMAL(18, 2)) AS cents FROM t ORDER BY id",
            {"t": t})
        assert out.schema.field("cents").type == pa.decimal128(18, 2)
        assert out.column("cents").to_pylist() == [
            Decimal("1234.57"), Decimal("-1234.57"), Decimal("1234.56"), Decimal("0.01")]

    def test_round_of_a_decimal_is_half_up(self, batch_engine: BatchEngine) -> None:
        row = one_row(batch_engine, "SELECT CAST(round(CAST('2.345' AS DECIMAL(10, 3)), 2) AS DECIMAL(10, 2)) AS up, "
                                    "CAST(round(CAST('-2.345' AS DECIMAL(10, 3)), 2) AS DECIMAL(10, 2)) AS down, "
                                    "CAST(round(CAST('2.5' AS DECIMAL(10, 1)), 0) AS DECIMAL(10, 0)) AS whole FROM t")
        assert row == {"up": Decimal("2.35"), "down": Decimal("-2.35"), "whole": Decimal("3")}

    def test_interest_on_many_loans_sums_exactly(self, batch_engine: BatchEngine) -> None:
        # 10,000 balances of 0.0333 at a daily rate of 0.0005: every product exact, the sum exact
        t = pa.table({"balance": pa.array([Decimal("1000.0333")] * 10_000, MONEY)})
        row = one_row(batch_engine, "SELECT CAST(sum(balance * CAST('0.0005' AS DECIMAL(18, 6))) AS DECIMAL(38, 10)) "
                                    "AS interest, CAST(sum(balance) AS DECIMAL(38, 4)) AS total FROM t", {"t": t})
        assert row == {"interest": Decimal("5000.1665000000"), "total": Decimal("10000333.0000")}

    def test_a_raw_decimal_product_is_typed_differently_so_results_cast(self, batch_engine: BatchEngine) -> None:
        t = pa.table({"a": pa.array([Decimal("1.1000")], MONEY)})
        out = batch_engine.run_sql("SELECT a * a AS raw, CAST(a * a AS DECIMAL(18, 8)) AS typed FROM t", {"t": t})
        assert out.schema.field("typed").type == pa.decimal128(18, 8)
        raw = out.schema.field("raw").type
        assert raw == (pa.decimal128(18, 8) if batch_engine.name == "local" else pa.decimal128(37, 8))
        assert out.column("raw").to_pylist() == out.column("typed").to_pylist() == [Decimal("1.21000000")]

    def test_decimal_division_is_a_double_on_duckdb_and_a_decimal_on_spark(self, batch_engine: BatchEngine) -> None:
        # the reason money is never divided in SQL
        t = pa.table({"a": pa.array([Decimal("1")], MONEY), "b": pa.array([Decimal("3")], MONEY)})
        out = batch_engine.run_sql("SELECT a / b AS q FROM t", {"t": t})
        kind = out.schema.field("q").type
        assert pa.types.is_floating(kind) if batch_engine.name == "local" else pa.types.is_decimal(kind)


class TestNumbers:
    def test_integer_division_is_towards_zero_with_ml_div(self, batch_engine: BatchEngine) -> None:
        row = one_row(batch_engine, "SELECT ml_div(7, 2) AS a, ml_div(-7, 2) AS b, ml_div(7, -2) AS c, "
                                    "ml_div(-7, -2) AS d, ml_div(6, 3) AS e, 7 / 2 AS f FROM t")
        assert row == {"a": 3, "b": -3, "c": -3, "d": 3, "e": 2, "f": 3.5}

    def test_a_double_cast_to_an_integer_rounds_on_duckdb_and_truncates_on_spark(
            self, batch_engine: BatchEngine) -> None:
        row = one_row(batch_engine, "SELECT CAST(3.5E0 AS BIGINT) AS raw, CAST(floor(3.5E0) AS BIGINT) AS floored, "
                                    "CAST(round(2.5E0) AS BIGINT) AS rounded FROM t")
        assert row["raw"] == (4 if batch_engine.name == "local" else 3)
        assert (row["floored"], row["rounded"]) == (3, 3)

    def test_fractions_from_double_literals_agree(self, batch_engine: BatchEngine) -> None:
        t = pa.table({"x": [1, 0, 0]})
        row = one_row(batch_engine, "SELECT avg(CASE WHEN x = 1 THEN CAST(1 AS DOUBLE) ELSE CAST(0 AS DOUBLE) END) "
                                    "AS share, avg(CASE WHEN x = 1 THEN 1.0 ELSE 0.0 END) AS decimal_share FROM t",
                      {"t": t})
        assert row["share"] == 1 / 3
        # a decimal literal's average is rounded to a few places on Spark, hence CAST(1 AS DOUBLE)
        assert row["decimal_share"] == (1 / 3 if batch_engine.name == "local" else Decimal("0.33333"))


class TestDates:
    def test_day_month_and_year_differences(self, batch_engine: BatchEngine) -> None:
        t = pa.table({
            "id": [1, 2, 3, 4, 5, 6, 7, 8],
            "a": [date(2024, 1, 31), date(2024, 1, 31), date(2024, 2, 29), date(2000, 2, 29), date(2000, 2, 29),
                  date(2024, 3, 10), date(2000, 2, 29), date(2023, 1, 30)],
            "b": [date(2024, 2, 29), date(2024, 3, 31), date(2024, 3, 28), date(2024, 2, 28), date(2024, 2, 29),
                  date(2024, 3, 1), date(2023, 2, 28), date(2023, 2, 27)],
        })
        out = batch_engine.run_sql("SELECT id, ml_day_diff(a, b) AS days, ml_month_diff(a, b) AS months, "
                                   "ml_year_diff(a, b) AS years FROM t ORDER BY id", {"t": t})
        assert out.column("days").to_pylist() == [29, 60, 28, 8765, 8766, -9, 8400, 28]
        assert out.column("months").to_pylist()[:5] + out.column("months").to_pylist()[6:] == [
            1, 2, 0, 287, 288, 276, 0]
        assert out.column("years").to_pylist()[:5] + out.column("years").to_pylist()[6:] == [0, 0, 0, 23, 24, 23, 0]
        assert {f.type for f in out.schema if f.name != "id"} == {pa.int64()}

    def test_months_back_clamp_to_the_month_end(self, batch_engine: BatchEngine) -> None:
        t = pa.table({"d": [date(2024, 5, 31)]})
        row = one_row(batch_engine, "SELECT CAST(d - INTERVAL 3 MONTH AS DATE) AS back3, "
                                    "CAST(d - INTERVAL 12 MONTH AS DATE) AS back12 FROM t", {"t": t})
        assert row == {"back3": date(2024, 2, 29), "back12": date(2023, 5, 31)}

    def test_the_day_end_compares_utc_event_times_with_a_date(self, batch_engine: BatchEngine) -> None:
        utc = pa.timestamp("us", tz="UTC")
        t = pa.table({"id": [1, 2, 3], "seen": pa.array([datetime(2024, 6, 30, 23, 59, 59, tzinfo=UTC),
                                                        datetime(2024, 7, 1, 0, 0, tzinfo=UTC),
                                                        datetime(2024, 4, 1, 0, 0, tzinfo=UTC)], utc)})
        out = batch_engine.run_sql(
            "SELECT id, seen < ml_day_end(DATE '2024-06-30') AS by_day_end, "
            "seen >= ml_day_end(DATE '2024-06-30') - INTERVAL 90 DAY AS in_90d, CAST(seen AS DATE) AS day "
            "FROM t ORDER BY id", {"t": t})
        assert out.column("by_day_end").to_pylist() == [True, False, True]
        assert out.column("in_90d").to_pylist() == [True, True, False]
        assert out.column("day").to_pylist() == [date(2024, 6, 30), date(2024, 7, 1), date(2024, 4, 1)]
        back = batch_engine.run_sql("SELECT seen FROM t ORDER BY id", {"t": t})
        assert back.schema.field("seen").type == utc and back.column("seen").to_pylist()[0].tzinfo is not None


class TestOrderAndNames:
    def test_nulls_sort_first_ascending_and_last_descending_on_both(self, batch_engine: BatchEngine) -> None:
        t = pa.table({"x": [2, None, 1]})
        up = batch_engine.run_sql("SELECT x FROM t ORDER BY x", {"t": t}).column("x").to_pylist()
        down = batch_engine.run_sql("SELECT x FROM t ORDER BY x DESC", {"t": t}).column("x").to_pylist()
        last = batch_engine.run_sql("SELECT x FROM t ORDER BY x NULLS LAST", {"t": t}).column("x").to_pylist()
        assert (up, down, last) == ([None, 1, 2], [2, 1, None], [1, 2, None])

    def test_double_quoted_identifiers_and_single_quoted_strings(self, batch_engine: BatchEngine) -> None:
        t = pa.table({"limit": [5], "source": ["bureau"]})
        row = one_row(batch_engine, 'SELECT c."limit" AS "limit", c.source = \'bureau\' AS b FROM t c', {"t": t})
        assert row == {"limit": 5, "b": True}

    def test_max_by_takes_the_value_at_the_newest_key(self, batch_engine: BatchEngine) -> None:
        t = pa.table({"g": [1, 1, 2], "v": [10.0, 20.0, 30.0], "seen": [date(2024, 1, 2), date(2024, 1, 1),
                                                                   date(2024, 1, 1)]})
        out = batch_engine.run_sql("SELECT g, max_by(v, seen) AS v FROM t GROUP BY g ORDER BY g", {"t": t})
        assert out.column("v").to_pylist() == [10.0, 30.0]

    def test_named_parameters(self, batch_engine: BatchEngine) -> None:
        t = pa.table({"x": [1, 2, 3]})
        out = batch_engine.run_sql("SELECT x FROM t WHERE x >= $low ORDER BY x", {"t": t}, params={"low": 2})
        assert out.column("x").to_pylist() == [2, 3]

    def test_strings_booleans_and_empty_tables_keep_their_types(self, batch_engine: BatchEngine) -> None:
        t = pa.table({"s": pa.array(["a", None], pa.large_string()).dictionary_encode(), "b": [True, None]})
        out = batch_engine.run_sql("SELECT s, b FROM t WHERE s IS NOT NULL OR b IS NULL ORDER BY s", {"t": t})
        assert out.to_pylist() == [{"s": None, "b": None}, {"s": "a", "b": True}]
        empty = pa.table({"x": pa.array([], pa.int64()), "m": pa.array([], MONEY)})
        none = batch_engine.run_sql("SELECT x, m FROM t", {"t": empty})
        assert none.num_rows == 0 and none.schema.field("m").type == MONEY
