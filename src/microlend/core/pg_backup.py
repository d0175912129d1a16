"""Backups of a PostgreSQL database where PostgreSQL's client tools are installed: `pg_dump` in its custom
format (a consistent snapshot while the platform runs) packed with the same manifest and checksum as a SQLite
backup; a restore checks the file first and then runs `pg_restore` in one transaction. The password travels
in the tools' environment, never on their command line."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from microlend.core.backup import Manifest, Progress, checked_manifest, unpack, write_archive
from microlend.core.db import make_engine
from microlend.core.errors import Conflict, NotFound, ValidationError
from microlend.core.migrate import current

DIALECT = "postgresql"


def tools_available() -> bool:
    return shutil.which("pg_dump") is not None and shutil.which("pg_restore") is not None


def _quiet(_phase: str, _done: int, _total: int) -> None:
    pass


def _connection(url: str) -> tuple[list[str], dict[str, str]]:
    """libpq options and environment for the tools, from a database URL."""
    parsed = make_url(url)
    args = [f"--dbname={parsed.database or ''}"]
    if parsed.host:
        args.append(f"--host={parsed.host}")
    if parsed.port:
        args.append(f"--port={parsed.port}")
    if parsed.username:
        args.append(f"--username={parsed.username}")
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    return args, env


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise Conflict(f"database: {what} failed: {lines[-1] if lines else f'exit code {done.returncode}'}")


def _heads(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        return current(engine)
    finally:
        engine.dispose()


def backup(url: str, to: Path, *, now: datetime, progress: Progress = _quiet) -> Manifest:
    """Dump the database at `url` into the backup file `to` (which must not exist yet)."""
    if to.exists():
        raise Conflict(f"--to: {to} already exists; choose another name (a backup never overwrites one)")
    heads = _heads(url)
    if not heads:
        raise ValidationError("database: it has no schema yet (run `microlend db upgrade`)", field="database")
    to.parent.mkdir(parents=True, exist_ok=True)
    args, env = _connection(url)
    with tempfile.TemporaryDirectory(dir=to.parent, prefix=".microlend-backup-") as work:
        dump = Path(work) / "microlend.pgdump"
        progress("dump", 0, 1)
        _run(["pg_dump", "--format=custom", f"--file={dump}", *args], env, "pg_dump")
        progress("dump", 1, 1)
        return write_archive(dump, to, DIALECT, heads, now=now, progress=progress)


def restore(file: Path, url: str, *, force: bool = False, progress: Progress = _quiet) -> Manifest:
    """Check the backup `file`, then restore it into the database at `url` with pg_restore (one transaction:
    all or nothing); a database that already holds a schema is replaced only with `force`."""
    if not file.is_file():
        raise NotFound(f"--from: no file at {file}", field="from")
    manifest = checked_manifest(file, DIALECT)
    if _heads(url) and not force:
        raise Conflict("the database already holds a Microlend schema: stop the servers and jobs using it and pass "
                       "--force to replace it with the backup")
    args, env = _connection(url)
    with tempfile.TemporaryDirectory(prefix=".microlend-restore-") as work:
        dump = Path(work) / "microlend.pgdump"
        unpack(file, dump, manifest, progress)
        progress("restore", 0, 1)
        _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error",
              *args, str(dump)], env, "pg_restore")
        progress("restore", 1, 1)
    return manifest
