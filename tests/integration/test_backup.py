"""`microlend backup` and `microlend restore` on SQLite: a round trip gives back the very same data with an
intact audit chain; a damaged, foreign or too-new file is refused with a message and exit code 2 before the
database is touched; an existing database is replaced only with --force. PostgreSQL goes through pg_dump and
pg_restore where they are installed; without them the commands say what to run."""

from __future__ import annotations

import json
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from microlend.cli.main import app
from microlend.core import audit, pg_backup, tenancy
from microlend.core.backup import DATABASE, MANIFEST
from microlend.core.db import Base, make_session_factory
from microlend.core.errors import ValidationError
from microlend.core.settings import get_settings
from microlend.core.uow import UnitOfWork

runner = CliRunner()


@pytest.fixture
def live_db(backend: str, fresh_db_url: str, fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A migrated SQLite database with two banks in it, the one the commands act on."""
    if backend != "sqlite":
        pytest.skip("SQLite's backup; PostgreSQL's is tested below with pg_dump")
    uow = UnitOfWork(make_session_factory(fresh_engine))
    for name in ("bank-a", "bank-b"):
        t = tenancy.create_tenant(uow, name)
        with uow:
            tenancy.add_user(uow.session, t.id, f"ops@{name}", "correct-horse-1", ["admin"])
            uow.commit()
    monkeypatch.setenv("MICROLEND_DATABASE_URL", fresh_db_url)
    get_settings.cache_clear()
    yield Path(fresh_db_url.split("///", 1)[1])
    get_settings.cache_clear()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def dump(db: Path) -> list[str]:
    with sqlite3.connect(db) as c:
        return list(c.iterdump())


def chains_intact(engine: Engine) -> bool:
    uow = UnitOfWork(make_session_factory(engine))
    with uow:
        reports = [audit.verify(uow.session, t.id) for t in tenancy.list_tenants(uow)]
    return bool(reports) and all(r.ok and r.records > 0 for r in reports)


def test_a_round_trip_gives_back_the_same_data_with_an_intact_audit_chain(
    live_db: Path, fresh_engine: Engine, tmp_path: Path,
) -> None:
    before = dump(live_db)
    file = tmp_path / "nightly.mlbackup"
    code, out = run("backup", "--to", str(file))
    assert code == 0, out
    manifest = json.loads(zipfile.ZipFile(file).read(MANIFEST))
    assert manifest["format"] == "microlend-backup/1" and manifest["migration_heads"] and manifest["sha256"]

    tenancy.create_tenant(UnitOfWork(make_session_factory(fresh_engine)), "bank-after-backup")
    assert dump(live_db) != before

    code, out = run("restore", "--from", str(file), "--force")
    assert code == 0, out
    fresh_engine.dispose()
    assert dump(live_db) == before
    assert chains_intact(fresh_engine)
    names = [t.name for t in tenancy.list_tenants(UnitOfWork(make_session_factory(fresh_engine)))]
    assert "bank-after-backup" not in names and {"bank-a", "bank-b"} <= set(names)


def test_restore_into_an_empty_place_needs_no_force(live_db: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "b.zip"
    assert run("backup", "--to", str(file))[0] == 0
    target = tmp_path / "new" / "microlend.db"
    monkeypatch.setenv("MICROLEND_DATABASE_URL", f"sqlite:///{target}")
    get_settings.cache_clear()
    code, out = run("restore", "--from", str(file))
    assert code == 0, out
    assert dump(target) == dump(live_db)


def test_a_backup_runs_beside_a_writer_and_holds_only_committed_data(live_db: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    committed = dump(live_db)
    writer = sqlite3.connect(live_db, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE tenants SET display_name = 'halfway' WHERE name = 'bank-a'")
        code, out = run("backup", "--to", str(tmp_path / "b.zip"))
        assert code == 0, out
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    target = tmp_path / "restored.db"
    monkeypatch.setenv("MICROLEND_DATABASE_URL", f"sqlite:///{target}")
    get_settings.cache_clear()
    assert run("restore", "--from", str(tmp_path / "b.zip"))[0] == 0
    assert dump(target) == committed


def test_an_existing_database_is_replaced_only_with_force(live_db: Path, tmp_path: Path) -> None:
    file = tmp_path / "b.zip"
    assert run("backup", "--to", str(file))[0] == 0
    before = dump(live_db)
    code, out = run("restore", "--from", str(file))
    assert code == 2 and "--force" in out and "already holds a database" in out
    assert dump(live_db) == before
    code, out = run("backup", "--to", str(file))
    assert code == 2 and "already exists" in out


def _rewrite(file: Path, *, manifest: dict[str, object] | None = None, database: bytes | None = None) -> None:
    with zipfile.ZipFile(file) as archive:
        old_manifest, old_db = archive.read(MANIFEST), archive.read(DATABASE)
    with zipfile.ZipFile(file, "w") as archive:
        archive.writestr(MANIFEST, json.dumps(manifest) if manifest is not None else old_manifest)
        archive.writestr(DATABASE, database if database is not None else old_db)


@pytest.mark.parametrize("damage, message", [
    ("database", "does not match the checksum"),
    ("truncated", "not a Microlend backup or is damaged"),
    ("not a zip", "not a Microlend backup or is damaged"),
    ("newer version", "does not know (marketing_9999)"),
    ("foreign zip", "not a Microlend backup"),
])
def test_a_damaged_or_mismatched_file_is_refused_and_nothing_changes(
    live_db: Path, tmp_path: Path, damage: str, message: str,
) -> None:
    file = tmp_path / "b.zip"
    assert run("backup", "--to", str(file))[0] == 0
    manifest = json.loads(zipfile.ZipFile(file).read(MANIFEST))
    if damage == "database":
        data = bytearray(zipfile.ZipFile(file).read(DATABASE))
        data[len(data) // 2] ^= 0xFF
        _rewrite(file, database=bytes(data))
    elif damage == "truncated":
        file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    elif damage == "not a zip":
        file.write_bytes(b"SQLite format 3\x00 but not really")
    elif damage == "newer version":
        _rewrite(file, manifest={**manifest, "app_version": "9.0.0",
                                 "migration_heads": [*manifest["migration_heads"], "marketing_9999"]})
    else:
        with zipfile.ZipFile(file, "w") as archive:
            archive.writestr("readme.txt", "holiday photos")
    before = dump(live_db)
    code, out = run("restore", "--from", str(file), "--force")
    assert code == 2, out
    assert message in " ".join(out.split())
    assert dump(live_db) == before


def test_a_database_that_fails_the_integrity_check_is_refused(live_db: Path, tmp_path: Path) -> None:
    """A file whose checksum matches a broken database (made broken before the backup was written)."""
    file = tmp_path / "b.zip"
    assert run("backup", "--to", str(file))[0] == 0
    manifest = json.loads(zipfile.ZipFile(file).read(MANIFEST))
    data = bytearray(zipfile.ZipFile(file).read(DATABASE))
    data[100:4096] = b"\xff" * (4096 - 100)  # the schema page's cells
    import hashlib

    _rewrite(file, manifest={**manifest, "sha256": hashlib.sha256(data).hexdigest()}, database=bytes(data))
    code, out = run("restore", "--from", str(file), "--force")
    out = " ".join(out.split())
    assert code == 2 and ("not hold a usable SQLite database" in out or "integrity check" in out), out


def test_a_sqlite_backup_is_not_restored_into_postgresql(live_db: Path, tmp_path: Path) -> None:
    file = tmp_path / "b.zip"
    assert run("backup", "--to", str(file))[0] == 0
    with pytest.raises(ValidationError, match="holds a sqlite database; this database is postgresql"):
        pg_backup.restore(file, "postgresql://nobody@127.0.0.1:9/nowhere", force=True)


def test_without_the_tools_other_databases_are_pointed_to_them(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no pg_dump here
    monkeypatch.setenv("MICROLEND_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    get_settings.cache_clear()
    try:
        code, out = run("backup", "--to", str(tmp_path / "x.zip"))
        assert code == 2 and "pg_dump" in out and "pg_restore" in " ".join(out.split())
        code, out = run("restore", "--from", str(tmp_path / "x.zip"))
        assert code == 2 and "pg_dump" in out
    finally:
        get_settings.cache_clear()
    assert not (tmp_path / "x.zip").exists()


# --- PostgreSQL, where pg_dump and pg_restore are installed ---------------------------------------------------


@pytest.fixture
def live_pg(backend: str, fresh_db_url: str, fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if backend != "postgresql":
        pytest.skip("the SQLite tests above cover SQLite")
    if not pg_backup.tools_available():
        pytest.skip("pg_dump and pg_restore are not installed")
    uow = UnitOfWork(make_session_factory(fresh_engine))
    for name in ("bank-a", "bank-b"):
        tenancy.create_tenant(uow, name)
    monkeypatch.setenv("MICROLEND_DATABASE_URL", fresh_db_url)
    get_settings.cache_clear()
    yield fresh_db_url
    get_settings.cache_clear()


def rows(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in key order."""
    with engine.connect() as c:
        return {t.name: [tuple(r) for r in c.execute(select(t).order_by(*t.primary_key.columns))]
                for t in Base.metadata.sorted_tables}


def test_postgresql_round_trip_with_pg_dump(live_pg: str, fresh_engine: Engine, tmp_path: Path) -> None:
    before = rows(fresh_engine)
    file = tmp_path / "pg.mlbackup"
    code, out = run("backup", "--to", str(file))
    assert code == 0, out
    assert json.loads(zipfile.ZipFile(file).read(MANIFEST))["dialect"] == "postgresql"
    tenancy.create_tenant(UnitOfWork(make_session_factory(fresh_engine)), "bank-after-backup")

    code, out = run("restore", "--from", str(file))
    assert code == 2 and "--force" in out
    code, out = run("restore", "--from", str(file), "--force")
    assert code == 0, out
    fresh_engine.dispose()
    assert rows(fresh_engine) == before
    assert chains_intact(fresh_engine)
