"""The two-proportion z-test and confidence interval of the challenger report."""

from __future__ import annotations

import pytest

from microlend.decisioning.challenger_report import two_proportion_test


def test_a_known_difference() -> None:
    t = two_proportion_test(50, 100, 60, 100)
    assert t is not None
    assert t.difference == pytest.approx(0.10)
    assert t.z == pytest.approx(1.4213, abs=1e-4)
    assert t.p_value == pytest.approx(0.1552, abs=1e-4)
    assert (t.ci_low, t.ci_high) == (pytest.approx(-0.0372, abs=1e-4), pytest.approx(0.2372, abs=1e-4))
    assert not t.significant


def test_a_large_difference_is_significant() -> None:
    t = two_proportion_test(400, 1000, 500, 1000)
    assert t is not None and t.significant and t.ci_low > 0


def test_an_empty_arm_has_no_test() -> None:
    assert two_proportion_test(0, 0, 5, 10) is None
