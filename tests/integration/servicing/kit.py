"""The test bank the servicing integration tests share: a tenant on a fresh database and its staff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine

from microlend.core.db import make_session_factory
from microlend.core.identity import Principal, Role
from microlend.core.tables import TenantRow
from microlend.core.uow import UnitOfWork


@dataclass
class Bank:
    """One tenant on a fresh database, with a staff principal and helpers to move the business date."""

    engine: Engine
    tenant_id: int
    who: Principal

    def uow(self) -> UnitOfWork:
        return UnitOfWork(make_session_factory(self.engine))

    def principal(self, *roles: Role, tenant_id: int | None = None) -> Principal:
        return Principal(user_id=99, tenant_id=tenant_id or self.tenant_id, username="staff", roles=frozenset(roles))

    def set_business_date(self, on: date) -> None:
        with self.uow() as u:
            row = u.session.get(TenantRow, self.tenant_id)
            assert row is not None
            row.business_date = on
            u.commit()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name
