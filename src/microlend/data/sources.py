"""Read the feature library's source tables from an operational database (e.g. servicing, origination
or a core banking replica): one SELECT per table, mapped onto the documented Arrow shapes.

Amounts stored the Microlend way (`Amount`: BIGINT ten-thousandths) are turned into exact decimals
without passing through float.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from microlend.core.db import make_engine
from microlend.core.errors import ValidationError
from microlend.data.features import SOURCE_SCHEMAS, prepare_sources


def ten_thousandths_to_decimal(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Integer ten-thousandths (how `Amount` stores money) as decimal128(18, 4), exactly.

    A decimal128 with scale 4 holds the same integer unscaled, so the 128-bit words are built directly."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    ints = values.cast(pa.int64())
    raw = ints.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    words = np.empty((len(raw), 2), dtype=np.int64)
    words[:, 0] = raw
    words[:, 1] = np.where(raw < 0, -1, 0)  # sign extension into the high word
    # a fresh boolean array's data buffer is a bitmap at offset 0: exactly a validity buffer
    validity = pc.is_valid(ints).buffers()[1] if ints.null_count else None
    return pa.Array.from_buffers(pa.decimal128(18, 4), len(raw), [validity, pa.py_buffer(words.tobytes())])


def read_sources(
    url: str,
    queries: Mapping[str, str],
    *,
    ten_thousandths: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, pa.Table]:
    """Run one query per source table (keys: customers, loans, installments, credit_lines, applications)
    and conform each result to its schema; `ten_thousandths` names integer amount columns per table."""
    unknown = set(queries) - set(SOURCE_SCHEMAS)
    if unknown:
        raise ValidationError(f"queries: unknown source table(s): {', '.join(sorted(unknown))}", field="queries")
    engine = make_engine(url)
    tables: dict[str, pa.Table] = {}
    try:
        with engine.connect() as conn:
            for name, query in queries.items():
                try:
                    frame = pd.read_sql(text(query), conn)
                except (SQLAlchemyError, pd.errors.DatabaseError) as exc:
                    first = str(getattr(exc, "orig", None) or exc).splitlines()[0]
                    raise ValidationError(f"queries.{name}: {first}", field=f"queries.{name}") from None
                table = pa.Table.from_pandas(frame, preserve_index=False)
                for column in (ten_thousandths or {}).get(name, ()):
                    if column not in table.column_names:
                        raise ValidationError(
                            f"queries.{name}: no column '{column}' in the result", field=f"queries.{name}"
                        )
                    i = table.column_names.index(column)
                    table = table.set_column(i, column, ten_thousandths_to_decimal(table.column(column)))
                tables[name] = table
    finally:
        engine.dispose()
    return prepare_sources(tables)
