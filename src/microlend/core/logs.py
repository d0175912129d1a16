"""Logging that never shows personal data: resident IDs, USCCs and mobiles are masked in every record."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from microlend.core.crypto import mask, mask_phone

_ID = re.compile(r"(?<![0-9A-Z])(\d{17}[\dXx]|[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10})(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d{9})(?!\d)")


def redact(text: str) -> str:
    text = _ID.sub(lambda m: mask(m.group(1)), text)
    return _MOBILE.sub(lambda m: mask_phone(m.group(1)), text)


class PersonalDataFilter(logging.Filter):
    """Masks personal data in the formatted message (arguments included) before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Text arguments are masked in place, so the record keeps its shape: a formatter that reads the
        arguments themselves (uvicorn's access log unpacks five of them) still works. Only when another
        kind of argument carries personal data is the record reduced to its masked message."""
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
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
