"""One Spark session (local mode, two cores, quiet) for the whole test session; the Spark tests are skipped,
saying why, only where PySpark or a Java runtime is missing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from microlend.batch.spark_session import spark_available


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    missing = spark_available()
    if missing is not None:
        pytest.skip(f"Spark engine not tested: {missing}")
    from microlend.batch.spark_session import get_spark

    session = get_spark("local[2]", config={"spark.sql.shuffle.partitions": "2",
                                            "spark.driver.memory": "1g"})
    yield session
    session.stop()
