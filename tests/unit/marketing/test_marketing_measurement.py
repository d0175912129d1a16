"""Measurement (pure): one attribution rule across campaigns, a funnel that never widens, per-channel effects
with cost and ROI, and stratified control groups with a warning for a stratum too small to read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import polars as pl
import pytest

from microlend.marketing.attribution import (
    EVENT_SCHEMA,
    TOUCH_SCHEMA,
    attribute,
    channel_effects,
    funnels,
    last_touch,
)
from microlend.marketing.stratify import control_by_stratum, strata, stratified_control
from microlend.marketing.tracking import attribute as per_campaign_attribute

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _touches(rows: list[tuple[int, int, str, str, datetime, int, bool, bool]]) -> pl.DataFrame:
    return pl.DataFrame([(c, u, arm, "seg", ch, at, days, sent, delivered)
                         for c, u, arm, ch, at, days, sent, delivered in rows], schema=TOUCH_SCHEMA, orient="row")


def _events(rows: list[tuple[int, str, datetime, int | None]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=EVENT_SCHEMA, orient="row")


class TestLastTouch:
    def test_a_conversion_counts_for_one_campaign_only(self) -> None:
        # customer 1: control in campaign 1 (launched day 0), treated by campaign 2 on day 5; applies on day 7
        touches = _touches([(1, 1, "control", "sms", T0, 30, False, False),
                            (2, 1, "treatment", "sms", T0 + timedelta(days=5), 30, True, True)])
        events = _events([(1, "applied", T0 + timedelta(days=7), None)])
        credited = last_touch(touches, events)
        assert credited.select("campaign_id").to_series().to_list() == [2]
        frame = attribute(touches, events)
        assert frame.filter(pl.col("applied")).get_column("campaign_id").to_list() == [2]
        assert per_campaign_attribute(touches, events).get_column("applied").sum() == 1  # once, not per campaign

    def test_a_touch_whose_window_is_over_gives_way_to_an_earlier_longer_one(self) -> None:
        touches = _touches([(1, 1, "treatment", "sms", T0, 60, True, True),
                            (2, 1, "treatment", "push", T0 + timedelta(days=5), 3, True, True)])
        events = _events([(1, "applied", T0 + timedelta(days=20), None)])
        assert last_touch(touches, events).get_column("campaign_id").to_list() == [1]

    def test_a_tracked_link_keeps_its_campaign_and_ties_go_to_the_later_campaign(self) -> None:
        touches = _touches([(1, 1, "treatment", "sms", T0, 30, True, True),
                            (2, 1, "treatment", "sms", T0 + timedelta(days=1), 30, True, True),
                            (3, 1, "treatment", "push", T0 + timedelta(days=1), 30, True, True)])
        events = _events([(1, "clicked", T0 + timedelta(days=2), 1), (1, "applied", T0 + timedelta(days=2), None)])
        assert last_touch(touches, events).get_column("campaign_id").to_list() == [1, 3]

    def test_an_event_before_every_touch_or_after_every_window_counts_for_none(self) -> None:
        touches = _touches([(1, 1, "treatment", "sms", T0, 10, True, True)])
        events = _events([(1, "applied", T0 - timedelta(hours=1), None), (1, "applied", T0 + timedelta(days=10), None)])
        assert last_touch(touches, events).height == 0


class TestNestedFunnel:
    def test_each_stage_is_a_subset_of_the_one_before(self) -> None:
        rng = np.random.default_rng(3)
        n = 400
        rows = [(1, i, "treatment", "sms", T0, 30, bool(rng.random() < 0.9), bool(rng.random() < 0.8))
                for i in range(n)]
        events = [(i, kind, T0 + timedelta(days=1), None) for i in range(n)
                  for kind in ("opened", "clicked", "applied", "approved", "disbursed") if rng.random() < 0.3]
        frame = attribute(_touches(rows), _events(events))
        (f,) = funnels(frame, "channel")
        counts = [c for _, c in f.stages()]
        assert counts == sorted(counts, reverse=True), f.stages()
        assert f.targeted == n and f.disbursed > 0

    def test_more_applied_than_clicked_no_longer_widens_the_funnel(self) -> None:
        rows = [(1, i, "treatment", "sms", T0, 30, True, True) for i in range(4)]
        events = [(0, "clicked", T0 + timedelta(hours=1), None)] + [
            (i, "applied", T0 + timedelta(hours=2), None) for i in range(4)]
        (f,) = funnels(attribute(_touches(rows), _events(events)), "channel")
        assert (f.tracked_clicks, f.clicked, f.applied) == (1, 4, 4)

    def test_a_conversion_without_a_delivered_message_is_counted_apart(self) -> None:
        rows = [(1, 0, "treatment", "sms", T0, 30, True, False), (1, 1, "treatment", "sms", T0, 30, True, True)]
        events = [(0, "applied", T0 + timedelta(hours=2), None), (1, "applied", T0 + timedelta(hours=2), None)]
        (f,) = funnels(attribute(_touches(rows), _events(events)), "channel")
        assert (f.sent, f.delivered, f.applied, f.applied_without_delivery) == (2, 1, 1, 1)


class TestChannelEffects:
    def test_each_channel_against_its_own_control_with_cost_and_roi(self) -> None:
        rows = ([(1, i, "treatment", "sms", T0, 30, True, True) for i in range(100)]
                + [(1, 100 + i, "control", "sms", T0, 30, False, False) for i in range(50)]
                + [(2, 200 + i, "treatment", "visit", T0, 30, True, True) for i in range(10)]
                + [(2, 300 + i, "control", "visit", T0, 30, False, False) for i in range(10)])
        events = ([(i, "disbursed", T0 + timedelta(days=1), None) for i in range(20)]
                  + [(100 + i, "disbursed", T0 + timedelta(days=1), None) for i in range(5)]
                  + [(200 + i, "disbursed", T0 + timedelta(days=1), None) for i in range(5)])
        frame = attribute(_touches(rows), _events(events))
        effects = {(e.channel, e.stage): e for e in channel_effects(
            frame, contacts={"sms": 100, "visit": 10}, cost_per_contact={"sms": Decimal("0.05"),
                                                                          "visit": Decimal("30.00")},
            margin=Decimal("500"))}
        sms = effects[("sms", "disbursed")]
        assert (sms.treatment, sms.treatment_n, sms.control, sms.control_n) == (20, 100, 5, 50)
        assert sms.difference == pytest.approx(0.10)
        assert sms.incremental == Decimal("10.00") and sms.cost == Decimal("5.00")
        assert sms.cost_per_incremental == Decimal("0.50")
        assert sms.roi == Decimal("999.0000")  # (10 x 500 - 5) / 5
        visit = effects[("visit", "disbursed")]
        assert visit.incremental == Decimal("5.00") and visit.cost == Decimal("300.00")
        assert visit.roi == Decimal("7.3333")  # (5 x 500 - 300) / 300
        assert effects[("sms", "applied")].roi is None

    def test_no_margin_no_roi(self) -> None:
        rows = [(1, 0, "treatment", "sms", T0, 30, True, True), (1, 1, "control", "sms", T0, 30, False, False)]
        (e,) = channel_effects(attribute(_touches(rows), _events([])), contacts={"sms": 1},
                               cost_per_contact={"sms": Decimal("1")}, margin=None, stages=("disbursed",))
        assert e.roi is None and e.cost == Decimal("1.00")


class TestStratifiedControl:
    def test_every_stratum_holds_its_share(self) -> None:
        ids = np.arange(1, 1001)
        targets = pl.DataFrame({"customer_id": ids, "segment": ["a"] * 900 + ["b"] * 100,
                                "score": np.linspace(500, 700, 1000)})
        label = strata(targets)
        mask, warnings = stratified_control("1:7", ids, label, 1000, minimum=5)
        per = pl.DataFrame({"s": label, "c": mask}).group_by("s").agg(pl.len(), pl.col("c").sum())
        for s, n, c in per.iter_rows():
            assert c == (n * 1000 * 2 + 10_000) // 20_000, s
        assert not warnings

    def test_the_draw_is_stable_and_a_small_stratum_is_warned_about(self) -> None:
        ids = np.arange(1, 201)
        label = pl.Series(["big"] * 180 + ["small"] * 20)
        first, warnings = stratified_control("1:8", ids, label, 1000, minimum=5)
        again, _ = stratified_control("1:8", ids, label, 1000, minimum=5)
        assert np.array_equal(first, again)
        assert [(w.stratum, w.customers, w.control) for w in warnings] == [("small", 20, 2)]
        assert "fewer than the 5" in warnings[0].message

    def test_a_campaigns_assignments_are_checked_per_stratum(self) -> None:
        frame = pl.DataFrame({"stratum": ["a"] * 50 + ["b"] * 10, "arm": ["control"] * 40 + ["treatment"] * 10
                              + ["control"] * 2 + ["treatment"] * 8})
        assert [w.stratum for w in control_by_stratum(frame, minimum=30)] == ["b"]
