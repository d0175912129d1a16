"""Behaviour scores kept compactly (score, band, days past due, factor bins and values; the scorecard's version
and definition once per run) are explained exactly as the rows kept before the runs (a JSON breakdown per row),
and the next month's early-warning transition reads the days past due of either, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select
from tests.conftest import TenantKit

from microlend.core.identity import Role
from microlend.decisioning import behaviour
from microlend.decisioning.behaviour_scores import (
    latest_scores,
    score_history,
    scorecard_definition,
    scores_before_frame,
    store_month,
)
from microlend.decisioning.tables import BehaviourScoreRow, BehaviourScoreRunRow

SEPTEMBER, OCTOBER = date(2026, 9, 30), date(2026, 10, 31)
FACTS = {  # subject id -> (kind, the scorecard's inputs)
    11: ("line", {"current_dpd": 0, "max_dpd_12m": 3, "overdue_count_12m": 1, "on_time_bp": 9000,
                  "utilisation_bp": 9700, "months_on_book": 14}),
    12: ("line", {"current_dpd": 45, "max_dpd_12m": 45, "overdue_count_12m": 5, "on_time_bp": None,
                  "utilisation_bp": 0, "months_on_book": 2}),
    13: ("loan", {"current_dpd": 7, "max_dpd_12m": 7, "overdue_count_12m": 2, "on_time_bp": 7000,
                  "utilisation_bp": None, "months_on_book": 30}),
}


@pytest.fixture
def kit(new_tenant: Callable[[], TenantKit]) -> TenantKit:
    return new_tenant()


def scored() -> dict[int, behaviour.BehaviourScore]:
    return {i: behaviour.score_one(facts, kind) for i, (kind, facts) in FACTS.items()}


def test_a_compact_month_is_explained_as_a_month_kept_before_the_runs(kit: TenantKit) -> None:
    approver = kit.principal(Role.APPROVER.value)
    expected = scored()
    now = datetime(2026, 10, 1, 9, tzinfo=UTC)
    with kit.uow_factory() as u:  # September as the scores were kept before the runs: a JSON breakdown per row
        for i, result in expected.items():
            u.session.add(BehaviourScoreRow(
                tenant_id=kit.tenant.id, subject_kind=FACTS[i][0], subject_id=i, customer_id=None, month="2026-09",
                as_of=SEPTEMBER, score=result.score, band=result.band, factors=[f.as_dict() for f in result.factors],
                scorecard_version=behaviour.SCORECARD_VERSION, created_at=now))
        u.commit()
    kept = store_month(kit.uow_factory(), approver, OCTOBER, [
        {"subject_kind": FACTS[i][0], "subject_id": i, "customer_id": None, "score": r.score, "band": r.band,
         "factors": [f.as_dict() for f in r.factors]} for i, r in expected.items()])
    assert kept == len(FACTS)

    for i, result in expected.items():
        october, september = score_history(kit.uow_factory(), approver, FACTS[i][0], i)
        assert (october.month, october.as_of, september.month, september.as_of) == (
            "2026-10", OCTOBER, "2026-09", SEPTEMBER)
        for stored in (october, september):
            assert (stored.score, stored.band, stored.scorecard_version) == (
                result.score, result.band, behaviour.SCORECARD_VERSION)
            assert stored.factors == result.factors  # value, bin and points of every factor
            assert behaviour.BASE_POINTS + sum(f.points for f in stored.factors) == stored.score
            assert [f.text("en") for f in stored.factors] == [f.text("en") for f in result.factors]
    assert latest_scores(kit.uow_factory(), approver, "line")[12].month == "2026-10"

    with kit.uow_factory() as u:  # October holds no JSON per row; its run holds the scorecard once
        rows = list(u.session.execute(select(BehaviourScoreRow).where(
            BehaviourScoreRow.tenant_id == kit.tenant.id, BehaviourScoreRow.month == "2026-10")).scalars())
        [run] = u.session.execute(select(BehaviourScoreRunRow).where(
            BehaviourScoreRunRow.tenant_id == kit.tenant.id)).scalars().all()
    assert {r.run_id for r in rows} == {run.id} and all(r.factors is None and r.as_of is None for r in rows)
    assert (run.month, run.as_of, run.scored, run.definition) == ("2026-10", OCTOBER, 3, scorecard_definition())
    assert {r.subject_id: (r.current_dpd, r.factor_bins, r.factor_values) for r in rows}[13] == (
        7, "1121-4", "7,7,2,7000,,30")

    # the transition of the month after reads the days past due of either kind of row
    for month in ("2026-10", "2026-11"):
        before = scores_before_frame(kit.uow_factory(), approver, month)
        assert sorted(before.iter_rows()) == sorted(
            (FACTS[i][0], i, r.score, FACTS[i][1]["current_dpd"]) for i, r in expected.items())


def test_another_banks_run_explains_none_of_the_scores(kit: TenantKit, new_tenant: Callable[[], TenantKit]) -> None:
    other = new_tenant()
    store_month(kit.uow_factory(), kit.principal(Role.APPROVER.value), OCTOBER, [
        {"subject_kind": "line", "subject_id": 11, "customer_id": None, "score": 600, "band": "D",
         "factors": [f.as_dict() for f in scored()[11].factors]}])
    assert latest_scores(other.uow_factory(), other.principal(Role.APPROVER.value), "line") == {}
    assert scores_before_frame(other.uow_factory(), other.principal(Role.APPROVER.value), "2026-11").height == 0
