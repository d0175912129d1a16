from __future__ import annotations

import numpy as np

from microlend.risk.reasons import messages_for_codes, reason_message, top_reason_codes


class TestReasonMessages:
    def test_known_feature_in_english_and_chinese(self) -> None:
        assert reason_message("credit_amount") == (
            "credit_amount: the requested amount is high for the profile")
        assert reason_message("credit_amount", "zh_CN") == "credit_amount：申请金额相对资质偏高"

    def test_unknown_feature_gets_the_generic_message(self) -> None:
        assert reason_message("shoe_size", "en") == "shoe_size: this characteristic lowered the score"
        assert reason_message("shoe_size", "zh-CN") == "shoe_size：该项特征拉低了评分"

    def test_codes_become_a_readable_line(self) -> None:
        assert messages_for_codes("term;annual_inc") == (
            "term: the requested term is long | annual_inc: income is low")


class TestTopReasonCodes:
    def test_largest_positive_impacts_first_and_none_when_nothing_cost_points(self) -> None:
        impact = np.array([[1.0, 5.0, 0.0, 3.0], [0.0, 0.0, 0.0, 0.0], [2.0, 2.0, 0.5, -1.0]])
        codes = top_reason_codes(impact, ["a", "b", "c", "d"], top_n=2)
        assert codes.tolist() == ["b;d", "", "a;b"]
