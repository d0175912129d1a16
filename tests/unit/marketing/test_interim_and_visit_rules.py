"""Pure rules behind an open campaign's report page and the visit tasks: when a stored interim result may be
served, that the stored figures read back equal the computed ones, when a task is overdue, and which open
tasks the sweep closes and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from microlend.marketing.attribution import EVENT_SCHEMA, TOUCH_SCHEMA
from microlend.marketing.report_store import report_from_dict
from microlend.marketing.service.measurement import INTERIM_MAX_AGE, interim_is_fresh
from microlend.marketing.service.visits import CLOSE_REASONS, VisitTask, ineligible_reasons
from microlend.marketing.tracking import build_report

T0 = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)


class TestInterimFreshness:
    def test_served_while_the_inputs_are_unchanged_and_it_is_young(self) -> None:
        assert interim_is_fresh("a", T0, "a", T0 + timedelta(minutes=59))
        assert not interim_is_fresh("a", T0, "b", T0 + timedelta(minutes=1))  # a new event, send or receipt
        assert not interim_is_fresh("a", T0, "a", T0 + INTERIM_MAX_AGE)  # an hour old
        assert not interim_is_fresh("a", T0, "a", T0 - timedelta(seconds=1))  # computed "later" than now

    @given(st.lists(st.tuples(st.integers(1, 60), st.sampled_from(["treatment", "control"]),
                              st.sampled_from(["opened", "clicked", "applied", "approved", "disbursed"]),
                              st.integers(0, 40)), max_size=80),
           st.decimals(min_value=Decimal("0"), max_value=Decimal("5"), places=2))
    def test_the_stored_figures_read_back_equal_the_computed_ones(
            self, rows: list[tuple[int, str, str, int]], cost: Decimal) -> None:
        arms = {c: a for c, a, _, _ in rows}
        touches = pl.DataFrame({
            "campaign_id": [1] * len(arms), "customer_id": list(arms), "arm": list(arms.values()),
            "segment": ["s"] * len(arms), "channel": ["sms"] * len(arms), "reference_at": [T0] * len(arms),
            "window_days": [30] * len(arms), "sent": [a == "treatment" for a in arms.values()],
            "delivered": [a == "treatment" for a in arms.values()]}, schema=TOUCH_SCHEMA)
        events = pl.DataFrame({
            "customer_id": [c for c, _, _, _ in rows], "kind": [k for _, _, k, _ in rows],
            "at": [T0 + timedelta(days=d) for _, _, _, d in rows], "event_campaign_id": [None] * len(rows)},
            schema=EVENT_SCHEMA)
        report = build_report(touches, events, costs={1: cost * len(arms)}, names={1: "spring"},
                              contacts={"sms": len(arms)}, cost_per_contact={"sms": cost}, margin=Decimal("600"))
        assert report_from_dict(report.to_dict()).to_dict() == report.to_dict()


class TestOverdue:
    def test_an_open_task_past_its_due_date_is_overdue(self) -> None:
        task = VisitTask(1, 2, "visits", 3, 4, "open", T0, T0 + timedelta(days=7))
        assert not task.overdue(T0 + timedelta(days=7))
        assert task.overdue(T0 + timedelta(days=7, seconds=1))
        done = VisitTask(1, 2, "visits", 3, 4, "done", T0, T0 + timedelta(days=7), "visited")
        assert not done.overdue(T0 + timedelta(days=30))
        assert not VisitTask(1, 2, "visits", 3, 4, "open", T0).overdue(T0 + timedelta(days=30))  # no due date


class TestIneligibleReasons:
    def test_each_reason_closes_its_task_and_the_first_that_holds_is_recorded(self) -> None:
        tasks = [(1, 11, T0), (2, 12, T0), (3, 13, T0), (4, 14, T0), (5, 15, T0), (6, 16, T0)]
        reasons = ineligible_reasons(
            tasks, opted_out={1, 6}, overdue_customers={12, 16}, expired={3}, tracked_applied={4},
            last_application={15: T0 + timedelta(hours=1)})
        assert reasons == {1: "opted_out", 2: "overdue", 3: "offer_expired", 4: "applied", 5: "applied",
                           6: "opted_out"}
        assert set(reasons.values()) == set(CLOSE_REASONS)

    def test_an_application_before_the_task_was_created_does_not_close_it(self) -> None:
        tasks = [(1, 11, T0)]
        assert ineligible_reasons(tasks, opted_out=set(), overdue_customers=set(), expired=set(),
                                  tracked_applied=set(), last_application={11: T0 - timedelta(days=1)}) == {}
        assert ineligible_reasons(tasks, opted_out=set(), overdue_customers=set(), expired=set(),
                                  tracked_applied=set(), last_application={11: T0}) == {1: "applied"}
