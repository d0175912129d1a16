"""Decisions and policies over HTTP: decide an application, read and replay a decision, and the policy
life cycle (draft, lint, simulate, submit, publish by a second person, challenger runs, arm reports)."""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import anyio
import anyio.to_thread
import pandas as pd
from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from microlend.api.deps import CurrentPrincipal, UnitOfWorkDep, per_app
from microlend.api.errors import problem
from microlend.core.errors import ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.money import round_half_up
from microlend.core.settings import get_settings
from microlend.core.uow import UnitOfWork
from microlend.decisioning import service as svc
from microlend.decisioning.domain import ApplicationFacts, CustomerFacts, DecisionInput, ModelResult
from microlend.decisioning.lint import LintReport, lint_policy
from microlend.decisioning.reasons import reason
from microlend.decisioning.simulate import SimulationReport
from microlend.origination import queries as outcomes
from microlend.risk.registry import ScoringRuntime

router = APIRouter(prefix="/api/v1", tags=["decisions"])
_scoring = ScoringRuntime()
SAMPLES = ("german_credit", "lending_club")


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
            reasons=[reasons_public(c, locale) for c in record.reasons],
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
    outputs: dict[str, Any]
    created_by: str
    created_at: datetime


class ReplayPublic(BaseModel):
    decision_id: int
    policy_hash: str
    equal: bool
    differences: list[str]
    stored: dict[str, Any]
    replayed: dict[str, Any]


def _model_result(uow: UnitOfWork, who: Principal, body: DecisionCreate) -> ModelResult:
    if body.model is not None:
        return body.model
    if body.profile is None:
        raise ValidationError("model: send a model result, or a profile for the champion model to score",
                              field="model")
    scored = _scoring.score(uow, who, body.profile, subject_type="decision_request",
                            subject_id=body.application_ref or body.customer.customer_id)
    c = scored.champion
    return ModelResult(model_version=c.model_label, score=Decimal(f"{c.score:.2f}"), pd=Decimal(f"{c.pd:.6f}"),
                       reason_codes=tuple(c.reason_codes))


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
    who.require(Permission.DECIDE)
    model = _model_result(uow, who, body)
    decision_input = DecisionInput(application=body.application, customer=body.customer, features=body.features,
                                   model=model)
    record = svc.decide(uow, who, decision_input, application_ref=body.application_ref, locale=locale)
    return DecisionPublic.of(record, model.model_version, locale, (time.perf_counter() - started) * 1000.0)


@router.get("/decisions/{decision_id}")
def get_decision(decision_id: int, who: CurrentPrincipal, uow: UnitOfWorkDep,
                 accept_language: str | None = Header(default=None)) -> DecisionDetailPublic:
    locale = locale_of(accept_language)
    d = svc.decision_detail(uow, who, decision_id, locale)
    base = DecisionPublic.of(d.record, str(d.model_versions.get("model", "")), locale, d.record.latency_ms)
    return DecisionDetailPublic(**base.model_dump(), application_ref=d.application_ref, shadow_of=d.shadow_of,
                                inputs=d.inputs, model_versions=d.model_versions, trace=d.trace, outputs=d.outputs,
                                created_by=d.created_by, created_at=d.created_at)


@router.post("/decisions/{decision_id}/replay")
def replay_decision(decision_id: int, who: CurrentPrincipal, uow: UnitOfWorkDep) -> ReplayPublic:
    """Re-evaluate from the stored inputs and policy version; `equal` says whether the outputs agree."""
    r = svc.replay(uow, who, decision_id)
    return ReplayPublic(decision_id=r.decision_id, policy_hash=r.policy_hash, equal=r.equal,
                        differences=list(r.differences), stored=r.stored, replayed=r.replayed)


# --- policies ----------------------------------------------------------------------------------------------


class PolicyVersionPublic(BaseModel):
    id: int
    name: str
    content_hash: str
    status: str
    arm: str | None  # champion, challenger, shadow while in force
    author: str
    publisher: str | None
    created_at: datetime
    published_at: datetime | None


class PolicySetupPublic(BaseModel):
    champion_hash: str
    challenger_hash: str | None
    challenger_share_bp: int
    challenger_shadow: bool


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
                         description="german_credit, lending_club, or a dataset stored in the bank's credit data")
    dataset_version: int | None = None
    baseline_hash: str | None = Field(default=None, description="compare with this version (default: champion)")


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


def arm_of(setup: svc.PolicySetup | None, content_hash: str, status: str) -> str | None:
    if setup is None or status != "published":
        return None
    if content_hash == setup.champion_hash:
        return "champion"
    if content_hash == setup.challenger_hash:
        return "shadow" if setup.challenger_shadow else "challenger"
    return None


def _setup_or_none(uow: UnitOfWork, who: Principal) -> svc.PolicySetup | None:
    from microlend.core.errors import NotFound

    try:
        return svc.policy_setup(uow, who)
    except NotFound:
        return None


def _public(v: svc.PolicyVersion, setup: svc.PolicySetup | None) -> PolicyVersionPublic:
    return PolicyVersionPublic(id=v.id, name=v.name, content_hash=v.content_hash, status=v.status,
                               arm=arm_of(setup, v.content_hash, v.status), author=v.author, publisher=v.publisher,
                               created_at=v.created_at, published_at=v.published_at)


def _setup_public(setup: svc.PolicySetup | None) -> PolicySetupPublic | None:
    return None if setup is None else PolicySetupPublic(**setup.__dict__)


@router.get("/policies", tags=["policies"])
def list_policies(who: CurrentPrincipal, uow: UnitOfWorkDep) -> PolicyListPublic:
    versions = svc.list_versions(uow, who)
    setup = _setup_or_none(uow, who)
    return PolicyListPublic(setup=_setup_public(setup), items=[_public(v, setup) for v in reversed(versions)])


@router.post("/policies", status_code=201, tags=["policies"])
def create_policy(body: PolicyCreate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> Response:
    """Submit a version for publishing (lint and golden tests must pass: 422 lists the findings), or keep
    it as a draft."""
    who.require(Permission.EDIT_POLICIES)
    if body.submit:
        report = lint_policy(body.content)
        if not report.ok:
            errors = [{"field": f"content.{f.where}", "message": f.text()} for f in report.errors]
            return problem(422, f"content: the policy fails lint ({len(errors)} errors)", code="lint_failed",
                           field="content", errors=errors)
        version = svc.submit(uow, who, body.content, note=body.note)
    else:
        version = svc.save_draft(uow, who, body.content)
    public = _public(version, None)
    return JSONResponse(public.model_dump(mode="json"), status_code=201)


@router.post("/policies/lint", tags=["policies"])
def lint(body: PolicyDocument, who: CurrentPrincipal) -> LintPublic:
    who.require(Permission.VIEW_POLICIES)
    return lint_public(lint_policy(body.content))


@router.post("/policies/simulate", tags=["policies"])
def simulate(body: SimulateRequest, who: CurrentPrincipal, uow: UnitOfWorkDep) -> dict[str, Any]:
    """Run a posted policy over a historical sample against the baseline (the champion by default)."""
    report = simulation(uow, who, body.content, body.dataset, body.dataset_version, body.baseline_hash,
                        charts=False)
    return report.as_dict()


def simulation(uow: UnitOfWork, who: Principal, content: dict[str, Any], dataset: str, version: int | None,
               baseline_hash: str | None, charts: bool = True) -> SimulationReport:
    """The simulation report of `content` on a sample or a stored dataset, against a baseline version."""
    from microlend.decisioning.simulate import simulate as run

    who.require(Permission.EDIT_POLICIES)
    frame = applications_frame(uow, who, dataset, version)
    if baseline_hash is None:
        setup = _setup_or_none(uow, who)
        baseline_hash = setup.champion_hash if setup else None
    baseline = svc.policy_content(uow, who, baseline_hash) if baseline_hash else None
    lint_report = lint_policy(content, run_tests=False)
    if not lint_report.ok:
        raise ValidationError(f"content: {lint_report.errors[0].text()}", field="content")
    return run(content, frame, baseline=baseline, charts=charts)


def applications_frame(uow: UnitOfWork, who: Principal, dataset: str, version: int | None) -> pd.DataFrame:
    from microlend.decisioning.simulate import REQUIRED_COLUMNS

    if dataset in SAMPLES:
        return _sample(dataset).copy()
    from microlend.data.service import load_dataset

    who.require(Permission.MANAGE_DATASETS)
    frame = load_dataset(uow, who, dataset, version)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValidationError(f"dataset: column '{missing[0]}' is missing (columns are named by decision-input "
                              "path, e.g. application.amount)", field="dataset")
    return frame


@lru_cache(maxsize=2)
def _sample(name: str) -> pd.DataFrame:
    from microlend.decisioning.simulate import sample_applications

    return sample_applications(name)


@router.get("/policies/report", tags=["policies"])
def arms_report(who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[ArmPublic]:
    """Champion/challenger: approval rates per arm and version, and bad rates as servicing learns them."""
    return [arm_public(a) for a in svc.arm_summary(uow, who, outcomes.observed_bad(uow, who))]


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
    return _public(v, _setup_or_none(uow, who))


@router.delete("/policies/challenger", status_code=204, tags=["policies"])
def stop_challenger(who: CurrentPrincipal, uow: UnitOfWorkDep) -> Response:
    svc.stop_challenger(uow, who)
    return Response(status_code=204)


@router.get("/policies/{content_hash}", tags=["policies"])
def get_policy(content_hash: str, who: CurrentPrincipal, uow: UnitOfWorkDep) -> PolicyDetailPublic:
    v = svc.version_of(uow, who, content_hash)
    content = svc.policy_content(uow, who, content_hash)
    return PolicyDetailPublic(**_public(v, _setup_or_none(uow, who)).model_dump(), content=content)


@router.post("/policies/{content_hash}/publish", tags=["policies"])
def publish(content_hash: str, who: CurrentPrincipal, uow: UnitOfWorkDep,
            body: PublishRequest | None = None) -> PolicyVersionPublic:
    """Put a submitted version in force; its author may not (maker-checker: 403)."""
    body = body or PublishRequest()
    v = svc.publish(uow, who, content_hash, challenger_share_bp=body.challenger_share_bp, shadow=body.shadow)
    return _public(v, _setup_or_none(uow, who))


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


class LimitChangeDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool


def _limit_change_public(c: Any) -> LimitChangePublic:
    return LimitChangePublic(id=c.id, credit_line_id=c.credit_line_id, customer_id=c.customer_id, action=c.action,
                             outcome=c.outcome, current_limit=round_half_up(c.current_limit),
                             proposed_limit=round_half_up(c.proposed_limit),
                             reasons=list(c.reasons), status=c.status, created_at=c.created_at,
                             decided_by=c.decided_by)


@router.get("/limit-changes", tags=["limit review"])
def pending_limit_changes(who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[LimitChangePublic]:
    """Limit changes the periodic review referred to an approver."""
    from microlend.origination.limit_review import pending_limit_changes as pending

    return [_limit_change_public(c) for c in pending(uow, who)]


@router.post("/limit-changes/{change_id}/decision", tags=["limit review"])
def decide_limit_change(change_id: int, body: LimitChangeDecision, who: CurrentPrincipal,
                        uow: UnitOfWorkDep) -> LimitChangePublic:
    """Apply (through servicing) or reject a referred change; whoever ran the review may not (403)."""
    from microlend.origination.limit_review import decide_limit_change as decide_change

    return _limit_change_public(decide_change(uow, who, change_id, body.approve))
