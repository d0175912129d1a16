import io
import logging
from typing import Any

import pytest

from microlend.core.logs import PersonalDataFilter, redact


def test_ids_uscc_and_mobiles_are_masked() -> None:
    text = "customer 11010519491231002X phone 13812345678 shop 91350100M000100Y43 amount 10000.00"
    assert redact(text) == "customer 1101**********002X phone 138****5678 shop 9135**********0Y43 amount 10000.00"


def test_ordinary_numbers_stay(caplog: pytest.LogCaptureFixture) -> None:
    assert redact("loan 123456 paid 1200.50 on 20260115") == "loan 123456 paid 1200.50 on 20260115"


def test_the_filter_masks_arguments(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("microlend.test.pii")
    log.addFilter(PersonalDataFilter())
    with caplog.at_level(logging.INFO, logger="microlend.test.pii"):
        log.info("lookup %s", "13812345678")
    assert "13812345678" not in caplog.text and "138****5678" in caplog.text


def test_an_access_log_line_with_a_mobile_in_its_path_is_masked_and_still_formats() -> None:
    """uvicorn's access formatter unpacks the record's five arguments: the filter must leave them a tuple."""
    from uvicorn.logging import AccessFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False))
    handler.addFilter(PersonalDataFilter())
    log = logging.getLogger("microlend.test.access")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    errors: list[str] = []
    original = logging.Handler.handleError
    logging.Handler.handleError = lambda self, record: errors.append(str(record.msg))  # type: ignore[method-assign]
    try:
        log.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/customers?q=13812345678", "1.1", 200)
    finally:
        logging.Handler.handleError = original  # type: ignore[method-assign]
        log.removeHandler(handler)
    assert not errors
    line = stream.getvalue()
    assert "13812345678" not in line and "/customers?q=138****5678" in line and "200" in line


def test_a_number_argument_is_masked_in_the_message_and_the_arguments_keep_their_shape() -> None:
    record = logging.LogRecord("microlend.test", logging.INFO, __file__, 1, "customer %d phone %s",
                               (13812345678, "13912345678"), None)
    PersonalDataFilter().filter(record)
    PersonalDataFilter().filter(record)  # a second filter on the way (logger and handler) changes nothing
    assert record.getMessage() == "customer 138****5678 phone 139****5678"
    assert record.args == (13812345678, "139****5678")  # a formatter that unpacks them still can


def test_a_real_uvicorn_server_logs_every_request_with_long_numbers_masked() -> None:
    """uvicorn's own access logging, its own formatter, the filter installed as the app installs it: one line
    per request, for paths and queries with 11 digits and more, none lost and none showing a mobile or ID."""
    import socket
    import threading
    import time
    import urllib.request

    import uvicorn

    from microlend.core import logs

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                logs.install()  # as microlend's lifespan does, after uvicorn configured its handlers
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    stream = io.StringIO()
    config = uvicorn.config.LOGGING_CONFIG | {"handlers": {
        "default": {"formatter": "default", "()": lambda: logging.StreamHandler(io.StringIO())},
        "access": {"formatter": "access", "()": lambda: logging.StreamHandler(stream)}}}
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=config, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    paths = ["/customers/13812345678", "/loans/12345678901", "/x/110101199003071234", "/search?q=13812345678",
             "/x/2381234567890123", "/a/91350100M000100Y43", "/b/99999999999?c=15912345678&d=2",
             "/c/13812345678/13912345678"] * 3
    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        port = sock.getsockname()[1]
        for path in paths:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5)
            except urllib.error.HTTPError as exc:
                assert exc.code == 404
    finally:
        server.should_exit = True
        thread.join(10)
        logging.getLogger("uvicorn.access").filters.clear()
    lines = [line for line in stream.getvalue().splitlines() if '"GET ' in line]
    assert len(lines) == len(paths)
    text = "\n".join(lines)
    for secret in ("13812345678", "110101199003071234", "15912345678", "91350100M000100Y43"):
        assert secret not in text
    assert "/customers/138****5678" in text and "/loans/12345678901" in text  # not a mobile: kept as it was
