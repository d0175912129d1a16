"""`microlend policy submit/publish` and `microlend decision replay` against a bank's database."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from microlend.cli.decisioning import app, decision_app
from microlend.core.settings import get_settings
from microlend.core.tenancy import Tenant, create_user_platform
from microlend.core.uow import UnitOfWork
from microlend.decisioning import service
from microlend.decisioning.domain import DecisionInput
from microlend.decisioning.policy import default_policy, policy_hash

runner = CliRunner()


@pytest.fixture
def cli_database(database_url: str, uow: UnitOfWork, bank: Tenant, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MICROLEND_DATABASE_URL", database_url)
    get_settings.cache_clear()
    for name in ("li", "wang"):
        create_user_platform(uow, bank.name, name, "long-password-1", ["risk_analyst"])
    create_user_platform(uow, bank.name, "zhao", "long-password-1", ["credit_officer"])
    yield
    get_settings.cache_clear()


def test_an_analyst_submits_a_colleague_publishes_and_a_decision_replays(
    cli_database: None, tmp_path: Path, uow: UnitOfWork
) -> None:
    doc = copy.deepcopy(default_policy())
    doc["metadata"]["name"] = "micro_loan_v2"
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    content_hash = policy_hash(doc)

    submitted = runner.invoke(app, ["submit", str(path), "--user", "li", "--note", "renamed"])
    assert submitted.exit_code == 0, submitted.output
    own = runner.invoke(app, ["publish", content_hash, "--user", "li"])
    assert own.exit_code == 2 and "maker-checker" in own.output
    officer = runner.invoke(app, ["publish", content_hash, "--user", "zhao"])
    assert officer.exit_code == 2 and "publish_policies" in officer.output
    published = runner.invoke(app, ["publish", content_hash, "--user", "wang"])
    assert published.exit_code == 0, published.output
    listing = runner.invoke(app, ["versions", "--user", "zhao"])
    assert content_hash[:12] in listing.output and "retired" in listing.output

    from sqlalchemy import select

    from microlend.core.tables import UserRow
    from microlend.core.tenancy import principal_for

    with uow:
        row = uow.session.execute(select(UserRow).where(UserRow.username == "zhao")).scalar_one()
        who = principal_for(row)
    record = service.decide(uow, who, DecisionInput.from_canonical(doc["test_base"]))
    assert record.policy_hash == content_hash
    replayed = runner.invoke(decision_app, ["replay", str(record.id), "--user", "zhao"])
    assert replayed.exit_code == 0 and "same result (approve)" in replayed.output


def test_an_unknown_user_exits_2(cli_database: None) -> None:
    result = runner.invoke(decision_app, ["replay", "1", "--user", "nobody"])
    assert result.exit_code == 2 and "no active user 'nobody'" in result.output


def test_an_unknown_decision_exits_2(cli_database: None) -> None:
    result = runner.invoke(decision_app, ["replay", "999", "--user", "zhao"])
    assert result.exit_code == 2 and "decision 999 not found" in result.output
