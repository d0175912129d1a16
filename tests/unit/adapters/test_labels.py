"""Codes and service messages as people read them, in each language: audit actions and industries by their
labels, a mistyped ID number said without its field's code and without the right check character."""

from __future__ import annotations

import re

import pytest

from microlend.core.errors import ValidationError
from microlend.parties.kyc import validate_resident_id
from microlend.web import i18n, labels


def _check_digit_error() -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        validate_resident_id("110105194912310024")  # the right check character is X
    return caught.value


class TestErrorMessage:
    def test_a_wrong_check_digit_names_the_field_and_keeps_the_right_character_to_itself(self) -> None:
        exc = _check_digit_error()
        assert "X" not in exc.message.split(":", 1)[1]
        assert labels.error_message(exc.message, exc.field, "en") == "The ID number is not valid (check digit)."
        assert labels.error_message(exc.message, exc.field, "zh_CN") == "证件号码无效（校验位不符）。"

    @pytest.mark.parametrize("locale", i18n.LOCALES)
    def test_no_message_shows_the_fields_code(self, locale: str) -> None:
        for value in ("11010519491231002", "110105199902310021", "110105194912310024"):
            with pytest.raises(ValidationError) as caught:
                validate_resident_id(value)
            said = labels.error_message(caught.value.message, caught.value.field, locale)
            assert "id_number" not in said and said

    def test_a_message_without_words_in_chinese_says_which_field_is_wrong(self) -> None:
        said = labels.error_message("amount: 12x is not an amount", "amount", "zh_CN")
        assert said == "金额无效，请检查。"
        assert labels.error_message("amount: 12x is not an amount", "amount", "en") == "Amount: 12x is not an amount"

    def test_a_message_the_catalogue_has_is_used_as_it_is(self) -> None:
        assert labels.error_message("forbidden", None, "en") == "forbidden"


class TestLabels:
    @pytest.mark.parametrize("table", [labels.AUDIT_ACTIONS, labels.OBJECT_TYPES, labels.INDUSTRIES,
                                       labels.ATTRIBUTES, labels.FIELDS, labels.JOB_FIGURES])
    def test_every_label_has_its_chinese(self, table: dict[str, str]) -> None:
        untranslated = [code for code in table if labels.label(table, code, "zh_CN") == table[code]]
        assert not untranslated
        assert all(re.search(r"[\u4e00-\u9fff]", labels.label(table, code, "zh_CN")) for code in table)

    def test_an_unknown_code_is_shown_as_it_is_and_a_missing_one_as_a_dash(self) -> None:
        assert labels.label(labels.INDUSTRIES, "mining", "zh_CN") == "mining"
        assert labels.label(labels.INDUSTRIES, "", "en") == "—"
        assert labels.label(labels.AUDIT_ACTIONS, "application.approve", "en") == "Application approved"


class TestMemoWords:
    @pytest.mark.parametrize("memo", ["loan 12 disbursed", "repayment on loan 12", "reversal of repayment",
                                      "loan-loss allowance as of 2026-10-31", "recovery on written-off loan 3",
                                      "off-balance interest of non-accrual loans for 2026-11-02", ""])
    def test_a_memo_the_ledger_wrote_itself_adds_nothing_to_the_entrys_label(self, memo: str) -> None:
        assert labels.memo_words(memo) == ""

    def test_the_words_a_person_typed_are_kept(self) -> None:
        assert labels.memo_words("write-off of loan 7: 借款人失联三年") == "借款人失联三年"
        assert labels.memo_words("手工调整：冲回重复入账") == "手工调整：冲回重复入账"
