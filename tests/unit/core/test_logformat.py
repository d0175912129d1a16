"""Log lines as JSON or text: the request's id, bank and user on each line written inside a request, extra
fields kept, personal data masked in the message and in the exception; the server's loggers hand their lines
to the same handler."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from microlend.core import logformat
from microlend.core.logformat import ContextFilter, JsonFormatter, TextFormatter


def record(msg: str, *args: object, exc: BaseException | None = None, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("microlend.test", logging.INFO, __file__, 1, msg, args,
                            (type(exc), exc, exc.__traceback__) if exc else None)
    for key, value in extra.items():
        setattr(rec, key, value)
    ContextFilter().filter(rec)
    return rec


def test_a_line_inside_a_request_carries_its_id_bank_and_user() -> None:
    with logformat.request_context("req-1"):
        logformat.identify(7, 42)
        line = json.loads(JsonFormatter().format(record("paid %s", "100.00", route="/x")))
    assert line["request_id"] == "req-1" and line["tenant_id"] == 7 and line["user_id"] == 42
    assert line["message"] == "paid 100.00" and line["route"] == "/x" and line["level"] == "INFO"
    outside = json.loads(JsonFormatter().format(record("idle")))
    assert not {"request_id", "tenant_id", "user_id"} & set(outside)


def test_personal_data_is_masked_in_the_message_the_extras_and_the_exception() -> None:
    try:
        raise ValueError("no customer with mobile 13812345678")
    except ValueError as exc:
        caught = exc
    text = JsonFormatter().format(record("lookup %s", "11010519491231002X", exc=caught, query="13912345678"))
    assert "13812345678" not in text and "11010519491231002X" not in text and "13912345678" not in text
    line = json.loads(text)
    assert "138****5678" in line["exception"] and line["message"] == "lookup 1101**********002X"


def test_text_lines_show_the_request_id_and_are_masked() -> None:
    with logformat.request_context("req-2"):
        line = TextFormatter().format(record("call 13812345678"))
    assert "[req-2]" in line and "138****5678" in line and "13812345678" not in line


def test_the_server_loggers_write_through_the_configured_handler(capsys: pytest.CaptureFixture[str]) -> None:
    uvicorn_error = logging.getLogger("uvicorn.error")
    uvicorn_error.addHandler(logging.StreamHandler(sys.stdout))  # as uvicorn sets itself up
    logformat.configure("json")
    try:
        with logformat.request_context("req-3"):
            uvicorn_error.warning("worker %s restarted", 3)
        err = capsys.readouterr().err
        line = json.loads(next(x for x in err.splitlines() if "restarted" in x))
        assert line["logger"] == "uvicorn.error" and line["request_id"] == "req-3"
        assert uvicorn_error.handlers == []
    finally:
        logformat.configure("text")
