"""The Spark engine (Spark批量引擎): the same portable SQL over the same Arrow tables, on Apache Spark.

Where it runs: `MICROLEND_SPARK_MASTER` (default `local[*]`: this machine's cores, in a JVM started here;
`spark://host:7077`, `yarn` or `k8s://...` on a cluster; under `spark-submit`, its `--master`), or a Spark
Connect server when `MICROLEND_SPARK_REMOTE=sc://host:15002` is set (then no local JVM is needed; install
`pyspark[connect]`).
Needs the `spark` extra (pyspark 4.1) and Java 17 for local and classic cluster sessions.

Every session runs in UTC with ANSI SQL and double-quoted identifiers, and each engine defines the
portable `ml_*` functions of `microlend.batch.dialect`; input tables become temporary views by their
mapping names, results come back as Arrow tables with the columns' declared types (every field
nullable, as DuckDB reports them), so a job's result equals the local engine's row for row.

This module imports pyspark only inside functions: `microlend.batch` works without it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from microlend.batch.dialect import PORTABLE_FUNCTIONS
from microlend.batch.progress import Progress
from microlend.batch.sources import ParquetDataset, Source, view_select

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

MASTER_ENV = "MICROLEND_SPARK_MASTER"
REMOTE_ENV = "MICROLEND_SPARK_REMOTE"
SHUFFLE_ENV = "MICROLEND_SPARK_SHUFFLE_PARTITIONS"
DRIVER_MEMORY_ENV = "MICROLEND_SPARK_DRIVER_MEMORY"
DEFAULT_MASTER = "local[*]"

#: SQL settings every session gets (also on Spark Connect, where they are set per session).
SESSION_SQL_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "true",
    "spark.sql.ansi.doubleQuotedIdentifiers": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}

_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = stderr
appender.console.type = Console
appender.console.name = stderr
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
"""

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def _java_found() -> bool:
    home = os.environ.get("JAVA_HOME")
    if home and os.access(Path(home) / "bin" / "java", os.X_OK):
        return True
    return shutil.which("java") is not None


def spark_unavailable(remote: str | None = None) -> str | None:
    """Why a Spark session cannot start here (what to install), or None when it can."""
    if importlib.util.find_spec("pyspark") is None:
        return "the Spark engine needs pyspark: pip install 'microlend[spark]' (pyspark==4.1.4)"
    remote = remote if remote is not None else os.environ.get(REMOTE_ENV)
    if not remote and os.environ.get(MASTER_ENV, "").startswith("sc://"):
        remote = os.environ[MASTER_ENV]
    if remote:
        if not remote.startswith("sc://"):
            return f"{REMOTE_ENV}: '{remote}' is not a Spark Connect URL (sc://host:15002)"
        if importlib.util.find_spec("grpc") is None:
            return "Spark Connect needs pyspark's connect extra: pip install 'pyspark[connect]==4.1.4'"
        return None
    if not _java_found():
        return ("the Spark engine needs Java 17 to run Spark here: install Debian's openjdk-17-jre-headless "
                f"(or set JAVA_HOME), or use a Spark Connect server ({REMOTE_ENV}=sc://host:15002)")
    return None


def _log4j_file() -> Path:
    path = Path(tempfile.gettempdir()) / "microlend-spark-log4j2.properties"
    if not path.exists() or path.read_text() != _LOG4J:
        path.write_text(_LOG4J)
    return path


def _local_cores(master: str) -> int:
    match = re.fullmatch(r"local\[(\d+)(?:,\d+)?\]", master)
    if match:
        return int(match.group(1))
    return os.cpu_count() or 1


def spark_session(
    *,
    master: str | None = None,
    remote: str | None = None,
    app_name: str = "microlend-batch",
    shuffle_partitions: int | None = None,
    driver_memory: str | None = None,
    config: Mapping[str, str] | None = None,
) -> SparkSession:
    """A Spark session for batch jobs (an existing one in this process is reused and re-configured).

    Local masters get few shuffle partitions (2 per core) so small jobs are not split into 200 tasks;
    on a cluster the default applies unless `MICROLEND_SPARK_SHUFFLE_PARTITIONS` says otherwise. `config`
    adds settings for a session started here (e.g. `spark.driver.maxResultSize` for large results); its
    `spark.sql.*` settings also apply to a session reused or reached through Spark Connect."""
    from pyspark.sql import SparkSession

    remote = remote if remote is not None else os.environ.get(REMOTE_ENV)
    if not remote and (master or os.environ.get(MASTER_ENV) or "").startswith("sc://"):
        remote = master or os.environ.get(MASTER_ENV)  # a Spark Connect URL given as the master
    partitions = shuffle_partitions or (int(os.environ[SHUFFLE_ENV]) if os.environ.get(SHUFFLE_ENV) else None)
    if remote:
        session = SparkSession.builder.remote(remote).appName(app_name).getOrCreate()
    else:
        # under spark-submit the JVM is already running with its --master: keep it unless told otherwise
        submitted = "PYSPARK_GATEWAY_PORT" in os.environ
        master = master or os.environ.get(MASTER_ENV) or (None if submitted else DEFAULT_MASTER)
        memory = driver_memory or os.environ.get(DRIVER_MEMORY_ENV)
        builder = SparkSession.builder if master is None else SparkSession.builder.master(master)
        builder = (
            builder.appName(app_name)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.extraJavaOptions", f"-Dlog4j.configurationFile={_log4j_file()}")
            # no spark-warehouse/ or metastore_db/ in the working directory: jobs use temporary views only
            .config("spark.sql.warehouse.dir", str(Path(tempfile.gettempdir()) / "microlend-spark-warehouse"))
        )
        if memory:
            builder = builder.config("spark.driver.memory", memory)
        for key, value in (config or {}).items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("ERROR")
        running = session.sparkContext.master or ""
        if partitions is None and running.startswith("local"):
            partitions = 2 * _local_cores(running)
    for key, value in {**SESSION_SQL_CONF, **{k: v for k, v in (config or {}).items() if k.startswith("spark.sql.")}
                       }.items():
        session.conf.set(key, value)
    if partitions:
        session.conf.set("spark.sql.shuffle.partitions", str(partitions))
    return session


def _sparkable(table: pa.Table) -> pa.Table:
    """The table with types Spark reads from Arrow: dictionaries decoded, large and view strings as plain."""
    fields = []
    changed = False
    for f in table.schema:
        t = f.type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if pa.types.is_large_string(t) or pa.types.is_string_view(t):
            t = pa.string()
        elif pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
            t = pa.binary()
        changed = changed or t != f.type
        fields.append(pa.field(f.name, t, nullable=f.nullable))
    return table.cast(pa.schema(fields)) if changed else table


def _arrow_result(frame: DataFrame) -> pa.Table:
    """A Spark result as Arrow: the declared types, every field nullable, plain strings."""
    table = frame.toArrow()
    fields = []
    for f in table.schema:
        t = pa.string() if pa.types.is_large_string(f.type) or pa.types.is_string_view(f.type) else f.type
        fields.append(pa.field(f.name, t, nullable=True))
    schema = pa.schema(fields)
    if table.schema.equals(schema):
        return table
    return table.cast(schema)


class SparkEngine:
    """Apache Spark (classic or Spark Connect) over Arrow tables and Parquet datasets registered as temporary
    views."""

    name = "spark"

    def __init__(self, session: SparkSession | None = None, *, master: str | None = None,
                 remote: str | None = None) -> None:
        self._session = session
        self._master = master
        self._remote = remote
        self._lock = threading.RLock()
        self._defined: int | None = None

    @property
    def session(self) -> SparkSession:
        """The session, started on first use."""
        with self._lock:
            if self._session is None:
                self._session = spark_session(master=self._master, remote=self._remote)
            if self._defined != id(self._session):
                for key, value in SESSION_SQL_CONF.items():
                    self._session.conf.set(key, value)
                for function in PORTABLE_FUNCTIONS:
                    self._session.sql(function.spark_ddl())
                self._defined = id(self._session)
            return self._session

    def stop(self) -> None:
        """Stop the session (also one passed in); the next query starts a new one."""
        with self._lock:
            if self._session is not None:
                self._session.stop()
            self._session = None
            self._defined = None

    def _query(self, sql: str, tables: Mapping[str, Source], params: Mapping[str, Any] | None) -> pa.Table:
        with self._lock:
            spark = self.session
            self._register(tables)
            try:
                # DuckDB's `$name` placeholders are Spark's `:name`
                frame = spark.sql(_PARAM.sub(r":\1", sql), args=dict(params)) if params else spark.sql(sql)
                return _arrow_result(frame)
            finally:
                self._drop(tables)

    def _register(self, tables: Mapping[str, Source]) -> None:
        spark = self.session
        for view, table in tables.items():
            if isinstance(table, ParquetDataset):
                self._register_parquet(view, table)
            else:
                spark.createDataFrame(_sparkable(table)).createOrReplaceTempView(view)

    def _register_parquet(self, view: str, dataset: ParquetDataset) -> None:
        """The dataset's files read by Spark itself (each task a slice of the files), seen through a view with
        the declared columns and types."""
        if not dataset.exists():
            raise FileNotFoundError(f"{view}: no Parquet files under {dataset.path}")
        spark = self.session
        files = spark.read.option("basePath", str(dataset.path)).parquet(str(dataset.path))
        files.createOrReplaceTempView(f"{view}__files")
        spark.sql(f'SELECT {view_select(dataset, set(files.columns), spark=True)} FROM "{view}__files"') \
            .createOrReplaceTempView(view)

    def _drop(self, tables: Mapping[str, Source]) -> None:
        for view, table in tables.items():
            self.session.catalog.dropTempView(view)
            if isinstance(table, ParquetDataset):
                self.session.catalog.dropTempView(f"{view}__files")

    def run_sql(self, sql: str, tables: Mapping[str, Source], params: Mapping[str, Any] | None = None) -> pa.Table:
        return self._query(sql, tables, params)

    def iter_sql(
        self,
        sql: str,
        tables: Mapping[str, Source],
        *,
        batch_rows: int = 100_000,
        params: Mapping[str, Any] | None = None,
        progress: Progress | None = None,
    ) -> Iterator[pa.RecordBatch]:
        result = self._query(sql, tables, params)
        done = 0
        for batch in result.to_batches(max_chunksize=batch_rows):
            done += batch.num_rows
            if progress is not None:
                progress(done, result.num_rows)
            yield batch

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
        """The query once per slice of the partition table, as the local engine does (so the rows come in the
        same order); the other tables are registered once for all slices."""
        if partition not in tables:
            raise KeyError(f"partition table '{partition}' is not among the tables")
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be at least 1")
        whole = tables[partition]
        if not isinstance(whole, pa.Table):
            raise TypeError(f"partition table '{partition}' must be an Arrow table to be sliced")
        total = whole.num_rows
        others = {k: v for k, v in tables.items() if k != partition}
        parts: list[pa.Table] = []
        with self._lock:
            self._register(others)
            try:
                for start in range(0, max(total, 1), chunk_rows):
                    parts.append(self._query(sql, {partition: whole.slice(start, chunk_rows)}, params))
                    if progress is not None:
                        progress(min(start + chunk_rows, total), total)
            finally:
                self._drop(others)
        return pa.concat_tables(parts) if len(parts) > 1 else parts[0]
