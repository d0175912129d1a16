"""The bank's customer base as marketing's frame (客户底册), read from the database for the marketer's pages.

Marketing must not import origination or servicing (architecture: marketing -> decisioning, data), so the
`customers` and `loans` tables are read through SQLAlchemy Core by name and column, like the consent check
in `service`. A bank whose customers live elsewhere passes its own frame to the service functions instead.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pyarrow as pa
from sqlalchemy import column, func, inspect, select, table
from sqlalchemy.orm import Session

from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork


def current_days_past_due(session: Session, tenant_id: int) -> dict[int, int]:
    """Each customer's worst days past due over their active loans (servicing's `loans` table); empty when
    the bank runs no servicing here."""
    if not inspect(session.connection()).has_table("loans"):
        return {}
    loans = table("loans", column("tenant_id"), column("customer_id"), column("status"), column("days_past_due"))
    rows = session.execute(
        select(loans.c.customer_id, func.max(loans.c.days_past_due))
        .where(loans.c.tenant_id == tenant_id, loans.c.status == "active", loans.c.customer_id.is_not(None),
               loans.c.days_past_due > 0)
        .group_by(loans.c.customer_id)).all()
    return {int(c): int(d) for c, d in rows}


def customer_frame(uow: UnitOfWork, who: Principal, as_of: date) -> pl.DataFrame:
    """The tenant's customers with the features segments read and today's days past due."""
    from microlend.marketing.demo import customers_from_table

    with uow:
        s = uow.session
        return customers_from_table(s, who.tenant_id, as_of, current_days_past_due(s, who.tenant_id))


def preapproval_inputs(frame: pl.DataFrame) -> tuple[dict[str, pa.Table], pa.Table]:
    """The feature library's source tables and the profile for a pre-approval, from the customer frame."""
    created = frame.get_column("created_at")
    if created.dtype == pl.Datetime("us"):
        created = created.dt.replace_time_zone("UTC")
    sources = {"customers": pa.table({
        "customer_id": frame.get_column("customer_id").to_arrow(),
        "created_at": created.to_arrow(),
        "birth_date": frame.get_column("birth_date").to_arrow(),
        "industry": frame.get_column("industry").to_arrow(),
    })}
    profile = frame.drop("created_at", "birth_date", "industry", "age", "months_on_book").with_columns(
        pl.lit(True).alias("bureau_data_present"))
    return sources, profile.to_arrow()
