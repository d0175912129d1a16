"""Segment use cases (客群): store a definition as the segment's next version, read versions, and preview
a stored segment or an expression being typed, with a live count and every exclusion applied."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

import polars as pl
from sqlalchemy import func, select

from microlend.core import audit
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.marketing.segments import (
    DEFAULT_NAMESPACE,
    FeatureType,
    FrequencyCap,
    Segment,
    SegmentCount,
    count_segment,
    identifiers,
    parse_segment_expression,
)
from microlend.marketing.service.common import opt_outs, recent_contacts, segment_row
from microlend.marketing.tables import SegmentRow


@dataclass(frozen=True)
class SegmentVersion:
    id: int
    name: str
    version: int
    expression: str
    namespace: dict[str, FeatureType]
    description: str
    created_by: str
    created_at: datetime

    @classmethod
    def from_row(cls, r: SegmentRow) -> SegmentVersion:
        namespace = cast(dict[str, FeatureType], dict(r.namespace))
        return cls(r.id, r.name, r.version, r.expression, namespace, r.description, r.created_by,
                   r.created_at)

    def segment(self) -> Segment:
        return Segment(self.name, self.version, self.expression, self.namespace, self.description)

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


def check_expression(who: Principal, expression: str) -> list[str]:
    """The features a segment expression reads, or ValidationError naming the identifier at fault: a step of
    writing a segment, so it needs the same permission."""
    who.require(Permission.MANAGE_CAMPAIGNS)
    return sorted(identifiers(parse_segment_expression(expression)))


def save_segment(uow: UnitOfWork, who: Principal, name: str, expression: str, *, at: datetime,
                 description: str = "", namespace: dict[str, FeatureType] | None = None) -> SegmentVersion:
    """Check the expression and store it as the segment's next version (the first is version 1)."""
    who.require(Permission.MANAGE_CAMPAIGNS)
    ns = dict(DEFAULT_NAMESPACE if namespace is None else namespace)
    with uow:
        s = uow.session
        latest = s.execute(select(func.max(SegmentRow.version)).where(
            SegmentRow.tenant_id == who.tenant_id, SegmentRow.name == name)).scalar()
        version = int(latest or 0) + 1
        Segment(name, version, expression, ns, description)  # refuses a bad name or expression
        row = SegmentRow(tenant_id=who.tenant_id, name=name, version=version, expression=expression,
                         namespace=ns, description=description, created_by=who.username, created_at=at)
        s.add(row)
        s.flush()
        audit.record(s, who, "segment.save", "segment", row.id,
                     after={"name": name, "version": version, "expression": expression})
        result = SegmentVersion.from_row(row)
        uow.commit()
    return result


def get_segment(uow: UnitOfWork, who: Principal, name: str, version: int | None = None) -> SegmentVersion:
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        return SegmentVersion.from_row(segment_row(uow.session, who, name, version))


def list_segments(uow: UnitOfWork, who: Principal) -> list[SegmentVersion]:
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        rows = uow.session.execute(select(SegmentRow).where(SegmentRow.tenant_id == who.tenant_id)
                                   .order_by(SegmentRow.name, SegmentRow.version)).scalars()
        return [SegmentVersion.from_row(r) for r in rows]


def _count(uow: UnitOfWork, who: Principal, segment: Segment, customers: pl.DataFrame, *, channel: str,
           at: datetime, cap: FrequencyCap, sample_size: int) -> SegmentCount:
    s = uow.session
    summary, _ = count_segment(segment, customers, channel=channel, at=at, cap=cap,
                               opt_outs=opt_outs(s, who.tenant_id),
                               contacts=recent_contacts(s, who.tenant_id, cap.window_start(at), at),
                               sample_size=sample_size)
    return summary


def preview_segment(uow: UnitOfWork, who: Principal, name: str, customers: pl.DataFrame, *, channel: str,
                    at: datetime, cap: FrequencyCap | None = None, sample_size: int = 10,
                    version: int | None = None) -> SegmentCount:
    """Live count and sample of a stored segment on a channel, with every exclusion applied."""
    who.require(Permission.VIEW_CAMPAIGNS)
    cap = cap or FrequencyCap()
    with uow:
        seg = SegmentVersion.from_row(segment_row(uow.session, who, name, version)).segment()
        return _count(uow, who, seg, customers, channel=channel, at=at, cap=cap, sample_size=sample_size)


def preview_expression(uow: UnitOfWork, who: Principal, expression: str, customers: pl.DataFrame, *,
                       channel: str, at: datetime, cap: FrequencyCap | None = None,
                       sample_size: int = 5) -> SegmentCount:
    """Live count of an expression being typed (not yet saved), with every exclusion applied."""
    who.require(Permission.VIEW_CAMPAIGNS)
    cap = cap or FrequencyCap()
    segment = Segment("preview", 1, expression)
    with uow:
        return _count(uow, who, segment, customers, channel=channel, at=at, cap=cap, sample_size=sample_size)
