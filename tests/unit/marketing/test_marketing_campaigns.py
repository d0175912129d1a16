from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microlend.core.errors import ValidationError
from microlend.marketing.campaigns import (
    LogSender,
    MessageTemplates,
    OfferTerms,
    OutgoingMessage,
    QuietHours,
    RenderCache,
    Sender,
    control_bucket,
    control_mask,
    in_control_group,
    tracking_token,
)

OFFER = OfferTerms(Decimal("50000"), Decimal("0.085"), Decimal("0.0885"), date(2026, 4, 1))


class TestControlGroup:
    @pytest.mark.parametrize("share_bp", [500, 1000, 2500, 5000])
    def test_share_is_within_tolerance(self, share_bp: int) -> None:
        n = 40_000
        share = control_mask("tenant1:campaign7", np.arange(1, n + 1), share_bp).mean()
        p = share_bp / 10_000
        tolerance = 4 * (p * (1 - p) / n) ** 0.5  # four standard errors
        assert abs(share - p) < tolerance

    def test_assignment_is_stable_across_runs_and_orders(self) -> None:
        ids = np.arange(1, 5001)
        first = control_mask("c-42", ids, 1000)
        again = control_mask("c-42", ids[::-1], 1000)[::-1]
        assert (first == again).all()
        assert [in_control_group("c-42", int(i), 1000) for i in ids[:200]] == first[:200].tolist()

    def test_bucket_is_sha256_of_campaign_and_customer(self) -> None:
        import hashlib

        digest = hashlib.sha256(b"c-42:1001").digest()
        assert control_bucket("c-42", 1001) == int.from_bytes(digest[:8], "big") % 10_000

    def test_different_campaigns_hold_out_different_customers(self) -> None:
        ids = np.arange(1, 20_001)
        a, b = control_mask("c-1", ids, 1000), control_mask("c-2", ids, 1000)
        assert 0.005 < (a & b).mean() < 0.015  # independent: about 1% in both

    @pytest.mark.parametrize("share_bp", [-1, 10_000, 20_000])
    def test_share_out_of_range_is_refused(self, share_bp: int) -> None:
        with pytest.raises(ValidationError):
            control_mask("c", [1], share_bp)

    def test_zero_share_holds_out_nobody(self) -> None:
        assert not control_mask("c", np.arange(1000), 0).any()


class TestQuietHours:
    quiet = QuietHours(time(21, 0), time(8, 0), "Asia/Shanghai")

    @pytest.mark.parametrize(("utc_hour", "expected"), [
        (0, datetime(2026, 3, 2, 0, 0, tzinfo=UTC)),  # 08:00 local: allowed, the quiet period has ended
        (12, datetime(2026, 3, 2, 12, 0, tzinfo=UTC)),  # 20:00 local
        (13, datetime(2026, 3, 3, 0, 0, tzinfo=UTC)),  # 21:00 local: quiet starts, wait for 08:00
        (18, datetime(2026, 3, 3, 0, 0, tzinfo=UTC)),  # 02:00 local next day
    ])
    def test_sms_in_quiet_hours_waits_for_the_morning(self, utc_hour: int, expected: datetime) -> None:
        at = datetime(2026, 3, 2, 0, 0, tzinfo=UTC) + timedelta(hours=utc_hour)
        assert self.quiet.next_allowed(at, "sms") == expected
        assert self.quiet.next_allowed(at, "push") == expected

    def test_a_minute_before_the_end_waits_one_minute(self) -> None:
        at = datetime(2026, 3, 1, 23, 59, tzinfo=UTC)  # 07:59 local
        assert self.quiet.next_allowed(at, "sms") == datetime(2026, 3, 2, 0, 0, tzinfo=UTC)

    def test_visits_are_not_held_back(self) -> None:
        at = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
        assert self.quiet.next_allowed(at, "visit") == at

    @settings(max_examples=200, deadline=None)
    @given(minutes=st.integers(0, 60 * 24 * 30))
    def test_no_message_is_ever_scheduled_in_quiet_hours(self, minutes: int) -> None:
        at = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=minutes)
        out = self.quiet.next_allowed(at, "sms")
        local = out.astimezone(ZoneInfo("Asia/Shanghai")).time()
        assert not self.quiet.is_quiet(local)
        assert timedelta(0) <= out - at <= timedelta(hours=11)

    def test_naive_instants_are_refused(self) -> None:
        with pytest.raises(ValidationError):
            self.quiet.next_allowed(datetime(2026, 3, 2, 12), "sms")


class TestTemplates:
    def test_offer_figures_are_formatted_per_locale(self) -> None:
        t = MessageTemplates()
        zh = t.render("sms", "zh_CN", OFFER, bank="示范银行", link="/t/abc")
        en = t.render("sms", "en", OFFER, bank="Demo", link="/t/abc")
        assert "¥50,000.00" in zh and "8.50%" in zh and "8.85%" in zh and "2026年4月1日" in zh
        assert "CN¥50,000.00" in en and "April 1, 2026" in en and "/t/abc" in en

    def test_a_template_cannot_reach_python_internals(self) -> None:
        t = MessageTemplates({("sms", "en"): "{{ limit.__class__.__mro__ }}"})
        with pytest.raises(ValidationError):
            t.render("sms", "en", OFFER)

    def test_a_broken_template_is_refused_when_saved(self) -> None:
        with pytest.raises(ValidationError):
            MessageTemplates({("sms", "en"): "{{ limit | money "})

    def test_money_is_rounded_half_up_to_the_fen(self) -> None:
        offer = OfferTerms(Decimal("1000.005"), Decimal("0.1"), Decimal("0.1"), date(2026, 4, 1))
        assert "CN¥1,000.01" in MessageTemplates().render("push", "en", offer)

    def test_floats_are_refused_in_offers(self) -> None:
        with pytest.raises(ValidationError):
            OfferTerms(50000.0, Decimal("0.1"), Decimal("0.1"), date(2026, 4, 1))  # type: ignore[arg-type]

    def test_render_cache_gives_the_same_text_as_rendering(self) -> None:
        t = MessageTemplates()
        cache = RenderCache(t, "sms", "en", "Demo")
        assert cache.render(OFFER, "/t/x1") == t.render("sms", "en", OFFER, bank="Demo", link="/t/x1")
        assert cache.render(OFFER, "/t/x2").endswith(t.render("sms", "en", OFFER, bank="Demo", link="/t/x2")[-40:])

    def test_segment_campaigns_without_an_offer_get_an_invitation(self) -> None:
        assert "/t/x" in MessageTemplates().render("sms", "en", None, bank="Demo", link="/t/x")


def test_log_sender_accepts_every_message_and_is_a_sender() -> None:
    sender = LogSender()
    assert isinstance(sender, Sender)
    msgs = [OutgoingMessage(i, 1, i, "sms", "en", "hi") for i in range(3)]
    assert sender.send(msgs) == {0, 1, 2}


def test_tracking_tokens_are_stable_and_distinct() -> None:
    assert tracking_token(1, 2, "s") == tracking_token(1, 2, "s")
    assert len({tracking_token(1, c, "s") for c in range(1000)}) == 1000
