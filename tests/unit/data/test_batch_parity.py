"""Jobs on both batch engines: point-in-time features and the pre-approval customer table, computed on the
local engine and on Spark over generated, seeded portfolios, must be equal row for row and to the cent."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from tests.portfolios import AS_OF, portfolio

from microlend.batch.analytics import write_partitioned
from microlend.batch.engine import BatchEngine, LocalEngine, ParquetDataset
from microlend.core.errors import ValidationError
from microlend.data.features import SOURCE_MONTH_OF, application_spine, compute_features
from microlend.marketing.preapproval import PreapprovalInputs, _customer_table
from microlend.marketing.synthetic import customer_base

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]

MONEY = pa.decimal128(18, 4)


@pytest.fixture(scope="module")
def sources() -> dict[str, pa.Table]:
    return portfolio(800, seed=19)


def assert_identical(local: pa.Table, spark: pa.Table) -> None:
    assert spark.schema == local.schema
    assert spark.num_rows == local.num_rows
    for name in local.column_names:
        assert spark.column(name).to_pylist() == local.column(name).to_pylist(), name
    assert spark.equals(local)


def assert_not_trivial(features: pa.Table) -> None:
    """Each feature takes several values, so agreement says something."""
    for name in features.column_names[2:]:
        assert len(pc.unique(features.column(name).drop_null())) > 1, name


class TestFeatures:
    def test_the_whole_portfolio_as_of_a_date(self, spark_engine: BatchEngine, sources: dict[str, pa.Table]) -> None:
        local = compute_features(sources, as_of=AS_OF, engine=LocalEngine())
        spark = compute_features(sources, as_of=AS_OF, engine=spark_engine)
        assert local.num_rows > 600
        assert_not_trivial(local)
        assert_identical(local, spark)
        assert spark.schema.metadata == local.schema.metadata

    def test_by_slices_of_the_spine_gives_the_same_rows_in_the_same_order(
            self, spark_engine: BatchEngine, sources: dict[str, pa.Table]) -> None:
        shuffled = dict(sources)  # customers out of id order: the order comes from the spine's slices
        order = np.random.default_rng(3).permutation(sources["customers"].num_rows)
        shuffled["customers"] = sources["customers"].take(pa.array(order))
        whole = compute_features(shuffled, as_of=AS_OF, engine=LocalEngine())
        local = compute_features(shuffled, as_of=AS_OF, engine=LocalEngine(), chunk_rows=500)
        seen: list[tuple[int, int | None]] = []
        spark = compute_features(shuffled, as_of=AS_OF, engine=spark_engine, chunk_rows=500,
                                 progress=lambda done, total: seen.append((done, total)))
        assert_identical(local, spark)
        assert local.column("customer_id").to_pylist() != whole.column("customer_id").to_pylist()
        assert sorted(local.to_pylist(), key=lambda r: r["customer_id"]) == whole.to_pylist()
        assert seen[-1][0] == seen[-1][1] == whole.num_rows and len(seen) == -(-whole.num_rows // 500)

    def test_a_training_spine_with_each_application_on_its_own_date(
            self, spark_engine: BatchEngine, sources: dict[str, pa.Table]) -> None:
        spine = application_spine(sources["applications"])
        local = compute_features(sources, spine=spine, engine=LocalEngine())
        spark = compute_features(sources, spine=spine, engine=spark_engine)
        assert len(set(local.column("as_of").to_pylist())) > 30
        assert_identical(local, spark)


class TestPreapprovalTable:
    def test_features_joined_with_the_profile(self, spark_engine: BatchEngine) -> None:
        tables, profile = customer_base(800, seed=23, as_of=date(2026, 3, 1))
        inputs = PreapprovalInputs(tables, profile)
        local = _customer_table(inputs, date(2026, 3, 1), LocalEngine())
        spark = _customer_table(inputs, date(2026, 3, 1), spark_engine)
        assert local.num_rows == 800 and "annual_turnover" in local.column_names
        assert local.schema.field("annual_turnover").type == MONEY
        assert isinstance(local.column("annual_turnover")[0].as_py(), Decimal)
        assert_identical(local, spark)


class TestSparkEngine:
    """The engine protocol on Spark, with portable SQL."""

    LOANS = pa.table({"customer_id": [1, 1, 2, 3, 3, 3], "principal": pa.array(
        [Decimal("100.10"), Decimal("200.20"), Decimal("50.05"), Decimal("10"), Decimal("20"), Decimal("30.01")],
        MONEY)})
    CUSTOMERS = pa.table({"customer_id": [4, 1, 3, 2]})
    PER_CUSTOMER = """
        SELECT c.customer_id, count(l.customer_id) AS loans,
            CAST(coalesce(sum(l.principal), 0) AS DECIMAL(18, 4)) AS principal
        FROM customers c LEFT JOIN loans l ON l.customer_id = c.customer_id
        GROUP BY c.customer_id ORDER BY c.customer_id
    """

    def test_is_a_batch_engine(self, spark_engine: BatchEngine) -> None:
        assert isinstance(spark_engine, BatchEngine) and spark_engine.name == "spark"

    def test_streams_batches_and_reports_progress(self, spark_engine: BatchEngine) -> None:
        seen: list[tuple[int, int | None]] = []
        big = pa.table({"x": list(range(2500))})
        batches = list(spark_engine.iter_sql("SELECT x FROM big ORDER BY x DESC", {"big": big}, batch_rows=1000,
                                             progress=lambda done, total: seen.append((done, total))))
        assert [b.num_rows for b in batches] == [1000, 1000, 500]
        assert batches[0].column(0)[0].as_py() == 2499
        assert seen == [(1000, 2500), (2000, 2500), (2500, 2500)]

    def test_partitioned_run_equals_the_local_engines_slice_by_slice(self, spark_engine: BatchEngine) -> None:
        tables = {"customers": self.CUSTOMERS, "loans": self.LOANS}
        local = LocalEngine().run_partitioned(self.PER_CUSTOMER, tables, partition="customers", chunk_rows=3)
        seen: list[tuple[int, int | None]] = []
        spark = spark_engine.run_partitioned(self.PER_CUSTOMER, tables, partition="customers", chunk_rows=3,
                                             progress=lambda done, total: seen.append((done, total)))
        assert spark.to_pydict() == local.to_pydict() == {
            "customer_id": [1, 3, 4, 2], "loans": [2, 3, 0, 1],
            "principal": [Decimal("300.3000"), Decimal("60.0100"), Decimal("0.0000"), Decimal("50.0500")]}
        assert seen == [(3, 4), (4, 4)]
        with pytest.raises(KeyError):
            spark_engine.run_partitioned(self.PER_CUSTOMER, tables, partition="spine", chunk_rows=3)
        with pytest.raises(ValueError, match="at least 1"):
            spark_engine.run_partitioned(self.PER_CUSTOMER, tables, partition="customers", chunk_rows=0)


def write_sources(out: Path, tables: dict[str, pa.Table]) -> dict[str, ParquetDataset]:
    """The source tables as Parquet partitioned by tenant and month, as a bank's export is."""
    for name, table in tables.items():
        write_partitioned(out, name, 7, [table], month_of=SOURCE_MONTH_OF[name])
    return {name: ParquetDataset(out / name, {}) for name in tables}


class TestParquetSources:
    """Jobs read their sources as Parquet files on either engine and get what the tables in memory give."""

    def test_features_of_the_whole_portfolio(self, batch_engine: BatchEngine, sources: dict[str, pa.Table],
                                             tmp_path: Path) -> None:
        files = write_sources(tmp_path, sources)
        assert len(list((tmp_path / "installments" / "tenant_id=7").iterdir())) > 24  # a folder per month
        expected = compute_features(sources, as_of=AS_OF, engine=LocalEngine())
        got = compute_features(files, as_of=AS_OF, engine=batch_engine)
        assert expected.num_rows > 600  # some customers are known only after the as-of date: not in the spine
        assert expected.num_rows < sources["customers"].num_rows
        assert_not_trivial(expected)
        assert_identical(expected, got)
        assert got.schema.metadata == expected.schema.metadata

    def test_features_by_slices_of_a_spine_read_from_the_files(
            self, batch_engine: BatchEngine, sources: dict[str, pa.Table], tmp_path: Path) -> None:
        files = write_sources(tmp_path, sources)
        expected = compute_features(sources, as_of=AS_OF, engine=LocalEngine())
        seen: list[tuple[int, int | None]] = []
        got = compute_features(files, as_of=AS_OF, engine=batch_engine, chunk_rows=300,
                               progress=lambda done, total: seen.append((done, total)))
        assert sorted(got.to_pylist(), key=lambda r: r["customer_id"]) == expected.to_pylist()
        assert seen[-1] == (expected.num_rows, expected.num_rows) and len(seen) == -(-expected.num_rows // 300)

    def test_files_in_other_types_that_read_as_the_documented_ones(
            self, batch_engine: BatchEngine, sources: dict[str, pa.Table], tmp_path: Path) -> None:
        """Narrower ids, wider decimals, dictionary strings and timestamps without a zone (read as UTC)."""

        def other(field: pa.Field) -> pa.DataType:
            if pa.types.is_timestamp(field.type):
                return pa.timestamp("us")
            if pa.types.is_decimal(field.type):
                return pa.decimal128(22, 4)
            if field.name in ("customer_id", "loan_id"):
                return pa.int32()
            return pa.dictionary(pa.int32(), pa.string()) if pa.types.is_string(field.type) else field.type

        retyped = {name: t.cast(pa.schema([pa.field(f.name, other(f)) for f in t.schema]))
                   for name, t in sources.items()}
        assert retyped["customers"].schema.field("created_at").type == pa.timestamp("us")
        files = write_sources(tmp_path, retyped)
        assert_identical(compute_features(sources, as_of=AS_OF, engine=LocalEngine()),
                         compute_features(files, as_of=AS_OF, engine=batch_engine))

    def test_files_whose_columns_do_not_read_as_the_documented_ones_are_named(
            self, sources: dict[str, pa.Table], tmp_path: Path) -> None:
        scores = sources["external_scores"]
        as_text = scores.set_column(3, "score", scores.column("score").cast(pa.string()))
        with pytest.raises(ValidationError, match=r"external_scores\.score is string in .*part-.*, which does not "
                                                  r"read as double"):
            compute_features({**sources, **write_sources(tmp_path, {"external_scores": as_text})}, as_of=AS_OF)
        without = sources["loans"].drop_columns(["principal"])
        with pytest.raises(ValidationError, match=r"loans\.principal is missing from the files under"):
            compute_features({**sources, **write_sources(tmp_path, {"loans": without})}, as_of=AS_OF)
        optional = sources["customers"].drop_columns(["industry"])  # an optional column reads as empty
        assert compute_features({**sources, **write_sources(tmp_path / "o", {"customers": optional})},
                                as_of=AS_OF).num_rows > 600
        with pytest.raises(ValidationError, match=r"tables: loans: no Parquet files under"):
            compute_features({**sources, "loans": ParquetDataset(tmp_path / "none", {})}, as_of=AS_OF)

    def test_some_sources_in_files_and_some_in_memory(self, batch_engine: BatchEngine,
                                                      sources: dict[str, pa.Table], tmp_path: Path) -> None:
        files = write_sources(tmp_path, {"installments": sources["installments"], "loans": sources["loans"]})
        expected = compute_features(sources, as_of=AS_OF, engine=LocalEngine())
        assert_identical(expected, compute_features({**sources, **files}, as_of=AS_OF, engine=batch_engine))

    def test_the_preapproval_table_with_the_profile_in_files(self, batch_engine: BatchEngine,
                                                             tmp_path: Path) -> None:
        tables, profile = customer_base(800, seed=23, as_of=date(2026, 3, 1))
        files = write_sources(tmp_path, tables)
        (tmp_path / "profile").mkdir()
        pq.write_table(profile, tmp_path / "profile" / "part-0.parquet")  # a folder without partitions reads too
        expected = _customer_table(PreapprovalInputs(tables, profile), date(2026, 3, 1), LocalEngine())
        got = _customer_table(PreapprovalInputs(files, ParquetDataset.of_schema(tmp_path / "profile", profile.schema)),
                              date(2026, 3, 1), batch_engine)
        assert expected.num_rows == 800 and "credit_history" in expected.column_names
        assert_identical(expected, got)


class TestParquetDatasetOnAnEngine:
    def test_declared_types_quoted_names_and_missing_columns(self, batch_engine: BatchEngine,
                                                             tmp_path: Path) -> None:
        lines = pa.table({"customer_id": pa.array([2, 1, 2], pa.int32()), "limit": pa.array(
            [Decimal("10.5"), Decimal("7.25"), Decimal("1")], pa.decimal128(10, 2)),
            "as_of": pa.array([date(2024, 1, 31), date(2024, 2, 29), date(2024, 2, 1)])})
        write_partitioned(tmp_path, "lines", 3, [lines], month_of="as_of")
        dataset = ParquetDataset(tmp_path / "lines", {"customer_id": "BIGINT", "limit": "DECIMAL(18,4)",
                                                      "month": "VARCHAR", "note": "VARCHAR"})
        got = batch_engine.run_sql(
            'SELECT customer_id, CAST(sum("limit") AS DECIMAL(18,4)) AS total, min(month) AS first_month, '
            "count(note) AS notes FROM lines GROUP BY customer_id ORDER BY customer_id", {"lines": dataset})
        assert got.to_pydict() == {"customer_id": [1, 2], "total": [Decimal("7.2500"), Decimal("11.5000")],
                                   "first_month": ["2024-02", "2024-01"], "notes": [0, 0]}
        assert got.schema.field("customer_id").type == pa.int64()

    def test_a_folder_without_files_is_named(self, batch_engine: BatchEngine, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError, match="lines: no Parquet files"):
            batch_engine.run_sql("SELECT 1 AS x FROM lines", {"lines": ParquetDataset(tmp_path, {"x": "BIGINT"})})

    def test_only_a_table_in_memory_is_sliced(self, batch_engine: BatchEngine, tmp_path: Path) -> None:
        write_partitioned(tmp_path, "c", 3, [pa.table({"customer_id": [1], "day": [date(2024, 1, 1)]})],
                          month_of="day")
        with pytest.raises(TypeError, match="Arrow table"):
            batch_engine.run_partitioned("SELECT * FROM c", {"c": ParquetDataset(tmp_path / "c", {})},
                                         partition="c", chunk_rows=10)
