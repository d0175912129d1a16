"""What every command shares: the database from settings, the identity a command acts as, and user errors
as one line on stderr with exit code 2, never a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy import select
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from microlend.bootstrap import load_modules
from microlend.core import tenancy
from microlend.core.db import make_engine, make_session_factory
from microlend.core.errors import DomainError, NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Principal, system_principal
from microlend.core.settings import MIN_SECRET_LENGTH, get_settings, is_loopback
from microlend.core.tables import UserRow
from microlend.core.uow import UnitOfWork

if TYPE_CHECKING:
    from microlend.batch.engine import BatchEngine
    from microlend.batch.sources import ParquetDataset

P = ParamSpec("P")
R = TypeVar("R")
console = Console()
err_console = Console(stderr=True, soft_wrap=True)
#: The exit code of input a user can correct (1 is kept for "the check found problems").
BAD_INPUT = 2


def open_uow() -> UnitOfWork:
    """A unit of work on the configured database (MICROLEND_DATABASE_URL)."""
    load_modules()
    return UnitOfWork(make_session_factory(make_engine(get_settings().database_url)))


def fail(message: str, code: int = BAD_INPUT) -> typer.Exit:
    """Print a user error on stderr; raise the returned Exit to leave with `code`."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


@contextmanager
def guarded(*, library_errors: bool = False) -> Iterator[None]:
    """Errors a user can cause become one line and exit code 2: domain errors, files that cannot be read or
    written, a database without its schema, a bad setting; with `library_errors`, also what the data
    libraries say about data they cannot use (ValueError, KeyError)."""
    try:
        yield
    except DomainError as exc:
        raise fail(exc.message) from None
    except OperationalError as exc:
        if "no such table" in str(exc) or "does not exist" in str(exc):
            raise fail("the database has no schema yet: run `microlend db upgrade` first") from None
        raise fail(f"the database is not reachable: {_first_line(exc.orig)}") from None
    except SQLAlchemyError as exc:
        first = _first_line(getattr(exc, "orig", None) or exc)
        raise fail(f"database: {first} (is the schema up to date? run `microlend db upgrade`)") from None
    except OSError as exc:
        raise fail(f"{getattr(exc, 'filename', None) or 'file'}: {exc.strerror or exc}") from None
    except (ValueError, KeyError) as exc:
        if isinstance(exc, ValueError) and "MICROLEND_" in str(exc):
            raise fail(str(exc)) from None
        if not library_errors:
            raise
        raise fail(f"the data cannot be used: {_first_line(exc) or type(exc).__name__}") from None


def user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """A command whose user errors end it with a message and exit code 2 (see `guarded`)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with guarded():
            return fn(*args, **kwargs)

    return wrapper


def _first_line(exc: object) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def tenant_principal(tenant: str, username: str = "cli") -> tuple[UnitOfWork, Principal]:
    """A unit of work and the platform's own identity inside the bank named `tenant` (`--tenant`)."""
    uow = open_uow()
    return uow, system_principal(tenancy.tenant_by_name(uow, tenant).id, username=username)


def user_principal(uow: UnitOfWork, username: str, tenant: str | None = None) -> Principal:
    """The staff user a command acts as (`--user`, within `--tenant` when given): the operator is trusted to
    name them, their roles still apply."""
    bank_id = None if tenant is None else tenancy.tenant_by_name(uow, tenant).id
    with uow:
        query = select(UserRow).where(UserRow.username == username)
        if bank_id is not None:
            query = query.where(UserRow.tenant_id == bank_id)
        row = uow.session.execute(query).scalar_one_or_none()
        if tenant is None and (row is None or not row.active):
            raise NotFound(f"--user: no active user '{username}'", field="user")
        if row is None:
            raise NotFound(f"user: '{username}' not found in bank '{tenant}'", field="user")
        if not row.active:
            raise PermissionDenied(f"user: '{username}' is deactivated")
        return tenancy.principal_for(row)


def is_tty() -> bool:
    return sys.stdout.isatty()


def check_bind(host: str) -> None:
    """A server other machines can reach signs its tokens with a secret of its own, never one from a file
    that only suits this machine."""
    if not is_loopback(host) and not get_settings().has_real_secret:
        raise fail(f"host: {host} is reachable from other machines; set MICROLEND_SECRET_KEY to a random secret "
                   f"of at least {MIN_SECRET_LENGTH} characters first (or bind to 127.0.0.1)")


def read_table(path: Path, field: str = "data") -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame; anything else is refused with the reason."""
    if not path.is_file():
        raise ValidationError(f"{field}: file '{path}' not found", field=field)
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path)
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            raise ValidationError(f"{field}: use a .csv or .parquet file, not '{path.name}'", field=field)
    except ValidationError:
        raise
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValidationError(f"{field}: cannot read '{path.name}': {first_line}", field=field) from None
    if frame.empty:
        raise ValidationError(f"{field}: '{path.name}' has no rows", field=field)
    return frame


def write_table(frame: pd.DataFrame, path: Path, field: str = "out") -> None:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise ValidationError(f"{field}: use a .csv or .parquet file name, not '{path.name}'", field=field)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)


def batch_engine(name: str) -> BatchEngine:
    """The batch engine `--engine` names ("local" or "spark"); an unknown name or an engine that cannot run
    here (no pyspark, no Java) ends the command with exit code 2 and what to install."""
    from microlend.batch.engine import EngineUnavailable, engine_named

    try:
        return engine_named(name)
    except EngineUnavailable as exc:
        raise fail(str(exc)) from None


def parquet_tables(data: Path) -> dict[str, Path]:
    """The tables in a folder (`--data`), by name: `name.parquet` files and `name/` folders of partitioned Parquet
    files (`name/tenant_id=1/month=2026-03/part-0.parquet`; a sub-folder without any is no table). A name given
    both ways is refused."""
    from microlend.batch.sources import first_parquet

    if not data.is_dir():
        raise ValidationError(f"data: no folder at {data}", field="data")
    tables = {p.stem: p for p in sorted(data.glob("*.parquet")) if p.is_file()}
    for folder in sorted(p for p in data.iterdir() if p.is_dir()):
        if first_parquet(folder) is not None:
            if folder.name in tables:
                raise ValidationError(f"data: {data} has both {folder.name}.parquet and a {folder.name}/ folder",
                                      field="data")
            tables[folder.name] = folder
    return tables


def parquet_folder(path: Path, name: str) -> ParquetDataset:
    """Table `name` as a folder of partitioned Parquet files, declared with its files' columns and types, which
    the batch engine reads itself (on Spark, the cluster's executors in parallel) instead of this process."""
    from microlend.batch.sources import ParquetDataset

    try:
        return ParquetDataset.of_files(path)
    except FileNotFoundError:
        raise ValidationError(f"{name}: no Parquet files under {path}", field=name) from None
    except ValueError as exc:  # a file that is not Parquet, a column of no portable type
        raise ValidationError(f"{name}: cannot read the files under {path}: {_first_line(exc)}",
                              field=name) from None
