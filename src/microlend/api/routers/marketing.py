"""Marketing API (thin): segments, campaigns and their reports, opt-outs, visit tasks, tracked links.

Launching a campaign and pre-approval runs take whole customer tables, so they run as batch commands
(`microlend marketing ...`); the API reads their results.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from microlend.api.deps import MAX_ID, CurrentPrincipal, Id, UnitOfWorkDep
from microlend.api.references import CustomerRef, OptionalRunRef, UserQuery
from microlend.api.routing import api_router
from microlend.api.schemas import MoneyStr, PublicSchema
from microlend.api.security import report_page
from microlend.core.clock import utcnow
from microlend.core.errors import NotFound
from microlend.marketing import service
from microlend.marketing.campaigns import QuietHours
from microlend.marketing.contact_policy import ContactPolicy, parse_hhmm
from microlend.marketing.journeys import StepSpec, Variant
from microlend.marketing.segments import FrequencyCap

router = api_router(prefix="/api/v1/marketing", tags=["marketing"])
tracking_router = APIRouter(prefix="/t", tags=["marketing"], include_in_schema=False)
#: the cookie a tracked link leaves: the campaign that brought the borrower to the application form
CAMPAIGN_COOKIE = "ml_campaign"


class SegmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    expression: str = Field(min_length=1, max_length=2000, examples=['age >= 25 and industry in ["retail"]'])
    description: str = Field(default="", max_length=500)


class SegmentPublic(PublicSchema):
    id: int
    name: str
    version: int
    expression: str
    description: str
    created_by: str
    created_at: datetime


class ExpressionCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expression: str = Field(min_length=1, max_length=2000)


class ExpressionCheckPublic(BaseModel):
    ok: bool
    features: list[str]


class CampaignReportPublic(BaseModel):
    """Funnel and treatment/control comparisons per campaign; amounts as strings; more figures may follow."""

    model_config = ConfigDict(extra="allow")

    campaigns: dict[str, str]
    funnel: list[dict[str, Any]]
    comparisons: list[dict[str, Any]]
    confidence: float
    total_cost: str
    cost_per_disbursed: str | None
    cost_per_incremental_disbursed: str | None


class VariantBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9_-]+$", examples=["A"])
    weight: int = Field(default=50, ge=1, le=100)
    template: str = Field(min_length=1, max_length=1000)


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    channel: Literal["sms", "push", "visit"]
    segment_name: str | None = None
    segment_version: int | None = Field(default=None, ge=1, le=MAX_ID)
    run_id: OptionalRunRef = None
    control_share_bp: int = Field(default=1000, ge=0, lt=10_000)
    locale: Literal["zh_CN", "en"] = "zh_CN"
    cost_per_message: Decimal = Field(default=Decimal("0.05"), ge=0)
    attribution_days: int = Field(default=30, ge=1, le=365)
    cap_max_messages: int = Field(default=2, ge=1, le=1000)
    cap_window_days: int = Field(default=7, ge=1, le=366)
    starts_at: AwareDatetime | None = Field(default=None, description="no message goes before")
    ends_at: AwareDatetime | None = Field(default=None, description="a message still waiting then is not sent")
    department: str = Field(default="", max_length=60)
    product: str = Field(default="", max_length=60)
    budget: Decimal | None = Field(default=None, ge=0, le=100_000_000, max_digits=13, decimal_places=2,
                                   description="what the campaign's contacts may cost, at the measurement settings")
    variants: list[VariantBody] = Field(default_factory=list, max_length=5,
                                        description="2 to 5 message variants of the treatment arm, or none")
    visit_due_days: int = Field(default=7, ge=1, le=90, description="a visit task is due this many days after launch")


class VariantPublic(PublicSchema):
    key: str
    weight: int
    template: str


class CampaignPublic(PublicSchema):
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
    created_by: str
    starts_at: datetime | None
    ends_at: datetime | None
    approved_by: str | None
    approved_at: datetime | None
    department: str
    product: str
    budget: MoneyStr | None
    variants: list[VariantPublic]
    visit_due_days: int = 7


class JourneyStepCreate(BaseModel):
    """A follow-up step: `after_days` after the previous step (the launch for the first), to its customers
    meeting `condition`, send an SMS or push (in `template`, else the campaign's) or make an officer's visit."""

    model_config = ConfigDict(extra="forbid")

    after_days: int = Field(ge=1, le=90, examples=[3])
    condition: Literal["no_click", "no_application", "clicked_no_application"]
    action: Literal["sms", "push", "visit"]
    template: str | None = Field(default=None, min_length=1, max_length=1000)


class JourneyStepPublic(PublicSchema):
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


class StepFunnelPublic(PublicSchema):
    position: int
    action: str
    condition: str
    status: str
    stop_reason: str | None
    candidates: int
    contacted: int
    clicked: int
    applied: int


class VariantResultPublic(PublicSchema):
    key: str
    treated: int
    responded: int
    converted: int
    response_rate: float
    response_ci: tuple[float, float]
    conversion_rate: float
    conversion_ci: tuple[float, float]
    difference: tuple[float, float, float] | None = Field(
        description="conversion rate minus the first variant's, with the low and high of its interval")


class CalendarLinePublic(PublicSchema):
    campaign_id: int
    name: str
    department: str
    product: str
    channel: str
    status: str
    day: date
    budget: MoneyStr | None
    spent: MoneyStr
    over: bool


HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class ContactPolicyUpdate(BaseModel):
    """The bank's contact policy over every campaign and channel; times as "HH:MM" in `timezone`."""

    model_config = ConfigDict(extra="forbid")

    cap_max_contacts: int = Field(default=4, ge=0, le=100, description="0: no bank-wide cap")
    cap_window_days: int = Field(default=30, ge=1, le=366)
    holdout_share_bp: int = Field(default=500, ge=0, le=5000, description="basis points held out of every campaign")
    quiet_start: str = Field(default="21:00", pattern=HHMM, examples=["21:00"])
    quiet_end: str = Field(default="08:00", pattern=HHMM, examples=["08:00"])
    timezone: str = Field(default="Asia/Shanghai", min_length=1, max_length=60)
    throttle_per_s: int = Field(default=200, ge=1, le=100_000)
    public_host: str = Field(default="", max_length=200, examples=["https://www.bank.example.cn"])
    launch_approval: bool = True


class ContactPolicyPublic(BaseModel):
    configured: bool
    cap_max_contacts: int
    cap_window_days: int
    holdout_share_bp: int
    quiet_start: str
    quiet_end: str
    timezone: str
    throttle_per_s: int
    public_host: str
    launch_approval: bool

    @classmethod
    def of(cls, p: ContactPolicy) -> ContactPolicyPublic:
        return cls(configured=p.configured, cap_max_contacts=p.cap_max_contacts, cap_window_days=p.cap_window_days,
                   holdout_share_bp=p.holdout_share_bp, quiet_start=p.quiet.start.strftime("%H:%M"),
                   quiet_end=p.quiet.end.strftime("%H:%M"), timezone=p.quiet.timezone,
                   throttle_per_s=p.throttle_per_s, public_host=p.public_host, launch_approval=p.launch_approval)


class OptOutCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerRef
    channel: Literal["sms", "push", "visit"]


class VisitTaskPublic(BaseModel):
    id: int
    campaign_id: int
    campaign_name: str
    customer_id: int
    officer_user_id: int | None
    status: str
    created_at: datetime
    due_at: datetime | None = None
    outcome: str | None = None
    closed_reason: str | None = None


class VisitTaskClose(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["visited", "not_interested", "unreachable", "applied"]
    note: str = Field(default="", max_length=1000)


@router.post("/segments/check")
def check_expression(body: ExpressionCheck, who: CurrentPrincipal) -> ExpressionCheckPublic:
    """Validate an expression against the feature namespace; 422 names the offending identifier."""
    return ExpressionCheckPublic(ok=True, features=service.check_expression(who, body.expression))


@router.get("/segments")
def list_segments(who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[SegmentPublic]:
    return [SegmentPublic.of(v) for v in service.list_segments(uow, who)]


@router.post("/segments", status_code=201)
def save_segment(body: SegmentCreate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> SegmentPublic:
    return SegmentPublic.of(service.save_segment(uow, who, body.name, body.expression, at=utcnow(),
                                         description=body.description))


@router.get("/campaigns")
def list_campaigns(who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[CampaignPublic]:
    return [CampaignPublic.of(c) for c in service.list_campaigns(uow, who)]


@router.post("/campaigns", status_code=201)
def create_campaign(body: CampaignCreate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> CampaignPublic:
    spec = service.CampaignSpec(
        name=body.name, channel=body.channel, segment_name=body.segment_name, segment_version=body.segment_version,
        run_id=body.run_id, control_share_bp=body.control_share_bp, locale=body.locale,
        cost_per_message=body.cost_per_message, attribution_days=body.attribution_days,
        cap=FrequencyCap(body.cap_max_messages, body.cap_window_days), starts_at=body.starts_at,
        ends_at=body.ends_at, department=body.department, product=body.product, budget=body.budget,
        variants=tuple(Variant(v.key, v.weight, v.template) for v in body.variants),
        visit_due_days=body.visit_due_days)
    return CampaignPublic.of(service.create_campaign(uow, who, spec, at=utcnow()))


@router.post("/campaigns/{campaign_id}/steps", status_code=201)
def add_journey_step(campaign_id: Id, body: JourneyStepCreate, who: CurrentPrincipal, uow: UnitOfWorkDep
                     ) -> JourneyStepPublic:
    """Append a follow-up step to a campaign before its launch (the worker advances it when due)."""
    spec = StepSpec(body.after_days, body.condition, body.action, body.template)
    return JourneyStepPublic.of(service.add_journey_step(uow, who, campaign_id, spec))


@router.get("/campaigns/{campaign_id}/steps")
def journey_steps(campaign_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[JourneyStepPublic]:
    return [JourneyStepPublic.of(s) for s in service.journey_steps(uow, who, campaign_id)]


@router.get("/campaigns/{campaign_id}/step-funnel")
def step_funnel(campaign_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[StepFunnelPublic]:
    """The launch (position 0) and each follow-up step: whom it reached and who clicked or applied after."""
    return [StepFunnelPublic.of(s) for s in service.step_funnels(uow, who, campaign_id)]


@router.get("/campaigns/{campaign_id}/variants")
def variant_report(campaign_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[VariantResultPublic]:
    """Each message variant's responses and conversions with 95% intervals, and its difference to the first."""
    return [VariantResultPublic.of(v) for v in service.variant_report(uow, who, campaign_id)]


@router.get("/calendar")
def campaign_calendar(who: CurrentPrincipal, uow: UnitOfWorkDep,
                      month: Annotated[str, Query(pattern=r"^([0-9]{4}-(0[1-9]|1[0-2]))?$", examples=["2026-03"],
                                                  description="YYYY-MM; this month when empty")] = "",
                      department: Annotated[str, Query(max_length=60)] = "",
                      product: Annotated[str, Query(max_length=60)] = "") -> list[CalendarLinePublic]:
    """The month's campaigns by department and product, with budget and spend so far."""
    first = service.parse_month(month) if month else utcnow().date().replace(day=1)
    lines = service.campaign_calendar(uow, who, first, department=department, product=product)
    return [CalendarLinePublic.of(x) for x in lines]


@router.post("/campaigns/{campaign_id}/approve")
def approve_campaign(campaign_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> CampaignPublic:
    """A second person (not the campaign's creator) approves a draft for launch."""
    return CampaignPublic.of(service.approve_campaign(uow, who, campaign_id, at=utcnow()).campaign)


@router.get("/contact-policy")
def contact_policy(who: CurrentPrincipal, uow: UnitOfWorkDep) -> ContactPolicyPublic:
    return ContactPolicyPublic.of(service.contact_policy(uow, who))


@router.put("/contact-policy")
def set_contact_policy(body: ContactPolicyUpdate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> ContactPolicyPublic:
    policy = ContactPolicy(
        body.cap_max_contacts, body.cap_window_days, body.holdout_share_bp,
        QuietHours(parse_hhmm(body.quiet_start, "quiet_start"), parse_hhmm(body.quiet_end, "quiet_end"), body.timezone),
        body.throttle_per_s, body.public_host, body.launch_approval)
    return ContactPolicyPublic.of(service.set_contact_policy(uow, who, policy, at=utcnow()))


@router.get("/campaigns/{campaign_id}")
def get_campaign(campaign_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> CampaignPublic:
    return CampaignPublic.of(service.get_campaign(uow, who, campaign_id))


@router.get("/campaigns/{campaign_id}/report")
def campaign_report(campaign_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> CampaignReportPublic:
    return CampaignReportPublic.model_validate(service.campaign_report(uow, who, [campaign_id]).to_dict())


@router.get("/campaigns/{campaign_id}/report.html", response_class=HTMLResponse)
def campaign_report_page(campaign_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> HTMLResponse:
    report = service.campaign_report(uow, who, [campaign_id])
    return report_page(report.to_html(title=f"Campaign report: {report.campaigns[campaign_id]}"))


class MeasurementSettingsBody(BaseModel):
    """What a contact costs per channel and what a disbursed loan earns, for the report's cost and ROI."""

    model_config = ConfigDict(extra="forbid")

    sms_cost: Decimal = Field(ge=0, le=1_000_000, max_digits=20, decimal_places=4)
    push_cost: Decimal = Field(ge=0, le=1_000_000, max_digits=20, decimal_places=4)
    visit_cost: Decimal = Field(ge=0, le=1_000_000, max_digits=20, decimal_places=4)
    margin_per_disbursed: Decimal | None = Field(default=None, ge=0, le=1_000_000, max_digits=20, decimal_places=4)
    min_control_per_stratum: int = Field(default=30, ge=1, le=100_000)


class MeasurementSettingsPublic(BaseModel):
    sms_cost: str
    push_cost: str
    visit_cost: str
    margin_per_disbursed: str | None
    min_control_per_stratum: int
    stated: bool

    @classmethod
    def of(cls, x: service.MeasurementSettings) -> MeasurementSettingsPublic:
        return cls(sms_cost=str(x.sms_cost), push_cost=str(x.push_cost), visit_cost=str(x.visit_cost),
                   margin_per_disbursed=None if x.margin_per_disbursed is None else str(x.margin_per_disbursed),
                   min_control_per_stratum=x.min_control_per_stratum, stated=x.stated)


class CampaignClose(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: Literal["applied", "approved", "disbursed"] = "applied"


class CampaignMeasurementPublic(BaseModel):
    """A campaign's figures stored at its close: the report, the uplift model's measures on held-out customers
    (raw Qini area, Qini coefficient, normalised AUUC, uplift at the top k) and the model artefact's sha256."""

    campaign_id: int
    stage: str
    closed_at: datetime
    closed_by: str
    report: CampaignReportPublic
    uplift: dict[str, Any]
    artefact_sha256: str | None

    @classmethod
    def of(cls, m: service.CampaignMeasurement) -> CampaignMeasurementPublic:
        uplift = {k: v for k, v in m.uplift.items() if k != "curve"}
        return cls(campaign_id=m.campaign_id, stage=m.stage, closed_at=m.closed_at, closed_by=m.closed_by,
                   report=CampaignReportPublic.model_validate(m.report.to_dict()), uplift=uplift,
                   artefact_sha256=m.artefact_sha256)


@router.get("/measurement-settings")
def get_measurement_settings(who: CurrentPrincipal, uow: UnitOfWorkDep) -> MeasurementSettingsPublic:
    return MeasurementSettingsPublic.of(service.measurement_settings(uow, who))


@router.put("/measurement-settings")
def put_measurement_settings(body: MeasurementSettingsBody, who: CurrentPrincipal, uow: UnitOfWorkDep
                             ) -> MeasurementSettingsPublic:
    settings = service.MeasurementSettings(body.sms_cost, body.push_cost, body.visit_cost, body.margin_per_disbursed,
                                           body.min_control_per_stratum)
    return MeasurementSettingsPublic.of(service.update_measurement_settings(uow, who, settings, at=utcnow()))


@router.post("/campaigns/{campaign_id}/close", status_code=201)
def close_campaign(campaign_id: Id, body: CampaignClose, who: CurrentPrincipal, uow: UnitOfWorkDep
                   ) -> CampaignMeasurementPublic:
    """Close a campaign whose attribution window is over: its report and uplift model are stored once."""
    from microlend.marketing.customerbase import customer_frame

    now = utcnow()
    return CampaignMeasurementPublic.of(service.close_campaign(
        uow, who, campaign_id, customer_frame(uow, who, now.date()), at=now, stage=body.stage))


@router.get("/campaigns/{campaign_id}/measurement")
def campaign_measurement(campaign_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> CampaignMeasurementPublic:
    stored = service.stored_measurement(uow, who, campaign_id)
    if stored is None:
        raise NotFound(f"campaign {campaign_id} has not been closed", field="campaign_id")
    return CampaignMeasurementPublic.of(stored)


@router.post("/opt-outs", status_code=204)
def opt_out(body: OptOutCreate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> Response:
    service.record_opt_out(uow, who, body.customer_id, body.channel, at=utcnow())
    return Response(status_code=204)


@router.get("/visit-tasks")
def visit_tasks(who: CurrentPrincipal, uow: UnitOfWorkDep,
                officer_user_id: UserQuery = None) -> list[VisitTaskPublic]:
    """Open visit tasks; a loan officer sees their own."""
    return [VisitTaskPublic(**t.__dict__) for t in service.visit_tasks(uow, who, officer_user_id=officer_user_id)]


@router.post("/visit-tasks/{task_id}/close", status_code=204)
def close_visit_task(task_id: Id, body: VisitTaskClose, who: CurrentPrincipal, uow: UnitOfWorkDep) -> Response:
    service.close_visit_task(uow, who, task_id, outcome=body.outcome, at=utcnow(), note=body.note)
    return Response(status_code=204)


@tracking_router.get("/{token}")
def tracked_link(token: str, uow: UnitOfWorkDep) -> Response:
    """A tracked link from a message: records the click and sends the customer to the borrower pages. The
    campaign rides along in the `ml_campaign` cookie (30 days, the longest usual attribution window) so the
    application form can set the application's `campaign_id`."""
    campaign_id = service.record_link_visit(uow, token, at=utcnow())
    response = Response(status_code=307, headers={"Location": "/b/apply"})
    if campaign_id is not None:
        response.set_cookie(CAMPAIGN_COOKIE, str(campaign_id), max_age=30 * 24 * 3600, httponly=True,
                            samesite="lax")
    return response
