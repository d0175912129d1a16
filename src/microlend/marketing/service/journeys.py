"""Journey, variant and calendar use cases (客户旅程、A/B 文案、营销日历): add a campaign's follow-up steps,
advance every due step of the bank (the worker's hourly job), the funnel per step and per variant, and the
calendar of campaigns by department and product with what each spent against its budget.

A step advances set-based: the previous step's customers, their clicks and applications are read as whole
sets (one query each) and the step's customers chosen by anti-joins in Polars; the bank's contact policy
(opt-outs, its cap and the campaign's, global holdout, other campaigns' control groups, quiet hours) applies
as at launch, the control group is never in a journey (only the treated are), and a step whose contacts
would take the campaign over its budget is stopped with the reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import numpy as np
import polars as pl
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.delivery import absolute_link
from microlend.core.errors import Conflict, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.marketing.contact_policy import earliest_send
from microlend.marketing.journeys import (
    MAX_STEPS,
    STOPPED_BUDGET,
    StepSpec,
    VariantResult,
    id_frame,
    refuse_over_budget,
    select_next,
    step_due,
    variant_results,
)
from microlend.marketing.service.campaigns import _policy_flags, fill_outbox, variants_of
from microlend.marketing.service.common import (
    bulk_insert,
    campaign_row,
    campaign_spent,
    cap_of,
    policy_of,
    quiet_of,
    recent_contacts,
    record_contacts,
    spent_by_campaign,
    unit_cost,
)
from microlend.marketing.service.outbox import ConsentCheck, customers_table_consent
from microlend.marketing.sources import applications_for_funnel, customer_officers
from microlend.marketing.tables import (
    AssignmentRow,
    CampaignRow,
    JourneyContactRow,
    JourneyStepRow,
    OfferRow,
    OptOutRow,
    TrackingEventRow,
    VisitTaskRow,
)

CONVERSION_KINDS = ("applied", "approved", "disbursed")


@dataclass(frozen=True)
class JourneyStep:
    id: int
    campaign_id: int
    position: int
    after_days: int
    condition: str
    action: str
    template: str | None
    status: str
    stop_reason: str | None
    candidates: int
    contacted: int
    blocked: dict[str, int]
    done_at: datetime | None

    @classmethod
    def from_row(cls, r: JourneyStepRow) -> JourneyStep:
        return cls(r.id, r.campaign_id, r.position, r.after_days, r.condition, r.action, r.template, r.status,
                   r.stop_reason, r.candidates, r.contacted, dict(r.blocked or {}), r.done_at)


def add_journey_step(uow: UnitOfWork, who: Principal, campaign_id: int, spec: StepSpec) -> JourneyStep:
    """Append a follow-up step to a campaign not launched yet."""
    who.require(Permission.MANAGE_CAMPAIGNS)
    with uow:
        s = uow.session
        row = campaign_row(s, who, campaign_id)
        if row.status not in ("draft", "approved"):
            raise Conflict(f"campaign {campaign_id} was already launched: its journey is fixed", field="campaign_id")
        if spec.template is not None and spec.action != "visit":
            from microlend.marketing.campaigns import MessageTemplates
            MessageTemplates({(spec.action, row.locale): spec.template})
        last = s.execute(select(func.max(JourneyStepRow.position)).where(
            JourneyStepRow.campaign_id == campaign_id)).scalar() or 0
        if last >= MAX_STEPS:
            raise Conflict(f"campaign {campaign_id}: at most {MAX_STEPS} follow-up steps", field="campaign_id")
        step = JourneyStepRow(tenant_id=who.tenant_id, campaign_id=campaign_id, position=int(last) + 1,
                              after_days=spec.after_days, condition=spec.condition, action=spec.action,
                              template=spec.template, status="waiting", candidates=0, contacted=0)
        s.add(step)
        s.flush()
        audit.record(s, who, "campaign.journey_step.add", "campaign", campaign_id, after={
            "position": step.position, "after_days": spec.after_days, "condition": spec.condition,
            "action": spec.action})
        result = JourneyStep.from_row(step)
        uow.commit()
    return result


def journey_steps(uow: UnitOfWork, who: Principal, campaign_id: int) -> list[JourneyStep]:
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        campaign_row(uow.session, who, campaign_id)
        return [JourneyStep.from_row(r) for r in uow.session.execute(select(JourneyStepRow).where(
            JourneyStepRow.tenant_id == who.tenant_id, JourneyStepRow.campaign_id == campaign_id)
            .order_by(JourneyStepRow.position)).scalars()]


# --- advancing --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JourneyRound:
    """What one round of the journeys did: steps advanced, stopped, customers reached."""

    steps_done: int
    steps_stopped: int
    contacted: int
    messages: int
    visit_tasks: int


def _ids(s: Session, q: object) -> pl.DataFrame:
    return id_frame(int(c) for c in s.execute(q).scalars())  # type: ignore[call-overload]


def _previous(s: Session, tenant: int, row: CampaignRow, step: JourneyStepRow) -> pl.DataFrame:
    """The customers the previous step reached: the treated at launch for the first step."""
    if step.position == 1:
        return _ids(s, select(AssignmentRow.customer_id).where(
            AssignmentRow.tenant_id == tenant, AssignmentRow.campaign_id == row.id, AssignmentRow.arm == "treatment"))
    return _ids(s, select(JourneyContactRow.customer_id).join(
        JourneyStepRow, JourneyStepRow.id == JourneyContactRow.step_id).where(
        JourneyContactRow.tenant_id == tenant, JourneyContactRow.campaign_id == row.id,
        JourneyStepRow.position == step.position - 1))


def _due_steps(s: Session, tenant: int, now: datetime) -> list[tuple[JourneyStepRow, CampaignRow, datetime | None]]:
    """Each waiting step of a launched campaign with when its previous step was done (None: not yet)."""
    rows = s.execute(select(JourneyStepRow, CampaignRow).join(CampaignRow, CampaignRow.id == JourneyStepRow.campaign_id)
                     .where(JourneyStepRow.tenant_id == tenant, JourneyStepRow.status == "waiting",
                            CampaignRow.launched_at.is_not(None))
                     .order_by(JourneyStepRow.campaign_id, JourneyStepRow.position)).all()
    found: list[tuple[JourneyStepRow, CampaignRow, datetime | None]] = []
    for step, camp in rows:
        if step.position == 1:
            previous_done, previous_status = camp.launched_at, "done"
        else:
            prev = s.execute(select(JourneyStepRow.status, JourneyStepRow.done_at).where(
                JourneyStepRow.campaign_id == camp.id, JourneyStepRow.position == step.position - 1)).one()
            previous_status, previous_done = prev[0], prev[1]
        if previous_status == "stopped":
            found.append((step, camp, None))
        elif previous_status == "done" and step_due(previous_done, step.after_days, now):
            found.append((step, camp, previous_done))
    return found


def _stop(s: Session, who: Principal, step: JourneyStepRow, reason: str, at: datetime, code: str) -> None:
    step.status, step.stop_reason, step.done_at = "stopped", reason[:200], at
    audit.record(s, who, "campaign.journey_step.stop", "campaign", step.campaign_id,
                 after={"position": step.position, "reason": code, "detail": reason[:200]})


def advance_journeys(uow: UnitOfWork, who: Principal, *, now: datetime, bank_name: str = "",
                     link_base: str = "/t/", token_secret: str = "microlend-marketing",
                     consent: ConsentCheck = customers_table_consent) -> JourneyRound:
    """Advance every due journey step of the bank (each in its own transaction); `consent` says who agrees
    to marketing now (checked again at send time for messages)."""
    who.require(Permission.MANAGE_CAMPAIGNS)
    with uow:
        due = [(st.id, camp.id, prev) for st, camp, prev in _due_steps(uow.session, who.tenant_id, now)]
    done = stopped = contacted = messages = tasks = 0
    for step_id, campaign_id, previous_done in due:
        outcome = _advance_step(uow, who, step_id, campaign_id, previous_done, now, bank_name, link_base,
                                token_secret, consent)
        if outcome is None:
            stopped += 1
            continue
        done += 1
        contacted += outcome[0]
        messages += outcome[1]
        tasks += outcome[2]
    return JourneyRound(done, stopped, contacted, messages, tasks)


def _outcome_sets(uow: UnitOfWork, who: Principal, campaign_id: int, previous: pl.DataFrame, since: datetime
                  ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Who of `previous` clicked a link of the campaign, and who applied (any campaign or none) since."""
    tenant = who.tenant_id
    with uow:
        s = uow.session
        clicked = _ids(s, select(TrackingEventRow.customer_id).where(
            TrackingEventRow.tenant_id == tenant, TrackingEventRow.campaign_id == campaign_id,
            TrackingEventRow.kind == "clicked").distinct())
        applied = _ids(s, select(TrackingEventRow.customer_id).where(
            TrackingEventRow.tenant_id == tenant, TrackingEventRow.kind.in_(CONVERSION_KINDS),
            TrackingEventRow.at >= since).distinct())
    ids = previous.get_column("customer_id").to_list()
    real = {int(c) for c, kind, _at, _cid in applications_for_funnel(uow, who, ids, since) if kind in CONVERSION_KINDS}
    if real:
        applied = pl.concat([applied, id_frame(real)]).unique()
    return clicked, applied


def _blocked(s: Session, who: Principal, camp: CampaignRow, action: str, ids: list[int], consenting: set[int],
             now: datetime) -> tuple[pl.DataFrame, dict[str, int]]:
    """The customers the policy keeps from this step, and how many per reason (first reason wins)."""
    tenant = who.tenant_id
    arr = np.array(ids, dtype=np.int64)
    flags: dict[str, np.ndarray] = {}
    flags["no_consent"] = np.array([c not in consenting for c in ids], dtype=bool)
    opted = {int(c) for c in s.execute(select(OptOutRow.customer_id).where(
        OptOutRow.tenant_id == tenant, OptOutRow.channel == action)).scalars()}
    flags["opted_out"] = np.array([c in opted for c in ids], dtype=bool)
    cap = cap_of(camp)
    counts = recent_contacts(s, tenant, cap.window_start(now), now).group_by("customer_id").len()
    capped = set(counts.filter(pl.col("len") >= cap.max_messages).get_column("customer_id").to_list())
    flags["frequency_cap"] = np.array([c in capped for c in ids], dtype=bool)
    flags.update(_policy_flags(s, who, camp, arr, policy_of(s, tenant), now))
    taken = np.zeros(len(ids), dtype=bool)
    reasons: dict[str, int] = {}
    for reason, mask in flags.items():
        fresh = mask & ~taken
        if fresh.any():
            reasons[reason] = int(fresh.sum())
        taken |= mask
    return id_frame(arr[taken].tolist()), reasons


def _advance_step(uow: UnitOfWork, who: Principal, step_id: int, campaign_id: int, previous_done: datetime | None,
                  now: datetime, bank_name: str, link_base: str, secret: str, consent: ConsentCheck
                  ) -> tuple[int, int, int] | None:
    tenant = who.tenant_id
    with uow:
        s = uow.session
        step = s.get(JourneyStepRow, step_id)
        camp = s.get(CampaignRow, campaign_id)
        assert step is not None and camp is not None and camp.launched_at is not None
        if previous_done is None:
            _stop(s, who, step, "the previous step was stopped", now, "previous_stopped")
            uow.commit()
            return None
        if camp.ends_at is not None and now >= camp.ends_at:
            _stop(s, who, step, f"the campaign ended at {camp.ends_at.isoformat()}", now, "campaign_ended")
            uow.commit()
            return None
        previous = _previous(s, tenant, camp, step)
        condition, action, template = step.condition, step.action, step.template
        launched = camp.launched_at
    clicked, applied = _outcome_sets(uow, who, campaign_id, previous, launched)
    chosen = select_next(previous, clicked, applied, condition)
    ids = chosen.get_column("customer_id").to_list()
    consenting = consent(uow, who, ids) if ids else set()
    officers = customer_officers(uow, who, ids) if ids and action == "visit" else {}
    with uow:
        s = uow.session
        step = s.get(JourneyStepRow, step_id)
        camp = s.get(CampaignRow, campaign_id)
        assert step is not None and camp is not None
        if step.status != "waiting":  # advanced meanwhile by another worker
            return None
        blocked, reasons = _blocked(s, who, camp, action, ids, consenting, now)
        reach = select_next(chosen, id_frame([]), id_frame([]), "no_click", blocked)
        reached = [int(c) for c in reach.get_column("customer_id").to_list()]
        step.candidates, step.blocked = len(ids), reasons
        try:
            refuse_over_budget(camp.budget, campaign_spent(s, tenant, camp.id), len(reached),
                               unit_cost(s, tenant, action), what=f"journey step {step.position}")
        except Conflict as exc:
            _stop(s, who, step, exc.message, now, STOPPED_BUDGET)
            uow.commit()
            return None
        messages = tasks = 0
        if action == "visit":
            bulk_insert(s, VisitTaskRow, [
                {"tenant_id": tenant, "campaign_id": camp.id, "customer_id": c, "officer_user_id": officers.get(c),
                 "status": "open", "note": f"journey step {step.position}", "created_at": now} for c in reached])
            record_contacts(s, tenant, camp.id, "visit", reached, now)
            tasks = len(reached)
        elif reached:
            policy = policy_of(s, tenant)
            scheduled = earliest_send(now, action, campaign_quiet=quiet_of(camp), policy=policy,
                                      starts_at=camp.starts_at)
            frame = _with_offers(s, tenant, camp, reach)
            messages = fill_outbox(s, tenant, camp, frame, scheduled, bank_name,
                                   absolute_link(policy.public_host, link_base), secret, channel=action,
                                   template=template or (camp.template if action == camp.channel else None))
        bulk_insert(s, JourneyContactRow, [{"tenant_id": tenant, "campaign_id": camp.id, "step_id": step.id,
                                            "customer_id": c, "at": now} for c in reached])
        step.status, step.contacted, step.done_at = "done", len(reached), now
        audit.record(s, who, "campaign.journey_step.advance", "campaign", camp.id, after={
            "position": step.position, "candidates": len(ids), "contacted": len(reached), "blocked": reasons})
        uow.commit()
    return len(reached), messages, tasks


def _with_offers(s: Session, tenant: int, camp: CampaignRow, reach: pl.DataFrame) -> pl.DataFrame:
    """The reached customers with their offer's figures when the campaign targets a pre-approval run."""
    if camp.run_id is None:
        return reach
    offers = s.execute(select(OfferRow.customer_id, OfferRow.limit, OfferRow.annual_rate, OfferRow.apr,
                              OfferRow.expires_on).where(OfferRow.tenant_id == tenant,
                                                         OfferRow.run_id == camp.run_id)).all()
    frame = pl.DataFrame([tuple(o) for o in offers], orient="row", schema={
        "customer_id": pl.Int64, "offer_limit": pl.Object, "offer_rate": pl.Object, "offer_apr": pl.Object,
        "offer_expires_on": pl.Date})
    return reach.join(frame, on="customer_id", how="left")


# --- funnels per step and per variant ---------------------------------------------------------------------


@dataclass(frozen=True)
class StepFunnel:
    """A step's funnel: whom it reached, and of them who clicked and who applied after it."""

    position: int
    action: str
    condition: str
    status: str
    stop_reason: str | None
    candidates: int
    contacted: int
    clicked: int
    applied: int


def _responders(s: Session, tenant: int, campaign_id: int, since: datetime) -> tuple[set[int], set[int]]:
    clicked = {int(c) for c in s.execute(select(TrackingEventRow.customer_id).where(
        TrackingEventRow.tenant_id == tenant, TrackingEventRow.campaign_id == campaign_id,
        TrackingEventRow.kind == "clicked", TrackingEventRow.at >= since).distinct()).scalars()}
    applied = {int(c) for c in s.execute(select(TrackingEventRow.customer_id).where(
        TrackingEventRow.tenant_id == tenant, TrackingEventRow.kind.in_(CONVERSION_KINDS),
        TrackingEventRow.at >= since).distinct()).scalars()}
    return clicked, applied


def step_funnels(uow: UnitOfWork, who: Principal, campaign_id: int) -> list[StepFunnel]:
    """The launch (step 0) and each follow-up step with whom it reached and their responses after it."""
    who.require(Permission.VIEW_CAMPAIGNS)
    tenant = who.tenant_id
    with uow:
        s = uow.session
        camp = campaign_row(s, who, campaign_id)
        steps = s.execute(select(JourneyStepRow).where(JourneyStepRow.tenant_id == tenant,
                                                       JourneyStepRow.campaign_id == campaign_id)
                          .order_by(JourneyStepRow.position)).scalars().all()
        if camp.launched_at is None:
            return [StepFunnel(st.position, st.action, st.condition, st.status, st.stop_reason, 0, 0, 0, 0)
                    for st in steps]
        treated = {int(c) for c in s.execute(select(AssignmentRow.customer_id).where(
            AssignmentRow.tenant_id == tenant, AssignmentRow.campaign_id == campaign_id,
            AssignmentRow.arm == "treatment")).scalars()}
        clicked, applied = _responders(s, tenant, campaign_id, camp.launched_at)
        out = [StepFunnel(0, camp.channel, "", "done", None, len(treated), len(treated), len(treated & clicked),
                          len(treated & applied))]
        for st in steps:
            reached = {int(c) for c in s.execute(select(JourneyContactRow.customer_id).where(
                JourneyContactRow.step_id == st.id)).scalars()}
            if st.done_at is not None and reached:
                c_after, a_after = _responders(s, tenant, campaign_id, st.done_at)
            else:
                c_after, a_after = set(), set()
            out.append(StepFunnel(st.position, st.action, st.condition, st.status, st.stop_reason, st.candidates,
                                  len(reached), len(reached & c_after), len(reached & a_after)))
        return out


def variant_report(uow: UnitOfWork, who: Principal, campaign_id: int, confidence: float = 0.95
                   ) -> list[VariantResult]:
    """Each message variant's treated, responders (clicked) and converters (applied or later) with Wilson
    intervals, and each variant's conversion rate against the first's (Newcombe's interval); empty for a
    campaign without variants."""
    who.require(Permission.VIEW_CAMPAIGNS)
    tenant = who.tenant_id
    with uow:
        s = uow.session
        camp = campaign_row(s, who, campaign_id)
        variants = variants_of(camp)
        if not variants or camp.launched_at is None:
            return variant_results({}, [v.key for v in variants], confidence) if variants else []
        rows = s.execute(select(AssignmentRow.customer_id, AssignmentRow.variant).where(
            AssignmentRow.tenant_id == tenant, AssignmentRow.campaign_id == campaign_id,
            AssignmentRow.arm == "treatment", AssignmentRow.variant.is_not(None))).all()
        clicked, applied = _responders(s, tenant, campaign_id, camp.launched_at)
    frame = pl.DataFrame([(int(c), str(v)) for c, v in rows], schema={"customer_id": pl.Int64, "variant": pl.String},
                         orient="row")
    counted = frame.with_columns(pl.col("customer_id").is_in(list(clicked)).alias("responded"),
                                 pl.col("customer_id").is_in(list(applied)).alias("converted")).group_by(
        "variant").agg(pl.len().alias("n"), pl.col("responded").sum(), pl.col("converted").sum())
    counts = {str(r["variant"]): (int(r["n"]), int(r["responded"]), int(r["converted"]))
              for r in counted.iter_rows(named=True)}
    return variant_results(counts, [v.key for v in variants], confidence)


# --- the calendar -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalendarLine:
    """A campaign in the month's calendar with its department, product, budget and spend."""

    campaign_id: int
    name: str
    department: str
    product: str
    channel: str
    status: str
    day: date
    budget: Decimal | None
    spent: Decimal

    @property
    def over(self) -> bool:
        return self.budget is not None and self.spent > self.budget


def campaign_budget(uow: UnitOfWork, who: Principal, campaign_id: int) -> tuple[Decimal | None, Decimal]:
    """The campaign's budget (None: none) and what its contacts cost so far."""
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        row = campaign_row(uow.session, who, campaign_id)
        return row.budget, campaign_spent(uow.session, who.tenant_id, campaign_id)


def parse_month(value: str) -> date:
    try:
        if len(value) != 7:
            raise ValueError(value)
        return date.fromisoformat(value + "-01")
    except ValueError:
        raise ValidationError(f"month: as YYYY-MM, got '{value}'", field="month") from None


def campaign_calendar(uow: UnitOfWork, who: Principal, month: date, *, department: str = "", product: str = ""
                      ) -> list[CalendarLine]:
    """The bank's campaigns starting in `month` (their start, else launch, else creation), by department
    and product, with their budget and what their contacts cost so far."""
    who.require(Permission.VIEW_CAMPAIGNS)
    first = month.replace(day=1)
    nxt = (first + timedelta(days=32)).replace(day=1)
    with uow:
        s = uow.session
        q = select(CampaignRow).where(CampaignRow.tenant_id == who.tenant_id)
        if department:
            q = q.where(CampaignRow.department == department)
        if product:
            q = q.where(CampaignRow.product == product)
        rows = s.execute(q.order_by(CampaignRow.id)).scalars().all()
        chosen = []
        for r in rows:
            when = r.starts_at or r.launched_at or r.created_at
            if first <= when.date() < nxt:
                chosen.append((r, when.date()))
        spent = spent_by_campaign(s, who.tenant_id, [r.id for r, _ in chosen])
    lines = [CalendarLine(r.id, r.name, r.department or "", r.product or "", r.channel, r.status, day, r.budget,
                          spent.get(r.id, Decimal(0))) for r, day in chosen]
    return sorted(lines, key=lambda x: (x.department, x.product, x.day, x.campaign_id))
