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
