"""`microlend data features --engine spark` writes the same features as the local engine."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from tests.portfolios import AS_OF, portfolio
from typer.testing import CliRunner

from microlend.batch.analytics import write_partitioned
from microlend.batch.engine import BatchEngine
from microlend.cli.data import app
from microlend.data.features import SOURCE_MONTH_OF

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]
runner = CliRunner()


def test_features_on_spark_equal_the_local_engines(tmp_path: Path, spark_engine: BatchEngine) -> None:
    args = ["features", "--as-of", AS_OF.isoformat()]
    for name, table in portfolio(400, seed=5).items():
        path = tmp_path / f"{name}.parquet"
        pq.write_table(table, path)
        args += [f"--{name.replace('_', '-')}", str(path)]
    _assert_same_features(tmp_path, {"local": args, "spark": args})  # spark reuses the test session's context


def test_features_on_spark_from_partitioned_folders_equal_the_local_engines_from_files(
        tmp_path: Path, spark_engine: BatchEngine) -> None:
    files, folders = ["features", "--as-of", AS_OF.isoformat()], tmp_path / "folders"
    for name, table in portfolio(400, seed=5).items():
        pq.write_table(table, tmp_path / f"{name}.parquet")
        files += [f"--{name.replace('_', '-')}", str(tmp_path / f"{name}.parquet")]
        write_partitioned(folders, name, 1, [table], month_of=SOURCE_MONTH_OF[name])
    _assert_same_features(
        tmp_path, {"local": files, "spark": ["features", "--as-of", AS_OF.isoformat(), "--data", str(folders)]}
    )


def _assert_same_features(tmp_path: Path, inputs: dict[str, list[str]]) -> None:
    """`data features` with each engine's arguments: both succeed and write the same table."""
    outputs = {}
    for engine, args in inputs.items():
        out = tmp_path / f"features-{engine}.parquet"
        result = runner.invoke(app, [*args, "--out", str(out), "--engine", engine])
        assert result.exit_code == 0, result.output
        outputs[engine] = pq.read_table(out)
    assert outputs["local"].num_rows > 300
    assert outputs["spark"].equals(outputs["local"])
