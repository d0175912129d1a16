"""The consent text catalogue and the sandbox SMS sender: pure rules, no database."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from microlend.core.errors import NotFound, ValidationError
from microlend.parties import consent_texts
from microlend.parties.notify import SandboxSms


class TestCatalogue:
    def test_every_scope_has_a_current_text_in_both_languages_with_its_own_hash(self) -> None:
        assert set(consent_texts.SCOPES) >= {"credit_report", "marketing", "data_sharing"}
        for scope in consent_texts.SCOPES:
            text = consent_texts.current(scope)
            assert text.version.startswith(f"{scope}/")
            zh, en = text.sha256("zh_CN"), text.sha256("en")
            assert zh != en and zh == hashlib.sha256(text.text("zh_CN").encode()).hexdigest()
            assert consent_texts.version(text.version) is text

    def test_unknown_scopes_versions_and_locales_are_refused_by_name(self) -> None:
        with pytest.raises(ValidationError, match="unknown scope 'gossip'"):
            consent_texts.current("gossip")
        with pytest.raises(NotFound):
            consent_texts.version("credit_report/1999-01")
        with pytest.raises(ValidationError, match="locale"):
            consent_texts.current("marketing").sha256("fr")


class TestSandboxSms:
    def test_the_code_is_read_as_the_text_says_it_even_when_the_bank_name_holds_digits(self) -> None:
        sms = SandboxSms()
        at = datetime(2026, 3, 2, 9, tzinfo=UTC)
        first = sms.send("13800001111", "【农商行123456】验证码654321，您正在签署借款合同。", at=at)
        sms.send("13800002222", "[Bank 222222] Code 987654: you are giving consent.", at=at)
        assert sms.message(first) is not None and sms.message(first).code == "654321"  # type: ignore[union-attr]
        assert sms.last_code("13800002222") == "987654" and sms.last_code("13900000000") is None

    def test_it_keeps_only_the_latest_messages(self) -> None:
        sms = SandboxSms(keep=3)
        at = datetime(2026, 3, 2, 9, tzinfo=UTC)
        ids = [sms.send("13800001111", f"验证码{n:06d}", at=at) for n in range(5)]
        assert sms.message(ids[0]) is None and [m.code for m in sms.messages_to("13800001111")] == [
            "000002", "000003", "000004"]
