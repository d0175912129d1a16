"""Risk models API (风险模型): train from a stored dataset, the registry's life cycle (validate, approve with
four eyes, promote, retire), validation reports, points tables, scoring one case, and monitoring."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field, RootModel

from microlend.api.deps import MAX_ID, CurrentPrincipal, Id, UnitOfWorkDep, Version
from microlend.api.routing import api_router
from microlend.api.schemas import PublicSchema
from microlend.api.security import report_page
from microlend.risk import monitoring_runs, registry, service
from microlend.risk.federation import partnerships
from microlend.risk.reasons import Reason

router = api_router(prefix="/api/v1/risk", tags=["risk models"])


class TrainingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(min_length=1, max_length=64, description="name of a stored dataset")
    dataset_version: int | None = Field(default=None, ge=1, le=MAX_ID, description="latest when absent")
    target: str = Field(min_length=1, max_length=100, description="column holding the outcome")
    bad: str = Field(min_length=1, max_length=100, description="value of the target that means bad")
    kind: Literal["scorecard", "gbdt"] = "scorecard"
    date_column: str | None = Field(default=None, max_length=100, description="for an out-of-time sample")
    name: str = Field(default="", max_length=100)
    seed: int = Field(default=42, ge=0, le=MAX_ID, description="seed of the train/test split")


class ModelVersionPublic(PublicSchema):
    id: int
    name: str
    version: int
    label: str
    kind: str
    status: str
    content_hash: str
    dataset_hash: str
    target: str
    bad: str
    features: list[str]
    parameters: dict[str, Any]
    metrics: dict[str, Any]
    trained_by: int
    trained_by_name: str
    approved_by: int | None
    approved_by_name: str | None
    approved_at: datetime | None
    validated_by: int | None
    validated_by_name: str | None
    validated_at: datetime | None
    created_at: datetime
    status_changed_at: datetime


class ApprovalBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=2000)


class PromotionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["champion", "challenger"] = "champion"


class RetirementBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=2000)


class CaseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    features: dict[str, str | int | float | bool | None] = Field(
        description="feature values by name; absent or null ones count as missing")
    locale: Literal["en", "zh-CN"] = "en"
    reasons: int = Field(default=3, ge=0, le=10)


class ShadowCaseBody(CaseBody):
    subject_type: str = Field(default="case", min_length=1, max_length=40)
    subject_id: str = Field(min_length=1, max_length=60)


class ReasonPublic(BaseModel):
    feature: str
    impact: float
    message: str


class ScorePublic(BaseModel):
    model_version_id: int
    model_label: str
    kind: str
    pd: float = Field(description="probability of bad")
    score: float = Field(description="points; higher is safer")
    reasons: list[ReasonPublic]
    unseen: list[str] = Field(default_factory=list, description="features whose category was never seen in "
                              "training (scored at their lowest points)")


class RuntimeScorePublic(BaseModel):
    champion: ScorePublic
    challenger: ScorePublic | None


class ValidationFiguresPublic(RootModel[dict[str, Any]]):
    """The figures of the validation report stored with a version, as they were written at training."""


class PointsRowPublic(BaseModel):
    """A row of a points table; WoE and count for a scorecard, the neutral point and reason code for an
    expert scorecard."""

    feature: str
    bin: str
    points: float
    woe: float | None = None
    count: int | None = None
    neutral: float | None = None
    reason_code: str | None = None


class MonitoringPublic(BaseModel):
    """Score stability (PSI) overall and by month, CSI per feature, performance by month, and alerts."""

    model_version_id: int
    label: str
    kind: str
    status: str
    live_count: int
    thresholds: dict[str, float]
    development: dict[str, Any]
    score: dict[str, Any] | None
    by_month: list[dict[str, Any]]
    characteristics: list[dict[str, Any]]
    performance_by_month: list[dict[str, Any]]
    dataset: dict[str, Any] | None
    performance: dict[str, Any] | None = Field(
        default=None, description="AUC/KS on the dataset's outcomes, or 'not enough outcomes' without goods and bads")
    alerts: list[dict[str, Any]]


class MonitoringRunPublic(PublicSchema):
    """One month-end monitoring run of a version in use: drift, performance on known outcomes, score bands and the
    alerts raised (status stable, watch or act)."""

    id: int
    model_version_id: int
    model_label: str
    as_of: date
    status: str
    cases: int
    result: dict[str, Any]
    alerts: list[dict[str, Any]]
    created_at: datetime


class GatesPublic(BaseModel):
    """The bank's model gates: a model failing any of them cannot be validated."""

    min_rows: int
    min_bads: int
    min_test_auc: float
    min_test_ks: float
    max_auc_gap: float
    max_oot_psi: float


class GatesUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_rows: int | None = Field(default=None, ge=1, le=100_000_000)
    min_bads: int | None = Field(default=None, ge=1, le=100_000_000)
    min_test_auc: float | None = Field(default=None, ge=0.5, le=1.0)
    min_test_ks: float | None = Field(default=None, ge=0.0, le=1.0)
    max_auc_gap: float | None = Field(default=None, ge=0.0, le=0.5)
    max_oot_psi: float | None = Field(default=None, ge=0.0, le=10.0)


class GateResultsPublic(BaseModel):
    """A version's figures against the bank's gates as they stand now."""

    thresholds: GatesPublic
    results: list[dict[str, Any]]
    passed: bool
    applies: bool = True  # false for an expert scorecard: the gates measure statistical models only
    note: str = ""


def _reasons(reasons: list[Reason], locale: str) -> list[ReasonPublic]:
    return [ReasonPublic(feature=r.feature, impact=round(r.impact, 4), message=r.message(locale)) for r in reasons]


def store_root(request: Request) -> Path:
    root: Path = request.app.state.settings.data_dir
    return root / "models"


@router.post("/models", status_code=201)
def train_model(request: Request, body: TrainingCreate, who: CurrentPrincipal,
                uow: UnitOfWorkDep) -> ModelVersionPublic:
    """Train, validate against the other kind and register a draft (up to 200,000 rows; use the CLI above)."""
    cmd = service.TrainingRequest(**body.model_dump())
    return ModelVersionPublic.of(service.train_from_dataset(uow, who, cmd, store_root=store_root(request)))


@router.get("/models")
def list_models(who: CurrentPrincipal, uow: UnitOfWorkDep,
                status: Annotated[registry.ModelStatus | None, Query()] = None) -> list[ModelVersionPublic]:
    versions = registry.list_model_versions(uow, who, status=status.value if status else None)
    return [ModelVersionPublic.of(v) for v in reversed(versions)]


@router.get("/models/{version_id}")
def get_model(version_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> ModelVersionPublic:
    return ModelVersionPublic.of(registry.get_model_version(uow, who, version_id))


@router.get("/models/{version_id}/report", response_class=HTMLResponse)
def model_report(version_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> HTMLResponse:
    """The validation report stored with the version: one HTML page with its charts."""
    return report_page(service.report_html(uow, who, version_id))


@router.get("/models/{version_id}/report.json")
def model_report_json(version_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> ValidationFiguresPublic:
    return ValidationFiguresPublic(service.report_json(uow, who, version_id))


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/models/{version_id}/report.xlsx", response_class=Response)
def model_report_workbook(version_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> Response:
    """The stored validation report's tables as an Excel workbook, one sheet per table."""
    return Response(service.report_workbook(uow, who, version_id), media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="validation-report-{version_id}.xlsx"'})


@router.get("/models/{version_id}/points", response_model=list[PointsRowPublic])
def model_points(version_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep,
                 format: Literal["json", "csv"] = "json") -> Response | list[PointsRowPublic]:
    """A scorecard's points table (feature, bin, points, WoE, count) or an expert scorecard's (with neutral
    points, reason codes and rationale); 404 for a GBDT, which has none."""
    from microlend.core.errors import NotFound

    table = service.points_table(uow, who, version_id)
    if table is None:
        raise NotFound(f"model version {version_id} is not a scorecard; it has no points table")
    if format == "csv":
        return Response(table.to_csv(index=False), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="points-{version_id}.csv"'})
    return [PointsRowPublic.model_validate(row) for row in table.to_dict("records")]


@router.get("/gates")
def get_gates(who: CurrentPrincipal, uow: UnitOfWorkDep) -> GatesPublic:
    """The bank's model gates (the defaults until it sets its own)."""
    return GatesPublic(**registry.model_gates(uow, who).to_dict())


@router.put("/gates")
def put_gates(body: GatesUpdate, who: CurrentPrincipal, uow: UnitOfWorkDep) -> GatesPublic:
    """Change some of the bank's model gates (admin); the others keep their values."""
    return GatesPublic(**registry.set_model_gates(uow, who, body.model_dump(exclude_none=True)).to_dict())


@router.get("/models/{version_id}/gates")
def model_gates(version_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> GateResultsPublic:
    """This version's figures against each of the bank's gates, as validation will check them."""
    version = registry.get_model_version(uow, who, version_id)
    return GateResultsPublic.model_validate(registry.gate_results(uow, who, version))


@router.post("/models/{version_id}/validate")
def validate_model(version_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> ModelVersionPublic:
    """Draft -> validated by a model validator who did not train it, once it passes every model gate."""
    return ModelVersionPublic.of(registry.mark_validated(uow, who, version_id))


@router.post("/models/{version_id}/approve")
def approve_model(version_id: Id, body: ApprovalBody, who: CurrentPrincipal,
                  uow: UnitOfWorkDep) -> ModelVersionPublic:
    """Validated -> approved, by a risk analyst or admin who neither trained nor validated it."""
    return ModelVersionPublic.of(registry.approve_model(uow, who, version_id, note=body.note))


@router.post("/models/{version_id}/promote")
def promote_model(version_id: Id, body: PromotionBody, who: CurrentPrincipal,
                  uow: UnitOfWorkDep) -> ModelVersionPublic:
    """Put an approved model in use as champion or challenger; the one it replaces is retired."""
    return ModelVersionPublic.of(registry.promote_model(uow, who, version_id, body.role))


@router.post("/models/{version_id}/retire")
def retire_model(version_id: Id, body: RetirementBody, who: CurrentPrincipal,
                 uow: UnitOfWorkDep) -> ModelVersionPublic:
    return ModelVersionPublic.of(registry.retire_model(uow, who, version_id, reason=body.reason))


@router.post("/models/{version_id}/score")
def score_with_model(version_id: Id, body: CaseBody, who: CurrentPrincipal, uow: UnitOfWorkDep) -> ScorePublic:
    """Score one case with this version (nothing recorded): pd, score and the reasons in zh-CN or English."""
    s = service.score_case(uow, who, version_id, body.features, top_n=body.reasons)
    return ScorePublic(model_version_id=s.model_version_id, model_label=s.model_label, kind=s.kind, pd=s.pd,
                       score=s.score, reasons=_reasons(s.reasons, body.locale), unseen=s.unseen)


_runtime = registry.ScoringRuntime()


@router.post("/score")
def score_with_champion(body: ShadowCaseBody, who: CurrentPrincipal, uow: UnitOfWorkDep) -> RuntimeScorePublic:
    """Score one case with the bank's champion (and its challenger in shadow); both are recorded."""
    out = _runtime.score(uow, who, body.features, subject_type=body.subject_type, subject_id=body.subject_id,
                         top_n=body.reasons)

    def public(m: registry.ModelScore) -> ScorePublic:
        return ScorePublic(model_version_id=m.model_version_id, model_label=m.model_label, kind=m.kind, pd=m.pd,
                           score=m.score, reasons=_reasons(m.reasons, body.locale), unseen=m.unseen)

    return RuntimeScorePublic(champion=public(out.champion),
                              challenger=public(out.challenger) if out.challenger else None)


@router.get("/models/{version_id}/monitoring")
def model_monitoring(version_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep,
                     dataset: Annotated[str | None, Query(max_length=64, description="live applications")] = None,
                     dataset_version: Version = None,
                     date_column: Annotated[str | None, Query(max_length=100)] = None) -> MonitoringPublic:
    """PSI of this version's live scores against development (watch 0.10, act 0.25), by month too; CSI per
    feature and AUC/KS by month from a stored dataset of live applications when one is named."""
    return MonitoringPublic.model_validate(service.monitoring_report(
        uow, who, version_id, dataset=dataset, dataset_version=dataset_version, date_column=date_column))


@router.get("/models/{version_id}/monitoring-runs")
def model_monitoring_runs(version_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep,
                          limit: Annotated[int, Query(ge=1, le=500)] = 24) -> list[MonitoringRunPublic]:
    """The worker's month-end monitoring runs of this version, newest first: score PSI, CSI per characteristic,
    AUC/KS and bad rate by score band once outcomes are known, and the alerts (thresholds in each result)."""
    return [MonitoringRunPublic.model_validate(r)
            for r in monitoring_runs.monitoring_runs(uow, who, version_id=version_id, limit=limit)]


# --- data partnerships for joint modelling (联合建模合作方) --------------------------------------------------------

class PartnershipCreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    endpoint_url: str = Field(min_length=1, max_length=300, description="the partner's federation server")
    key_fingerprint: str = Field(min_length=16, max_length=16, description="as `federation keygen` prints; "
                                 "never the key")
    purpose: str = Field(min_length=1, max_length=500)
    contract_ref: str = Field(min_length=1, max_length=100)
    valid_from: date
    valid_to: date
    features: list[str] = Field(min_length=1, max_length=200, description="the partner's features the "
                                "partnership covers (names only)")
    consent_basis: str = Field(min_length=1, max_length=500, description="the consent or legal basis of the data "
                               "use, e.g. the applicant's partner_scoring consent")


class PartnershipStatusBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["active", "suspended"]
    reason: str = Field(min_length=1, max_length=500)


class PartnershipPublic(PublicSchema):
    id: int
    name: str
    endpoint_url: str
    key_fingerprint: str
    purpose: str
    contract_ref: str
    valid_from: date
    valid_to: date
    features: list[str]
    consent_basis: str
    status: str
    status_reason: str
    created_by_name: str
    created_at: datetime
    updated_at: datetime


@router.post("/partnerships", status_code=201)
def register_partnership(body: PartnershipCreateBody, who: CurrentPrincipal,
                         uow: UnitOfWorkDep) -> PartnershipPublic:
    """Record a data partner (risk analyst or admin): endpoint, key fingerprint, purpose, contract, dates."""
    cmd = partnerships.PartnershipCreate(**{**body.model_dump(), "features": tuple(body.features)})
    return PartnershipPublic.of(partnerships.register_partnership(uow, who, cmd))


@router.get("/partnerships")
def list_partnerships(who: CurrentPrincipal, uow: UnitOfWorkDep,
                      status: Annotated[Literal["active", "suspended"] | None, Query()] = None,
                      ) -> list[PartnershipPublic]:
    return [PartnershipPublic.of(p) for p in partnerships.list_partnerships(uow, who, status=status)]


@router.get("/partnerships/{partnership_id}")
def get_partnership(partnership_id: Id, who: CurrentPrincipal, uow: UnitOfWorkDep) -> PartnershipPublic:
    return PartnershipPublic.of(partnerships.get_partnership(uow, who, partnership_id))


@router.post("/partnerships/{partnership_id}/status")
def set_partnership_status(partnership_id: Id, body: PartnershipStatusBody, who: CurrentPrincipal,
                           uow: UnitOfWorkDep) -> PartnershipPublic:
    """Suspend a partnership (its joint models fall back to the bank's own) or make it active again."""
    return PartnershipPublic.of(partnerships.set_status(uow, who, partnership_id, body.status, reason=body.reason))
