"""`microlend backup` and `microlend restore`: the database to one checked file and back, with progress —
SQLite by its online backup API, PostgreSQL by pg_dump and pg_restore where they are installed (otherwise
the commands say what to run)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from microlend.cli.common import console, user_errors
from microlend.core import backup as backups
from microlend.core import pg_backup
from microlend.core.clock import utcnow
from microlend.core.migrate import compare_with_heads
from microlend.core.settings import get_settings

_PHASES = {"copy": "copying pages", "dump": "pg_dump", "checksum": "checksum", "pack": "packing",
           "unpack": "unpacking", "restore": "restoring"}


@contextmanager
def _progress() -> Iterator[backups.Progress]:
    """A Rich progress bar per phase of the work."""
    with Progress(TextColumn("{task.description:<14}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeRemainingColumn(), console=console, transient=False) as bars:
        tasks: dict[str, TaskID] = {}

        def report(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bars.add_task(_PHASES.get(phase, phase), total=max(total, 1))
            bars.update(tasks[phase], completed=done, total=max(total, 1))

        yield report


@user_errors
def backup(
    to: Annotated[Path, typer.Option("--to", help="The backup file to write (it must not exist yet)")],
) -> None:
    """Back up the database while it runs: one file with a checksum, the version and the schema."""
    url = get_settings().database_url
    with _progress() as report:
        if backups.dialect_of(url) == "sqlite":
            db = str(backups.sqlite_path(url))
            manifest = backups.backup(Path(db), to, now=utcnow(), progress=report)
        elif backups.dialect_of(url) == "postgresql" and pg_backup.tools_available():
            db = "the PostgreSQL database"
            manifest = pg_backup.backup(url, to, now=utcnow(), progress=report)
        else:
            raise backups.explain_other(url)
    console.print(f"backup of {db} written to [bold]{to}[/] ({manifest.bytes:,} bytes of database, Microlend "
                  f"{manifest.app_version}, schema {', '.join(manifest.migration_heads)}, sha256 "
                  f"{manifest.sha256[:16]}…)", highlight=False)


@user_errors
def restore(
    from_: Annotated[Path, typer.Option("--from", help="A file written by `microlend backup`")],
    force: Annotated[bool, typer.Option("--force", help="Replace the database that is there")] = False,
) -> None:
    """Restore the database from a backup, after checking the file; an existing database is replaced only
    with --force (stop the server and the jobs first)."""
    url = get_settings().database_url
    with _progress() as report:
        if backups.dialect_of(url) == "sqlite":
            db = str(backups.sqlite_path(url))
            manifest = backups.restore(from_, Path(db), force=force, progress=report)
        elif backups.dialect_of(url) == "postgresql" and pg_backup.tools_available():
            db = "the PostgreSQL database"
            manifest = pg_backup.restore(from_, url, force=force, progress=report)
        else:
            raise backups.explain_other(url)
    console.print(f"{db} restored from {from_} (taken {manifest.created_at} by Microlend {manifest.app_version})",
                  highlight=False)
    behind = compare_with_heads(manifest.migration_heads).behind
    if behind:
        console.print(f"its schema is older than this version's on {', '.join(behind)}: run `microlend db upgrade`",
                      highlight=False)
