"""The bank's customer base as marketing's frame (客户底册), read from the database for the marketer's pages.

Customers come from the marketing customer view (`customerview.py`: parties, the lending port, data and
marketing's own offers; marketing does not import origination or servicing). A bank whose customers live
elsewhere passes its own frame to the service functions instead.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pyarrow as pa

from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork


def customer_frame(uow: UnitOfWork, who: Principal, as_of: date) -> pl.DataFrame:
    """The tenant's customers as the marketing customer view (every field segments read, consent and today's
    days past due), built through the owning modules' query functions."""
    from microlend.core.clock import utcnow
    from microlend.marketing.customerview import customer_view

    return customer_view(uow, who, as_of, utcnow())[0]


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
