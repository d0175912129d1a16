"""Attribution use cases (效果归因): record responses and conversions (tracked links, funnel events, real
applications), and report a campaign's funnel and lift, or its outcomes as rows an uplift model learns from."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import polars as pl
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.errors import Conflict, NotFound, ValidationError
from microlend.core.identity import Permission, Principal, system_principal
from microlend.core.uow import UnitOfWork
from microlend.marketing.attribution import EVENT_SCHEMA, TOUCH_SCHEMA
from microlend.marketing.service.common import bulk_insert, campaign_row, channel_costs, stratum_warnings
from microlend.marketing.sources import IN_CHUNK, FunnelEvent, applications_for_funnel
from microlend.marketing.tables import (
    AssignmentRow,
    CampaignRow,
    ContactRow,
    OutboxRow,
    TrackingEventRow,
    VisitTaskRow,
)
from microlend.marketing.tracking import EVENT_KINDS, CampaignReport, attribute, build_report

# --- responses and conversions ----------------------------------------------------------------------------


def record_event(uow: UnitOfWork, who: Principal, kind: str, *, at: datetime, customer_id: int | None = None,
                 token: str | None = None, campaign_id: int | None = None, amount: Decimal | None = None) -> int:
    """Record a funnel step. A tracked link's token identifies campaign and customer (opened, clicked);
    applications, approvals and disbursements arrive by customer id and are attributed by time window."""
    who.require(Permission.MANAGE_CAMPAIGNS)
    if kind not in EVENT_KINDS or kind == "sent":
        raise ValidationError(f"kind: must be one of {', '.join(k for k in EVENT_KINDS if k != 'sent')}",
                              field="kind")
    with uow:
        s = uow.session
        if token is not None:
            hit = s.execute(select(OutboxRow.customer_id, OutboxRow.campaign_id).where(
                OutboxRow.tenant_id == who.tenant_id, OutboxRow.token == token)).first()
            if hit is None:
                raise NotFound("token: unknown tracked link", field="token")
            customer_id, campaign_id = int(hit[0]), int(hit[1])
        if customer_id is None:
            raise ValidationError("customer_id: give a customer or a token", field="customer_id")
        row = TrackingEventRow(tenant_id=who.tenant_id, customer_id=customer_id, campaign_id=campaign_id, kind=kind,
                               at=at, token=token, amount=amount)
        s.add(row)
        s.flush()
        audit.record(s, who, f"marketing.event.{kind}", "customer", customer_id,
                     after={"campaign_id": campaign_id, "at": at.isoformat()})
        event_id = row.id
        uow.commit()
    return event_id


def record_link_visit(uow: UnitOfWork, token: str, *, at: datetime, kind: str = "clicked") -> int | None:
    """A customer followed a tracked link (borrower pages, no staff login): the token alone identifies the
    bank, campaign and customer. Returns the campaign's id, so the application can carry it; unknown tokens
    are ignored (None), so links cannot be probed."""
    if kind not in ("opened", "clicked") or not 8 <= len(token) <= 40:
        return None
    with uow:
        hit = uow.session.execute(select(OutboxRow.tenant_id, OutboxRow.customer_id, OutboxRow.campaign_id).where(
            OutboxRow.token == token).limit(1)).first()
        if hit is None:
            return None
        tenant_id, customer_id, campaign_id = (int(x) for x in hit)
        uow.session.add(TrackingEventRow(tenant_id=tenant_id, customer_id=customer_id, campaign_id=campaign_id,
                                         kind=kind, at=at, token=token))
        audit.record(uow.session, system_principal(tenant_id, "tracked-link"), f"marketing.event.{kind}",
                     "customer", customer_id, after={"campaign_id": campaign_id})
        uow.commit()
    return campaign_id


def record_events(uow: UnitOfWork, who: Principal, events: Iterable[dict[str, Any]]) -> int:
    """Bulk load of funnel events (e.g. from origination's daily extract): customer_id, kind, at[, amount]."""
    who.require(Permission.MANAGE_CAMPAIGNS)
    rows = []
    for e in events:
        if e["kind"] not in EVENT_KINDS:
            raise ValidationError(f"kind: unknown event kind '{e['kind']}'", field="kind")
        rows.append({"tenant_id": who.tenant_id, "customer_id": int(e["customer_id"]), "kind": e["kind"],
                     "at": e["at"], "campaign_id": e.get("campaign_id"), "amount": e.get("amount"),
                     "token": e.get("token")})
    with uow:
        if rows:
            bulk_insert(uow.session, TrackingEventRow, rows)
        audit.record(uow.session, who, "marketing.events.load", "marketing_events", len(rows),
                     after={"rows": len(rows)})
        uow.commit()
    return len(rows)


# --- the funnel -------------------------------------------------------------------------------------------


def application_events(uow: UnitOfWork, who: Principal, customer_ids: Sequence[int], since: datetime
                       ) -> list[FunnelEvent]:
    """The funnel's later steps from real applications (through `sources`). An application that arrived
    through a tracked link carries its campaign and counts for that campaign only; others are attributed by
    window. Returns (customer_id, kind, at, campaign_id); nothing when the bank runs no origination here."""
    return applications_for_funnel(uow, who, customer_ids, since)


def _tracked_events(s: Session, tenant_id: int, customer_ids: list[int], since: datetime) -> list[tuple[Any, ...]]:
    """Recorded responses and conversions (not the sends) of these customers since `since`."""
    events: list[tuple[Any, ...]] = []
    t = TrackingEventRow
    for start in range(0, len(customer_ids), IN_CHUNK):
        events.extend(s.connection().execute(select(t.customer_id, t.kind, t.at, t.campaign_id).where(
            TrackingEventRow.tenant_id == tenant_id, TrackingEventRow.kind != "sent",
            TrackingEventRow.customer_id.in_(customer_ids[start:start + IN_CHUNK]),
            TrackingEventRow.at >= since)).all())
    return events


DELIVERED_STATUSES = ("delivered",)


def delivered_messages(s: Session, tenant_id: int, campaign_ids: Sequence[int]) -> pl.DataFrame:
    """(campaign_id, customer_id) of the messages that reached the customer: a delivery receipt saying so
    for a message sent through a gateway (which gives it an id and reports back), else, for a sender that
    reports nothing back (no gateway id), a message it accepted (status "sent"); a visit is delivered when
    it was recorded as a contact, unless the officer found the customer unreachable or the task was closed
    unvisited because the customer was no longer eligible."""
    reached = or_(OutboxRow.delivery_status.in_(DELIVERED_STATUSES),
                  and_(OutboxRow.status == "sent", OutboxRow.gateway_id.is_(None),
                       OutboxRow.delivery_status.is_(None)))
    rows: list[Any] = list(s.connection().execute(select(OutboxRow.campaign_id, OutboxRow.customer_id).where(
        OutboxRow.tenant_id == tenant_id, OutboxRow.campaign_id.in_(campaign_ids), reached)).all())
    missed = select(VisitTaskRow.id).where(  # the officer found no one, or the task was closed unvisited
        VisitTaskRow.tenant_id == tenant_id, VisitTaskRow.campaign_id == ContactRow.campaign_id,
        VisitTaskRow.customer_id == ContactRow.customer_id,
        (VisitTaskRow.outcome == "unreachable") | (VisitTaskRow.status == "cancelled")).exists()
    rows += s.connection().execute(select(ContactRow.campaign_id, ContactRow.customer_id).where(
        ContactRow.tenant_id == tenant_id, ContactRow.campaign_id.in_(campaign_ids),
        ContactRow.channel == "visit", ~missed)).all()
    return _frame(rows, {"campaign_id": pl.Int64(), "customer_id": pl.Int64()}).unique()


def _frame(rows: Sequence[Any], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Query rows as a frame, column by column (no Python object per cell)."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    return pl.DataFrame({name: pl.Series(name, list(col), dtype=dtype)
                         for (name, dtype), col in zip(schema.items(), columns, strict=True)})


def _reference_frame(rows: list[CampaignRow], assignments: Sequence[Any], sends: Sequence[Any],
                     delivered: pl.DataFrame) -> pl.DataFrame:
    """Each targeted customer with the instant their window opens: their first send, else the launch."""
    campaigns = pl.DataFrame({
        "campaign_id": [r.id for r in rows], "channel": [r.channel for r in rows],
        "launched_at": pl.Series([r.launched_at for r in rows], dtype=pl.Datetime("us", "UTC")),
        "window_days": [r.attribution_days for r in rows]}, schema_overrides={"campaign_id": pl.Int64,
                                                                            "window_days": pl.Int64})
    targets = _frame(assignments, {"campaign_id": pl.Int64(), "customer_id": pl.Int64(), "arm": pl.String(),
                                   "segment": pl.String()})
    first = _frame(sends, {"campaign_id": pl.Int64(), "customer_id": pl.Int64(),
                           "sent_at": pl.Datetime("us", "UTC")})
    keys = ["campaign_id", "customer_id"]
    out = (targets.join(campaigns, on="campaign_id", how="left")
           .join(first, on=keys, how="left")
           .join(delivered.with_columns(pl.lit(True).alias("delivered")), on=keys, how="left")
           .with_columns(pl.coalesce("sent_at", "launched_at").alias("reference_at"),
                         pl.col("sent_at").is_not_null().alias("sent"),
                         pl.col("delivered").fill_null(False)))
    schema: Any = TOUCH_SCHEMA
    return out.select(list(TOUCH_SCHEMA)).cast(schema)


def _competing_campaigns(s: Session, who: Principal, campaign_ids: Sequence[int]) -> list[CampaignRow]:
    """The reported campaigns and every other launched campaign of the bank that targeted one of their
    customers: their touches compete for the same events under the last-touch rule."""
    reported = select(AssignmentRow.customer_id).where(
        AssignmentRow.tenant_id == who.tenant_id, AssignmentRow.campaign_id.in_(campaign_ids),
        AssignmentRow.arm != "excluded")
    others = select(AssignmentRow.campaign_id).where(
        AssignmentRow.tenant_id == who.tenant_id, AssignmentRow.arm != "excluded",
        AssignmentRow.customer_id.in_(reported)).distinct()
    return list(s.execute(select(CampaignRow).where(
        CampaignRow.tenant_id == who.tenant_id, CampaignRow.launched_at.is_not(None),
        CampaignRow.id.not_in(campaign_ids), CampaignRow.id.in_(others))).scalars())


@dataclass(frozen=True)
class _Targeting:
    """What a report reads besides the events: the reported and competing campaigns, every touch with the
    instant its window opens, messages per campaign, the customers and the earliest launch. It changes only
    when a campaign is launched or sends, a receipt arrives or a visit is recorded, not on a new response."""

    rows: list[CampaignRow]
    reference: pl.DataFrame
    messages: dict[int, int]
    customer_ids: list[int]
    earliest: datetime


#: (bank, reported campaigns) -> (targeting fingerprint, targeting): an open campaign's interim report is
#: refreshed after a new event by re-reading the events only (the targeting is kept while its fingerprint holds)
_TARGETING: OrderedDict[tuple[int, tuple[int, ...]], tuple[str, _Targeting]] = OrderedDict()
_TARGETING_LOCK = threading.Lock()
_TARGETING_MAX = 64


def _targeting(uow: UnitOfWork, who: Principal, campaign_ids: Sequence[int]) -> _Targeting:
    s = uow.session
    rows = [campaign_row(s, who, cid) for cid in campaign_ids]
    for r in rows:
        if r.launched_at is None:
            raise Conflict(f"campaign {r.id} has not been launched", field="campaign_id")
    every = rows + _competing_campaigns(s, who, campaign_ids)
    ids = [r.id for r in every]
    reported = select(AssignmentRow.customer_id).where(
        AssignmentRow.campaign_id.in_(campaign_ids), AssignmentRow.arm != "excluded")
    # Core rows straight from the connection: no ORM entity loading for tens of thousands of rows
    assignments = s.connection().execute(select(AssignmentRow.campaign_id, AssignmentRow.customer_id, AssignmentRow.arm,
                                   AssignmentRow.segment_label).where(
        AssignmentRow.campaign_id.in_(ids), AssignmentRow.arm != "excluded",
        AssignmentRow.customer_id.in_(reported))).all()
    sends = s.connection().execute(select(ContactRow.campaign_id, ContactRow.customer_id,
                                          func.min(ContactRow.contacted_at))
                      .where(ContactRow.campaign_id.in_(ids))
                      .group_by(ContactRow.campaign_id, ContactRow.customer_id)).all()
    messages = {int(c): int(n) for c, n in s.execute(select(ContactRow.campaign_id, func.count()).where(
        ContactRow.campaign_id.in_(campaign_ids)).group_by(ContactRow.campaign_id)).all()}
    customer_ids = sorted({int(a[1]) for a in assignments})
    earliest = min(r.launched_at for r in every if r.launched_at is not None)
    reference = _reference_frame(every, assignments, sends, delivered_messages(s, who.tenant_id, ids))
    return _Targeting(rows, reference, messages, customer_ids, earliest)


def _cached_targeting(uow: UnitOfWork, who: Principal, campaign_ids: Sequence[int], fingerprint: str | None
                      ) -> _Targeting:
    """The targeting, read once per `fingerprint` (None: always read)."""
    if fingerprint is None:
        return _targeting(uow, who, campaign_ids)
    key = (who.tenant_id, tuple(campaign_ids))
    with _TARGETING_LOCK:
        hit = _TARGETING.get(key)
        if hit is not None and hit[0] == fingerprint:
            _TARGETING.move_to_end(key)
            return hit[1]
    found = _targeting(uow, who, campaign_ids)
    with _TARGETING_LOCK:
        _TARGETING[key] = (fingerprint, found)
        while len(_TARGETING) > _TARGETING_MAX:
            _TARGETING.popitem(last=False)
    return found


def _attribution_inputs(uow: UnitOfWork, who: Principal, campaign_ids: Sequence[int],
                        targeting_fingerprint: str | None = None
                        ) -> tuple[list[CampaignRow], pl.DataFrame, pl.DataFrame, dict[int, int]]:
    """The reported campaigns; every touch that competes for their customers' events (theirs and other
    campaigns'), each with the instant its window opens; the events after; messages sent per campaign.
    With a `targeting_fingerprint` the targeting read last under the same fingerprint is reused, and only
    the events are read again."""
    s = uow.session
    t = _cached_targeting(uow, who, campaign_ids, targeting_fingerprint)
    events = _tracked_events(s, who.tenant_id, t.customer_ids, t.earliest)
    events.extend(application_events(uow, who, t.customer_ids, t.earliest))
    event_frame = pl.DataFrame(
        [(int(c), k, at, None if cid is None else int(cid)) for c, k, at, cid in events],
        schema=EVENT_SCHEMA, orient="row",
    )
    return t.rows, t.reference, event_frame, t.messages


def campaign_report(uow: UnitOfWork, who: Principal, campaign_ids: Sequence[int], *,
                    confidence: float = 0.95, targeting_fingerprint: str | None = None) -> CampaignReport:
    """Nested funnel per channel and segment, treatment vs control conversion with a confidence interval
    (overall and per channel, with cost and ROI), for one or more launched campaigns, every event counted for
    one campaign only (`attribution.ATTRIBUTION_RULE`). Applications, approvals and disbursements come from
    the recorded events and from origination's applications (`application_events`). `targeting_fingerprint`
    (the interim report's): reuse the targeting read under the same fingerprint, re-read the events only."""
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        rows, reference, events, messages = _attribution_inputs(uow, who, campaign_ids, targeting_fingerprint)
        per_contact, margin, minimum = channel_costs(uow.session, who.tenant_id)
        warnings = stratum_warnings(uow.session, who.tenant_id, campaign_ids, minimum)
    contacts: dict[str, int] = {}
    for r in rows:
        contacts[r.channel] = contacts.get(r.channel, 0) + messages.get(r.id, 0)
    if per_contact is None:  # the bank stated no channel costs: each campaign's own cost per message
        per_contact = {r.channel: r.cost_per_message for r in rows}
    costs = {r.id: per_contact.get(r.channel, r.cost_per_message) * messages.get(r.id, 0) for r in rows}
    return build_report(reference, events, costs=costs, names={r.id: r.name for r in rows}, confidence=confidence,
                        contacts=contacts, cost_per_contact=per_contact, margin=margin, warnings=warnings)


def campaign_outcomes(uow: UnitOfWork, who: Principal, campaign_ids: Sequence[int], *,
                      stage: str = "disbursed") -> pl.DataFrame:
    """Training rows for uplift: customer_id, campaign_id, treated (0/1), converted (0/1) within the window,
    counting recorded events and real applications alike."""
    who.require(Permission.VIEW_CAMPAIGNS)
    if stage not in EVENT_KINDS[1:]:
        raise ValidationError(f"stage: one of {', '.join(EVENT_KINDS[1:])}", field="stage")
    with uow:
        _, reference, events, _ = _attribution_inputs(uow, who, campaign_ids)
    return attribute(reference, events).filter(pl.col("campaign_id").is_in(list(campaign_ids))).select(
        "customer_id", "campaign_id", (pl.col("arm") == "treatment").cast(pl.Int8).alias("treated"),
        pl.col(stage).cast(pl.Int8).alias("converted"))
