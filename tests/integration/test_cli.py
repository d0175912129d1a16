"""The platform commands: schema, tenants, users, audit verification; errors are exit code 2."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from microlend.cli.main import app
from microlend.core.db import make_engine, make_session_factory
from microlend.core.settings import get_settings
from microlend.core.tables import AuditRow

runner = CliRunner()


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("MICROLEND_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_a_bank_moves_in_from_the_command_line(cli_db: str) -> None:
    assert run("db", "upgrade")[0] == 0
    code, out = run("tenant", "create", "ruralbank", "--display-name", "Rural Bank")
    assert code == 0, out
    code, out = run("user", "create", "--tenant", "ruralbank", "--username", "ops@rural", "--password",
                    "long-enough-1", "--role", "admin", "--role", "auditor")
    assert code == 0, out
    assert "admin, auditor" in out
    code, out = run("tenant", "list", "--json")
    assert '"name": "ruralbank"' in out
    code, out = run("audit", "verify")
    assert code == 0 and "intact" in out


def test_mistakes_are_exit_code_2_with_a_message(cli_db: str) -> None:
    run("db", "upgrade")
    run("tenant", "create", "bank-a")
    code, out = run("tenant", "create", "bank-a")
    assert code == 2 and "already exists" in out
    code, out = run("tenant", "create", "Bad Name!")
    assert code == 2 and "lowercase" in out
    code, out = run("user", "create", "--tenant", "nobank", "--username", "x@y", "--password", "long-enough-1",
                    "--role", "admin")
    assert code == 2 and "tenant 'nobank' not found" in out
    code, out = run("user", "create", "--tenant", "bank-a", "--username", "x@y", "--password", "short",
                    "--role", "admin")
    assert code == 2 and "at least 10 characters" in out
    assert "Traceback" not in out


def test_audit_verify_fails_on_a_tampered_record(cli_db: str) -> None:
    run("db", "upgrade")
    run("tenant", "create", "bank-b")
    engine = make_engine(cli_db)
    with make_session_factory(engine)() as s:
        s.execute(update(AuditRow).values(actor="someone-else"))
        s.commit()
    code, out = run("audit", "verify")
    assert code == 1
    assert "BROKEN" in out and "was edited" in out
