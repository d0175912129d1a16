"""Joint training runs in the bank's records (联合训练任务): `federation train --partnership` records one when it
starts, its progress as it goes (each update in its own short transaction, so a page sees it live) and how it
ended: failed with the error, or succeeded with the shared-ID count and the joint model's validation figures
beside the bank-only model's trained on the same fold."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.errors import NotFound
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.risk.federation.partnerships import Partnership
from microlend.risk.federation.phases import PHASE_FINISHED, PHASE_PSI, PHASE_SETUP, PHASE_SHARED
from microlend.risk.tables import PartnershipRow, TrainingRunRow

MAX_ERROR = 2000
LIST_LIMIT = 50
_EPOCH = re.compile(r"^epoch (\d+) of (\d+)$")
#: a running run not heard of for longer than its deadline and this margin has lost its process (killed, host down)
STALL_MARGIN = timedelta(minutes=5)
DEFAULT_DEADLINE_MIN = 120.0
#: the sides a run's comparison shows, in order
SIDES = ("joint", "bank_only", "partner_only")


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RunPhase(StrEnum):
    PSI = "psi"
    SETUP = "setup"
    EPOCHS = "epochs"
    FINISHED = "finished"


@dataclass(frozen=True)
class TrainingRun:
    id: int
    partnership_id: int
    started_by_name: str
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    status: str
    error: str
    phase: str
    epoch: int
    epochs: int
    batches_done: int
    batches_total: int
    shared_ids: int | None
    model_id: str | None
    model_version_id: int | None
    settings: dict[str, Any]
    result: dict[str, Any]

    @classmethod
    def from_row(cls, r: TrainingRunRow) -> TrainingRun:
        return cls(r.id, r.partnership_id, r.started_by_name, r.started_at, r.updated_at, r.ended_at, r.status,
                   r.error, r.phase, r.epoch, r.epochs, r.batches_done, r.batches_total, r.shared_ids, r.model_id,
                   r.model_version_id, dict(r.settings or {}), dict(r.result or {}))

    @property
    def running(self) -> bool:
        return self.status == RunStatus.RUNNING

    def stalled(self, now: datetime) -> bool:
        """Still marked running, but not heard of for longer than its deadline allows: its process is gone."""
        deadline = timedelta(minutes=float(self.settings.get("deadline_minutes", DEFAULT_DEADLINE_MIN)))
        return self.running and now - self.updated_at > deadline + STALL_MARGIN

    @property
    def percent(self) -> int:
        """How far the run has come (0..100): the set-up phases count for the first tenth, the batches the rest."""
        if self.status == RunStatus.SUCCEEDED:
            return 100
        if self.phase == RunPhase.SETUP:
            return 5
        if self.phase in (RunPhase.EPOCHS, RunPhase.FINISHED) and self.batches_total > 0:
            return min(10 + 90 * self.batches_done // self.batches_total, 99)
        return 0

    @property
    def seconds(self) -> float:
        """How long it ran (until now when still running, as of its last update)."""
        end = self.ended_at or self.updated_at
        return max((end - self.started_at).total_seconds(), 0.0)

    def figures(self, side: str) -> dict[str, float | None]:
        """AUC and KS of one side on the validation fold (None when not measured)."""
        found = self.result.get("sides", {}).get(side, {})
        return {"auc": found.get("auc"), "ks": found.get("ks")}


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def summary_of(metrics: dict[str, Any]) -> dict[str, Any]:
    """What a run keeps of a joint model's metrics: each side's AUC and KS on the validation fold and each side's
    contribution (NaN, a figure that cannot be measured, kept as None)."""
    sides = {side: {k: _finite(metrics.get("sides", {}).get(side, {}).get(k)) for k in ("auc", "ks", "count")}
             for side in SIDES}
    contribution = {k: _finite(v) for k, v in metrics.get("contribution", {}).items()}
    extra = {k: _finite(metrics.get(k)) for k in ("best_epoch", "train_rows", "valid_rows", "bad_rate",
                                                  "psi_seconds", "training_seconds")}
    return {"sides": sides, "contribution": contribution, **extra}


def _get(uow: UnitOfWork, who: Principal, run_id: int) -> TrainingRunRow:
    row = uow.session.get(TrainingRunRow, run_id)
    if row is None or row.tenant_id != who.tenant_id:
        raise NotFound(f"training run {run_id} not found")
    return row


def start_run(uow: UnitOfWork, who: Principal, partnership: Partnership, *, settings: dict[str, Any]) -> TrainingRun:
    """Record a run starting under `partnership` (already checked usable by `partnership_for_training`)."""
    who.require(Permission.TRAIN_MODELS)
    with uow:
        s = uow.session
        owner = s.get(PartnershipRow, partnership.id)
        if owner is None or owner.tenant_id != who.tenant_id:
            raise NotFound(f"partnership {partnership.id} not found")
        now = utcnow()
        row = TrainingRunRow(tenant_id=who.tenant_id, partnership_id=partnership.id, started_by=who.user_id,
                             started_by_name=who.username, started_at=now, updated_at=now, ended_at=None,
                             status=RunStatus.RUNNING.value, error="", phase=RunPhase.PSI.value, epoch=0,
                             epochs=int(settings.get("max_epochs", 0)), batches_done=0, batches_total=0,
                             shared_ids=None, model_id=None, model_version_id=None, settings=settings, result={})
        s.add(row)
        s.flush()
        audit.record(s, who, "training_run.start", "training_run", row.id,
                     after={"partnership": partnership.name, "settings": settings})
        run = TrainingRun.from_row(row)
        uow.commit()
    return run


def record_progress(uow: UnitOfWork, who: Principal, run_id: int, **fields: Any) -> None:
    """One progress update of a running run, in its own short transaction (a finished run is left as it is)."""
    with uow:
        row = _get(uow, who, run_id)
        if row.status != RunStatus.RUNNING:
            return
        for name, value in fields.items():
            setattr(row, name, value)
        row.updated_at = utcnow()
        uow.commit()


def finish_run(uow: UnitOfWork, who: Principal, run_id: int, *, model_id: str, metrics: dict[str, Any]) -> TrainingRun:
    """The run succeeded: its joint model's id and validation figures beside the bank-only model's."""
    with uow:
        s = uow.session
        row = _get(uow, who, run_id)
        now = utcnow()
        row.status, row.phase, row.ended_at, row.updated_at = (RunStatus.SUCCEEDED.value, RunPhase.FINISHED.value,
                                                               now, now)
        row.model_id, row.result = model_id, summary_of(metrics)
        row.shared_ids = int(metrics.get("shared_ids", row.shared_ids or 0))
        audit.record(s, who, "training_run.succeed", "training_run", row.id,
                     after={"model_id": model_id, "shared_ids": row.shared_ids})
        run = TrainingRun.from_row(row)
        uow.commit()
    return run


def fail_run(uow: UnitOfWork, who: Principal, run_id: int, error: str) -> TrainingRun:
    """The run failed (the partner down, the deadline passed, data refused): the error as the bank's user saw it."""
    with uow:
        s = uow.session
        row = _get(uow, who, run_id)
        now = utcnow()
        row.status, row.error, row.ended_at, row.updated_at = (RunStatus.FAILED.value,
                                                               (error.strip() or "failed")[:MAX_ERROR], now, now)
        audit.record(s, who, "training_run.fail", "training_run", row.id, after={"error": row.error})
        run = TrainingRun.from_row(row)
        uow.commit()
    return run


def link_model_version(uow: UnitOfWork, who: Principal, *, model_id: str, version_id: int) -> TrainingRun | None:
    """The registry version a run's joint model was registered as (None when no run of this bank produced it)."""
    with uow:
        row = uow.session.execute(select(TrainingRunRow).where(
            TrainingRunRow.tenant_id == who.tenant_id, TrainingRunRow.model_id == model_id,
            TrainingRunRow.status == RunStatus.SUCCEEDED.value)).scalars().first()
        if row is None:
            return None
        row.model_version_id = version_id
        run = TrainingRun.from_row(row)
        uow.commit()
    return run


def list_runs(uow: UnitOfWork, who: Principal, partnership_id: int, *, limit: int = LIST_LIMIT) -> list[TrainingRun]:
    """A partnership's training runs, newest first (NotFound for another bank's partnership)."""
    who.require(Permission.VIEW_MODELS)
    with uow:
        owner = uow.session.get(PartnershipRow, partnership_id)
        if owner is None or owner.tenant_id != who.tenant_id:
            raise NotFound(f"partnership {partnership_id} not found")
        rows = uow.session.execute(select(TrainingRunRow).where(
            TrainingRunRow.tenant_id == who.tenant_id, TrainingRunRow.partnership_id == partnership_id)
            .order_by(TrainingRunRow.started_at.desc(), TrainingRunRow.id.desc()).limit(limit)).scalars()
        return [TrainingRun.from_row(r) for r in rows]


def get_run(uow: UnitOfWork, who: Principal, run_id: int) -> TrainingRun:
    who.require(Permission.VIEW_MODELS)
    with uow:
        return TrainingRun.from_row(_get(uow, who, run_id))


class RunRecorder:
    """A training's progress callback that writes to the run: at once on a new phase or epoch, otherwise at most
    every `every` seconds (each batch would be a write per second or more)."""

    def __init__(self, uow: UnitOfWork, who: Principal, run_id: int, *, every: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.uow, self.who, self.run_id, self.every, self.clock = uow, who, run_id, every, clock
        self._last: str | None = None
        self._written = -math.inf

    def __call__(self, phase: str, done: int, total: int) -> None:
        fields: dict[str, Any]
        epoch = _EPOCH.match(phase)
        if phase == PHASE_PSI:
            fields = {"phase": RunPhase.PSI.value}
        elif phase == PHASE_SHARED:
            fields = {"phase": RunPhase.PSI.value, "shared_ids": done}
        elif phase == PHASE_SETUP:
            fields = {"phase": RunPhase.SETUP.value}
        elif epoch is not None:
            fields = {"phase": RunPhase.EPOCHS.value, "epoch": int(epoch[1]), "epochs": int(epoch[2]),
                      "batches_done": done, "batches_total": total}
        elif phase == PHASE_FINISHED:
            fields = {"phase": RunPhase.FINISHED.value, "batches_done": done}
        else:
            return
        now = self.clock()
        if phase == self._last and now - self._written < self.every and done != total:
            return
        record_progress(self.uow, self.who, self.run_id, **fields)
        self._last, self._written = phase, now
