"""Backups of the SQLite database (the default): taken online with SQLite's backup API (a consistent copy even
while the server writes), stored as one zip file holding the copy and a manifest (format, version of
Microlend, migration heads, time, size, SHA-256). A restore checks all of it before it touches the database,
and writes the copy in through the same backup API, so a process that has the database open sees either the
old content or the new one. PostgreSQL is backed up with its own tools (`core/pg_backup.py`)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from microlend import __version__
from microlend.core.errors import Conflict, NotFound, ValidationError
from microlend.core.migrate import compare_with_heads

FORMAT = "microlend-backup/1"
MANIFEST = "manifest.json"
DATABASE = "microlend.db"
#: The archive member holding the database, by dialect: SQLite's file, or pg_dump's custom-format dump.
MEMBERS = {"sqlite": DATABASE, "postgresql": "microlend.pgdump"}
CHUNK = 1024 * 1024
PAGES_PER_STEP = 4096
BUSY_TIMEOUT_S = 30.0

#: Reports progress: (phase, done, total) — pages for "copy"/"restore", bytes for "checksum"/"pack"/"unpack".
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Manifest:
    format: str
    app_version: str
    created_at: str
    migration_heads: list[str]
    sha256: str
    bytes: int
    dialect: str = "sqlite"


def _quiet(_phase: str, _done: int, _total: int) -> None:
    pass


def sqlite_path(url: str) -> Path:
    """The file of a SQLite database URL."""
    path = url.split("///", 1)[-1]
    if not path or path == ":memory:" or "///" not in url:
        raise ValidationError("database: an in-memory SQLite database has nothing to back up", field="database")
    return Path(path)


def dialect_of(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0]


def explain_other(url: str) -> ValidationError:
    """What to do for a database these commands do not handle (PostgreSQL without its client tools)."""
    return ValidationError(
        f"database: backup and restore here cover SQLite, and PostgreSQL where pg_dump and pg_restore are "
        f"installed; this database is {dialect_of(url)}: use `pg_dump --format=custom --file FILE URL` and "
        "`pg_restore --clean --if-exists --no-owner --dbname URL FILE` (see the README, 'Operating it')",
        field="database")


def backup(db: Path, to: Path, *, now: datetime, progress: Progress = _quiet) -> Manifest:
    """Copy the live database `db` into the backup file `to` (which must not exist yet)."""
    if not db.is_file():
        raise NotFound(f"database: no database file at {db}", field="database")
    if to.exists():
        raise Conflict(f"--to: {to} already exists; choose another name (a backup never overwrites one)")
    to.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=to.parent, prefix=".microlend-backup-") as work:
        copy = Path(work) / DATABASE
        _copy_pages(db, copy, "copy", progress)
        heads = _heads(copy)
        if not heads:
            raise ValidationError(f"database: {db} has no schema yet (run `microlend db upgrade`)", field="database")
        manifest = write_archive(copy, to, "sqlite", heads, now=now, progress=progress)
    return manifest


def write_archive(payload: Path, to: Path, dialect: str, heads: list[str], *, now: datetime,
                  progress: Progress = _quiet) -> Manifest:
    """Write `payload` (the database copy or dump) and its manifest into the zip file `to`, atomically."""
    size = payload.stat().st_size
    manifest = Manifest(FORMAT, __version__, now.isoformat(), heads, _sha256(payload, progress), size, dialect)
    partial = payload.with_name("backup.zip.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        archive.writestr(MANIFEST, json.dumps(asdict(manifest), indent=2))
        member = zipfile.ZipInfo(MEMBERS[dialect], date_time=now.timetuple()[:6])
        member.compress_type = zipfile.ZIP_DEFLATED
        with payload.open("rb") as source, archive.open(member, "w", force_zip64=True) as target:
            _stream(source, target, size, "pack", progress)
    with partial.open("rb") as done:
        os.fsync(done.fileno())
    os.replace(partial, to)
    return manifest


def read_manifest(file: Path) -> Manifest:
    """The manifest of a backup file; a file that is not one (or is damaged) is refused with the reason."""
    if not file.is_file():
        raise NotFound(f"--from: no file at {file}", field="from")
    try:
        with zipfile.ZipFile(file) as archive:
            data = json.loads(archive.read(MANIFEST))
            names = set(archive.namelist())
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError) as exc:
        raise ValidationError(f"--from: {file} is not a Microlend backup or is damaged ({exc})", field="from") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or MEMBERS.get(data.get("dialect", "")) not in names:
        raise ValidationError(f"--from: {file} is not a Microlend backup (format {FORMAT})", field="from")
    try:
        return Manifest(**{k: data[k] for k in Manifest.__dataclass_fields__ if k in data})
    except TypeError as exc:
        raise ValidationError(f"--from: the manifest of {file} is incomplete ({exc})", field="from") from None


def restore(file: Path, db: Path, *, force: bool = False, progress: Progress = _quiet) -> Manifest:
    """Check the backup `file` (format, checksum, SQLite's integrity check, a schema this version knows), then
    write it over `db`; an existing database is replaced only with `force`."""
    manifest = checked_manifest(file, "sqlite")
    if db.exists() and db.stat().st_size > 0 and not force:
        raise Conflict(f"{db} already holds a database: stop the servers and jobs using it and pass --force to "
                       "replace it with the backup")
    db.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=db.parent, prefix=".microlend-restore-") as work:
        copy = Path(work) / DATABASE
        unpack(file, copy, manifest, progress)
        _check_copy(copy, file, manifest)
        _copy_pages(copy, db, "restore", progress)
    return manifest


def checked_manifest(file: Path, dialect: str) -> Manifest:
    """The manifest of a backup this version can restore into a `dialect` database."""
    manifest = read_manifest(file)
    if manifest.dialect != dialect:
        raise ValidationError(f"--from: the backup holds a {manifest.dialect} database; this database is {dialect}",
                              field="from")
    state = compare_with_heads(manifest.migration_heads)
    if state.unknown:
        raise ValidationError(
            f"--from: the backup was made by Microlend {manifest.app_version}, whose schema holds revisions this "
            f"version ({__version__}) does not know ({', '.join(state.unknown)}); restore it with that version "
            "or a newer one", field="from")
    return manifest


def unpack(file: Path, copy: Path, manifest: Manifest, progress: Progress = _quiet) -> None:
    """Extract the backup's database to `copy`, checking it against the manifest's checksum."""
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(file) as archive, archive.open(MEMBERS[manifest.dialect]) as source, \
                copy.open("wb") as target:
            _stream(source, target, manifest.bytes, "unpack", progress, digest)
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise ValidationError(f"--from: {file} is damaged: {exc}", field="from") from None
    if digest.hexdigest() != manifest.sha256:
        raise ValidationError(f"--from: {file} is damaged: its database does not match the checksum in its "
                              "manifest", field="from")


def _check_copy(copy: Path, file: Path, manifest: Manifest) -> None:
    c = _connect(copy)
    try:
        verdict = c.execute("PRAGMA integrity_check").fetchone()
    except sqlite3.DatabaseError as exc:
        raise ValidationError(f"--from: {file} does not hold a usable SQLite database ({exc})", field="from") from None
    finally:
        c.close()
    if verdict is None or verdict[0] != "ok":
        raise ValidationError(f"--from: the database in {file} fails SQLite's integrity check ({verdict})",
                              field="from")
    if sorted(_heads(copy)) != sorted(manifest.migration_heads):
        raise ValidationError(f"--from: the database in {file} is not at the schema its manifest names", field="from")


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)


def _copy_pages(source: Path, target: Path, phase: str, progress: Progress) -> None:
    """SQLite's online backup: a consistent copy of `source` into `target`, a few pages at a time (it starts
    over by itself if another process writes to the source meanwhile)."""
    src, dst = _connect(source), _connect(target)
    try:
        src.backup(dst, pages=PAGES_PER_STEP,
                   progress=lambda _status, remaining, total: progress(phase, total - remaining, total))
    except sqlite3.OperationalError as exc:
        raise Conflict(f"database: cannot copy {source} to {target}: {exc}") from None
    finally:
        dst.close()
        src.close()


def _heads(path: Path) -> list[str]:
    c = _connect(path)
    try:
        return sorted(str(r[0]) for r in c.execute("SELECT version_num FROM alembic_version"))
    except sqlite3.DatabaseError:
        return []
    finally:
        c.close()


def _sha256(path: Path, progress: Progress) -> str:
    digest, size, done = hashlib.sha256(), path.stat().st_size, 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            done += len(chunk)
            progress("checksum", done, size)
    return digest.hexdigest()


def _stream(source: IO[bytes], target: IO[bytes], total: int, phase: str, progress: Progress,
            digest: Any = None) -> None:
    done = 0
    while chunk := source.read(CHUNK):
        target.write(chunk)
        if digest is not None:
            digest.update(chunk)
        done += len(chunk)
        progress(phase, done, total)
