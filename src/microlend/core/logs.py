"""Logging that never shows personal data: resident IDs, USCCs and mobiles are masked in every record."""

from __future__ import annotations

import logging
import re

from microlend.core.crypto import mask, mask_phone

_ID = re.compile(r"(?<![0-9A-Z])(\d{17}[\dXx]|[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10})(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d{9})(?!\d)")


def redact(text: str) -> str:
    text = _ID.sub(lambda m: mask(m.group(1)), text)
    return _MOBILE.sub(lambda m: mask_phone(m.group(1)), text)


class PersonalDataFilter(logging.Filter):
    """Masks personal data in the formatted message (arguments included) before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
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
