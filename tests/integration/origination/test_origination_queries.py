"""What other modules read about applications and their loans: the funnel's steps and which decisions went
bad, within the caller's bank only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update
from tests.conftest import Api, TenantKit
from tests.integration.origination.test_applications_api import POOR_ROW, apply, new_customer
from tests.signing import accept_by_code

from microlend.origination import queries
from microlend.servicing import queries as loans
from microlend.servicing.tables import LoanRow

_LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.fixture
def other(app_client: Any, new_tenant: Callable[[], TenantKit]) -> Api:
    return Api(app_client, new_tenant())


def _disbursed(api: Api) -> dict[str, object]:
    app = apply(api, new_customer(api), "30000.00").json()
    assert app["status"] == "approved", app
    r = accept_by_code(api, app["id"])
    assert r.json()["status"] == "disbursed", r.text
    return dict(r.json())


def _set_dpd(api: Api, loan_id: object, dpd: int) -> None:
    with api.kit.uow_factory() as u:
        u.session.execute(update(LoanRow).where(LoanRow.id == loan_id).values(days_past_due=dpd))
        u.commit()


class TestApplicationSteps:
    def test_applied_approved_and_disbursed_are_steps_and_a_decline_is_only_applied(self, api: Api) -> None:
        done = _disbursed(api)
        declined = apply(api, new_customer(api, POOR_ROW), "30000.00").json()
        assert declined["status"] == "declined"
        who = api.kit.principal("marketer")
        steps = queries.application_steps(api.kit.uow_factory(), who,
                                          [done["customer_id"], declined["customer_id"]], _LONG_AGO)
        kinds = sorted((s.customer_id, s.kind) for s in steps)
        assert kinds == sorted([(done["customer_id"], "applied"), (done["customer_id"], "approved"),
                                (done["customer_id"], "disbursed"), (declined["customer_id"], "applied")])

    def test_another_banks_customers_have_no_steps(self, api: Api, other: Api) -> None:
        theirs = _disbursed(other)
        steps = queries.application_steps(api.kit.uow_factory(), api.kit.principal("marketer"),
                                          [theirs["customer_id"]], _LONG_AGO)
        assert steps == []


class TestObservedOutcomes:
    def test_a_decision_whose_loan_is_more_than_30_days_late_went_bad(self, api: Api, other: Api) -> None:
        late, fine = _disbursed(api), _disbursed(api)
        _set_dpd(api, late["loan_id"], 31)
        _set_dpd(api, fine["loan_id"], 30)
        theirs = _disbursed(other)
        bad = queries.observed_bad(api.kit.uow_factory(), api.kit.principal("risk_analyst"))
        late_decision, fine_decision = late["decision"]["id"], fine["decision"]["id"]  # type: ignore[index]
        assert bad == {late_decision: True, fine_decision: False}
        assert theirs["decision"]["id"] not in bad  # type: ignore[index]
        worst = loans.worst_days_past_due(api.kit.uow_factory(), api.kit.principal("risk_analyst"))
        assert worst == {late["customer_id"]: 31, fine["customer_id"]: 30}

    def test_a_shadow_decision_shares_the_fate_of_the_decision_it_shadowed(self, api: Api, other: Api) -> None:
        late, fine = _disbursed(api), _disbursed(api)
        _set_dpd(api, late["loan_id"], 31)
        theirs = _disbursed(other)
        shadows = {_shadow(api, late["decision"]["id"]): late, _shadow(api, fine["decision"]["id"]): fine,  # type: ignore[index]
                   _shadow(other, theirs["decision"]["id"]): theirs}  # type: ignore[index]
        who = api.kit.principal("risk_analyst")
        bad = queries.observed_bad(api.kit.uow_factory(), who)
        performance = queries.decision_performance(api.kit.uow_factory(), who, datetime.now(UTC).date())
        for shadow_id, acted in list(shadows.items())[:2]:
            acted_id = acted["decision"]["id"]  # type: ignore[index]
            assert bad[shadow_id] == bad[acted_id] == (acted is late)
            assert performance[shadow_id] == performance[acted_id]
        their_shadow = list(shadows)[2]
        assert their_shadow not in bad and their_shadow not in performance


def _shadow(api: Api, acted_id: int) -> int:
    """A shadow decision beside `acted_id`, as a shadow policy stores one."""
    from sqlalchemy import insert, select

    from microlend.decisioning.tables import DecisionRow

    with api.kit.uow_factory() as u:
        acted = u.session.execute(select(DecisionRow).where(DecisionRow.id == acted_id)).scalar_one()
        values = {c.key: getattr(acted, c.key) for c in DecisionRow.__table__.columns if c.key != "id"}
        shadow = {**values, "arm": "shadow", "acted_on": False, "shadow_of": acted_id}
        shadow_id = u.session.execute(insert(DecisionRow).values(shadow).returning(DecisionRow.id)).scalar_one()
        u.commit()
    return int(shadow_id)

