"""Bad-loan API: write-off requests with four eyes (核销), the off-balance register, judgement downgrades of
the five-category class and the bank's bad-loan settings. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from microlend.api.deps import CurrentPrincipal, Id, Limit, Offset, OptionalId, UnitOfWorkDep
from microlend.api.routers.servicing import LoanPublic, ReasonBody
from microlend.api.routing import api_router
from microlend.api.schemas import MoneyStr, PublicSchema
from microlend.servicing import service
from microlend.servicing.writeoff import BadLoanPolicy

router = api_router(prefix="/api/v1", tags=["servicing"])

ClassName = Literal["normal", "special_mention", "substandard", "doubtful", "loss"]


class WriteOffCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)
    reason_code: str = Field(default="", max_length=40,
                             description="a documented reason of the bank's (e.g. bankruptcy); needs documents")
    documents: list[str] = Field(default_factory=list, max_length=20,
                                 description="references of the supporting documents (file numbers, court rulings)")


class WriteOffPublic(PublicSchema):
    id: int
    loan_id: int
    status: str = Field(description="pending | approved | rejected")
    reason_code: str
    reason: str
    documents: list[str]
    loan_class: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str
    written_off_on: date | None
    principal: MoneyStr
    interest: MoneyStr
    penalty: MoneyStr
    charged: MoneyStr
    against_allowance: MoneyStr
    shortfall: MoneyStr
    recovered: MoneyStr
    journal_entry_id: int | None


class ClassificationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_class: ClassName
    reason: str = Field(min_length=1, max_length=500)


class BadLoanSettingsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    writeoff_classes: list[ClassName]
    writeoff_reasons: list[str] = Field(max_length=50)
    cure_months: int = Field(ge=0, le=36)
    cure_periods: int = Field(ge=0, le=24)


def _settings(policy: BadLoanPolicy) -> BadLoanSettingsBody:
    return BadLoanSettingsBody(writeoff_classes=sorted(policy.writeoff_classes),
                               writeoff_reasons=sorted(policy.writeoff_reasons), cure_months=policy.cure_months,
                               cure_periods=policy.cure_periods)


@router.post("/loans/{loan_id}/write-off", status_code=202)
def request_write_off(loan_id: Id, body: WriteOffCreate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> WriteOffPublic:
    """Ask for a loan to be written off: 202, a pending request; a second person approves or rejects it."""
    return WriteOffPublic.of(service.request_write_off(uow, who, loan_id, body.reason, reason_code=body.reason_code,
                                                       documents=body.documents))


@router.get("/write-offs")
def list_write_offs(
    who: CurrentPrincipal, uow: UnitOfWorkDep, limit: Limit = 100, offset: Offset = 0,
    status: Literal["pending", "approved", "rejected"] | None = Query(default=None),
    loan_id: OptionalId = None,
) -> list[WriteOffPublic]:
    return [WriteOffPublic.of(v) for v in service.list_write_offs(uow, who, status=status, loan_id=loan_id,
                                                                  limit=limit, offset=offset)]


@router.get("/write-offs/{write_off_id}")
def get_write_off(write_off_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> WriteOffPublic:
    return WriteOffPublic.of(service.get_write_off(uow, who, write_off_id))


@router.post("/write-offs/{write_off_id}/approve", status_code=201)
def approve_write_off(write_off_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> WriteOffPublic:
    """四眼 a second person with the authority approves: the loan is written off against the allowance."""
    return WriteOffPublic.of(service.approve_write_off(uow, who, write_off_id))


@router.post("/write-offs/{write_off_id}/reject", status_code=201)
def reject_write_off(write_off_id: Id, body: ReasonBody, who: CurrentPrincipal, uow: UnitOfWorkDep) -> WriteOffPublic:
    return WriteOffPublic.of(service.reject_write_off(uow, who, write_off_id, body.reason))


@router.post("/loans/{loan_id}/classification", status_code=201)
def downgrade(loan_id: Id, body: ClassificationBody, who: CurrentPrincipal, uow: UnitOfWorkDep) -> LoanPublic:
    """A judgement downgrade of the loan's five-category class, with the reason."""
    return LoanPublic.of(service.downgrade_loan(uow, who, loan_id, body.to_class, body.reason))


class ClassChangePublic(PublicSchema):
    business_date: date
    from_class: str
    to_class: str
    days_past_due: int
    reason: str
    changed_by: str


@router.get("/loans/{loan_id}/class-changes")
def class_changes(loan_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> list[ClassChangePublic]:
    """The loan's five-category class changes, oldest first, each with its reason."""
    return [ClassChangePublic.of(v) for v in service.class_history(uow, who, loan_id)]


@router.get("/bad-loan-settings")
def get_bad_loan_settings(who: CurrentPrincipal, uow: UnitOfWorkDep) -> BadLoanSettingsBody:
    return _settings(service.bad_loan_settings(uow, who))


@router.put("/bad-loan-settings")
def put_bad_loan_settings(body: BadLoanSettingsBody, who: CurrentPrincipal, uow: UnitOfWorkDep) -> BadLoanSettingsBody:
    policy = BadLoanPolicy(frozenset(body.writeoff_classes), frozenset(body.writeoff_reasons), body.cure_months,
                           body.cure_periods)
    return _settings(service.set_bad_loan_settings(uow, who, policy))
