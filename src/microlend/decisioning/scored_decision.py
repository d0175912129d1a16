"""Deciding an application whose model result may still be missing: without one, the bank's champion model
scores the applicant's profile first (and its challenger in shadow), then the policy in force decides."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from microlend.core.errors import ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.decisioning import service as svc
from microlend.decisioning.domain import (
    ApplicationFacts,
    CapacityFacts,
    CustomerFacts,
    DataFacts,
    DecisionInput,
    ExposureFacts,
    ModelResult,
)
from microlend.risk.registry import ScoringRuntime

_scoring = ScoringRuntime()


def decide_application(uow: UnitOfWork, who: Principal, *, application: ApplicationFacts, customer: CustomerFacts,
                       features: dict[str, float | None], model: ModelResult | None, profile: dict[str, Any] | None,
                       application_ref: str | None, locale: str, exposure: ExposureFacts | None = None,
                       capacity: CapacityFacts | None = None,
                       data: DataFacts | None = None) -> tuple[svc.DecisionRecord, str]:
    """The stored decision and the version of the model whose result it used."""
    who.require(Permission.DECIDE)
    provenance = None
    if model is None:
        model, provenance = _champion(uow, who, profile, subject_id=application_ref or customer.customer_id)
    decision_input = DecisionInput(application=application, customer=customer, features=features, model=model,
                                   exposure=exposure or ExposureFacts(), capacity=capacity or CapacityFacts(),
                                   data=data or DataFacts())
    record = svc.decide(uow, who, decision_input, application_ref=application_ref, locale=locale,
                        model_provenance=provenance)
    return record, model.model_version


def champion_result(uow: UnitOfWork, who: Principal, profile: dict[str, Any] | None, *,
                    subject_id: str) -> ModelResult:
    return _champion(uow, who, profile, subject_id=subject_id)[0]


def _champion(uow: UnitOfWork, who: Principal, profile: dict[str, Any] | None, *,
              subject_id: str) -> tuple[ModelResult, dict[str, Any]]:
    """The champion's result, and which versions scored (a joint model's partner call with them)."""
    if profile is None:
        raise ValidationError("model: send a model result, or a profile for the champion model to score",
                              field="model")
    scored = _scoring.score(uow, who, profile, subject_type="decision_request", subject_id=subject_id)
    c = scored.champion
    return ModelResult(model_version=c.model_label, score=Decimal(f"{c.score:.2f}"), pd=Decimal(f"{c.pd:.6f}"),
                       reason_codes=tuple(c.reason_codes)), scored.provenance()
