"""`microlend data providers list|set|usage`, run through Typer's test runner on a migrated database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from microlend.cli import data as data_cli
from microlend.cli.data import app
from microlend.core.db import make_engine, make_session_factory
from microlend.core.settings import get_settings
from microlend.core.tenancy import create_tenant
from microlend.core.uow import UnitOfWork

runner = CliRunner()


@pytest.fixture
def configured(fresh_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("MICROLEND_DATABASE_URL", fresh_db_url)
    monkeypatch.setenv("MICROLEND_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    engine = make_engine(fresh_db_url)
    create_tenant(UnitOfWork(make_session_factory(engine)), "t1")
    engine.dispose()
    yield fresh_db_url
    get_settings.cache_clear()


def test_set_list_and_usage(configured: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUREAU_KEY", "bureau-key-from-env")
    monkeypatch.setenv("COLUMNS", "200")  # the whole table on one line per kind
    monkeypatch.setattr(data_cli.console, "width", 200)  # also when the console was made before, narrower
    result = runner.invoke(
        app,
        [
            "providers",
            "set",
            "bureau",
            "--tenant",
            "t1",
            "--url",
            "https://bureau.example.cn",
            "--key-env",
            "BUREAU_KEY",
            "--timeout-ms",
            "1500",
            "--cost",
            "2.50",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "key set" in result.output and "bureau-key-from-env" not in result.output
    listed = runner.invoke(app, ["providers", "list", "--tenant", "t1"])
    assert listed.exit_code == 0, listed.output
    assert "https://bureau.example.cn" in listed.output and "not set up" in listed.output
    assert "bureau-key-from-env" not in listed.output
    usage = runner.invoke(app, ["providers", "usage", "--tenant", "t1"])
    assert usage.exit_code == 0 and "enforcement" in usage.output
    engine = make_engine(configured)
    with engine.connect() as db:
        stored = db.execute(text("SELECT api_key, timeout_ms FROM data_provider_settings")).one()
    engine.dispose()
    assert stored.timeout_ms == 1500 and "bureau-key-from-env" not in stored.api_key


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "ftp://x.cn"], "base_url: must be an http:// or https://"),
        (["--url", "https://x.cn", "--timeout-ms", "10"], "timeout_ms: must be between 50 and 30000"),
        (["--url", "https://x.cn", "--key-env", "NOT_SET_ANYWHERE"], "NOT_SET_ANYWHERE is not set"),
        (["--url", "https://x.cn", "--cost", "abc"], "cost: 'abc' is not a decimal amount"),
    ],
)
def test_bad_settings_are_exit_code_2_with_a_message(configured: str, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["providers", "set", "tax", "--tenant", "t1", *args])
    assert result.exit_code == 2 and message in result.output, result.output
