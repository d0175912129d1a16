"""Every way to get a password refuses a weak one with the rule in the message: the API, the CLI and
borrower registration."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.conftest import Api
from typer.testing import CliRunner

from microlend.cli.main import app
from microlend.core.settings import get_settings
from microlend.core.tables import UserRow
from microlend.demo import identities


def test_the_api_refuses_a_weak_password_naming_the_rule(api: Api) -> None:
    headers = api.token("admin")
    name = f"{api.kit.tenant.name}-weak"
    for password, rule in (("password", "at least 10 characters"), (" " * 12, "whitespace"),
                           ("qwertyuiop", "most common passwords"), (f"{name}-2026", "contain the username")):
        r = api.client.post("/api/v1/users", headers=headers,
                            json={"username": name, "password": password, "roles": ["approver"]})
        assert r.status_code == 422, password
        assert rule in r.json()["detail"] and r.json()["field"] == "password"


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("MICROLEND_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    get_settings.cache_clear()
    yield str(tmp_path)
    get_settings.cache_clear()


def test_the_cli_refuses_a_weak_password_with_exit_code_2(cli_db: str) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["tenant", "create", "ruralbank"]).exit_code == 0
    result = runner.invoke(app, ["user", "create", "--tenant", "ruralbank", "--username", "ops@rural",
                                 "--password", "password123", "--role", "admin"])
    assert result.exit_code == 2
    assert "password: this is one of the most common passwords" in result.output
    result = runner.invoke(app, ["user", "create", "--tenant", "ruralbank", "--username", "ops@rural",
                                 "--password", "tulip-ledger-88", "--role", "admin"])
    assert result.exit_code == 0, result.output


def test_borrower_registration_refuses_a_weak_password(api: Api) -> None:
    rng = random.Random(11)
    mobile = identities.mobile(rng)
    form = {"kind": "person", "name": "王小卖", "mobile": mobile,
            "id_number": identities.resident_id(rng, identities.birth_date_for_age(rng, 40, date(2026, 1, 1))),
            "industry": "retail", "annual_turnover": "600000", "years_in_business": "8"}
    for password, rule in (("12345678", "at least 10 characters"), (f"{mobile}!!", "contain the username")):
        r = api.client.post(f"/b/{api.kit.tenant.name}/register", data={**form, "password": password},
                            headers={"Accept-Language": "en"}, follow_redirects=False)
        assert r.status_code == 422, password
        assert rule in r.text, r.text[-2000:]
    with api.kit.uow_factory() as u:  # nothing was written
        assert u.session.execute(select(UserRow).where(UserRow.username.startswith(mobile))).first() is None
