"""Measurement use cases (效果评估): the bank's channel costs and margin, control-group warnings per stratum,
and a campaign's close (结案): once its attribution window is over, its report is computed, its uplift model
trained once on its own customers, and both stored; the report page then reads the stored result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.errors import Conflict, NotFound, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.marketing.report_store import (
    StoredUpliftModel,
    load_uplift_artefact,
    report_from_dict,
    uplift_artefact,
)
from microlend.marketing.service.common import (
    MeasurementSettings,
    _settings,
    campaign_row,
)
from microlend.marketing.tables import CampaignMeasurementRow, MeasurementSettingsRow
from microlend.marketing.tracking import CampaignReport, funnel_chart, lift_chart

#: the largest cost of one contact or margin of one loan a bank may state
MAX_AMOUNT = Decimal("1000000")
CLOSE_STAGES = ("applied", "approved", "disbursed")
#: customer features the close's uplift model learns from, when the customer data has them
UPLIFT_FEATURES = ("age", "months_on_book", "annual_turnover", "years_in_business", "duration_in_month",
                   "credit_amount")
UPLIFT_MIN_CUSTOMERS = 40


def measurement_settings(uow: UnitOfWork, who: Principal) -> MeasurementSettings:
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        return _settings(uow.session, who.tenant_id)


def _amount(value: Decimal | None, name: str) -> None:
    if value is not None and not (Decimal(0) <= value <= MAX_AMOUNT):
        raise ValidationError(f"{name}: must be between 0 and {MAX_AMOUNT}", field=name)


def update_measurement_settings(uow: UnitOfWork, who: Principal, settings: MeasurementSettings, *, at: datetime
                                ) -> MeasurementSettings:
    """State the bank's channel costs, margin and minimum control group (audited)."""
    who.require(Permission.MANAGE_CAMPAIGNS)
    for name in ("sms_cost", "push_cost", "visit_cost", "margin_per_disbursed"):
        _amount(getattr(settings, name), name)
    if not 1 <= settings.min_control_per_stratum <= 100_000:
        raise ValidationError("min_control_per_stratum: must be 1..100000", field="min_control_per_stratum")
    with uow:
        s = uow.session
        before = _settings(s, who.tenant_id)
        row = s.execute(select(MeasurementSettingsRow).where(
            MeasurementSettingsRow.tenant_id == who.tenant_id)).scalar()
        if row is None:
            row = MeasurementSettingsRow(tenant_id=who.tenant_id)
            s.add(row)
        row.sms_cost, row.push_cost, row.visit_cost = settings.sms_cost, settings.push_cost, settings.visit_cost
        row.margin_per_disbursed = settings.margin_per_disbursed
        row.min_control_per_stratum = settings.min_control_per_stratum
        row.updated_by, row.updated_at = who.username, at
        s.flush()

        def plain(x: MeasurementSettings) -> dict[str, Any]:
            return {"sms_cost": str(x.sms_cost), "push_cost": str(x.push_cost), "visit_cost": str(x.visit_cost),
                    "margin_per_disbursed": None if x.margin_per_disbursed is None else str(x.margin_per_disbursed),
                    "min_control_per_stratum": x.min_control_per_stratum}

        audit.record(s, who, "marketing.measurement_settings.update", "marketing_measurement_settings", row.id,
                     before=plain(before), after=plain(settings))
        uow.commit()
    return MeasurementSettings(settings.sms_cost, settings.push_cost, settings.visit_cost,
                               settings.margin_per_disbursed, settings.min_control_per_stratum, stated=True)


# --- the close ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignMeasurement:
    """A campaign's stored measurement: the report at its close, the uplift model's figures on the held-out
    customers (or why there are none), the charts and the artefact's sha256."""

    campaign_id: int
    stage: str
    closed_at: datetime
    closed_by: str
    report: CampaignReport
    uplift: dict[str, Any]
    charts: dict[str, str | None]
    qini_chart: str | None
    artefact_sha256: str | None


def _measurement(row: CampaignMeasurementRow) -> CampaignMeasurement:
    result = row.result
    return CampaignMeasurement(row.campaign_id, row.stage, row.closed_at, row.closed_by,
                               report_from_dict(result["report"]), dict(result.get("uplift", {})),
                               dict(result.get("charts", {})), row.qini_chart, row.artefact_sha256)


def _nan_to_none(value: float) -> float | None:
    return None if math.isnan(value) else value


def close_campaign(uow: UnitOfWork, who: Principal, campaign_id: int, customers: pl.DataFrame, *, at: datetime,
                   stage: str = "applied", min_customers: int = UPLIFT_MIN_CUSTOMERS) -> CampaignMeasurement:
    """Close a campaign whose attribution window is over: compute its report, train its uplift model once
    on its own customers (70%, measured on the held-out 30%), and store both. A second close is refused."""
    from microlend.marketing.service.attribution import campaign_report
    from microlend.marketing.service.uplift import train_uplift
    from microlend.marketing.uplift import qini_chart

    who.require(Permission.MANAGE_CAMPAIGNS)
    if stage not in CLOSE_STAGES:
        raise ValidationError(f"stage: one of {', '.join(CLOSE_STAGES)}", field="stage")
    with uow:
        row = campaign_row(uow.session, who, campaign_id)
        if row.launched_at is None:
            raise Conflict(f"campaign {campaign_id} has not been launched", field="campaign_id")
        ends = row.launched_at + timedelta(days=row.attribution_days)
        if at < ends:
            raise Conflict(f"campaign {campaign_id}: its attribution window ends at {ends.isoformat()}",
                           field="campaign_id")
        if _stored_row(uow.session, who, campaign_id) is not None:
            raise Conflict(f"campaign {campaign_id} was already closed", field="campaign_id")
        has_control = row.control_share_bp > 0
    report = campaign_report(uow, who, [campaign_id])
    features = [f for f in UPLIFT_FEATURES if f in customers.columns]
    uplift: dict[str, Any] = {"stage": stage, "features": features}
    artefact = sha = chart = None
    if not has_control:
        uplift.update(problem="no_control", detail="the campaign held no control group out")
    else:
        trained = train_uplift(uow, who, [campaign_id], customers, features, stage=stage,
                               min_customers=min_customers)
        uplift.update(customers=trained.customers, control=trained.control, held_out=trained.held_out,
                      problem=trained.problem, detail=trained.detail)
        if trained.model is not None and trained.evaluation is not None:
            ev = trained.evaluation
            uplift.update(qini_area=ev.qini_area, qini_coefficient=ev.qini_coefficient,
                          auuc_normalised=_nan_to_none(ev.auuc_normalised),
                          uplift_at={k: _nan_to_none(v) for k, v in ev.uplift_at.items()},
                          curve={"x": ev.curve[0], "q": ev.curve[1]}, method=trained.method)
            artefact, sha = uplift_artefact(trained.model, features)
            chart = qini_chart(ev)
    charts = {"funnel": funnel_chart(report), "lift": lift_chart(report)}
    with uow:
        s = uow.session
        if _stored_row(s, who, campaign_id) is not None:  # closed meanwhile by someone else
            raise Conflict(f"campaign {campaign_id} was already closed", field="campaign_id")
        stored = CampaignMeasurementRow(
            tenant_id=who.tenant_id, campaign_id=campaign_id, stage=stage, method="two_model", features=features,
            result={"report": report.to_dict(), "uplift": uplift, "charts": charts}, qini_chart=chart,
            artefact=artefact, artefact_sha256=sha, closed_by=who.username, closed_at=at)
        s.add(stored)
        s.flush()
        audit.record(s, who, "campaign.close", "campaign", campaign_id,
                     after={"stage": stage, "artefact_sha256": sha, "problem": uplift.get("problem", "")})
        uow.commit()
        return _measurement(stored)


def _stored_row(s: Session, who: Principal, campaign_id: int) -> CampaignMeasurementRow | None:
    row: CampaignMeasurementRow | None = s.execute(select(CampaignMeasurementRow).where(
        CampaignMeasurementRow.tenant_id == who.tenant_id,
        CampaignMeasurementRow.campaign_id == campaign_id)).scalar()
    return row


def stored_measurement(uow: UnitOfWork, who: Principal, campaign_id: int) -> CampaignMeasurement | None:
    """The campaign's measurement stored at its close, or None while it is open."""
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        campaign_row(uow.session, who, campaign_id)
        row = _stored_row(uow.session, who, campaign_id)
        return None if row is None else _measurement(row)


def stored_uplift_model(uow: UnitOfWork, who: Principal, campaign_id: int) -> StoredUpliftModel:
    """The uplift model trained at the campaign's close, to rank the next campaign's targets."""
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        campaign_row(uow.session, who, campaign_id)
        row = _stored_row(uow.session, who, campaign_id)
        if row is None or row.artefact is None or row.artefact_sha256 is None:
            raise NotFound(f"campaign {campaign_id}: no uplift model was stored at its close", field="campaign_id")
        return load_uplift_artefact(row.artefact, row.artefact_sha256)


# --- an open campaign's interim report ----------------------------------------------------------------------

#: an interim report older than this is recomputed on view even when its inputs look unchanged: applications
#: arrive from origination without touching marketing's tables (the worker refreshes every hour as well)
INTERIM_MAX_AGE = timedelta(hours=1)


@dataclass(frozen=True)
class InterimReport:
    """An open campaign's report as of `as_of`: the same figures as the live computation at that instant, and
    its charts drawn from those figures."""

    campaign_id: int
    report: CampaignReport
    charts: dict[str, str | None]
    as_of: datetime
    recomputed: bool


def _targeting_parts(s: Session, tenant_id: int) -> list[Any]:
    """What the targeting of the bank's reports depends on: assignments, contacts, messages per status and
    receipt, visit tasks per status and outcome, launched campaigns (a few aggregate queries)."""
    from sqlalchemy import func

    from microlend.marketing.tables import AssignmentRow, CampaignRow, ContactRow, OutboxRow, VisitTaskRow

    parts: list[Any] = []
    for table in (ContactRow, AssignmentRow):
        parts.append(tuple(s.execute(select(func.count(), func.max(table.id)).where(
            table.tenant_id == tenant_id)).one()))
    parts.append(sorted((str(a), str(b), int(n)) for a, b, n in s.execute(
        select(OutboxRow.status, OutboxRow.delivery_status, func.count()).where(OutboxRow.tenant_id == tenant_id)
        .group_by(OutboxRow.status, OutboxRow.delivery_status)).all()))
    parts.append(sorted((str(a), str(b), int(n)) for a, b, n in s.execute(
        select(VisitTaskRow.status, VisitTaskRow.outcome, func.count()).where(VisitTaskRow.tenant_id == tenant_id)
        .group_by(VisitTaskRow.status, VisitTaskRow.outcome)).all()))
    parts.append(tuple(s.execute(select(func.count(), func.max(CampaignRow.launched_at)).where(
        CampaignRow.tenant_id == tenant_id, CampaignRow.launched_at.is_not(None))).one()))
    return parts


def _digest(parts: list[Any]) -> str:
    import hashlib

    return hashlib.sha256(repr(parts).encode()).hexdigest()


def interim_fingerprints(s: Session, tenant_id: int) -> tuple[str, str]:
    """(everything an open campaign's report reads in marketing's own tables, the targeting part of it).
    Any new event, send or receipt changes the first; only sends, receipts, visits and launches change the
    second, so after a new response the report re-reads its events and keeps its targeting."""
    from sqlalchemy import func

    from microlend.marketing.tables import TrackingEventRow

    targeting = _targeting_parts(s, tenant_id)
    events = tuple(s.execute(select(func.count(), func.max(TrackingEventRow.id)).where(
        TrackingEventRow.tenant_id == tenant_id)).one())
    settings = s.execute(select(MeasurementSettingsRow.updated_at).where(
        MeasurementSettingsRow.tenant_id == tenant_id)).scalar()
    return _digest([events, *targeting, settings]), _digest(targeting)


def interim_fingerprint(s: Session, tenant_id: int) -> str:
    """A digest of everything in marketing's own tables an open campaign's report reads: the bank's
    assignments, contacts, tracked events, messages per status and receipt, visit tasks per status and
    outcome, launched campaigns and stated costs. Any new event, send or receipt changes it (a few aggregate
    queries, no rows read)."""
    return interim_fingerprints(s, tenant_id)[0]


def interim_is_fresh(stored_fingerprint: str, computed_at: datetime, fingerprint: str, now: datetime,
                     max_age: timedelta = INTERIM_MAX_AGE) -> bool:
    """Pure: a stored interim result may be served while its inputs' fingerprint is unchanged and it is
    younger than `max_age` (a result from the future, a clock set back, is not trusted)."""
    return stored_fingerprint == fingerprint and timedelta(0) <= now - computed_at < max_age


def _interim_row(s: Session, tenant_id: int, campaign_id: int) -> Any:
    from microlend.marketing.tables import CampaignInterimRow

    return s.execute(select(CampaignInterimRow).where(
        CampaignInterimRow.tenant_id == tenant_id, CampaignInterimRow.campaign_id == campaign_id)).scalar()


def _store_interim(uow: UnitOfWork, who: Principal, campaign_id: int, fingerprint: str, report: CampaignReport,
                   charts: dict[str, str | None], at: datetime) -> None:
    """Upsert the interim row; a concurrent writer's row wins (both hold the same figures)."""
    from sqlalchemy.exc import IntegrityError

    from microlend.marketing.tables import CampaignInterimRow

    result = {"report": report.to_dict(), "charts": charts}
    try:
        with uow:
            row = _interim_row(uow.session, who.tenant_id, campaign_id)
            if row is None:
                row = CampaignInterimRow(tenant_id=who.tenant_id, campaign_id=campaign_id)
                uow.session.add(row)
            row.fingerprint, row.result, row.computed_at = fingerprint, result, at
            uow.commit()
    except IntegrityError:
        pass


def interim_report(uow: UnitOfWork, who: Principal, campaign_id: int, *, now: datetime,
                   max_age: timedelta = INTERIM_MAX_AGE) -> InterimReport:
    """An open campaign's report for its page: the stored interim result while the inputs' fingerprint
    still matches and it is younger than `max_age`, else refreshed and stored for the next view. The refresh
    is incremental: after a new response only the events are read again and attributed over the targeting
    kept from the last refresh (while sends, receipts and launches are unchanged); the charts are drawn as
    SVG from the figures."""
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        s = uow.session
        row = campaign_row(s, who, campaign_id)
        if row.launched_at is None:
            raise Conflict(f"campaign {campaign_id} has not been launched", field="campaign_id")
        fingerprint, targeting = interim_fingerprints(s, who.tenant_id)
        stored = _interim_row(s, who.tenant_id, campaign_id)
        if stored is not None and interim_is_fresh(stored.fingerprint, stored.computed_at, fingerprint, now,
                                                   max_age):
            return InterimReport(campaign_id, report_from_dict(stored.result["report"]),
                                 dict(stored.result.get("charts", {})), stored.computed_at, False)
    return refresh_interim(uow, who, campaign_id, now=now, fingerprint=fingerprint, targeting=targeting)


def refresh_interim(uow: UnitOfWork, who: Principal, campaign_id: int, *, now: datetime,
                    fingerprint: str | None = None, report: CampaignReport | None = None,
                    targeting: str | None = None) -> InterimReport:
    """Compute an open campaign's report now (reusing the targeting read under the same `targeting`
    fingerprint) and store it as its interim result."""
    from microlend.marketing.service.attribution import campaign_report
    from microlend.marketing.svg_charts import funnel_svg, lift_svg

    who.require(Permission.VIEW_CAMPAIGNS)
    if fingerprint is None:
        with uow:
            fingerprint, targeting = interim_fingerprints(uow.session, who.tenant_id)
    if report is None:
        report = campaign_report(uow, who, [campaign_id], targeting_fingerprint=targeting)
    charts = {"funnel": funnel_svg(report), "lift": lift_svg(report)}
    _store_interim(uow, who, campaign_id, fingerprint, report, charts, now)
    return InterimReport(campaign_id, report, charts, now, True)


def refresh_open_reports(uow: UnitOfWork, who: Principal, *, now: datetime) -> int:
    """The worker's hourly pass: every launched campaign of the bank not closed yet gets its interim report
    recomputed and stored when its inputs changed or it is an hour old; how many were recomputed."""
    from microlend.marketing.tables import CampaignRow

    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        s = uow.session
        closed = select(CampaignMeasurementRow.campaign_id).where(CampaignMeasurementRow.tenant_id == who.tenant_id)
        ids = [int(i) for i in s.execute(select(CampaignRow.id).where(
            CampaignRow.tenant_id == who.tenant_id, CampaignRow.launched_at.is_not(None),
            CampaignRow.id.not_in(closed)).order_by(CampaignRow.id)).scalars()]
    done = 0
    for cid in ids:
        done += interim_report(uow, who, cid, now=now, max_age=INTERIM_MAX_AGE - timedelta(minutes=5)).recomputed
    return done
