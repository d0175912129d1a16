"""增信提额 the limit management desk over HTTP: the candidates of the periodic review with their evidence,
the officer's recommendation, the approver's decision (four eyes, authority by amount), the bank's authority
setting and the monthly behaviour score run."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from microlend.api.deps import CurrentPrincipal, Id, UnitOfWorkDep
from microlend.api.routing import api_router
from microlend.api.schemas import DecimalStr, MoneyStr
from microlend.decisioning.limit_changes import (
    LimitAuthority,
    LimitChange,
    read_limit_authority,
    update_limit_authority,
)
from microlend.origination import limit_desk as desk
from microlend.origination.behaviour_scoring import score_portfolio

router = api_router(prefix="/api/v1/limit-desk", tags=["limit desk"])


def _locale(request: Request) -> str:
    return "en" if (request.headers.get("accept-language") or "").lower().startswith("en") else "zh_CN"


class FactorPublic(BaseModel):
    name: str
    label: str
    value: int | None
    points: int
    text: str


class CandidatePublic(BaseModel):
    id: int
    credit_line_id: int
    customer_id: int | None
    customer_name: str
    action: str
    outcome: str
    status: str
    current_limit: MoneyStr
    proposed_limit: MoneyStr
    drawn: MoneyStr | None
    utilisation: DecimalStr | None
    current_dpd: int | None
    max_dpd_6m: int | None
    score: int | None
    band: str
    factors: list[FactorPublic]
    reasons: list[str]
    why: list[str] = Field(description="the reasons in the reader's language")
    proposed_by: str
    recommendation: str | None
    recommended_by: str | None
    officer_note: str
    decided_by: str | None
    decision_note: str
    can_decide: bool
    refusal: str

    @classmethod
    def of(cls, c: desk.Candidate) -> CandidatePublic:
        ch = c.change
        return cls(id=ch.id, credit_line_id=ch.credit_line_id, customer_id=ch.customer_id,
                   customer_name=c.customer_name, action=ch.action, outcome=ch.outcome, status=ch.status,
                   current_limit=ch.current_limit, proposed_limit=ch.proposed_limit, drawn=c.drawn,
                   utilisation=c.utilisation, current_dpd=c.current_dpd, max_dpd_6m=c.max_dpd_6m, score=c.score,
                   band=c.band, factors=[FactorPublic(name=f.name, label=f.label, value=f.value, points=f.points,
                                                      text=f.text) for f in c.factors],
                   reasons=list(ch.reasons), why=list(c.why), proposed_by=ch.created_by,
                   recommendation=ch.recommendation, recommended_by=ch.recommended_by,
                   officer_note=ch.officer_note, decided_by=ch.decided_by, decision_note=ch.decision_note,
                   can_decide=c.can_decide, refusal=c.refusal)


class ChangeSummary(BaseModel):
    id: int
    action: str
    status: str
    current_limit: MoneyStr
    proposed_limit: MoneyStr
    created_at: datetime
    decided_by: str | None

    @classmethod
    def of(cls, c: LimitChange) -> ChangeSummary:
        return cls(id=c.id, action=c.action, status=c.status, current_limit=c.current_limit,
                   proposed_limit=c.proposed_limit, created_at=c.created_at, decided_by=c.decided_by)


class ScorePoint(BaseModel):
    month: str
    as_of: date
    score: int
    band: str


class CasePublic(BaseModel):
    candidate: CandidatePublic
    history: list[ChangeSummary]
    scores: list[ScorePoint]
    your_authority: MoneyStr


class Recommendation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recommendation: Literal["support", "oppose"]
    note: str = Field(min_length=1, max_length=1000)


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool
    note: str = Field(default="", max_length=1000)


class AuthorityPublic(BaseModel):
    role_limits: dict[str, MoneyStr]
    automatic_limit: MoneyStr
    updated_by: str

    @classmethod
    def of(cls, a: LimitAuthority) -> AuthorityPublic:
        return cls(role_limits=dict(a.role_limits), automatic_limit=a.automatic_limit, updated_by=a.updated_by)


class AuthorityUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role_limits: dict[str, Decimal] = Field(description="per role, the largest increase one person may approve")
    automatic_limit: Decimal = Field(description="the largest increase the review applies by itself")


class BehaviourRunPublic(BaseModel):
    business_date: date
    month: str
    scored: int
    bands: dict[str, int]


@router.get("/candidates")
def candidates(request: Request, who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[CandidatePublic]:
    """The officer's customers' candidates (all of the bank's for an approver), with their evidence."""
    return [CandidatePublic.of(c) for c in desk.officer_candidates(uow, who, _locale(request))]


@router.get("/approvals")
def approvals(request: Request, who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[CandidatePublic]:
    """Every pending change for an approver, saying which the caller may decide."""
    return [CandidatePublic.of(c) for c in desk.approver_queue(uow, who, _locale(request))]


@router.get("/candidates/{change_id}")
def get_case(change_id: Id, request: Request, who: CurrentPrincipal, uow: UnitOfWorkDep) -> CasePublic:
    found = desk.case(uow, who, change_id, _locale(request))
    return CasePublic(candidate=CandidatePublic.of(found.candidate),
                      history=[ChangeSummary.of(c) for c in found.history],
                      scores=[ScorePoint(month=s.month, as_of=s.as_of, score=s.score, band=s.band)
                              for s in found.scores],
                      your_authority=found.authority)


@router.post("/candidates/{change_id}/recommendation")
def recommend(change_id: Id, body: Recommendation, request: Request, who: CurrentPrincipal,
              uow: UnitOfWorkDep) -> CandidatePublic:
    """The customer's officer supports or opposes the change, with a note for the approver."""
    desk.recommend(uow, who, change_id, body.recommendation, body.note)
    return CandidatePublic.of(desk.case(uow, who, change_id, _locale(request)).candidate)


@router.post("/candidates/{change_id}/decision")
def decide(change_id: Id, body: Decision, request: Request, who: CurrentPrincipal,
           uow: UnitOfWorkDep) -> CandidatePublic:
    """Apply or reject the change; not whoever proposed or recommended it, and an increase only within the
    caller's authority (403 above it)."""
    desk.decide(uow, who, change_id, body.approve, body.note)
    return CandidatePublic.of(desk.case(uow, who, change_id, _locale(request)).candidate)


@router.get("/authority")
def get_authority(who: CurrentPrincipal, uow: UnitOfWorkDep) -> AuthorityPublic:
    """The bank's authority by amount on the limit desk, for staff who read its credit policies."""
    return AuthorityPublic.of(read_limit_authority(uow, who))


@router.put("/authority")
def put_authority(body: AuthorityUpdate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> AuthorityPublic:
    """The bank's authority by amount (an administrator's act)."""
    return AuthorityPublic.of(update_limit_authority(uow, who, body.role_limits, body.automatic_limit))


@router.post("/behaviour-scores", status_code=201)
def run_behaviour_scores(who: CurrentPrincipal, uow: UnitOfWorkDep) -> BehaviourRunPublic:
    """Score every open line and active loan on the business date and keep them as this month's."""
    run = score_portfolio(uow, who)
    return BehaviourRunPublic(business_date=run.business_date, month=run.month, scored=run.scored, bands=run.bands)
