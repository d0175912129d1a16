"""Backups of the SQLite database (the default): taken online with SQLite's backup API (a consistent copy even
while the server writes), stored as one zip file holding the copy and a manifest (format, version of
Microlend, migration heads, time, size, SHA-256). A restore checks all of it before it touches the database,
and writes the copy in through the same backup API, so a process that has the database open sees either the
old content or the new one. PostgreSQL is backed up with its own tools (`pg_dump`/`pg_restore`)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
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
    """The file of a SQLite database URL; any other database is backed up with its own tools."""
    if not url.startswith("sqlite"):
        dialect = url.split(":", 1)[0]
        found = "pg_dump is on this machine" if shutil.which("pg_dump") else "install PostgreSQL's client tools"
        raise ValidationError(
            f"database: backup and restore here cover SQLite; this database is {dialect}: use "
            "`pg_dump --format=custom --file FILE URL` and "
            f"`pg_restore --clean --if-exists --no-owner --dbname URL FILE` "
            f"({found}; see the README, 'Operating it')", field="database")
    path = url.split("///", 1)[-1]
    if not path or path == ":memory:" or "///" not in url:
        raise ValidationError("database: an in-memory SQLite database has nothing to back up", field="database")
    return Path(path)


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
        size = copy.stat().st_size
        manifest = Manifest(FORMAT, __version__, now.isoformat(), heads, _sha256(copy, progress), size)
        partial = Path(work) / "backup.zip"
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            archive.writestr(MANIFEST, json.dumps(asdict(manifest), indent=2))
            member = zipfile.ZipInfo(DATABASE, date_time=now.timetuple()[:6])
            member.compress_type = zipfile.ZIP_DEFLATED
            with copy.open("rb") as source, archive.open(member, "w", force_zip64=True) as target:
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
    if not isinstance(data, dict) or data.get("format") != FORMAT or DATABASE not in names:
        raise ValidationError(f"--from: {file} is not a Microlend backup (format {FORMAT})", field="from")
    try:
        return Manifest(**{k: data[k] for k in Manifest.__dataclass_fields__ if k in data})
    except TypeError as exc:
        raise ValidationError(f"--from: the manifest of {file} is incomplete ({exc})", field="from") from None


def restore(file: Path, db: Path, *, force: bool = False, progress: Progress = _quiet) -> Manifest:
    """Check the backup `file` (format, checksum, SQLite's integrity check, a schema this version knows), then
    write it over `db`; an existing database is replaced only with `force`."""
    manifest = read_manifest(file)
    state = compare_with_heads(manifest.migration_heads)
    if state.unknown:
        raise ValidationError(
            f"--from: the backup was made by Microlend {manifest.app_version}, whose schema holds revisions this "
            f"version ({__version__}) does not know ({', '.join(state.unknown)}); restore it with that version "
            "or a newer one", field="from")
    if db.exists() and db.stat().st_size > 0 and not force:
        raise Conflict(f"{db} already holds a database: stop the servers and jobs using it and pass --force to "
                       "replace it with the backup")
    db.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=db.parent, prefix=".microlend-restore-") as work:
        copy = Path(work) / DATABASE
        _unpack(file, copy, manifest, progress)
        _check_copy(copy, file, manifest)
        _copy_pages(copy, db, "restore", progress)
    return manifest


def _unpack(file: Path, copy: Path, manifest: Manifest, progress: Progress) -> None:
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(file) as archive, archive.open(DATABASE) as source, copy.open("wb") as target:
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
