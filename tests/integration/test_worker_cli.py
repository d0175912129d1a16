"""`microlend worker`: --once gives a bank its calendar and runs what is due; the bank's jobs and runs are
listed; a run is asked for again; bad input is exit code 2 with the reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from microlend.cli.main import app
from microlend.core import clock
from microlend.core.clock import FixedClock
from microlend.core.settings import get_settings

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


def test_the_worker_runs_the_calendar_once_and_operations_rerun_a_job(cli_db: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("db", "upgrade")[0] == 0
    assert run("tenant", "create", "workerbank")[0] == 0
    code, out = run("tenant", "list", "--json")
    opened = json.loads(out)[0]["business_date"]
    # the day after the bank opened, 10:00 in Shanghai: that day's close of business and reminders are due
    day = datetime.fromisoformat(opened).date()
    monkeypatch.setattr(clock, "_clock", FixedClock(datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)
                                                    + timedelta(days=1)))
    code, out = run("worker", "--once")
    assert code == 0, out
    assert f"close_of_business {opened} (tenant" in out and "reminders" in out and "): failed" not in out
    code, out = run("worker", "jobs", "--tenant", "workerbank", "--json")
    listed = {j["kind"]: j for j in json.loads(out)}
    assert set(listed) == {"close_of_business", "provisioning", "reminders", "messages", "early_warning",
                           "model_monitoring", "data_refresh", "journeys", "audit_check"}
    assert listed["close_of_business"]["timezone"] == "Asia/Shanghai"
    code, out = run("worker", "runs", "--tenant", "workerbank", "--json")
    runs = json.loads(out)
    assert runs and {r["status"] for r in runs} == {"succeeded"}
    assert any(r["kind"] == "close_of_business" and r["business_date"] == opened for r in runs)
    cob = listed["close_of_business"]["id"]
    code, out = run("worker", "rerun", str(cob), "--tenant", "workerbank", "--date", opened)
    assert code == 0 and f"will run for {opened}" in out
    code, out = run("worker", "--once")
    assert code == 0 and "close_of_business" in out
    code, out = run("worker", "rerun", str(cob), "--tenant", "workerbank", "--date", "someday")
    assert code == 2 and "is not a date" in out
    code, out = run("worker", "rerun", "999999", "--tenant", "workerbank")
    assert code == 2 and "job 999999 not found" in out
    assert run("worker", "jobs", "--tenant", "nobank")[0] == 2
    assert run("worker", "--once", "--timezone", "Mars/Olympus")[0] == 2
