"""Read functions other modules call about the data the bank holds: business features over a whole customer
base from the answers the data gateway recorded, computed by the same `business_features` as a live decision."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import polars as pl
from sqlalchemy import func, select

from microlend.core import crypto
from microlend.core.frames import read_frame
from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.data import answer_facts as facts
from microlend.data import business
from microlend.data.tables import ProviderCallRow

#: Statuses whose recorded answer says something about the subject (found or not).
_KEPT = ("ok", "not_found")
_CHUNK = 500


def stored_business_features(uow: UnitOfWork, who: Principal, subjects: Mapping[int, str], as_of: date,
                             max_age_days: int = 90) -> pl.DataFrame:
    """Business features of these customers (customer id -> blind index of the ID number or USCC the gateway
    was asked about) as of `as_of`, from the newest answer of each source recorded within `max_age_days` before
    it: one row per customer with an answer, columns `customer_id`, every feature of `business.FEATURE_NAMES`,
    the money features' exact `<name>__cents`, and `source_<kind>` (ok or not_found). The answers are the ones
    decisions already paid for; nothing is called here."""
    by_index = {index: int(c) for c, index in subjects.items() if index}
    since = datetime.combine(as_of - timedelta(days=max_age_days), time.min, tzinfo=UTC)
    newest: dict[tuple[int, str], tuple[datetime, int, str, str | None]] = {}
    indexes = sorted(by_index)
    with uow:
        for start in range(0, len(indexes), _CHUNK):
            for index, kind, status, at, call_id, sealed in uow.session.execute(
                select(ProviderCallRow.subject_index, ProviderCallRow.kind, ProviderCallRow.status,
                       ProviderCallRow.at, ProviderCallRow.id, ProviderCallRow.payload).where(
                    ProviderCallRow.tenant_id == who.tenant_id,
                    ProviderCallRow.subject_index.in_(indexes[start : start + _CHUNK]),
                    ProviderCallRow.status.in_(_KEPT), ProviderCallRow.payload.is_not(None),
                    ProviderCallRow.at >= since)).all():
                if at.date() > as_of:
                    continue
                key = (by_index[index], kind)
                if key not in newest or (at, call_id) > newest[key][:2]:
                    newest[key] = (at, call_id, status, sealed)
    payloads: dict[int, dict[str, dict[str, object]]] = {}
    statuses: dict[int, dict[str, str]] = {}
    for (customer, kind), (_, _, status, sealed) in newest.items():
        if sealed is None:
            continue
        payloads.setdefault(customer, {})[kind] = json.loads(crypto.decrypt(sealed))
        statuses.setdefault(customer, {})[kind] = status
    customers = sorted(payloads)
    parts: dict[str, list[pl.DataFrame]] = {}
    for customer in customers:
        for name, table in business.tables_from_payloads(payloads[customer], str(customer)).items():
            parts.setdefault(name, []).append(table)
    tables = {name: pl.concat(frames, how="vertical_relaxed") for name, frames in parts.items()}
    spine = pl.DataFrame({"subject": [str(c) for c in customers], "as_of": [as_of] * len(customers)},
                         schema={"subject": pl.String, "as_of": pl.Date})
    features = business.business_features(tables, spine).drop("subject", "as_of")
    sources = {f"source_{kind}": [statuses[c].get(kind) for c in customers]
               for kind in sorted({k for s in statuses.values() for k in s})}
    return pl.DataFrame({"customer_id": customers, **sources},
                        schema={"customer_id": pl.Int64, **{k: pl.String for k in sources}}).hstack(features)


def newest_answers(uow: UnitOfWork, who: Principal, subjects: Mapping[int, str], kinds: Sequence[str]
                   ) -> dict[tuple[int, str], datetime]:
    """(customer id, kind) -> when the newest answer (found or not) of that source about the customer was
    recorded, whatever its purpose; a pair without one is absent. Subjects as for `stored_business_features`."""
    by_index = {index: int(c) for c, index in subjects.items() if index}
    indexes = sorted(by_index)
    newest: dict[tuple[int, str], datetime] = {}
    with uow:
        for start in range(0, len(indexes), _CHUNK):
            for index, kind, at in uow.session.execute(
                select(ProviderCallRow.subject_index, ProviderCallRow.kind, func.max(ProviderCallRow.at)).where(
                    ProviderCallRow.tenant_id == who.tenant_id,
                    ProviderCallRow.subject_index.in_(indexes[start : start + _CHUNK]),
                    ProviderCallRow.kind.in_(list(kinds)), ProviderCallRow.status.in_(_KEPT),
                    ProviderCallRow.payload.is_not(None))
                    .group_by(ProviderCallRow.subject_index, ProviderCallRow.kind)).all():
                newest[(by_index[index], kind)] = at
    return newest


def answer_pairs(uow: UnitOfWork, who: Principal, subjects: Mapping[int, str], kinds: Sequence[str], as_of: date,
                 max_age_days: int = 90) -> dict[tuple[int, str], tuple[dict[str, Any], dict[str, Any] | None]]:
    """(customer id, kind) -> (the newest answer recorded on or before `as_of` and within `max_age_days`
    before it, the answer recorded before that one whatever its age or None), parsed; what an early warning
    compares to tell what is new since the previous pull. Nothing is called here."""
    by_index = {index: int(c) for c, index in subjects.items() if index}
    indexes = sorted(by_index)
    since = datetime.combine(as_of - timedelta(days=max_age_days), time.min, tzinfo=UTC)
    ranked: dict[tuple[int, str], list[tuple[datetime, int]]] = {}
    with uow:
        for start in range(0, len(indexes), _CHUNK):
            for index, kind, at, call_id in uow.session.execute(
                select(ProviderCallRow.subject_index, ProviderCallRow.kind, ProviderCallRow.at,
                       ProviderCallRow.id).where(
                    ProviderCallRow.tenant_id == who.tenant_id,
                    ProviderCallRow.subject_index.in_(indexes[start : start + _CHUNK]),
                    ProviderCallRow.kind.in_(list(kinds)), ProviderCallRow.status.in_(_KEPT),
                    ProviderCallRow.payload.is_not(None))).all():
                if at.date() > as_of:
                    continue
                ranked.setdefault((by_index[index], kind), []).append((at, int(call_id)))
        wanted: dict[tuple[int, str], list[int]] = {}
        for key, calls in ranked.items():
            calls.sort(reverse=True)
            if calls[0][0] >= since:
                wanted[key] = [i for _, i in calls[:2]]
        ids = sorted(i for pair in wanted.values() for i in pair)
        sealed: dict[int, str] = {}
        for start in range(0, len(ids), _CHUNK):
            sealed.update({int(i): p for i, p in uow.session.execute(
                select(ProviderCallRow.id, ProviderCallRow.payload).where(
                    ProviderCallRow.tenant_id == who.tenant_id, ProviderCallRow.id.in_(ids[start : start + _CHUNK])))
                if p is not None})
    out: dict[tuple[int, str], tuple[dict[str, Any], dict[str, Any] | None]] = {}
    for key, pair in wanted.items():
        newest = json.loads(crypto.decrypt(sealed[pair[0]]))
        previous = json.loads(crypto.decrypt(sealed[pair[1]])) if len(pair) > 1 else None
        out[key] = (newest, previous)
    return out


#: Per source, the two windows of its newest answer's prefix sums the scan reads (low and high key, inclusive):
#: tax the declared sales of the last 12 months and the 12 before (and how many months declared in those), merchant
#: the takings of the last 90 days and the 90 before.
_SLICE = {"sqlite": ("MAX(0, MIN({keys}, {x}))", "substr({blob}, 8 * ({at}) + 1, 8)"),
          "postgresql": ("GREATEST(0, LEAST({keys}, {x}))", "substring({blob} from 8 * ({at}) + 1 for 8)")}


def _answer_facts_sql(dialect: str) -> str:
    """The newest two answers per subject and source (`answer_facts`; ranked on the narrow columns, the rest
    joined to the two kept), of the newest tax and merchant answer only the eight-byte prefix sums at the ends of
    its two windows (the prefix sums before the window's first key and at its last, clipped to the series, cut
    in the database): a few bytes cross the driver instead of every answer's series."""
    clip, cut = _SLICE.get(dialect, _SLICE["postgresql"])
    keys = "(length(series) / 8 - 1)"
    ends = []
    for w in ("1", "2"):
        low = f"CASE WHEN kind = 'tax' THEN :tax_low_{w} ELSE :mer_low_{w} END"
        high = f"CASE WHEN kind = 'tax' THEN :tax_high_{w} ELSE :mer_high_{w} END"
        a = clip.format(keys=keys, x=f"{low} - series_first")
        b = clip.format(keys=keys, x=f"{high} - series_first + 1")
        ends += [f"{a} AS a{w}", f"{_max(dialect, a, b)} AS b{w}"]
    inner = ", ".join(ends)
    sliced = ", ".join(f"CASE WHEN rn = 1 THEN {cut.format(blob=blob, at=f'{end}{w}')} END"
                       for blob, w in (("series", "1"), ("series", "2"), ("counts", "2")) for end in ("a", "b"))
    return f"""
SELECT subject_index, kind, rn, recent, found, series_first, {sliced}, overdue_now, overdue_level, cases
FROM (SELECT f.subject_index, f.kind, f.found, f.series_first, f.series, f.counts, f.overdue_now, f.overdue_level,
             f.cases, r.recent, r.rn, {inner}
      FROM (SELECT call_id, CASE WHEN at >= :since THEN 1 ELSE 0 END AS recent,
                   ROW_NUMBER() OVER (PARTITION BY subject_index, kind ORDER BY at DESC, call_id DESC) AS rn
            FROM data_answer_facts WHERE tenant_id = :tenant AND at < :until) r
      JOIN data_answer_facts f ON f.call_id = r.call_id
      WHERE r.rn <= 2) ranked
"""


def _max(dialect: str, a: str, b: str) -> str:
    return f"MAX({a}, {b})" if dialect == "sqlite" else f"GREATEST({a}, {b})"


_ENDS = ("s1a", "s1b", "s2a", "s2b", "c2a", "c2b")
_ANSWER_FACTS = {"subject_index": pl.String, "kind": pl.String, "rank": pl.Int32, "recent": pl.Int32,
                 "found": pl.Boolean, "series_first": pl.Int64, **{e: pl.Binary for e in _ENDS},
                 "overdue_now": pl.Int32, "overdue_level": pl.Int32, "cases": pl.String}
#: `answer_facts`: one row per customer, source and rank.
ANSWER_FACTS = {"customer_id": pl.Int64, "kind": pl.String, "rank": pl.Int32, "found": pl.Boolean,
                "tax_sales_growth_yoy": pl.Float64, "mer_flow_trend": pl.Float64, "overdue_now": pl.Int32,
                "overdue_level": pl.Int32, "cases": pl.String}


def _index_frame(subjects: pl.DataFrame) -> pl.DataFrame:
    return subjects.select(pl.col("subject_index").cast(pl.String), pl.col("customer_id").cast(pl.Int64)
                           ).filter(pl.col("subject_index").is_not_null() & (pl.col("subject_index") != ""))


def answer_facts(uow: UnitOfWork, who: Principal,
                 subjects: Mapping[int, str] | pl.DataFrame | Callable[[Sequence[str]], pl.DataFrame], as_of: date,
                 max_age_days: int = 90) -> pl.DataFrame:
    """What the early-warning scan reads of the recorded answers (tax, merchant, enforcement, credit report),
    set-based from the facts kept when each answer arrived (`answer_facts.facts_of`), nothing parsed: per
    customer (subjects as for `stored_business_features`, or a frame of customer_id and subject_index) and
    source whose newest answer recorded on or before `as_of` is within `max_age_days` before it, that answer
    (rank 0) and the one recorded before it whatever its age (rank 1). Columns `ANSWER_FACTS`: of a rank-0 tax
    answer the `tax_sales_growth_yoy`, of a rank-0 merchant answer the `mer_flow_trend` (both as
    `business_features` computes them as of `as_of`), of the credit report the overdue accounts now and the
    worst overdue level in 24 months, of enforcement the cases (JSON [[case_no, open, dishonest, was
    dishonest], ...] with "1"/"0" flags, or null: none). `subjects` may also be a function giving that frame
    for the blind indexes the answers are about (so a bank's whole base is not read for the few answered)."""
    facts.backfill(uow, who.tenant_id)
    if callable(subjects):
        index = None
    elif isinstance(subjects, pl.DataFrame):
        index = _index_frame(subjects)
    else:
        by_index = {index: int(c) for c, index in subjects.items() if index}
        index = pl.DataFrame({"subject_index": list(by_index), "customer_id": list(by_index.values())},
                             schema={"subject_index": pl.String, "customer_id": pl.Int64})
    if index is not None and index.height == 0:
        return pl.DataFrame(schema=ANSWER_FACTS)
    since = datetime.combine(as_of - timedelta(days=max_age_days), time.min, tzinfo=UTC)
    until = datetime.combine(as_of + timedelta(days=1), time.min, tzinfo=UTC)
    month, day = as_of.year * 12 + as_of.month, as_of.toordinal()
    windows = {"tax_low_1": month - 12, "tax_high_1": month - 1, "tax_low_2": month - 24, "tax_high_2": month - 13,
               "mer_low_1": day - 90, "mer_high_1": day - 1, "mer_low_2": day - 180, "mer_high_2": day - 91}
    with uow.read_only():  # the facts are all there now: the rest only reads
        s = uow.session
        rows = read_frame(s, _answer_facts_sql(s.get_bind().dialect.name),
                          {"tenant": who.tenant_id, "since": since, "until": until, **windows}, _ANSWER_FACTS)
    if index is None:
        assert callable(subjects)
        index = _index_frame(subjects(rows.get_column("subject_index").unique().sort().to_list()))
    rows = rows.join(index, on="subject_index", how="inner")
    newest_recent = rows.filter((pl.col("rank") == 1) & (pl.col("recent") == 1)).select("subject_index", "kind")
    rows = rows.join(newest_recent, on=["subject_index", "kind"], how="semi").with_columns(
        (pl.col("rank") - 1).alias("rank"),
        *(pl.col(e).bin.reinterpret(dtype=pl.Int64, endianness="little") for e in _ENDS))
    tax = rows.filter((pl.col("kind") == "tax") & (pl.col("rank") == 0) & pl.col("found")
                      & pl.col("s1a").is_not_null())
    s12, p12, n_prev = (pl.col("s1b") - pl.col("s1a"), pl.col("s2b") - pl.col("s2a"), pl.col("c2b") - pl.col("c2a"))
    growth = pl.when(n_prev > 0).then(
        pl.when(p12 != 0).then(s12.cast(pl.Float64) / p12.cast(pl.Float64)).otherwise(None) - 1.0)
    tax = tax.select("subject_index", "kind", "rank", growth.cast(pl.Float64).alias("tax_sales_growth_yoy"))
    mer = rows.filter((pl.col("kind") == "merchant") & (pl.col("rank") == 0) & pl.col("found")
                      & pl.col("s1a").is_not_null())
    f3, fp = pl.col("s1b") - pl.col("s1a"), pl.col("s2b") - pl.col("s2a")
    trend = pl.when(fp != 0).then(f3.cast(pl.Float64) / fp.cast(pl.Float64)).otherwise(None) - 1.0
    mer = mer.select("subject_index", "kind", "rank", trend.cast(pl.Float64).alias("mer_flow_trend"))
    keys = ["subject_index", "kind", "rank"]
    return (rows.join(tax, on=keys, how="left").join(mer, on=keys, how="left")
            .select(list(ANSWER_FACTS)).sort("customer_id", "kind", "rank"))
