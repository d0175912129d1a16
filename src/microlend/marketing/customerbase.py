"""The bank's customer base as marketing's frame (客户底册), read from the database for the marketer's pages.

Customers come from parties and arrears through the lending port, both in `sources.py` (marketing does not
import origination or servicing). A bank whose customers live elsewhere passes its own frame to the service
functions instead.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pyarrow as pa

from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.marketing.sources import customer_loan_status, customers_frame


def customer_frame(uow: UnitOfWork, who: Principal, as_of: date) -> pl.DataFrame:
    """The tenant's customers with the features segments read and today's days past due."""
    with uow:
        return customers_frame(uow, who, as_of, customer_loan_status(uow, who))


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
