"""The permission battery every object endpoint must pass: no token -> 401, wrong role -> 403,
another tenant's object -> 404 and nothing changed, every write -> exactly one audit row.

tests/integration/test_route_battery.py runs it over every route of the application."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from microlend.core.tables import AuditRow
from tests.conftest import Api


@dataclass
class Endpoint:
    method: str
    path: str  # may contain one "{...}" parameter (e.g. "{id}"), filled with the object's id
    allowed_role: str
    denied_role: str | None  # None only where every role may call it (results are scoped instead)
    body: dict[str, Any] | None = None
    write: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    success: tuple[int, ...] = (200, 201)
    form: dict[str, Any] | None = None  # a multipart form (with `files`) instead of a JSON body
    # the audit actions a write records, where one request is more than one audited act (submitting an
    # application also decides it); None means exactly one record
    audit: tuple[str, ...] | None = None
    files: dict[str, Any] | None = None
    fixed: dict[str, str] = field(default_factory=dict)  # path parameters with a set value (e.g. a scope)


class CachedTokens(Api):
    """An Api whose `token(*roles)` signs in one user per set of roles and reuses its token, so a battery
    over many routes does not hash a password per check."""

    def __init__(self, client: TestClient, kit: Any) -> None:
        super().__init__(client, kit)
        self._tokens: dict[tuple[str, ...], dict[str, str]] = {}

    def token(self, *roles: str) -> dict[str, str]:
        key = tuple(sorted(roles))
        if key not in self._tokens:
            self._tokens[key] = self._self_borrower() if roles == (SELF_BORROWER,) else super().token(*roles)
        return self._tokens[key]

    def _self_borrower(self) -> dict[str, str]:
        """A borrower signed in as a customer of the bank (the borrower's app), not a bare role."""
        import random
        from datetime import date

        from microlend.core import tenancy
        from microlend.demo import identities
        from microlend.parties.customers import NewCustomer, create_customer

        rng = random.Random(self.kit.tenant.id)
        birth = identities.birth_date_for_age(rng, 35, date(2026, 1, 1))
        customer = create_customer(self.kit.uow_factory(), self.kit.principal("credit_officer"), NewCustomer(
            "person", "借款人", identities.resident_id(rng, birth), identities.mobile(rng)))
        username = f"{self.kit.tenant.name}-app{customer.id}"
        with self.kit.uow_factory() as u:
            tenancy.add_user(u.session, self.kit.tenant.id, username, "correct-horse-1", ["borrower"],
                             customer_id=customer.id)
            u.commit()
        return self.token_for(username)


#: the role name of a borrower signed in as one of the bank's customers (as the borrower's app is)
SELF_BORROWER = "borrower:self"


def audit_count(api: Api) -> int:
    with api.kit.uow_factory() as u:
        return int(u.session.execute(
            select(func.count()).select_from(AuditRow).where(AuditRow.tenant_id == api.kit.tenant.id)
        ).scalar_one())


_PARAMETER = re.compile(r"\{[^}]+\}")


def audit_actions(api: Api) -> list[str]:
    """The tenant's audit actions in the order they were recorded."""
    with api.kit.uow_factory() as u:
        return list(u.session.execute(
            select(AuditRow.action).where(AuditRow.tenant_id == api.kit.tenant.id).order_by(AuditRow.seq)
        ).scalars())


def _call(client: TestClient, ep: Endpoint, object_id: Any, headers: dict[str, str]) -> Any:
    path = ep.path
    for name, value in ep.fixed.items():
        path = path.replace(f"{{{name}}}", value)
    path = _PARAMETER.sub(str(object_id), path)
    if ep.form is not None or ep.files is not None:
        return client.request(ep.method, path, data=ep.form, files=ep.files, headers={**ep.headers, **headers})
    return client.request(ep.method, path, json=ep.body, headers={**ep.headers, **headers})


def _unfixed(ep: Endpoint) -> str:
    path = ep.path
    for name in ep.fixed:
        path = path.replace(f"{{{name}}}", "")
    return path


def run_battery(api: Api, other: Api, ep: Endpoint, make_object: Callable[[Api], Any],
                snapshot: Callable[[Api, Any], Any] | None = None) -> None:
    """`make_object(api)` creates the object in that api's tenant and returns its id; `snapshot(api, id)`
    returns the object's state as its owner sees it (to prove another tenant changed nothing)."""
    own_id = make_object(api)
    client = api.client

    r = _call(client, ep, own_id, {})
    assert r.status_code == 401, f"{ep.method} {ep.path} without a token: {r.status_code} {r.text}"

    if ep.denied_role is not None:
        r = _call(client, ep, own_id, api.token(ep.denied_role))
        assert r.status_code == 403, f"{ep.method} {ep.path} as {ep.denied_role}: {r.status_code} {r.text}"

    if _PARAMETER.search(_unfixed(ep)):
        foreign_id = make_object(other)
        before = snapshot(other, foreign_id) if snapshot else None
        other_audit = audit_count(other)
        r = _call(client, ep, foreign_id, api.token(ep.allowed_role))
        assert r.status_code == 404, f"{ep.method} {ep.path} on another bank's object: {r.status_code} {r.text}"
        assert r.headers["content-type"].startswith("application/problem+json")
        if snapshot:
            assert snapshot(other, foreign_id) == before, "another tenant's object changed"
        assert audit_count(other) == other_audit, "another tenant's audit trail changed"

    owner_headers = api.token(ep.allowed_role)
    before_audit = audit_count(api)
    r = _call(client, ep, own_id, owner_headers)
    assert r.status_code in ep.success, f"{ep.method} {ep.path} as {ep.allowed_role}: {r.status_code} {r.text}"
    if ep.write:
        added = audit_actions(api)[before_audit:]
        if ep.audit is None:
            assert len(added) == 1, f"{ep.method} {ep.path}: a write must add exactly one audit record, not {added}"
        else:
            assert tuple(added) == ep.audit, f"{ep.method} {ep.path}: audited {added}, expected {list(ep.audit)}"
