from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import polars as pl
import pytest
from sqlalchemy import func, select

from microlend.core.errors import Conflict, PermissionDenied, ValidationError
from microlend.core.identity import Principal, Role
from microlend.core.tables import AuditRow
from microlend.core.uow import UnitOfWork
from microlend.marketing import service
from microlend.marketing.campaigns import OutgoingMessage
from microlend.marketing.segments import FrequencyCap
from microlend.marketing.tables import AssignmentRow, OutboxRow

from .conftest import Bank

AT = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai: quiet hours
NOON = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


def customers(n: int = 400) -> pl.DataFrame:
    return pl.DataFrame({
        "customer_id": list(range(1, n + 1)),
        "age": [20 + i % 50 for i in range(n)],
        "industry": ["retail" if i % 3 else "farming" for i in range(n)],
        "months_on_book": [i % 24 for i in range(n)],
        "marketing_consent": [i % 10 != 0 for i in range(n)],
        "current_days_past_due": [5 if i % 17 == 0 else 0 for i in range(n)],
        "officer_user_id": [100 + i % 3 for i in range(n)],
    })


class FakeConsent:
    """Consent as held now: customers who withdrew since the launch are listed in `withdrawn`."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.consenting = set(frame.filter(pl.col("marketing_consent")).get_column("customer_id").to_list())
        self.withdrawn: set[int] = set()

    def __call__(self, uow: UnitOfWork, who: Principal, ids: Sequence[int]) -> set[int]:
        return {i for i in ids if i in self.consenting and i not in self.withdrawn}


class RecordingSender:
    name = "recording"

    def __init__(self, refuse: set[int] | None = None) -> None:
        self.messages: list[OutgoingMessage] = []
        self.refuse = refuse or set()

    def send(self, messages: Sequence[OutgoingMessage]) -> set[int]:
        self.messages.extend(messages)
        return {m.message_id for m in messages if m.customer_id not in self.refuse}


def _launch(mbank: Bank, name: str, channel: str = "sms", share: int = 2000, at: datetime = AT,
            cap: FrequencyCap | None = None) -> service.LaunchSummary:
    who = mbank.who()
    try:
        service.get_segment(mbank.uow(), who, "adults")
    except Exception:
        service.save_segment(mbank.uow(), who, "adults", "age >= 25 and months_on_book > 2", at=at)
    camp = service.create_campaign(mbank.uow(), who, service.CampaignSpec(
        name=name, channel=channel, segment_name="adults", control_share_bp=share, cap=cap or FrequencyCap()), at=at)
    return service.launch_campaign(mbank.uow(), who, camp.id, customers(), at=at, bank_name="Demo")


class TestSegmentsAreVersionedAndAudited:
    def test_saving_again_makes_a_new_version(self, mbank: Bank) -> None:
        who = mbank.who()
        v1 = service.save_segment(mbank.uow(), who, "young", "age < 30", at=AT)
        v2 = service.save_segment(mbank.uow(), who, "young", "age < 35", at=AT)
        assert (v1.version, v2.version) == (1, 2)
        assert service.get_segment(mbank.uow(), who, "young").expression == "age < 35"
        assert service.get_segment(mbank.uow(), who, "young", 1).expression == "age < 30"
        with mbank.uow() as u:
            actions = u.session.execute(select(AuditRow.action).where(AuditRow.tenant_id == mbank.tenant_id)).scalars()
            assert list(actions).count("segment.save") == 2

    def test_a_bad_expression_is_refused_and_nothing_is_stored(self, mbank: Bank) -> None:
        with pytest.raises(ValidationError) as err:
            service.save_segment(mbank.uow(), mbank.who(), "bad", "password == \"x\"", at=AT)
        assert err.value.field == "password"
        assert service.list_segments(mbank.uow(), mbank.who()) == []

    def test_preview_counts_with_exclusions(self, mbank: Bank) -> None:
        who = mbank.who()
        service.save_segment(mbank.uow(), who, "all", "age >= 0", at=AT)
        service.record_opt_out(mbank.uow(), who, 2, "sms", at=AT)
        summary = service.preview_segment(mbank.uow(), who, "all", customers(), channel="sms", at=AT, sample_size=3)
        frame = customers()
        no_consent = frame.filter(~pl.col("marketing_consent")).height
        assert summary.selected == 400
        assert summary.excluded["no_consent"] == no_consent
        assert summary.excluded["opted_out"] == 1
        assert len(summary.sample) == 3

    def test_an_auditor_cannot_save_a_segment(self, mbank: Bank) -> None:
        with pytest.raises(PermissionDenied):
            service.save_segment(mbank.uow(), mbank.who(Role.AUDITOR), "x", "age > 1", at=AT)


class TestCampaignLaunch:
    def test_control_group_exclusions_and_quiet_hours(self, mbank: Bank) -> None:
        summary = _launch(mbank, "spring")
        frame = customers().filter((pl.col("age") >= 25) & (pl.col("months_on_book") > 2))
        assert summary.targeted == frame.height
        eligible = frame.filter(pl.col("marketing_consent") & (pl.col("current_days_past_due") == 0))
        # the bank's default contact policy keeps a global holdout (5 %) out of every campaign
        held = summary.excluded.get("global_holdout", 0)
        assert 0 < held < eligible.height * 0.10
        assert summary.control + summary.treatment == eligible.height - held
        # one stratum (one segment, no branch or score): exactly 20 % of the eligible, rounded half up, held out
        assert summary.control == ((eligible.height - held) * 2000 * 2 + 10_000) // 20_000
        assert summary.messages == summary.treatment
        # 22:00 Shanghai is quiet: messages wait for 08:00 the next morning (00:00 UTC)
        assert summary.scheduled_at == datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
        with mbank.uow() as u:
            control_ids = set(u.session.execute(select(AssignmentRow.customer_id).where(
                AssignmentRow.campaign_id == summary.campaign_id, AssignmentRow.arm == "control")).scalars())
            messaged = set(u.session.execute(select(OutboxRow.customer_id).where(
                OutboxRow.campaign_id == summary.campaign_id)).scalars())
            body = u.session.execute(select(OutboxRow.body).where(
                OutboxRow.campaign_id == summary.campaign_id).limit(1)).scalar_one()
        assert not control_ids & messaged
        assert "【Demo】" in body and "/t/" in body

    def test_a_campaign_is_launched_once(self, mbank: Bank) -> None:
        summary = _launch(mbank, "once")
        with pytest.raises(Conflict):
            service.launch_campaign(mbank.uow(), mbank.who(), summary.campaign_id, customers(), at=AT)

    def test_visit_tasks_land_with_the_customers_officer(self, mbank: Bank) -> None:
        summary = _launch(mbank, "visits", channel="visit", share=0)
        assert summary.visit_tasks == summary.treatment > 0
        assert summary.scheduled_at == AT  # visits are not held back by quiet hours
        officer = mbank.who(Role.CREDIT_OFFICER, user_id=101)
        mine = service.visit_tasks(mbank.uow(), officer)
        assert mine and all(t.officer_user_id == 101 for t in mine)
        service.close_visit_task(mbank.uow(), officer, mine[0].id, outcome="visited", at=AT)
        with pytest.raises(Conflict):
            service.close_visit_task(mbank.uow(), officer, mine[0].id, outcome="visited", at=AT)
        other = service.visit_tasks(mbank.uow(), mbank.who(Role.CREDIT_OFFICER, user_id=102))
        assert mine[0].id not in {t.id for t in other}


class TestDispatch:
    def test_consent_and_opt_out_are_checked_again_at_send_time(self, mbank: Bank) -> None:
        summary = _launch(mbank, "recheck", share=0)
        consent = FakeConsent(customers())
        with mbank.uow() as u:
            targets = sorted(u.session.execute(select(OutboxRow.customer_id).where(
                OutboxRow.campaign_id == summary.campaign_id)).scalars())
        consent.withdrawn.add(targets[0])
        service.record_opt_out(mbank.uow(), mbank.who(), targets[1], "sms", at=AT)
        sender = RecordingSender(refuse={targets[2]})
        early = service.dispatch_outbox(mbank.uow(), mbank.who(), now=AT, sender=sender, consent=consent)
        assert early.sent == 0 and not sender.messages  # still quiet hours
        done = service.dispatch_outbox(mbank.uow(), mbank.who(), now=summary.scheduled_at, sender=sender,
                                       consent=consent, batch_size=50)
        assert done.suppressed == {"no_consent": 1, "opted_out": 1}
        assert done.failed == 1
        assert done.sent == summary.messages - 3
        sent_to = {m.customer_id for m in sender.messages}
        assert targets[0] not in sent_to and targets[1] not in sent_to
        again = service.dispatch_outbox(mbank.uow(), mbank.who(), now=summary.scheduled_at, sender=sender,
                                        consent=consent)
        assert again.sent == 0  # nothing is sent twice

    def test_a_backlog_found_in_quiet_hours_waits_for_the_morning(self, mbank: Bank) -> None:
        summary = _launch(mbank, "late", share=0, at=NOON)
        late_evening = NOON + timedelta(hours=10)  # 22:00 in Shanghai
        sender = RecordingSender()
        result = service.dispatch_outbox(mbank.uow(), mbank.who(), now=late_evening, sender=sender,
                                         consent=FakeConsent(customers()))
        assert result.sent == 0 and result.deferred == summary.messages and not sender.messages
        morning = datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
        with mbank.uow() as u:
            when = set(u.session.execute(select(OutboxRow.scheduled_at).where(
                OutboxRow.campaign_id == summary.campaign_id)).scalars())
        assert when == {morning}
        later = service.dispatch_outbox(mbank.uow(), mbank.who(), now=morning, sender=sender,
                                        consent=FakeConsent(customers()))
        assert later.sent == summary.messages

    def test_frequency_cap_holds_across_campaigns(self, mbank: Bank) -> None:
        consent = FakeConsent(customers())
        cap = FrequencyCap(max_messages=1, window_days=7)
        first = _launch(mbank, "first", share=0, at=NOON, cap=cap)
        service.dispatch_outbox(mbank.uow(), mbank.who(), now=NOON, consent=consent)
        second = _launch(mbank, "second", share=0, at=NOON + timedelta(days=1), cap=cap)
        assert second.excluded["frequency_cap"] == first.messages
        assert second.messages == 0
        third = _launch(mbank, "third", share=0, at=NOON + timedelta(days=8), cap=cap)
        assert third.messages == first.messages  # the window has passed

    def test_two_campaigns_launched_before_any_send_still_respect_the_cap(self, mbank: Bank) -> None:
        cap = FrequencyCap(max_messages=1, window_days=7)
        a = _launch(mbank, "a", share=0, at=NOON, cap=cap)
        b = _launch(mbank, "b", share=0, at=NOON, cap=cap)
        assert b.messages == 0 and a.messages > 0


class TestReport:
    def test_funnel_and_lift_from_recorded_events(self, mbank: Bank, tmp_path: object) -> None:
        summary = _launch(mbank, "measured", share=5000, at=NOON)
        who = mbank.who()
        service.dispatch_outbox(mbank.uow(), who, now=NOON, consent=FakeConsent(customers()))
        with mbank.uow() as u:
            arms = dict(u.session.execute(select(AssignmentRow.customer_id, AssignmentRow.arm).where(
                AssignmentRow.campaign_id == summary.campaign_id)).all())
            token = u.session.execute(select(OutboxRow.token).where(
                OutboxRow.campaign_id == summary.campaign_id).limit(1)).scalar_one()
        treated = sorted(c for c, a in arms.items() if a == "treatment")
        control = sorted(c for c, a in arms.items() if a == "control")
        events = [{"customer_id": c, "kind": "disbursed", "at": NOON + timedelta(days=2)} for c in treated[:10]]
        events += [{"customer_id": c, "kind": "disbursed", "at": NOON + timedelta(days=2)} for c in control[:2]]
        events += [{"customer_id": treated[20], "kind": "disbursed", "at": NOON + timedelta(days=30)}]  # window end
        service.record_events(mbank.uow(), who, events)
        service.record_event(mbank.uow(), who, "clicked", token=token, at=NOON + timedelta(hours=1))
        report = service.campaign_report(mbank.uow(), who, [summary.campaign_id])
        disbursed = report.comparisons[1]
        assert (disbursed.treatment, disbursed.treatment_n) == (10, len(treated))
        assert (disbursed.control, disbursed.control_n) == (2, len(control))
        channel_row = next(f for f in report.funnel if f.by == "channel")
        assert channel_row.tracked_clicks == 1 and channel_row.sent == summary.messages
        assert channel_row.delivered == summary.messages  # accepted by the sender; no delivery receipts here
        assert channel_row.disbursed == 10 and channel_row.clicked >= channel_row.applied >= channel_row.disbursed
        cost = Decimal("0.05") * summary.messages
        assert report.total_cost == cost.quantize(Decimal("0.01"), ROUND_HALF_UP)
        assert report.cost_per_disbursed == (cost / 10).quantize(Decimal("0.01"), ROUND_HALF_UP)
        html = report.to_html()
        assert "data:image/png;base64," in html and "http" not in html.split("<body>")[1].replace("http-equiv", "")
        assert '"comparisons"' in report.to_json()

    def test_unknown_tracked_link_is_refused(self, mbank: Bank) -> None:
        with pytest.raises(Exception) as err:
            service.record_event(mbank.uow(), mbank.who(), "clicked", token="nope", at=NOON)
        assert getattr(err.value, "field", None) == "token"


def test_outbox_holds_one_row_per_treated_customer(mbank: Bank) -> None:
    summary = _launch(mbank, "rows", share=1000)
    with mbank.uow() as u:
        n = u.session.execute(select(func.count()).select_from(OutboxRow).where(
            OutboxRow.campaign_id == summary.campaign_id)).scalar_one()
        distinct = u.session.execute(select(func.count(func.distinct(OutboxRow.customer_id))).where(
            OutboxRow.campaign_id == summary.campaign_id)).scalar_one()
    assert n == distinct == summary.treatment


def test_past_campaign_outcomes_train_an_uplift_model(mbank: Bank) -> None:
    from microlend.marketing.uplift import TwoModelUplift, rank_targets

    summary = _launch(mbank, "history", share=5000, at=NOON)
    who = mbank.who()
    service.dispatch_outbox(mbank.uow(), who, now=NOON, consent=FakeConsent(customers()))
    with mbank.uow() as u:
        arms = dict(u.session.execute(select(AssignmentRow.customer_id, AssignmentRow.arm).where(
            AssignmentRow.campaign_id == summary.campaign_id)).all())
    frame = customers()
    ages = dict(zip(frame.get_column("customer_id"), frame.get_column("age"), strict=True))
    # older treated customers convert; young ones and the control convert rarely
    converted = [c for c, a in arms.items() if (a == "treatment" and ages[c] > 45) or c % 11 == 0]
    service.record_events(mbank.uow(), who, [
        {"customer_id": c, "kind": "disbursed", "at": NOON + timedelta(days=3)} for c in converted])
    outcomes = service.campaign_outcomes(mbank.uow(), who, [summary.campaign_id])
    assert outcomes.height == len([a for a in arms.values() if a != "excluded"])
    data = outcomes.join(frame, on="customer_id")
    model = TwoModelUplift().fit(data.select("age").to_numpy(), data.get_column("treated").to_numpy(),
                                 data.get_column("converted").to_numpy())
    ranked = rank_targets(model, frame, ["age"])
    top = ranked.head(20).join(frame, on="customer_id")
    assert min(top.get_column("age").to_list()) > 45


def test_default_consent_check_asks_parties_within_the_bank(mbank: Bank) -> None:
    from microlend.parties.tables import CustomerRow

    with mbank.uow() as u:
        for i, consent in enumerate([True, False, True]):
            u.session.add(CustomerRow(
                tenant_id=mbank.tenant_id, kind="person", name=f"c{i}", id_number_enc="x",
                id_number_index=f"{mbank.tenant_id}-{i}", id_number_masked="x", phone_enc="x",
                phone_index=f"p{mbank.tenant_id}-{i}", phone_masked="x", marketing_consent=consent,
                attributes={}, created_at=NOON, updated_at=NOON))
        u.session.flush()
        ids = list(u.session.execute(select(CustomerRow.id).where(
            CustomerRow.tenant_id == mbank.tenant_id).order_by(CustomerRow.id)).scalars())
        u.commit()
    other_bank = dataclasses.replace(mbank.who(), tenant_id=mbank.tenant_id + 1000)
    assert service.customers_table_consent(mbank.uow(), mbank.who(), [*ids, 10**9]) == {ids[0], ids[2]}
    assert service.customers_table_consent(mbank.uow(), other_bank, ids) == set()


def test_another_banks_campaigns_and_tasks_are_invisible(mbank: Bank) -> None:
    from microlend.core.errors import NotFound

    from .conftest import make_bank

    summary = _launch(mbank, "private", channel="visit", share=0)
    other = make_bank(mbank.engine)
    with pytest.raises(NotFound):
        service.get_campaign(other.uow(), other.who(), summary.campaign_id)
    with pytest.raises(NotFound):
        service.launch_campaign(other.uow(), other.who(), summary.campaign_id, customers(), at=AT)
    with pytest.raises(NotFound):
        service.campaign_report(other.uow(), other.who(), [summary.campaign_id])
    assert service.visit_tasks(other.uow(), other.who()) == []
    assert service.list_campaigns(other.uow(), other.who()) == []
    with mbank.uow() as u:
        actions = list(u.session.execute(
            select(AuditRow.action).where(AuditRow.tenant_id == other.tenant_id)).scalars())
    assert actions == []


def test_every_dispatch_batch_is_audited(mbank: Bank) -> None:
    summary = _launch(mbank, "audited", share=0, at=NOON)
    service.dispatch_outbox(mbank.uow(), mbank.who(), now=NOON, consent=FakeConsent(customers()), batch_size=100)
    with mbank.uow() as u:
        rows = list(u.session.execute(select(AuditRow.after).where(
            AuditRow.tenant_id == mbank.tenant_id, AuditRow.action == "outbox.dispatch")).scalars())
    assert len(rows) == -(-summary.messages // 100)
    assert sum(r["sent"] for r in rows) == summary.messages


def _history(mbank: Bank, name: str, *, convert: bool = True) -> int:
    """A finished campaign with a half-size control group; older treated customers converted."""
    summary = _launch(mbank, name, share=5000, at=NOON)
    who = mbank.who()
    service.dispatch_outbox(mbank.uow(), who, now=NOON, consent=FakeConsent(customers()))
    if convert:
        with mbank.uow() as u:
            arms = dict(u.session.execute(select(AssignmentRow.customer_id, AssignmentRow.arm).where(
                AssignmentRow.campaign_id == summary.campaign_id)).all())
        ages = dict(zip(customers().get_column("customer_id"), customers().get_column("age"), strict=True))
        converted = [c for c, a in arms.items() if (a == "treatment" and ages[c] > 45) or c % 11 == 0]
        service.record_events(mbank.uow(), who, [
            {"customer_id": c, "kind": "disbursed", "at": NOON + timedelta(days=3)} for c in converted])
    return summary.campaign_id


class TestUpliftTraining:
    def test_a_past_campaign_teaches_whom_a_contact_moves(self, mbank: Bank) -> None:
        from microlend.marketing.uplift import rank_targets

        campaign_id = _history(mbank, "uplift-history")
        outcomes = service.campaign_outcomes(mbank.uow(), mbank.who(), [campaign_id])
        trained = service.train_uplift(mbank.uow(), mbank.who(), [campaign_id], customers(), ["age"])
        assert trained.problem == "" and trained.model is not None and trained.evaluation is not None
        assert trained.customers == outcomes.height
        assert trained.control == int((outcomes.get_column("treated") == 0).sum())
        assert 0.2 * outcomes.height < trained.held_out < 0.4 * outcomes.height
        assert trained.evaluation.qini_coefficient > 0
        top = rank_targets(trained.model, customers(), ["age"]).head(20).join(customers(), on="customer_id")
        assert min(top.get_column("age").to_list()) > 45

    def test_both_methods_train_and_an_unknown_one_is_refused(self, mbank: Bank) -> None:
        campaign_id = _history(mbank, "uplift-methods")
        trained = service.train_uplift(mbank.uow(), mbank.who(), [campaign_id], customers(), ["age"],
                                       method="class_transformation")
        assert trained.method == "class_transformation" and trained.evaluation is not None
        with pytest.raises(ValidationError, match="method"):
            service.train_uplift(mbank.uow(), mbank.who(), [campaign_id], customers(), ["age"], method="forest")
        with pytest.raises(ValidationError, match="salary"):
            service.train_uplift(mbank.uow(), mbank.who(), [campaign_id], customers(), ["salary"])

    def test_without_conversions_or_customers_it_says_why_instead_of_a_model(self, mbank: Bank) -> None:
        campaign_id = _history(mbank, "uplift-nothing", convert=False)
        flat = service.train_uplift(mbank.uow(), mbank.who(), [campaign_id], customers(), ["age"])
        assert flat.model is None and flat.problem == "no_contrast" and "converters" in flat.detail
        assert flat.customers > 0 and flat.control > 0
        few = service.train_uplift(mbank.uow(), mbank.who(), [campaign_id], customers(), ["age"],
                                   min_customers=10_000)
        assert few.model is None and few.problem == "too_few" and few.held_out == 0
        bare = service.train_uplift(mbank.uow(), mbank.who(), [campaign_id], customers(), [])
        assert bare.problem == "too_few" and bare.detail == "features: none given"

    def test_it_needs_campaign_access_and_the_callers_own_campaigns(self, mbank: Bank) -> None:
        from microlend.core.errors import NotFound

        from .conftest import make_bank

        campaign_id = _history(mbank, "uplift-private")
        with pytest.raises(PermissionDenied):
            service.train_uplift(mbank.uow(), mbank.who(Role.COLLECTOR), [campaign_id], customers(), ["age"])
        other = make_bank(mbank.engine)
        with pytest.raises(NotFound):
            service.train_uplift(other.uow(), other.who(), [campaign_id], customers(), ["age"])
