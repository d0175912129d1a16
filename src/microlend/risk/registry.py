"""The model registry (模型注册) and scoring runtime: versions move draft -> validated -> approved (four eyes)
-> champion or challenger -> retired; the tenant's champion scores, its challenger scores in shadow."""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import microlend.risk
from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Permission, Principal, Role, system_principal
from microlend.core.settings import get_settings
from microlend.core.tables import TenantRow
from microlend.core.uow import UnitOfWork
from microlend.risk.artefacts import METADATA_FILE, Artefact, load_model, read_metadata
from microlend.risk.expert import ExpertScorecardModel
from microlend.risk.federation.joint_scoring import PARTNER_NO_CONSENT, PARTNER_UNAVAILABLE, HeteroLrModel
from microlend.risk.federation.online import OnlinePartners, PartnerAnswer, PartnerSubject
from microlend.risk.gates import ModelGates, evaluate, failures, gates_apply
from microlend.risk.gates import summary as gate_summary
from microlend.risk.gbdt import GbdtModel
from microlend.risk.reasons import Reason, missing_wording, worded
from microlend.risk.scorecard import ScorecardModel
from microlend.risk.tables import ModelScoreRow, ModelSignoffRow, ModelVersionRow, RiskSettingsRow

PACKAGE_PREFIX = "package:"


class ModelStatus(StrEnum):
    DRAFT = "draft"
    VALIDATED = "validated"
    APPROVED = "approved"
    CHAMPION = "champion"
    CHALLENGER = "challenger"
    RETIRED = "retired"


S = ModelStatus
#: which status may follow which
TRANSITIONS: dict[ModelStatus, frozenset[ModelStatus]] = {
    S.DRAFT: frozenset({S.VALIDATED, S.RETIRED}),
    S.VALIDATED: frozenset({S.APPROVED, S.RETIRED}),
    S.APPROVED: frozenset({S.CHAMPION, S.CHALLENGER, S.RETIRED}),
    S.CHALLENGER: frozenset({S.CHAMPION, S.RETIRED}),
    S.CHAMPION: frozenset({S.RETIRED}),
    S.RETIRED: frozenset(),
}
APPROVER_ROLES = (Role.RISK_ANALYST, Role.ADMIN)


@dataclass(frozen=True)
class ModelVersion:
    """A registry entry as callers see it."""

    id: int
    tenant_id: int
    name: str
    version: int
    kind: str
    status: str
    content_hash: str
    dataset_hash: str
    target: str
    bad: str
    features: list[str]
    parameters: dict[str, Any]
    metrics: dict[str, Any]
    store_path: str
    trained_by: int
    trained_by_name: str
    approved_by: int | None
    approved_by_name: str | None
    created_at: datetime
    status_changed_at: datetime
    validated_by: int | None = None
    validated_by_name: str | None = None
    validated_at: datetime | None = None
    approved_at: datetime | None = None

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    @classmethod
    def from_row(cls, r: ModelVersionRow, signoffs: Sequence[ModelSignoffRow] = ()) -> ModelVersion:
        steps = {s.step: s for s in signoffs}
        validated, approved = steps.get(S.VALIDATED.value), steps.get(S.APPROVED.value)
        return cls(r.id, r.tenant_id, r.name, r.version, r.kind, r.status, r.content_hash, r.dataset_hash,
                   r.target, r.bad, list(r.features), dict(r.parameters), dict(r.metrics), r.store_path,
                   r.trained_by, r.trained_by_name, r.approved_by, r.approved_by_name, r.created_at,
                   r.status_changed_at, validated.user_id if validated else None,
                   validated.username if validated else None, validated.at if validated else None,
                   approved.at if approved else None)


def _signoffs(session: Session, tenant_id: int, ids: Sequence[int]) -> dict[int, list[ModelSignoffRow]]:
    out: dict[int, list[ModelSignoffRow]] = {}
    if ids:
        for s in session.execute(select(ModelSignoffRow).where(
                ModelSignoffRow.tenant_id == tenant_id, ModelSignoffRow.model_version_id.in_(list(ids)))).scalars():
            out.setdefault(s.model_version_id, []).append(s)
    return out


def _view(session: Session, row: ModelVersionRow) -> ModelVersion:
    """A version as callers see it, with who validated and approved it and when."""
    return ModelVersion.from_row(row, _signoffs(session, row.tenant_id, [row.id]).get(row.id, []))


def _sign(session: Session, who: Principal, row: ModelVersionRow, step: ModelStatus, note: str) -> None:
    session.add(ModelSignoffRow(tenant_id=row.tenant_id, model_version_id=row.id, step=step.value,
                                user_id=who.user_id, username=who.username, at=utcnow(), note=note))
    session.flush()


def _summary(row: ModelVersionRow) -> dict[str, Any]:
    return {"name": row.name, "version": row.version, "kind": row.kind, "status": row.status,
            "content_hash": row.content_hash}


def resolve_store_path(store_path: str) -> Path:
    """A registry path on disk; 'package:...' points inside the installed microlend.risk package."""
    if store_path.startswith(PACKAGE_PREFIX):
        return Path(microlend.risk.__file__).parent / store_path[len(PACKAGE_PREFIX):]
    return Path(store_path)


def default_store_root() -> Path:
    return get_settings().data_dir / "models"


def _get(session: Session, who: Principal, version_id: int) -> ModelVersionRow:
    row = session.get(ModelVersionRow, version_id)
    if row is None or row.tenant_id != who.tenant_id:
        raise NotFound(f"model version {version_id} not found")
    return row


def _check_transition(row: ModelVersionRow, to: ModelStatus) -> None:
    current = ModelStatus(row.status)
    if to not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing (it is retired)"
        raise Conflict(f"status: model version {row.id} is {current.value}; it can become {allowed}, "
                       f"not {to.value}", field="status")


def _move(session: Session, who: Principal, row: ModelVersionRow, to: ModelStatus, reason: str = "") -> None:
    _check_transition(row, to)
    before = _summary(row)
    row.status = to.value
    row.status_changed_at = utcnow()
    session.flush()
    audit.record(session, who, f"model.{to.value}", "model_version", row.id, before=before, after=_summary(row),
                 reason=reason)


# --- use cases ---------------------------------------------------------------------------------------------

def register_model(
    uow: UnitOfWork, who: Principal, directory: str | Path, *, name: str = "", store_root: Path | None = None,
) -> ModelVersion:
    """Copy a saved model into the registry's store as a draft; the caller is recorded as its trainer."""
    who.require(Permission.TRAIN_MODELS)
    artefact = load_model(directory)
    meta = artefact.metadata
    name = (name or meta.name or f"{meta.kind}-{meta.target}").strip()[:100]
    if not name:
        raise ValidationError("name: give the model a name", field="name")
    target_dir = (store_root or default_store_root()) / str(who.tenant_id) / meta.content_hash
    with uow:
        s = uow.session
        clash = s.execute(select(ModelVersionRow).where(
            ModelVersionRow.tenant_id == who.tenant_id, ModelVersionRow.content_hash == meta.content_hash
        )).scalar_one_or_none()
        if clash is not None:
            raise Conflict(f"model: this model is already registered as {clash.name} v{clash.version} "
                           f"(version id {clash.id})", field="model")
        _copy_files(artefact, target_dir)
        version = (s.execute(select(func.max(ModelVersionRow.version)).where(
            ModelVersionRow.tenant_id == who.tenant_id, ModelVersionRow.name == name)).scalar() or 0) + 1
        now = utcnow()
        row = ModelVersionRow(
            tenant_id=who.tenant_id, name=name, version=version, kind=meta.kind, status=S.DRAFT.value,
            content_hash=meta.content_hash, dataset_hash=meta.dataset_hash, target=meta.target, bad=meta.bad,
            features=list(meta.features), parameters=meta.parameters, metrics=meta.metrics,
            store_path=str(target_dir), trained_by=who.user_id, trained_by_name=who.username,
            created_at=now, status_changed_at=now,
        )
        s.add(row)
        s.flush()
        audit.record(s, who, "model.register", "model_version", row.id, after=_summary(row))
        result = ModelVersion.from_row(row)
        uow.commit()
    return result


def _copy_files(artefact: Artefact, target_dir: Path) -> None:
    target_dir.mkdir(parents=True, exist_ok=True)
    for file_name in [*artefact.metadata.files, METADATA_FILE, "report.html", "report.json"]:
        source = artefact.directory / file_name
        if source.is_file():
            shutil.copyfile(source, target_dir / file_name)


def _reason_names(row: ModelVersionRow) -> list[str]:
    """What a model's reasons are named by: its features, or an expert scorecard's reason codes."""
    if row.kind != "expert":
        return list(row.features)
    model = load_model(resolve_store_path(row.store_path)).model
    assert isinstance(model, ExpertScorecardModel)
    return [c.reason_code for c in model.characteristics]


def mark_validated(uow: UnitOfWork, who: Principal, version_id: int, *, note: str = "") -> ModelVersion:
    """A model validator other than the trainer validates a draft that passes every one of the bank's model
    gates (sample size, hold-out AUC and KS, train-test gap, out-of-time stability). The gates do not apply to
    an expert scorecard (no development sample): the validator validates its points table on judgement."""
    who.require(Permission.VALIDATE_MODELS)
    with uow:
        row = _get(uow.session, who, version_id)
        if row.trained_by == who.user_id:
            raise PermissionDenied(f"validate: {who.username} trained model version {row.id}; an independent "
                                   "validator must validate it")
        holdout = row.metrics.get("test") or row.metrics.get("oot") or {}
        statistical = gates_apply(row.kind)
        if statistical and "auc" not in holdout:
            raise Conflict(f"metrics: model version {row.id} has no hold-out validation figures", field="metrics")
        _check_transition(row, S.VALIDATED)
        failed = failures(evaluate(row.metrics, gates_of(uow.session, who.tenant_id))) if statistical else []
        if failed:
            raise Conflict(f"gates: model version {row.id} fails the bank's model gates: {'; '.join(failed)}",
                           field="gates")
        unworded = missing_wording(_reason_names(row), (row.parameters or {}).get("reason_wording"))
        if unworded:
            raise Conflict(f"reasons: model version {row.id} has no reason wording (en and zh-CN) for "
                           f"{', '.join(unworded)}; declare a 'reason' for them in the dataset contract",
                           field="reasons")
        _move(uow.session, who, row, S.VALIDATED, reason=note)
        _sign(uow.session, who, row, S.VALIDATED, note)
        result = _view(uow.session, row)
        uow.commit()
    return result


def approve_model(uow: UnitOfWork, who: Principal, version_id: int, *, note: str = "") -> ModelVersion:
    """A third person approves a validated model: a risk analyst or admin who neither trained nor validated it."""
    who.require(Permission.APPROVE_MODELS)
    if not who.has_role(*APPROVER_ROLES):
        raise PermissionDenied("approve: only a risk analyst or an admin approves models")
    with uow:
        row = _get(uow.session, who, version_id)
        if row.trained_by == who.user_id:
            raise PermissionDenied(f"approve: {who.username} trained model version {row.id}; a different "
                                   "person must approve it (four eyes)")
        if _view(uow.session, row).validated_by == who.user_id:
            raise PermissionDenied(f"approve: {who.username} validated model version {row.id}; a third person "
                                   "must approve it")
        _move(uow.session, who, row, S.APPROVED, reason=note)
        row.approved_by = who.user_id
        row.approved_by_name = who.username
        _sign(uow.session, who, row, S.APPROVED, note)
        result = _view(uow.session, row)
        uow.commit()
    return result


def promote_model(uow: UnitOfWork, who: Principal, version_id: int, role: str) -> ModelVersion:
    """Put an approved model (or the challenger) in use; the one it replaces in that role is retired."""
    who.require(Permission.APPROVE_MODELS)
    try:
        to = ModelStatus(role)
    except ValueError:
        raise ValidationError(f"role: must be champion or challenger, not '{role}'", field="role") from None
    if to not in (S.CHAMPION, S.CHALLENGER):
        raise ValidationError(f"role: must be champion or challenger, not '{role}'", field="role")
    with uow:
        s = uow.session
        row = _get(s, who, version_id)
        if row.approved_by is None:
            raise Conflict(f"status: model version {row.id} has not been approved", field="status")
        _check_transition(row, to)  # before the incumbent is touched, so a refused move changes nothing
        incumbents = s.execute(select(ModelVersionRow).where(
            ModelVersionRow.tenant_id == who.tenant_id, ModelVersionRow.status == to.value,
            ModelVersionRow.id != row.id)).scalars().all()
        for old in incumbents:
            _move(s, who, old, S.RETIRED, reason=f"replaced as {to.value} by model version {row.id}")
        _move(s, who, row, to)
        result = _view(s, row)
        uow.commit()
    return result


def retire_model(uow: UnitOfWork, who: Principal, version_id: int, *, reason: str = "") -> ModelVersion:
    who.require(Permission.APPROVE_MODELS)
    with uow:
        row = _get(uow.session, who, version_id)
        _move(uow.session, who, row, S.RETIRED, reason=reason)
        result = _view(uow.session, row)
        uow.commit()
    return result


def get_model_version(uow: UnitOfWork, who: Principal, version_id: int) -> ModelVersion:
    who.require(Permission.VIEW_MODELS)
    with uow:
        return _view(uow.session, _get(uow.session, who, version_id))


def list_model_versions(uow: UnitOfWork, who: Principal, *, status: str | None = None) -> list[ModelVersion]:
    who.require(Permission.VIEW_MODELS)
    with uow:
        query = select(ModelVersionRow).where(ModelVersionRow.tenant_id == who.tenant_id)
        if status is not None:
            query = query.where(ModelVersionRow.status == status)
        rows = uow.session.execute(query.order_by(ModelVersionRow.id)).scalars()
        listed = list(rows)
        signoffs = _signoffs(uow.session, who.tenant_id, [r.id for r in listed])
        return [ModelVersion.from_row(r, signoffs.get(r.id, [])) for r in listed]


# --- the bank's model gates ---------------------------------------------------------------------------------

def gates_of(session: Session, tenant_id: int) -> ModelGates:
    """The tenant's model gates; the defaults until the bank sets its own."""
    row = session.get(RiskSettingsRow, tenant_id)
    return ModelGates() if row is None else ModelGates().updated(row.gates)


def model_gates(uow: UnitOfWork, who: Principal) -> ModelGates:
    who.require(Permission.VIEW_MODELS)
    with uow:
        return gates_of(uow.session, who.tenant_id)


def set_model_gates(uow: UnitOfWork, who: Principal, changes: Mapping[str, Any]) -> ModelGates:
    """Change some of the bank's model gates (the others keep their values); audited with before and after."""
    who.require(Permission.MANAGE_MODEL_GATES)
    with uow:
        s = uow.session
        before = gates_of(s, who.tenant_id)
        after = before.updated(changes)
        row = s.get(RiskSettingsRow, who.tenant_id)
        now = utcnow()
        if row is None:
            row = RiskSettingsRow(tenant_id=who.tenant_id, gates=after.to_dict(), updated_by=who.user_id,
                                  updated_by_name=who.username, updated_at=now)
            s.add(row)
        else:
            row.gates, row.updated_by, row.updated_by_name, row.updated_at = (after.to_dict(), who.user_id,
                                                                              who.username, now)
        s.flush()
        audit.record(s, who, "model.gates", "risk_settings", who.tenant_id, before=before.to_dict(),
                     after=after.to_dict())
        uow.commit()
    return after


def gate_results(uow: UnitOfWork, who: Principal, version: ModelVersion) -> dict[str, Any]:
    """A version's figures against the bank's gates as they stand now (what validation will check)."""
    return gate_summary(version.metrics, model_gates(uow, who), kind=version.kind)


# --- scoring runtime ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelScore:
    """One model's answer for one case, with the version that gave it."""

    model_version_id: int
    model_label: str
    kind: str
    role: str
    pd: float
    score: float
    reasons: list[Reason]
    unseen: list[str] = field(default_factory=list)  # features whose category was never seen in training
    #: a joint model's partner: "" (not a joint model), "joint" (it answered), or why the bank-only model scored
    partner: str = ""
    #: a joint model's partner call: "joint", "no_consent" (not asked), "unavailable"; "" for any other model
    partner_outcome: str = ""
    #: how long the partner took to answer or fail (milliseconds), when it was asked
    partner_ms: float | None = None

    @property
    def reason_codes(self) -> tuple[str, ...]:
        return tuple(r.feature for r in self.reasons)

    def provenance(self) -> dict[str, Any]:
        """Which version scored, and for a joint model how its partner call went (for the decision's record)."""
        out: dict[str, Any] = {"id": self.model_version_id, "label": self.model_label, "kind": self.kind}
        if self.partner_outcome:
            out["partner"] = {"outcome": self.partner_outcome, "latency_ms": self.partner_ms,
                              "reason": "" if self.partner == "joint" else self.partner}
        return out


@dataclass(frozen=True)
class ScoringOutcome:
    champion: ModelScore
    challenger: ModelScore | None

    def provenance(self) -> dict[str, Any]:
        """The champion's and the challenger's versions and partner calls, as a decision records them."""
        return {"champion": self.champion.provenance(),
                "challenger": None if self.challenger is None else self.challenger.provenance()}


class ScoringRuntime:
    """Scores with the tenant's champion (and its challenger, in shadow), recording which version scored.

    Artefacts are loaded once per content hash and kept; a newly promoted model is picked up at once."""

    def __init__(self, partners: OnlinePartners | None = None) -> None:
        self._cache: dict[str, Artefact] = {}
        self._partners = partners

    @property
    def partners(self) -> OnlinePartners:
        if self._partners is None:
            self._partners = OnlinePartners()
        return self._partners

    def artefact(self, version: ModelVersion) -> Artefact:
        cached = self._cache.get(version.content_hash)
        if cached is None:
            cached = load_model(resolve_store_path(version.store_path))
            if cached.metadata.content_hash != version.content_hash:
                raise Conflict(f"model: the stored files of {version.label} do not match its registered hash")
            self._cache[version.content_hash] = cached
        return cached

    def in_use(self, uow: UnitOfWork, who: Principal) -> tuple[ModelVersion, ModelVersion | None]:
        """The tenant's champion and challenger versions."""
        who.require(Permission.SCORE)
        with uow:
            rows = uow.session.execute(select(ModelVersionRow).where(
                ModelVersionRow.tenant_id == who.tenant_id,
                ModelVersionRow.status.in_([S.CHAMPION.value, S.CHALLENGER.value]))).scalars().all()
            versions = [ModelVersion.from_row(r) for r in rows]
        champion = next((v for v in versions if v.status == S.CHAMPION), None)
        if champion is None:
            raise Conflict("model: this bank has no champion model yet; approve a model and promote it")
        return champion, next((v for v in versions if v.status == S.CHALLENGER), None)

    def score(self, uow: UnitOfWork, who: Principal, case: Mapping[str, Any], *, subject_type: str,
              subject_id: str | int, top_n: int = 3, partner_subject: PartnerSubject | None = None) -> ScoringOutcome:
        """`partner_subject`: whom a joint model may ask its partner about, under the applicant's consent (an
        application passes it); without it a joint model reads the ID number off the case (a profile sent by the
        bank's own system through the decision API, which answers for the consent)."""
        champion_v, challenger_v = self.in_use(uow, who)
        champion = self._score_with(champion_v, "champion", case, top_n, uow, who, partner_subject)
        challenger = (self._score_with(challenger_v, "challenger", case, top_n, uow, who, partner_subject)
                      if challenger_v else None)
        with uow:
            now = utcnow()
            for result in (champion, challenger):
                if result is None:
                    continue
                uow.session.add(ModelScoreRow(
                    tenant_id=who.tenant_id, model_version_id=result.model_version_id, role=result.role,
                    shadow=result.role == "challenger", subject_type=subject_type, subject_id=str(subject_id),
                    pd=_exact(result.pd, 10), score=_exact(result.score, 4), reasons=list(result.reason_codes),
                    scored_by=who.user_id, scored_at=now,
                ))
                if result.partner not in ("", "joint"):  # why a joint model scored without its partner
                    audit.record(uow.session, who, "model.partner_unavailable", "model_version",
                                 result.model_version_id, after={"subject_type": subject_type,
                                                                 "subject_id": str(subject_id)},
                                 reason=result.partner)
            uow.commit()
        return ScoringOutcome(champion=champion, challenger=challenger)

    def _score_with(self, version: ModelVersion, role: str, case: Mapping[str, Any], top_n: int,
                    uow: UnitOfWork | None = None, who: Principal | None = None,
                    partner_subject: PartnerSubject | None = None) -> ModelScore:
        model = self.artefact(version).model
        if isinstance(model, HeteroLrModel):
            return self._score_jointly(version, model, role, case, top_n, uow, who, partner_subject)
        pd_, score, reasons = model.score_one(case, top_n=top_n)
        return ModelScore(version.id, version.label, version.kind, role, pd_, score,
                          worded(reasons, version.parameters), unseen_in(model, case))

    def _score_jointly(self, version: ModelVersion, model: HeteroLrModel, role: str, case: Mapping[str, Any],
                       top_n: int, uow: UnitOfWork | None, who: Principal | None,
                       partner_subject: PartnerSubject | None) -> ModelScore:
        """A joint model asks its partner for the applicant's partial score; without one it scores with its
        bank-only model, labelled so, with PARTNER_UNAVAILABLE first (PARTNER_NO_CONSENT when the applicant did
        not consent to scoring with the partner, who is then not asked at all)."""
        if uow is None or who is None:
            answer = PartnerAnswer(None, "no partner is asked outside a live decision")
        elif partner_subject is not None and not partner_subject.consent:
            answer = PartnerAnswer(None, "the applicant gave no partner_scoring consent: the partner was not asked",
                                   no_consent=True)
        else:
            p = version.parameters
            id_number = (partner_subject.id_number if partner_subject is not None
                         else case.get(str(p.get("id_column") or "id_number"), case.get("id_number")))
            answer = self.partners.partial(uow, who, partnership_id=int(p.get("partnership_id", 0)),
                                           partner_model_id=model.partner_model_id,
                                           key_fingerprint=str(p.get("key_fingerprint", "")), id_number=id_number,
                                           on=utcnow().date())
        fallback = PARTNER_NO_CONSENT if answer.no_consent else PARTNER_UNAVAILABLE
        pd_, score, reasons = model.score_one(case, top_n=top_n, partner_partial=answer.partial,
                                              fallback_reason=fallback)
        joint = answer.partial is not None
        label = version.label if joint else f"{version.label} bank-only"
        outcome = "joint" if joint else "no_consent" if answer.no_consent else "unavailable"
        return ModelScore(version.id, label, version.kind, role, pd_, score, worded(reasons, version.parameters),
                          [], "joint" if joint else answer.unavailable, outcome, answer.ms)


def unseen_in(model: Any, case: Mapping[str, Any]) -> list[str]:
    """A model's features whose category in this case was never seen in training, scored conservatively (an
    expert scorecard's: whose value its table does not know)."""
    if isinstance(model, ScorecardModel | GbdtModel | ExpertScorecardModel):
        return model.unseen_features(case)
    return []


def _exact(value: float, places: int) -> Decimal:
    if not math.isfinite(value):
        raise ValidationError("score: the model produced a non-finite number")
    return Decimal(f"{value:.{places}f}")


def scores_of(uow: UnitOfWork, who: Principal, subject_type: str, subject_id: str | int) -> list[ModelScoreRow]:
    """Every recorded score of one subject, oldest first (who scored it with which version)."""
    who.require(Permission.VIEW_MODELS)
    with uow:
        rows = uow.session.execute(select(ModelScoreRow).where(
            ModelScoreRow.tenant_id == who.tenant_id, ModelScoreRow.subject_type == subject_type,
            ModelScoreRow.subject_id == str(subject_id)).order_by(ModelScoreRow.id)).scalars().all()
        for r in rows:
            uow.session.expunge(r)
        return list(rows)


# --- a new bank's starter model ----------------------------------------------------------------------------

PLATFORM_USER_ID = 0
PLATFORM_NAME = "microlend"


def setup_tenant(session: Session, tenant: TenantRow) -> None:
    """Tenant-setup hook: a new bank decides with the shipped micro-business expert scorecard (专家评分卡) as its
    champion, on data it can obtain (tax, invoices, flows, registry, enforcement, the credit report, its own
    accounts). The German credit scorecard is registered beside it, approved, as the worked example of
    statistical development (and for a bank that holds such credit profiles); the bank promotes either."""
    register_german_starter(session, tenant)
    register_expert_starter(session, tenant, champion=True)


def register_german_starter(session: Session, tenant: TenantRow, *, champion: bool = False) -> None:
    """Register the shipped German credit scorecard for a bank, approved by the platform (in use as champion
    when asked: a bank whose customers carry such credit profiles)."""
    from microlend.risk.starter import STARTER_DIR, STARTER_NAME, STARTER_SUBDIR

    meta = read_metadata(STARTER_DIR)
    failed = failures(evaluate(meta.metrics, ModelGates()))  # a new bank has the default gates
    if failed:
        raise Conflict(f"starter: the shipped scorecard fails the model gates: {'; '.join(failed)}")
    exists = session.execute(select(ModelVersionRow.id).where(
        ModelVersionRow.tenant_id == tenant.id, ModelVersionRow.content_hash == meta.content_hash)).first()
    if exists:
        return
    now = utcnow()
    row = ModelVersionRow(
        tenant_id=tenant.id, name=STARTER_NAME, version=1, kind=meta.kind,
        status=(S.CHAMPION if champion else S.APPROVED).value,
        content_hash=meta.content_hash, dataset_hash=meta.dataset_hash, target=meta.target, bad=meta.bad,
        features=list(meta.features), parameters=meta.parameters, metrics=meta.metrics,
        store_path=PACKAGE_PREFIX + STARTER_SUBDIR, trained_by=PLATFORM_USER_ID, trained_by_name=PLATFORM_NAME,
        approved_by=PLATFORM_USER_ID, approved_by_name=PLATFORM_NAME, created_at=now, status_changed_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(session, system_principal(tenant.id), "model.champion" if champion else "model.approved",
                 "model_version", row.id,
                 after=_summary(row), reason="example scorecard shipped with Microlend (German credit data), "
                 "validated against the default model gates")


def register_expert_starter(session: Session, tenant: TenantRow, *, champion: bool) -> ModelVersion:
    """Register the shipped micro-business expert scorecard (专家评分卡) for a bank, approved by the platform like
    the German starter: as its champion (the champion it replaces is retired, on the audit trail) or, without
    `champion`, approved and waiting for the bank to promote it. Registering it again returns the existing entry
    (promoted to champion when asked and not yet retired)."""
    from microlend.risk.starter import EXPERT_STARTER_DIR, EXPERT_STARTER_NAME, EXPERT_STARTER_SUBDIR

    meta = read_metadata(EXPERT_STARTER_DIR)
    who = system_principal(tenant.id)
    row = session.execute(select(ModelVersionRow).where(
        ModelVersionRow.tenant_id == tenant.id, ModelVersionRow.content_hash == meta.content_hash)).scalar_one_or_none()
    if row is None:
        now = utcnow()
        version = (session.execute(select(func.max(ModelVersionRow.version)).where(
            ModelVersionRow.tenant_id == tenant.id, ModelVersionRow.name == EXPERT_STARTER_NAME)).scalar() or 0) + 1
        row = ModelVersionRow(
            tenant_id=tenant.id, name=EXPERT_STARTER_NAME, version=version, kind=meta.kind,
            status=S.APPROVED.value, content_hash=meta.content_hash, dataset_hash=meta.dataset_hash,
            target=meta.target, bad=meta.bad, features=list(meta.features), parameters=meta.parameters,
            metrics=meta.metrics, store_path=PACKAGE_PREFIX + EXPERT_STARTER_SUBDIR, trained_by=PLATFORM_USER_ID,
            trained_by_name=PLATFORM_NAME, approved_by=PLATFORM_USER_ID, approved_by_name=PLATFORM_NAME,
            created_at=now, status_changed_at=now,
        )
        session.add(row)
        session.flush()
        audit.record(session, who, "model.approved", "model_version", row.id, after=_summary(row),
                     reason="expert scorecard for micro-businesses shipped with Microlend (expert judgement, no "
                     "development sample; the PD mapping is an assumption)")
    if champion and row.status in (S.APPROVED.value, S.CHALLENGER.value):
        incumbents = session.execute(select(ModelVersionRow).where(
            ModelVersionRow.tenant_id == tenant.id, ModelVersionRow.status == S.CHAMPION.value,
            ModelVersionRow.id != row.id)).scalars().all()
        for old in incumbents:
            _move(session, who, old, S.RETIRED, reason=f"replaced as champion by model version {row.id}")
        _move(session, who, row, S.CHAMPION, reason="expert scorecard put in use")
    return _view(session, row)
