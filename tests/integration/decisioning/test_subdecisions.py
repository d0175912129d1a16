"""A shared sub-decision (`decisionNode`) loads from the bank's stored versions by content hash: it decides,
replays with exactly the version it was made with, shows in the plain trace, and one that is not a stored
version of the bank is refused at lint."""

from __future__ import annotations

from typing import Any

import pytest

from microlend.core.errors import ValidationError
from microlend.core.identity import Principal
from microlend.core.tenancy import Tenant
from microlend.core.uow import UnitOfWork
from microlend.decisioning import service
from microlend.decisioning.policy import policy_hash

from .test_decision_service import DEFAULT, application


def age_check(limit: int) -> dict[str, Any]:
    """A shared sub-decision: an age limit table that writes `age_check.reason` (null when within it)."""
    return {
        "contentType": "application/vnd.gorules.decision",
        "metadata": {"name": f"shared_age_check_{limit}", "kind": "sub_decision"},
        "nodes": [
            {"id": "in", "type": "inputNode", "name": "Application", "position": {"x": 0, "y": 0}},
            {"id": "age", "type": "decisionTableNode", "name": "Age limit", "position": {"x": 0, "y": 0},
             "content": {"hitPolicy": "first", "passThrough": True, "inputField": None, "outputPath": None,
                         "executionMode": "single",
                         "inputs": [{"id": "a", "name": "Age", "field": "customer.age"}],
                         "outputs": [{"id": "r", "name": "Reason", "field": "age_check.reason"}],
                         "rules": [{"_id": "old", "a": f"> {limit}", "r": '"AGE_ABOVE_MAX"'},
                                   {"_id": "ok", "a": "", "r": "null"}]}},
            {"id": "out", "type": "outputNode", "name": "Decision", "position": {"x": 0, "y": 0}},
        ],
        "edges": [{"id": "e1", "sourceId": "in", "targetId": "age", "type": "edge"},
                  {"id": "e2", "sourceId": "age", "targetId": "out", "type": "edge"}],
    }


def parent(key: str) -> dict[str, Any]:
    """A credit policy that asks the shared age check and declines on what it says."""
    return {
        "contentType": "application/vnd.gorules.decision",
        "metadata": {"name": "with_shared_age_check", "currency": "CNY"},
        "nodes": [
            {"id": "in", "type": "inputNode", "name": "Application", "position": {"x": 0, "y": 0}},
            {"id": "sub", "type": "decisionNode", "name": "Shared age check", "position": {"x": 0, "y": 0},
             "content": {"key": key}},
            {"id": "x", "type": "expressionNode", "name": "Outcome", "position": {"x": 0, "y": 0},
             "content": {"passThrough": False, "inputField": None, "outputPath": None, "executionMode": "single",
                         "expressions": [
                             {"id": "1", "key": "outcome", "value": 'age_check.reason != null ? "decline" : "approve"'},
                             {"id": "2", "key": "limit", "value": "age_check.reason != null ? 0 : application.amount"},
                             {"id": "3", "key": "annual_rate", "value": "age_check.reason != null ? null : 0.12"},
                             {"id": "4", "key": "reasons",
                              "value": "age_check.reason != null ? [age_check.reason] : []"},
                             {"id": "5", "key": "risk_grade", "value": "null"}]}},
            {"id": "out", "type": "outputNode", "name": "Decision", "position": {"x": 0, "y": 0}},
        ],
        "edges": [{"id": "e1", "sourceId": "in", "targetId": "sub", "type": "edge"},
                  {"id": "e2", "sourceId": "sub", "targetId": "x", "type": "edge"},
                  {"id": "e3", "sourceId": "x", "targetId": "out", "type": "edge"}],
        "test_base": DEFAULT["test_base"],
        "tests": [
            {"name": "64 is too old", "input": {"customer": {"age": 64}},
             "expect": {"outcome": "decline", "reasons": ["AGE_ABOVE_MAX"]}},
            {"name": "40 is approved", "input": {}, "expect": {"outcome": "approve", "limit": "50000"}},
        ],
    }


@pytest.fixture
def shared(uow: UnitOfWork, bank: Tenant, analyst: Principal) -> str:
    return service.save_draft(uow, analyst, age_check(60)).content_hash


def test_a_policy_with_a_sub_decision_passes_its_golden_tests_and_is_published(
        uow: UnitOfWork, bank: Tenant, analyst: Principal, second_analyst: Principal, shared: str) -> None:
    version, evidence = service.submit_with_evidence(uow, analyst, parent(shared))
    assert all(g["passed"] for g in evidence.golden) and len(evidence.golden) == 2
    service.publish(uow, second_analyst, version.content_hash)
    old = service.decide(uow, analyst, application({"customer": {"customer_id": "c1", "age": 64}}), locale="en")
    young = service.decide(uow, analyst, application({"customer": {"customer_id": "c2"}}), locale="en")
    assert (old.outcome, old.reasons) == ("decline", ("AGE_ABOVE_MAX",))
    assert (young.outcome, young.reasons, str(young.limit)) == ("approve", (), "50000.00")
    assert old.borrower_reasons == ("The applicant is older than the product allows (60)",)  # from inside
    assert service.replay(uow, analyst, old.id).equal and service.replay(uow, analyst, young.id).equal


def test_the_plain_trace_shows_the_sub_decision_s_rows(
        uow: UnitOfWork, bank: Tenant, analyst: Principal, second_analyst: Principal, shared: str) -> None:
    version = service.submit(uow, analyst, parent(shared))
    service.publish(uow, second_analyst, version.content_hash)
    record = service.decide(uow, analyst, application({"customer": {"age": 64}}))
    steps = service.decision_detail(uow, analyst, record.id).steps
    sub = next(s for s in steps if s.kind == "sub_decision")
    [table] = sub.steps
    [row] = table.rows
    assert (table.name, row.row, [(c.test, c.value) for c in row.matched]) == ("Age limit", 1, [("> 60", 64)])


def test_a_sub_decision_that_is_not_a_stored_version_of_the_bank_is_refused(
        uow: UnitOfWork, bank: Tenant, analyst: Principal) -> None:
    missing = policy_hash(age_check(55))
    report = service.lint_for_bank(uow, analyst, parent(missing))
    assert "sub_decision" in {f.kind for f in report.errors}
    with pytest.raises(ValidationError, match="sub_decision"):
        service.submit(uow, analyst, parent(missing))


def test_another_bank_s_version_is_not_loaded(uow: UnitOfWork, bank: Tenant, other_bank: Tenant,
                                               analyst: Principal, shared: str) -> None:
    from microlend.core.identity import Role

    from .conftest import staff

    outsider = staff(other_bank, 21, "zhou.analyst", Role.RISK_ANALYST)
    report = service.lint_for_bank(uow, outsider, parent(shared))
    assert "sub_decision" in {f.kind for f in report.errors}
