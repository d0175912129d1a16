"""The bank-wide contact policy and real delivery on SQLite and PostgreSQL: four-eyes launch, global holdout,
control-group exclusivity, the bank cap over campaigns and channels, scheduled start and end, links on the
bank's host; the outbox dispatched through the gateway test double over HTTP with throttling, retries with
backoff, receipts and STOP replies (opt-out and withdrawn consent), each bank's callbacks only its own."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
from sqlalchemy import select
from tests.conftest import TenantKit

from microlend.core import delivery
from microlend.core.delivery import GatewayConfig
from microlend.core.errors import AuthenticationFailed, Conflict, PermissionDenied
from microlend.core.identity import Principal, Role
from microlend.demo import identities
from microlend.demo.message_gateway import GatewayDouble
from microlend.marketing import service
from microlend.marketing.campaigns import QuietHours
from microlend.marketing.contact_policy import ContactPolicy, in_global_holdout
from microlend.marketing.segments import FrequencyCap
from microlend.marketing.tables import AssignmentRow, OptOutRow, OutboxRow
from microlend.parties import customers as parties
from microlend.parties import devices
from microlend.parties.queries import marketing_consented

NOON = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
_rng = random.Random(7)


@pytest.fixture(scope="module")
def double() -> Iterator[GatewayDouble]:
    with GatewayDouble(api_key="bank-key-0001", secret="bank-secret-0001", receipts_url="http://unused") as server:
        yield server


def _customers(kit: TenantKit, who: Principal, n: int) -> pl.DataFrame:
    ids = []
    for i in range(n):
        birth = identities.birth_date_for_age(_rng, 40, date(2026, 1, 1))
        ids.append(parties.create_customer(kit.uow_factory(), who, parties.NewCustomer(
            "person", f"客户{i}", identities.resident_id(_rng, birth), identities.mobile(_rng),
            marketing_consent=True)).id)
    return pl.DataFrame({"customer_id": ids, "age": [30] * n, "marketing_consent": [True] * n,
                         "current_days_past_due": [0] * n})


def register_app(kit: TenantKit, customer_id: int, token: str, platform: str = "android") -> int:
    """The customer's app registers its push token, signed in as that borrower; the device's id."""
    borrower = Principal(user_id=0, tenant_id=kit.tenant.id, username=f"app-{customer_id}",
                         roles=frozenset({Role.BORROWER}), customer_id=customer_id)
    return devices.register_device(kit.uow_factory(), borrower, token, platform, at=NOON).id


class Desk:
    """A bank's marketing desk: two marketers (creator and approver) and an administrator."""

    def __init__(self, kit: TenantKit, n: int = 40) -> None:
        self.kit = kit
        self.maker = kit.principal("marketer")
        self.checker = kit.principal("marketer")
        self.admin = kit.principal("admin")
        self.frame = _customers(kit, kit.principal("credit_officer"), n)
        self.tokens: dict[int, tuple[int, str]] = {}
        for c in self.frame["customer_id"]:
            token = f"push-token-{kit.tenant.id}-{c}-{_rng.randrange(10**9)}"
            self.tokens[c] = (register_app(kit, c, token), token)
        service.save_segment(kit.uow_factory(), self.maker, "all", "age >= 18", at=NOON)

    def policy(self, **kwargs: object) -> ContactPolicy:
        values: dict[str, object] = {"cap_max_contacts": 4, "holdout_share_bp": 0, **kwargs}
        return service.set_contact_policy(self.kit.uow_factory(), self.admin, ContactPolicy(**values),  # type: ignore[arg-type]
                                          at=NOON)

    def campaign(self, name: str, channel: str = "push", share: int = 0, approve: bool = True,
                 **kwargs: object) -> int:
        camp = service.create_campaign(self.kit.uow_factory(), self.maker, service.CampaignSpec(
            name=name, channel=channel, segment_name="all", control_share_bp=share,
            quiet=QuietHours(), **kwargs), at=NOON)  # type: ignore[arg-type]
        if approve:
            service.approve_campaign(self.kit.uow_factory(), self.checker, camp.id, at=NOON)
        return camp.id

    def launch(self, campaign_id: int, at: datetime = NOON) -> service.LaunchSummary:
        return service.launch_campaign(self.kit.uow_factory(), self.maker, campaign_id, self.frame, at=at,
                                       bank_name="Demo")

    def outbox(self, campaign_id: int) -> list[OutboxRow]:
        with self.kit.uow_factory() as u:
            rows = list(u.session.execute(select(OutboxRow).where(OutboxRow.campaign_id == campaign_id)
                                          .order_by(OutboxRow.id)).scalars())
            u.session.expunge_all()
        return rows

    def arms(self, campaign_id: int) -> dict[int, tuple[str, str | None]]:
        with self.kit.uow_factory() as u:
            return {int(c): (a, r) for c, a, r in u.session.execute(
                select(AssignmentRow.customer_id, AssignmentRow.arm, AssignmentRow.excluded_reason)
                .where(AssignmentRow.campaign_id == campaign_id)).all()}

    def gateway(self, double: GatewayDouble, channel: str = "push", throttle: int = 1000) -> None:
        delivery.save_gateway(self.kit.uow_factory(), self.admin, GatewayConfig(
            channel, double.base_url, double.api_key, double.secret, batch_size=10, throttle_per_s=throttle),
            at=NOON)

    def dispatch(self, at: datetime) -> service.DispatchSummary:
        return service.dispatch_bank_outbox(self.kit.uow_factory(), self.maker, now=at)


def desk_device(desk: Desk, customer_id: int) -> int:
    return desk.tokens[customer_id][0]


@pytest.fixture
def desk(bank: TenantKit) -> Desk:
    return Desk(bank)


class TestFourEyes:
    def test_a_launch_needs_a_second_persons_approval(self, desk: Desk) -> None:
        desk.policy(launch_approval=True)
        cid = desk.campaign("unapproved", approve=False)
        with pytest.raises(Conflict, match="approval"):
            desk.launch(cid)
        with pytest.raises(PermissionDenied, match="second person"):
            service.approve_campaign(desk.kit.uow_factory(), desk.maker, cid, at=NOON)
        approved = service.approve_campaign(desk.kit.uow_factory(), desk.checker, cid, at=NOON)
        assert approved.campaign.status == "approved" and approved.approved_by == desk.checker.username
        assert desk.launch(cid).messages == 40
        with pytest.raises(Conflict):
            service.approve_campaign(desk.kit.uow_factory(), desk.checker, cid, at=NOON)

    def test_only_the_admin_sets_the_policy(self, desk: Desk) -> None:
        with pytest.raises(PermissionDenied):
            service.set_contact_policy(desk.kit.uow_factory(), desk.maker, ContactPolicy(), at=NOON)


class TestDefaultPolicy:
    """A bank that never saved a contact policy runs under the default one from its first campaign."""

    def test_a_fresh_banks_campaigns_cannot_take_a_customer_over_the_default_cap(self, desk: Desk) -> None:
        default = ContactPolicy.default()
        shown = service.contact_policy(desk.kit.uow_factory(), desk.maker)
        assert shown == default and not shown.configured
        held = {c for c in desk.frame["customer_id"] if in_global_holdout(desk.kit.tenant.id, c, 500)}
        reached: dict[int, int] = {}
        for i in range(default.cap_max_contacts + 1):  # each campaign's own cap would allow every one of them
            cid = desk.campaign(f"campaign {i}", channel=("sms", "push")[i % 2], approve=False,
                                cap=FrequencyCap(10, 1))
            summary = desk.launch(cid, at=NOON + timedelta(hours=i))
            for m in desk.outbox(cid):
                reached[m.customer_id] = reached.get(m.customer_id, 0) + 1
            if i == 1:  # the second campaign reaches everyone the first did: both are under the cap
                assert summary.messages == 40 - len(held)
        assert summary.messages == 0 and summary.excluded["bank_cap"] == 40 - len(held)
        assert max(reached.values()) == default.cap_max_contacts and not held & set(reached)


class TestPolicyAtLaunch:
    def test_the_global_holdout_gets_nothing_from_any_campaign(self, desk: Desk) -> None:
        desk.policy(holdout_share_bp=2500)
        held = {c for c in desk.frame["customer_id"] if in_global_holdout(desk.kit.tenant.id, c, 2500)}
        assert held
        for name in ("first", "second"):
            cid = desk.campaign(name)
            desk.launch(cid)
            arms = desk.arms(cid)
            assert {c for c, (_, r) in arms.items() if r == "global_holdout"} == held
            assert not held & {m.customer_id for m in desk.outbox(cid)}

    def test_another_campaigns_control_group_is_left_alone_during_its_window(self, desk: Desk) -> None:
        desk.policy()
        measured = desk.campaign("measured", share=5000, attribution_days=30)
        desk.launch(measured)
        control = {c for c, (a, _) in desk.arms(measured).items() if a == "control"}
        assert control
        later = desk.campaign("later")
        desk.launch(later, at=NOON + timedelta(days=1))
        arms = desk.arms(later)
        assert {c for c, (_, r) in arms.items() if r == "control_elsewhere"} == control
        after = desk.campaign("after the window")
        desk.launch(after, at=NOON + timedelta(days=31))
        assert not any(r == "control_elsewhere" for _, r in desk.arms(after).values())

    def test_the_bank_cap_counts_every_campaign_and_channel(self, desk: Desk) -> None:
        desk.policy(cap_max_contacts=1)
        desk.launch(desk.campaign("push first", channel="push"))
        sms = desk.campaign("sms then", channel="sms")
        summary = desk.launch(sms, at=NOON + timedelta(hours=1))
        assert summary.excluded["bank_cap"] == 40 and summary.messages == 0

    def test_links_are_on_the_banks_host_and_messages_wait_for_the_start(self, desk: Desk) -> None:
        desk.policy(public_host="https://www.bank.example.cn")
        start = NOON + timedelta(days=2)
        cid = desk.campaign("scheduled", channel="sms", starts_at=start)
        summary = desk.launch(cid)
        assert summary.scheduled_at == start
        assert all("https://www.bank.example.cn/t/" in m.body and m.scheduled_at == start for m in desk.outbox(cid))


class TestDispatchThroughTheGateway:
    def test_due_messages_go_through_the_gateway_with_its_ids(self, desk: Desk, double: GatewayDouble) -> None:
        desk.policy()
        desk.gateway(double, throttle=50)
        cid = desk.campaign("pushed")
        desk.launch(cid)
        summary = desk.dispatch(NOON + timedelta(minutes=1))
        assert summary.sent == 40 and summary.failed == 0
        rows = desk.outbox(cid)
        keys = {r.id: f"mkt-{r.id}.{desk_device(desk, r.customer_id)}" for r in rows}
        assert all(r.status == "sent" and r.gateway_id == double.accepted[keys[r.id]].gateway_id
                   and r.attempts == 1 for r in rows)
        assert double.accepted[keys[rows[0].id]].to == desk.tokens[rows[0].customer_id][1]

    def test_sms_go_to_the_registered_mobile_and_nobody_elses(self, desk: Desk, double: GatewayDouble) -> None:
        desk.policy()
        desk.gateway(double, channel="sms")
        cid = desk.campaign("texted", channel="sms")
        desk.launch(cid)
        assert desk.dispatch(NOON + timedelta(minutes=1)).sent == 40
        row = desk.outbox(cid)[0]
        mobile = parties.get_customer(desk.kit.uow_factory(), desk.kit.principal("credit_officer"),
                                      row.customer_id, reveal=True).phone
        assert double.accepted[f"mkt-{row.id}"].to == mobile

    def test_a_failing_gateway_is_tried_again_later_then_given_up(self, desk: Desk, double: GatewayDouble) -> None:
        desk.policy()
        desk.gateway(double)
        cid = desk.campaign("flaky")
        desk.launch(cid)
        double.fail_next = 10_000
        try:
            at = NOON + timedelta(minutes=1)
            first = desk.dispatch(at)
            assert first.retrying == 40 and first.sent == 0
            rows = desk.outbox(cid)
            assert all(r.status == "scheduled" and r.attempts == 1 and r.scheduled_at == at + timedelta(minutes=1)
                       and "503" in (r.last_error or "") for r in rows)
            assert desk.dispatch(at + timedelta(seconds=30)).retrying == 0  # not due yet
            for _ in range(delivery.MAX_ATTEMPTS - 1):
                at += timedelta(hours=1)
                last = desk.dispatch(at)
            assert last.failed == 40
            assert all(r.status == "failed" and r.attempts == delivery.MAX_ATTEMPTS for r in desk.outbox(cid))
        finally:
            double.fail_next = 0

    def test_a_message_after_the_campaigns_end_is_not_sent(self, desk: Desk, double: GatewayDouble) -> None:
        desk.policy()
        desk.gateway(double)
        cid = desk.campaign("short", ends_at=NOON + timedelta(hours=1))
        desk.launch(cid)
        summary = desk.dispatch(NOON + timedelta(hours=2))
        assert summary.suppressed == {"campaign_ended": 40}
        assert {r.suppressed_reason for r in desk.outbox(cid)} == {"campaign_ended"}


class TestCallbacks:
    def _sent(self, desk: Desk, double: GatewayDouble, channel: str = "sms") -> list[OutboxRow]:
        desk.policy()
        desk.gateway(double, channel=channel)
        cid = desk.campaign(f"callbacks {channel}", channel=channel)
        desk.launch(cid)
        double.pending_receipts.clear()
        desk.dispatch(NOON + timedelta(minutes=1))
        return desk.outbox(cid)

    @staticmethod
    def _signed(payload: dict[str, object], secret: str) -> tuple[bytes, str, str]:
        body = json.dumps(payload).encode()
        h = delivery.signed_headers(secret, body, datetime.now(UTC))
        return body, h[delivery.TIMESTAMP_HEADER], h[delivery.SIGNATURE_HEADER]

    def test_receipts_are_recorded_on_their_messages(self, desk: Desk, double: GatewayDouble) -> None:
        rows = self._sent(desk, double)
        receipts = [r for r in double.pending_receipts if r["id"] in {f"mkt-{m.id}" for m in rows}]
        receipts[0] = {**receipts[0], "status": "failed"}
        body, ts, sig = self._signed({"receipts": receipts}, double.secret)
        result = service.record_receipts(desk.kit.uow_factory(), body, timestamp=ts, signature=sig,
                                         now=datetime.now(UTC))
        assert (result.tenant_id, result.recorded) == (desk.kit.tenant.id, 40)
        statuses = sorted(r.delivery_status or "" for r in desk.outbox(rows[0].campaign_id))
        assert statuses == ["delivered"] * 39 + ["failed"]
        # the campaign's funnel counts what the receipts say reached the customer, not what was sent
        report = service.campaign_report(desk.kit.uow_factory(), desk.maker, [rows[0].campaign_id])
        channel = next(f for f in report.funnel if f.by == "channel")
        assert (channel.sent, channel.delivered) == (40, 39)

    def test_a_stop_reply_opts_out_and_withdraws_marketing_consent(self, desk: Desk, double: GatewayDouble) -> None:
        row = self._sent(desk, double)[0]
        body, ts, sig = self._signed({"id": f"mkt-{row.id}", "text": "退订"}, double.secret)
        result = service.record_reply(desk.kit.uow_factory(), body, timestamp=ts, signature=sig,
                                      now=datetime.now(UTC))
        assert result.opted_out
        with desk.kit.uow_factory() as u:  # a STOP to any message stops all marketing, on every channel
            assert set(u.session.execute(select(OptOutRow.channel).where(
                OptOutRow.tenant_id == desk.kit.tenant.id, OptOutRow.customer_id == row.customer_id)).scalars()) \
                == {"sms", "push", "visit"}
        assert row.customer_id not in marketing_consented(desk.kit.uow_factory(), desk.maker, [row.customer_id])

    def test_another_banks_secret_opens_nothing(self, desk: Desk, double: GatewayDouble,
                                                new_tenant: object) -> None:
        row = self._sent(desk, double)[0]
        other = Desk(new_tenant(), n=1)  # type: ignore[operator]
        delivery.save_gateway(other.kit.uow_factory(), other.admin, GatewayConfig(
            "sms", double.base_url, "other-key", "other-bank-secret"), at=NOON)
        for payload in ({"receipts": [{"id": f"mkt-{row.id}", "status": "failed"}]},
                        {"id": f"mkt-{row.id}", "text": "T"}):
            body, ts, sig = self._signed(payload, "other-bank-secret")
            call = service.record_receipts if "receipts" in payload else service.record_reply
            with pytest.raises(AuthenticationFailed):
                call(desk.kit.uow_factory(), body, timestamp=ts, signature=sig, now=datetime.now(UTC))
        assert desk.outbox(row.campaign_id)[0].delivery_status is None
        assert row.customer_id in marketing_consented(desk.kit.uow_factory(), desk.maker, [row.customer_id])
