"""The password policy, one function for every way a user or a borrower gets a password.

Rules, each refused with a message naming it: at least `MIN_LENGTH` characters; not only whitespace; not one
of the most common passwords (`common_passwords.txt`, bundled: the top entries of the well-known public
leaked-password rankings, lower-cased, compared case-insensitively and ignoring surrounding spaces); not
containing the username (case-insensitive), nor the part of an e-mail-like username before '@' when it has
at least four characters (a borrower's mobile)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from microlend.core.errors import ValidationError

MIN_LENGTH = 10
MAX_LENGTH = 200


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("microlend.core").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    lines = (line.strip().lower() for line in text.splitlines())
    return frozenset(line for line in lines if line and not line.startswith("# "))


def check_password(password: str, username: str = "") -> None:
    """Raise ValidationError (field 'password') naming the first rule the password breaks."""
    if not password.strip():
        raise ValidationError("password: must not be empty or only whitespace", field="password")
    if len(password) < MIN_LENGTH:
        raise ValidationError(f"password: use at least {MIN_LENGTH} characters", field="password")
    if len(password) > MAX_LENGTH:
        raise ValidationError(f"password: use at most {MAX_LENGTH} characters", field="password")
    if password.strip().lower() in common_passwords():
        raise ValidationError("password: this is one of the most common passwords; choose another",
                              field="password")
    lowered = password.lower()
    name = username.strip().lower()
    local = name.split("@", 1)[0]
    if name and (name in lowered or (len(local) >= 4 and local in lowered)):
        raise ValidationError("password: must not contain the username", field="password")
