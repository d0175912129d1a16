"""Logging that never shows personal data: resident IDs, USCCs and mobiles are masked in every record."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from microlend.core.crypto import redact

__all__ = ["PersonalDataFilter", "install", "redact"]


class _MaskedFormat(str):
    """A record's format string whose formatting masks the formatted message: `record.getMessage()` gives the
    masked text while `record.args` keep their number and types for formatters that read them."""

    __slots__ = ()

    def __str__(self) -> str:
        return self

    def __mod__(self, args: Any) -> str:
        return redact(str.__mod__(self, args))


class PersonalDataFilter(logging.Filter):
    """Masks personal data in the formatted message (arguments included) before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Text arguments are masked in place, so the record keeps its shape: a formatter that reads the
        arguments themselves (uvicorn's access log unpacks five of them) still works, and the record's format
        string masks whatever the formatted message still shows (a number argument, an object's text). The
        arguments are never dropped: a record is never lost to a formatter that needs them."""
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        if not isinstance(record.msg, _MaskedFormat):
            record.msg = _MaskedFormat(redact(str(record.msg)))
        return True


def install() -> None:
    """Attach the filter to every handler of the root logger and to the ones uvicorn uses."""
    flt = PersonalDataFilter()
    for name in ("", "uvicorn", "uvicorn.access", "uvicorn.error", "microlend"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, PersonalDataFilter) for f in logger.filters):
            logger.addFilter(flt)
        for handler in logger.handlers:
            if not any(isinstance(f, PersonalDataFilter) for f in handler.filters):
                handler.addFilter(flt)
