"""The bank's contact policy as pure rules: cap over every campaign and channel, global holdout, control-group
exclusivity, the campaign's end, quiet hours of campaign and bank together, STOP replies."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from microlend.core.errors import ValidationError
from microlend.marketing.campaigns import QuietHours
from microlend.marketing.contact_policy import (
    BANK_CAP,
    CAMPAIGN_ENDED,
    CONTROL_ELSEWHERE,
    GLOBAL_HOLDOUT,
    ContactPolicy,
    ControlWindow,
    contact_reason,
    earliest_send,
    holdout_mask,
    in_global_holdout,
)
from microlend.marketing.service.delivery import is_stop, message_id_of, message_key

NOW = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
POLICY = ContactPolicy(cap_max_contacts=3, cap_window_days=30, holdout_share_bp=0)


def reason(policy: ContactPolicy = POLICY, customer: int = 7, campaign: int = 1, ends_at: datetime | None = None,
           contacts: list[datetime] | None = None, windows: list[ControlWindow] | None = None) -> str | None:
    return contact_reason(policy, tenant_id=1, customer_id=customer, campaign_id=campaign, ends_at=ends_at, now=NOW,
                          contacts=contacts or [], control_windows=windows or [])


class TestContactReason:
    def test_a_customer_with_room_under_every_rule_may_be_contacted(self) -> None:
        assert reason(contacts=[NOW - timedelta(days=1)] * 2) is None

    def test_the_bank_cap_counts_contacts_of_every_campaign_inside_its_window(self) -> None:
        assert reason(contacts=[NOW - timedelta(days=d) for d in (1, 5, 29)]) == BANK_CAP
        assert reason(contacts=[NOW - timedelta(days=d) for d in (1, 5, 31)]) is None

    def test_no_bank_cap_when_the_bank_sets_it_to_zero(self) -> None:
        assert reason(ContactPolicy(cap_max_contacts=0, holdout_share_bp=0), contacts=[NOW] * 50) is None

    def test_a_control_customer_of_another_running_campaign_is_not_contacted(self) -> None:
        running = ControlWindow(9, NOW - timedelta(days=3), NOW + timedelta(days=27))
        assert reason(windows=[running]) == CONTROL_ELSEWHERE
        assert reason(campaign=9, windows=[running]) is None  # its own control is handled at launch
        over = ControlWindow(9, NOW - timedelta(days=40), NOW - timedelta(days=10))
        assert reason(windows=[over]) is None

    def test_nothing_goes_once_the_campaign_ended(self) -> None:
        assert reason(ends_at=NOW) == CAMPAIGN_ENDED
        assert reason(ends_at=NOW + timedelta(seconds=1)) is None

    def test_the_global_holdout_is_stable_and_about_its_share(self) -> None:
        ids = list(range(1, 20_001))
        mask = holdout_mask(1, ids, 500)
        assert 0.04 < mask.mean() < 0.06
        assert [in_global_holdout(1, c, 500) for c in ids[:300]] == list(mask[:300])
        assert list(holdout_mask(2, ids, 500)) != list(mask)  # another bank holds out others
        held = ids[int(mask.argmax())]
        assert reason(ContactPolicy(holdout_share_bp=500), customer=held) == GLOBAL_HOLDOUT

    def test_the_end_comes_first_then_the_holdout(self) -> None:
        held = next(c for c in range(1, 10_000) if in_global_holdout(1, c, 500))
        assert reason(ContactPolicy(holdout_share_bp=500), customer=held, ends_at=NOW) == CAMPAIGN_ENDED


class TestEarliestSend:
    def test_the_banks_quiet_hours_hold_back_what_the_campaigns_allow(self) -> None:
        bank = ContactPolicy(quiet=QuietHours(time(12, 0), time(14, 0), "Asia/Shanghai"))
        at = earliest_send(NOW, "sms", campaign_quiet=QuietHours(), policy=bank)
        assert at == datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # 14:00 Shanghai

    def test_a_later_start_moves_the_send_and_then_quiet_hours_apply(self) -> None:
        start = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 22:00 Shanghai: quiet until 08:00
        at = earliest_send(NOW, "sms", campaign_quiet=QuietHours(), policy=ContactPolicy.default(), starts_at=start)
        assert at == datetime(2026, 3, 3, 0, 0, tzinfo=UTC)

    def test_a_visit_is_not_held_back(self) -> None:
        bank = ContactPolicy(quiet=QuietHours(time(0, 0), time(23, 59)))
        assert earliest_send(NOW, "visit", campaign_quiet=QuietHours(), policy=bank) == NOW


class TestPolicyValues:
    @pytest.mark.parametrize("kwargs", [{"cap_max_contacts": -1}, {"holdout_share_bp": 6000},
                                        {"throttle_per_s": 0}, {"cap_window_days": 0},
                                        {"public_host": "https://bank.cn/x"},
                                        {"quiet": QuietHours(timezone="Mars/Base")}])
    def test_a_bad_policy_is_refused(self, kwargs: dict[str, object]) -> None:
        with pytest.raises(ValidationError):
            ContactPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "stop"), [("T", True), (" t ", True), ("退订", True), ("STOP", True),
                                            ("stop.", True), ("TD", True), ("thanks", False), ("", False),
                                            ("不要退订", False)])
def test_stop_replies(text: str, stop: bool) -> None:
    assert is_stop(text) is stop


def test_message_keys_round_trip_and_refuse_others() -> None:
    assert message_id_of(message_key(42)) == 42
    assert message_id_of("svc-42") is None and message_id_of("mkt-4x") is None and message_id_of("mkt-") is None


class TestDefaultPolicy:
    """A bank that never saved a policy runs under the default one from its first campaign."""

    def test_the_default_caps_contacts_over_every_campaign(self) -> None:
        default = ContactPolicy.default()
        assert not default.configured and default.cap_max_contacts == 4 and default.cap_window_days == 30
        assert reason(default, customer=_not_held(default), contacts=[NOW - timedelta(days=2)] * 4) == BANK_CAP
        assert reason(default, customer=_not_held(default), contacts=[NOW - timedelta(days=31)] * 4) is None

    def test_the_default_holds_out_five_percent_and_keeps_nights_quiet(self) -> None:
        default = ContactPolicy.default()
        share = holdout_mask(1, list(range(20_000)), default.holdout_share_bp).mean()
        assert 0.04 < share < 0.06
        night = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
        assert earliest_send(night, "sms", campaign_quiet=QuietHours(time(0, 0), time(0, 0)), policy=default) \
            == datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
        assert default.throttle_per_s == 200

    def test_the_default_leaves_another_campaigns_control_group_alone(self) -> None:
        default = ContactPolicy.default()
        running = ControlWindow(9, NOW - timedelta(days=3), NOW + timedelta(days=27))
        assert reason(default, customer=_not_held(default), windows=[running]) == CONTROL_ELSEWHERE


def _not_held(policy: ContactPolicy) -> int:
    return next(c for c in range(1, 1000) if not in_global_holdout(1, c, policy.holdout_share_bp))
