"""四眼 the lookups every two-person decision on a loan shares (write-off, extension and restructuring): the
request waiting on a loan, and a request a second person with the authority may decide."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from microlend.core.errors import Conflict, NotFound, PermissionDenied
from microlend.core.identity import Permission, Principal
from microlend.servicing.tables import RestructureRow, WriteOffRow

Request = TypeVar("Request", WriteOffRow, RestructureRow)


def pending_for(s: Session, model: type[Request], tenant_id: int, loan_id: int) -> Request | None:
    """The loan's request still waiting for a decision, if any."""
    return s.execute(select(model).where(
        model.tenant_id == tenant_id, model.loan_id == loan_id, model.status == "pending")
    ).scalars().first()


def decidable(s: Session, who: Principal, model: type[Request], request_id: int, permission: Permission,
              noun: str) -> Request:
    """The bank's pending request ``request_id``, locked, for a decision by ``who``: another bank's is not found
    (404), a decided one is a conflict (409), and the person who asked may not decide it (403, four eyes)."""
    who.require(permission)
    row = s.execute(select(model).where(
        model.id == request_id, model.tenant_id == who.tenant_id).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"{noun} {request_id} not found")
    if row.status != "pending":
        raise Conflict(f"{noun} {request_id} is already {row.status}")
    if row.requested_by_id == who.user_id and row.requested_by == who.username:
        raise PermissionDenied(f"{noun} {request_id}: {who.username} requested it; a second person must decide it "
                               "(four eyes)")
    return row
