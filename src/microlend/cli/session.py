"""Who a four-eyes command acts as: the person who signed in with `microlend login` on this machine.

`microlend login --user NAME` checks the password (prompted without echo, or read from stdin with
`--password-stdin`) like the API's sign-in, and keeps a short-lived bearer token in the data directory
(`cli-session`, mode 0600); `microlend logout` removes it. The token names the user's credentials version,
so it stops working when their password, roles or active flag change. Commands that make one half of a
maker-checker pair (submit, publish, promote, roll back, apply limit changes, register, validate, approve
and promote models) take their person from it and refuse, with exit code 2, without a valid one; naming
`--user` does not stand in for signing in."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from microlend.cli.common import fail
from microlend.core import tenancy
from microlend.core.errors import AuthenticationFailed
from microlend.core.identity import Principal
from microlend.core.settings import get_settings
from microlend.core.uow import UnitOfWork

SESSION_FILE = "cli-session"
#: How long a command-line sign-in lasts.
SESSION_MINUTES = 30
_LOG_IN = "log in first with `microlend login --user NAME`"


def session_path() -> Path:
    return get_settings().data_dir / SESSION_FILE


def log_in(uow: UnitOfWork, username: str, password: str) -> Principal:
    """Check the password and keep a short-lived token for this machine's commands (file mode 0600)."""
    settings = get_settings()
    who = tenancy.authenticate(uow, username, password, settings, client="cli")
    token = tenancy.issue_token(who, settings.model_copy(update={"access_token_minutes": SESSION_MINUTES}), uow=uow)
    path = session_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{SESSION_FILE}.{os.getpid()}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token)
    os.chmod(scratch, 0o600)
    os.replace(scratch, path)
    return who


def log_out() -> bool:
    """Forget the sign-in; False when there was none."""
    try:
        session_path().unlink()
    except FileNotFoundError:
        return False
    return True


def signed_in_person(uow: UnitOfWork, act: str, user: str | None = None, tenant: str | None = None) -> Principal:
    """The signed-in person, for a four-eyes act; exit code 2 with a clear message without a valid sign-in,
    or when `--user`/`--tenant` name someone or somewhere else."""
    path = session_path()
    if not path.exists():
        named = f" (--user {user} is not a sign-in)" if user else ""
        raise fail(f"{act}: a four-eyes act needs the person signed in{named}; {_LOG_IN}")
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise fail(f"{act}: {path} can be read by others; {_LOG_IN} again")
    try:
        who = tenancy.principal_from_token(uow, path.read_text(encoding="utf-8").strip())
    except AuthenticationFailed as exc:
        raise fail(f"{act}: {exc.message}; {_LOG_IN}") from None
    if user is not None and user != who.username:
        raise fail(f"--user: you are signed in as '{who.username}', not '{user}'; log in as '{user}' first")
    if tenant is not None and tenancy.tenant_by_name(uow, tenant).id != who.tenant_id:
        raise fail(f"--tenant: '{who.username}' is not a user of bank '{tenant}'")
    return who
