"""Outside production a data dir keeps a random key of its own (0600), never a public default; a server
reachable from other machines needs a secret that was given to it."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import typer
from typer.testing import CliRunner

from microlend.cli.common import check_bind
from microlend.cli.main import app
from microlend.core.settings import LOCAL_SECRET, SECRET_FILE, Settings, get_settings, is_loopback


@pytest.fixture
def no_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.delenv("MICROLEND_SECRET_KEY", raising=False)
    monkeypatch.setenv("MICROLEND_MODE", "local")
    monkeypatch.setenv("MICROLEND_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield tmp_path / "var"
    get_settings.cache_clear()


def test_a_new_data_dir_gets_a_random_key_only_its_owner_reads(no_secret: Path) -> None:
    first = Settings(mode="local", data_dir=no_secret)
    assert first.secret_key != LOCAL_SECRET and len(first.secret_key) >= 32
    assert stat.S_IMODE((no_secret / SECRET_FILE).stat().st_mode) == 0o600
    assert Settings(mode="local", data_dir=no_secret).secret_key == first.secret_key  # kept
    other = no_secret.parent / "other"
    assert Settings(mode="local", data_dir=other).secret_key != first.secret_key  # one per data dir


def test_a_token_forged_with_the_public_default_is_not_valid(no_secret: Path) -> None:
    from microlend.core.errors import AuthenticationFailed
    from microlend.core.tenancy import principal_from_token

    settings = Settings(mode="local", data_dir=no_secret)
    forged = jwt.encode({"sub": "1", "tid": 1, "exp": 4_000_000_000}, LOCAL_SECRET, algorithm="HS256")
    with pytest.raises(AuthenticationFailed):
        principal_from_token(None, forged, settings)  # type: ignore[arg-type]  # refused before any read


def test_a_data_dir_with_a_database_from_before_keeps_its_key_so_its_data_stays_readable(no_secret: Path) -> None:
    no_secret.mkdir(parents=True)
    (no_secret / "microlend.db").write_bytes(b"")
    assert Settings(mode="local", data_dir=no_secret).secret_key == LOCAL_SECRET
    assert not Settings(mode="local", data_dir=no_secret).has_real_secret


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "example.org"])
def test_hosts_other_machines_reach(host: str) -> None:
    assert not is_loopback(host)


def test_serve_refuses_a_public_bind_without_a_given_secret(no_secret: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", "8123"])
    assert result.exit_code == 2, result.output
    assert "MICROLEND_SECRET_KEY" in result.output
    check_bind("127.0.0.1")  # a loopback bind is fine with the data dir's key


def test_a_given_secret_allows_a_public_bind(no_secret: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROLEND_SECRET_KEY", "s" * 40)
    get_settings.cache_clear()
    check_bind("0.0.0.0")
    monkeypatch.setenv("MICROLEND_SECRET_KEY", LOCAL_SECRET)
    get_settings.cache_clear()
    with pytest.raises(typer.Exit):
        check_bind("0.0.0.0")
