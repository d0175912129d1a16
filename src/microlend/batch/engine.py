"""Batch engines (批量计算引擎): run set-based SQL over whole portfolios held as Arrow tables.

`BatchEngine` is the one interface portfolio jobs (features, pre-approval, batch scoring) are written
against. `LocalEngine` runs on DuckDB in this process and is the default; `SparkEngine`
(`microlend.batch.spark`, needs the `spark` extra and Java 17) runs the same SQL on Apache Spark, locally
or on a cluster. `engine_named("local" | "spark")` picks one by name (the CLI's `--engine`).

Jobs write their SQL in the portable dialect of `microlend.batch.dialect` (the common part of DuckDB and
Spark SQL plus a few `ml_*` functions each engine defines), choose an engine by taking a `BatchEngine`
argument, never by importing a concrete one, and give identical results on every engine: the parity tests
run each job on both and compare to the cent, row for row.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import duckdb
import pyarrow as pa

from microlend.batch.dialect import PORTABLE_FUNCTIONS
from microlend.batch.progress import Progress as Progress  # re-exported: jobs import it from here
from microlend.batch.sources import ParquetDataset as ParquetDataset  # re-exported: jobs import it from here
from microlend.batch.sources import Source, parquet_glob, view_select


@runtime_checkable
class BatchEngine(Protocol):
    """Runs SQL over named inputs, whole or chunk by chunk: Arrow tables, or Parquet datasets the engine reads
    itself (a cluster in parallel, from the files) and that a query sees with their declared column types."""

    name: str

    def run_sql(self, sql: str, tables: Mapping[str, Source], params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run one query over the given tables (available by their mapping keys) and return the result."""
        ...

    def iter_sql(
        self,
        sql: str,
        tables: Mapping[str, Source],
        *,
        batch_rows: int = 100_000,
        params: Mapping[str, Any] | None = None,
        progress: Progress | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Stream a query's result in record batches of at most `batch_rows`, reporting progress."""
        ...

    def run_partitioned(
        self,
        sql: str,
        tables: Mapping[str, Source],
        *,
        partition: str,
        chunk_rows: int,
        params: Mapping[str, Any] | None = None,
        progress: Progress | None = None,
    ) -> pa.Table:
        """Run a query once per slice of the `partition` table (an Arrow table; the others whole) and concatenate.

        For queries whose result rows each depend on one row of the partition table (e.g. features
        per customer), this bounds memory while giving the same result as one run."""
        ...


class LocalEngine:
    """DuckDB in this process over Arrow tables (zero-copy); the default engine."""

    name = "local"

    def __init__(self, *, threads: int | None = None, memory_limit: str | None = None) -> None:
        self._threads = threads
        self._memory_limit = memory_limit

    def _connect(self, tables: Mapping[str, Source]) -> duckdb.DuckDBPyConnection:
        conn = duckdb.connect(":memory:")
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("SET default_null_order = 'nulls_first_on_asc_last_on_desc'")  # Spark's rule
        for function in PORTABLE_FUNCTIONS:
            conn.execute(function.duckdb_ddl())
        if self._threads is not None:
            conn.execute(f"SET threads = {int(self._threads)}")
        if self._memory_limit is not None:
            conn.execute("SET memory_limit = ?", [self._memory_limit])
        for table_name, table in tables.items():
            if isinstance(table, ParquetDataset):
                _parquet_view(conn, table_name, table)
            else:
                conn.register(table_name, table)
        return conn

    def run_sql(self, sql: str, tables: Mapping[str, Source], params: Mapping[str, Any] | None = None) -> pa.Table:
        conn = self._connect(tables)
        try:
            result: pa.Table = conn.sql(sql, params=dict(params) if params else None).to_arrow_table()
            return result
        finally:
            conn.close()

    def iter_sql(
        self,
        sql: str,
        tables: Mapping[str, Source],
        *,
        batch_rows: int = 100_000,
        params: Mapping[str, Any] | None = None,
        progress: Progress | None = None,
    ) -> Iterator[pa.RecordBatch]:
        conn = self._connect(tables)
        try:
            reader = conn.sql(sql, params=dict(params) if params else None).to_arrow_reader(batch_rows)
            if reader is None:
                return
            done = 0
            for batch in reader:
                done += batch.num_rows
                if progress is not None:
                    progress(done, None)
                yield batch
        finally:
            conn.close()

    def run_partitioned(
        self,
        sql: str,
        tables: Mapping[str, Source],
        *,
        partition: str,
        chunk_rows: int,
        params: Mapping[str, Any] | None = None,
        progress: Progress | None = None,
    ) -> pa.Table:
        if partition not in tables:
            raise KeyError(f"partition table '{partition}' is not among the tables")
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be at least 1")
        whole = tables[partition]
        if not isinstance(whole, pa.Table):
            raise TypeError(f"partition table '{partition}' must be an Arrow table to be sliced")
        total = whole.num_rows
        parts: list[pa.Table] = []
        for start in range(0, max(total, 1), chunk_rows):
            chunk = dict(tables)
            chunk[partition] = whole.slice(start, chunk_rows)
            parts.append(self.run_sql(sql, chunk, params))
            if progress is not None:
                progress(min(start + chunk_rows, total), total)
        return pa.concat_tables(parts) if len(parts) > 1 else parts[0]


def _parquet_view(conn: duckdb.DuckDBPyConnection, name: str, dataset: ParquetDataset) -> None:
    """A view over a dataset's files with its declared columns and types."""
    if not dataset.exists():
        raise FileNotFoundError(f"{name}: no Parquet files under {dataset.path}")
    files = parquet_glob(dataset)
    present = {str(r[0]) for r in conn.execute(f"DESCRIBE SELECT * FROM {files}").fetchall()}
    conn.execute(f'CREATE VIEW "{name}" AS SELECT {view_select(dataset, present, spark=False)} FROM {files}')


ENGINE_NAMES = ("local", "spark")


class EngineUnavailable(ValueError):
    """The engine asked for does not exist or cannot run here (e.g. Spark without pyspark or Java)."""


def engine_named(name: str) -> BatchEngine:
    """The engine called `name`: "local" (DuckDB here) or "spark" (`MICROLEND_SPARK_MASTER`, default
    `local[*]`, or the Spark Connect server at `MICROLEND_SPARK_REMOTE`). The Spark session starts on
    first use; a missing pyspark or Java is an `EngineUnavailable` naming what to install."""
    if name == "local":
        return LocalEngine()
    if name == "spark":
        from microlend.batch.spark import SparkEngine, spark_unavailable  # imports pyspark only when used

        problem = spark_unavailable()
        if problem:
            raise EngineUnavailable(f"engine: {problem}")
        return SparkEngine()
    raise EngineUnavailable(f"engine: '{name}' is not an engine; choose {' or '.join(ENGINE_NAMES)}")
