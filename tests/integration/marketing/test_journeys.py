"""Journeys, message variants and budgets on SQLite and PostgreSQL: a two-step journey (SMS, then a visit
for whoever did not click) advances only the non-clickers; variants are measured apart; a launch or a step
over the budget is refused or stopped with the reason; the calendar shows spend against budget."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest
from sqlalchemy import func, select

from microlend.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Principal, Role
from microlend.core.uow import UnitOfWork
from microlend.marketing import service
from microlend.marketing.journeys import StepSpec, Variant
from microlend.marketing.segments import FrequencyCap
from microlend.marketing.tables import AssignmentRow, OutboxRow, VisitTaskRow

from .conftest import Bank, make_bank

NOON = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


def customers(n: int = 200) -> pl.DataFrame:
    return pl.DataFrame({
        "customer_id": list(range(1, n + 1)), "age": [30 + i % 30 for i in range(n)],
        "months_on_book": [6] * n, "marketing_consent": [True] * n, "current_days_past_due": [0] * n,
        "officer_user_id": [100] * n,
    })


def everyone(uow: UnitOfWork, who: Principal, ids: Sequence[int]) -> set[int]:
    return set(ids)


def _campaign(mbank: Bank, name: str, **extra: object) -> service.Campaign:
    who = mbank.who()
    try:
        service.get_segment(mbank.uow(), who, "all")
    except NotFound:
        service.save_segment(mbank.uow(), who, "all", "age >= 18", at=NOON)
    spec = service.CampaignSpec(name=name, channel="sms", segment_name="all", control_share_bp=2000,
                                cap=FrequencyCap(5, 30), **extra)  # type: ignore[arg-type]
    return service.create_campaign(mbank.uow(), who, spec, at=NOON)


def _treated(mbank: Bank, campaign_id: int) -> list[int]:
    with mbank.uow() as u:
        return sorted(int(c) for c in u.session.execute(select(AssignmentRow.customer_id).where(
            AssignmentRow.campaign_id == campaign_id, AssignmentRow.arm == "treatment")).scalars())


def _click(mbank: Bank, campaign_id: int, ids: Sequence[int], at: datetime) -> None:
    service.record_events(mbank.uow(), mbank.who(), [
        {"customer_id": c, "kind": "clicked", "at": at, "campaign_id": campaign_id} for c in ids])


class TestJourney:
    def test_sms_then_a_visit_for_those_who_did_not_click(self, mbank: Bank) -> None:
        who = mbank.who()
        camp = _campaign(mbank, "journey")
        step = service.add_journey_step(mbank.uow(), who, camp.id, StepSpec(3, "no_click", "visit"))
        assert (step.position, step.status) == (1, "waiting")
        service.launch_campaign(mbank.uow(), who, camp.id, customers(), at=NOON)
        treated = _treated(mbank, camp.id)
        clickers = treated[::4]
        _click(mbank, camp.id, clickers, NOON + timedelta(hours=5))
        # not due before 3 days have passed
        early = service.advance_journeys(mbank.uow(), who, now=NOON + timedelta(days=2), consent=everyone)
        assert early.steps_done == 0
        done = service.advance_journeys(mbank.uow(), who, now=NOON + timedelta(days=3), consent=everyone)
        assert done.steps_done == 1 and done.visit_tasks == len(treated) - len(clickers)
        with mbank.uow() as u:
            visited = set(u.session.execute(select(VisitTaskRow.customer_id).where(
                VisitTaskRow.campaign_id == camp.id)).scalars())
        assert visited == set(treated) - set(clickers)
        with mbank.uow() as u:
            control = set(u.session.execute(select(AssignmentRow.customer_id).where(
                AssignmentRow.campaign_id == camp.id, AssignmentRow.arm == "control")).scalars())
        assert control and not control & visited  # the control group is never contacted
        # a second round does nothing more
        again = service.advance_journeys(mbank.uow(), who, now=NOON + timedelta(days=4), consent=everyone)
        assert again.steps_done == 0
        funnel = service.step_funnels(mbank.uow(), who, camp.id)
        assert [(f.position, f.contacted) for f in funnel] == [(0, len(treated)), (1, len(visited))]
        assert funnel[0].clicked == len(clickers)

    def test_a_follow_up_sms_respects_opt_outs_and_quiet_hours(self, mbank: Bank) -> None:
        who = mbank.who()
        camp = _campaign(mbank, "sms-again")
        service.add_journey_step(mbank.uow(), who, camp.id,
                                 StepSpec(2, "no_application", "sms", "Still there? {{ link }}"))
        service.launch_campaign(mbank.uow(), who, camp.id, customers(50), at=NOON)
        treated = _treated(mbank, camp.id)
        service.record_opt_out(mbank.uow(), who, treated[0], "sms", at=NOON)
        night = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
        done = service.advance_journeys(mbank.uow(), who, now=night, consent=everyone)
        assert done.messages == len(treated) - 1
        steps = service.journey_steps(mbank.uow(), who, camp.id)
        assert steps[0].blocked == {"opted_out": 1}
        with mbank.uow() as u:
            rows = u.session.execute(select(OutboxRow.customer_id, OutboxRow.scheduled_at, OutboxRow.body).where(
                OutboxRow.campaign_id == camp.id, OutboxRow.body.like("Still there?%"))).all()
        assert len(rows) == len(treated) - 1 and treated[0] not in {r[0] for r in rows}
        assert all(r[1] > night for r in rows)  # held until the quiet hours end

    def test_a_second_step_follows_whom_the_first_reached(self, mbank: Bank) -> None:
        who = mbank.who()
        camp = _campaign(mbank, "chain")
        service.add_journey_step(mbank.uow(), who, camp.id, StepSpec(1, "no_click", "push"))
        service.add_journey_step(mbank.uow(), who, camp.id, StepSpec(2, "no_application", "visit"))
        service.launch_campaign(mbank.uow(), who, camp.id, customers(60), at=NOON)
        treated = _treated(mbank, camp.id)
        _click(mbank, camp.id, treated[:10], NOON + timedelta(hours=1))
        first = service.advance_journeys(mbank.uow(), who, now=NOON + timedelta(days=1), consent=everyone)
        assert (first.steps_done, first.messages) == (1, len(treated) - 10)
        # the second step waits two days after the first, not after the launch
        assert service.advance_journeys(mbank.uow(), who, now=NOON + timedelta(days=2),
                                        consent=everyone).steps_done == 0
        applicants = treated[10:15]
        service.record_events(mbank.uow(), who, [{"customer_id": c, "kind": "applied",
                                                 "at": NOON + timedelta(days=2)} for c in applicants])
        second = service.advance_journeys(mbank.uow(), who, now=NOON + timedelta(days=3), consent=everyone)
        assert second.visit_tasks == len(treated) - 15
        with mbank.uow() as u:
            visited = set(u.session.execute(select(VisitTaskRow.customer_id).where(
                VisitTaskRow.campaign_id == camp.id)).scalars())
        assert visited == set(treated[15:])  # neither the clickers (not in step 1) nor the applicants

    def test_a_step_after_a_stopped_one_stops_too(self, mbank: Bank) -> None:
        who = mbank.who()
        camp = _campaign(mbank, "stopped", budget=Decimal("10.00"))
        service.add_journey_step(mbank.uow(), who, camp.id, StepSpec(1, "no_click", "visit"))
        service.add_journey_step(mbank.uow(), who, camp.id, StepSpec(1, "no_click", "sms"))
        service.launch_campaign(mbank.uow(), who, camp.id, customers(40), at=NOON)
        service.advance_journeys(mbank.uow(), who, now=NOON + timedelta(days=1), consent=everyone)
        service.advance_journeys(mbank.uow(), who, now=NOON + timedelta(days=2), consent=everyone)
        steps = service.journey_steps(mbank.uow(), who, camp.id)
        assert [s.status for s in steps] == ["stopped", "stopped"]
        assert steps[1].stop_reason == "the previous step was stopped"

    def test_steps_are_fixed_once_launched_and_for_marketers_only(self, mbank: Bank) -> None:
        who = mbank.who()
        camp = _campaign(mbank, "fixed")
        with pytest.raises(PermissionDenied):
            service.add_journey_step(mbank.uow(), mbank.who(Role.CREDIT_OFFICER), camp.id,
                                     StepSpec(3, "no_click", "sms"))
        service.launch_campaign(mbank.uow(), who, camp.id, customers(20), at=NOON)
        with pytest.raises(Conflict):
            service.add_journey_step(mbank.uow(), who, camp.id, StepSpec(3, "no_click", "sms"))
        other = make_bank(mbank.engine)
        with pytest.raises(NotFound):
            service.journey_steps(other.uow(), other.who(), camp.id)


class TestVariants:
    def test_each_variant_is_measured_apart(self, mbank: Bank) -> None:
        who = mbank.who()
        camp = _campaign(mbank, "ab", variants=(Variant("A", 50, "Offer A {{ link }}"),
                                                Variant("B", 50, "Offer B {{ link }}")))
        service.launch_campaign(mbank.uow(), who, camp.id, customers(), at=NOON)
        with mbank.uow() as u:
            rows = u.session.execute(select(AssignmentRow.customer_id, AssignmentRow.variant).where(
                AssignmentRow.campaign_id == camp.id, AssignmentRow.arm == "treatment")).all()
            bodies = dict(u.session.execute(select(OutboxRow.customer_id, OutboxRow.body).where(
                OutboxRow.campaign_id == camp.id)).all())
        by = {int(c): v for c, v in rows}
        assert set(by.values()) == {"A", "B"}
        assert all(bodies[c].startswith(f"Offer {v}") for c, v in by.items())
        b_ids = [c for c, v in by.items() if v == "B"]
        _click(mbank, camp.id, b_ids, NOON + timedelta(hours=3))
        results = service.variant_report(mbank.uow(), who, camp.id)
        assert [r.key for r in results] == ["A", "B"]
        a, b = results
        assert (a.responded, b.responded) == (0, len(b_ids)) and b.treated == len(b_ids)
        assert a.difference is None and b.difference is not None

    def test_a_visit_campaign_has_no_variants(self, mbank: Bank) -> None:
        with pytest.raises(ValidationError):
            service.create_campaign(mbank.uow(), mbank.who(), service.CampaignSpec(
                name="v", channel="visit", segment_name=None, run_id=None,
                variants=(Variant("A", 1, "x"), Variant("B", 1, "y"))), at=NOON)


class TestBudget:
    def test_a_launch_over_budget_is_refused_with_the_figures(self, mbank: Bank) -> None:
        camp = _campaign(mbank, "tight", budget=Decimal("1.00"))  # 0.05 a message: 20 messages
        with pytest.raises(Conflict, match="budget"):
            service.launch_campaign(mbank.uow(), mbank.who(), camp.id, customers(), at=NOON)
        with mbank.uow() as u:
            assert u.session.execute(select(func.count()).select_from(OutboxRow).where(
                OutboxRow.campaign_id == camp.id)).scalar() == 0
        assert service.get_campaign(mbank.uow(), mbank.who(), camp.id).status == "draft"

    def test_a_step_over_budget_is_stopped_and_the_calendar_shows_the_spend(self, mbank: Bank) -> None:
        who = mbank.who()
        camp = _campaign(mbank, "budgeted", budget=Decimal("20.00"), department="Retail", product="Micro loan")
        service.add_journey_step(mbank.uow(), who, camp.id, StepSpec(1, "no_click", "visit"))  # 30.00 a visit
        summary = service.launch_campaign(mbank.uow(), who, camp.id, customers(), at=NOON)
        done = service.advance_journeys(mbank.uow(), who, now=NOON + timedelta(days=1), consent=everyone)
        assert done.steps_stopped == 1 and done.visit_tasks == 0
        step = service.journey_steps(mbank.uow(), who, camp.id)[0]
        assert step.status == "stopped" and step.stop_reason is not None and "budget" in step.stop_reason
        lines = service.campaign_calendar(mbank.uow(), who, date(2026, 3, 1))
        line = next(x for x in lines if x.campaign_id == camp.id)
        assert (line.department, line.product) == ("Retail", "Micro loan")
        assert line.spent == Decimal("0.05") * summary.messages and line.budget == Decimal("20.00")
        assert service.campaign_calendar(mbank.uow(), who, date(2026, 4, 1)) == []
