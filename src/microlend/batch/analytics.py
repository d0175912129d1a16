"""Analytical queries on either engine (分析作业的引擎): the same SQL over the same inputs, run by DuckDB in
this process (`local`, the default) or by Spark SQL (`spark`), returning an Arrow table.

An input is an Arrow table (small books, tests) or a `ParquetDataset`: a folder written by
`write_partitioned` with Hive-style partitions `tenant_id=<id>/month=YYYY-MM/`, which DuckDB reads with
`read_parquet(..., hive_partitioning = true)` and Spark with `spark.read.parquet` (each reading only the
partitions a query's filters keep). Every input is exposed to the query under its name with the declared
column types, so both engines see the same schema whatever the files' physical types.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from microlend.batch.sources import ParquetDataset as ParquetDataset  # re-exported: jobs import it from here
from microlend.batch.sources import Source as Source
from microlend.batch.sources import parquet_glob, spark_type

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: The engines an analytical job runs on.
ENGINES = ("local", "spark")
#: The partition columns of every exported dataset, outermost first.
PARTITIONS = pa.schema([("tenant_id", pa.int64()), ("month", pa.string())])


class BatchInputError(ValueError):
    """An input a job cannot use (an unknown engine, a folder without the dataset), said in the user's terms."""



def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise BatchInputError(f"engine: '{engine}' is not one of {', '.join(ENGINES)}")
    return engine


def _select_list(columns: Mapping[str, str], present: set[str], spark: bool) -> str:
    """The declared columns with their declared types; one the files do not hold reads as NULL."""
    return ", ".join(f"CAST({name if name in present else 'NULL'} AS {spark_type(t) if spark else t}) AS {name}"
                     for name, t in columns.items())


def run_local(sql: str, sources: Mapping[str, Source], *, threads: int | None = None) -> pa.Table:
    """The query on DuckDB in this process (Arrow inputs zero-copy, Parquet read in place)."""
    conn = duckdb.connect(":memory:")
    try:
        conn.execute("SET TimeZone = 'UTC'")
        if threads is not None:
            conn.execute(f"SET threads = {int(threads)}")
        for name, source in sources.items():
            if isinstance(source, ParquetDataset):
                if not source.exists():
                    raise BatchInputError(f"{name}: no Parquet files under {source.path}")
                files = parquet_glob(source)
                present = {str(r[0]) for r in conn.execute(f"DESCRIBE SELECT * FROM {files}").fetchall()}
                conn.execute(f"CREATE VIEW {name} AS SELECT {_select_list(source.columns, present, False)} "
                             f"FROM {files}")
            else:
                conn.register(name, source)
        result: pa.Table = conn.sql(sql).to_arrow_table()
        return result
    finally:
        conn.close()


def run_spark(sql: str, sources: Mapping[str, Source], spark: SparkSession) -> pa.Table:
    """The query on Spark SQL: each input a temporary view (Arrow tables sent over, Parquet read by Spark)."""
    for name, source in sources.items():
        if isinstance(source, ParquetDataset):
            if not source.exists():
                raise BatchInputError(f"{name}: no Parquet files under {source.path}")
            frame = spark.read.option("basePath", str(source.path)).option("mergeSchema", "true") \
                .parquet(str(source.path))
            frame.createOrReplaceTempView(f"{name}__files")
            spark.sql(f"SELECT {_select_list(source.columns, set(frame.columns), True)} FROM {name}__files") \
                .createOrReplaceTempView(name)
        else:
            spark.createDataFrame(source).createOrReplaceTempView(name)
    result: pa.Table = spark.sql(sql).toArrow()
    return result


def run_query(engine: str, sql: str, sources: Mapping[str, Source], *, spark: SparkSession | None = None,
              threads: int | None = None) -> pa.Table:
    """One query on the chosen engine; `spark` defaults to the process's session (see `spark_session`)."""
    if check_engine(engine) == "local":
        return run_local(sql, sources, threads=threads)
    if spark is None:
        from microlend.batch.spark_session import get_spark

        spark = get_spark()
    return run_spark(sql, sources, spark)


# --- writing -----------------------------------------------------------------------------------------------------

#: Called after each chunk written with (rows written so far, the dataset's name).
WriteProgress = Callable[[int, str], None]


def month_column(table: pa.Table, date_column: str) -> pa.Array:
    """'YYYY-MM' of a date (or timestamp) column, computed by Arrow over the whole chunk."""
    column = table.column(date_column)
    if pa.types.is_timestamp(column.type):
        column = pc.cast(column, pa.timestamp(column.type.unit, tz="UTC"))
    return pc.strftime(column, format="%Y-%m")


def clear_tenant(out: Path, name: str, tenant_id: int) -> None:
    """Remove one bank's partitions of a dataset before it is written again (other banks' stay)."""
    target = out / name / f"tenant_id={int(tenant_id)}"
    if target.exists():
        shutil.rmtree(target)


def write_partitioned(out: Path, name: str, tenant_id: int, chunks: Iterable[pa.Table], *, month_of: str,
                      progress: WriteProgress | None = None) -> int:
    """Write a dataset's chunks under `out/name/tenant_id=<id>/month=YYYY-MM/` (month from the `month_of`
    column), replacing that bank's earlier export; returns the rows written."""
    clear_tenant(out, name, tenant_id)
    written = 0
    for i, chunk in enumerate(chunks):
        if chunk.num_rows == 0:
            continue
        table = chunk.drop_columns([c for c in ("tenant_id", "month") if c in chunk.column_names])
        table = table.append_column("tenant_id", pa.repeat(pa.scalar(int(tenant_id), pa.int64()), chunk.num_rows))
        table = table.append_column("month", month_column(table, month_of))
        ds.write_dataset(table, out / name, format="parquet",
                         partitioning=ds.partitioning(PARTITIONS, flavor="hive"),
                         basename_template=f"part-{i:05d}-{{i}}.parquet",
                         existing_data_behavior="overwrite_or_ignore")
        written += chunk.num_rows
        if progress is not None:
            progress(written, name)
    return written


def arrow_chunk(rows: list[Any], schema: pa.Schema) -> pa.Table:
    """A fetched block of rows as an Arrow table of the given schema (column by column, not row by row)."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    return pa.Table.from_arrays([pa.array(list(col), type=f.type) for col, f in zip(columns, schema, strict=True)],
                                schema=schema)
