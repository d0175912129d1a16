"""The bank's contact policy (接触策略) as pure rules, over every campaign and channel: one cap of contacts per
customer and period, a global holdout (全局对照组) nobody markets to, quiet hours, the send throttle, campaigns'
scheduled start and end, and the control-group exclusivity: a customer held out as another campaign's
control is not contacted while that campaign's attribution window runs, or its measurement would be spoilt.

`contact_reason` says why a message may not go now (or None); `earliest_send` when it may. No I/O, no clock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from microlend.core.delivery import check_public_host
from microlend.core.errors import ValidationError
from microlend.marketing.campaigns import BUCKETS, QuietHours, control_bucket, control_mask

#: Why a message was not sent under the bank's policy (stored as the outbox row's suppressed reason).
CAMPAIGN_ENDED, GLOBAL_HOLDOUT, CONTROL_ELSEWHERE, BANK_CAP = (
    "campaign_ended", "global_holdout", "control_elsewhere", "bank_cap")
POLICY_REASONS = (CAMPAIGN_ENDED, GLOBAL_HOLDOUT, CONTROL_ELSEWHERE, BANK_CAP)


@dataclass(frozen=True)
class ContactPolicy:
    """A bank's policy. `cap_max_contacts` contacts at most per customer in any `cap_window_days` (0: no
    bank-wide cap); `holdout_share_bp` basis points of customers in the global holdout; `launch_approval`:
    a launch needs a second person's approval. `configured` is False for a bank that has not saved one: it
    then runs under `ContactPolicy.default()` from its first campaign on, never without a policy."""

    cap_max_contacts: int = 4
    cap_window_days: int = 30
    holdout_share_bp: int = 500
    quiet: QuietHours = field(default_factory=QuietHours)
    throttle_per_s: int = 200
    public_host: str = ""
    launch_approval: bool = True
    configured: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.cap_max_contacts <= 100:
            raise ValidationError("cap_max_contacts: 0 (no cap) to 100", field="cap_max_contacts")
        if not 1 <= self.cap_window_days <= 366:
            raise ValidationError("cap_window_days: 1 to 366 days", field="cap_window_days")
        if not 0 <= self.holdout_share_bp <= 5000:
            raise ValidationError("holdout_share_bp: 0 to 5000 basis points (at most half the customers)",
                                  field="holdout_share_bp")
        if not 1 <= self.throttle_per_s <= 100_000:
            raise ValidationError("throttle_per_s: 1 to 100,000 messages a second", field="throttle_per_s")
        try:
            ZoneInfo(self.quiet.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationError(f"timezone: '{self.quiet.timezone}' is not a time zone", field="timezone") from exc
        object.__setattr__(self, "public_host", check_public_host(self.public_host))

    @classmethod
    def default(cls) -> ContactPolicy:
        """The policy of a bank that has not saved its own (默认接触策略): at most 4 contacts per customer in 30
        days over every campaign and channel, a 5% global holdout, quiet 21:00-08:00 Beijing time, 200
        messages a second, and control groups left alone. Launch approval is the bank's choice (off)."""
        return cls(cap_max_contacts=4, cap_window_days=30, holdout_share_bp=500, quiet=QuietHours(),
                   throttle_per_s=200, launch_approval=False, configured=False)

    def window_start(self, now: datetime) -> datetime:
        return now - timedelta(days=self.cap_window_days)


def holdout_key(tenant_id: int) -> str:
    """The hash key of a bank's global holdout: stable per bank, independent of every campaign's control."""
    return f"holdout:{tenant_id}"


def in_global_holdout(tenant_id: int, customer_id: int, share_bp: int) -> bool:
    return share_bp > 0 and control_bucket(holdout_key(tenant_id), customer_id) < min(share_bp, BUCKETS - 1)


def holdout_mask(tenant_id: int, customer_ids: Sequence[int] | npt.NDArray[np.int64], share_bp: int
                 ) -> npt.NDArray[np.bool_]:
    if share_bp <= 0:
        return np.zeros(len(customer_ids), dtype=bool)
    return control_mask(holdout_key(tenant_id), customer_ids, min(share_bp, BUCKETS - 1))


@dataclass(frozen=True)
class ControlWindow:
    """The customer is in `campaign_id`'s control group from `start` (its launch) until `end`."""

    campaign_id: int
    start: datetime
    end: datetime

    def covers(self, at: datetime) -> bool:
        return self.start <= at < self.end


def contact_reason(policy: ContactPolicy, *, tenant_id: int, customer_id: int, campaign_id: int,
                   ends_at: datetime | None, now: datetime, contacts: Sequence[datetime],
                   control_windows: Sequence[ControlWindow]) -> str | None:
    """Why the bank's policy forbids this message now, or None: the campaign has ended, the customer is in
    the global holdout, in another campaign's running control group, or has had the bank's cap of contacts
    (any campaign, any channel) in the policy's window."""
    if ends_at is not None and now >= ends_at:
        return CAMPAIGN_ENDED
    if in_global_holdout(tenant_id, customer_id, policy.holdout_share_bp):
        return GLOBAL_HOLDOUT
    if any(w.campaign_id != campaign_id and w.covers(now) for w in control_windows):
        return CONTROL_ELSEWHERE
    if policy.cap_max_contacts and sum(1 for t in contacts if policy.window_start(now) <= t <= now) \
            >= policy.cap_max_contacts:
        return BANK_CAP
    return None


def earliest_send(at: datetime, channel: str, *, campaign_quiet: QuietHours, policy: ContactPolicy,
                  starts_at: datetime | None = None) -> datetime:
    """The first instant at or after `at` (and the campaign's start) outside both the campaign's and the
    bank's quiet hours."""
    t = max(at, starts_at) if starts_at is not None else at
    for _ in range(4):  # two overlapping quiet spans settle within a couple of rounds
        moved = policy.quiet.next_allowed(campaign_quiet.next_allowed(t, channel), channel)
        if moved == t:
            break
        t = moved
    return t


def parse_hhmm(value: str, name: str) -> time:
    try:
        if len(value) != 5:
            raise ValueError(value)
        return time.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{name}: a time as HH:MM, got '{value}'", field=name) from None
