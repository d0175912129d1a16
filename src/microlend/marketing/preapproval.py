"""Pre-approval runs (批量预授信): for a segment of the customer base, compute features as of a date, score
them, evaluate the credit policy in batch and store an offer (pre-approved limit, rate, APR, expiry) for
every customer the policy approves.

Set-based: features come from the data module on a `BatchEngine` (DuckDB by default), the profile is
joined on the engine, the segment filter is a Polars expression, the scorecard scores whole columns and
the policy runs on the decision engine's columnar evaluator. Work proceeds in chunks of customers in id
order; each chunk's offers are written in the same transaction that records the chunk as done, so a run
killed half-way resumes where it stopped without duplicates, and a run over the same inputs (same data,
date, segment, policy, model and parameters: the `run_key`) gives the same offers.

Pluggable parts, to be wired to the bank's champion model and active policy:
- `Scorer`: scores a pandas frame of features and profile, returning the points score per row (higher is
  safer); `default_scorer()` is the risk module's starter scorecard (the champion in a new bank).
- the policy: a JDM document (default: the decision engine's default micro-loan policy).
- `facts`: how a row's features and profile become the policy's input fields (`default_policy_facts`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from itertools import repeat
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
import polars as pl
import pyarrow as pa
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from microlend.batch.engine import BatchEngine, LocalEngine, ParquetDataset, Progress
from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.db import is_postgres
from microlend.core.errors import NotFound, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.money import from_storage, to_storage
from microlend.core.uow import UnitOfWork
from microlend.marketing.segments import Segment
from microlend.marketing.tables import OfferRow, PreapprovalRunRow, SegmentRow

RATE_PLACES = Decimal("0.000001")


class Scorer(Protocol):
    """Scores customers: one points score per row (600 at odds 50:1 on the platform's scale)."""

    version: str

    def __call__(self, frame: pd.DataFrame) -> npt.NDArray[np.float64]: ...


@dataclass
class ScorecardScorer:
    """Any risk model with `score_batch` (a scorecard or the boosting challenger); characteristics missing
    from the data are scored as missing, the way the model treats an unknown value."""

    model: Any
    version: str

    @property
    def features(self) -> list[str]:
        return list(self.model.features)

    def __call__(self, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
        absent = {f: np.full(len(frame), np.nan) for f in self.model.features if f not in frame.columns}
        data = frame.assign(**absent) if absent else frame
        scores = self.model.score_batch(data[self.model.features], with_reasons=False)["score"]
        return np.asarray(scores, dtype=np.float64)


def default_scorer() -> ScorecardScorer:
    """The starter scorecard shipped with the risk module (every new bank's first champion)."""
    from microlend.risk.artefacts import load_model
    from microlend.risk.starter import STARTER_DIR, STARTER_NAME

    artefact = load_model(STARTER_DIR)
    return ScorecardScorer(artefact.model, f"{STARTER_NAME}@{artefact.metadata.content_hash[:12]}")


@dataclass(frozen=True)
class OfferParameters:
    """What every pre-approved offer asks the policy for, and how long it stays valid."""

    product_code: str = "EI-STD"
    requested_amount: Decimal = Decimal("200000")
    term_months: int = 12
    offer_days: int = 30
    upfront_fee_rate: Decimal = Decimal("0")
    currency: str = "CNY"

    def __post_init__(self) -> None:
        if not isinstance(self.requested_amount, Decimal) or self.requested_amount <= 0:
            raise ValidationError("requested_amount: a positive Decimal", field="requested_amount")
        if not 1 <= self.term_months <= 360:
            raise ValidationError("term_months: must be between 1 and 360", field="term_months")
        if not 1 <= self.offer_days <= 365:
            raise ValidationError("offer_days: must be between 1 and 365", field="offer_days")
        if not isinstance(self.upfront_fee_rate, Decimal) or not 0 <= self.upfront_fee_rate < 1:
            raise ValidationError("upfront_fee_rate: a Decimal in [0, 1)", field="upfront_fee_rate")

    def to_dict(self) -> dict[str, Any]:
        return {"product_code": self.product_code, "requested_amount": str(self.requested_amount),
                "term_months": self.term_months, "offer_days": self.offer_days,
                "upfront_fee_rate": str(self.upfront_fee_rate), "currency": self.currency}


def offer_apr(annual_rate: Decimal, term_months: int, upfront_fee_rate: Decimal = Decimal(0)) -> Decimal:
    """APR (年化利率) of an equal-installment loan with an upfront fee: monthly IRR x 12, 6 places.
    Without a fee it is the contract rate itself."""
    if upfront_fee_rate == 0:
        return annual_rate.quantize(RATE_PLACES, rounding=ROUND_HALF_UP)
    with localcontext() as ctx:
        ctx.prec = 40
        r = annual_rate / 12
        payment = r / (1 - (1 + r) ** -term_months) if r else Decimal(1) / term_months
        received = 1 - upfront_fee_rate

        def npv(m: Decimal) -> Decimal:
            return received - payment * ((1 - (1 + m) ** -term_months) / m if m else Decimal(term_months))

        low, high = Decimal("1e-12"), Decimal(1)
        for _ in range(200):
            mid = (low + high) / 2
            if npv(mid) < 0:  # the payments are worth too much at this rate: the rate is higher
                low = mid
            else:
                high = mid
        return ((low + high) / 2 * 12).quantize(RATE_PLACES, rounding=ROUND_HALF_UP)


# --- policy facts -----------------------------------------------------------------------------------------


def _num(frame: pl.DataFrame, name: str) -> Any:
    from microlend.decisioning.columnar import V

    n = frame.height
    if name not in frame.columns:
        return V("null", None, np.ones(n, dtype=bool), np.zeros(n, dtype=bool))
    s = frame.get_column(name).cast(pl.Float64)
    null = s.is_null().to_numpy()
    return V("num", s.fill_null(0.0).to_numpy(), null, np.zeros(n, dtype=bool))


def _bool(frame: pl.DataFrame, name: str, default: bool) -> Any:
    from microlend.decisioning.columnar import V

    n = frame.height
    if name not in frame.columns:
        return V("bool", np.full(n, default), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool))
    s = frame.get_column(name).cast(pl.Boolean).fill_null(default)
    return V("bool", s.to_numpy(), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool))


def _const(n: int, kind: str, value: Any) -> Any:
    from microlend.decisioning.columnar import V

    data: Any = np.full(n, float(value)) if kind == "num" else np.full(n, value, dtype=object)
    return V(kind, data, np.zeros(n, dtype=bool), np.zeros(n, dtype=bool))


PolicyFacts = Callable[[pl.DataFrame, npt.NDArray[np.float64], OfferParameters], dict[str, Any]]


def default_policy_facts(frame: pl.DataFrame, score: npt.NDArray[np.float64], params: OfferParameters
                         ) -> dict[str, Any]:
    """The policy's input fields from features and profile: `age_years` (or profile `age`) is the age,
    `tenure_months` the credit history with the bank; profile columns annual_turnover, annual_income,
    years_in_business, blacklisted, overdue_elsewhere and bureau_data_present are used when present."""
    n = frame.height
    age = "age" if "age" in frame.columns else "age_years"
    return {
        "application.amount": _const(n, "num", params.requested_amount),
        "application.term_months": _const(n, "num", params.term_months),
        "application.product_code": _const(n, "str", params.product_code),
        "customer.age": _num(frame, age),
        "customer.annual_turnover": _num(frame, "annual_turnover"),
        "customer.annual_income": _num(frame, "annual_income"),
        "customer.years_in_business": _num(frame, "years_in_business"),
        "customer.blacklisted": _bool(frame, "blacklisted", False),
        "customer.overdue_elsewhere": _bool(frame, "overdue_elsewhere", False),
        "customer.bureau_data_present": _bool(frame, "bureau_data_present", False),
        "features.credit_history_months": _num(frame, "tenure_months"),
        "features.bank_inflow_12m": _num(frame, "bank_inflow_12m"),
        "model.score": _num(pl.DataFrame({"s": score}), "s"),
    }


@dataclass(frozen=True)
class RowOutcomes:
    """The batch evaluator's result shape, filled one row at a time."""

    outcome: npt.NDArray[np.object_]
    limit: npt.NDArray[np.float64]
    annual_rate: npt.NDArray[np.float64]
    risk_grade: npt.NDArray[np.object_]


class RowByRowPolicy:
    """The rule engine one customer at a time: the fallback for a policy the columnar evaluator cannot
    compile (slower, same answers). An engine failure on a row is a referral, as in a live decision."""

    def __init__(self, doc: dict[str, Any]) -> None:
        from microlend.decisioning.policy import CompiledPolicy

        self.policy = CompiledPolicy(doc)

    def evaluate(self, columns: Mapping[str, Any], n: int) -> RowOutcomes:
        from microlend.decisioning.policy import outputs_from_engine

        outcome = np.empty(n, dtype=object)
        limit = np.zeros(n)
        rate = np.full(n, np.nan)
        grade = np.full(n, None, dtype=object)
        for i in range(n):
            context: dict[str, Any] = {}
            for path, col in columns.items():
                *heads, leaf = path.split(".")
                value = None if col.null[i] else col.data[i]
                node = context
                for head in heads:  # data.sources.tax nests as {"data": {"sources": {"tax": ...}}}
                    node = node.setdefault(head, {})
                node[leaf] = value.item() if isinstance(value, np.generic) else value
            try:
                result = outputs_from_engine(self.policy.evaluate_raw(context)["result"], self.policy.currency)
            except Exception:  # the engine raises plain exceptions: the row is referred, as a live decision
                outcome[i] = "refer"
                continue
            outcome[i] = result.outcome
            limit[i] = float(result.limit)
            rate[i] = np.nan if result.annual_rate is None else float(result.annual_rate)
            grade[i] = result.risk_grade
        return RowOutcomes(outcome, limit, rate, grade)


# --- the run ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreapprovalSummary:
    run_id: int
    run_key: str
    status: str
    customers_total: int
    customers_in_segment: int
    offers: int
    resumed: bool


@dataclass
class PreapprovalInputs:
    """Source tables for the feature library (customers, loans, installments, ...) and a profile frame
    (customer_id plus profile columns such as marketing_consent, annual_turnover, the bureau profile); each
    an Arrow table or a `ParquetDataset` the batch engine reads itself."""

    tables: Mapping[str, pa.Table | ParquetDataset]
    profile: pa.Table | ParquetDataset | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _fingerprint(table: pa.Table) -> str:
    """A content hash of the customer table (schema and every column buffer), so a run over changed data
    gets a new run key instead of resuming an old run."""
    digest = hashlib.sha256(str(table.schema).encode())
    digest.update(str(table.num_rows).encode())
    for column in table.columns:
        for chunk in column.chunks:
            arrays = [chunk, chunk.dictionary] if pa.types.is_dictionary(chunk.type) else [chunk]
            for array in arrays:
                digest.update(f"{array.offset}:{len(array)}".encode())
                for buf in array.buffers():
                    if buf is not None:
                        digest.update(memoryview(buf))
    return digest.hexdigest()


def _customer_table(inputs: PreapprovalInputs, as_of: date, engine: BatchEngine,
                    progress: Progress | None = None) -> pa.Table:
    """Features as of the date joined with the profile, sorted by customer id: one query on the batch engine
    (so Spark reads Parquet inputs itself and only the joined rows come back)."""
    from microlend.data.features import feature_query

    # one query for the whole base: slicing the spine would rescan the installments once per slice
    query = feature_query(inputs.tables, as_of=as_of)
    named = {"customer_id", "as_of", *(f.name for f in query.chosen)}
    sources = dict(query.inputs)
    extra = ""
    if inputs.profile is not None:
        profile = inputs.profile
        if isinstance(profile, ParquetDataset):
            profile = profile.without(named - {"customer_id"})
            columns = list(profile.columns)
        else:
            profile = profile.drop_columns([c for c in profile.column_names if c in named and c != "customer_id"])
            columns = profile.column_names
        sources["p"] = profile
        extra = "".join(f', p."{c}"' for c in columns if c != "customer_id")
    join = " JOIN p ON p.customer_id = f.customer_id" if inputs.profile is not None else ""
    joined = engine.run_sql(f"SELECT f.*{extra} FROM (\n{query.sql}\n) f{join} ORDER BY f.customer_id", sources)
    if progress is not None:
        progress(joined.num_rows, joined.num_rows)
    frame = pl.from_arrow(joined)
    assert isinstance(frame, pl.DataFrame)
    aliases = []
    if "age" not in frame.columns and "age_years" in frame.columns:
        aliases.append(pl.col("age_years").alias("age"))
    if "months_on_book" not in frame.columns and "tenure_months" in frame.columns:
        aliases.append(pl.col("tenure_months").alias("months_on_book"))
    return (frame.with_columns(aliases) if aliases else frame).to_arrow()


@dataclass(frozen=True)
class _RunPlan:
    """What a run is over: its key, the customer table, the segment, and how offers are decided."""

    run_key: str
    customers: pa.Table
    segment: Segment | None
    segment_id: int | None
    scorer: Scorer
    evaluator: Any
    policy_version: str
    facts: PolicyFacts
    params: OfferParameters
    chunk_rows: int


def _policy_evaluator(doc: dict[str, Any]) -> Any:
    """The columnar evaluator for the policy, or the row-by-row engine when it cannot be compiled."""
    from microlend.decisioning.columnar import ColumnarPolicy, NotCompilable

    try:
        return ColumnarPolicy(doc)
    except NotCompilable:
        return RowByRowPolicy(doc)


def _load_segment(uow: UnitOfWork, who: Principal, name: str | None, version: int | None
                  ) -> tuple[Segment | None, int | None]:
    """The segment's given (or latest) version within the tenant, with its id; (None, None) for everyone."""
    if name is None:
        return None, None
    with uow:
        q = select(SegmentRow).where(SegmentRow.tenant_id == who.tenant_id, SegmentRow.name == name)
        q = q.where(SegmentRow.version == version) if version else q.order_by(SegmentRow.version.desc()).limit(1)
        seg_row = uow.session.execute(q).scalar_one_or_none()
        if seg_row is None:
            raise NotFound(f"segment '{name}' not found", field="segment")
        segment = Segment(seg_row.name, seg_row.version, seg_row.expression, dict(seg_row.namespace))  # type: ignore[arg-type]
        return segment, seg_row.id


def run_key(tenant_id: int, as_of: date, segment_id: int | None, policy_version: str, model_version: str,
            params: OfferParameters, chunk_rows: int, data_fingerprint: str) -> str:
    """The run's identity: the same inputs give the same key (and resume the same run)."""
    return hashlib.sha256(json.dumps({
        "tenant": tenant_id, "as_of": as_of.isoformat(), "segment": segment_id, "policy": policy_version,
        "model": model_version, "params": params.to_dict(), "chunk_rows": chunk_rows, "data": data_fingerprint,
    }, sort_keys=True).encode()).hexdigest()


def _start_or_resume(uow: UnitOfWork, who: Principal, plan: _RunPlan, *, as_of: date, started_at: datetime
                     ) -> tuple[PreapprovalRunRow, bool]:
    """The run with the plan's key, started (and audited) when there is none yet; and whether it existed."""
    total = plan.customers.num_rows
    with uow:
        s = uow.session
        run = s.execute(select(PreapprovalRunRow).where(PreapprovalRunRow.tenant_id == who.tenant_id,
                                                        PreapprovalRunRow.run_key == plan.run_key)).scalar_one_or_none()
        resumed = run is not None
        if run is None:
            run = PreapprovalRunRow(
                tenant_id=who.tenant_id, run_key=plan.run_key, segment_id=plan.segment_id, as_of=as_of,
                status="running", policy_version=plan.policy_version, model_version=plan.scorer.version,
                parameters={**plan.params.to_dict(), "chunk_rows": plan.chunk_rows}, customers_total=total,
                customers_done=0, offers_count=0, started_at=started_at)
            s.add(run)
            s.flush()
            audit.record(s, who, "preapproval.start", "preapproval_run", run.id,
                         after={"as_of": as_of.isoformat(), "segment_id": plan.segment_id,
                                "policy": plan.policy_version, "model": plan.scorer.version, "customers": total})
            uow.commit()
    return run, resumed


def _process_chunks(uow: UnitOfWork, who: Principal, plan: _RunPlan, run_id: int, done: int, in_segment: int, *,
                    expires_on: date, progress: Progress | None) -> int:
    """Decide the customers from `done` on, a chunk per transaction that also records the chunk as done;
    returns the customers in the segment so far."""
    total = plan.customers.num_rows
    for start in range(done, total, plan.chunk_rows):
        chunk = pl.from_arrow(plan.customers.slice(start, plan.chunk_rows))
        assert isinstance(chunk, pl.DataFrame)
        if plan.segment is not None:
            chunk = plan.segment.select(chunk)
        in_segment += chunk.height
        offers = _offers(chunk, plan.scorer, plan.evaluator, plan.facts, plan.params, run_id, who.tenant_id,
                         expires_on, plan.policy_version)
        with uow:
            s = uow.session
            if offers is not None:
                _write_offers(s, offers)
            run_row = s.get(PreapprovalRunRow, run_id)
            assert run_row is not None
            run_row.customers_done = min(start + plan.chunk_rows, total)
            run_row.offers_count += len(offers) if offers is not None else 0
            run_row.parameters = {**run_row.parameters, "in_segment_done": in_segment}
            uow.commit()
        if progress is not None:
            progress(min(start + plan.chunk_rows, total), total)
    return in_segment


def _complete(uow: UnitOfWork, who: Principal, run_id: int, total: int, in_segment: int) -> int:
    """Mark the run completed (audited); returns its offers."""
    with uow:
        s = uow.session
        run_row = s.get(PreapprovalRunRow, run_id)
        assert run_row is not None
        run_row.status = "completed"
        run_row.finished_at = utcnow()
        run_row.parameters = {**run_row.parameters, "in_segment": in_segment}
        audit.record(s, who, "preapproval.complete", "preapproval_run", run_id,
                     after={"offers": run_row.offers_count, "customers": total, "in_segment": in_segment})
        offers = run_row.offers_count
        uow.commit()
    return offers


def run_preapproval(
    uow: UnitOfWork, who: Principal, inputs: PreapprovalInputs, *, as_of: date, started_at: datetime,
    segment_name: str | None = None, segment_version: int | None = None, scorer: Scorer | None = None,
    policy: dict[str, Any] | None = None, params: OfferParameters | None = None, facts: PolicyFacts | None = None,
    engine: BatchEngine | None = None, chunk_rows: int = 100_000, progress: Progress | None = None,
) -> PreapprovalSummary:
    """Run (or resume) a pre-approval over a segment; see the module docstring."""
    from microlend.decisioning.policy import default_policy, policy_hash

    who.require(Permission.MANAGE_CAMPAIGNS)
    doc = policy or default_policy()
    customers = _customer_table(inputs, as_of, engine or LocalEngine())
    return run_over_table(uow, who, customers, as_of=as_of, started_at=started_at, segment_name=segment_name,
                          segment_version=segment_version, scorer=scorer or default_scorer(), policy=doc,
                          policy_version=policy_hash(doc)[:16], params=params, facts=facts or default_policy_facts,
                          chunk_rows=chunk_rows, progress=progress)


def run_over_table(
    uow: UnitOfWork, who: Principal, customers: pa.Table, *, as_of: date, started_at: datetime,
    segment_name: str | None, segment_version: int | None, scorer: Scorer, policy: dict[str, Any],
    policy_version: str, params: OfferParameters | None, facts: PolicyFacts, chunk_rows: int,
    progress: Progress | None,
) -> PreapprovalSummary:
    """Run (or resume) a pre-approval over a prepared customer table sorted by customer id."""
    who.require(Permission.MANAGE_CAMPAIGNS)
    if chunk_rows < 1:
        raise ValidationError("chunk_rows: at least 1", field="chunk_rows")
    params = params or OfferParameters()
    evaluator = _policy_evaluator(policy)
    segment, segment_id = _load_segment(uow, who, segment_name, segment_version)
    key = run_key(who.tenant_id, as_of, segment_id, policy_version, scorer.version, params, chunk_rows,
                  _fingerprint(customers))
    plan = _RunPlan(key, customers, segment, segment_id, scorer, evaluator, policy_version, facts, params,
                    chunk_rows)
    run, resumed = _start_or_resume(uow, who, plan, as_of=as_of, started_at=started_at)
    total = customers.num_rows
    if run.status == "completed":
        return PreapprovalSummary(run.id, key, run.status, total, int(run.parameters.get("in_segment", 0)),
                                  run.offers_count, True)
    in_segment = _process_chunks(uow, who, plan, run.id, run.customers_done,
                                 int(run.parameters.get("in_segment_done", 0)),
                                 expires_on=as_of + timedelta(days=params.offer_days), progress=progress)
    offers = _complete(uow, who, run.id, total, in_segment)
    return PreapprovalSummary(run.id, key, "completed", total, in_segment, offers, resumed)


@dataclass(frozen=True)
class _ChunkOffers:
    """One chunk's offers column by column (limits in storage form), with the values all its rows share."""

    tenant_id: int
    run_id: int
    expires_on: date
    policy_version: str
    customer_ids: list[int]
    limits: list[int]
    annual_rates: list[str]
    aprs: list[str]
    risk_grades: list[Any]
    scores: list[float]

    def __len__(self) -> int:
        return len(self.customer_ids)

    def rows(self, model_version: str, expires_on: Any) -> Iterator[tuple[Any, ...]]:
        """The offers table's rows in `_OFFER_COLUMNS` order, made as they are written (`expires_on` in the
        form the driver takes)."""
        return zip(repeat(self.tenant_id), repeat(self.run_id), self.customer_ids, self.limits, self.annual_rates,
                   self.aprs, repeat(expires_on), self.risk_grades, self.scores, repeat(self.policy_version),
                   repeat(model_version))


def _offers(chunk: pl.DataFrame, scorer: Scorer, evaluator: Any, facts: PolicyFacts, params: OfferParameters,
            run_id: int, tenant_id: int, expires_on: date, policy_version: str) -> _ChunkOffers | None:
    """Score and decide one chunk; the approved customers' offers, or None when there are none."""
    from microlend.decisioning.domain import engine_limit, engine_rate

    if chunk.height == 0:
        return None
    wanted = getattr(scorer, "features", None)  # hand over only the columns the model reads, when it says
    columns = [c for c in wanted if c in chunk.columns] if wanted is not None else chunk.columns
    score = scorer(chunk.select(columns).to_pandas())
    result = evaluator.evaluate(facts(chunk, score, params), n=chunk.height)
    approved = (result.outcome == "approve") & (result.limit > 0) & ~np.isnan(result.annual_rate)
    idx = np.flatnonzero(approved)
    if idx.size == 0:
        return None
    # a chunk holds few distinct limits and rates: each is converted to money once, then handed out by index
    limit_values, limit_at = np.unique(result.limit[idx], return_inverse=True)
    limits = [to_storage(engine_limit(float(v), params.currency)) for v in limit_values.tolist()]
    rate_values, rate_at = np.unique(result.annual_rate[idx], return_inverse=True)
    rates: list[str] = []
    aprs: list[str] = []
    for value in rate_values.tolist():
        rate = engine_rate(float(value))
        assert rate is not None
        rates.append(str(rate))
        aprs.append(str(offer_apr(rate, params.term_months, params.upfront_fee_rate)))
    limit_at, rate_at = np.asarray(limit_at).reshape(-1), np.asarray(rate_at).reshape(-1)
    return _ChunkOffers(
        tenant_id, run_id, expires_on, policy_version,
        customer_ids=chunk.get_column("customer_id").to_numpy()[idx].tolist(),
        limits=np.asarray(limits, dtype=object)[limit_at].tolist(),
        annual_rates=np.asarray(rates, dtype=object)[rate_at].tolist(),
        aprs=np.asarray(aprs, dtype=object)[rate_at].tolist(),
        risk_grades=result.risk_grade[idx].tolist(), scores=score[idx].tolist())


_OFFER_COLUMNS = ("tenant_id", "run_id", "customer_id", "limit", "annual_rate", "apr", "expires_on", "risk_grade",
                  "score", "policy_version", "model_version")


def _write_offers(s: Session, offers: _ChunkOffers) -> None:
    """Bulk write in storage form (limits already integer ten-thousandths): COPY on PostgreSQL, a prepared
    executemany on SQLite; the rows are made as the driver reads them, never held as a list."""
    run = s.get(PreapprovalRunRow, offers.run_id)
    model = run.model_version if run is not None else ""
    conn = s.connection()
    cols = ", ".join(f'"{c}"' for c in _OFFER_COLUMNS)
    if is_postgres(s):
        raw = conn.connection.dbapi_connection
        assert raw is not None
        with raw.cursor() as cur, cur.copy(f"COPY marketing_offers ({cols}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for r in offers.rows(model, offers.expires_on):
                copy.write_row(r)
        return
    if s.get_bind().dialect.name == "sqlite":
        marks = ", ".join("?" for _ in _OFFER_COLUMNS)
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cur = raw.cursor()
        try:
            cur.executemany(f"INSERT INTO marketing_offers ({cols}) VALUES ({marks})",  # sqlite3 takes any iterable
                            offers.rows(model, offers.expires_on.isoformat()))  # type: ignore[arg-type]
        finally:
            cur.close()
        return
    records = [dict(zip(_OFFER_COLUMNS, r, strict=True)) for r in offers.rows(model, offers.expires_on)]
    for rec in records:  # the ORM path converts amounts itself
        rec["limit"] = from_storage(rec["limit"])
    s.execute(insert(OfferRow), records)
