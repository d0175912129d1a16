"""The worker's model monitoring (模型监控): each version in use (champion and challenger) is measured on the cases it
scored live — drift of the recent months against its development profile (or its own first live months), and
performance once loans' outcomes are known — and the run is stored with the alerts it raised. Outcomes and what the
cases saw come from the caller (the worker asks origination), so risk reads no loan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.errors import NotFound
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.risk import registry
from microlend.risk.monitoring import MonitoredCase, MonitoringThresholds, monitoring_run
from microlend.risk.tables import ModelScoreRow, ModelVersionRow, MonitoringRunRow

#: The recent window whose drift is measured, and the model's first live window it is compared with when the
#: model has no development profile (an expert scorecard).
RECENT_DAYS = 90
REFERENCE_DAYS = 90
THRESHOLDS = MonitoringThresholds()


@dataclass(frozen=True)
class CaseFacts:
    """What the caller knows of an application a model scored: what it saw, and whether its loan went bad (None
    while not known: no loan, or a loan too young to judge)."""

    features: Mapping[str, Any]
    bad: bool | None


@dataclass(frozen=True)
class MonitoringRun:
    id: int
    model_version_id: int
    model_label: str
    as_of: date
    status: str
    cases: int
    result: dict[str, Any]
    alerts: list[dict[str, Any]]
    created_at: datetime

    @classmethod
    def of(cls, row: MonitoringRunRow, label: str) -> MonitoringRun:
        return cls(row.id, row.model_version_id, label, row.as_of, row.status, row.cases, dict(row.result),
                   list(row.alerts), row.created_at)


def _day_start(d: date) -> datetime:
    return datetime.combine(d, time(0, 0), tzinfo=UTC)


def _cases(rows: Sequence[Any], facts: Mapping[int, CaseFacts]) -> list[MonitoredCase]:
    out = []
    for r in rows:
        fact = facts.get(int(r.subject_id)) if str(r.subject_id).isdigit() else None
        out.append(MonitoredCase(r.scored_at.date(), float(r.score), float(r.pd),
                                 dict(fact.features) if fact else {}, fact.bad if fact else None))
    return out


def record_monitoring(uow: UnitOfWork, who: Principal, on: date, facts: Mapping[int, CaseFacts], *,
                      thresholds: MonitoringThresholds | None = None) -> list[MonitoringRun]:
    """Measure every version in use on the applications it scored up to `on` and store one run per version and
    day (a rerun of the day replaces it); an alert is written to the audit trail."""
    who.require(Permission.RUN_CLOSE_OF_BUSINESS)
    t = thresholds or THRESHOLDS
    runs: list[MonitoringRun] = []
    with uow:
        s = uow.session
        versions = s.execute(select(ModelVersionRow).where(
            ModelVersionRow.tenant_id == who.tenant_id,
            ModelVersionRow.status.in_([registry.S.CHAMPION.value, registry.S.CHALLENGER.value]))
            .order_by(ModelVersionRow.id)).scalars().all()
        views = [registry.ModelVersion.from_row(v) for v in versions]
    runtime = registry.ScoringRuntime()
    for version in views:
        artefact = runtime.artefact(version)
        with uow:
            s = uow.session
            rows = s.execute(select(ModelScoreRow.subject_id, ModelScoreRow.score, ModelScoreRow.pd,
                                    ModelScoreRow.scored_at).where(
                ModelScoreRow.tenant_id == who.tenant_id, ModelScoreRow.model_version_id == version.id,
                ModelScoreRow.subject_type == "application",
                ModelScoreRow.scored_at < _day_start(on + timedelta(days=1)))
                .order_by(ModelScoreRow.scored_at, ModelScoreRow.id)).all()
            if not rows:
                continue
            first = rows[0].scored_at.date()
            recent_from = on - timedelta(days=RECENT_DAYS - 1)
            reference_to = min(first + timedelta(days=REFERENCE_DAYS), recent_from)
            recent = _cases([r for r in rows if r.scored_at.date() >= recent_from], facts)
            reference = _cases([r for r in rows if r.scored_at.date() < reference_to], facts)
            test_auc = (version.metrics.get("test") or {}).get("auc")
            result = monitoring_run(recent, reference, list(version.features) or _feature_names(recent),
                                    judged=_cases(rows, facts), development=artefact.metadata.development or None,
                                    development_auc=float(test_auc) if test_auc is not None else None,
                                    thresholds=t)
            result["window"] = {"recent_from": recent_from.isoformat(), "reference_from": first.isoformat(),
                                "reference_to": reference_to.isoformat()}
            alerts = result.pop("alerts")
            row = s.execute(select(MonitoringRunRow).where(
                MonitoringRunRow.tenant_id == who.tenant_id, MonitoringRunRow.model_version_id == version.id,
                MonitoringRunRow.as_of == on)).scalar_one_or_none()
            if row is None:
                row = MonitoringRunRow(tenant_id=who.tenant_id, model_version_id=version.id, as_of=on)
                s.add(row)
            row.status, row.cases, row.result, row.alerts = result["status"], len(recent), result, alerts
            row.created_at = utcnow()
            s.flush()
            if alerts:
                audit.record(s, who, "model.monitoring_alert", "model_version", version.id,
                             after={"as_of": on.isoformat(), "status": row.status,
                                    "alerts": [f"{a['what']}:{a['subject']}" for a in alerts]})
            runs.append(MonitoringRun.of(row, version.label))
            uow.commit()
    return runs


def _feature_names(cases: list[MonitoredCase]) -> list[str]:
    names: set[str] = set()
    for c in cases:
        names.update(c.features)
    return sorted(names)


def monitoring_runs(uow: UnitOfWork, who: Principal, *, version_id: int | None = None,
                    limit: int = 24) -> list[MonitoringRun]:
    """The bank's monitoring runs, newest first (of one version when asked)."""
    who.require(Permission.VIEW_MODELS)
    if version_id is not None:
        registry.get_model_version(uow, who, version_id)  # NotFound for another bank's version
    with uow.read_only():
        q = select(MonitoringRunRow, ModelVersionRow.name, ModelVersionRow.version).join(
            ModelVersionRow, ModelVersionRow.id == MonitoringRunRow.model_version_id).where(
            MonitoringRunRow.tenant_id == who.tenant_id)
        if version_id is not None:
            q = q.where(MonitoringRunRow.model_version_id == version_id)
        rows = uow.session.execute(q.order_by(MonitoringRunRow.as_of.desc(), MonitoringRunRow.id.desc())
                                   .limit(max(1, min(limit, 500)))).all()
        return [MonitoringRun.of(r, f"{name} v{v}") for r, name, v in rows]


def monitoring_run_detail(uow: UnitOfWork, who: Principal, run_id: int) -> MonitoringRun:
    who.require(Permission.VIEW_MODELS)
    with uow.read_only():
        found = uow.session.execute(select(MonitoringRunRow, ModelVersionRow.name, ModelVersionRow.version).join(
            ModelVersionRow, ModelVersionRow.id == MonitoringRunRow.model_version_id).where(
            MonitoringRunRow.tenant_id == who.tenant_id, MonitoringRunRow.id == run_id)).first()
        if found is None:
            raise NotFound(f"monitoring run {run_id} not found")
        row, name, v = found
        return MonitoringRun.of(row, f"{name} v{v}")
