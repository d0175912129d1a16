"""Campaign measurement on SQLite and PostgreSQL: one attribution rule across the bank's campaigns, a funnel
that never widens, per-channel cost and ROI from the bank's settings, control warnings per stratum, and a
campaign's close that stores its report and uplift model once, which the report then reads."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import polars as pl
import pytest
from sqlalchemy import select, update

from microlend.core.errors import Conflict, PermissionDenied, ValidationError
from microlend.core.identity import Role
from microlend.marketing import service
from microlend.marketing.attribution import FUNNEL_STAGES
from microlend.marketing.segments import FrequencyCap
from microlend.marketing.tables import AssignmentRow, CampaignMeasurementRow

from .conftest import Bank
from .test_marketing_campaign_flow import NOON, FakeConsent, RecordingSender, customers

CAP = FrequencyCap(max_messages=10, window_days=1)


def _campaign(mbank: Bank, name: str, *, share: int, at: object, channel: str = "sms",
              frame: pl.DataFrame | None = None) -> int:
    who = mbank.who()
    try:
        service.get_segment(mbank.uow(), who, "adults")
    except Exception:
        service.save_segment(mbank.uow(), who, "adults", "age >= 25 and months_on_book > 2", at=NOON)
    camp = service.create_campaign(mbank.uow(), who, service.CampaignSpec(
        name=name, channel=channel, segment_name="adults", control_share_bp=share, cap=CAP), at=at)  # type: ignore[arg-type]
    service.launch_campaign(mbank.uow(), who, camp.id, frame if frame is not None else customers(), at=at,  # type: ignore[arg-type]
                            bank_name="Demo")
    if channel != "visit":
        service.dispatch_outbox(mbank.uow(), who, now=at, consent=FakeConsent(customers()))  # type: ignore[arg-type]
    return camp.id


def _arms(mbank: Bank, campaign_id: int) -> dict[int, str]:
    with mbank.uow() as u:
        return {int(c): a for c, a in u.session.execute(select(AssignmentRow.customer_id, AssignmentRow.arm).where(
            AssignmentRow.campaign_id == campaign_id)).all()}


class TestOneRuleAcrossCampaigns:
    def test_an_application_counts_for_the_last_campaign_that_touched_the_customer(self, mbank: Bank) -> None:
        who = mbank.who()
        first = _campaign(mbank, "spring", share=5000, at=NOON)
        second = _campaign(mbank, "summer", share=0, at=NOON + timedelta(days=2))
        a, b = _arms(mbank, first), _arms(mbank, second)
        both = [c for c in a if a[c] in ("treatment", "control") and b.get(c) == "treatment"]
        assert len(both) >= 10
        service.record_events(mbank.uow(), who, [
            {"customer_id": c, "kind": "applied", "at": NOON + timedelta(days=3)} for c in both])
        early = [c for c in a if a[c] == "treatment" and c not in b][:3]
        service.record_events(mbank.uow(), who, [
            {"customer_id": c, "kind": "applied", "at": NOON + timedelta(days=1)} for c in early])
        spring = service.campaign_report(mbank.uow(), who, [first])
        summer = service.campaign_report(mbank.uow(), who, [second])
        # every application counted once across the two reports: the later campaign takes those after its send
        assert spring.comparisons[0].treatment + spring.comparisons[0].control == len(early)
        assert summer.comparisons[0].treatment == len(both)
        assert "Last touch" in spring.attribution_rule
        # the training rows for uplift follow the same rule
        rows = service.campaign_outcomes(mbank.uow(), who, [first], stage="applied")
        assert int(rows.get_column("converted").sum()) == len(early)


class TestFunnel:
    def test_the_funnel_never_widens_even_when_more_apply_than_click(self, mbank: Bank) -> None:
        who = mbank.who()
        cid = _campaign(mbank, "autumn", share=2000, at=NOON)
        treated = sorted(c for c, arm in _arms(mbank, cid).items() if arm == "treatment")
        service.record_events(mbank.uow(), who, [
            {"customer_id": c, "kind": "applied", "at": NOON + timedelta(days=1)} for c in treated[:30]])
        service.record_events(mbank.uow(), who, [
            {"customer_id": c, "kind": "clicked", "at": NOON + timedelta(hours=2), "campaign_id": cid}
            for c in treated[:5]])
        report = service.campaign_report(mbank.uow(), who, [cid])
        for row in report.funnel:
            counts = [getattr(row, s) for s in FUNNEL_STAGES]
            assert counts == sorted(counts, reverse=True), (row.group, counts)
        sms = next(f for f in report.funnel if f.by == "channel")
        assert (sms.tracked_clicks, sms.clicked, sms.applied) == (5, 30, 30)
        assert sms.delivered == sms.sent  # the sender accepted every message; no delivery receipts here


class TestCostAndRoi:
    def test_the_banks_channel_costs_and_margin_give_the_roi(self, mbank: Bank) -> None:
        who = mbank.who()
        cid = _campaign(mbank, "winter", share=3000, at=NOON)
        arms = _arms(mbank, cid)
        treated = sorted(c for c, a in arms.items() if a == "treatment")
        control = sorted(c for c, a in arms.items() if a == "control")
        service.record_events(mbank.uow(), who, [
            {"customer_id": c, "kind": "disbursed", "at": NOON + timedelta(days=2)} for c in treated[:20]]
            + [{"customer_id": c, "kind": "disbursed", "at": NOON + timedelta(days=2)} for c in control[:2]])
        service.update_measurement_settings(mbank.uow(), who, service.MeasurementSettings(
            Decimal("0.10"), Decimal("0.01"), Decimal("30"), Decimal("600"), 30), at=NOON)
        report = service.campaign_report(mbank.uow(), who, [cid])
        effect = next(e for e in report.channels if e.stage == "disbursed")
        sent = next(f for f in report.funnel if f.by == "channel").sent
        cost = (Decimal("0.10") * sent).quantize(Decimal("0.01"))
        incremental = Decimal(20) - Decimal(2) * Decimal(len(treated)) / Decimal(len(control))
        assert effect.cost == cost and report.total_cost == cost
        assert effect.roi == ((incremental * 600 - cost) / cost).quantize(Decimal("0.0001"))
        settings = service.measurement_settings(mbank.uow(), who)
        assert settings.stated and settings.margin_per_disbursed == Decimal("600")

    def test_bad_settings_are_refused_and_a_credit_officer_may_not_state_them(self, mbank: Bank) -> None:
        bad = service.MeasurementSettings(Decimal("-1"), Decimal("0"), Decimal("0"), None, 30)
        with pytest.raises(ValidationError, match="sms_cost"):
            service.update_measurement_settings(mbank.uow(), mbank.who(), bad, at=NOON)
        good = service.MeasurementSettings(Decimal("1"), Decimal("0"), Decimal("0"), None, 30)
        with pytest.raises(PermissionDenied):
            service.update_measurement_settings(mbank.uow(), mbank.who(Role.CREDIT_OFFICER), good, at=NOON)
        assert not service.measurement_settings(mbank.uow(), mbank.who()).stated


class TestControlWarnings:
    def test_a_stratum_with_too_small_a_control_group_is_named(self, mbank: Bank) -> None:
        cid = _campaign(mbank, "tiny", share=500, at=NOON)
        report = service.campaign_report(mbank.uow(), mbank.who(), [cid])
        assert report.warnings and "fewer than the 30" in report.warnings[0]


class TestClose:
    def test_the_close_trains_once_and_the_report_reads_what_was_stored(self, mbank: Bank) -> None:
        who = mbank.who()
        frame = customers().with_columns(pl.col("age").alias("annual_turnover"))
        cid = _campaign(mbank, "measured", share=4000, at=NOON, frame=frame)
        arms = _arms(mbank, cid)
        by_arm = {a: sorted(c for c, arm in arms.items() if arm == a) for a in ("treatment", "control")}
        service.record_events(mbank.uow(), who, [
            {"customer_id": c, "kind": "applied", "at": NOON + timedelta(days=3)}
            for a, step in (("treatment", 3), ("control", 5)) for i, c in enumerate(by_arm[a]) if i % step == 0])
        with pytest.raises(Conflict, match="attribution window ends"):
            service.close_campaign(mbank.uow(), who, cid, frame, at=NOON + timedelta(days=29))
        assert service.stored_measurement(mbank.uow(), who, cid) is None
        closed = service.close_campaign(mbank.uow(), who, cid, frame, at=NOON + timedelta(days=31))
        assert closed.uplift["problem"] == "" and closed.artefact_sha256
        assert closed.uplift["auuc_normalised"] is not None and "qini_area" in closed.uplift
        live = service.campaign_report(mbank.uow(), who, [cid])
        assert closed.report.comparisons == live.comparisons and closed.report.funnel == live.funnel
        with pytest.raises(Conflict, match="already closed"):
            service.close_campaign(mbank.uow(), who, cid, frame, at=NOON + timedelta(days=32))
        # later events change the live figures, not the stored ones
        late = by_arm["treatment"][1]
        service.record_events(mbank.uow(), who, [{"customer_id": late, "kind": "applied",
                                                  "at": NOON + timedelta(days=4)}])
        stored = service.stored_measurement(mbank.uow(), who, cid)
        assert stored is not None and stored.report.comparisons == closed.report.comparisons
        assert service.campaign_report(mbank.uow(), who, [cid]).comparisons[0].treatment == \
            closed.report.comparisons[0].treatment + 1
        # the stored model ranks customers; a changed artefact is refused
        model = service.stored_uplift_model(mbank.uow(), who, cid)
        x = frame.select([pl.col(f).cast(pl.Float64) for f in model.features]).to_numpy()
        assert model.predict(x).shape == (frame.height,)
        with mbank.uow() as u:
            u.session.execute(update(CampaignMeasurementRow).where(CampaignMeasurementRow.campaign_id == cid).values(
                artefact='{"kind": "two_model_logistic/1"}'))
            u.commit()
        with pytest.raises(ValidationError, match="sha256"):
            service.stored_uplift_model(mbank.uow(), who, cid)

    def test_another_bank_neither_reads_nor_closes_the_campaign(self, mbank: Bank) -> None:
        from microlend.core.errors import NotFound

        from .conftest import make_bank

        cid = _campaign(mbank, "mine", share=2000, at=NOON)
        other = make_bank(mbank.engine)
        with pytest.raises(NotFound):
            service.stored_measurement(other.uow(), other.who(), cid)
        with pytest.raises(NotFound):
            service.close_campaign(other.uow(), other.who(), cid, customers(), at=NOON + timedelta(days=40))
        assert service.stored_measurement(mbank.uow(), mbank.who(), cid) is None

    def test_a_campaign_without_a_control_group_closes_without_a_model(self, mbank: Bank) -> None:
        cid = _campaign(mbank, "all-in", share=0, at=NOON)
        closed = service.close_campaign(mbank.uow(), mbank.who(), cid, customers(), at=NOON + timedelta(days=31))
        assert closed.uplift["problem"] == "no_control" and closed.artefact_sha256 is None


def test_a_sender_that_refuses_leaves_those_customers_out_of_delivered(mbank: Bank) -> None:
    who = mbank.who()
    service.save_segment(mbank.uow(), who, "adults", "age >= 25 and months_on_book > 2", at=NOON)
    camp = service.create_campaign(mbank.uow(), who, service.CampaignSpec(
        name="refused", channel="sms", segment_name="adults", control_share_bp=0, cap=CAP), at=NOON)
    service.launch_campaign(mbank.uow(), who, camp.id, customers(), at=NOON, bank_name="Demo")
    sender = RecordingSender(refuse=set(range(1, 60)))
    service.dispatch_outbox(mbank.uow(), who, now=NOON, sender=sender, consent=FakeConsent(customers()))
    row = next(f for f in service.campaign_report(mbank.uow(), who, [camp.id]).funnel if f.by == "channel")
    accepted = len([m for m in sender.messages if m.customer_id not in sender.refuse])
    assert row.delivered == accepted < row.targeted


def test_the_launch_holds_out_the_share_in_every_branch(mbank: Bank) -> None:
    frame = customers().with_columns(pl.when(pl.col("customer_id") % 4 == 0).then(pl.lit("east"))
                                     .otherwise(pl.lit("west")).alias("branch"))
    cid = _campaign(mbank, "by-branch", share=2000, at=NOON, frame=frame)
    arms = pl.DataFrame(list(_arms(mbank, cid).items()), schema={"customer_id": pl.Int64, "arm": pl.String},
                        orient="row").filter(pl.col("arm") != "excluded").join(frame, on="customer_id")
    per = arms.group_by("branch").agg(pl.len().alias("n"), (pl.col("arm") == "control").sum().alias("control"))
    for branch, n, control in per.select("branch", "n", "control").iter_rows():
        assert control == (n * 2000 * 2 + 10_000) // 20_000, branch
