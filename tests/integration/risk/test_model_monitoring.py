"""The worker's model monitoring on SQLite and PostgreSQL: the champion is measured on the applications it scored
live — PSI of its scores against its development profile, CSI per characteristic against its first live months,
AUC/KS and bad rate by score band once outcomes are known — the run is stored per version and day, a drifted
population raises alerts on the audit trail, and another bank never sees the run."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import select
from tests.integration.risk.conftest import Bank, open_bank_on

from microlend.core import clock
from microlend.core.clock import FixedClock
from microlend.core.errors import NotFound, PermissionDenied
from microlend.core.identity import system_principal
from microlend.core.tables import AuditRow
from microlend.demo.seed import german_credit
from microlend.risk import monitoring_runs
from microlend.risk.monitoring_runs import CaseFacts
from microlend.risk.registry import ScoringRuntime

FIRST = date(2026, 1, 5)


def _score(bank: Bank, frame: pd.DataFrame, start_id: int, on: date, monkeypatch: pytest.MonkeyPatch
           ) -> dict[int, CaseFacts]:
    """Score each row as an application of `on` with the bank's champion; what the row saw and its outcome."""
    monkeypatch.setattr(clock, "_clock", FixedClock(datetime(on.year, on.month, on.day, 3, 0, tzinfo=UTC)))
    runtime, system = ScoringRuntime(), system_principal(bank.tenant_id, "scoring")
    facts: dict[int, CaseFacts] = {}
    for i, (_, row) in enumerate(frame.iterrows()):
        case = {k: v for k, v in row.items() if k != "creditability"}
        runtime.score(bank.uow, system, case, subject_type="application", subject_id=start_id + i)
        facts[start_id + i] = CaseFacts(case, row["creditability"] == "bad")
    return facts


def test_a_drifted_population_raises_alerts_and_the_run_is_stored(bank: Bank, monkeypatch: pytest.MonkeyPatch,
                                                                  fresh_engine: object, tmp_path: object) -> None:
    data = german_credit().sample(frac=1.0, random_state=3).reset_index(drop=True)
    facts = _score(bank, data.iloc[:300], 1, FIRST, monkeypatch)  # the first live month: like development
    worker = system_principal(bank.tenant_id, "worker")
    on = FIRST + timedelta(days=31)
    runs = monitoring_runs.record_monitoring(bank.uow, worker, on, facts)
    assert len(runs) == 1 and runs[0].result["score"] is not None
    first = runs[0]
    assert first.result["performance"]["status"] in ("stable", "act")
    assert 0.6 < first.result["performance"]["auc"] <= 1.0 and first.result["bands"]
    assert sum(b["count"] for b in first.result["bands"]) == 300

    # four months later only the riskiest applicants come: scores and characteristics drift
    later = FIRST + timedelta(days=120)
    worst = data.iloc[300:][data.iloc[300:]["creditability"] == "bad"]
    facts |= _score(bank, worst, 1000, later, monkeypatch)
    run = monitoring_runs.record_monitoring(bank.uow, worker, later, facts)[0]
    assert run.status == "act" and run.result["score"]["psi"] >= 0.25
    assert any(a["what"] == "score_psi" for a in run.alerts)
    assert any(a["what"] == "csi" for a in run.alerts), run.result["characteristics"][:3]
    assert run.cases == len(worst)
    # a rerun of the same day replaces its run; the alert is on the audit trail
    again = monitoring_runs.record_monitoring(bank.uow, worker, later, facts)[0]
    assert again.id == run.id
    analyst = bank.people["wang"]
    listed = monitoring_runs.monitoring_runs(bank.uow, analyst)
    assert [r.as_of for r in listed] == [later, on]
    assert monitoring_runs.monitoring_run_detail(bank.uow, analyst, run.id).alerts == run.alerts
    with bank.uow:
        audited = bank.uow.session.execute(select(AuditRow.action).where(
            AuditRow.tenant_id == bank.tenant_id, AuditRow.action == "model.monitoring_alert")).scalars().all()
    assert len(audited) == 2
    with pytest.raises(PermissionDenied):
        monitoring_runs.record_monitoring(bank.uow, analyst, later, facts)


def test_another_bank_never_sees_a_run(bank: Bank, monkeypatch: pytest.MonkeyPatch, fresh_engine: object,
                                       tmp_path: object) -> None:
    data = german_credit().iloc[:60]
    facts = _score(bank, data, 1, FIRST, monkeypatch)
    run = monitoring_runs.record_monitoring(bank.uow, system_principal(bank.tenant_id, "worker"), FIRST, facts)[0]
    other = open_bank_on(fresh_engine, tmp_path / "other", monkeypatch, "other-bank")  # type: ignore[arg-type, operator]
    with pytest.raises(NotFound):
        monitoring_runs.monitoring_run_detail(other.uow, other.people["wang"], run.id)
    with pytest.raises(NotFound):
        monitoring_runs.monitoring_runs(other.uow, other.people["wang"], version_id=run.model_version_id)
    assert monitoring_runs.monitoring_runs(other.uow, other.people["wang"]) == []
