"""Campaign use cases (营销活动): create a draft, read campaigns, and launch one: select its targets, apply
every exclusion, hold out the control group, and fill the outbox (or create officers' visit tasks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.delivery import absolute_link
from microlend.core.errors import Conflict, NotFound, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.money import parse_amount
from microlend.core.uow import UnitOfWork
from microlend.marketing.campaigns import (
    LOCALES,
    MessageTemplates,
    OfferTerms,
    QuietHours,
    RenderCache,
    check_control_share,
    tracking_token,
)
from microlend.marketing.contact_policy import (
    BANK_CAP,
    CONTROL_ELSEWHERE,
    GLOBAL_HOLDOUT,
    ContactPolicy,
    earliest_send,
    holdout_mask,
)
from microlend.marketing.journeys import (
    Variant,
    assign_variants,
    check_budget,
    check_variants,
    refuse_over_budget,
)
from microlend.marketing.segments import EXCLUSION_REASONS, FrequencyCap, check_channel, exclusion_flags
from microlend.marketing.service.common import (
    bulk_insert,
    campaign_row,
    campaign_spent,
    cap_of,
    control_windows,
    opt_outs,
    policy_of,
    quiet_of,
    recent_contacts,
    record_contacts,
    segment_row,
    unit_cost,
)
from microlend.marketing.service.segments import SegmentVersion
from microlend.marketing.sources import IN_CHUNK
from microlend.marketing.stratify import strata, stratified_control
from microlend.marketing.tables import (
    AssignmentRow,
    CampaignRow,
    OfferRow,
    OutboxRow,
    PreapprovalRunRow,
    SegmentRow,
    VisitTaskRow,
)

_OUTBOX_BATCH = 20_000


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
    starts_at: datetime | None = None  # no message before (launching earlier schedules them for then)
    ends_at: datetime | None = None  # a message still waiting then is not sent
    department: str = ""
    product: str = ""
    budget: Decimal | None = None  # what the campaign's contacts may cost (None: no budget)
    variants: tuple[Variant, ...] = ()  # A/B message variants of the treatment arm
    visit_due_days: int = 7  # a visit campaign's tasks are due this many days after the launch


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
    created_by: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    approved_by: str | None = None
    approved_at: datetime | None = None
    department: str = ""
    product: str = ""
    budget: Decimal | None = None
    variants: tuple[Variant, ...] = ()
    visit_due_days: int = 7

    @classmethod
    def from_row(cls, r: CampaignRow) -> Campaign:
        return cls(r.id, r.name, r.channel, r.locale, r.segment_id, r.run_id, r.control_share_bp,
                   r.cost_per_message, r.attribution_days, r.status, r.launched_at, r.created_by, r.starts_at,
                   r.ends_at, r.approved_by, r.approved_at, r.department or "", r.product or "", r.budget,
                   variants_of(r), visit_due_days(r))


def variants_of(r: CampaignRow) -> tuple[Variant, ...]:
    return tuple(Variant(str(v["key"]), int(v["weight"]), str(v["template"])) for v in (r.variants or []))


#: a visit task's days to be done when the campaign states none
DEFAULT_VISIT_DUE_DAYS = 7


def visit_due_days(row: CampaignRow) -> int:
    return int(row.visit_due_days) if row.visit_due_days is not None else DEFAULT_VISIT_DUE_DAYS


def _checked_cost(spec: CampaignSpec) -> Decimal:
    """Refuse a spec a campaign cannot be made of; the cost per message, parsed."""
    check_channel(spec.channel)
    check_control_share(spec.control_share_bp)
    if spec.locale not in LOCALES:
        raise ValidationError(f"locale: must be one of {', '.join(LOCALES)}", field="locale")
    if (spec.segment_name is None) == (spec.run_id is None):
        raise ValidationError("target: give either a segment or a pre-approval run", field="target")
    if not 1 <= spec.attribution_days <= 365:
        raise ValidationError("attribution_days: must be between 1 and 365", field="attribution_days")
    if not 1 <= spec.visit_due_days <= 90:
        raise ValidationError("visit_due_days: must be between 1 and 90", field="visit_due_days")
    cost = parse_amount(spec.cost_per_message, "cost_per_message")
    if cost < 0:
        raise ValidationError("cost_per_message: cannot be negative", field="cost_per_message")
    for name in ("starts_at", "ends_at"):
        value = getattr(spec, name)
        if value is not None and value.tzinfo is None:
            raise ValidationError(f"{name}: needs a time zone", field=name)
    if spec.starts_at is not None and spec.ends_at is not None and spec.ends_at <= spec.starts_at:
        raise ValidationError("ends_at: must be after starts_at", field="ends_at")
    if not spec.name.strip() or len(spec.name) > 100:
        raise ValidationError("name: 1-100 characters", field="name")
    if spec.template is not None:
        MessageTemplates({(spec.channel, spec.locale): spec.template})  # refuses a broken template now
    for name in ("department", "product"):
        if len(getattr(spec, name)) > 60:
            raise ValidationError(f"{name}: at most 60 characters", field=name)
    check_budget(None if spec.budget is None else parse_amount(spec.budget, "budget"))
    if check_variants(spec.variants):
        if spec.channel == "visit":
            raise ValidationError("variants: a visit campaign sends no message", field="variants")
        for v in spec.variants:
            MessageTemplates({(spec.channel, spec.locale): v.template})
    return cost


def _target_segment_id(s: Session, who: Principal, spec: CampaignSpec) -> int | None:
    """The targeted segment version's id, or None for a run (checked to exist here and be completed)."""
    segment_id = None
    if spec.segment_name is not None:
        segment_id = segment_row(s, who, spec.segment_name, spec.segment_version).id
    if spec.run_id is not None:
        run = s.get(PreapprovalRunRow, spec.run_id)
        if run is None or run.tenant_id != who.tenant_id:
            raise NotFound(f"pre-approval run {spec.run_id} not found", field="run_id")
        if run.status != "completed":
            raise Conflict(f"run_id: run {spec.run_id} has not completed", field="run_id")
    return segment_id


def create_campaign(uow: UnitOfWork, who: Principal, spec: CampaignSpec, *, at: datetime) -> Campaign:
    """A draft campaign; nothing is sent until it is launched."""
    who.require(Permission.MANAGE_CAMPAIGNS)
    cost = _checked_cost(spec)
    with uow:
        s = uow.session
        if s.execute(select(CampaignRow.id).where(CampaignRow.tenant_id == who.tenant_id,
                                                  CampaignRow.name == spec.name)).first():
            raise Conflict(f"name: a campaign named '{spec.name}' exists", field="name")
        segment_id = _target_segment_id(s, who, spec)
        row = CampaignRow(
            tenant_id=who.tenant_id, name=spec.name, channel=spec.channel, locale=spec.locale,
            segment_id=segment_id, run_id=spec.run_id, control_share_bp=spec.control_share_bp,
            cost_per_message=cost, attribution_days=spec.attribution_days,
            cap_max_messages=spec.cap.max_messages, cap_window_days=spec.cap.window_days,
            quiet_start=spec.quiet.start.strftime("%H:%M"), quiet_end=spec.quiet.end.strftime("%H:%M"),
            timezone=spec.quiet.timezone, template=spec.template, status="draft", created_by=who.username,
            created_at=at, starts_at=spec.starts_at, ends_at=spec.ends_at, department=spec.department.strip(),
            product=spec.product.strip(), budget=None if spec.budget is None else parse_amount(spec.budget, "budget"),
            variants=[{"key": v.key, "weight": v.weight, "template": v.template} for v in spec.variants] or None,
            visit_due_days=spec.visit_due_days)
        s.add(row)
        s.flush()
        audit.record(s, who, "campaign.create", "campaign", row.id,
                     after={"name": spec.name, "channel": spec.channel, "control_share_bp": spec.control_share_bp,
                            "starts_at": spec.starts_at.isoformat() if spec.starts_at else None,
                            "ends_at": spec.ends_at.isoformat() if spec.ends_at else None,
                            "department": spec.department, "product": spec.product,
                            "budget": None if spec.budget is None else str(spec.budget),
                            "variants": [v.key for v in spec.variants]})
        result = Campaign.from_row(row)
        uow.commit()
    return result


def get_campaign(uow: UnitOfWork, who: Principal, campaign_id: int) -> Campaign:
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        return Campaign.from_row(campaign_row(uow.session, who, campaign_id))


def list_campaigns(uow: UnitOfWork, who: Principal) -> list[Campaign]:
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        rows = uow.session.execute(select(CampaignRow).where(CampaignRow.tenant_id == who.tenant_id)
                                   .order_by(CampaignRow.id)).scalars()
        return [Campaign.from_row(r) for r in rows]


# --- launch -----------------------------------------------------------------------------------------------


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


def campaign_arms(excluded: npt.NDArray[np.bool_], control: npt.NDArray[np.bool_]) -> list[str]:
    """Each target's arm: excluded wins over control; the rest are treated."""
    return ["excluded" if e else ("control" if c else "treatment") for e, c in zip(excluded, control, strict=True)]


def _policy_flags(s: Session, who: Principal, row: CampaignRow, ids: npt.NDArray[np.int64], policy: ContactPolicy,
                  at: datetime) -> dict[str, npt.NDArray[np.bool_]]:
    """The bank's policy exclusions per target: global holdout, another campaign's running control group,
    the bank-wide cap of contacts (waiting messages count)."""
    flags = {GLOBAL_HOLDOUT: holdout_mask(who.tenant_id, ids, policy.holdout_share_bp)}
    windows = control_windows(s, who.tenant_id, [int(c) for c in ids], at)
    flags[CONTROL_ELSEWHERE] = np.array([any(w.campaign_id != row.id and w.covers(at) for w in windows.get(int(c), ()))
                                         for c in ids], dtype=bool)
    if policy.cap_max_contacts:
        counts = recent_contacts(s, who.tenant_id, policy.window_start(at), at).group_by("customer_id").len()
        over = set(counts.filter(pl.col("len") >= policy.cap_max_contacts).get_column("customer_id").to_list())
        flags[BANK_CAP] = np.array([int(c) in over for c in ids], dtype=bool)
    return flags


def _assign(s: Session, who: Principal, row: CampaignRow, targets: pl.DataFrame, label: str, *, at: datetime,
            policy: ContactPolicy) -> tuple[pl.DataFrame, list[str], npt.NDArray[np.bool_], dict[str, int]]:
    """Flag exclusions (the campaign's and the bank's policy), hold out the control group and write one
    assignment row per target; returns the treated targets, every target's arm, the control mask and the
    excluded count per reason."""
    cap = cap_of(row)
    flags = exclusion_flags(targets, channel=row.channel, at=at, cap=cap, opt_outs=opt_outs(s, who.tenant_id),
                            contacts=recent_contacts(s, who.tenant_id, cap.window_start(at), at))
    ids = targets.get_column("customer_id").to_numpy()
    excluded_mask = flags.get_column("excluded").to_numpy()
    first_reason = flags.select(
        pl.coalesce([pl.when(pl.col(r)).then(pl.lit(r)) for r in EXCLUSION_REASONS])).to_series().to_list()
    excluded = {r: int(flags.get_column(r).sum()) for r in EXCLUSION_REASONS}
    for reason, mask in _policy_flags(s, who, row, ids, policy, at).items():
        fresh = mask & ~excluded_mask
        excluded[reason] = int(fresh.sum())
        first_reason = [reason if f else r for f, r in zip(fresh, first_reason, strict=True)]
        excluded_mask = excluded_mask | mask
    # the control group is drawn inside each stratum (segment, branch, score band) of the eligible targets
    eligible = ~excluded_mask
    control = np.zeros(len(ids), dtype=bool)
    control[eligible] = stratified_control(
        f"{who.tenant_id}:{row.id}", ids[eligible], strata(targets.filter(pl.Series(eligible))),
        row.control_share_bp)[0]
    arms = campaign_arms(excluded_mask, control)
    offer_ids = targets.get_column("offer_id").to_list() if "offer_id" in targets.columns else [None] * len(ids)
    bulk_insert(s, AssignmentRow, [
        {"tenant_id": who.tenant_id, "campaign_id": row.id, "customer_id": int(c), "arm": a,
         "segment_label": label, "excluded_reason": r, "offer_id": o}
        for c, a, r, o in zip(ids, arms, first_reason, offer_ids, strict=True)
    ])
    return targets.filter(pl.Series(arms, dtype=pl.String) == "treatment"), arms, control, excluded


def _create_visit_tasks(s: Session, tenant_id: int, row: CampaignRow, treated: pl.DataFrame, at: datetime) -> int:
    """One open task per treated customer for their officer, due the campaign's visit days after the launch;
    the visit counts as a contact now."""
    officers = (treated.get_column("officer_user_id").to_list() if "officer_user_id" in treated.columns
                else [None] * treated.height)
    tids = treated.get_column("customer_id").to_list()
    due = at + timedelta(days=visit_due_days(row))
    bulk_insert(s, VisitTaskRow, [
        {"tenant_id": tenant_id, "campaign_id": row.id, "customer_id": int(c),
         "officer_user_id": None if o is None else int(o), "status": "open", "note": "", "created_at": at,
         "due_at": due}
        for c, o in zip(tids, officers, strict=True)
    ])
    record_contacts(s, tenant_id, row.id, "visit", [int(c) for c in tids], at)
    return len(tids)


def launch_campaign(
    uow: UnitOfWork, who: Principal, campaign_id: int, customers: pl.DataFrame, *, at: datetime,
    bank_name: str = "", link_base: str = "/t/", token_secret: str = "microlend-marketing",
) -> LaunchSummary:
    """Select targets, apply every exclusion (the campaign's and the bank's contact policy), hold out the
    control group, and put the treatment's messages in the outbox (scheduled at the campaign's start, after
    quiet hours, with links on the bank's public host) or create visit tasks for their officers. Where the
    policy asks for it, only a campaign a second person approved is launched. Set-based."""
    who.require(Permission.MANAGE_CAMPAIGNS)
    with uow:
        s = uow.session
        row = campaign_row(s, who, campaign_id)
        if row.status not in ("draft", "approved"):
            raise Conflict(f"campaign {campaign_id} was already launched", field="campaign_id")
        policy = policy_of(s, who.tenant_id)
        if policy.launch_approval and row.approved_by is None:
            raise Conflict(f"campaign {campaign_id} needs a second person's approval before launch",
                           field="campaign_id")
        if row.ends_at is not None and at >= row.ends_at:
            raise Conflict(f"campaign {campaign_id} ended at {row.ends_at.isoformat()}", field="campaign_id")
        targets, label = _targets(s, who, row, customers)
        targets = targets.unique("customer_id", keep="first").sort("customer_id")
        treated, arms, control, excluded = _assign(s, who, row, targets, label, at=at, policy=policy)
        scheduled_at = earliest_send(at, row.channel, campaign_quiet=quiet_of(row), policy=policy,
                                     starts_at=row.starts_at)
        refuse_over_budget(row.budget, campaign_spent(s, who.tenant_id, row.id), treated.height,
                           unit_cost(s, who.tenant_id, row.channel), what=f"launching campaign {campaign_id}")
        messages = tasks = 0
        if row.channel == "visit":
            tasks = _create_visit_tasks(s, who.tenant_id, row, treated, at)
        elif row.variants:
            messages = _fill_variants(s, who.tenant_id, row, treated, scheduled_at, bank_name,
                                      absolute_link(policy.public_host, link_base), token_secret)
        else:
            messages = _fill_outbox(s, who.tenant_id, row, treated, scheduled_at, bank_name,
                                    absolute_link(policy.public_host, link_base), token_secret)
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


def _fill_variants(s: Session, tenant_id: int, row: CampaignRow, treated: pl.DataFrame, scheduled_at: datetime,
                   bank_name: str, link_base: str, secret: str) -> int:
    """Each treated customer's stable variant stored on their assignment, and their message in its text."""
    variants = variants_of(row)
    ids = treated.get_column("customer_id").to_list()
    keys = assign_variants(f"{tenant_id}:{row.id}", ids, variants)
    frame = treated.with_columns(pl.Series("variant", keys, dtype=pl.String))
    count = 0
    for v in variants:
        part = frame.filter(pl.col("variant") == v.key)
        chosen = [int(c) for c in part.get_column("customer_id").to_list()]
        for start in range(0, len(chosen), IN_CHUNK):
            s.execute(update(AssignmentRow).where(
                AssignmentRow.tenant_id == tenant_id, AssignmentRow.campaign_id == row.id,
                AssignmentRow.customer_id.in_(chosen[start:start + IN_CHUNK])).values(variant=v.key)
                .execution_options(synchronize_session=False))
        count += fill_outbox(s, tenant_id, row, part, scheduled_at, bank_name, link_base, secret,
                             channel=row.channel, template=v.template)
    return count


def _fill_outbox(s: Session, tenant_id: int, row: CampaignRow, treated: pl.DataFrame, scheduled_at: datetime,
                 bank_name: str, link_base: str, secret: str) -> int:
    return fill_outbox(s, tenant_id, row, treated, scheduled_at, bank_name, link_base, secret,
                       channel=row.channel, template=row.template)


def fill_outbox(s: Session, tenant_id: int, row: CampaignRow, treated: pl.DataFrame, scheduled_at: datetime,
                bank_name: str, link_base: str, secret: str, *, channel: str, template: str | None) -> int:
    """The treated customers' messages on `channel` in `template` (the default texts when None), each with
    its tracked link, scheduled at `scheduled_at`."""
    if template:
        custom = {(channel, row.locale): template}
        templates = MessageTemplates(custom, invitations=custom if row.run_id is None else None)
    else:
        templates = MessageTemplates()
    cache = RenderCache(templates, channel, row.locale, bank_name)
    wanted = [c for c in ("customer_id", "offer_limit", "offer_rate", "offer_apr", "offer_expires_on")
              if c in treated.columns]
    batch: list[dict[str, Any]] = []
    count = 0
    for r in treated.select(wanted).iter_rows(named=True):
        token = tracking_token(row.id, r["customer_id"], secret)
        batch.append({"tenant_id": tenant_id, "campaign_id": row.id, "customer_id": r["customer_id"],
                      "channel": channel, "locale": row.locale,
                      "body": cache.render(_offer_terms(r), link_base + token),
                      "token": token, "status": "scheduled", "scheduled_at": scheduled_at})
        if len(batch) >= _OUTBOX_BATCH:
            bulk_insert(s, OutboxRow, batch)
            count += len(batch)
            batch = []
    if batch:
        bulk_insert(s, OutboxRow, batch)
        count += len(batch)
    return count
