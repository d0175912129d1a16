"""Features (特征): named, versioned definitions computed per customer *as of* a date, set-based.

A feature is an SQL aggregate expression in a feature group. A group's FROM clause joins the *spine*
(`s`: one row per customer_id and as_of date) to the documented source tables, and every join condition
keeps only events at or before `s.as_of` (point-in-time correctness: later data never leaks in). One
query computes all groups for a whole portfolio on a batch engine (DuckDB by default); the latest values
per customer are then kept in an `OnlineFeatureStore` for lookups at decision time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from microlend.batch.engine import BatchEngine, LocalEngine, ParquetDataset, Progress
from microlend.batch.sources import Source, first_parquet
from microlend.core.clock import utcnow
from microlend.core.errors import ValidationError
from microlend.data.feature_library import STANDARD_LIBRARY
from microlend.data.library import FeatureDefinition as FeatureDefinition  # re-exported for callers
from microlend.data.library import FeatureGroup as FeatureGroup
from microlend.data.library import FeatureLibrary as FeatureLibrary
from microlend.data.library import FeatureType as FeatureType

_MONEY = pa.decimal128(18, 4)
_UTC = pa.timestamp("us", tz="UTC")


def _field(name: str, type_: pa.DataType, doc: str, nullable: bool = False) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"doc": doc})


#: The source tables the feature library reads, as Arrow schemas with a `doc` on every column.
#: Servicing and origination tables (or a bank's own core system) are mapped onto these shapes.
SOURCE_SCHEMAS: dict[str, pa.Schema] = {
    "customers": pa.schema(
        [
            _field("customer_id", pa.int64(), "customer key"),
            _field("created_at", _UTC, "when the customer became known to the bank (UTC)"),
            _field("birth_date", pa.date32(), "date of birth of the borrower (or the business owner)", True),
            _field("industry", pa.string(), "industry of the business (reference only, not point-in-time)", True),
        ]
    ),
    "loans": pa.schema(
        [
            _field("loan_id", pa.int64(), "loan key"),
            _field("customer_id", pa.int64(), "borrower"),
            _field("disbursed_at", pa.date32(), "disbursement date; the loan exists from this date"),
            _field("principal", _MONEY, "disbursed principal (exact decimal)"),
            _field("status", pa.string(), "current status; NOT point-in-time, so no feature uses it", True),
            _field("closed_at", pa.date32(), "date the loan was settled or written off; null while open", True),
        ]
    ),
    "installments": pa.schema(
        [
            _field("loan_id", pa.int64(), "loan the installment belongs to"),
            _field("due_date", pa.date32(), "contractual due date"),
            _field("paid_date", pa.date32(), "date the installment was settled in full; null while unpaid", True),
            _field("amount_due", _MONEY, "amount due (exact decimal)"),
            _field("amount_paid", _MONEY, "amount paid so far; current state, not point-in-time", True),
        ]
    ),
    "credit_lines": pa.schema(
        [
            _field("customer_id", pa.int64(), "customer holding the line"),
            _field("limit", _MONEY, "granted limit on the snapshot date (exact decimal)"),
            _field("used", _MONEY, "drawn amount on the snapshot date (exact decimal)"),
            _field("as_of", pa.date32(), "snapshot date of limit and used"),
        ]
    ),
    "applications": pa.schema(
        [
            _field("customer_id", pa.int64(), "applicant"),
            _field("submitted_at", _UTC, "when the application was submitted (UTC)"),
            _field("outcome", pa.string(), "approved, declined, referred or withdrawn", True),
        ]
    ),
    "external_scores": pa.schema(
        [
            _field("customer_id", pa.int64(), "customer the external source reported on"),
            _field("source", pa.string(), "who reported, e.g. 'bureau' (征信), 'tax', 'utility'"),
            _field("observed_at", _UTC, "when the bank received the report (UTC), not when it was asked"),
            _field("score", pa.float64(), "the reported score or indicator"),
        ]
    ),
}
#: The date each source table's Parquet files are partitioned by month on (`tenant_id=<id>/month=YYYY-MM/`,
#: written by `microlend.batch.analytics.write_partitioned`), so a cluster reads the months in parallel.
SOURCE_MONTH_OF: dict[str, str] = {"customers": "created_at", "loans": "disbursed_at", "installments": "due_date",
                                   "credit_lines": "as_of", "applications": "submitted_at",
                                   "external_scores": "observed_at"}
SPINE_SCHEMA = pa.schema(
    [
        _field("customer_id", pa.int64(), "customer"),
        _field("as_of", pa.date32(), "the date features are computed as of"),
    ]
)


def source_catalogue() -> list[dict[str, Any]]:
    """Every column of every source table with its type and meaning, for docs and the CLI."""
    return [
        {
            "table": table,
            "column": f.name,
            "type": str(f.type),
            "nullable": f.nullable,
            "doc": (f.metadata or {}).get(b"doc", b"").decode(),
        }
        for table, schema in SOURCE_SCHEMAS.items()
        for f in schema
    ]


def prepare_sources(tables: Mapping[str, pa.Table | pd.DataFrame]) -> dict[str, pa.Table]:
    """Check and cast source tables to the documented schemas; an absent table is taken as empty.

    Extra columns are dropped; a missing column or a value that does not fit the type is a
    ValidationError naming `table.column`."""
    unknown = set(tables) - set(SOURCE_SCHEMAS)
    if unknown:
        raise ValidationError(
            f"tables: unknown source table(s): {', '.join(sorted(unknown))}; expected {', '.join(SOURCE_SCHEMAS)}",
            field="tables",
        )
    out: dict[str, pa.Table] = {}
    for name, schema in SOURCE_SCHEMAS.items():
        raw = tables.get(name)
        out[name] = schema.empty_table() if raw is None else _conform(name, raw, schema)
    return out


def _conform(name: str, raw: pa.Table | pd.DataFrame, schema: pa.Schema) -> pa.Table:
    table = raw if isinstance(raw, pa.Table) else pa.Table.from_pandas(raw, preserve_index=False)
    arrays = []
    for fld in schema:
        if fld.name not in table.column_names:
            if fld.nullable:
                arrays.append(pa.nulls(table.num_rows, fld.type))
                continue
            raise ValidationError(f"tables: {name}.{fld.name} is missing", field=f"{name}.{fld.name}")
        column = table.column(fld.name)
        try:
            if pa.types.is_decimal(fld.type) and pa.types.is_integer(column.type):
                column = column.cast(pa.decimal128(38, fld.type.scale))  # wide enough for any int64
            column = column.cast(fld.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ValidationError(
                f"tables: {name}.{fld.name} cannot be read as {fld.type}: {exc}", field=f"{name}.{fld.name}"
            ) from None
        if not fld.nullable and column.null_count:
            raise ValidationError(
                f"tables: {name}.{fld.name} has {column.null_count} empty value(s)", field=f"{name}.{fld.name}"
            )
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=schema)


def portfolio_spine(customers: pa.Table | pd.DataFrame, as_of: date) -> pa.Table:
    """Every customer known on `as_of` (created on or before that day), each with that as-of date."""
    table = _conform("customers", customers, SOURCE_SCHEMAS["customers"])
    day_end = pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(days=1)
    known = pc.less(table.column("created_at"), pa.scalar(day_end.to_pydatetime(), _UTC))
    ids = table.filter(known).column("customer_id")
    return pa.Table.from_arrays([ids, pa.repeat(pa.scalar(as_of, pa.date32()), len(ids))], schema=SPINE_SCHEMA)


def spine_from(rows: pa.Table | pd.DataFrame) -> pa.Table:
    """A spine of (customer_id, as_of) pairs, e.g. each application with its own decision date."""
    return _conform("spine", rows, SPINE_SCHEMA)


def application_spine(applications: pa.Table | pd.DataFrame) -> pa.Table:
    """A training spine: each application's customer as of the day before it was submitted.

    Features for model development must see only what was known before the application, so the
    application itself (and anything else on its day) never counts towards its own features."""
    table = _conform("applications", applications, SOURCE_SCHEMAS["applications"])
    days = pc.cast(pc.cast(table.column("submitted_at"), pa.timestamp("us")), pa.date32())
    before = pc.cast(pc.subtract(pc.cast(days, pa.int32()), 1), pa.int32())
    return pa.Table.from_arrays([table.column("customer_id"), pc.cast(before, pa.date32())], schema=SPINE_SCHEMA)


def compute_features(
    tables: Mapping[str, pa.Table | pd.DataFrame | ParquetDataset],
    *,
    as_of: date | None = None,
    spine: pa.Table | pd.DataFrame | None = None,
    features: Iterable[str | tuple[str, int]] | None = None,
    library: FeatureLibrary | None = None,
    engine: BatchEngine | None = None,
    chunk_rows: int | None = None,
    progress: Progress | None = None,
) -> pa.Table:
    """Features per customer as of a date (the whole portfolio) or per distinct spine row (training sets).

    A source table may be a `ParquetDataset` (the source's files, read by the engine itself: on Spark by
    the cluster, in parallel); with the customers in Parquet the portfolio's spine is part of the query too.
    Returns an Arrow table: customer_id, as_of, then one column per feature; the schema metadata names
    each feature's version."""
    engine = engine or LocalEngine()
    query = feature_query(tables, as_of=as_of, spine=spine, features=features, library=library)
    if chunk_rows:
        spine_table = query.inputs.get("spine")
        inputs = query.inputs
        if not isinstance(spine_table, pa.Table):  # the spine is SQL over Parquet: fetched once to be sliced
            spine_table = engine.run_sql(_spine_sql(query.as_of), {"customers": query.inputs["customers"]})
            inputs = {**query.inputs, "spine": spine_table}
        sql = query.library.build_sql(query.chosen)
        result = engine.run_partitioned(sql, inputs, partition="spine", chunk_rows=chunk_rows, progress=progress)
    else:
        result = engine.run_sql(query.sql, query.inputs)
        if progress is not None:
            progress(result.num_rows, result.num_rows)
    versions = {f.name: f.version for f in query.chosen}
    return result.replace_schema_metadata({"feature_versions": json.dumps(versions)})


@dataclass(frozen=True)
class FeatureQuery:
    """The one query that computes features (ordered by customer_id, as_of) and the inputs it reads."""

    sql: str
    inputs: dict[str, Source]
    chosen: list[FeatureDefinition]
    library: FeatureLibrary
    as_of: date | None


def feature_query(
    tables: Mapping[str, pa.Table | pd.DataFrame | ParquetDataset],
    *,
    as_of: date | None = None,
    spine: pa.Table | pd.DataFrame | None = None,
    features: Iterable[str | tuple[str, int]] | None = None,
    library: FeatureLibrary | None = None,
) -> FeatureQuery:
    """The features query over checked sources, for `compute_features` or a job that reads features as part
    of a larger query (a subquery's rows are the features of `compute_features`)."""
    library = library or STANDARD_LIBRARY
    chosen = library.select(features)
    sources = _sources(tables)
    if spine is not None:
        # one row per distinct (customer, date): a repeated pair would count its events twice
        spine_table = spine_from(spine).group_by(["customer_id", "as_of"], use_threads=False).aggregate([])
        spine_table = spine_table.select(["customer_id", "as_of"]).cast(SPINE_SCHEMA)
        return FeatureQuery(library.build_sql(chosen), {**sources, "spine": spine_table}, chosen, library, as_of)
    if as_of is None:
        raise ValidationError("as_of: give an as-of date or a spine", field="as_of")
    customers = sources["customers"]
    if isinstance(customers, ParquetDataset):
        return FeatureQuery(library.build_sql(chosen, spine_sql=_spine_sql(as_of)), sources, chosen, library, as_of)
    inputs = {**sources, "spine": portfolio_spine(customers, as_of)}
    return FeatureQuery(library.build_sql(chosen), inputs, chosen, library, as_of)


def _sources(tables: Mapping[str, pa.Table | pd.DataFrame | ParquetDataset]) -> dict[str, Source]:
    """`prepare_sources` for the tables in memory; a Parquet source is declared with its documented columns."""
    files = {name: t for name, t in tables.items() if isinstance(t, ParquetDataset)}
    unknown = set(files) - set(SOURCE_SCHEMAS)
    if unknown:
        raise ValidationError(
            f"tables: unknown source table(s): {', '.join(sorted(unknown))}; expected {', '.join(SOURCE_SCHEMAS)}",
            field="tables",
        )
    in_memory = {name: t for name, t in tables.items() if not isinstance(t, ParquetDataset)}
    for name, dataset in files.items():
        check_parquet_source(name, dataset.path)
    declared = {name: ParquetDataset.of_schema(d.path, SOURCE_SCHEMAS[name]) for name, d in files.items()}
    return {**prepare_sources(in_memory), **declared}


def check_parquet_source(name: str, path: Path) -> None:
    """A source table's Parquet files hold its documented columns in types that read as the documented ones
    (an optional column may be left out: it reads as empty); a ValidationError names `table.column` otherwise.

    Only the first file's schema is read, here, as the engines declare a folder's columns; values (an empty
    required value, a decimal too wide) are the engine's to read."""
    first = first_parquet(path)
    if first is None:
        raise ValidationError(f"tables: {name}: no Parquet files under {path}", field=name)
    try:
        schema = pq.read_schema(first)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValidationError(f"tables: {name}: cannot read {first}: {exc}", field=name) from None
    partition_keys = {part.split("=", 1)[0] for part in first.relative_to(path).parts[:-1] if "=" in part}
    for fld in SOURCE_SCHEMAS[name]:
        if fld.name not in schema.names:
            if fld.nullable or fld.name in partition_keys:
                continue
            raise ValidationError(f"tables: {name}.{fld.name} is missing from the files under {path}",
                                  field=f"{name}.{fld.name}")
        found = schema.field(fld.name).type
        if not _reads_as(found, fld.type):
            raise ValidationError(f"tables: {name}.{fld.name} is {found} in {first}, which does not read as "
                                  f"{fld.type}", field=f"{name}.{fld.name}")


def _reads_as(found: pa.DataType, wanted: pa.DataType) -> bool:
    """Whether a column stored as `found` reads exactly as `wanted` on every engine (money never from a float)."""
    t = found.value_type if pa.types.is_dictionary(found) else found
    types = pa.types
    families: list[tuple[Callable[[pa.DataType], bool], tuple[Callable[[pa.DataType], bool], ...]]] = [
        (types.is_integer, (types.is_integer,)),
        (types.is_decimal, (types.is_integer, types.is_decimal)),
        (types.is_floating, (types.is_integer, types.is_floating, types.is_decimal)),
        (types.is_string, (types.is_string, types.is_large_string, types.is_string_view)),
        (types.is_date, (types.is_date,)),
        (types.is_timestamp, (types.is_timestamp,)),  # both engines read a timestamp without a zone as UTC
    ]
    return t == wanted or any(is_wanted(wanted) and any(test(t) for test in tests) for is_wanted, tests in families)


def _spine_sql(as_of: date | None) -> str:
    """`portfolio_spine` in SQL: every customer created before the end of the as-of day, with that date."""
    if as_of is None:
        raise ValidationError("as_of: give an as-of date or a spine", field="as_of")
    day = f"CAST('{as_of.isoformat()}' AS DATE)"
    return f"SELECT customer_id, {day} AS as_of FROM customers WHERE created_at < ml_day_end({day})"


class OnlineFeatureStore:
    """Latest features per customer held in memory for decision-time lookups (在线特征).

    `refresh` swaps in a new batch result atomically, so lookups never see half a refresh."""

    def __init__(self) -> None:
        self._state: tuple[dict[int, int], dict[str, list[Any]], dict[str, int]] = ({}, {}, {})
        self.refreshed_at: datetime | None = None

    def refresh(self, features: pa.Table) -> None:
        """Load a batch result; where a customer has several as-of dates the latest one is kept."""
        if "customer_id" not in features.column_names:
            raise ValidationError("features: the table needs a customer_id column", field="features")
        table = features
        if "as_of" in features.column_names:
            order = pc.sort_indices(features, [("customer_id", "ascending"), ("as_of", "descending")])
            table = features.take(order)
        ids = table.column("customer_id").to_pylist()
        index: dict[int, int] = {}
        for i, cid in enumerate(ids):
            index.setdefault(cid, i)
        columns = {name: table.column(name).to_pylist() for name in table.column_names if name != "customer_id"}
        meta = (features.schema.metadata or {}).get(b"feature_versions")
        versions: dict[str, int] = json.loads(meta) if meta else {}
        self._state = (index, columns, versions)
        self.refreshed_at = utcnow()

    def materialise(
        self,
        tables: Mapping[str, pa.Table | pd.DataFrame],
        as_of: date,
        *,
        features: Iterable[str | tuple[str, int]] | None = None,
        library: FeatureLibrary | None = None,
        engine: BatchEngine | None = None,
    ) -> pa.Table:
        """Run the batch for the whole portfolio as of `as_of` and serve its result from now on."""
        result = compute_features(tables, as_of=as_of, features=features, library=library, engine=engine)
        self.refresh(result)
        return result

    def lookup(self, customer_id: int) -> dict[str, Any] | None:
        """This customer's latest features, or None for a customer the last batch did not include."""
        index, columns, _ = self._state
        i = index.get(customer_id)
        if i is None:
            return None
        return {name: values[i] for name, values in columns.items()}

    @property
    def versions(self) -> dict[str, int]:
        return dict(self._state[2])

    def __len__(self) -> int:
        return len(self._state[0])
