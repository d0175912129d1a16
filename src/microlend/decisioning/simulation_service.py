"""Simulating a policy before it is submitted: a posted document over a historical sample, the bank's own
decisions of the last days, or a dataset the bank stored, against a baseline version (the champion by
default), with the money of each (see `money`) on the bank's own assumptions."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Any

import pandas as pd

from microlend.core.errors import ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.data.service import load_dataset
from microlend.decisioning import service as svc
from microlend.decisioning.evidence import HISTORY_DAYS, HISTORY_MAX_ROWS, count_history, decision_history
from microlend.decisioning.policy_views import setup_or_none
from microlend.decisioning.ports import money_assumptions
from microlend.decisioning.simulate import REQUIRED_COLUMNS, SimulationReport, sample_applications, simulate

#: The historical samples shipped with the platform; any other name is a dataset in the bank's credit data.
SAMPLES = ("german_credit", "lending_club")
#: The bank's own acted-on decisions of the last `history_days` days (newest first, at most HISTORY_MAX_ROWS).
BANK_HISTORY = "bank_history"
MAX_HISTORY_DAYS = 730


def simulation(uow: UnitOfWork, who: Principal, content: dict[str, Any], dataset: str, version: int | None,
               baseline_hash: str | None, charts: bool = True, history_days: int = HISTORY_DAYS,
               funding_rate: Decimal | None = None) -> SimulationReport:
    """The simulation report of `content` on a sample, the bank's history or a stored dataset, against a
    baseline version, with its money on the bank's assumptions (`funding_rate` overrides the default)."""
    who.require(Permission.EDIT_POLICIES)
    frame = applications_frame(uow, who, dataset, version, history_days)
    if baseline_hash is None:
        setup = setup_or_none(uow, who)
        baseline_hash = setup.champion_hash if setup else None
    baseline = svc.policy_content(uow, who, baseline_hash) if baseline_hash else None
    lint_report = svc.lint_for_bank(uow, who, content, run_tests=False)  # the bank's reason codes and sub-decisions
    if not lint_report.ok:
        raise ValidationError(f"content: {lint_report.errors[0].text()}", field="content")
    money = money_assumptions(uow, who, funding_rate)
    return simulate(content, frame, baseline=baseline, charts=charts, money=money)


def applications_frame(uow: UnitOfWork, who: Principal, dataset: str, version: int | None,
                       history_days: int = HISTORY_DAYS) -> pd.DataFrame:
    """The applications to simulate on: a shipped sample, the bank's own recent decisions, or a stored
    dataset with decision-input columns."""
    if dataset in SAMPLES:
        return _sample(dataset).copy()
    if dataset == BANK_HISTORY:
        return bank_history(uow, who, history_days)
    who.require(Permission.MANAGE_DATASETS)
    frame = load_dataset(uow, who, dataset, version)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValidationError(f"dataset: column '{missing[0]}' is missing (columns are named by decision-input "
                              "path, e.g. application.amount)", field="dataset")
    return frame


def bank_history(uow: UnitOfWork, who: Principal, days: int = HISTORY_DAYS) -> pd.DataFrame:
    """The inputs of the bank's acted-on decisions of the last `days` days as an applications table."""
    who.require(Permission.VIEW_DECISIONS)
    if isinstance(days, bool) or not 1 <= days <= MAX_HISTORY_DAYS:
        raise ValidationError(f"history_days: give a number of days between 1 and {MAX_HISTORY_DAYS}",
                              field="history_days")
    with uow.read_only():
        frame = decision_history(uow.session, who.tenant_id, days=days, max_rows=HISTORY_MAX_ROWS)
    if frame.empty:
        raise ValidationError(f"dataset: the bank has no acted-on decisions in the last {days} days to simulate "
                              "on; pick a shipped sample", field="dataset")
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValidationError(f"dataset: the stored decisions lack '{missing[0]}'", field="dataset")
    return frame


def history_size(uow: UnitOfWork, who: Principal, days: int = HISTORY_DAYS) -> int:
    """How many acted-on decisions of the last `days` days the bank's history would simulate on."""
    who.require(Permission.VIEW_DECISIONS)
    with uow.read_only():
        return count_history(uow.session, who.tenant_id, days=days, max_rows=HISTORY_MAX_ROWS)


@lru_cache(maxsize=2)
def _sample(name: str) -> pd.DataFrame:
    return sample_applications(name)
