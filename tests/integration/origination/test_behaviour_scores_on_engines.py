"""The monthly behaviour score of the bank's own lines and loans, with the instalments totalled on a batch engine
(local or Spark), is the score totalled by the database, subject by subject."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.conftest import TenantKit
from tests.integration.origination.test_early_warning_columns import SUBJECTS, generate_book

from microlend.batch.engine import BatchEngine, LocalEngine
from microlend.core.identity import Role
from microlend.core.tenancy import business_date
from microlend.origination.behaviour_scoring import portfolio_scores, portfolio_scores_on, score_portfolio


@pytest.fixture
def kit(new_tenant: Callable[[], TenantKit]) -> TenantKit:
    return new_tenant()


def _same_scores(kit: TenantKit, engine: BatchEngine) -> None:
    approver = kit.principal(Role.APPROVER.value)
    with kit.uow_factory() as u:
        on = business_date(u.session, kit.tenant.id)
    generate_book(kit.uow_factory(), kit.tenant.id, on)
    key = ["kind", "subject_id"]
    in_database = portfolio_scores(kit.uow_factory(), approver, on).sort(key)
    on_engine = portfolio_scores_on(kit.uow_factory(), approver, on, engine).sort(key)
    assert in_database.height == SUBJECTS and in_database.get_column("score").n_unique() > 5
    assert on_engine.equals(in_database), (on_engine.to_dicts()[:3], in_database.to_dicts()[:3])


def test_the_local_engine_scores_as_the_database_does(kit: TenantKit) -> None:
    _same_scores(kit, LocalEngine())
    run = score_portfolio(kit.uow_factory(), kit.principal(Role.APPROVER.value), store=False, engine=LocalEngine())
    assert run.scored == SUBJECTS and sum(run.bands.values()) == SUBJECTS


@pytest.mark.spark
@pytest.mark.xdist_group("spark")
def test_spark_scores_as_the_database_does(kit: TenantKit, spark_engine: BatchEngine) -> None:
    _same_scores(kit, spark_engine)
