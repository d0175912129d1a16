"""The first hour of a new user: the demo says when its port is taken (before seeding) and reuses a finished
seeding, an unsupported database is one clear line, borrowers find a front door at /b/, and staff see only
the links they may follow — a refused one explains itself in their language."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from tests import conftest
from tests.conftest import Api, sign_in_page
from tests.integration.test_customers_api import make_customer
from typer.testing import CliRunner

from microlend.cli import demo as demo_cli
from microlend.cli.main import app as cli
from microlend.core import tenancy
from microlend.core.db import make_session_factory
from microlend.core.identity import STAFF_ROLES, Role
from microlend.core.settings import get_settings
from microlend.core.uow import UnitOfWork
from microlend.web import access

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("MICROLEND_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MICROLEND_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


# ------------------------------------------------------------------------------------------ the demo command


def test_a_taken_port_is_said_before_anything_is_seeded(data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(cli, ["demo", "run", "--port", str(port), "--customers", "1", "--days", "0"])
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    assert f"port {port} on 127.0.0.1 is in use" in out
    assert "--port 8001" in out and "make demo PORT=8001" in out and "nothing was seeded" in out
    assert not (data_dir / "microlend.db").exists() and not (data_dir / demo_cli.NOTE).exists()


def test_claiming_a_free_port_holds_it_for_the_server(data_dir: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sock = demo_cli.claim_port("127.0.0.1", port)
    try:
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", port))
    finally:
        sock.close()


@pytest.mark.parametrize("url", ["mysql://root@localhost/microlend", "oracle+cx_oracle://u:p@h/db", "microlend.db"])
def test_a_database_microlend_does_not_run_on_is_one_line_and_exit_code_2(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("MICROLEND_DATABASE_URL", url)
    get_settings.cache_clear()
    for args in (["db", "upgrade"], ["demo", "seed", "--customers", "1", "--days", "0"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, result.output
        out = " ".join(result.output.split())
        assert "MICROLEND_DATABASE_URL" in out and "is not a database Microlend runs on" in out
        assert "sqlite:///" in out and "postgresql://" in out and "Traceback" not in out
        assert "u:p@" not in out  # the URL's password is not repeated


def test_the_rule_of_reuse_is_a_finished_seeding_of_this_version_and_size(data_dir: Path) -> None:
    assert not demo_cli.seeded_already(1000, 150)
    note = data_dir / demo_cli.NOTE
    note.write_text(json.dumps({"seed_version": demo_cli.SEED_VERSION, "database": demo_cli._database(),
                                "customers": 1000, "days": 150}))
    assert demo_cli.seeded_already(1000, 150)
    assert not demo_cli.seeded_already(1000, 30)  # another size
    note.write_text(json.dumps({"seed_version": demo_cli.SEED_VERSION - 1, "database": demo_cli._database(),
                                "customers": 1000, "days": 150}))
    assert not demo_cli.seeded_already(1000, 150)  # an older seed
    note.write_text(json.dumps({"seed_version": demo_cli.SEED_VERSION, "database": "sqlite:///elsewhere.db",
                                "customers": 1000, "days": 150}))
    assert not demo_cli.seeded_already(1000, 150)  # another database
    note.write_text("{")
    assert not demo_cli.seeded_already(1000, 150)


@pytest.mark.slow
def test_a_finished_seeding_is_reused_and_fresh_seeds_anew(data_dir: Path) -> None:
    first = runner.invoke(cli, ["demo", "seed", "--customers", "3", "--days", "0"])
    assert first.exit_code == 0, first.output
    assert "reused" not in first.output and (data_dir / demo_cli.NOTE).exists()
    again = runner.invoke(cli, ["demo", "seed", "--customers", "3", "--days", "0"])
    assert again.exit_code == 0, again.output
    assert "seeded before" in again.output and "reused" in again.output and "admin@demo" in again.output
    fresh = runner.invoke(cli, ["demo", "seed", "--customers", "3", "--days", "0", "--fresh"])
    assert fresh.exit_code == 0, fresh.output
    assert "seeding anew" in fresh.output and "reused" not in fresh.output


@pytest.mark.slow
def test_a_new_data_folder_starts_from_a_seeding_kept_on_the_machine(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh clone of the same code does not live the history again: it starts from the copy the first
    seeding kept, under the same keys, its datasets read from its own folder."""
    import sqlite3

    monkeypatch.delenv("MICROLEND_SECRET_KEY", raising=False)
    monkeypatch.delenv("MICROLEND_AUDIT_KEY", raising=False)
    monkeypatch.delenv("MICROLEND_DATABASE_URL", raising=False)
    monkeypatch.setenv("MICROLEND_MODE", "local")
    monkeypatch.setenv("MICROLEND_DEMO_CACHE", str(tmp_path / "cache"))
    first, second = tmp_path / "first", tmp_path / "second"
    try:
        monkeypatch.setenv("MICROLEND_DATA_DIR", str(first))
        get_settings.cache_clear()
        made = runner.invoke(cli, ["demo", "seed", "--customers", "4", "--days", "1"])
        assert made.exit_code == 0, made.output
        assert "seeding kept in" in made.output and "starts from a seeding kept" not in made.output
        assert len(list((tmp_path / "cache").iterdir())) == 1

        monkeypatch.setenv("MICROLEND_DATA_DIR", str(second))
        get_settings.cache_clear()
        again = runner.invoke(cli, ["demo", "seed", "--customers", "4", "--days", "1"])
        assert again.exit_code == 0, again.output
        assert "starts from a seeding kept" in again.output and "reused" in again.output
        assert "living" not in again.output
        assert (second / "secret_key").read_text() == (first / "secret_key").read_text()
        with sqlite3.connect(second / "microlend.db") as db:
            paths = [p for (p,) in db.execute("SELECT path FROM datasets")]
        assert paths and all(p.startswith(str(second.resolve())) and Path(p).exists() for p in paths)
        assert "admin@demo" in again.output

        monkeypatch.setenv("MICROLEND_DEMO_CACHE", "off")
        assert demo_cli.cache_root() is None
    finally:
        get_settings.cache_clear()


# ------------------------------------------------------------------------------------------ the borrowers' door


def _landing(client: TestClient, locale: str, path: str = "/b/") -> str:
    client.cookies.clear()
    client.cookies.set("ml_lang", locale)
    r = client.get(path)
    assert r.status_code == 200, r.text
    return r.text


def test_the_borrowers_door_offers_every_bank_register_and_sign_in(api: Api, new_tenant: Any) -> None:
    new_tenant()  # at least two banks: the door asks which
    name = api.kit.tenant.name
    for locale, choose, register, sign_in in (("en", "Choose your bank", "Open an account", "Sign in"),
                                              ("zh_CN", "选择您的银行", "注册开户", "登录")):
        for path in ("/b/", "/b"):
            html = _landing(api.client, locale, path)
            assert choose in html
            assert f'href="/b/{name}/register"' in html and f'href="/b/{name}/login"' in html
            assert register in html and sign_in in html
    assert api.client.get(f"/b/{name}/register").status_code == 200
    assert api.client.get(f"/b/{name}/login").status_code == 200


def test_with_one_bank_the_door_is_that_banks(fresh_engine: Engine, fresh_db_url: str) -> None:
    from microlend.api.app import create_app

    tenancy.create_tenant(UnitOfWork(make_session_factory(fresh_engine)), "onlybank", display_name="县农商银行")
    with TestClient(create_app(conftest.test_settings(fresh_db_url), engine=fresh_engine)) as client:
        for locale, register, sign_in in (("en", "Open an account", "Sign in"), ("zh_CN", "注册开户", "登录")):
            html = _landing(client, locale)
            assert "县农商银行" in html and register in html and sign_in in html
            assert 'href="/b/onlybank/register"' in html and 'href="/b/onlybank/login"' in html
            assert "Choose your bank" not in html and "选择您的银行" not in html


# ------------------------------------------------------------------------------------------ links and refusals


def _as(api: Api, role: str, locale: str = "en") -> None:
    username, _ = api.kit.user(role)
    sign_in_page(api.client, username, "/")
    api.client.cookies.set("ml_lang", locale)


def test_a_refusal_says_what_was_tried_who_may_and_the_way_back(api: Api) -> None:
    cid = make_customer(api)
    _as(api, "marketer")
    r = api.client.get(f"/customers/{cid}/360", headers={"Referer": f"http://testserver/customers/{cid}"})
    assert r.status_code == 403
    html = r.text
    assert "Not open to your role" in html and "do not allow" not in html and "view_loans" not in html
    assert f"<code>/customers/{cid}/360</code>" in html and "see loans" in html
    needed = re.search(r'data-testid="roles-needed">(.*?)</dd>', html, re.S)
    assert needed and "Loan officer" in needed.group(1) and "Auditor" in needed.group(1)
    assert "Marketer" not in needed.group(1)
    assert re.search(r'data-testid="your-roles">\s*Marketer\s*</dd>', html)
    assert f'href="/customers/{cid}" data-testid="back"' in html

    api.client.cookies.set("ml_lang", "zh_CN")
    zh = api.client.get(f"/customers/{cid}/360", headers={"Referer": "http://evil.example/x"}).text
    assert "您的角色无权访问此页" in zh and "查看贷款" in zh and "客户经理" in zh and "营销人员" in zh
    assert "Not open to your role" not in zh and 'href="/" data-testid="back"' in zh
    api.client.cookies.clear()


def test_a_refused_menu_page_names_the_permission_of_the_menu(api: Api) -> None:
    _as(api, "marketer", "zh_CN")
    r = api.client.get("/audit")
    assert r.status_code == 403 and "查看审计轨迹" in r.text and "审计人员" in r.text
    api.client.cookies.clear()


@pytest.mark.parametrize("role", [str(r) for r in STAFF_ROLES])
def test_the_customer_360_link_is_shown_exactly_to_who_may_open_it(api: Api, role: str) -> None:
    cid = make_customer(api)
    _as(api, role)
    detail = api.client.get(f"/customers/{cid}")
    opened = api.client.get(f"/customers/{cid}/360")
    assert opened.status_code in (200, 403), opened.text
    shown = f'href="/customers/{cid}/360"' in detail.text
    assert shown == (opened.status_code == 200) == access.may_open_customer_360(api.kit.principal(role))
    if role in (Role.MARKETER, Role.COLLECTOR):
        assert not shown
    api.client.cookies.clear()


_HREF = re.compile(r'<a [^>]*href="(/[^"#?]*)[^"]*"')


@pytest.mark.parametrize("role", [str(r) for r in STAFF_ROLES])
def test_every_link_a_staff_page_shows_may_be_followed(api: Api, role: str) -> None:
    """The menu (the home page first) and the links on the pages it leads to (a bank with a customer): none ends
    in a refusal."""
    make_customer(api)
    _as(api, role)
    start = api.client.get("/")
    assert start.status_code == 200, start.text
    menu = [m for m in re.findall(r'<nav class="nav" id="nav">(.*?)</nav>', start.text, re.S)]
    links = set(_HREF.findall(menu[0])) if menu else set()
    seen: dict[str, int] = {}
    frontier = sorted(links)
    for depth in range(2):
        found: set[str] = set()
        for path in frontier:
            if path in seen or path.startswith(("/static", "/lang", "/logout", "/b/", "/login")):
                continue
            r = api.client.get(path)
            seen[path] = r.status_code
            if depth == 0 and r.status_code == 200 and "text/html" in r.headers.get("content-type", ""):
                found |= set(_HREF.findall(r.text))
        frontier = sorted(found - set(seen))
    refused = {p: s for p, s in seen.items() if s == 403}
    assert not refused, f"{role} is shown links it may not follow: {refused}"
    assert seen.get("/home") == 200  # the home page of the role's own work, and its cards' links, were followed
    api.client.cookies.clear()


def test_every_role_and_permission_has_a_name_in_both_languages() -> None:
    from microlend.core.identity import Permission
    from microlend.web import i18n

    zh = i18n.translations("zh_CN")
    assert set(access.ROLE_LABELS) == set(Role) and set(access.PERMISSION_LABELS) == set(Permission)
    missing = [m for m in [*access.ROLE_LABELS.values(), *access.PERMISSION_LABELS.values()]
               if zh.gettext(m) == m]
    assert not missing
