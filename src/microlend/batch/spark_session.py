"""The Spark session batch jobs run on (Spark 引擎会话): one per process, its master from
`MICROLEND_SPARK_MASTER` (default `local[*]`: every core of this machine), or a Spark Connect URL
(`sc://host:15002`). PySpark is imported only here and only when a job asks for the Spark engine, so the
local engine never needs Java.
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: The environment variable naming the Spark master (`local[2]`, `spark://host:7077`, `yarn`, `sc://host:15002`).
MASTER_VARIABLE = "MICROLEND_SPARK_MASTER"
DEFAULT_MASTER = "local[*]"

#: Settings every session gets: exact results (ANSI SQL, UTC dates), no web UI, few shuffle partitions on one
#: machine (a cluster's own defaults apply elsewhere), Arrow for moving tables to and from Python.
BASE_CONFIG: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}


class SparkUnavailable(RuntimeError):
    """Spark cannot start here (no PySpark, no Java)."""


def spark_master(master: str | None = None) -> str:
    return master or os.environ.get(MASTER_VARIABLE) or DEFAULT_MASTER


def spark_available() -> str | None:
    """None when a Spark session can be started here, else why not (for a clear message or a skipped test)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install pyspark)"
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        return "no Java runtime (install openjdk-17-jre-headless or set JAVA_HOME)"
    return None


def get_spark(master: str | None = None, *, config: dict[str, Any] | None = None) -> SparkSession:
    """The process's Spark session (created on first use, then reused; see `microlend.batch.spark.spark_session`),
    with the settings analytics need on top and quiet apart from errors."""
    missing = spark_available()
    if missing is not None:
        raise SparkUnavailable(f"engine: Spark cannot run here: {missing}")
    from microlend.batch.spark import spark_session

    extra = {**BASE_CONFIG, **(config or {})}
    memory = extra.pop("spark.driver.memory", None)
    partitions = extra.pop("spark.sql.shuffle.partitions", None)
    session = spark_session(master=spark_master(master), driver_memory=None if memory is None else str(memory),
                            shuffle_partitions=None if partitions is None else int(partitions))
    for key, value in extra.items():
        if key.startswith("spark.sql."):
            session.conf.set(key, str(value))
    return session
