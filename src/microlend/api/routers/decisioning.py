"""Decisions and policies over HTTP: decide an application, read and replay a decision, and the policy
life cycle (draft, lint, simulate, submit, publish by a second person, challenger runs, arm reports)."""

from __future__ import annotations

import time
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import anyio
import anyio.to_thread
from fastapi import Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from microlend.api.deps import MAX_ID, CurrentPrincipal, Id, UnitOfWorkDep, per_app
from microlend.api.errors import problem
from microlend.api.routing import api_router
from microlend.api.schemas import PublicSchema
from microlend.core.clock import utcnow
from microlend.core.errors import NotFound, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.money import round_half_up
from microlend.core.settings import get_settings
from microlend.core.uow import UnitOfWork
from microlend.decisioning import changes, versions
from microlend.decisioning import service as svc
from microlend.decisioning.challenger_report import (
    CONFIDENCE,
    OUTCOME_MONTHS,
    ArmStats,
    ChallengerReport,
    ProportionTest,
    challenger_report,
)
from microlend.decisioning.domain import (
    ApplicationFacts,
    CapacityFacts,
    CustomerFacts,
    DataFacts,
    ExposureFacts,
    ModelResult,
)
from microlend.decisioning.lint import LintReport
from microlend.decisioning.policy_views import setup_or_none, version_view, versions_newest_first
from microlend.decisioning.reasons import reason
from microlend.decisioning.scored_decision import decide_application
from microlend.decisioning.simulation_service import simulation
from microlend.decisioning.trace_view import trace_json
from microlend.origination import queries as outcomes
from microlend.servicing import queries as servicing

router = api_router(prefix="/api/v1", tags=["decisions"])


def locale_of(accept_language: str | None) -> str:
    """zh_CN unless the caller prefers English first."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return "zh_CN"


# --- decisions ---------------------------------------------------------------------------------------------


class DecisionCreate(BaseModel):
    """An application to decide. Without `model`, the bank's champion model scores `profile` first."""

    model_config = ConfigDict(extra="forbid")

    application: ApplicationFacts
    customer: CustomerFacts
    features: dict[str, float | None] = Field(default_factory=dict)
    model: ModelResult | None = None
    profile: dict[str, Any] | None = Field(default=None, description="model features of the applicant")
    application_ref: str | None = Field(default=None, max_length=100)
    exposure: ExposureFacts = Field(default_factory=ExposureFacts, description="the obligor group's exposure")
    capacity: CapacityFacts = Field(default_factory=CapacityFacts, description="capacity and eligibility facts")
    data: DataFacts = Field(default_factory=DataFacts, description="what each external data source gave")


class ReasonPublic(BaseModel):
    code: str
    message: str
    tellable: bool


class DecisionPublic(BaseModel):
    id: int
    customer_id: str
    arm: str
    acted_on: bool
    outcome: str
    limit: Decimal
    annual_rate: Decimal | None
    reasons: list[ReasonPublic]
    borrower_reasons: list[str]
    policy_hash: str
    model_version: str
    latency_ms: float
    shadow_ids: list[int]

    @classmethod
    def of(cls, record: svc.DecisionRecord, model_version: str, locale: str, latency_ms: float) -> DecisionPublic:
        return cls(
            id=record.id,
            customer_id=record.customer_id,
            arm=record.arm,
            acted_on=record.acted_on,
            outcome=record.outcome,
            limit=round_half_up(record.limit),
            annual_rate=record.annual_rate,
            reasons=([ReasonPublic(code=c, message=m, tellable=t) for c, m, t in record.reason_texts]
                     if record.reason_texts else [reasons_public(c, locale) for c in record.reasons]),
            borrower_reasons=list(record.borrower_reasons),
            policy_hash=record.policy_hash,
            model_version=model_version,
            latency_ms=round(latency_ms, 3),
            shadow_ids=list(record.shadow_ids),
        )


def reasons_public(code: str, locale: str) -> ReasonPublic:
    r = reason(code)
    return ReasonPublic(code=code, message=r.message(locale), tellable=r.tellable)


class DecisionDetailPublic(DecisionPublic):
    application_ref: str | None
    shadow_of: int | None
    inputs: dict[str, Any]
    model_versions: dict[str, Any]
    trace: Any
    plain_trace: list[dict[str, Any]] = Field(
        description="the trace in plain language: per table the rows that fired, numbered from 1 as the policy "
                    "page numbers them, with the input values they matched and what they gave")
    outputs: dict[str, Any]
    created_by: str
    created_at: datetime


class ReplayPublic(PublicSchema):
    decision_id: int
    policy_hash: str
    equal: bool
    differences: list[str]
    stored: dict[str, Any]
    replayed: dict[str, Any]


@router.post("/decisions", status_code=201)
async def create_decision(request: Request, body: DecisionCreate, who: CurrentPrincipal, uow: UnitOfWorkDep,
                          accept_language: str | None = Header(default=None)) -> DecisionPublic:
    """Decide an application with the policy in force and store the decision (inputs, versions, trace)."""
    # the engine's hot path: one trip to a thread for the blocking work (a plain `def` endpoint would take
    # a second one to check the response), on the few threads decisions have in this process
    return await anyio.to_thread.run_sync(_create_decision, body, who, uow, locale_of(accept_language),
                                          limiter=_decision_threads(request))


def _decision_threads(request: Request) -> anyio.CapacityLimiter:
    settings = getattr(request.app.state, "settings", None) or get_settings()
    return per_app(request, "decision_threads", lambda: anyio.CapacityLimiter(settings.decision_threads))


def _create_decision(body: DecisionCreate, who: Principal, uow: UnitOfWork, locale: str) -> DecisionPublic:
    started = time.perf_counter()
    record, model_version = decide_application(
        uow, who, application=body.application, customer=body.customer, features=body.features, model=body.model,
        profile=body.profile, application_ref=body.application_ref, locale=locale, exposure=body.exposure,
        capacity=body.capacity, data=body.data)
    return DecisionPublic.of(record, model_version, locale, (time.perf_counter() - started) * 1000.0)


@router.get("/decisions/{decision_id}")
def get_decision(decision_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep,
                 accept_language: str | None = Header(default=None)) -> DecisionDetailPublic:
    locale = locale_of(accept_language)
    d = svc.decision_detail(uow, who, decision_id, locale)
    base = DecisionPublic.of(d.record, str(d.model_versions.get("model", "")), locale, d.record.latency_ms)
    return DecisionDetailPublic(**base.model_dump(), application_ref=d.application_ref, shadow_of=d.shadow_of,
                                inputs=d.inputs, model_versions=d.model_versions, trace=d.trace,
                                plain_trace=trace_json(d.steps), outputs=d.outputs,
                                created_by=d.created_by, created_at=d.created_at)


@router.post("/decisions/{decision_id}/replay")
def replay_decision(decision_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> ReplayPublic:
    """Re-evaluate from the stored inputs and policy version; `equal` says whether the outputs agree."""
    return ReplayPublic.of(svc.replay(uow, who, decision_id))


# --- policies ----------------------------------------------------------------------------------------------


class PolicyVersionPublic(PublicSchema):
    id: int
    name: str
    content_hash: str
    status: str
    arm: str | None  # champion, challenger, shadow while in force
    author: str
    publisher: str | None
    created_at: datetime
    published_at: datetime | None
    environment: str = Field(description="draft, test (evaluated on request only) or production")


class PolicySetupPublic(PublicSchema):
    champion_hash: str
    challenger_hash: str | None
    challenger_share_bp: int
    challenger_shadow: bool
    shadow_hash: str | None = Field(default=None, description="runs beside the champion and any split challenger")


class PolicyListPublic(BaseModel):
    setup: PolicySetupPublic | None
    items: list[PolicyVersionPublic]


class PolicyDetailPublic(PolicyVersionPublic):
    content: dict[str, Any]


class PolicyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: dict[str, Any]
    note: str = Field(default="", max_length=500)
    submit: bool = Field(default=True, description="false keeps it a draft (no lint)")


class PolicyDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: dict[str, Any]


class PublishRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    challenger_share_bp: int | None = Field(default=None, ge=0, le=10_000)
    shadow: bool = False


class ChallengerStart(PublishRequest):
    content_hash: str = Field(min_length=8, max_length=64)


class FindingPublic(BaseModel):
    severity: str
    kind: str
    where: str
    message: str


class LintPublic(BaseModel):
    ok: bool
    findings: list[FindingPublic]


class SimulateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: dict[str, Any]
    dataset: str = Field(default="german_credit", max_length=64,
                         description="german_credit, lending_club, bank_history (the bank's own acted-on "
                         "decisions of the last history_days days), or a dataset stored in the bank's credit data")
    dataset_version: int | None = Field(default=None, ge=1, le=MAX_ID, description="latest when absent")
    baseline_hash: str | None = Field(default=None, description="compare with this version (default: champion)")
    history_days: int = Field(default=90, ge=1, le=730, description="the window of bank_history, in days")
    funding_rate: Decimal | None = Field(default=None, ge=0, le=1, max_digits=9, decimal_places=6,
                                         description="annual cost of funds for the profit (default 0.025)")


class ArmMetricsPublic(BaseModel):
    applications: int
    approved: int
    referred: int
    declined: int
    approval_rate: float
    expected_bad_rate: float | None
    observed_bad_rate: float | None
    known_outcomes: int
    average_limit: str | None
    average_rate: str | None


class ReasonCountPublic(BaseModel):
    code: str
    count: int


class SimulationPublic(BaseModel):
    """The posted policy against the baseline: overall, per segment, who swaps in and out, top reasons."""

    policy: dict[str, str]
    baseline: dict[str, str] | None
    mode: str
    rows: int
    seconds: float
    rows_per_second: float
    overall: ArmMetricsPublic
    baseline_overall: ArmMetricsPublic | None
    segments: dict[str, dict[str, ArmMetricsPublic]]
    swap: dict[str, Any] | None
    top_reasons: list[ReasonCountPublic]
    money: dict[str, Any] | None = Field(default=None, description="volume, expected loss, income, cost and "
                                         "profit overall and by grade, product and channel, with the baseline's "
                                         "and the deltas, and swaps by reason code; amounts as decimal strings")


class ArmPublic(BaseModel):
    arm: str
    policy_hash: str
    decisions: int
    approved: int
    declined: int
    referred: int
    approval_rate: float
    approved_with_outcome: int
    approved_bad: int
    bad_rate: float | None


def lint_public(report: LintReport) -> LintPublic:
    return LintPublic(ok=report.ok, findings=[FindingPublic(severity=f.severity, kind=f.kind, where=f.where,
                                                            message=f.message) for f in report.findings])


def _public(v: svc.PolicyVersion, setup: svc.PolicySetup | None) -> PolicyVersionPublic:
    return PolicyVersionPublic.of(version_view(v, setup))


def _setup_public(setup: svc.PolicySetup | None) -> PolicySetupPublic | None:
    return None if setup is None else PolicySetupPublic.of(setup)


@router.get("/policies", tags=["policies"])
def list_policies(who: CurrentPrincipal, uow: UnitOfWorkDep) -> PolicyListPublic:
    versions, setup = versions_newest_first(uow, who)
    return PolicyListPublic(setup=_setup_public(setup),
                            items=[PolicyVersionPublic.of(v) for v in versions])


class SubmissionPublic(BaseModel):
    """What a version was submitted with, for the checker: the maker's note, lint warnings, golden test
    results, the diff against the champion, and the simulation on the bank's recent history."""

    content_hash: str
    submitted_by: str
    submitted_at: datetime
    note: str
    champion_hash: str | None
    warnings: list[str]
    golden: list[dict[str, Any]]
    simulation: dict[str, Any]
    diff: list[str]


class SubmittedPublic(PolicyVersionPublic):
    warnings: list[str]
    simulation: dict[str, Any]


def _submission_public(uow: UnitOfWork, who: Principal, sub: svc.Submission) -> SubmissionPublic:
    from microlend.decisioning.diff import policy_diff

    diff: list[str] = []
    if sub.champion_hash is not None and sub.champion_hash != sub.content_hash:
        diff = policy_diff(svc.policy_content(uow, who, sub.champion_hash),
                           svc.policy_content(uow, who, sub.content_hash))
    return SubmissionPublic(content_hash=sub.content_hash, submitted_by=sub.submitted_by,
                            submitted_at=sub.submitted_at, note=sub.note, champion_hash=sub.champion_hash,
                            warnings=list(sub.warnings), golden=list(sub.golden), simulation=sub.simulation,
                            diff=diff)


@router.post("/policies", status_code=201, tags=["policies"])
def create_policy(body: PolicyCreate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> Response:
    """Submit a version for publishing (lint and golden tests must pass: 422 lists the findings), or keep
    it as a draft."""
    who.require(Permission.EDIT_POLICIES)
    if body.submit:
        report = svc.lint_for_bank(uow, who, body.content)
        if not report.ok:
            errors = [{"field": f"content.{f.where}", "message": f.text()} for f in report.errors]
            return problem(422, f"content: the policy fails lint ({len(errors)} errors)", code="lint_failed",
                           field="content", errors=errors)
        version, submission = svc.submit_with_evidence(uow, who, body.content, note=body.note)
        submitted = SubmittedPublic(**_public(version, None).model_dump(), warnings=list(submission.warnings),
                                    simulation=submission.simulation)
        return JSONResponse(submitted.model_dump(mode="json"), status_code=201)
    version = svc.save_draft(uow, who, body.content)
    public = _public(version, None)
    return JSONResponse(public.model_dump(mode="json"), status_code=201)


@router.post("/policies/lint", tags=["policies"])
def lint(body: PolicyDocument, who: CurrentPrincipal, uow: UnitOfWorkDep) -> LintPublic:
    """Lint against the bank's reason catalogue, with the sub-decisions it loads from the bank's versions."""
    return lint_public(svc.lint_for_bank(uow, who, body.content))


@router.post("/policies/simulate", tags=["policies"])
def simulate(body: SimulateRequest, who: CurrentPrincipal, uow: UnitOfWorkDep) -> SimulationPublic:
    """Run a posted policy over a historical sample against the baseline (the champion by default)."""
    report = simulation(uow, who, body.content, body.dataset, body.dataset_version, body.baseline_hash,
                        charts=False, history_days=body.history_days, funding_rate=body.funding_rate)
    return SimulationPublic.model_validate(report.as_dict())


@router.get("/policies/report", tags=["policies"])
def arms_report(who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[ArmPublic]:
    """Champion/challenger over the challenger's test window: approval rates per arm and version, and bad
    rates of mature loans as servicing learns them (see `/policies/challenger-report` for the tests)."""
    return [arm_public(a) for a in bank_challenger_report(uow, who).arms]


class ProportionTestPublic(BaseModel):
    champion_rate: float
    challenger_rate: float
    difference: float
    ci_low: float
    ci_high: float
    z: float
    p_value: float
    confidence: float
    significant: bool


class IntervalPublic(BaseModel):
    low: float
    high: float


class SurvivalPointPublic(BaseModel):
    month: int
    at_risk: int
    went_bad: int
    still_good: float


class ArmStatsPublic(BaseModel):
    arm: str
    policy_hashes: list[str]
    decisions: int
    approved: int
    declined: int
    referred: int
    approval_rate: float | None
    approval_rate_ci: IntervalPublic | None
    approved_amount: Decimal
    average_limit: Decimal | None
    average_rate: Decimal | None
    loans: int
    mature_loans: int
    immature_loans: int
    bad_loans: int
    bad_rate: float | None
    bad_rate_ci: IntervalPublic | None
    expected_loss: Decimal
    interest_income: Decimal
    profit: Decimal
    approved_without_pd: int
    survival: list[SurvivalPointPublic]


class ComparisonPublic(BaseModel):
    arm: str = Field(description="challenger (against the champion) or shadow (against the decisions it shadowed)")
    window_start: datetime | None
    baseline: ArmStatsPublic
    candidate: ArmStatsPublic
    approval_rate_test: ProportionTestPublic | None
    bad_rate_test: ProportionTestPublic | None


class ChallengerReportPublic(BaseModel):
    window_start: datetime | None
    as_of: date
    outcome_months: int
    outcome_rule: str
    money_rule: str
    lgd: Decimal
    confidence: float
    arms: list[ArmPublic]
    comparisons: list[ComparisonPublic]
    approval_rate_test: ProportionTestPublic | None
    bad_rate_test: ProportionTestPublic | None


def _interval(ci: tuple[float, float] | None) -> IntervalPublic | None:
    return None if ci is None else IntervalPublic(low=round(ci[0], 6), high=round(ci[1], 6))


def _rate(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


def arm_stats_public(a: ArmStats) -> ArmStatsPublic:
    return ArmStatsPublic(
        arm=a.arm, policy_hashes=list(a.policy_hashes), decisions=a.decisions, approved=a.approved,
        declined=a.declined, referred=a.referred, approval_rate=_rate(a.approval_rate),
        approval_rate_ci=_interval(a.approval_ci), approved_amount=a.approved_amount, average_limit=a.average_limit,
        average_rate=a.average_rate, loans=a.loans, mature_loans=a.mature, immature_loans=a.immature,
        bad_loans=a.bad, bad_rate=_rate(a.bad_rate), bad_rate_ci=_interval(a.bad_ci), expected_loss=a.expected_loss,
        interest_income=a.interest_income, profit=a.profit, approved_without_pd=a.without_pd,
        survival=[SurvivalPointPublic(month=p.month, at_risk=p.at_risk, went_bad=p.went_bad,
                                      still_good=round(p.still_good, 6)) for p in a.survival])


def bank_challenger_report(uow: UnitOfWork, who: Principal, outcome_months: int = OUTCOME_MONTHS) -> ChallengerReport:
    """The report with the bank's own loan outcomes (origination and servicing) and its LGD."""
    who.require(Permission.VIEW_DECISIONS)
    today = utcnow().date()
    return challenger_report(uow, who, outcomes.decision_performance(uow, who, today),
                             outcome_months=outcome_months, lgd=servicing.loss_given_default(uow, who))


OUTCOME_RULE = ("a loan is bad when it was more than 30 days past due or written off within {k} months of being "
                "paid out; it counts only once on book for at least {k} months (younger loans are immature and "
                "left out of the bad rate); the survival curve is Kaplan-Meier by months on book")
MONEY_RULE = ("EAD is the approved limit; expected loss = PD (the model's, per applicant) x LGD (the bank's "
              "provisioning parameter) x EAD; interest income = limit x annual rate x (term + 1) / 24 (equal "
              "principal repayments); profit = income - expected loss")


def challenger_report_public(report: ChallengerReport) -> ChallengerReportPublic:
    return ChallengerReportPublic(
        window_start=report.window_start, as_of=report.as_of, outcome_months=report.outcome_months,
        outcome_rule=OUTCOME_RULE.format(k=report.outcome_months), money_rule=MONEY_RULE, lgd=report.lgd,
        confidence=CONFIDENCE,
        arms=[arm_public(a) for a in report.arms],
        comparisons=[ComparisonPublic(arm=c.arm, window_start=c.window_start, baseline=arm_stats_public(c.baseline),
                                      candidate=arm_stats_public(c.candidate),
                                      approval_rate_test=_test_public(c.approval_test),
                                      bad_rate_test=_test_public(c.bad_rate_test)) for c in report.comparisons],
        approval_rate_test=_test_public(report.approval_test), bad_rate_test=_test_public(report.bad_rate_test))


def _test_public(t: ProportionTest | None) -> ProportionTestPublic | None:
    if t is None:
        return None
    return ProportionTestPublic(champion_rate=round(t.champion_rate, 6), challenger_rate=round(t.challenger_rate, 6),
                                difference=round(t.difference, 6), ci_low=round(t.ci_low, 6),
                                ci_high=round(t.ci_high, 6), z=round(t.z, 4), p_value=round(t.p_value, 6),
                                confidence=t.confidence, significant=t.significant)


@router.get("/policies/challenger-report", tags=["policies"])
def challenger_report_api(who: CurrentPrincipal, uow: UnitOfWorkDep,
                          outcome_months: int = Query(default=OUTCOME_MONTHS, ge=1, le=36)) -> ChallengerReportPublic:
    """The champion against the split challenger since it began, and the shadow against the decisions it
    shadowed since it began: per arm volume, limits, rates, expected loss and profit, approval and bad rates
    (mature loans only) with Wilson intervals, a survival curve, and a two-proportion z-test on each rate."""
    return challenger_report_public(bank_challenger_report(uow, who, outcome_months))


class ChangeRequestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=500)


class ChangeRequestPublic(PublicSchema):
    id: int
    action: str
    content_hash: str
    status: str
    note: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None


class ChangeRequestDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool


@router.get("/policies/changes", tags=["policies"])
def list_policy_changes(who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[ChangeRequestPublic]:
    """Promote and roll back requests waiting for a second person."""
    return [ChangeRequestPublic.of(c) for c in changes.list_changes(uow, who)]


@router.post("/policies/changes/{request_id}/decision", tags=["policies"])
def decide_policy_change(request_id: Id, body: ChangeRequestDecision, who: CurrentPrincipal,
                         uow: UnitOfWorkDep) -> ChangeRequestPublic:
    """Approve (the change is made at once) or reject; whoever asked for it may not (403)."""
    return ChangeRequestPublic.of(changes.decide_change(uow, who, request_id, body.approve))


def arm_public(a: svc.ArmSummary) -> ArmPublic:
    return ArmPublic(arm=a.arm, policy_hash=a.policy_hash, decisions=a.decisions, approved=a.approved,
                     declined=a.declined, referred=a.referred, approval_rate=round(a.approval_rate, 6),
                     approved_with_outcome=a.approved_with_outcome, approved_bad=a.approved_bad,
                     bad_rate=None if a.bad_rate is None else round(a.bad_rate, 6))


@router.post("/policies/challenger", tags=["policies"])
def start_challenger(body: ChallengerStart, who: CurrentPrincipal, uow: UnitOfWorkDep) -> PolicyVersionPublic:
    """Publish a submitted version as the challenger on a share of customers, or in shadow."""
    if body.challenger_share_bp is None and not body.shadow:
        raise ValidationError("challenger_share_bp: give a share in basis points, or shadow: true",
                              field="challenger_share_bp")
    v = svc.publish(uow, who, body.content_hash, challenger_share_bp=body.challenger_share_bp, shadow=body.shadow)
    return _public(v, setup_or_none(uow, who))


@router.delete("/policies/challenger", status_code=204, tags=["policies"])
def stop_challenger(who: CurrentPrincipal, uow: UnitOfWorkDep,
                    arm: Literal["challenger", "shadow"] | None = Query(
                        default=None, description="stop only this run (default: both)")) -> Response:
    svc.stop_challenger(uow, who, arm)
    return Response(status_code=204)


class EvaluateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: dict[str, Any] = Field(description="the policy kind's input as stored: a decision input, or a credit "
                                              "line's review input for a limit review")


@router.post("/policies/{content_hash}/test", tags=["policies"])
def promote_to_test(content_hash: str, who: CurrentPrincipal, uow: UnitOfWorkDep) -> PolicyVersionPublic:
    """Move a draft into the test environment: it must lint clean and its golden tests must all pass."""
    return _public(versions.promote_to_test(uow, who, content_hash), setup_or_none(uow, who))


@router.post("/policies/{content_hash}/evaluate", tags=["policies"])
def evaluate_in_environment(content_hash: str, body: EvaluateRequest, who: CurrentPrincipal, uow: UnitOfWorkDep,
                            environment: Literal["test", "production"] = Query(default="test")) -> dict[str, Any]:
    """Evaluate one input with a version of the test (or production) environment: nothing is stored and no
    live decision changes."""
    return {"content_hash": content_hash, "environment": environment,
            "outputs": versions.evaluate_in_environment(uow, who, content_hash, environment, body.input)}


@router.get("/policies/{content_hash}", tags=["policies"])
def get_policy(content_hash: str, who: CurrentPrincipal, uow: UnitOfWorkDep) -> PolicyDetailPublic:
    v = svc.version_of(uow, who, content_hash)
    content = svc.policy_content(uow, who, content_hash)
    return PolicyDetailPublic(**_public(v, setup_or_none(uow, who)).model_dump(), content=content)


@router.get("/policies/{content_hash}/submission", tags=["policies"])
def get_submission(content_hash: str, who: CurrentPrincipal, uow: UnitOfWorkDep) -> SubmissionPublic:
    """The evidence the version was submitted with (404 for one published without, e.g. the default)."""
    sub = svc.submission_of(uow, who, content_hash)
    if sub is None:
        raise NotFound(f"content_hash: version {content_hash[:12]} was not submitted with evidence",
                       field="content_hash")
    return _submission_public(uow, who, sub)


@router.post("/policies/{content_hash}/promote", status_code=201, tags=["policies"])
def request_promote(content_hash: str, who: CurrentPrincipal, uow: UnitOfWorkDep,
                    body: ChangeRequestCreate | None = None) -> ChangeRequestPublic:
    """Ask for the running challenger to become the champion, unchanged; a second person approves."""
    note = body.note if body else ""
    return ChangeRequestPublic.of(changes.request_change(uow, who, "promote", content_hash, note))


@router.post("/policies/{content_hash}/rollback", status_code=201, tags=["policies"])
def request_rollback(content_hash: str, who: CurrentPrincipal, uow: UnitOfWorkDep,
                     body: ChangeRequestCreate | None = None) -> ChangeRequestPublic:
    """Ask for a retired version to be the champion again; a second person approves."""
    note = body.note if body else ""
    return ChangeRequestPublic.of(changes.request_change(uow, who, "rollback", content_hash, note))


@router.post("/policies/{content_hash}/publish", tags=["policies"])
def publish(content_hash: str, who: CurrentPrincipal, uow: UnitOfWorkDep,
            body: PublishRequest | None = None) -> PolicyVersionPublic:
    """Put a submitted version in force; its author may not (maker-checker: 403)."""
    body = body or PublishRequest()
    v = svc.publish(uow, who, content_hash, challenger_share_bp=body.challenger_share_bp, shadow=body.shadow)
    return _public(v, setup_or_none(uow, who))


# --- limit changes referred by the periodic credit line review ---------------------------------------------


class LimitChangePublic(BaseModel):
    id: int
    credit_line_id: int
    customer_id: int | None
    action: str
    outcome: str
    current_limit: Decimal
    proposed_limit: Decimal
    reasons: list[str]
    status: str
    created_at: datetime
    decided_by: str | None
    proposed_by: str
    policy_hash: str
    evidence: dict[str, Any] = Field(description="the inputs the review decided on (behaviour, score, warnings)")


class LimitChangeDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool


def _limit_change_public(c: Any) -> LimitChangePublic:
    return LimitChangePublic(id=c.id, credit_line_id=c.credit_line_id, customer_id=c.customer_id, action=c.action,
                             outcome=c.outcome, current_limit=round_half_up(c.current_limit),
                             proposed_limit=round_half_up(c.proposed_limit),
                             reasons=list(c.reasons), status=c.status, created_at=c.created_at,
                             decided_by=c.decided_by, proposed_by=c.created_by, policy_hash=c.policy_hash,
                             evidence=c.inputs or {})


@router.get("/limit-changes", tags=["limit review"])
def pending_limit_changes(who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[LimitChangePublic]:
    """Limit changes the periodic review referred to an approver."""
    from microlend.origination.limit_review import pending_limit_changes as pending

    return [_limit_change_public(c) for c in pending(uow, who)]


@router.post("/limit-changes/{change_id}/decision", tags=["limit review"])
def decide_limit_change(change_id: Id, body: LimitChangeDecision, who: CurrentPrincipal,
                        uow: UnitOfWorkDep) -> LimitChangePublic:
    """Apply (through servicing) or reject a referred change; whoever ran the review may not (403)."""
    from microlend.origination.limit_review import decide_limit_change as decide_change

    return _limit_change_public(decide_change(uow, who, change_id, body.approve))
