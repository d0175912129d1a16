"""Log lines for people and for log collectors: text locally, one JSON object per line in production
(`MICROLEND_LOG_FORMAT`). Every line written while a request is served carries its request id, and the bank
and user once they are known; personal data is masked as in `core.logs`, in the exception text too."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from microlend.core.logs import redact

#: Who and what the current request is about; empty outside a request.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
tenant_id: ContextVar[int | None] = ContextVar("tenant_id", default=None)
user_id: ContextVar[int | None] = ContextVar("user_id", default=None)

CONTEXT_FIELDS = ("request_id", "tenant_id", "user_id")
#: The attributes every LogRecord has (and uvicorn's coloured copy of its message); anything else on a
#: record came from `extra=` and is written out.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "context", "color_message", *CONTEXT_FIELDS}
#: Loggers that hand their lines to the root logger's handler instead of their own (the server's).
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


@contextmanager
def request_context(rid: str) -> Iterator[None]:
    """Lines logged inside carry `rid`; the bank and user start unknown. After an error the context stays
    set (the request's task ends with it), so the server's error handler still logs and answers with the id."""
    tokens = (request_id.set(rid), tenant_id.set(None), user_id.set(None))
    yield
    user_id.reset(tokens[2])
    tenant_id.reset(tokens[1])
    request_id.reset(tokens[0])


def identify(tenant: int | None, user: int | None) -> None:
    """The caller of the current request is known: its lines carry the bank and the user from now on."""
    tenant_id.set(tenant)
    user_id.set(user)


class ContextFilter(logging.Filter):
    """Puts the request id, bank and user of the current request on each record (None outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in (("request_id", request_id), ("tenant_id", tenant_id), ("user_id", user_id)):
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        return True


def _clean(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, the request's context, any `extra=`
    fields, and the exception if there is one."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                doc[name] = value
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_") and name not in doc:
                doc[name] = _clean(value)
        if record.exc_info:
            doc["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            doc["exception"] = redact(record.exc_text)
        return json.dumps(doc, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time level logger [request id] message`, masked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(context)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        record.context = f" [{rid}]" if rid else ""
        return redact(super().format(record))


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is at the time (a test runner swaps it per test)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


def configure(fmt: str) -> None:
    """One handler on the root logger writing `fmt` ('json' or 'text') to stderr; the server's loggers hand
    their lines to it, so its access and error lines come out in the same format and with the same context.
    Calling it again only changes the format."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.addFilter(ContextFilter())
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not logger.handlers and not logger.propagate:
            continue  # turned off by the server (uvicorn's access log with access_log=False): it stays off
        for own in list(logger.handlers):
            logger.removeHandler(own)
        logger.propagate = True
