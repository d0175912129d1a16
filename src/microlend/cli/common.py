"""What every command shares: the database from settings, a system identity, errors as exit codes."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from sqlalchemy.exc import OperationalError

from microlend.bootstrap import load_modules
from microlend.core.db import make_engine, make_session_factory
from microlend.core.errors import DomainError
from microlend.core.settings import get_settings
from microlend.core.uow import UnitOfWork

P = ParamSpec("P")
R = TypeVar("R")
console = Console()
err_console = Console(stderr=True)


def open_uow() -> UnitOfWork:
    """A unit of work on the configured database (MICROLEND_DATABASE_URL)."""
    load_modules()
    return UnitOfWork(make_session_factory(make_engine(get_settings().database_url)))


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a DomainError (or a bad setting) into a message and exit code 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except DomainError as exc:
            raise fail(exc.message) from None
        except OperationalError as exc:
            if "no such table" in str(exc) or "does not exist" in str(exc):
                raise fail("the database has no schema yet: run `microlend db upgrade` first") from None
            raise fail(f"the database is not reachable: {str(exc.orig).strip().splitlines()[0]}") from None
        except ValueError as exc:
            if "MICROLEND_" in str(exc):
                raise fail(str(exc)) from None
            raise

    return wrapper


def is_tty() -> bool:
    return sys.stdout.isatty()
