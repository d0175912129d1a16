"""Pages of the marketer (营销人员): segments with a live count, pre-approval runs, campaigns (create, launch,
send the outbox) and the campaign report with the uplift model; and the loan officer's own visit tasks
(走访任务) from campaigns, with the visit's outcome recorded in place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, BackgroundTasks, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from microlend.api.deps import Count, Id, OptionalCount, UnitOfWorkDep
from microlend.core import delivery
from microlend.core.errors import DomainError, NotFound, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.marketing import service
from microlend.marketing.attribution import FUNNEL_STAGES
from microlend.marketing.campaigns import QuietHours
from microlend.marketing.contact_policy import POLICY_REASONS, ContactPolicy, parse_hhmm
from microlend.marketing.customerbase import customer_frame
from microlend.marketing.journeys import ACTIONS, CONDITIONS, StepSpec, Variant
from microlend.marketing.segments import DEFAULT_NAMESPACE, EXCLUSION_REASONS, Channel, FrequencyCap
from microlend.web.pages import current_principal, login_redirect, page

router = APIRouter(include_in_schema=False)

NAV: list[tuple[str, str, Permission]] = [
    ("/marketing/segments", "Segments", Permission.MANAGE_CAMPAIGNS),
    ("/marketing/runs", "Pre-approval", Permission.MANAGE_CAMPAIGNS),
    ("/marketing/campaigns", "Campaigns", Permission.MANAGE_CAMPAIGNS),
    ("/marketing/calendar", "Campaign calendar", Permission.MANAGE_CAMPAIGNS),
    ("/tasks/visits", "My visit tasks", Permission.RECOMMEND),
    ("/marketing/policy", "Contact policy", Permission.MANAGE_MESSAGING),
    ("/marketing/costs", "Channel costs and margin", Permission.MANAGE_CAMPAIGNS),
]

#: outcomes an officer can record at the door, as the service names them
VISIT_OUTCOMES = ("visited", "unreachable", "applied", "not_interested")
STATUS_BADGES = {"draft": "warn", "approved": "warn", "launched": "ok", "running": "warn", "completed": "ok"}
_MASKED = {"customer_id", "officer_user_id", "created_at", "birth_date", "marketing_consent"}


def _now() -> datetime:
    return datetime.now(UTC)


def _error(request: Request, who: Principal, exc: DomainError) -> HTMLResponse:
    return page(request, who, "error.html", status_code=exc.status_code, message=exc.message)


def _marketer(request: Request, uow: UnitOfWorkDep) -> Principal | Response:
    """The signed-in marketer; campaign pages are for those who manage campaigns (a credit officer, who may
    read campaigns through the API for their visit tasks, gets 403 here)."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    if not who.can(Permission.MANAGE_CAMPAIGNS):
        return page(request, who, "error.html", status_code=403, message="forbidden")
    return who


def _customers(uow: UnitOfWork, who: Principal) -> pl.DataFrame:
    return customer_frame(uow, who, _now().date())


# ------------------------------------------------------------------------------------------ segments


@dataclass(frozen=True)
class SegmentLine:
    name: str
    version: int
    versions: int
    expression: str
    description: str
    created_by: str
    created_at: datetime


def _segment_lines(uow: UnitOfWork, who: Principal) -> list[SegmentLine]:
    versions = service.list_segments(uow, who)
    latest: dict[str, service.SegmentVersion] = {}
    counts: dict[str, int] = {}
    for v in versions:
        latest[v.name] = v
        counts[v.name] = counts.get(v.name, 0) + 1
    return [SegmentLine(v.name, v.version, counts[v.name], v.expression, v.description, v.created_by, v.created_at)
            for v in sorted(latest.values(), key=lambda x: x.name)]


@router.get("/marketing/segments", response_class=HTMLResponse)
def segments(request: Request, uow: UnitOfWorkDep) -> Response:
    """客群 the bank's segments, latest version of each."""
    who = _marketer(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        lines = _segment_lines(uow, who)
    except DomainError as exc:
        return _error(request, who, exc)
    return page(request, who, "marketing/segments.html", segments=lines)


def _segment_form(request: Request, who: Principal, *, form: dict[str, str], error: str = "",
                  status_code: int = 200, editing: bool = False) -> HTMLResponse:
    return page(request, who, "marketing/segment_form.html", status_code=status_code, form=form, error=error,
                editing=editing, features=sorted(DEFAULT_NAMESPACE.items()), channels=Channel.ALL)


@router.get("/marketing/segments/new", response_class=HTMLResponse)
def segment_new(request: Request, uow: UnitOfWorkDep) -> Response:
    who = _marketer(request, uow)
    if not isinstance(who, Principal):
        return who
    return _segment_form(request, who, form={"name": "", "expression": "", "description": "", "channel": "sms"})


@router.get("/marketing/segments/{name}/edit", response_class=HTMLResponse)
def segment_edit(request: Request, uow: UnitOfWorkDep, name: str) -> Response:
    who = _marketer(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        v = service.get_segment(uow, who, name)
    except DomainError as exc:
        return _error(request, who, exc)
    return _segment_form(request, who, editing=True, form={
        "name": v.name, "expression": v.expression, "description": v.description, "channel": "sms",
        "version": str(v.version)})


@router.post("/marketing/segments/check", response_class=HTMLResponse)
def segment_check(request: Request, uow: UnitOfWorkDep, expression: Annotated[str, Form(max_length=2000)] = "",
                  channel: Annotated[str, Form()] = "sms") -> Response:
    """The live panel under the expression field (htmx): the refusal naming what is wrong, or the count,
    the exclusions that always apply with their counts, and a masked sample."""
    who = _marketer(request, uow)
    if not isinstance(who, Principal):
        return who
    if not expression.strip():
        return page(request, who, "marketing/_live.html", empty=True, error="", count=None, sample=[], columns=[])
    try:
        count = service.preview_expression(uow, who, expression, _customers(uow, who),
                                           channel=channel if channel in Channel.ALL else "sms", at=_now())
    except DomainError as exc:
        if exc.status_code in (401, 403):
            return _error(request, who, exc)
        return page(request, who, "marketing/_live.html", empty=False, error=exc.message, count=None, sample=[],
                    columns=[])
    columns = [c for c in ("age", "industry", "customer_kind", "branch", "months_on_book")
               if count.sample and c in count.sample[0]]
    sample = [{"ref": _mask_ref(int(row["customer_id"])), **{c: row.get(c) for c in columns}}
              for row in count.sample]
    return page(request, who, "marketing/_live.html", empty=False, error="", count=count, sample=sample,
                columns=columns, reasons=EXCLUSION_REASONS)


def _mask_ref(customer_id: int) -> str:
    """A sample row shows no identity: only the last two digits of the customer number."""
    return "*" * 4 + f"{customer_id % 100:02d}"


@router.post("/marketing/segments", response_class=HTMLResponse)
def segment_save(request: Request, uow: UnitOfWorkDep, name: Annotated[str, Form(max_length=100)],
                 expression: Annotated[str, Form(max_length=2000)],
                 description: Annotated[str, Form(max_length=500)] = "") -> Response:
    """保存客群 store the expression as the segment's next version."""
    who = _marketer(request, uow)
    if not isinstance(who, Principal):
        return who
    form = {"name": name, "expression": expression, "description": description, "channel": "sms"}
    try:
        service.save_segment(uow, who, name.strip(), expression, at=_now(), description=description)
    except DomainError as exc:
        if exc.status_code in (401, 403):
            return _error(request, who, exc)
        return _segment_form(request, who, form=form, error=exc.message, status_code=exc.status_code)
    return RedirectResponse("/marketing/segments?saved=1", status_code=303)


# ------------------------------------------------------------------------------------------ pre-approval


def _run_in_background(factory: Any, who: Principal, segment: str) -> None:
    """Score the segment's customers with the champion model, decide them with the published policy and the
    live credit rules, and store offers; the runs page shows progress and the versions used."""
    from microlend.marketing.bank_preapproval import run_bank_preapproval

    uow = UnitOfWork(factory)
    run_bank_preapproval(uow, who, as_of=_now().date(), started_at=_now(), segment_name=segment, chunk_rows=2_000)


@router.get("/marketing/runs", response_class=HTMLResponse)
def runs(request: Request, uow: UnitOfWorkDep, started: str = "", poll: Count = 0) -> Response:
    """批量预授信 pre-approval runs with their offers; the table refreshes itself while one is running."""
    who = _marketer(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        items = service.list_runs(uow, who)
        names = [s.name for s in _segment_lines(uow, who)]
    except DomainError as exc:
        return _error(request, who, exc)
    template = "marketing/_runs.html" if request.headers.get("HX-Request") else "marketing/runs.html"
    # a run just started may not have its row yet (features come first): keep looking for a few seconds
    poll = min(max(poll, 5 if started else 0), 10)
    return page(request, who, template, runs=items, segments=names, started=started, poll=poll,
                running=any(r.status == "running" for r in items), badges=STATUS_BADGES)


@router.post("/marketing/runs", response_class=HTMLResponse)
def run_start(request: Request, uow: UnitOfWorkDep, tasks: BackgroundTasks,
              segment: Annotated[str, Form(max_length=100)]) -> Response:
    who = _marketer(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        service.get_segment(uow, who, segment)
    except DomainError as exc:
        return _error(request, who, exc)
    tasks.add_task(_run_in_background, request.app.state.session_factory, who, segment)
    return RedirectResponse(f"/marketing/runs?started={segment}", status_code=303)


# ------------------------------------------------------------------------------------------ campaigns


def _campaigns_page(request: Request, uow: UnitOfWork, who: Principal, *, form: dict[str, str] | None = None,
                    error: str = "", status_code: int = 200,
                    dispatched: dict[str, int] | None = None) -> HTMLResponse:
    items = service.list_campaigns(uow, who)
    waiting = service.outbox_waiting(uow, who)
    done_runs = [r for r in service.list_runs(uow, who) if r.status == "completed"]
    return page(request, who, "marketing/campaigns.html", status_code=status_code, campaigns=items, waiting=waiting,
                segments=[s.name for s in _segment_lines(uow, who)], runs=done_runs, channels=Channel.ALL,
                form=form or {"channel": "sms", "locale": "zh_CN", "control_pct": "10", "cap_max": "2",
                              "cap_days": "7", "cost": "0.05", "days": "30", "visit_days": "7"},
                error=error, dispatched=dispatched, badges=STATUS_BADGES)


@router.get("/marketing/campaigns", response_class=HTMLResponse)
def campaigns(request: Request, uow: UnitOfWorkDep, sent: OptionalCount = None, suppressed: Count = 0,
              deferred: Count = 0) -> Response:
    """营销活动 campaigns with status, channel and control share; the form to create one."""
    who = _marketer(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        return _campaigns_page(request, uow, who, dispatched=_dispatched(sent, suppressed, deferred))
    except DomainError as exc:
        return _error(request, who, exc)


def _int(value: str, name: str, low: int, high: int) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise ValidationError(f"{name}: '{value}' is not a whole number", field=name) from None
    if not low <= number <= high:
        raise ValidationError(f"{name}: must be between {low} and {high}", field=name)
    return number


def _control_bp(value: str) -> int:
    """A control share typed as a percentage ('10' or '12.5') -> basis points."""
    try:
        pct = Decimal(value.strip().rstrip("%"))
    except InvalidOperation:
        raise ValidationError(f"control_share: '{value}' is not a percentage", field="control_share") from None
    if not Decimal(0) <= pct < Decimal(100):
        raise ValidationError("control_share: from 0 up to (not including) 100 percent", field="control_share")
    return int((pct * 100).to_integral_value())


def _budget(value: str) -> Decimal | None:
    if not value.strip():
        return None
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        raise ValidationError(f"budget: '{value}' is not an amount", field="budget") from None
    if not amount.is_finite():
        raise ValidationError(f"budget: '{value}' is not an amount", field="budget")
    return amount


def _variants(a: str, b: str) -> tuple[Variant, ...]:
    """Two message texts typed in: variants A and B, half the treated each; one alone is the campaign's."""
    if not a.strip() and not b.strip():
        return ()
    if not a.strip() or not b.strip():
        raise ValidationError("variants: give both texts of an A/B test, or neither", field="variants")
    return (Variant("A", 50, a.strip()), Variant("B", 50, b.strip()))


@router.post("/marketing/campaigns", response_class=HTMLResponse)
def campaign_create(
    request: Request, uow: UnitOfWorkDep, name: Annotated[str, Form(max_length=100)],
    target: Annotated[str, Form(max_length=120)], channel: Annotated[str, Form()],
    locale: Annotated[str, Form()] = "zh_CN", control_pct: Annotated[str, Form()] = "10",
    cap_max: Annotated[str, Form()] = "2", cap_days: Annotated[str, Form()] = "7",
    cost: Annotated[str, Form()] = "0.05", days: Annotated[str, Form()] = "30",
    department: Annotated[str, Form(max_length=60)] = "", product: Annotated[str, Form(max_length=60)] = "",
    budget: Annotated[str, Form(max_length=20)] = "", variant_a: Annotated[str, Form(max_length=1000)] = "",
    variant_b: Annotated[str, Form(max_length=1000)] = "",
    visit_days: Annotated[str, Form(max_length=10)] = "7",
) -> Response:
    """新建活动 a draft campaign on a segment ('segment:<name>') or a run's offers ('run:<id>')."""
    who = _marketer(request, uow)
    if not isinstance(who, Principal):
        return who
    form = {"name": name, "target": target, "channel": channel, "locale": locale, "control_pct": control_pct,
            "cap_max": cap_max, "cap_days": cap_days, "cost": cost, "days": days, "department": department,
            "product": product, "budget": budget, "variant_a": variant_a, "variant_b": variant_b,
            "visit_days": visit_days}
    try:
        kind, _, value = target.partition(":")
        if kind not in ("segment", "run") or not value:
            raise ValidationError("target: choose a segment or a pre-approval run", field="target")
        try:
            cost_value = Decimal(cost.strip())
        except InvalidOperation:
            raise ValidationError(f"cost_per_message: '{cost}' is not an amount", field="cost_per_message") from None
        spec = service.CampaignSpec(
            name=name.strip(), channel=channel, segment_name=value if kind == "segment" else None,
            run_id=_int(value, "run_id", 1, 2**31) if kind == "run" else None,
            control_share_bp=_control_bp(control_pct),
            locale=locale, cost_per_message=cost_value, attribution_days=_int(days, "attribution_days", 1, 365),
            cap=FrequencyCap(_int(cap_max, "cap_max_messages", 1, 100), _int(cap_days, "cap_window_days", 1, 365)),
            department=department.strip(), product=product.strip(), budget=_budget(budget),
            variants=_variants(variant_a, variant_b), visit_due_days=_int(visit_days or "7", "visit_due_days", 1, 90))
        created = service.create_campaign(uow, who, spec, at=_now())
    except DomainError as exc:
        if exc.status_code in (401, 403):
            return _error(request, who, exc)
        return _campaigns_page(request, uow, who, form=form, error=exc.message, status_code=exc.status_code)
    return RedirectResponse(f"/marketing/campaigns/{created.id}", status_code=303)


def _campaign_page(request: Request, uow: UnitOfWork, who: Principal, campaign_id: int, *,
                   dispatched: dict[str, int] | None = None, error: str = "", status_code: int = 200,
                   launched: service.LaunchSummary | None = None,
                   step_form: dict[str, str] | None = None) -> HTMLResponse:
    c = service.get_campaign(uow, who, campaign_id)
    segment = next((v.label for v in service.list_segments(uow, who) if v.id == c.segment_id), "")
    budget, spent = service.campaign_budget(uow, who, campaign_id)
    return page(request, who, "marketing/campaign.html", status_code=status_code, c=c, segment=segment,
                steps=service.journey_steps(uow, who, campaign_id), spent=spent, budget=budget,
                conditions=CONDITIONS, actions=ACTIONS, step_form=step_form or {"after_days": "3"},
                waiting=service.outbox_waiting(uow, who).get(c.id, 0), dispatched=dispatched, error=error,
                launched=launched, badges=STATUS_BADGES, reasons=(*EXCLUSION_REASONS, *POLICY_REASONS[1:]),
                me=who.username, approval_needed=service.contact_policy(uow, who).launch_approval)


def _dispatched(sent: int | None, suppressed: int, deferred: int) -> dict[str, int] | None:
    return None if sent is None else {"sent": sent, "suppressed": suppressed, "deferred": deferred}


@router.get("/marketing/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_detail(request: Request, uow: UnitOfWorkDep, campaign_id: Id, sent: OptionalCount = None,
                    suppressed: Count = 0, deferred: Count = 0) -> Response:
    who = _marketer(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        return _campaign_page(request, uow, who, campaign_id, dispatched=_dispatched(sent, suppressed, deferred))
    except DomainError as exc:
        return _error(request, who, exc)


@router.post("/marketing/campaigns/{campaign_id}/launch", response_class=HTMLResponse)
def campaign_launch(request: Request, uow: UnitOfWorkDep, campaign_id: Id) -> Response:
    """发起活动 select targets, apply the exclusions, hold out the control group, fill the outbox."""
    who = _marketer(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        service.get_campaign(uow, who, campaign_id)
        tenant = _tenant_name(uow, who)
        summary = service.launch_campaign(uow, who, campaign_id, _customers(uow, who), at=_now(), bank_name=tenant)
    except DomainError as exc:
        if exc.status_code in (401, 403, 404):
            return _error(request, who, exc)
        return _campaign_page(request, uow, who, campaign_id, error=exc.message, status_code=exc.status_code)
    return _campaign_page(request, uow, who, campaign_id, launched=summary)


@router.post("/marketing/campaigns/{campaign_id}/steps", response_class=HTMLResponse)
def campaign_step_add(request: Request, uow: UnitOfWorkDep, campaign_id: Id,
                      after_days: Annotated[str, Form(max_length=5)], condition: Annotated[str, Form(max_length=30)],
                      action: Annotated[str, Form(max_length=10)],
                      template: Annotated[str, Form(max_length=1000)] = "") -> Response:
    """旅程步骤 a follow-up step: N days later, to the previous step's customers meeting the condition."""
    who = _marketer(request, uow)
    if not isinstance(who, Principal):
        return who
    form = {"after_days": after_days, "condition": condition, "action": action, "template": template}
    try:
        spec = StepSpec(_int(after_days, "after_days", 1, 90), condition, action, template.strip() or None)
        service.add_journey_step(uow, who, campaign_id, spec)
    except DomainError as exc:
        if exc.status_code in (401, 403, 404):
            return _error(request, who, exc)
        return _campaign_page(request, uow, who, campaign_id, error=exc.message, status_code=exc.status_code,
                              step_form=form)
    return RedirectResponse(f"/marketing/campaigns/{campaign_id}#journey", status_code=303)


@router.get("/marketing/calendar", response_class=HTMLResponse)
def campaign_calendar(request: Request, uow: UnitOfWorkDep, month: Annotated[str, Query(max_length=7)] = "",
                      department: Annotated[str, Query(max_length=60)] = "",
                      product: Annotated[str, Query(max_length=60)] = "") -> Response:
    """营销日历 the month's campaigns by department and product, with spend against budget."""
    who = _marketer(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        first = service.parse_month(month) if month else _now().date().replace(day=1)
        lines = service.campaign_calendar(uow, who, first, department=department.strip(), product=product.strip())
    except DomainError as exc:
        return _error(request, who, exc)
    previous = (first - timedelta(days=1)).replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    groups: dict[tuple[str, str], list[service.CalendarLine]] = {}
    for line in lines:
        groups.setdefault((line.department, line.product), []).append(line)
    totals = {key: (sum((x.budget for x in items if x.budget is not None), Decimal(0)),
                    sum((x.spent for x in items), Decimal(0))) for key, items in groups.items()}
    return page(request, who, "marketing/calendar.html", month=first, previous=previous.strftime("%Y-%m"),
                following=following.strftime("%Y-%m"), groups=groups, totals=totals, department=department,
                product=product, badges=STATUS_BADGES)


@router.post("/marketing/campaigns/{campaign_id}/approve", response_class=HTMLResponse)
def campaign_approve(request: Request, uow: UnitOfWorkDep, campaign_id: Id) -> Response:
    """批准发起 a second person approves the campaign for launch (never its creator)."""
    who = _marketer(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        service.approve_campaign(uow, who, campaign_id, at=_now())
    except DomainError as exc:
        if exc.status_code in (401, 404):
            return _error(request, who, exc)
        return _campaign_page(request, uow, who, campaign_id, error=exc.message, status_code=exc.status_code)
    return RedirectResponse(f"/marketing/campaigns/{campaign_id}", status_code=303)


def _tenant_name(uow: UnitOfWork, who: Principal) -> str:
    from microlend.core.tables import TenantRow

    with uow:
        tenant = uow.session.get(TenantRow, who.tenant_id)
        return tenant.display_name if tenant is not None else ""


@router.post("/marketing/outbox/send", response_class=HTMLResponse)
def outbox_send(request: Request, uow: UnitOfWorkDep, back: Annotated[str, Form()] = "/marketing/campaigns"
                ) -> Response:
    """发送 hand due messages to the sender; consent, opt-outs and caps are checked again now."""
    who = _marketer(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        result = service.dispatch_bank_outbox(uow, who, now=_now())
    except DomainError as exc:
        return _error(request, who, exc)
    suppressed = sum(result.suppressed.values())
    target = back if back.startswith("/marketing/") and "?" not in back else "/marketing/campaigns"
    return RedirectResponse(f"{target}?sent={result.sent}&suppressed={suppressed}&deferred={result.deferred}",
                            status_code=303)


# ------------------------------------------------------------------------------------------ report


@dataclass(frozen=True)
class UpliftView:
    """The uplift section: the figures stored at the campaign's close, or why there are none (`problem`:
    "open" before the window ends, "can_close" once it has, or the close's own reason)."""

    stage: str
    customers: int
    control: int
    held_out: int
    qini_area: float | None
    qini: float | None
    auuc_normalised: float | None
    uplift_at: dict[str, float | None]
    chart: str | None
    problem: str
    window_ends: datetime | None = None


def _stored_uplift(stored: service.CampaignMeasurement) -> UpliftView:
    u = stored.uplift
    return UpliftView(stored.stage, int(u.get("customers", 0)), int(u.get("control", 0)), int(u.get("held_out", 0)),
                      u.get("qini_area"), u.get("qini_coefficient"), u.get("auuc_normalised"),
                      dict(u.get("uplift_at", {})), stored.qini_chart, str(u.get("problem", "")))


@router.get("/marketing/campaigns/{campaign_id}/report", response_class=HTMLResponse)
def campaign_report(request: Request, uow: UnitOfWorkDep, campaign_id: Id) -> Response:
    """活动报告 the nested funnel per channel and segment, treatment vs control overall and per channel with
    cost and ROI, under the stated attribution rule; once the campaign is closed, the figures and the uplift
    model stored at its close (read, not recomputed)."""
    who = _marketer(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        c = service.get_campaign(uow, who, campaign_id)
        if c.launched_at is None:
            return _campaign_page(request, uow, who, campaign_id, error="campaign_id: launch the campaign first",
                                  status_code=409)
        stored = service.stored_measurement(uow, who, campaign_id)
        as_of = None
        if stored is not None:
            report, uplift = stored.report, _stored_uplift(stored)
            charts = stored.charts
        else:
            interim = service.interim_report(uow, who, campaign_id, now=_now())
            report, charts, as_of = interim.report, interim.charts, interim.as_of
            ends = c.launched_at + timedelta(days=c.attribution_days)
            uplift = UpliftView("applied", 0, 0, 0, None, None, None, {}, None,
                                "can_close" if _now() >= ends else "open", ends)
    except DomainError as exc:
        return _error(request, who, exc)
    by_channel = [f for f in report.funnel if f.by == "channel"]
    by_segment = [f for f in report.funnel if f.by == "segment"]
    try:
        step_funnels = service.step_funnels(uow, who, campaign_id)
        variants = service.variant_report(uow, who, campaign_id)
    except DomainError as exc:
        return _error(request, who, exc)
    return page(request, who, "marketing/report.html", c=c, report=report, by_channel=by_channel,
                by_segment=by_segment, funnel_chart=charts.get("funnel"), lift_chart=charts.get("lift"),
                uplift=uplift, stored=stored, as_of=as_of, stages=FUNNEL_STAGES, currency="CNY",
                step_funnels=step_funnels if len(step_funnels) > 1 else [], variants=variants)


@router.post("/marketing/campaigns/{campaign_id}/close", response_class=HTMLResponse)
def campaign_close(request: Request, uow: UnitOfWorkDep, campaign_id: Id,
                   stage: Annotated[str, Form(max_length=20)] = "applied") -> Response:
    """结案 close a campaign whose window is over: its report and uplift model are computed once and stored."""
    who = _marketer(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        service.close_campaign(uow, who, campaign_id, _customers(uow, who), at=_now(), stage=stage)
    except DomainError as exc:
        return _error(request, who, exc)
    return RedirectResponse(f"/marketing/campaigns/{campaign_id}/report", status_code=303)


# ------------------------------------------------------------------------------------------ visit tasks


@router.get("/tasks/visits", response_class=HTMLResponse)
def visit_tasks(request: Request, uow: UnitOfWorkDep, show: Count = 20) -> Response:
    """我的走访任务 the signed-in officer's open visit tasks from campaigns, soonest due first, overdue ones
    flagged, 20 at a time."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        cards = service.visit_cards(uow, who, now=_now())
    except DomainError as exc:
        return _error(request, who, exc)
    show = min(max(show, 20), 1000)
    return page(request, who, "marketing/visits.html", cards=cards[:show], total=len(cards), show=show,
                overdue=sum(c.overdue for c in cards), outcomes=VISIT_OUTCOMES, currency="CNY")


@router.post("/tasks/visits/{task_id}", response_class=HTMLResponse)
def visit_outcome(request: Request, uow: UnitOfWorkDep, task_id: Id, outcome: Annotated[str, Form()],
                  note: Annotated[str, Form(max_length=1000)] = "") -> Response:
    """Record the visit's outcome; htmx swaps the task's card for the recorded outcome."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        mine = [c for c in service.visit_cards(uow, who) if c.task.id == task_id]
        if not mine:
            raise NotFound(f"visit task {task_id} not found", field="task_id")
        service.close_visit_task(uow, who, task_id, outcome=outcome, at=_now(), note=note)
    except DomainError as exc:
        if request.headers.get("HX-Request") and exc.status_code not in (401, 403, 404):
            return page(request, who, "marketing/_visit_done.html", status_code=exc.status_code, card=None,
                        outcome="", error=exc.message, task_id=task_id)
        return _error(request, who, exc)
    if request.headers.get("HX-Request"):
        return page(request, who, "marketing/_visit_done.html", card=mine[0], outcome=outcome, error="",
                    task_id=task_id)
    return RedirectResponse("/tasks/visits", status_code=303)



# ------------------------------------------------------------------------------------------ contact policy


def _policy_page(request: Request, uow: UnitOfWork, who: Principal, *, error: str = "", saved: bool = False,
                 status_code: int = 200, form: dict[str, str] | None = None) -> HTMLResponse:
    policy = service.contact_policy(uow, who)
    gateways = {g.channel: g for g in delivery.list_gateways(uow, who)}
    return page(request, who, "marketing/policy.html", status_code=status_code, p=policy, gateways=gateways,
                error=error, saved=saved, form=form or {}, can_edit=who.can(Permission.MANAGE_MESSAGING))


@router.get("/marketing/policy", response_class=HTMLResponse)
def policy_page(request: Request, uow: UnitOfWorkDep, saved: Count = 0) -> Response:
    """接触策略 the bank's contact policy over every campaign and channel, and its message gateways."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    if not who.can(Permission.VIEW_CAMPAIGNS):
        return page(request, who, "error.html", status_code=403, message="forbidden")
    return _policy_page(request, uow, who, saved=bool(saved))


@router.post("/marketing/policy", response_class=HTMLResponse)
def policy_save(
    request: Request, uow: UnitOfWorkDep,
    cap_max_contacts: Annotated[str, Form(max_length=10)] = "4",
    cap_window_days: Annotated[str, Form(max_length=10)] = "30",
    holdout_pct: Annotated[str, Form(max_length=10)] = "5",
    quiet_start: Annotated[str, Form(max_length=5)] = "21:00",
    quiet_end: Annotated[str, Form(max_length=5)] = "08:00",
    timezone: Annotated[str, Form(max_length=60)] = "Asia/Shanghai",
    throttle_per_s: Annotated[str, Form(max_length=10)] = "200",
    public_host: Annotated[str, Form(max_length=200)] = "",
    launch_approval: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    form = {"cap_max_contacts": cap_max_contacts, "cap_window_days": cap_window_days, "holdout_pct": holdout_pct,
            "quiet_start": quiet_start, "quiet_end": quiet_end, "timezone": timezone,
            "throttle_per_s": throttle_per_s, "public_host": public_host}
    try:
        holdout = Decimal(holdout_pct.strip() or "0")
        if not holdout.is_finite():
            raise ValidationError("holdout_pct: a percentage such as 5", field="holdout_pct")
        policy = ContactPolicy(
            _int(cap_max_contacts, "cap_max_contacts", 0, 100), _int(cap_window_days, "cap_window_days", 1, 366),
            int(holdout * 100), QuietHours(parse_hhmm(quiet_start, "quiet_start"), parse_hhmm(quiet_end, "quiet_end"),
                                           timezone.strip()),
            _int(throttle_per_s, "throttle_per_s", 1, 100_000), public_host.strip(), launch_approval == "on")
        service.set_contact_policy(uow, who, policy, at=_now())
    except (ArithmeticError, ValueError):
        return _policy_page(request, uow, who, error="holdout_pct: a percentage such as 5", status_code=422,
                            form=form)
    except DomainError as exc:
        if exc.status_code in (401, 403, 404):
            return _error(request, who, exc)
        return _policy_page(request, uow, who, error=exc.message, status_code=exc.status_code, form=form)
    return RedirectResponse("/marketing/policy?saved=1", status_code=303)


@router.post("/marketing/policy/gateways/{channel}", response_class=HTMLResponse)
def gateway_save(
    request: Request, uow: UnitOfWorkDep, channel: str,
    url: Annotated[str, Form(max_length=300)] = "",
    api_key: Annotated[str, Form(max_length=500)] = "",
    secret: Annotated[str, Form(max_length=500)] = "",
    batch_size: Annotated[str, Form(max_length=10)] = "100",
    throttle_per_s: Annotated[str, Form(max_length=10)] = "200",
) -> Response:
    """A gateway's address and credentials; an empty key or secret keeps the stored one."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    try:
        config = delivery.GatewayConfig(channel, url.strip(), api_key.strip(), secret.strip(),
                                        _int(batch_size, "batch_size", 1, 1000),
                                        throttle_per_s=_int(throttle_per_s, "throttle_per_s", 1, 100_000))
        delivery.save_gateway(uow, who, config, at=_now(), keep_credentials=True)
    except DomainError as exc:
        if exc.status_code in (401, 403, 404):
            return _error(request, who, exc)
        return _policy_page(request, uow, who, error=exc.message, status_code=exc.status_code)
    return RedirectResponse("/marketing/policy?saved=1", status_code=303)


# ------------------------------------------------------------------------------------------ costs and margin

COST_FIELDS = ("sms_cost", "push_cost", "visit_cost", "margin_per_disbursed")


def _amount_field(value: str, name: str, *, optional: bool = False) -> Decimal | None:
    """A money amount typed on the form: digits with at most two decimals (4 for a message's cost)."""
    text = value.strip().replace(",", "")
    if not text and optional:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValidationError(f"{name}: an amount such as 0.05", field=name) from None
    exponent = amount.as_tuple().exponent
    if not amount.is_finite() or (isinstance(exponent, int) and exponent < -4):
        raise ValidationError(f"{name}: an amount with at most 4 decimals", field=name)
    return amount


def _shown(amount: Decimal | None) -> str:
    """An amount as the form shows it: no trailing zeros past the cents (0.0120 -> 0.012, 25.0000 -> 25.00)."""
    if amount is None:
        return ""
    plain = amount.normalize()
    exponent = plain.as_tuple().exponent
    return f"{plain.quantize(Decimal('0.01')) if isinstance(exponent, int) and exponent > -2 else plain:f}"


def _costs_page(request: Request, uow: UnitOfWork, who: Principal, *, error: str = "", saved: bool = False,
                status_code: int = 200, form: dict[str, str] | None = None) -> HTMLResponse:
    settings = service.measurement_settings(uow, who)
    shown = {name: _shown(getattr(settings, name)) for name in COST_FIELDS}
    shown["min_control_per_stratum"] = str(settings.min_control_per_stratum)
    return page(request, who, "marketing/costs.html", status_code=status_code, s=settings, shown=shown,
                error=error, saved=saved, form=form or {}, currency="CNY")


@router.get("/marketing/costs", response_class=HTMLResponse)
def costs_page(request: Request, uow: UnitOfWorkDep, saved: Count = 0) -> Response:
    """渠道成本与利润 what one contact costs per channel and what one disbursed loan earns: the campaign
    report's cost, cost per extra loan and ROI come from these."""
    who = _marketer(request, uow)
    if not isinstance(who, Principal):
        return who
    return _costs_page(request, uow, who, saved=bool(saved))


@router.post("/marketing/costs", response_class=HTMLResponse)
def costs_save(
    request: Request, uow: UnitOfWorkDep,
    sms_cost: Annotated[str, Form(max_length=30)] = "",
    push_cost: Annotated[str, Form(max_length=30)] = "",
    visit_cost: Annotated[str, Form(max_length=30)] = "",
    margin_per_disbursed: Annotated[str, Form(max_length=30)] = "",
    min_control_per_stratum: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    who = _marketer(request, uow)
    if not isinstance(who, Principal):
        return who
    form = {"sms_cost": sms_cost, "push_cost": push_cost, "visit_cost": visit_cost,
            "margin_per_disbursed": margin_per_disbursed, "min_control_per_stratum": min_control_per_stratum}
    try:
        current = service.measurement_settings(uow, who)
        costs = {name: _amount_field(form[name], name) for name in ("sms_cost", "push_cost", "visit_cost")}
        settings = service.MeasurementSettings(
            costs["sms_cost"] or Decimal(0), costs["push_cost"] or Decimal(0), costs["visit_cost"] or Decimal(0),
            _amount_field(margin_per_disbursed, "margin_per_disbursed", optional=True),
            _int(min_control_per_stratum, "min_control_per_stratum", 1, 100_000) if min_control_per_stratum.strip()
            else current.min_control_per_stratum)
        service.update_measurement_settings(uow, who, settings, at=_now())
    except DomainError as exc:
        if exc.status_code in (401, 403, 404):
            return _error(request, who, exc)
        return _costs_page(request, uow, who, error=exc.message, status_code=exc.status_code, form=form)
    return RedirectResponse("/marketing/costs?saved=1", status_code=303)
