import io
import logging

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
