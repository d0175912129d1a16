from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from microlend.cli.main import app as main_app
from microlend.cli.risk import app
from microlend.core.settings import get_settings
from microlend.risk.datasets import german_credit
from microlend.risk.registry import list_model_versions

from .conftest import Bank, open_bank

runner = CliRunner()


@pytest.fixture
def cli_bank(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bank]:
    bank = open_bank(tmp_path, monkeypatch)
    monkeypatch.setenv("MICROLEND_DATABASE_URL", f"sqlite:///{tmp_path / 'microlend.db'}")
    monkeypatch.setenv("MICROLEND_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield bank
    get_settings.cache_clear()
    bank.engine.dispose()


def login(user: str) -> None:
    result = runner.invoke(main_app, ["login", "--user", user, "--password-stdin"], input="correct-horse-9\n")
    assert result.exit_code == 0, result.output


def test_from_csv_to_an_approved_champion_through_the_cli(cli_bank: Bank, tmp_path: Path) -> None:
    data = tmp_path / "german.csv"
    german_credit().frame.to_csv(data, index=False)
    bank = ["--tenant", "rural-bank"]
    login("wang@rural-bank")
    result = runner.invoke(app, ["train", "--data", str(data), "--target", "creditability", "--bad", "bad",
                                 "--kind", "gbdt", "--out", str(tmp_path / "m"), "--name", "german-gbdt",
                                 "--register", *bank])
    assert result.exit_code == 0, result.output
    version_id = int(re.search(r"registered as german-gbdt v1 \(id (\d+), draft\)", result.output).group(1))  # type: ignore[union-attr]
    vid = ["--id", str(version_id)]

    result = runner.invoke(app, ["mark-validated", *vid, *bank])
    assert result.exit_code == 2 and "do not allow 'validate_models'" in result.output
    result = runner.invoke(app, ["mark-validated", *vid, *bank, "--user", "sun@rural-bank"])
    assert result.exit_code == 2 and "signed in as 'wang@rural-bank'" in result.output
    login("sun@rural-bank")
    result = runner.invoke(app, ["mark-validated", *vid, *bank, "--user", "sun@rural-bank", "--note", "read"])
    assert result.exit_code == 0 and "validated by sun@rural-bank" in result.output, result.output
    login("wang@rural-bank")
    result = runner.invoke(app, ["approve", *vid, *bank])
    assert result.exit_code == 2 and "a different person must approve it" in result.output
    login("zhao@rural-bank")
    result = runner.invoke(app, ["approve", *vid, *bank])
    assert result.exit_code == 2 and "do not allow 'approve_models'" in result.output
    login("li@rural-bank")
    result = runner.invoke(app, ["approve", *vid, *bank, "--note", "report read"])
    assert result.exit_code == 0 and "approved by li@rural-bank" in result.output
    result = runner.invoke(app, ["promote", *vid, *bank, "--role", "champion"])
    assert result.exit_code == 0, result.output

    result = runner.invoke(app, ["models", *bank, "--user", "li@rural-bank", "--status", "champion", "--json"])
    assert result.exit_code == 0, result.output
    (listed,) = json.loads(result.output)
    assert (listed["name"], listed["status"], listed["approved_by"]) == ("german-gbdt", "champion", "li@rural-bank")
    assert runner.invoke(app, ["models", *bank, "--user", "li@rural-bank"]).exit_code == 0
    champions = list_model_versions(cli_bank.uow, cli_bank.people["li"], status="champion")
    assert [v.id for v in champions] == [version_id]
    assert Path(champions[0].store_path).is_relative_to(tmp_path / "var" / "models")


def test_unknown_user_or_bank_exits_2(cli_bank: Bank) -> None:
    result = runner.invoke(app, ["models", "--tenant", "rural-bank", "--user", "nobody"])
    assert result.exit_code == 2 and "user: 'nobody' not found in bank 'rural-bank'" in result.output
    result = runner.invoke(app, ["models", "--tenant", "no-such-bank", "--user", "li@rural-bank"])
    assert result.exit_code == 2 and "tenant 'no-such-bank' not found" in result.output


def test_register_without_a_bank_is_refused_before_training(cli_bank: Bank, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--data", "x.csv", "--target", "y", "--bad", "1", "--out", str(tmp_path),
                                 "--register"])
    assert result.exit_code == 2 and "give --tenant (and sign in)" in result.output


def test_approving_a_model_by_name_without_a_sign_in_is_refused(cli_bank: Bank) -> None:
    result = runner.invoke(app, ["approve", "--id", "1", "--tenant", "rural-bank", "--user", "li@rural-bank"])
    assert result.exit_code == 2 and "microlend login" in result.output
