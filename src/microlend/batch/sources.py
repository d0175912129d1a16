"""Inputs held as Parquet files (Parquet输入): a folder of Hive-partitioned Parquet files that every engine reads
in place, DuckDB with `read_parquet(..., hive_partitioning = true)` and Spark with `spark.read.parquet`, so a
cluster reads the files in parallel instead of receiving the rows from this process.

Datasets are written `name/tenant_id=<id>/month=YYYY-MM/part-*.parquet` (see
`microlend.batch.analytics.write_partitioned`). A query sees a dataset as a view with the declared columns in
the declared types, whatever the files' physical types; a declared column the files do not hold reads as NULL.
Types are declared in DuckDB's spelling (`BIGINT`, `VARCHAR`, `DECIMAL(18,4)`, `TIMESTAMPTZ`), which
`spark_type` turns into Spark's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class ParquetDataset:
    """A Hive-partitioned Parquet folder and the SQL type of each column a query may read (partition columns
    included), e.g. {"tenant_id": "BIGINT", "month": "VARCHAR", "due_date": "DATE"}."""

    path: Path
    columns: Mapping[str, str]

    def exists(self) -> bool:
        return first_parquet(self.path) is not None

    @classmethod
    def of_schema(cls, path: Path, schema: pa.Schema) -> ParquetDataset:
        """The dataset at `path` declared with the columns and types of an Arrow schema."""
        columns: dict[str, str] = {}
        for f in schema:
            try:
                columns[f.name] = sql_type(f.type)
            except ValueError as exc:
                raise ValueError(f"column {f.name}: {exc}") from None
        return cls(path, columns)

    @classmethod
    def of_files(cls, path: Path) -> ParquetDataset:
        """The dataset at `path` declared with its files' own columns and types (those of the first file: the
        partition keys, such as tenant_id and month, are not a job's columns). FileNotFoundError without any
        Parquet file; a file that is not Parquet or a column of no portable type is a ValueError."""
        first = first_parquet(path)
        if first is None:
            raise FileNotFoundError(f"no Parquet files under {path}")
        return cls.of_schema(path, pq.read_schema(first))

    def without(self, names: set[str]) -> ParquetDataset:
        """The same files with some columns left out of the view."""
        return ParquetDataset(self.path, {k: v for k, v in self.columns.items() if k not in names})


def first_parquet(path: Path) -> Path | None:
    """The first Parquet file under the folder `path` (at any depth: partitions are sub-folders), or None when
    `path` is not a folder or holds none."""
    return next(path.rglob("*.parquet"), None) if path.is_dir() else None


#: An input of a query: an Arrow table in this process, or Parquet files every engine reads itself.
Source: TypeAlias = pa.Table | ParquetDataset

_SPARK_TYPES = {"VARCHAR": "STRING", "BIGINT": "BIGINT", "INTEGER": "INT", "DATE": "DATE", "DOUBLE": "DOUBLE",
                "TIMESTAMP": "TIMESTAMP", "TIMESTAMPTZ": "TIMESTAMP", "BOOLEAN": "BOOLEAN"}


def spark_type(sql_type: str) -> str:
    """A declared type in Spark SQL's spelling (Spark's TIMESTAMP is an instant, DuckDB's TIMESTAMPTZ)."""
    return _SPARK_TYPES.get(sql_type.upper(), sql_type)


def sql_type(arrow_type: pa.DataType) -> str:
    """The declared (DuckDB) type a column of this Arrow type reads as; dictionaries as their values."""
    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    for test, name in ((pa.types.is_int64, "BIGINT"), (pa.types.is_int32, "INTEGER"),
                       (pa.types.is_float64, "DOUBLE"), (pa.types.is_boolean, "BOOLEAN"),
                       (pa.types.is_date32, "DATE")):
        if test(t):
            return name
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "VARCHAR"
    raise ValueError(f"no portable SQL type for the Arrow type {arrow_type}")


def view_select(dataset: ParquetDataset, present: set[str], *, spark: bool) -> str:
    """The select list of a dataset's view: each declared column, double-quoted, cast to its declared type."""
    return ", ".join(
        f'CAST({quoted(name) if name in present else "NULL"} AS {spark_type(t) if spark else t}) AS {quoted(name)}'
        for name, t in dataset.columns.items())


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def parquet_glob(dataset: ParquetDataset) -> str:
    """The files of a dataset as a DuckDB `read_parquet` call over every partition."""
    glob = str(dataset.path / "**" / "*.parquet").replace("'", "''")
    return f"read_parquet('{glob}', hive_partitioning = true, union_by_name = true)"
