"""The API under generated requests (schemathesis over its own OpenAPI document): every operation, signed in as
an admin of a seeded demo bank, with valid and invalid inputs, a fixed seed and a few examples each. No request
may be answered with a server error, a status code or media type the document does not declare, or a body
that does not match the declared schema."""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine, select
from tests import conftest

from microlend.core.db import make_session_factory
from microlend.core.identity import Role
from microlend.core.tables import UserRow
from microlend.core.tenancy import issue_token, principal_for
from microlend.core.uow import UnitOfWork
from microlend.demo import providers
from microlend.demo.history import seed_datasets, simulate
from microlend.demo.seed import seed
from microlend.servicing.tables import RepaymentRow

pytestmark = pytest.mark.slow

#: examples per operation and mode: about a minute per database for the whole API
EXAMPLES = int(os.environ.get("MICROLEND_FUZZ_EXAMPLES", "6"))
SEED = 20261129
#: reports that draw charts over a whole dataset take seconds each: one request about the real object
HEAVY = {"GET /api/v1/risk/models/{version_id}/report", "GET /api/v1/datasets/{name}/quality.html",
         "GET /api/v1/datasets/{name}/quality", "GET /api/v1/risk/models/{version_id}/points"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@dataclass
class Findings:
    operations: int = 0
    cases: int = 0
    failures: dict[tuple[str, str], str] = field(default_factory=dict)  # (operation, check) -> first example
    statuses: Counter[int] = field(default_factory=Counter)

    def report(self) -> str:
        lines = [f"{self.operations} operations, {self.cases} cases, {len(self.failures)} failures; "
                 f"answers: {dict(sorted(self.statuses.items()))}"]
        lines += [f"  {op}: {msg}" for (op, _), msg in sorted(self.failures.items())]
        kinds = Counter(title for _, title in self.failures)
        lines += [f"  by kind: {dict(kinds)}"]
        return "\n".join(lines)


@pytest.fixture
def seeded(fresh_engine: Engine, fresh_db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    from microlend.api.app import create_app

    uow = UnitOfWork(make_session_factory(fresh_engine))
    bank = seed(uow, customers=120)
    with providers.start(providers.anchor_of(uow, bank.tenant_id)) as sandbox:  # the decisions ask the sources
        providers.connect(uow, bank.tenant_id, sandbox.base_url)
        simulate(uow, bank.tenant_id, days=8, per_day=4)
        seed_datasets(uow, bank.tenant_id, tmp_path / "files")
        settings = conftest.test_settings(fresh_db_url).model_copy(update={"login_client_max_failures": 1_000_000})
        with uow:
            admin = uow.session.query(UserRow).filter(UserRow.username == "admin@demo").one()
            assert Role.ADMIN in admin.roles
            token = issue_token(principal_for(admin), settings)
        app = create_app(settings, engine=fresh_engine)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client, {"Authorization": f"Bearer {token}"}


def known_ids(client: TestClient, auth: dict[str, str]) -> dict[str, Any]:
    """A real object of the seeded bank for each path parameter, so generated requests reach past the lookup."""
    def first(path: str, key: str = "id", **params: Any) -> Any:
        body = client.get(path, headers=auth, params=params).json()
        items = body["items"] if isinstance(body, dict) else body
        return items[0][key] if items else None

    application = client.get("/api/v1/applications", headers=auth, params={"status": "disbursed"}).json()["items"]
    with client.app.state.session_factory() as s:  # type: ignore[attr-defined]
        repayment = s.execute(select(RepaymentRow.id).limit(1)).scalar()
    ids = {"customer_id": first("/api/v1/customers"), "loan_id": first("/api/v1/loans"),
           "application_id": application[0]["id"] if application else None,
           "decision_id": application[0]["decision"]["id"] if application else None,
           "version_id": first("/api/v1/risk/models"), "content_hash": first("/api/v1/policies", "content_hash"),
           "name": first("/api/v1/datasets", "name"), "change_id": first("/api/v1/limit-changes"),
           "repayment_id": repayment}
    return {k: v for k, v in ids.items() if v is not None}


def fuzz(app: FastAPI, client: TestClient, auth: dict[str, str]) -> Findings:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    known = known_ids(client, auth)
    found = Findings()
    for result in schema.get_all_operations():
        operation = result.ok()
        found.operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _run(operation, operation.as_strategy(generation_mode=mode), auth, found)
        names = [p.name for p in operation.path_parameters]
        if names and all(n in known for n in names):  # valid requests about a real object
            _run(operation, operation.as_strategy(path_parameters={n: known[n] for n in names}), auth, found,
                 examples=1 if operation.label in HEAVY else EXAMPLES)
    return found


def _run(operation: Any, strategy: Any, auth: dict[str, str], found: Findings, examples: int = EXAMPLES) -> None:
    @hypothesis.settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                         phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @hypothesis.seed(SEED)
    @hypothesis.given(strategy)
    def one(case: Any) -> None:
        found.cases += 1
        try:
            response = case.call(headers=auth)
        except Exception as exc:  # the app raised through the test transport: a server error
            found.failures.setdefault((operation.label, "Server error"), (
                f"Server error: {type(exc).__name__}: {str(exc).splitlines()[0][:160]} <- {case.method} "
                f"{case.formatted_path} {case.query or ''} {str(case.body)[:160]}"))
            return
        found.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, BaseExceptionGroup) as exc:  # failed checks: recorded, every operation is tried
            for failure in getattr(exc, "exceptions", [exc]):
                title = getattr(failure, "title", type(failure).__name__)
                found.failures.setdefault((operation.label, title), (
                    f"{title}: {response.status_code} <- {case.method} {case.formatted_path} "
                    f"{case.query or ''} {str(case.body)[:160]}"))

    with contextlib.suppress(hypothesis.errors.Unsatisfiable):  # an operation with no invalid input to make
        one()


def test_generated_requests_get_no_server_error_and_only_declared_answers(
        seeded: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = seeded
    found = fuzz(client.app, client, auth)  # type: ignore[arg-type]
    print(found.report())
    assert found.operations >= 80
    assert not found.failures, found.report()
