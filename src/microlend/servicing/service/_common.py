"""Helpers every servicing use case shares: request digests, amount checks, idempotency keys."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from microlend.core.errors import NotFound, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.money import parse_amount, round_half_up
from microlend.core.tenancy import business_date
from microlend.servicing.repository import LoanRepository
from microlend.servicing.tables import LoanRow

ZERO = Decimal(0)
P = Permission


def request_hash(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _money(value: Decimal) -> str:
    return str(round_half_up(value))


def _cents(value: Any, field_name: str) -> Decimal:
    amount = parse_amount(value, field_name)
    if amount <= 0:
        raise ValidationError(f"{field_name}: must be a positive amount", field=field_name)
    if round_half_up(amount) != amount:
        raise ValidationError(f"{field_name}: at most 2 decimal places", field=field_name)
    return amount


def _key(key: str | None) -> str | None:
    if key is not None and not 1 <= len(key) <= 255:
        raise ValidationError("idempotency_key: must be 1-255 characters", field="idempotency_key")
    return key



def _loan(session: Session, who: Principal, loan_id: int, *, lock: bool = False) -> LoanRow:
    """The caller's loan; another tenant's loan is indistinguishable from a missing one."""
    stmt = select(LoanRow).where(LoanRow.id == loan_id, LoanRow.tenant_id == who.tenant_id)
    if lock:  # the business date first: every lock is taken in the order a close of business takes them
        business_date(session, who.tenant_id, hold=True)
        stmt = stmt.with_for_update()
    row = session.execute(stmt).scalar_one_or_none()
    if row is None:
        raise NotFound(f"loan {loan_id} not found")
    return row




def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj.__dict__ if hasattr(obj, "__dict__") else obj, default=str))


def require_customer(repo: LoanRepository, who: Principal, customer_id: int | None) -> None:
    """A customer id from a request must name a customer of the caller's bank; another bank's is not found."""
    if customer_id is not None and customer_id not in repo.customers_of_bank(who, [customer_id]):
        raise NotFound(f"customer {customer_id} not found", field="customer_id")
