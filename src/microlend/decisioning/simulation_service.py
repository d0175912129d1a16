"""Simulating a policy before it is submitted: a posted document over a historical sample or a dataset the
bank stored, against a baseline version (the champion by default)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import pandas as pd

from microlend.core.errors import ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.data.service import load_dataset
from microlend.decisioning import service as svc
from microlend.decisioning.policy_views import setup_or_none
from microlend.decisioning.simulate import REQUIRED_COLUMNS, SimulationReport, sample_applications, simulate

#: The historical samples shipped with the platform; any other name is a dataset in the bank's credit data.
SAMPLES = ("german_credit", "lending_club")


def simulation(uow: UnitOfWork, who: Principal, content: dict[str, Any], dataset: str, version: int | None,
               baseline_hash: str | None, charts: bool = True) -> SimulationReport:
    """The simulation report of `content` on a sample or a stored dataset, against a baseline version."""
    who.require(Permission.EDIT_POLICIES)
    frame = applications_frame(uow, who, dataset, version)
    if baseline_hash is None:
        setup = setup_or_none(uow, who)
        baseline_hash = setup.champion_hash if setup else None
    baseline = svc.policy_content(uow, who, baseline_hash) if baseline_hash else None
    lint_report = svc.lint_for_bank(uow, who, content, run_tests=False)  # the bank's reason codes and sub-decisions
    if not lint_report.ok:
        raise ValidationError(f"content: {lint_report.errors[0].text()}", field="content")
    return simulate(content, frame, baseline=baseline, charts=charts)


def applications_frame(uow: UnitOfWork, who: Principal, dataset: str, version: int | None) -> pd.DataFrame:
    """The applications to simulate on: a shipped sample, or a stored dataset with decision-input columns."""
    if dataset in SAMPLES:
        return _sample(dataset).copy()
    who.require(Permission.MANAGE_DATASETS)
    frame = load_dataset(uow, who, dataset, version)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValidationError(f"dataset: column '{missing[0]}' is missing (columns are named by decision-input "
                              "path, e.g. application.amount)", field="dataset")
    return frame


@lru_cache(maxsize=2)
def _sample(name: str) -> pd.DataFrame:
    return sample_applications(name)
