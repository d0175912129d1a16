"""The product's chart style: a rate that cannot be computed is drawn as a dash, never as a 0 % bar; labels
are escaped; bars are as long as their rates."""

from __future__ import annotations

import re
from decimal import Decimal

from microlend.web.charts import rate_bars_svg


def test_a_rate_without_cases_is_a_dash_not_a_zero_bar() -> None:
    svg = rate_bars_svg([("直通率", None), ("通过率", Decimal("0.5"))], "比率")
    assert svg.count("<rect") == 1 and "—" in svg and ">0.0%<" not in svg and ": 0.0%" not in svg and "50.0%" in svg
    assert 'aria-label="比率"' in svg and "直通率" in svg


def test_bars_are_as_long_as_their_rates_and_labels_are_escaped() -> None:
    svg = rate_bars_svg([("a<b", Decimal("0.25")), ("c", Decimal("1"))], "x")
    widths = [float(w) for w in re.findall(r'<rect [^>]*width="([\d.]+)"', svg)]
    assert widths[1] == 4 * widths[0] and "a&lt;b" in svg and "a<b" not in svg
