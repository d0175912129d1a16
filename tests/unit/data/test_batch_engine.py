"""The local batch engine: SQL over named Arrow tables, whole, streamed, or by partition."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from microlend.batch.engine import BatchEngine, EngineUnavailable, LocalEngine, engine_named
from microlend.batch.spark import spark_unavailable

LOANS = pa.table({"customer_id": [1, 1, 2, 3, 3, 3], "principal": [100, 200, 50, 10, 20, 30]})
CUSTOMERS = pa.table({"customer_id": [1, 2, 3, 4]})
PER_CUSTOMER = """
    SELECT c.customer_id, count(l.customer_id) AS loans, coalesce(sum(l.principal), 0)::BIGINT AS principal
    FROM customers c LEFT JOIN loans l USING (customer_id)
    GROUP BY c.customer_id ORDER BY c.customer_id
"""


class TestLocalEngine:
    def test_is_a_batch_engine(self) -> None:
        assert isinstance(LocalEngine(), BatchEngine)

    def test_runs_sql_over_named_tables_with_parameters(self) -> None:
        out = LocalEngine().run_sql(
            "SELECT customer_id, sum(principal)::BIGINT AS total FROM loans WHERE principal >= $min "
            "GROUP BY customer_id ORDER BY customer_id",
            {"loans": LOANS},
            {"min": 20},
        )
        assert out.to_pydict() == {"customer_id": [1, 2, 3], "total": [300, 50, 50]}

    def test_streams_batches_and_reports_progress(self) -> None:
        seen: list[tuple[int, int | None]] = []
        big = pa.table({"x": list(range(2500))})
        batches = list(
            LocalEngine().iter_sql(
                "SELECT x FROM big",
                {"big": big},
                batch_rows=1000,
                progress=lambda done, total: seen.append((done, total)),
            )
        )
        assert sum(b.num_rows for b in batches) == 2500
        assert seen[-1] == (2500, None)
        assert len(seen) == len(batches) >= 3

    def test_partitioned_run_equals_one_run_and_reports_progress(self) -> None:
        engine = LocalEngine()
        whole = engine.run_sql(PER_CUSTOMER, {"customers": CUSTOMERS, "loans": LOANS})
        seen: list[tuple[int, int | None]] = []
        parts = engine.run_partitioned(
            PER_CUSTOMER,
            {"customers": CUSTOMERS, "loans": LOANS},
            partition="customers",
            chunk_rows=3,
            progress=lambda done, total: seen.append((done, total)),
        )
        assert parts.to_pydict() == whole.to_pydict()
        assert whole.to_pydict()["principal"] == [300, 50, 60, 0]
        assert seen == [(3, 4), (4, 4)]


class TestEngineNamed:
    def test_local_by_name(self) -> None:
        engine = engine_named("local")
        assert isinstance(engine, LocalEngine) and isinstance(engine, BatchEngine)

    def test_an_unknown_engine_names_the_choices(self) -> None:
        with pytest.raises(EngineUnavailable, match="'duck' is not an engine; choose local or spark"):
            engine_named("duck")

    def test_spark_without_java_says_what_to_install(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setenv("PATH", str(tmp_path))
        monkeypatch.delenv("JAVA_HOME", raising=False)
        monkeypatch.delenv("MICROLEND_SPARK_REMOTE", raising=False)
        assert "openjdk-17-jre-headless" in (spark_unavailable() or "")
        with pytest.raises(EngineUnavailable, match="needs Java 17"):
            engine_named("spark")

    def test_a_spark_connect_url_must_be_one(self) -> None:
        assert "is not a Spark Connect URL" in (spark_unavailable(remote="http://spark:15002") or "")

    def test_spark_connect_needs_no_local_java(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setenv("PATH", str(tmp_path))
        monkeypatch.delenv("JAVA_HOME", raising=False)
        problem = spark_unavailable(remote="sc://spark:15002")
        assert problem is None or "pyspark[connect]" in problem  # the connect client's gRPC, when absent
