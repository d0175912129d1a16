from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest

from microlend.core.errors import ValidationError
from microlend.marketing.tracking import (
    attribute,
    attribution_window,
    build_report,
    is_attributed,
    newcombe_difference,
    wilson_interval,
)

SENT = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
REF_SCHEMA: dict[str, pl.DataType] = {
    "campaign_id": pl.Int64(), "customer_id": pl.Int64(), "arm": pl.String(), "segment": pl.String(),
    "channel": pl.String(), "reference_at": pl.Datetime("us", "UTC"), "window_days": pl.Int64()}
EV_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.Int64(), "kind": pl.String(), "at": pl.Datetime("us", "UTC")}


class TestAttributionWindow:
    def test_the_send_instant_is_inside(self) -> None:
        assert is_attributed(SENT, SENT, 30)

    def test_one_microsecond_before_the_send_is_outside(self) -> None:
        assert not is_attributed(SENT - timedelta(microseconds=1), SENT, 30)

    def test_the_last_instant_before_the_end_is_inside(self) -> None:
        assert is_attributed(SENT + timedelta(days=30) - timedelta(microseconds=1), SENT, 30)

    def test_the_end_itself_is_outside(self) -> None:
        assert not is_attributed(SENT + timedelta(days=30), SENT, 30)

    def test_window_needs_a_day(self) -> None:
        with pytest.raises(ValidationError):
            attribution_window(SENT, 0)

    def test_set_based_attribution_uses_the_same_boundaries(self) -> None:
        offsets = [-timedelta(microseconds=1), timedelta(0), timedelta(days=30) - timedelta(microseconds=1),
                   timedelta(days=30)]
        reference = pl.DataFrame([(1, i, "treatment", "s", "sms", SENT, 30) for i in range(4)],
                                 schema=REF_SCHEMA, orient="row")
        events = pl.DataFrame([(i, "disbursed", SENT + d) for i, d in enumerate(offsets)], schema=EV_SCHEMA,
                              orient="row")
        got = attribute(reference, events).sort("customer_id").get_column("disbursed").to_list()
        assert got == [is_attributed(SENT + d, SENT, 30) for d in offsets] == [False, True, True, False]

    def test_an_event_from_another_campaigns_link_is_not_counted(self) -> None:
        reference = pl.DataFrame([(1, 7, "treatment", "s", "sms", SENT, 30)], schema=REF_SCHEMA, orient="row")
        events = pl.DataFrame({"customer_id": [7, 7], "kind": ["clicked", "opened"],
                               "at": [SENT + timedelta(hours=1)] * 2, "event_campaign_id": [2, 1]},
                              schema={**EV_SCHEMA, "event_campaign_id": pl.Int64()})
        row = attribute(reference, events).row(0, named=True)
        assert row["opened"] and not row["clicked"]


class TestConfidenceIntervals:
    """Reference values from Newcombe (1998), Statistics in Medicine 17: 857-872 and 873-890."""

    @pytest.mark.parametrize(("x", "n", "low", "high"), [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605),
                                                         (0, 20, 0.0, 0.1611)])
    def test_wilson_interval(self, x: int, n: int, low: float, high: float) -> None:
        got = wilson_interval(x, n)
        assert got == pytest.approx((low, high), abs=5e-5)

    @pytest.mark.parametrize(("x1", "n1", "x2", "n2", "low", "high"), [
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (5, 56, 0, 29, -0.0381, 0.1926),
    ])
    def test_newcombe_difference(self, x1: int, n1: int, x2: int, n2: int, low: float, high: float) -> None:
        d, lo, hi = newcombe_difference(x1, n1, x2, n2)
        assert d == pytest.approx(x1 / n1 - x2 / n2)
        assert (lo, hi) == pytest.approx((low, high), abs=5e-5)

    def test_wilson_by_hand_for_one_of_four(self) -> None:
        z = 1.959963984540054
        p, n = 0.25, 4
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        assert wilson_interval(1, 4) == pytest.approx((centre - half, centre + half))


class TestCampaignReport:
    def _report(self) -> object:
        rows = [(1, i, "treatment" if i < 6 else "control", "young" if i % 2 else "old", "sms", SENT, 30)
                for i in range(10)]
        reference = pl.DataFrame(rows, schema=REF_SCHEMA, orient="row")
        events = pl.DataFrame([
            (0, "opened", SENT + timedelta(hours=1)), (0, "clicked", SENT + timedelta(hours=2)),
            (0, "applied", SENT + timedelta(days=1)), (0, "approved", SENT + timedelta(days=1)),
            (0, "disbursed", SENT + timedelta(days=2)),
            (1, "applied", SENT + timedelta(days=3)), (1, "disbursed", SENT + timedelta(days=4)),
            (2, "disbursed", SENT + timedelta(days=31)),  # outside the window
            (6, "disbursed", SENT + timedelta(days=5)),
        ], schema=EV_SCHEMA, orient="row")
        return build_report(reference, events, costs={1: Decimal("0.30")}, names={1: "spring"})

    def test_funnel_per_channel_and_segment(self) -> None:
        report = self._report()
        by_channel = [f for f in report.funnel if f.by == "channel"]  # type: ignore[attr-defined]
        # nested: customer 1 applied and was paid without a tracked open or click, so it responded and counts
        # at every stage up to disbursed; the tracked opens and clicks are shown as recorded (1 each)
        assert [(f.group, f.targeted, f.sent, f.delivered, f.responded, f.clicked, f.applied, f.approved,
                 f.disbursed, f.tracked_opens, f.tracked_clicks) for f in by_channel] == [
            ("sms", 6, 6, 6, 2, 2, 2, 2, 2, 1, 1)]
        for f in report.funnel:  # type: ignore[attr-defined]
            counts = [c for _, c in f.stages()]
            assert counts == sorted(counts, reverse=True)
        by_segment = {f.group: f.disbursed for f in report.funnel if f.by == "segment"}  # type: ignore[attr-defined]
        assert by_segment == {"old": 1, "young": 1}

    def test_treatment_vs_control_and_costs(self) -> None:
        report = self._report()
        disbursed = report.comparisons[1]  # type: ignore[attr-defined]
        assert (disbursed.treatment, disbursed.treatment_n, disbursed.control, disbursed.control_n) == (2, 6, 1, 4)
        assert disbursed.difference == pytest.approx(2 / 6 - 1 / 4)
        assert report.cost_per_disbursed == Decimal("0.15")  # type: ignore[attr-defined]
        # incremental loans: (2/6 - 1/4) * 6 = 0.5, so 0.30 / 0.5
        assert report.cost_per_incremental_disbursed == Decimal("0.60")  # type: ignore[attr-defined]

    def test_html_is_self_contained(self) -> None:
        html = self._report().to_html()  # type: ignore[attr-defined]
        assert "<script" not in html and "src=\"http" not in html and "href=\"http" not in html
        assert html.count("data:image/png;base64,") == 2
