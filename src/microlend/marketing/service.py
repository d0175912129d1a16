"""Marketing use cases (营销): segments, opt-outs, campaigns launched into the outbox, dispatch through a
sender, tracking events and the campaign report. Each takes `(uow, who, ...)`, checks the caller's
permission and tenant, and writes an audit record for every change.

Customer data arrives as a Polars frame (one row per customer: customer_id, marketing_consent,
current_days_past_due, the features segments read, and optionally officer_user_id and locale), because
marketing reads customers through the data module's batch features rather than through another module's
tables. Consent is checked again at send time through a `ConsentCheck`; the default reads the
`customers` table's `marketing_consent` column.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any, cast

import polars as pl
from sqlalchemy import and_, column, func, insert, inspect, select, table, update
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

from microlend.core import audit
from microlend.core.db import UTCDateTime, is_postgres
from microlend.core.errors import Conflict, NotFound, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.money import parse_amount
from microlend.core.uow import UnitOfWork
from microlend.marketing.campaigns import (
    LOCALES,
    LogSender,
    MessageTemplates,
    OfferTerms,
    OutgoingMessage,
    QuietHours,
    RenderCache,
    Sender,
    check_control_share,
    control_mask,
    tracking_token,
)
from microlend.marketing.segments import (
    DEFAULT_NAMESPACE,
    EXCLUSION_REASONS,
    FeatureType,
    FrequencyCap,
    Segment,
    SegmentCount,
    check_channel,
    count_segment,
    exclusion_flags,
)
from microlend.marketing.tables import (
    AssignmentRow,
    CampaignRow,
    ContactRow,
    OfferRow,
    OptOutRow,
    OutboxRow,
    PreapprovalRunRow,
    SegmentRow,
    TrackingEventRow,
    VisitTaskRow,
)
from microlend.marketing.tracking import EVENT_KINDS, CampaignReport, attribute, build_report

#: Returns the ids among `customer_ids` that consent to marketing now (tenant given).
ConsentCheck = Callable[[Session, int, Sequence[int]], set[int]]
_IN_CHUNK = 5_000


def customers_table_consent(session: Session, tenant_id: int, customer_ids: Sequence[int]) -> set[int]:
    """Default consent check: the `customers` table's marketing_consent flag (营销授权)."""
    customers = table("customers", column("id"), column("tenant_id"), column("marketing_consent"))
    out: set[int] = set()
    ids = list(customer_ids)
    for start in range(0, len(ids), _IN_CHUNK):
        rows = session.execute(
            select(customers.c.id).where(
                customers.c.tenant_id == tenant_id, customers.c.id.in_(ids[start:start + _IN_CHUNK]),
                customers.c.marketing_consent.is_(True))
        ).scalars()
        out.update(int(r) for r in rows)
    return out


# --- segments ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentVersion:
    id: int
    name: str
    version: int
    expression: str
    namespace: dict[str, FeatureType]
    description: str
    created_by: str
    created_at: datetime

    @classmethod
    def from_row(cls, r: SegmentRow) -> SegmentVersion:
        namespace = cast(dict[str, FeatureType], dict(r.namespace))
        return cls(r.id, r.name, r.version, r.expression, namespace, r.description, r.created_by,
                   r.created_at)

    def segment(self) -> Segment:
        return Segment(self.name, self.version, self.expression, self.namespace, self.description)

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


def save_segment(uow: UnitOfWork, who: Principal, name: str, expression: str, *, at: datetime,
                 description: str = "", namespace: dict[str, FeatureType] | None = None) -> SegmentVersion:
    """Check the expression and store it as the segment's next version (the first is version 1)."""
    who.require(Permission.MANAGE_CAMPAIGNS)
    ns = dict(DEFAULT_NAMESPACE if namespace is None else namespace)
    with uow:
        s = uow.session
        latest = s.execute(select(func.max(SegmentRow.version)).where(
            SegmentRow.tenant_id == who.tenant_id, SegmentRow.name == name)).scalar()
        version = int(latest or 0) + 1
        Segment(name, version, expression, ns, description)  # refuses a bad name or expression
        row = SegmentRow(tenant_id=who.tenant_id, name=name, version=version, expression=expression,
                         namespace=ns, description=description, created_by=who.username, created_at=at)
        s.add(row)
        s.flush()
        audit.record(s, who, "segment.save", "segment", row.id,
                     after={"name": name, "version": version, "expression": expression})
        result = SegmentVersion.from_row(row)
        uow.commit()
    return result


def _segment_row(s: Session, who: Principal, name: str, version: int | None) -> SegmentRow:
    q = select(SegmentRow).where(SegmentRow.tenant_id == who.tenant_id, SegmentRow.name == name)
    q = q.where(SegmentRow.version == version) if version else q.order_by(SegmentRow.version.desc()).limit(1)
    row = s.execute(q).scalar_one_or_none()
    if row is None:
        raise NotFound(f"segment '{name}'{f' v{version}' if version else ''} not found", field="segment")
    return row


def get_segment(uow: UnitOfWork, who: Principal, name: str, version: int | None = None) -> SegmentVersion:
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        return SegmentVersion.from_row(_segment_row(uow.session, who, name, version))


def list_segments(uow: UnitOfWork, who: Principal) -> list[SegmentVersion]:
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        rows = uow.session.execute(select(SegmentRow).where(SegmentRow.tenant_id == who.tenant_id)
                                   .order_by(SegmentRow.name, SegmentRow.version)).scalars()
        return [SegmentVersion.from_row(r) for r in rows]


def _opt_outs(s: Session, tenant_id: int) -> pl.DataFrame:
    rows = s.execute(select(OptOutRow.customer_id, OptOutRow.channel).where(OptOutRow.tenant_id == tenant_id)).all()
    return pl.DataFrame([tuple(r) for r in rows], schema={"customer_id": pl.Int64, "channel": pl.String},
                        orient="row")


def _recent_contacts(s: Session, tenant_id: int, since: datetime, at: datetime) -> pl.DataFrame:
    """Contacts made since `since`, plus messages still waiting in the outbox (they will be contacts)."""
    made = s.execute(select(ContactRow.customer_id, ContactRow.contacted_at).where(
        ContactRow.tenant_id == tenant_id, ContactRow.contacted_at >= since)).all()
    waiting = s.execute(select(OutboxRow.customer_id).where(
        OutboxRow.tenant_id == tenant_id, OutboxRow.status == "scheduled")).scalars().all()
    rows = [(int(c), t) for c, t in made] + [(int(c), at) for c in waiting]
    return pl.DataFrame(rows, schema={"customer_id": pl.Int64, "contacted_at": pl.Datetime("us", "UTC")},
                        orient="row")


def preview_segment(uow: UnitOfWork, who: Principal, name: str, customers: pl.DataFrame, *, channel: str,
                    at: datetime, cap: FrequencyCap | None = None, sample_size: int = 10,
                    version: int | None = None) -> SegmentCount:
    """Live count and sample of a stored segment on a channel, with every exclusion applied."""
    who.require(Permission.VIEW_CAMPAIGNS)
    cap = cap or FrequencyCap()
    with uow:
        s = uow.session
        seg = SegmentVersion.from_row(_segment_row(s, who, name, version)).segment()
        summary, _ = count_segment(seg, customers, channel=channel, at=at, cap=cap,
                                   opt_outs=_opt_outs(s, who.tenant_id),
                                   contacts=_recent_contacts(s, who.tenant_id, cap.window_start(at), at),
                                   sample_size=sample_size)
    return summary


# --- opt-outs ---------------------------------------------------------------------------------------------


def record_opt_out(uow: UnitOfWork, who: Principal, customer_id: int, channel: str, *, at: datetime) -> None:
    """The customer asked not to be contacted on `channel` (e.g. replied T to an SMS); idempotent."""
    who.require(Permission.MANAGE_CAMPAIGNS)
    check_channel(channel)
    with uow:
        s = uow.session
        exists = s.execute(select(OptOutRow.id).where(
            OptOutRow.tenant_id == who.tenant_id, OptOutRow.customer_id == customer_id,
            OptOutRow.channel == channel)).first()
        if exists is None:
            s.add(OptOutRow(tenant_id=who.tenant_id, customer_id=customer_id, channel=channel, opted_out_at=at))
            s.flush()
            audit.record(s, who, "marketing.opt_out", "customer", customer_id, after={"channel": channel})
        uow.commit()


def remove_opt_out(uow: UnitOfWork, who: Principal, customer_id: int, channel: str) -> None:
    who.require(Permission.MANAGE_CAMPAIGNS)
    with uow:
        s = uow.session
        row = s.execute(select(OptOutRow).where(
            OptOutRow.tenant_id == who.tenant_id, OptOutRow.customer_id == customer_id,
            OptOutRow.channel == channel)).scalar_one_or_none()
        if row is not None:
            s.delete(row)
            audit.record(s, who, "marketing.opt_in", "customer", customer_id, before={"channel": channel})
        uow.commit()


# --- campaigns --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignSpec:
    """What a marketer fills in to create a campaign; a segment or a pre-approval run picks the targets."""

    name: str
    channel: str
    segment_name: str | None = None
    segment_version: int | None = None
    run_id: int | None = None
    control_share_bp: int = 1000
    locale: str = "zh_CN"
    cost_per_message: Decimal = Decimal("0.05")
    attribution_days: int = 30
    cap: FrequencyCap = field(default_factory=FrequencyCap)
    quiet: QuietHours = field(default_factory=QuietHours)
    template: str | None = None


@dataclass(frozen=True)
class Campaign:
    id: int
    name: str
    channel: str
    locale: str
    segment_id: int | None
    run_id: int | None
    control_share_bp: int
    cost_per_message: Decimal
    attribution_days: int
    status: str
    launched_at: datetime | None

    @classmethod
    def from_row(cls, r: CampaignRow) -> Campaign:
        return cls(r.id, r.name, r.channel, r.locale, r.segment_id, r.run_id, r.control_share_bp,
                   r.cost_per_message, r.attribution_days, r.status, r.launched_at)


def create_campaign(uow: UnitOfWork, who: Principal, spec: CampaignSpec, *, at: datetime) -> Campaign:
    """A draft campaign; nothing is sent until it is launched."""
    who.require(Permission.MANAGE_CAMPAIGNS)
    check_channel(spec.channel)
    check_control_share(spec.control_share_bp)
    if spec.locale not in LOCALES:
        raise ValidationError(f"locale: must be one of {', '.join(LOCALES)}", field="locale")
    if (spec.segment_name is None) == (spec.run_id is None):
        raise ValidationError("target: give either a segment or a pre-approval run", field="target")
    if not 1 <= spec.attribution_days <= 365:
        raise ValidationError("attribution_days: must be between 1 and 365", field="attribution_days")
    cost = parse_amount(spec.cost_per_message, "cost_per_message")
    if cost < 0:
        raise ValidationError("cost_per_message: cannot be negative", field="cost_per_message")
    if not spec.name.strip() or len(spec.name) > 100:
        raise ValidationError("name: 1-100 characters", field="name")
    if spec.template is not None:
        MessageTemplates({(spec.channel, spec.locale): spec.template})  # refuses a broken template now
    with uow:
        s = uow.session
        if s.execute(select(CampaignRow.id).where(CampaignRow.tenant_id == who.tenant_id,
                                                  CampaignRow.name == spec.name)).first():
            raise Conflict(f"name: a campaign named '{spec.name}' exists", field="name")
        segment_id = None
        if spec.segment_name is not None:
            segment_id = _segment_row(s, who, spec.segment_name, spec.segment_version).id
        if spec.run_id is not None:
            run = s.get(PreapprovalRunRow, spec.run_id)
            if run is None or run.tenant_id != who.tenant_id:
                raise NotFound(f"pre-approval run {spec.run_id} not found", field="run_id")
            if run.status != "completed":
                raise Conflict(f"run_id: run {spec.run_id} has not completed", field="run_id")
        row = CampaignRow(
            tenant_id=who.tenant_id, name=spec.name, channel=spec.channel, locale=spec.locale,
            segment_id=segment_id, run_id=spec.run_id, control_share_bp=spec.control_share_bp,
            cost_per_message=cost, attribution_days=spec.attribution_days,
            cap_max_messages=spec.cap.max_messages, cap_window_days=spec.cap.window_days,
            quiet_start=spec.quiet.start.strftime("%H:%M"), quiet_end=spec.quiet.end.strftime("%H:%M"),
            timezone=spec.quiet.timezone, template=spec.template, status="draft", created_by=who.username,
            created_at=at)
        s.add(row)
        s.flush()
        audit.record(s, who, "campaign.create", "campaign", row.id,
                     after={"name": spec.name, "channel": spec.channel, "control_share_bp": spec.control_share_bp})
        result = Campaign.from_row(row)
        uow.commit()
    return result


def _campaign_row(s: Session, who: Principal, campaign_id: int) -> CampaignRow:
    row = s.get(CampaignRow, campaign_id)
    if row is None or row.tenant_id != who.tenant_id:
        raise NotFound(f"campaign {campaign_id} not found", field="campaign_id")
    return row


def get_campaign(uow: UnitOfWork, who: Principal, campaign_id: int) -> Campaign:
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        return Campaign.from_row(_campaign_row(uow.session, who, campaign_id))


def list_campaigns(uow: UnitOfWork, who: Principal) -> list[Campaign]:
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        rows = uow.session.execute(select(CampaignRow).where(CampaignRow.tenant_id == who.tenant_id)
                                   .order_by(CampaignRow.id)).scalars()
        return [Campaign.from_row(r) for r in rows]


def _cap(row: CampaignRow) -> FrequencyCap:
    return FrequencyCap(row.cap_max_messages, row.cap_window_days)


def _quiet(row: CampaignRow) -> QuietHours:
    return QuietHours(time.fromisoformat(row.quiet_start), time.fromisoformat(row.quiet_end), row.timezone)


@dataclass(frozen=True)
class LaunchSummary:
    """What a launch did: targeted, excluded per reason, held out as control, messages or tasks created."""

    campaign_id: int
    targeted: int
    excluded: dict[str, int]
    control: int
    treatment: int
    messages: int
    visit_tasks: int
    scheduled_at: datetime


def _targets(s: Session, who: Principal, row: CampaignRow, customers: pl.DataFrame) -> tuple[pl.DataFrame, str]:
    """The campaign's target customers with their offer columns (when it targets a run) and a label."""
    if row.segment_id is not None:
        seg_row = s.get(SegmentRow, row.segment_id)
        assert seg_row is not None
        version = SegmentVersion.from_row(seg_row)
        return version.segment().select(customers), version.label
    offers = s.execute(select(OfferRow.id, OfferRow.customer_id, OfferRow.limit, OfferRow.annual_rate, OfferRow.apr,
                              OfferRow.expires_on).where(OfferRow.run_id == row.run_id)).all()
    frame = pl.DataFrame(
        [tuple(o) for o in offers], orient="row",
        schema={"offer_id": pl.Int64, "customer_id": pl.Int64, "offer_limit": pl.Object, "offer_rate": pl.Object,
                "offer_apr": pl.Object, "offer_expires_on": pl.Date},
    )
    return customers.join(frame, on="customer_id", how="inner"), f"run {row.run_id}"


def launch_campaign(
    uow: UnitOfWork, who: Principal, campaign_id: int, customers: pl.DataFrame, *, at: datetime,
    bank_name: str = "", link_base: str = "/t/", token_secret: str = "microlend-marketing",
) -> LaunchSummary:
    """Select targets, apply every exclusion, hold out the control group, and put the treatment's messages
    in the outbox (scheduled after quiet hours) or create visit tasks for their officers. Set-based."""
    who.require(Permission.MANAGE_CAMPAIGNS)
    with uow:
        s = uow.session
        row = _campaign_row(s, who, campaign_id)
        if row.status != "draft":
            raise Conflict(f"campaign {campaign_id} was already launched", field="campaign_id")
        cap = _cap(row)
        targets, label = _targets(s, who, row, customers)
        targets = targets.unique("customer_id", keep="first").sort("customer_id")
        flags = exclusion_flags(targets, channel=row.channel, at=at, cap=cap, opt_outs=_opt_outs(s, who.tenant_id),
                                contacts=_recent_contacts(s, who.tenant_id, cap.window_start(at), at))
        ids = targets.get_column("customer_id").to_numpy()
        excluded_mask = flags.get_column("excluded").to_numpy()
        first_reason = flags.select(
            pl.coalesce([pl.when(pl.col(r)).then(pl.lit(r)) for r in EXCLUSION_REASONS])).to_series().to_list()
        control = control_mask(f"{who.tenant_id}:{row.id}", ids, row.control_share_bp) & ~excluded_mask
        arms = ["excluded" if e else ("control" if c else "treatment") for e, c in zip(excluded_mask, control,
                                                                                       strict=True)]
        offer_ids = targets.get_column("offer_id").to_list() if "offer_id" in targets.columns else [None] * len(ids)
        _bulk_insert(s, AssignmentRow, [
            {"tenant_id": who.tenant_id, "campaign_id": row.id, "customer_id": int(c), "arm": a,
             "segment_label": label, "excluded_reason": r, "offer_id": o}
            for c, a, r, o in zip(ids, arms, first_reason, offer_ids, strict=True)
        ])
        treated = targets.filter(pl.Series(arms) == "treatment")
        scheduled_at = _quiet(row).next_allowed(at, row.channel)
        messages = tasks = 0
        if row.channel == "visit":
            officers = (treated.get_column("officer_user_id").to_list() if "officer_user_id" in treated.columns
                        else [None] * treated.height)
            tids = treated.get_column("customer_id").to_list()
            _bulk_insert(s, VisitTaskRow, [
                {"tenant_id": who.tenant_id, "campaign_id": row.id, "customer_id": int(c),
                 "officer_user_id": None if o is None else int(o), "status": "open", "note": "", "created_at": at}
                for c, o in zip(tids, officers, strict=True)
            ])
            _record_contacts(s, who.tenant_id, row.id, "visit", [int(c) for c in tids], at)
            tasks = len(tids)
        else:
            messages = _fill_outbox(s, who.tenant_id, row, treated, scheduled_at, bank_name, link_base, token_secret)
        excluded = {r: int(flags.get_column(r).sum()) for r in EXCLUSION_REASONS}
        summary = LaunchSummary(row.id, targets.height, excluded, int(control.sum()),
                                arms.count("treatment"), messages, tasks, scheduled_at)
        row.status, row.launched_at = "launched", at
        audit.record(s, who, "campaign.launch", "campaign", row.id, after={
            "targeted": summary.targeted, "excluded": excluded, "control": summary.control,
            "treatment": summary.treatment, "messages": messages, "visit_tasks": tasks})
        uow.commit()
    return summary


def _offer_terms(r: dict[str, Any]) -> OfferTerms | None:
    if r.get("offer_limit") is None:
        return None
    return OfferTerms(r["offer_limit"], r["offer_rate"], r["offer_apr"], r["offer_expires_on"])


def _fill_outbox(s: Session, tenant_id: int, row: CampaignRow, treated: pl.DataFrame, scheduled_at: datetime,
                 bank_name: str, link_base: str, secret: str) -> int:
    if row.template:
        custom = {(row.channel, row.locale): row.template}
        templates = MessageTemplates(custom, invitations=custom if row.run_id is None else None)
    else:
        templates = MessageTemplates()
    cache = RenderCache(templates, row.channel, row.locale, bank_name)
    wanted = [c for c in ("customer_id", "offer_limit", "offer_rate", "offer_apr", "offer_expires_on")
              if c in treated.columns]
    batch: list[dict[str, Any]] = []
    count = 0
    for r in treated.select(wanted).iter_rows(named=True):
        token = tracking_token(row.id, r["customer_id"], secret)
        batch.append({"tenant_id": tenant_id, "campaign_id": row.id, "customer_id": r["customer_id"],
                      "channel": row.channel, "locale": row.locale,
                      "body": cache.render(_offer_terms(r), link_base + token),
                      "token": token, "status": "scheduled", "scheduled_at": scheduled_at})
        if len(batch) >= 20_000:
            _bulk_insert(s, OutboxRow, batch)
            count += len(batch)
            batch = []
    if batch:
        _bulk_insert(s, OutboxRow, batch)
        count += len(batch)
    return count


def _record_contacts(s: Session, tenant_id: int, campaign_id: int, channel: str, customer_ids: list[int],
                     at: datetime) -> None:
    if not customer_ids:
        return
    _bulk_insert(s, ContactRow, [{"tenant_id": tenant_id, "customer_id": c, "campaign_id": campaign_id,
                                    "channel": channel, "contacted_at": at} for c in customer_ids])
    _bulk_insert(s, TrackingEventRow, [{"tenant_id": tenant_id, "customer_id": c, "campaign_id": campaign_id,
                                          "kind": "sent", "at": at} for c in customer_ids])


def _bulk_insert(s: Session, row_class: Any, rows: list[dict[str, Any]]) -> None:
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


def _update_outbox(s: Session, updates: list[dict[str, Any]]) -> None:
    """Bulk status changes: rows getting the same new values change in one UPDATE ... WHERE id IN (...)."""
    groups: dict[tuple[tuple[str, Any], ...], list[int]] = defaultdict(list)
    for u in updates:
        groups[tuple(sorted((k, v) for k, v in u.items() if k != "id"))].append(u["id"])
    for values, ids in groups.items():
        for start in range(0, len(ids), _IN_CHUNK):
            s.execute(update(OutboxRow).where(OutboxRow.id.in_(ids[start:start + _IN_CHUNK])).values(dict(values))
                      .execution_options(synchronize_session=False))


# --- dispatch ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DispatchSummary:
    sent: int
    suppressed: dict[str, int]
    failed: int
    deferred: int = 0  # due, but now is in quiet hours: moved to the next allowed time


def dispatch_outbox(
    uow: UnitOfWork, who: Principal, *, now: datetime, sender: Sender | None = None,
    consent: ConsentCheck = customers_table_consent, batch_size: int = 5_000, limit: int | None = None,
) -> DispatchSummary:
    """Hand due messages to the sender in batches, each in its own transaction. Consent, opt-outs and the
    frequency cap are checked again now: a message that no longer may go is suppressed, with the reason."""
    who.require(Permission.MANAGE_CAMPAIGNS)
    sender = sender or LogSender()
    sent = failed = deferred = 0
    suppressed: dict[str, int] = defaultdict(int)
    last_id = 0
    while limit is None or sent + failed + deferred + sum(suppressed.values()) < limit:
        with uow:
            s = uow.session
            due = s.execute(select(OutboxRow.id, OutboxRow.campaign_id, OutboxRow.customer_id, OutboxRow.channel,
                                   OutboxRow.locale, OutboxRow.body).where(
                OutboxRow.tenant_id == who.tenant_id, OutboxRow.status == "scheduled",
                OutboxRow.scheduled_at <= now, OutboxRow.id > last_id).order_by(OutboxRow.id).limit(batch_size)).all()
            if not due:
                break
            last_id = due[-1][0]
            outcome = _dispatch_batch(s, who, due, now, sender, consent)
            audit.record(s, who, "outbox.dispatch", "marketing_outbox", f"{due[0][0]}-{last_id}", after={
                "sender": sender.name, "sent": outcome.sent, "failed": outcome.failed,
                "suppressed": outcome.suppressed, "deferred": outcome.deferred})
            sent += outcome.sent
            failed += outcome.failed
            deferred += outcome.deferred
            for k, v in outcome.suppressed.items():
                suppressed[k] += v
            uow.commit()
    return DispatchSummary(sent, dict(suppressed), failed, deferred)


def _dispatch_batch(s: Session, who: Principal, due: Sequence[Any], now: datetime, sender: Sender,
                    consent: ConsentCheck) -> DispatchSummary:
    tenant = who.tenant_id
    campaigns = {r.id: r for r in s.execute(select(CampaignRow).where(
        CampaignRow.id.in_({d[1] for d in due}))).scalars()}
    customer_ids = sorted({int(d[2]) for d in due})
    consenting = consent(s, tenant, customer_ids)
    opted: set[tuple[int, str]] = set()
    longest = max(c.cap_window_days for c in campaigns.values())
    contacts: dict[int, list[datetime]] = defaultdict(list)
    for start in range(0, len(customer_ids), _IN_CHUNK):
        chunk = customer_ids[start:start + _IN_CHUNK]
        opted.update((int(c), ch) for c, ch in s.execute(select(OptOutRow.customer_id, OptOutRow.channel).where(
            OptOutRow.tenant_id == tenant, OptOutRow.customer_id.in_(chunk))).all())
        for c, t in s.execute(select(ContactRow.customer_id, ContactRow.contacted_at).where(
                ContactRow.tenant_id == tenant, ContactRow.customer_id.in_(chunk),
                ContactRow.contacted_at >= now - timedelta(days=longest))).all():
            contacts[int(c)].append(t)
    go: list[OutgoingMessage] = []
    updates: list[dict[str, Any]] = []
    suppressed: dict[str, int] = defaultdict(int)
    deferred = 0
    for mid, cid, customer, channel, locale, body in due:
        camp = campaigns[cid]
        allowed = _quiet(camp).next_allowed(now, channel)
        if allowed > now:  # a backlog sent late must still not wake anyone up
            deferred += 1
            updates.append({"id": mid, "scheduled_at": allowed})
            continue
        cap = _cap(camp)
        window_start = cap.window_start(now)
        reason = None
        if customer not in consenting:
            reason = "no_consent"
        elif (customer, channel) in opted:
            reason = "opted_out"
        elif sum(1 for t in contacts[customer] if window_start <= t <= now) >= cap.max_messages:
            reason = "frequency_cap"
        if reason is not None:
            suppressed[reason] += 1
            updates.append({"id": mid, "status": "suppressed", "suppressed_reason": reason})
            continue
        contacts[customer].append(now)  # a second message to the same customer in this batch counts too
        go.append(OutgoingMessage(mid, cid, customer, channel, locale, body))
    accepted = sender.send(go) if go else set()
    for m in go:
        if m.message_id in accepted:
            updates.append({"id": m.message_id, "status": "sent", "sent_at": now, "sender": sender.name})
        else:
            updates.append({"id": m.message_id, "status": "failed", "sender": sender.name})
    if updates:
        _update_outbox(s, updates)
    delivered = [m for m in go if m.message_id in accepted]
    if delivered:
        _bulk_insert(s, ContactRow, [{"tenant_id": tenant, "customer_id": m.customer_id, "campaign_id": m.campaign_id,
                                        "channel": m.channel, "contacted_at": now} for m in delivered])
        _bulk_insert(s, TrackingEventRow, [{"tenant_id": tenant, "customer_id": m.customer_id,
                                              "campaign_id": m.campaign_id, "kind": "sent", "at": now}
                                             for m in delivered])
    return DispatchSummary(len(delivered), dict(suppressed), len(go) - len(delivered), deferred)


# --- tracking ---------------------------------------------------------------------------------------------


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
    from microlend.core.identity import system_principal

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
            _bulk_insert(uow.session, TrackingEventRow, rows)
        audit.record(uow.session, who, "marketing.events.load", "marketing_events", len(rows),
                     after={"rows": len(rows)})
        uow.commit()
    return len(rows)


#: origination's application statuses that mean an offer was made (approved, 审批通过) at `decided_at`
_APPROVED = ("approved", "accepted", "contracted", "disbursed")


def application_events(s: Session, tenant_id: int, customer_ids: Sequence[int], since: datetime
                       ) -> list[tuple[int, str, datetime, int | None]]:
    """The funnel's later steps from real applications (origination's `applications` table, read through
    SQLAlchemy Core by name because marketing does not import origination): applied at submission, approved
    when the decision made an offer, disbursed when the money went out. An application that arrived through
    a tracked link carries its campaign and counts for that campaign only; others are attributed by window.
    Returns (customer_id, kind, at, campaign_id); nothing when the bank runs no origination here."""
    if not customer_ids or not inspect(s.connection()).has_table("applications"):
        return []
    apps = table("applications", column("tenant_id"), column("customer_id"), column("campaign_id"),
                 column("status"), column("submitted_at", UTCDateTime()), column("decided_at", UTCDateTime()),
                 column("disbursed_at", UTCDateTime()))
    out: list[tuple[int, str, datetime, int | None]] = []
    ids = list(customer_ids)
    for start in range(0, len(ids), _IN_CHUNK):
        rows = s.execute(select(apps.c.customer_id, apps.c.campaign_id, apps.c.status, apps.c.submitted_at,
                                apps.c.decided_at, apps.c.disbursed_at).where(
            apps.c.tenant_id == tenant_id, apps.c.customer_id.in_(ids[start:start + _IN_CHUNK]),
            apps.c.submitted_at >= since)).all()
        for customer, campaign, status, submitted, decided, disbursed in rows:
            cid = None if campaign is None else int(campaign)
            out.append((int(customer), "applied", submitted, cid))
            if status in _APPROVED and decided is not None:
                out.append((int(customer), "approved", decided, cid))
            if disbursed is not None:
                out.append((int(customer), "disbursed", disbursed, cid))
    return out


def _attribution_inputs(s: Session, who: Principal, campaign_ids: Sequence[int]
                        ) -> tuple[list[CampaignRow], pl.DataFrame, pl.DataFrame, dict[int, int]]:
    """Reference rows (each targeted customer with the instant its window opens) and the events after."""
    rows = [_campaign_row(s, who, cid) for cid in campaign_ids]
    for r in rows:
        if r.launched_at is None:
            raise Conflict(f"campaign {r.id} has not been launched", field="campaign_id")
    assignments = s.execute(select(AssignmentRow.campaign_id, AssignmentRow.customer_id, AssignmentRow.arm,
                                   AssignmentRow.segment_label).where(
        AssignmentRow.campaign_id.in_(campaign_ids), AssignmentRow.arm != "excluded")).all()
    sends = s.execute(select(ContactRow.campaign_id, ContactRow.customer_id, func.min(ContactRow.contacted_at))
                      .where(ContactRow.campaign_id.in_(campaign_ids))
                      .group_by(ContactRow.campaign_id, ContactRow.customer_id)).all()
    messages = {int(c): int(n) for c, n in s.execute(select(ContactRow.campaign_id, func.count()).where(
        ContactRow.campaign_id.in_(campaign_ids)).group_by(ContactRow.campaign_id)).all()}
    customer_ids = sorted({int(a[1]) for a in assignments})
    earliest = min(r.launched_at for r in rows if r.launched_at is not None)
    events: list[tuple[Any, ...]] = []
    for start in range(0, len(customer_ids), _IN_CHUNK):
        events.extend(s.execute(select(TrackingEventRow.customer_id, TrackingEventRow.kind, TrackingEventRow.at,
                                       TrackingEventRow.campaign_id).where(
            TrackingEventRow.tenant_id == who.tenant_id, TrackingEventRow.kind != "sent",
            TrackingEventRow.customer_id.in_(customer_ids[start:start + _IN_CHUNK]),
            TrackingEventRow.at >= earliest)).all())
    events.extend(application_events(s, who.tenant_id, customer_ids, earliest))
    sent_at = {(int(c), int(u)): t for c, u, t in sends}
    campaigns = {r.id: r for r in rows}
    reference = pl.DataFrame(
        [(int(c), int(u), a, lbl, campaigns[c].channel,
          sent_at.get((int(c), int(u)), campaigns[c].launched_at), campaigns[c].attribution_days,
          (int(c), int(u)) in sent_at)
         for c, u, a, lbl in assignments],
        schema={"campaign_id": pl.Int64, "customer_id": pl.Int64, "arm": pl.String, "segment": pl.String,
                "channel": pl.String, "reference_at": pl.Datetime("us", "UTC"), "window_days": pl.Int64,
                "sent": pl.Boolean},
        orient="row",
    )
    event_frame = pl.DataFrame(
        [(int(c), k, t, None if cid is None else int(cid)) for c, k, t, cid in events],
        schema={"customer_id": pl.Int64, "kind": pl.String, "at": pl.Datetime("us", "UTC"),
                "event_campaign_id": pl.Int64},
        orient="row",
    )
    return rows, reference, event_frame, messages


def campaign_report(uow: UnitOfWork, who: Principal, campaign_ids: Sequence[int], *,
                    confidence: float = 0.95) -> CampaignReport:
    """Funnel per channel and segment, treatment vs control conversion with a confidence interval, and
    cost per disbursed loan, for one or more launched campaigns. Applications, approvals and disbursements
    come from the recorded events and from origination's applications (`application_events`)."""
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        rows, reference, events, messages = _attribution_inputs(uow.session, who, campaign_ids)
    costs = {r.id: r.cost_per_message * messages.get(r.id, 0) for r in rows}
    return build_report(reference, events, costs=costs, names={r.id: r.name for r in rows}, confidence=confidence)


def campaign_outcomes(uow: UnitOfWork, who: Principal, campaign_ids: Sequence[int], *,
                      stage: str = "disbursed") -> pl.DataFrame:
    """Training rows for uplift: customer_id, campaign_id, treated (0/1), converted (0/1) within the window,
    counting recorded events and real applications alike."""
    who.require(Permission.VIEW_CAMPAIGNS)
    if stage not in EVENT_KINDS[1:]:
        raise ValidationError(f"stage: one of {', '.join(EVENT_KINDS[1:])}", field="stage")
    with uow:
        _, reference, events, _ = _attribution_inputs(uow.session, who, campaign_ids)
    return attribute(reference, events).select(
        "customer_id", "campaign_id", (pl.col("arm") == "treatment").cast(pl.Int8).alias("treated"),
        pl.col(stage).cast(pl.Int8).alias("converted"))


# --- visit tasks ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VisitTask:
    id: int
    campaign_id: int
    campaign_name: str
    customer_id: int
    officer_user_id: int | None
    status: str
    created_at: datetime


def visit_tasks(uow: UnitOfWork, who: Principal, *, officer_user_id: int | None = None,
                status: str | None = "open") -> list[VisitTask]:
    """Visit tasks for the workbench: an officer's own (default for a caller without campaign management)."""
    who.require(Permission.VIEW_CAMPAIGNS)
    if not who.can(Permission.MANAGE_CAMPAIGNS):
        officer_user_id = who.user_id
    with uow:
        q = (select(VisitTaskRow, CampaignRow.name).join(CampaignRow, CampaignRow.id == VisitTaskRow.campaign_id)
             .where(VisitTaskRow.tenant_id == who.tenant_id))
        if officer_user_id is not None:
            q = q.where(VisitTaskRow.officer_user_id == officer_user_id)
        if status is not None:
            q = q.where(VisitTaskRow.status == status)
        return [VisitTask(t.id, t.campaign_id, name, t.customer_id, t.officer_user_id, t.status, t.created_at)
                for t, name in uow.session.execute(q.order_by(VisitTaskRow.id)).all()]


def close_visit_task(uow: UnitOfWork, who: Principal, task_id: int, *, outcome: str, at: datetime,
                     note: str = "") -> None:
    """The officer records the visit's outcome (visited, not_interested, unreachable, applied)."""
    who.require(Permission.VIEW_CAMPAIGNS)
    if outcome not in ("visited", "not_interested", "unreachable", "applied"):
        raise ValidationError("outcome: visited, not_interested, unreachable or applied", field="outcome")
    with uow:
        s = uow.session
        task = s.get(VisitTaskRow, task_id)
        if task is None or task.tenant_id != who.tenant_id or (
                not who.can(Permission.MANAGE_CAMPAIGNS) and task.officer_user_id != who.user_id):
            raise NotFound(f"visit task {task_id} not found", field="task_id")
        if task.status != "open":
            raise Conflict(f"visit task {task_id} is already {task.status}", field="task_id")
        task.status, task.outcome, task.closed_at, task.note = "done", outcome, at, note
        audit.record(s, who, "visit_task.close", "visit_task", task_id, after={"outcome": outcome})
        uow.commit()


def offer_count(uow: UnitOfWork, who: Principal, run_id: int) -> int:
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        return int(uow.session.execute(select(func.count()).select_from(OfferRow).where(
            and_(OfferRow.run_id == run_id, OfferRow.tenant_id == who.tenant_id))).scalar() or 0)




# --- what the marketer's and the officer's pages read -----------------------------------------------------


@dataclass(frozen=True)
class PreapprovalRun:
    id: int
    segment: str | None
    as_of: Any
    status: str
    customers_total: int
    customers_done: int
    offers_count: int
    started_at: datetime
    finished_at: datetime | None

    @property
    def progress(self) -> float:
        return 1.0 if self.status == "completed" or not self.customers_total else \
            self.customers_done / self.customers_total


def list_runs(uow: UnitOfWork, who: Principal) -> list[PreapprovalRun]:
    """Pre-approval runs, newest first, with their segment's label and progress."""
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        rows = uow.session.execute(
            select(PreapprovalRunRow, SegmentRow.name, SegmentRow.version)
            .outerjoin(SegmentRow, SegmentRow.id == PreapprovalRunRow.segment_id)
            .where(PreapprovalRunRow.tenant_id == who.tenant_id).order_by(PreapprovalRunRow.id.desc())).all()
        return [PreapprovalRun(r.id, None if name is None else f"{name} v{version}", r.as_of, r.status,
                               r.customers_total, r.customers_done, r.offers_count, r.started_at, r.finished_at)
                for r, name, version in rows]


def outbox_waiting(uow: UnitOfWork, who: Principal) -> dict[int, int]:
    """Messages still scheduled in the outbox, per campaign."""
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        return {int(c): int(n) for c, n in uow.session.execute(
            select(OutboxRow.campaign_id, func.count()).where(
                OutboxRow.tenant_id == who.tenant_id, OutboxRow.status == "scheduled")
            .group_by(OutboxRow.campaign_id)).all()}


def preview_expression(uow: UnitOfWork, who: Principal, expression: str, customers: pl.DataFrame, *,
                       channel: str, at: datetime, cap: FrequencyCap | None = None,
                       sample_size: int = 5) -> SegmentCount:
    """Live count of an expression being typed (not yet saved), with every exclusion applied."""
    who.require(Permission.VIEW_CAMPAIGNS)
    cap = cap or FrequencyCap()
    segment = Segment("preview", 1, expression)
    with uow:
        s = uow.session
        summary, _ = count_segment(segment, customers, channel=channel, at=at, cap=cap,
                                   opt_outs=_opt_outs(s, who.tenant_id),
                                   contacts=_recent_contacts(s, who.tenant_id, cap.window_start(at), at),
                                   sample_size=sample_size)
    return summary


@dataclass(frozen=True)
class VisitCard:
    """What an officer needs at the door: the customer, the campaign and the offer's figures."""

    task: VisitTask
    customer_name: str
    phone_masked: str
    address: str
    branch: str
    offer_limit: Decimal | None
    offer_rate: Decimal | None
    offer_apr: Decimal | None
    offer_expires_on: Any


def visit_cards(uow: UnitOfWork, who: Principal, *, status: str | None = "open") -> list[VisitCard]:
    """The caller's own visit tasks with customer and offer details (the officer's 走访任务 list). The
    customer comes from the `customers` table read by name (see `application_events` for why); the offer
    is the one the campaign targeted, else the customer's latest unexpired pre-approved offer."""
    who.require(Permission.VIEW_CAMPAIGNS)
    tasks = [t for t in visit_tasks(uow, who, officer_user_id=who.user_id, status=status)
             if t.officer_user_id == who.user_id]
    if not tasks:
        return []
    ids = sorted({t.customer_id for t in tasks})
    customers = table("customers", column("id"), column("tenant_id"), column("name"), column("phone_masked"),
                      column("address"), column("branch"))
    with uow:
        s = uow.session
        people: dict[int, Any] = {}
        if inspect(s.connection()).has_table("customers"):
            people = {int(r.id): r for r in s.execute(select(customers).where(
                customers.c.tenant_id == who.tenant_id, customers.c.id.in_(ids))).all()}
        targeted = {(int(c), int(u)): int(o or 0) for c, u, o in s.execute(
            select(AssignmentRow.campaign_id, AssignmentRow.customer_id, AssignmentRow.offer_id).where(
                AssignmentRow.tenant_id == who.tenant_id, AssignmentRow.customer_id.in_(ids),
                AssignmentRow.offer_id.is_not(None))).all()}
        offers: dict[int, OfferRow] = {}
        latest: dict[int, OfferRow] = {}
        for o in s.execute(select(OfferRow).where(OfferRow.tenant_id == who.tenant_id,
                                                  OfferRow.customer_id.in_(ids)).order_by(OfferRow.id)).scalars():
            offers[o.id] = o
            latest[int(o.customer_id)] = o
        cards = []
        for t in tasks:
            person = people.get(t.customer_id)
            offer_id = targeted.get((t.campaign_id, t.customer_id))
            offer = offers.get(offer_id) if offer_id is not None else latest.get(t.customer_id)
            if offer is not None and offer_id is None and offer.expires_on < t.created_at.date():
                offer = None
            cards.append(VisitCard(
                t, person.name if person else f"#{t.customer_id}", person.phone_masked if person else "",
                (person.address or "") if person else "", (person.branch or "") if person else "",
                offer.limit if offer else None, offer.annual_rate if offer else None,
                offer.apr if offer else None, offer.expires_on if offer else None))
    return cards
