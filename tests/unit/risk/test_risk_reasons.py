from __future__ import annotations

import re

import numpy as np
import pytest

from microlend.risk.reasons import GENERIC, MESSAGES, messages_for_codes, reason_message, top_reason_codes

CJK = re.compile(r"[\u4e00-\u9fff]")


class TestReasonMessages:
    """Properties of the message table, not a copy of it: a copied table passes whatever the code says."""

    @pytest.mark.parametrize("feature", sorted(MESSAGES))
    def test_every_feature_has_a_message_in_both_languages(self, feature: str) -> None:
        en, zh = reason_message(feature, "en"), reason_message(feature, "zh-CN")
        assert en.startswith(f"{feature}: ") and zh.startswith(f"{feature}：")
        en_text, zh_text = en.removeprefix(f"{feature}: "), zh.removeprefix(f"{feature}：")
        assert en_text and zh_text and en_text != zh_text
        assert en_text.isascii() and not CJK.search(en_text), en_text
        assert CJK.search(zh_text), zh_text
        assert feature not in (en_text, zh_text), "a message explains the code, not repeats it"
        assert "{" not in en + zh and "}" not in en + zh, "a placeholder was left unfilled"
        assert en_text != GENERIC["en"] and zh_text != GENERIC["zh-CN"], "a listed feature has its own message"

    @pytest.mark.parametrize(("feature", "en_term", "zh_term"), [
        ("credit_amount", "amount", "金额"),
        ("annual_inc", "income", "收入"),
        ("duration_in_month", "term", "期限"),
        ("delinq_2yrs", "delinquencies", "逾期"),
    ])
    def test_a_known_feature_is_told_in_its_business_terms(self, feature: str, en_term: str, zh_term: str) -> None:
        assert en_term in reason_message(feature, "en")
        assert zh_term in reason_message(feature, "zh_CN")

    @pytest.mark.parametrize("locale", ["zh_CN", "zh-CN", "zh-cn", "zh"])
    def test_every_spelling_of_chinese_gives_the_chinese_text(self, locale: str) -> None:
        assert reason_message("credit_amount", locale) == reason_message("credit_amount", "zh-CN")
        assert reason_message("credit_amount", locale) != reason_message("credit_amount", "en")

    def test_english_is_the_default_and_the_fallback(self) -> None:
        assert reason_message("credit_amount") == reason_message("credit_amount", "en")
        assert reason_message("credit_amount", "fr") == reason_message("credit_amount", "en")

    def test_unknown_features_share_one_generic_message_naming_the_feature(self) -> None:
        for locale in ("en", "zh-CN"):
            shoe, hat = reason_message("shoe_size", locale), reason_message("hat_size", locale)
            assert shoe.startswith("shoe_size") and hat.startswith("hat_size")
            assert shoe.removeprefix("shoe_size") == hat.removeprefix("hat_size")
            assert shoe.removeprefix("shoe_size") not in {reason_message(f, locale).removeprefix(f) for f in MESSAGES}
        assert "score" in reason_message("shoe_size", "en") and "评分" in reason_message("shoe_size", "zh-CN")

    def test_codes_become_one_line_in_their_order(self) -> None:
        line = messages_for_codes("term;annual_inc")
        assert line == f"{reason_message('term')} | {reason_message('annual_inc')}"
        assert line.index("term:") < line.index("annual_inc:")
        assert messages_for_codes("term;;annual_inc;", "zh-CN") == messages_for_codes("term;annual_inc", "zh-CN")
        assert CJK.search(messages_for_codes("term;annual_inc", "zh-CN"))
        assert messages_for_codes("") == ""


class TestTopReasonCodes:
    def test_largest_positive_impacts_first_and_none_when_nothing_cost_points(self) -> None:
        impact = np.array([[1.0, 5.0, 0.0, 3.0], [0.0, 0.0, 0.0, 0.0], [2.0, 2.0, 0.5, -1.0]])
        codes = top_reason_codes(impact, ["a", "b", "c", "d"], top_n=2)
        assert codes.tolist() == ["b;d", "", "a;b"]
