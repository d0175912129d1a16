"""`microlend policy submit/publish` and `microlend decision replay` against a bank's database."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from microlend.cli.decisioning import app, decision_app
from microlend.cli.main import app as main_app
from microlend.cli.session import session_path
from microlend.core.identity import Principal
from microlend.core.settings import get_settings
from microlend.core.tenancy import Tenant, create_user_platform
from microlend.core.uow import UnitOfWork
from microlend.decisioning import service
from microlend.decisioning.domain import DecisionInput
from microlend.decisioning.policy import default_policy, policy_hash

runner = CliRunner()


@pytest.fixture
def cli_database(database_url: str, uow: UnitOfWork, bank: Tenant, monkeypatch: pytest.MonkeyPatch,
                 tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("MICROLEND_DATABASE_URL", database_url)
    monkeypatch.setenv("MICROLEND_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    for name in ("li", "wang"):
        create_user_platform(uow, bank.name, name, "long-password-1", ["risk_analyst"])
    create_user_platform(uow, bank.name, "zhao", "long-password-1", ["credit_officer"])
    yield
    get_settings.cache_clear()


def login(user: str, password: str = "long-password-1") -> None:
    result = runner.invoke(main_app, ["login", "--user", user, "--password-stdin"], input=password + "\n")
    assert result.exit_code == 0, result.output


def test_an_analyst_submits_a_colleague_publishes_and_a_decision_replays(
    cli_database: None, tmp_path: Path, uow: UnitOfWork
) -> None:
    doc = copy.deepcopy(default_policy())
    doc["metadata"]["name"] = "micro_loan_v2"
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    content_hash = policy_hash(doc)

    login("li")
    submitted = runner.invoke(app, ["submit", str(path), "--note", "renamed"])
    assert submitted.exit_code == 0, submitted.output
    assert "simulated on" in submitted.output
    own = runner.invoke(app, ["publish", content_hash])
    assert own.exit_code == 2 and "maker-checker" in own.output
    login("zhao")
    officer = runner.invoke(app, ["publish", content_hash])
    assert officer.exit_code == 2 and "publish_policies" in officer.output
    login("wang")
    published = runner.invoke(app, ["publish", content_hash])
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


def test_four_eyes_acts_refuse_a_name_without_a_sign_in(cli_database: None, tmp_path: Path) -> None:
    path = tmp_path / "v2.json"
    doc = copy.deepcopy(default_policy())
    doc["metadata"]["name"] = "micro_loan_v2"
    path.write_text(json.dumps(doc), encoding="utf-8")
    for args in (["submit", str(path), "--user", "li"], ["publish", policy_hash(doc), "--user", "wang"],
                 ["promote", policy_hash(doc), "--user", "li"], ["rollback", "--to", policy_hash(doc)],
                 ["confirm", "1", "--user", "wang"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "microlend login" in result.output, (args, result.output)
    wrong = runner.invoke(main_app, ["login", "--user", "li", "--password-stdin"], input="not-the-password\n")
    assert wrong.exit_code == 2 and "wrong username or password" in wrong.output
    assert not session_path().exists()
    login("li")
    assert session_path().stat().st_mode & 0o777 == 0o600
    other = runner.invoke(app, ["publish", policy_hash(doc), "--user", "wang"])
    assert other.exit_code == 2 and "signed in as 'li'" in other.output
    assert runner.invoke(main_app, ["logout"]).exit_code == 0
    again = runner.invoke(app, ["submit", str(path)])
    assert again.exit_code == 2 and "microlend login" in again.output


def test_an_expired_or_stale_sign_in_is_refused(cli_database: None, uow: UnitOfWork, bank: Tenant) -> None:
    login("li")
    from sqlalchemy import select

    from microlend.core.identity import Role
    from microlend.core.tables import UserRow
    from microlend.core.tenancy import update_user

    with uow:
        li = uow.session.execute(select(UserRow.id).where(UserRow.username == "li")).scalar_one()
    admin = Principal(user_id=0, tenant_id=bank.id, username="admin", roles=frozenset({Role.ADMIN}))
    update_user(uow, admin, li, roles=["risk_analyst", "auditor"])  # a change of roles ends the sign-in
    result = runner.invoke(app, ["promote", "0" * 64])
    assert result.exit_code == 2 and "microlend login" in result.output


def test_promote_and_roll_back_from_the_command_line(cli_database: None, tmp_path: Path) -> None:
    doc = copy.deepcopy(default_policy())
    doc["metadata"]["name"] = "micro_loan_v2"
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    new, old = policy_hash(doc), policy_hash(default_policy())
    login("li")
    assert runner.invoke(app, ["submit", str(path)]).exit_code == 0
    login("wang")
    assert runner.invoke(app, ["publish", new, "--challenger-share", "1000"]).exit_code == 0
    asked = runner.invoke(app, ["promote", new, "--note", "better"])
    assert asked.exit_code == 0 and "request 1" in asked.output, asked.output
    own = runner.invoke(app, ["confirm", "1"])
    assert own.exit_code == 2 and "maker-checker" in own.output
    login("li")
    done = runner.invoke(app, ["confirm", "1"])
    assert done.exit_code == 0 and "approved by li" in done.output, done.output
    back = runner.invoke(app, ["rollback", "--to", old])
    assert back.exit_code == 0 and "request 2" in back.output, back.output
    login("wang")
    assert runner.invoke(app, ["confirm", "2"]).exit_code == 0
    listing = runner.invoke(app, ["versions", "--user", "zhao"])
    assert old[:12] in listing.output


def test_an_analyst_sets_a_reason_text_and_a_decision_s_trace_reads_plainly(
    cli_database: None, uow: UnitOfWork
) -> None:
    login("zhao")
    refused = runner.invoke(app, ["reason-set", "AGE_ABOVE_MAX", "--borrower-zh", "超过{max_age}岁",
                                  "--borrower-en", "Over {max_age}", "--param", "max_age=customer.age"])
    assert refused.exit_code == 2 and "edit_policies" in refused.output
    login("li")
    bad = runner.invoke(app, ["reason-set", "AGE_ABOVE_MAX", "--borrower-zh", "超过{max_age}岁",
                              "--borrower-en", "Over {max_age}"])
    assert bad.exit_code == 2 and "not a declared parameter" in bad.output
    saved = runner.invoke(app, ["reason-set", "AGE_ABOVE_MAX", "--borrower-zh", "超过{max_age}岁",
                                "--borrower-en", "Over {max_age}", "--param", "max_age=customer.age"])
    assert saved.exit_code == 0, saved.output
    listing = runner.invoke(app, ["reasons", "--user", "zhao", "--json"])
    age = next(r for r in json.loads(listing.output) if r["code"] == "AGE_ABOVE_MAX")
    assert (age["borrower_en"], age["params"], age["updated_by"]) == ("Over {max_age}", {"max_age": "customer.age"},
                                                                      "li")

    from sqlalchemy import select

    from microlend.core.tables import UserRow
    from microlend.core.tenancy import principal_for
    from microlend.decisioning.policy import deep_merge

    with uow:
        who = principal_for(uow.session.execute(select(UserRow).where(UserRow.username == "zhao")).scalar_one())
    applicant = deep_merge(default_policy()["test_base"], {"customer": {"age": 70},
                                                            "capacity": {"age_at_maturity": 71}})
    record = service.decide(uow, who, DecisionInput.from_canonical(applicant), locale="en")
    assert record.borrower_reasons[0] == "Over 65"
    trace = runner.invoke(decision_app, ["trace", str(record.id), "--user", "zhao"])
    assert trace.exit_code == 0, trace.output
    assert "row 3: Age > 65 (was 70) -> Reason = AGE_ABOVE_MAX" in trace.output
