"""What the marketing use cases share: loading a campaign or a segment within the caller's tenant, the
exclusion inputs (opt-outs, recent contacts), a campaign's cap and quiet hours, bulk writes, and the bank's
measurement settings (channel costs, margin, smallest control group per stratum)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

from microlend.core.db import is_postgres
from microlend.core.errors import NotFound
from microlend.core.identity import Principal
from microlend.marketing.campaigns import QuietHours
from microlend.marketing.contact_policy import ContactPolicy, ControlWindow
from microlend.marketing.segments import FrequencyCap
from microlend.marketing.sources import IN_CHUNK
from microlend.marketing.stratify import MIN_CONTROL_PER_STRATUM, control_by_stratum
from microlend.marketing.tables import (
    AssignmentRow,
    CampaignRow,
    ContactPolicyRow,
    ContactRow,
    MeasurementSettingsRow,
    OptOutRow,
    OutboxRow,
    SegmentRow,
    TrackingEventRow,
    VisitTaskRow,
)


def segment_row(s: Session, who: Principal, name: str, version: int | None) -> SegmentRow:
    """The segment's given version, or its latest, within the caller's tenant."""
    q = select(SegmentRow).where(SegmentRow.tenant_id == who.tenant_id, SegmentRow.name == name)
    q = q.where(SegmentRow.version == version) if version else q.order_by(SegmentRow.version.desc()).limit(1)
    row = s.execute(q).scalar_one_or_none()
    if row is None:
        raise NotFound(f"segment '{name}'{f' v{version}' if version else ''} not found", field="segment")
    return row


def campaign_row(s: Session, who: Principal, campaign_id: int) -> CampaignRow:
    """The campaign within the caller's tenant; another tenant's campaign is not found."""
    row = s.get(CampaignRow, campaign_id)
    if row is None or row.tenant_id != who.tenant_id:
        raise NotFound(f"campaign {campaign_id} not found", field="campaign_id")
    return row


def opt_outs(s: Session, tenant_id: int) -> pl.DataFrame:
    rows = s.execute(select(OptOutRow.customer_id, OptOutRow.channel).where(OptOutRow.tenant_id == tenant_id)).all()
    return pl.DataFrame([tuple(r) for r in rows], schema={"customer_id": pl.Int64, "channel": pl.String},
                        orient="row")


def recent_contacts(s: Session, tenant_id: int, since: datetime, at: datetime) -> pl.DataFrame:
    """Contacts made since `since`, plus messages still waiting in the outbox (they will be contacts)."""
    made = s.execute(select(ContactRow.customer_id, ContactRow.contacted_at).where(
        ContactRow.tenant_id == tenant_id, ContactRow.contacted_at >= since)).all()
    waiting = s.execute(select(OutboxRow.customer_id).where(
        OutboxRow.tenant_id == tenant_id, OutboxRow.status == "scheduled")).scalars().all()
    rows = [(int(c), t) for c, t in made] + [(int(c), at) for c in waiting]
    return pl.DataFrame(rows, schema={"customer_id": pl.Int64, "contacted_at": pl.Datetime("us", "UTC")},
                        orient="row")


def policy_of(s: Session, tenant_id: int) -> ContactPolicy:
    """The bank's contact policy, or `ContactPolicy.default()` while it has saved none."""
    row = s.get(ContactPolicyRow, tenant_id)
    if row is None:
        return ContactPolicy.default()
    return ContactPolicy(row.cap_max_contacts, row.cap_window_days, row.holdout_share_bp,
                         QuietHours(time.fromisoformat(row.quiet_start), time.fromisoformat(row.quiet_end),
                                    row.timezone),
                         row.throttle_per_s, row.public_host, row.launch_approval)


def control_windows(s: Session, tenant_id: int, customer_ids: list[int], now: datetime
                    ) -> dict[int, list[ControlWindow]]:
    """For each of these customers, the launched campaigns whose control group holds them and whose
    attribution window has not ended by `now`."""
    found: dict[int, list[ControlWindow]] = defaultdict(list)
    earliest = now - timedelta(days=366)
    for start in range(0, len(customer_ids), IN_CHUNK):
        chunk = customer_ids[start:start + IN_CHUNK]
        for cust, cid, launched, days in s.execute(
                select(AssignmentRow.customer_id, CampaignRow.id, CampaignRow.launched_at, CampaignRow.attribution_days)
                .join(CampaignRow, CampaignRow.id == AssignmentRow.campaign_id)
                .where(AssignmentRow.tenant_id == tenant_id, AssignmentRow.arm == "control",
                       AssignmentRow.customer_id.in_(chunk), CampaignRow.launched_at.is_not(None),
                       CampaignRow.launched_at >= earliest)).all():
            if launched is None:
                continue
            window = ControlWindow(int(cid), launched, launched + timedelta(days=int(days)))
            if window.end > now:
                found[int(cust)].append(window)
    return found


def cap_of(row: CampaignRow) -> FrequencyCap:
    return FrequencyCap(row.cap_max_messages, row.cap_window_days)


def quiet_of(row: CampaignRow) -> QuietHours:
    return QuietHours(time.fromisoformat(row.quiet_start), time.fromisoformat(row.quiet_end), row.timezone)


def bulk_insert(s: Session, row_class: Any, rows: list[dict[str, Any]]) -> None:
    """Insert many rows in one go: COPY on PostgreSQL (values converted by the column types first),
    a Core executemany elsewhere; either way without the ORM's per-row bookkeeping."""
    if not rows:
        return
    table_ = row_class.__table__
    if not is_postgres(s):
        s.execute(insert(table_), rows)
        return
    names = list(rows[0])
    dialect = s.get_bind().dialect
    converters = []
    for name in names:
        col_type = table_.c[name].type
        converters.append(col_type.process_bind_param if isinstance(col_type, TypeDecorator) else None)
    raw = s.connection().connection.dbapi_connection
    assert raw is not None
    cols = ", ".join(f'"{n}"' for n in names)
    with raw.cursor() as cur, cur.copy(f"COPY {table_.name} ({cols}) FROM STDIN") as copy:  # type: ignore[attr-defined]
        for r in rows:
            copy.write_row([r[n] if conv is None else conv(r[n], dialect)
                            for n, conv in zip(names, converters, strict=True)])


def record_contacts(s: Session, tenant_id: int, campaign_id: int, channel: str, customer_ids: list[int],
                    at: datetime) -> None:
    """Contacts made now, each with its `sent` tracking event."""
    if not customer_ids:
        return
    bulk_insert(s, ContactRow, [{"tenant_id": tenant_id, "customer_id": c, "campaign_id": campaign_id,
                                 "channel": channel, "contacted_at": at} for c in customer_ids])
    bulk_insert(s, TrackingEventRow, [{"tenant_id": tenant_id, "customer_id": c, "campaign_id": campaign_id,
                                       "kind": "sent", "at": at} for c in customer_ids])


def update_outbox(s: Session, updates: list[dict[str, Any]]) -> None:
    """Bulk status changes: rows getting the same new values change in one UPDATE ... WHERE id IN (...)."""
    groups: dict[tuple[tuple[str, Any], ...], list[int]] = defaultdict(list)
    for u in updates:
        groups[tuple(sorted((k, v) for k, v in u.items() if k != "id"))].append(u["id"])
    for values, ids in groups.items():
        for start in range(0, len(ids), IN_CHUNK):
            s.execute(update(OutboxRow).where(OutboxRow.id.in_(ids[start:start + IN_CHUNK])).values(dict(values))
                      .execution_options(synchronize_session=False))


# --- measurement settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeasurementSettings:
    """Cost of one contact per channel, margin earned on one disbursed loan (None: no ROI shown) and the
    smallest control group a stratum may have before its figures are flagged."""

    sms_cost: Decimal
    push_cost: Decimal
    visit_cost: Decimal
    margin_per_disbursed: Decimal | None
    min_control_per_stratum: int
    stated: bool = False  # False: the defaults, the bank has not stated its own

    def per_channel(self) -> dict[str, Decimal]:
        return {"sms": self.sms_cost, "push": self.push_cost, "visit": self.visit_cost}


DEFAULT_SETTINGS = MeasurementSettings(Decimal("0.05"), Decimal("0.01"), Decimal("30.00"), None,
                                       MIN_CONTROL_PER_STRATUM)


def _settings(s: Session, tenant_id: int) -> MeasurementSettings:
    row = s.execute(select(MeasurementSettingsRow).where(MeasurementSettingsRow.tenant_id == tenant_id)).scalar()
    if row is None:
        return DEFAULT_SETTINGS
    return MeasurementSettings(row.sms_cost, row.push_cost, row.visit_cost, row.margin_per_disbursed,
                               row.min_control_per_stratum, stated=True)


def unit_cost(s: Session, tenant_id: int, channel: str) -> Decimal:
    """What one contact on `channel` costs, from the bank's measurement settings (or their defaults)."""
    return _settings(s, tenant_id).per_channel()[channel]


def campaign_spent(s: Session, tenant_id: int, campaign_id: int) -> Decimal:
    """What the campaign's contacts cost so far: its messages sent or waiting and its visit tasks, each at
    its channel's cost from the measurement settings."""
    return spent_by_campaign(s, tenant_id, [campaign_id]).get(campaign_id, Decimal(0))


def spent_by_campaign(s: Session, tenant_id: int, campaign_ids: Sequence[int]) -> dict[int, Decimal]:
    if not campaign_ids:
        return {}
    costs = _settings(s, tenant_id).per_channel()
    spent: dict[int, Decimal] = defaultdict(Decimal)
    for cid, channel, n in s.execute(
            select(OutboxRow.campaign_id, OutboxRow.channel, func.count()).where(
                OutboxRow.tenant_id == tenant_id, OutboxRow.campaign_id.in_(list(campaign_ids)),
                OutboxRow.status.in_(("scheduled", "sent"))).group_by(OutboxRow.campaign_id, OutboxRow.channel)):
        spent[int(cid)] += costs.get(channel, Decimal(0)) * int(n)
    for cid, n in s.execute(select(VisitTaskRow.campaign_id, func.count()).where(
            VisitTaskRow.tenant_id == tenant_id, VisitTaskRow.campaign_id.in_(list(campaign_ids)),
            VisitTaskRow.status != "cancelled").group_by(VisitTaskRow.campaign_id)):
        spent[int(cid)] += costs["visit"] * int(n)
    return dict(spent)


def channel_costs(s: Session, tenant_id: int) -> tuple[dict[str, Decimal] | None, Decimal | None, int]:
    """(cost of a contact per channel, None when the bank has not stated them and each campaign's own cost
    per message applies; margin per disbursed loan; smallest control group per stratum)."""
    settings = _settings(s, tenant_id)
    return (settings.per_channel() if settings.stated else None, settings.margin_per_disbursed,
            settings.min_control_per_stratum)


def stratum_warnings(s: Session, tenant_id: int, campaign_ids: Sequence[int], minimum: int) -> list[str]:
    """A warning per stratum (the campaign's segment) whose control group is below `minimum`, for the
    campaigns that hold a control group out."""
    rows = s.execute(select(AssignmentRow.campaign_id, AssignmentRow.segment_label, AssignmentRow.arm).join(
        CampaignRow, CampaignRow.id == AssignmentRow.campaign_id).where(
        AssignmentRow.tenant_id == tenant_id, AssignmentRow.campaign_id.in_(campaign_ids),
        AssignmentRow.arm != "excluded", CampaignRow.control_share_bp > 0)).all()
    frame = pl.DataFrame([(f"campaign {c}: {lbl or '-'}", a) for c, lbl, a in rows],
                         schema={"stratum": pl.String, "arm": pl.String}, orient="row")
    return [w.message for w in control_by_stratum(frame, minimum=minimum)]
