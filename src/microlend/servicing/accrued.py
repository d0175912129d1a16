"""Interest accrued to date (应计利息) of an installment: the one definition every reader goes through.

A scheduled installment's accrued-to-date is a function of its period, its interest and the day, so close of
business does not write it each night. The stored ``interest_accrued`` holds through the installment's
``accrued_through`` day (an ordinal); every write touching the row stores both. Through a later day ``day`` the
accrued amount is the stored one when the row was written on or after ``day``, when it is accrued in full (or
beyond its interest), when its period starts after ``day`` or when it is written off; otherwise it is what close
of business accrues on ``day``: the period's elapsed days (capped at its length) over its days, rounded half-up
on whole cents. ``day`` is the tenant's last closed business date (``closed_through``), never the open one: a
business date that moves without a close accrues nothing. A revolving drawdown's interest and accrual grow
together each night, so its stored figures are always accrued in full and are read as they are."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import ColumnElement, func, literal_column, select
from sqlalchemy.orm import Session

from microlend.servicing.schedules import accrued_interest
from microlend.servicing.tables import CobRunRow, InstallmentRow

#: the ordinal standing for "never closed": every stored figure holds through it
NEVER_CLOSED = 0


def closed_through(session: Session, tenant_id: int) -> int:
    """The ordinal of the tenant's last closed business date (``NEVER_CLOSED`` before the first close)."""
    last = session.execute(
        select(func.max(CobRunRow.business_date)).where(CobRunRow.tenant_id == tenant_id, CobRunRow.status == "done")
    ).scalar()
    if last is None:
        return NEVER_CLOSED
    return (last if isinstance(last, date) else date.fromisoformat(str(last))).toordinal()


def scheduled_to_date_sql(day: str, r: str = "", div: str = "") -> str:
    """SQL: a scheduled installment's interest accrued by the end of ``day`` (an SQL ordinal, at or after its
    period's start; ``r``: the table's alias and a dot), in storage units: the elapsed days of its period, capped
    at the period's length, over the period's days, rounded half-up on whole cents. ``div``: the name of an
    integer-division function for engines whose ``/`` is not integer division (``ml_div``)."""
    elapsed = f"(CASE WHEN {day} + 1 < {r}due_day THEN {day} + 1 - {r}start_day ELSE {r}due_day - {r}start_day END)"
    days = f"({r}due_day - {r}start_day)"
    if div:
        rounded = f"{div}(2 * {div}({r}interest, 100) * {elapsed} + {days}, 2 * {days})"
    else:
        rounded = f"((2 * ({r}interest / 100) * {elapsed} + {days}) / (2 * {days}))"
    return f"(CASE WHEN {r}due_day <= {r}start_day THEN {r}interest ELSE 100 * {rounded} END)"


def carried_sql(day: str, r: str = "") -> str:
    """SQL: whether the stored accrual is carried forward to ``day`` by the formula (else it is read as stored)."""
    return (
        f"({r}accrued_through < {day} AND {r}interest_accrued < {r}interest AND {r}start_day <= {day} "
        f"AND {r}status <> 'written_off')"
    )


def accrued_sql(day: str, r: str = "", div: str = "") -> str:
    """SQL: an installment's interest accrued through ``day`` (an SQL ordinal: a bound parameter or a literal), in
    storage units."""
    return f"(CASE WHEN {carried_sql(day, r)} THEN {scheduled_to_date_sql(day, r, div)} ELSE {r}interest_accrued END)"


def accrued_column(day: int) -> ColumnElement[int]:
    """``accrued_sql`` as a column of ``loan_installments`` (unaliased) in an ORM query, in storage units."""
    return literal_column(accrued_sql(str(int(day)), "loan_installments."))


def accrued_on(row: InstallmentRow, day: int) -> Decimal:
    """An installment row's interest accrued through the ordinal ``day`` (the domain's rounding, identical to
    ``accrued_sql``)."""
    stored = Decimal(row.interest_accrued)
    if (row.accrued_through >= day or stored >= row.interest or row.start_day > day
            or row.status == "written_off"):
        return stored
    return accrued_interest(Decimal(row.interest), row.period_start, row.due_date, date.fromordinal(day))
