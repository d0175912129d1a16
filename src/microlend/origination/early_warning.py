"""Early warning on the active book (贷后预警): the signals of every open credit line and every active loan
outside a line, computed set-based (the bank's own days past due and their transition since the last monthly
scoring, the monthly behaviour score, declared tax sales and merchant turnover, enforcement cases and
overdue accounts at other lenders new or worse since the previous pull, from the answers the data gateway
recorded (at decisions and at the periodic re-pulls of `data_refresh`) — tax and merchant data only
under the external-data consent, the credit report only under the credit-report consent — and months drawn
to the limit), judged by the bank's published early-warning rules (decisioning), kept as alerts in a queue.

De-duplication: a subject has at most one open alert per signal (a later scan updates it, raising its
severity when it got worse); an alert acted on or dismissed keeps its signal quiet for `QUIET_DAYS`.

Actions on an alert, each recorded with who, when and why: freeze the line's drawdowns or reduce its limit
(through the limit desk: an approver within authority applies it at once; above the approver's authority by
amount, or asked by the risk team, it waits on the desk for a second person), a visit task for the
customer's officer, a collections case opened early (servicing), or dismissal. Lives in origination, above
decisioning (the rules), servicing (the book) and data (the answers)."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
from sqlalchemy import Text, bindparam, case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.db import json_text
from microlend.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from microlend.core.frames import read_frame, write_frame
from microlend.core.identity import Permission, Principal, Role
from microlend.core.money import round_half_up
from microlend.core.tenancy import business_date
from microlend.core.uow import UnitOfWork
from microlend.data import queries as data_queries
from microlend.decisioning import early_warning as rules
from microlend.decisioning.behaviour import at_limit_streak
from microlend.decisioning.behaviour_scores import month_of, scores_before_frame
from microlend.decisioning.behaviour_scores import store_month_frame as store_month
from microlend.decisioning.evidence import published_of_kind
from microlend.decisioning.limit_changes import ProposedChange, limit_authority, record_limit_change
from microlend.decisioning.policy import policy_hash
from microlend.origination.assist import staff_branch
from microlend.origination.behaviour_scoring import (
    loan_ranges,
    loan_totals,
    portfolio_subjects,
    portfolio_totals,
    scores_of,
    scores_of_totals,
    totals_of_parts,
)
from microlend.origination.tables import EarlyWarningActionRow, EarlyWarningAlertRow, VisitTaskRow
from microlend.parties import queries as parties
from microlend.servicing import queries as loans
from microlend.servicing.service import change_credit_line_limit, collecting

OPEN, ACTED, DISMISSED = "open", "acted", "dismissed"
STATUSES = (OPEN, ACTED, DISMISSED)
ACTIONS = ("freeze", "reduce_limit", "visit", "collections_case", "dismiss")
#: After an alert is acted on or dismissed, its subject and signal raise no new alert for this many days.
QUIET_DAYS = 30
#: A visit asked from an alert is due this many days after the business date unless a date is given.
VISIT_DAYS = 7
_RANK = {"low": 1, "medium": 2, "high": 3}
#: Open alerts seen again are stamped in statements of this many ids.
_SEEN_CHUNK = 5000
#: The whole book's instalment totals (the scan's longest read) are read in this many ranges of loans at once. One:
#: on two cores shared with other work, two ranges at once measured no faster at a million loans (SQLite: the same
#: CPU; PostgreSQL: about 2 s more server CPU); a database with cores to spare may take more.
TOTALS_PARTS = 1
#: On SQLite a book of this many loans (by their ids) or more is read in processes of its own, at once; a smaller
#: one in threads of this process, where starting the processes would cost more than it saves.
READ_APART_FROM = 100_000
P = Permission


# --- the signals of the book, set-based -------------------------------------------------------------------


def book_signals(subjects: pl.DataFrame, instalments: pl.DataFrame, on: date, *,
                 before: pl.DataFrame | None = None, external: pl.DataFrame | None = None) -> pl.DataFrame:
    """The early-warning facts of every subject (`early_warning.BOOK_SCHEMA`) from the scorecard's frames
    (`behaviour_scoring.portfolio_frames`), the previous month's scores (subject_kind, subject_id,
    score_before, dpd_before) and the external facts per customer (customer_id and the fact columns of
    tax, merchant, enforcement and bureau; null where the bank holds none or may not use them). Also
    returns the month's score, band and factor points per subject (columns `score`, `band`, `bin_*`,
    `points_*`) so the run can keep them."""
    return _signals(scores_of(subjects, instalments, on, keep_owed=True), before, external)


def totals_signals(subjects: pl.DataFrame, totals: pl.DataFrame, on: date, *,
                   before: pl.DataFrame | None = None, external: pl.DataFrame | None = None) -> pl.DataFrame:
    """`book_signals` from the subjects and their instalments' totals (`behaviour_scoring.portfolio_totals`)."""
    return _signals(scores_of_totals(subjects, totals, on, keep_owed=True), before, external)


def _signals(scored: pl.DataFrame, before: pl.DataFrame | None, external: pl.DataFrame | None) -> pl.DataFrame:
    book = scored.with_columns(at_limit_streak().alias("months_at_limit")).rename({"kind": "subject_kind"})
    if before is None or before.height == 0:
        before = pl.DataFrame(schema={"subject_kind": pl.Utf8, "subject_id": pl.Int64, "score_before": pl.Int32,
                                      "dpd_before": pl.Int32})
    book = book.join(before, on=["subject_kind", "subject_id"], how="left")
    ext_cols = ("tax.sales_growth", "merchant.flow_trend", "enforcement.cases_open", "enforcement.dishonest",
                "bureau.overdue_now")
    if external is None or external.height == 0:
        book = book.with_columns([pl.lit(None, dtype=rules.FACT_TYPES[c]).alias(c) for c in ext_cols])
    else:
        book = book.join(external.select("customer_id", *ext_cols), on="customer_id", how="left")
    return book.with_columns(
        pl.col("current_dpd").cast(pl.Int32).alias("dpd.now"),
        pl.col("dpd_before").cast(pl.Int32).alias("dpd.before"),
        pl.col("score").cast(pl.Int32).alias("score.value"),
        (pl.col("score_before") - pl.col("score")).cast(pl.Int32).alias("score.drop"),
        pl.col("months_at_limit").cast(pl.Int32).alias("line.months_at_limit"),
    )


def new_enforcement(newest: Mapping[str, Any], previous: Mapping[str, Any] | None) -> tuple[int, bool]:
    """(open cases new since the previous answer, a case newly on the dishonest list) of the enforcement
    source: a case is told by its case number; an open case the previous answer had (open or closed) is not
    new, nor one listed dishonest before. With no previous answer every open case is new (first seen)."""
    cases = [c for c in newest.get("cases") or () if isinstance(c, Mapping)]
    before = {str(c.get("case_no")): c for c in (previous or {}).get("cases") or () if isinstance(c, Mapping)}
    fresh = sum(1 for c in cases if c.get("status") == "open" and str(c.get("case_no")) not in before)
    listed = any(c.get("dishonest") is True and not (before.get(str(c.get("case_no"))) or {}).get("dishonest")
                 for c in cases)
    return fresh, listed


def overdue_worsened(newest: Mapping[str, Any], previous: Mapping[str, Any] | None) -> int:
    """The accounts overdue at other lenders now when the overdue is new or worse than at the previous answer
    (more accounts overdue, or as many with a deeper overdue level), else 0; with no previous answer, the
    accounts overdue now (first seen). A report not found counts as none overdue."""
    now = int(newest.get("overdue_accounts_now") or 0)
    if previous is None:
        return now
    then = int(previous.get("overdue_accounts_now") or 0)
    deeper = int(newest.get("max_overdue_level_24m") or 0) > int(previous.get("max_overdue_level_24m") or 0)
    return now if now > then or (now > 0 and now == then and deeper) else 0


def _external(uow: UnitOfWork, who: Principal, on: date) -> pl.DataFrame:
    """Per customer, the facts of the newest recorded answers of tax, merchant, enforcement and bureau
    sources; tax and merchant only for customers whose external-data consent stands, the credit report only
    under the credit-report consent (enforcement is a public record). Enforcement and the credit report are
    compared with the answer before the newest (as `new_enforcement`, `overdue_worsened` do for one pair,
    here set-based): their facts count what is new since the previous pull, so an old case warns once, not
    at every scan. Read from the facts the data module kept when each answer arrived (nothing parsed)."""
    answers = data_queries.answer_facts(uow, who, lambda indexes: parties.subject_index_frame(uow, who, indexes), on)
    if answers.height == 0:
        return pl.DataFrame()
    newest = answers.filter(pl.col("rank") == 0)
    tax = newest.filter(pl.col("kind") == "tax").select("customer_id", "tax_sales_growth_yoy")
    mer = newest.filter(pl.col("kind") == "merchant").select("customer_id", "mer_flow_trend")
    bureau = _bureau_worse(answers.filter(pl.col("kind") == "bureau"))
    enforcement = _enforcement_new(answers.filter(pl.col("kind") == "enforcement"))
    stored = (newest.select("customer_id").unique().join(tax, on="customer_id", how="left")
              .join(mer, on="customer_id", how="left").join(enforcement, on="customer_id", how="left")
              .join(bureau, on="customer_id", how="left").sort("customer_id"))
    external = parties.customers_with_consent(uow, who, "external_data")
    report = parties.customers_with_consent(uow, who, "credit_report")
    ext = pl.col("customer_id").is_in(list(external))
    rep = pl.col("customer_id").is_in(list(report))
    return stored.select(
        "customer_id",
        pl.when(ext).then(pl.col("tax_sales_growth_yoy").cast(pl.Float64)).alias("tax.sales_growth"),
        pl.when(ext).then(pl.col("mer_flow_trend").cast(pl.Float64)).alias("merchant.flow_trend"),
        pl.col("enf_new_open").cast(pl.Int32).alias("enforcement.cases_open"),
        pl.col("enf_new_dishonest").cast(pl.Boolean).alias("enforcement.dishonest"),
        pl.when(rep).then(pl.col("bur_overdue_worse").cast(pl.Int32)).alias("bureau.overdue_now"),
    )


def _bureau_worse(bureau: pl.DataFrame) -> pl.DataFrame:
    """`overdue_worsened` of every customer's newest and previous credit report (customer_id,
    bur_overdue_worse)."""
    now = bureau.filter(pl.col("rank") == 0).select("customer_id", pl.col("overdue_now").fill_null(0).alias("now"),
                                                    pl.col("overdue_level").fill_null(0).alias("level"))
    then = bureau.filter(pl.col("rank") == 1).select("customer_id", pl.col("overdue_now").fill_null(0).alias("then"),
                                                     pl.col("overdue_level").fill_null(0).alias("level_then"))
    both = now.join(then, on="customer_id", how="left")
    worse = (pl.col("now") > pl.col("then")) | (
        (pl.col("now") > 0) & (pl.col("now") == pl.col("then")) & (pl.col("level") > pl.col("level_then")))
    return both.select("customer_id", pl.when(pl.col("then").is_null()).then(pl.col("now"))
                       .when(worse).then(pl.col("now")).otherwise(0).cast(pl.Int32).alias("bur_overdue_worse"))


_CASES = pl.List(pl.List(pl.String))


def _cases(frame: pl.DataFrame, rank: int) -> pl.DataFrame:
    """The enforcement cases of each customer's answer of this rank: customer_id, case_no, open, dishonest
    (`is True`), was_dishonest (truthy), in the answer's order."""
    part = frame.filter((pl.col("rank") == rank) & pl.col("cases").is_not_null())
    schema = {"customer_id": pl.Int64, "case_no": pl.String, "open": pl.Boolean, "dishonest": pl.Boolean,
              "was_dishonest": pl.Boolean, "position": pl.UInt32}
    if part.height == 0:
        return pl.DataFrame(schema=schema)
    cases = (part.select("customer_id", pl.col("cases").str.json_decode(_CASES).alias("case"))
             .explode("case").with_columns(pl.int_range(pl.len()).over("customer_id").cast(pl.UInt32)
                                            .alias("position")))
    item = pl.col("case").list
    return cases.select("customer_id", item.get(0).alias("case_no"), (item.get(1) == "1").alias("open"),
                        (item.get(2) == "1").alias("dishonest"), (item.get(3) == "1").alias("was_dishonest"),
                        "position")


def _enforcement_new(enforcement: pl.DataFrame) -> pl.DataFrame:
    """`new_enforcement` of every customer's newest and previous enforcement answer (customer_id,
    enf_new_open, enf_new_dishonest)."""
    customers = enforcement.filter(pl.col("rank") == 0).select("customer_id").unique()
    newest, previous = _cases(enforcement, 0), _cases(enforcement, 1)
    # a previous case number seen twice: the later one counts (as a dict built in order keeps it)
    before = previous.sort("position").group_by("customer_id", "case_no").agg(
        pl.col("was_dishonest").last().alias("was_before"))
    joined = newest.join(before, on=["customer_id", "case_no"], how="left")
    per = joined.group_by("customer_id").agg(
        (pl.col("open") & pl.col("was_before").is_null()).sum().cast(pl.Int32).alias("enf_new_open"),
        (pl.col("dishonest") & ~pl.col("was_before").fill_null(False)).any().alias("enf_new_dishonest"))
    return customers.join(per, on="customer_id", how="left").select(
        "customer_id", pl.col("enf_new_open").fill_null(0).cast(pl.Int32),
        pl.col("enf_new_dishonest").fill_null(False))


def _before(uow: UnitOfWork, who: Principal, on: date) -> pl.DataFrame:
    return scores_before_frame(uow, who, month_of(on))


def current_book(uow: UnitOfWork, who: Principal, on: date | None = None) -> pl.DataFrame:
    """The early-warning facts of the bank's whole active book as of its business date (nothing written)."""
    if on is None:
        with uow:
            on = business_date(uow.session, who.tenant_id)
    if _is_open(uow):  # inside the caller's transaction: read in it, one after the other
        subjects, totals = portfolio_totals(uow, who, on)
        return totals_signals(subjects, totals, on, before=_before(uow, who, on), external=_external(uow, who, on))
    # the reads are independent: run them at once, the book (its subjects, and its instalment totals in
    # `TOTALS_PARTS` ranges of loans, the longest read, so that it spreads over the cores) and last month's scores
    # in read-only units of work (no write lock on SQLite), the answers in their own (it may fill facts missing from
    # answers recorded before they were kept); on a large SQLite book each read runs in a process of its own
    # (`READ_APART_FROM`). Each reads its own snapshot, as the three reads did before the book was read in parts:
    # a loan repaid while the scan reads may show in one and not yet in another
    ranges = loan_ranges(uow.fresh().read_only(), who, TOTALS_PARTS)
    apart = _reads_apart(uow, ranges)
    with ThreadPoolExecutor(max_workers=3 + len(ranges), thread_name_prefix="early-warning") as pool:
        def unit() -> UnitOfWork:
            return uow.fresh().reading_apart(apart)

        parts = [pool.submit(loan_totals, unit().read_only(), who, on, ids) for ids in ranges]
        book = pool.submit(portfolio_subjects, unit().read_only(), who)
        before = pool.submit(_before, unit().read_only(), who, on)
        external = pool.submit(_external, unit(), who, on)
        totals = totals_of_parts([part.result() for part in parts], on)
        return totals_signals(book.result(), totals, on, before=before.result(), external=external.result())


def _reads_apart(uow: UnitOfWork, ranges: list[tuple[int, int]]) -> bool:
    """Whether the book's reads run in processes of their own: on a SQLite file, from `READ_APART_FROM` loans."""
    with uow.fresh() as u:
        sqlite = u.session.get_bind().dialect.name == "sqlite"
    return sqlite and bool(ranges) and ranges[-1][1] - ranges[0][0] + 1 >= READ_APART_FROM


def _is_open(uow: UnitOfWork) -> bool:
    try:
        uow.session  # noqa: B018 - raises when the unit of work is not open
    except RuntimeError:
        return False
    return True


def book_facts(uow: UnitOfWork, who: Principal) -> pl.DataFrame:
    """The port decisioning simulates an early-warning version on: the current book's facts."""
    return current_book(uow, who).select(list(rules.BOOK_SCHEMA))


# --- the scan ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanRun:
    business_date: date
    rule_version: str
    subjects: int
    raised: int
    new: int
    escalated: int
    by_signal: dict[str, dict[str, int]]
    scores_kept: bool


def _may_see(who: Principal) -> None:
    if not (who.can(P.RECOMMEND) or who.can(P.MANAGE_CREDIT_LINES) or who.can(P.EDIT_POLICIES)):
        raise PermissionDenied("only a loan officer, an approver or the risk team sees early-warning alerts")


def _may_act(who: Principal) -> None:
    if not (who.can(P.MANAGE_CREDIT_LINES) or who.can(P.EDIT_POLICIES)):
        raise PermissionDenied("only an approver or the risk team acts on early-warning alerts")


def rules_in_force(uow: UnitOfWork, who: Principal) -> dict[str, Any]:
    with uow:
        return published_of_kind(uow.session, who.tenant_id, rules.KIND) or rules.default_early_warning()


def _key(kind: str, subject_id: int, signal: str) -> str:
    return f"{kind}:{subject_id}:{signal}"


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return str(Decimal(repr(value)).quantize(Decimal("0.0001")))
    return value


def alert_inputs(facts: Mapping[str, Any], signal: str) -> dict[str, Any]:
    """The inputs an alert of `signal` keeps: the facts its rule reads, ratios as text to 4 places (the
    reference of `inputs_text`, one subject at a time)."""
    return {f: _plain(facts[f]) for f in rules.SIGNAL_FACTS[signal]}


def _float_text(column: pl.Series) -> dict[float, str]:
    """The JSON text `alert_inputs` keeps of each distinct ratio of `column` (few: only raised rows')."""
    return {v: json_text(_plain(v)) or "null" for v in column.drop_nulls().unique().to_list()}


def inputs_text(found: pl.DataFrame) -> pl.Expr:
    """The stored JSON text of `alert_inputs` for every raised row (a `signal` column and the fact columns),
    built set-based: keys sorted, as `json_text` writes them."""
    parts: dict[str, pl.Expr] = {}
    for fact in rules.FACTS:
        dtype = rules.FACT_TYPES[fact]
        if dtype == pl.Float64:
            texts = _float_text(found.get_column(fact))
            value = pl.col(fact).replace_strict(list(texts), list(texts.values()), default=None,
                                                return_dtype=pl.Utf8) if texts else pl.lit(None, dtype=pl.Utf8)
        elif dtype == pl.Boolean:
            value = pl.when(pl.col(fact)).then(pl.lit("true")).when(~pl.col(fact)).then(pl.lit("false"))
        else:
            value = pl.col(fact).cast(pl.Utf8)
        parts[fact] = value.fill_null("null")
    text: pl.Expr = pl.lit(None, dtype=pl.Utf8)
    for signal, facts in rules.SIGNAL_FACTS.items():
        pieces: list[pl.Expr] = []
        for i, fact in enumerate(sorted(facts)):
            pieces += [pl.lit(("{" if i == 0 else ", ") + json_text(fact) + ": "), parts[fact]]  # type: ignore[operator]
        text = pl.when(pl.col("signal") == signal).then(pl.concat_str([*pieces, pl.lit("}")])).otherwise(text)
    return text


_RAISED_SCHEMA = {"id": pl.Int64, "open_key": pl.Utf8, "severity_before": pl.Utf8}
_QUIET_SCHEMA = {"subject_kind": pl.Utf8, "subject_id": pl.Int64, "signal": pl.Utf8}


def _open_alerts(uow: UnitOfWork, who: Principal) -> pl.DataFrame:
    """id, open_key, severity_before of the bank's open alerts (one statement, read as columns), in the
    caller's unit of work."""
    return read_frame(uow.session, "SELECT id, open_key, severity FROM early_warning_alerts "
                                   "WHERE tenant_id = :tenant AND status = :open", {"tenant": who.tenant_id,
                                                                                    "open": OPEN}, _RAISED_SCHEMA)


def _quiet_alerts(uow: UnitOfWork, who: Principal, since: datetime) -> pl.DataFrame:
    """The keys (open_key) of alerts acted on or dismissed since `since`: their signals stay quiet."""
    quiet = read_frame(uow.session, "SELECT subject_kind, subject_id, signal FROM early_warning_alerts "
                                    "WHERE tenant_id = :tenant AND status <> :open AND updated_at >= :since",
                       {"tenant": who.tenant_id, "open": OPEN, "since": since}, _QUIET_SCHEMA)
    return quiet.select(_key_expr().alias("open_key")).unique()


def _key_expr() -> pl.Expr:
    return pl.concat_str([pl.col("subject_kind"), pl.col("subject_id").cast(pl.Utf8), pl.col("signal")],
                         separator=":")


_ALERT_SCHEMA: dict[str, Any] = {
    "tenant_id": pl.Int64, "subject_kind": pl.Utf8, "subject_id": pl.Int64, "customer_id": pl.Int64,
    "signal": pl.Utf8, "severity": pl.Utf8, "rule_version": pl.Utf8, "inputs": pl.Utf8, "status": pl.Utf8,
    "open_key": pl.Utf8, "raised_on": pl.Date, "last_seen_on": pl.Date, "created_at": pl.Datetime("us"),
    "updated_at": pl.Datetime("us")}


def _insert_alerts(s: Session, inserts: list[dict[str, Any]]) -> None:
    """The new alerts in bulk (COPY on PostgreSQL, one executemany on SQLite), stored as the ORM stores them
    (inputs as their JSON text, timestamps in UTC)."""
    if not inserts:
        return
    rows = {name: [r[name] for r in inserts] for name in _ALERT_SCHEMA}
    rows["inputs"] = [json_text(v) for v in rows["inputs"]]
    for name in ("created_at", "updated_at"):
        rows[name] = [v.astimezone(UTC).replace(tzinfo=None) for v in rows[name]]
    write_frame(s, EarlyWarningAlertRow.__tablename__, pl.DataFrame(rows, schema=_ALERT_SCHEMA))


def _rank(column: str) -> pl.Expr:
    return pl.col(column).replace_strict(list(_RANK), list(_RANK.values()), default=0, return_dtype=pl.Int32)


@dataclass(frozen=True)
class AlertPlan:
    """What a scan does to the queue: new alerts (rows of `_ALERT_SCHEMA` less the stamps), open ones raised
    in severity (id, severity, inputs) and open ones merely seen again (ids)."""

    inserts: pl.DataFrame
    escalations: pl.DataFrame
    seen: list[int]


def plan_alerts(found: pl.DataFrame, book: pl.DataFrame, open_alerts: pl.DataFrame, quiet: pl.DataFrame
                ) -> AlertPlan:
    """Set-based de-duplication of the raised signals (`rules.raised`) against the bank's open alerts (id,
    open_key, severity_before) and the quiet keys (open_key): a signal already open is escalated when its
    severity rose, else seen again; a quiet one is skipped; the rest are new, in the order they were raised."""
    key = ["subject_kind", "subject_id"]
    raised = (found.with_row_index("order").join(book.select(*key, *rules.FACTS), on=key, how="left")
              .sort("order"))
    raised = raised.with_columns(inputs_text(raised).alias("inputs"), _key_expr().alias("open_key")).select(
        "order", *key, "customer_id", "signal", "severity", "inputs", "open_key")
    matched = raised.join(open_alerts, on="open_key", how="inner").sort("order")
    worse = _rank("severity") > _rank("severity_before")
    escalations = matched.filter(worse).select("id", "severity", "inputs")
    seen = matched.filter(~worse).get_column("id").to_list()
    fresh = (raised.join(open_alerts.select("open_key"), on="open_key", how="anti")
             .join(quiet, on="open_key", how="anti").sort("order").drop("order"))
    return AlertPlan(fresh, escalations, seen)


def _escalate(s: Session, who: Principal, escalations: pl.DataFrame, version: str, now: datetime, on: date) -> None:
    """Open alerts seen worse: their severity, inputs and rules, in one executemany."""
    if escalations.height == 0:
        return
    table = EarlyWarningAlertRow.__table__
    s.execute(table.update().where(table.c.tenant_id == who.tenant_id, table.c.id == bindparam("alert_id"))  # type: ignore[attr-defined]
              .values(severity=bindparam("new_severity"), inputs=bindparam("new_inputs", type_=Text()),
                      rule_version=version, updated_at=now, last_seen_on=on),
              [{"alert_id": i, "new_severity": sev, "new_inputs": text} for i, sev, text in escalations.iter_rows()])


def scan(uow: UnitOfWork, who: Principal, *, keep_scores: bool = True) -> ScanRun:
    """Score and scan the whole active book on the bank's business date with its published early-warning
    rules: new alerts for signals not already open (or quiet), open ones seen again updated. With
    `keep_scores` (and the right to), the month's behaviour scores are kept too (the monthly score)."""
    _may_act(who)
    with uow:
        on = business_date(uow.session, who.tenant_id)
        one_writer = uow.session.get_bind().dialect.name == "sqlite"
    doc = rules_in_force(uow, who)
    version = policy_hash(doc)
    book = current_book(uow, who, on)
    keep = keep_scores and who.can(P.MANAGE_CREDIT_LINES) and book.height > 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="early-warning-scores") as pool:
        # the month's scores are written in their own unit of work while the rules judge the book (and, where the
        # database takes two writers at once, while the alerts are planned and written); they are kept before the
        # alerts are recorded, and a failure to keep them records no alert
        kept = pool.submit(store_month, uow.fresh(), who, on, book) if keep else None
        assessed = rules.assess_book(doc, book.select(list(rules.BOOK_SCHEMA)))
        found = rules.raised(assessed)
        if kept is not None and one_writer:
            kept.result()
        return _record_scan(uow, who, on, version, book, assessed, found, kept)


def _record_scan(uow: UnitOfWork, who: Principal, on: date, version: str, book: pl.DataFrame,
                 assessed: pl.DataFrame, found: pl.DataFrame, kept: Future[int] | None) -> ScanRun:
    """The scan's alerts and its audit record in one unit of work, committed once the month's scores (`kept`,
    being written) are kept."""
    now = utcnow()
    with uow:
        s = uow.session
        quiet = _quiet_alerts(uow, who, now - timedelta(days=QUIET_DAYS))
        plan = plan_alerts(found, book, _open_alerts(uow, who), quiet)
        _escalate(s, who, plan.escalations, version, now, on)
        for start in range(0, len(plan.seen), _SEEN_CHUNK):
            s.execute(update(EarlyWarningAlertRow).where(
                EarlyWarningAlertRow.tenant_id == who.tenant_id,
                EarlyWarningAlertRow.id.in_(plan.seen[start:start + _SEEN_CHUNK])).values(last_seen_on=on)
                .execution_options(synchronize_session=False))
        new, escalated = plan.inserts.height, plan.escalations.height
        by_signal = rules.count_by_signal(assessed)
        stamp = now.astimezone(UTC).replace(tzinfo=None)
        inserts = plan.inserts.select(
            pl.lit(who.tenant_id, dtype=pl.Int64).alias("tenant_id"), pl.col("subject_kind"), pl.col("subject_id"),
            pl.col("customer_id").cast(pl.Int64), pl.col("signal"), pl.col("severity"),
            pl.lit(version).alias("rule_version"), pl.col("inputs"), pl.lit(OPEN).alias("status"), pl.col("open_key"),
            pl.lit(on).alias("raised_on"), pl.lit(on).alias("last_seen_on"),
            pl.lit(stamp, dtype=pl.Datetime("us")).alias("created_at"),
            pl.lit(stamp, dtype=pl.Datetime("us")).alias("updated_at"))
        try:
            write_frame(s, EarlyWarningAlertRow.__tablename__, inserts)
            if kept is not None:
                kept.result()
            audit.record(s, who, "early_warning.scan", "early_warning", 0,
                         after={"business_date": on.isoformat(), "rule_version": version, "subjects": book.height,
                                "raised": found.height, "new": new, "escalated": escalated})
            uow.commit()
        except IntegrityError:
            raise Conflict("early warning: another scan of the bank ran at the same time; run it again") from None
    return ScanRun(on, version, book.height, found.height, new, escalated, by_signal, kept is not None)


# --- the queue ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionView:
    id: int
    alert_id: int
    action: str
    actor: str
    at: datetime
    note: str
    result: dict[str, Any]

    @classmethod
    def of(cls, r: EarlyWarningActionRow) -> ActionView:
        return cls(r.id, r.alert_id, r.action, r.actor, r.at, r.note, dict(r.result or {}))


@dataclass(frozen=True)
class AlertView:
    id: int
    subject_kind: str
    subject_id: int
    customer_id: int | None
    customer_name: str
    signal: str
    severity: str
    rule_version: str
    inputs: dict[str, Any]
    status: str
    raised_on: date
    last_seen_on: date
    actions: tuple[ActionView, ...] = ()


def _mine(uow: UnitOfWork, who: Principal, customer_ids: set[int]) -> set[int]:
    """Of these customers, the ones an officer serves: assigned to them, or unassigned in their branch."""
    if not customer_ids:
        return set()
    branch = staff_branch(uow, who)
    return {c.id for c in parties.all_customers(uow, who) if c.id in customer_ids and (
        c.officer_user_id == who.user_id or (c.officer_user_id is None and (not branch or c.branch == branch)))}


def _officer_only(who: Principal) -> bool:
    return not (who.can(P.MANAGE_CREDIT_LINES) or who.can(P.EDIT_POLICIES))


def _views(uow: UnitOfWork, who: Principal, rows: list[EarlyWarningAlertRow],
           actions: dict[int, list[ActionView]] | None = None) -> list[AlertView]:
    ids = [r.customer_id for r in rows if r.customer_id is not None]
    names = parties.customer_names(uow, who, ids) if ids else {}
    return [AlertView(r.id, r.subject_kind, r.subject_id, r.customer_id, names.get(r.customer_id or 0, ""),
                      r.signal, r.severity, r.rule_version, dict(r.inputs or {}), r.status, r.raised_on,
                      r.last_seen_on, tuple((actions or {}).get(r.id, ()))) for r in rows]


def list_alerts(uow: UnitOfWork, who: Principal, *, status: str | None = OPEN, severity: str | None = None,
                signal: str | None = None, customer_id: int | None = None, limit: int = 200) -> list[AlertView]:
    """The queue: alerts of the caller's bank (an officer: of their customers), highest severity first, then
    the oldest."""
    _may_see(who)
    if status is not None and status not in STATUSES:
        raise ValidationError(f"status: one of {', '.join(STATUSES)}", field="status")
    if severity is not None and severity not in rules.SEVERITIES:
        raise ValidationError(f"severity: one of {', '.join(rules.SEVERITIES)}", field="severity")
    if signal is not None and signal not in rules.SIGNALS:
        raise ValidationError(f"signal: one of {', '.join(rules.SIGNALS)}", field="signal")
    if not 1 <= limit <= 500:
        raise ValidationError("limit: from 1 to 500", field="limit")
    with uow:
        q = select(EarlyWarningAlertRow).where(EarlyWarningAlertRow.tenant_id == who.tenant_id)
        if status is not None:
            q = q.where(EarlyWarningAlertRow.status == status)
        if severity is not None:
            q = q.where(EarlyWarningAlertRow.severity == severity)
        if signal is not None:
            q = q.where(EarlyWarningAlertRow.signal == signal)
        if customer_id is not None:
            q = q.where(EarlyWarningAlertRow.customer_id == customer_id)
        if _officer_only(who):
            customers = {int(c) for c in uow.session.execute(
                select(EarlyWarningAlertRow.customer_id).distinct().where(
                    EarlyWarningAlertRow.tenant_id == who.tenant_id,
                    EarlyWarningAlertRow.customer_id.is_not(None))).scalars() if c is not None}
            q = q.where(EarlyWarningAlertRow.customer_id.in_(sorted(_mine(uow, who, customers))))
        rank = case(*((EarlyWarningAlertRow.severity == sev, -n) for sev, n in _RANK.items()), else_=0)
        rows = list(uow.session.execute(q.order_by(rank, EarlyWarningAlertRow.id).limit(limit)).scalars())
    return _views(uow, who, rows)


def count_open(uow: UnitOfWork, who: Principal) -> dict[str, int]:
    """Open alerts of the bank by severity."""
    _may_see(who)
    with uow:
        counts = dict(uow.session.execute(select(EarlyWarningAlertRow.severity, func.count()).where(
            EarlyWarningAlertRow.tenant_id == who.tenant_id, EarlyWarningAlertRow.status == OPEN)
            .group_by(EarlyWarningAlertRow.severity)).tuples().all())
    return {s: int(counts.get(s, 0)) for s in rules.SEVERITIES}


def _alert_row(uow: UnitOfWork, who: Principal, alert_id: int) -> EarlyWarningAlertRow:
    row = uow.session.get(EarlyWarningAlertRow, alert_id)
    if row is None or row.tenant_id != who.tenant_id:
        raise NotFound(f"early-warning alert {alert_id} not found")
    if _officer_only(who) and (row.customer_id is None or row.customer_id not in _mine(uow, who, {row.customer_id})):
        raise NotFound(f"early-warning alert {alert_id} not found")
    return row


def get_alert(uow: UnitOfWork, who: Principal, alert_id: int) -> AlertView:
    """One alert with the actions taken on it."""
    _may_see(who)
    with uow:
        row = _alert_row(uow, who, alert_id)
        actions = [ActionView.of(a) for a in uow.session.execute(select(EarlyWarningActionRow).where(
            EarlyWarningActionRow.tenant_id == who.tenant_id, EarlyWarningActionRow.alert_id == alert_id)
            .order_by(EarlyWarningActionRow.id)).scalars()]
        return _views(uow, who, [row], {alert_id: actions})[0]


# --- actions -----------------------------------------------------------------------------------------------


def _line(uow: UnitOfWork, who: Principal, row: EarlyWarningAlertRow, action: str) -> tuple[Decimal, Decimal]:
    """(limit, drawn) of the alert's credit line."""
    if row.subject_kind != "line":
        raise ValidationError(f"action: {action} applies to a credit line; this alert is about a loan",
                              field="action")
    line = next((x for x in loans.open_credit_lines(uow, who) if x.id == row.subject_id), None)
    if line is None:
        raise Conflict(f"credit line {row.subject_id} is not open", field="action")
    return line.limit, loans.drawn_by_credit_line(uow, who).get(line.id, Decimal(0))


def _limit_change(uow: UnitOfWork, who: Principal, row: EarlyWarningAlertRow, action: str, new_limit: Decimal,
                  current: Decimal, drawn: Decimal, note: str) -> dict[str, Any]:
    """Freeze or reduce through the limit desk: applied at once by an approver within authority, else a
    pending change a second person decides on the desk."""
    reasons = (f"EW_{row.signal.upper()}",)
    change = ProposedChange(row.subject_id, row.customer_id, "freeze" if action == "freeze" else "decrease",
                            "approve", current, new_limit, reasons)
    facts = {"early_warning.alert_id": row.id, "early_warning.signal": row.signal,
             "early_warning.severity": row.severity, **{f"early_warning.{k}": v for k, v in (row.inputs or {}).items()},
             "line.drawn": str(drawn), "line.limit": str(current), "note": note}
    applies = who.can(P.MANAGE_CREDIT_LINES) and (
        action == "freeze" or current - new_limit <= limit_authority(uow, who).of(who))
    if not applies:
        change_id = record_limit_change(uow, who, change, facts, row.rule_version, "pending")
        return {"limit_change_id": change_id, "status": "pending", "new_limit": str(new_limit)}
    change_credit_line_limit(uow, who, row.subject_id, new_limit,
                             f"early warning {row.signal} ({row.severity}): {action}: {note}")
    change_id = record_limit_change(uow, who, change, facts, row.rule_version, "applied", audited=False)
    return {"limit_change_id": change_id, "status": "applied", "new_limit": str(new_limit)}


def act(uow: UnitOfWork, who: Principal, alert_id: int, action: str, note: str, *,
        new_limit: Decimal | None = None, due_on: date | None = None) -> ActionView:
    """Take an action on an open alert (freeze | reduce_limit | visit | collections_case | dismiss), with why;
    the alert leaves the queue (acted or dismissed) and its subject's signal stays quiet for `QUIET_DAYS`."""
    _may_act(who)
    if action not in ACTIONS:
        raise ValidationError(f"action: one of {', '.join(ACTIONS)}", field="action")
    note = (note or "").strip()
    if not note or len(note) > 1000:
        raise ValidationError("note: say why, in at most 1000 characters", field="note")
    with uow:  # the action's effect, the alert's status and the record land together
        s = uow.session
        row = _alert_row(uow, who, alert_id)
        if row.status != OPEN:
            raise Conflict(f"early-warning alert {alert_id} is already {row.status}", field="action")
        on = business_date(s, who.tenant_id)
        result = _effect(uow, who, row, action, note, new_limit, due_on, on)
        before = {"status": row.status}
        row.status = DISMISSED if action == "dismiss" else ACTED
        row.open_key, row.updated_at = None, utcnow()
        record = EarlyWarningActionRow(tenant_id=who.tenant_id, alert_id=alert_id, action=action,
                                       actor=who.username, at=utcnow(), note=note, result=result)
        s.add(record)
        s.flush()
        audit.record(s, who, f"early_warning.{action}", "early_warning_alert", alert_id, before=before,
                     after={"status": row.status, "action": action, **result}, reason=note[:500])
        view = ActionView.of(record)
        uow.commit()
    return view


def _effect(uow: UnitOfWork, who: Principal, row: EarlyWarningAlertRow, action: str, note: str,
            new_limit: Decimal | None, due_on: date | None, on: date) -> dict[str, Any]:
    """Do what the action asks, in the caller's unit of work; what it led to."""
    if action == "freeze":
        current, drawn = _line(uow, who, row, action)
        return _limit_change(uow, who, row, action, min(current, round_half_up(drawn)), current, drawn, note)
    if action == "reduce_limit":
        current, drawn = _line(uow, who, row, action)
        if new_limit is None:
            raise ValidationError("new_limit: the reduced limit is required", field="new_limit")
        if not new_limit.is_finite() or new_limit < 0 or new_limit != new_limit.quantize(Decimal("0.01")):
            raise ValidationError("new_limit: a non-negative amount with at most 2 decimal places", field="new_limit")
        if new_limit >= current:
            raise ValidationError(f"new_limit: must be below the current limit {current:.2f}", field="new_limit")
        return _limit_change(uow, who, row, action, new_limit, current, drawn, note)
    if action == "visit":
        if row.customer_id is None:
            raise ValidationError("action: the alert names no customer to visit", field="action")
        due = due_on or on + timedelta(days=VISIT_DAYS)
        if due < on:
            raise ValidationError("due_on: the visit cannot be due before the business date", field="due_on")
        officer = parties.customer(uow, who, row.customer_id).officer_user_id
        visit = create_visit(uow, who, row.customer_id, due, f"{row.signal} ({row.severity}): {note}",
                             source="early_warning", source_id=row.id, officer_user_id=officer)
        return {"visit_id": visit.id, "officer_user_id": officer, "due_on": due.isoformat()}
    if action == "collections_case":
        cases = collecting.open_case_early(
            uow, who, loan_id=row.subject_id if row.subject_kind == "loan" else None,
            credit_line_id=row.subject_id if row.subject_kind == "line" else None,
            reason=f"early warning {row.signal} ({row.severity}): {note}")
        return {"case_ids": [c.id for c in cases]}
    return {}


# --- visit tasks -------------------------------------------------------------------------------------------

VISIT_SOURCES = ("early_warning", "marketing", "officer", "collections")
VISIT_STATUSES = ("open", "done", "cancelled")


@dataclass(frozen=True)
class VisitView:
    id: int
    officer_user_id: int | None
    customer_id: int
    customer_name: str
    due_on: date
    reason: str
    source: str
    source_id: int | None
    status: str
    outcome: str | None
    created_by: str
    done_by: str | None
    done_at: datetime | None


def _visit_view(r: VisitTaskRow, name: str = "") -> VisitView:
    return VisitView(r.id, r.officer_user_id, r.customer_id, name, r.due_on, r.reason, r.source, r.source_id,
                     r.status, r.outcome, r.created_by, r.done_by, r.done_at)


def create_visit(uow: UnitOfWork, who: Principal, customer_id: int, due_on: date, reason: str, *, source: str,
                 source_id: int | None = None, officer_user_id: int | None = None) -> VisitView:
    """A visit task for the customer's officer (走访任务), from an alert, a campaign or by hand; audited."""
    if source not in VISIT_SOURCES:
        raise ValidationError(f"source: one of {', '.join(VISIT_SOURCES)}", field="source")
    reason = reason.strip()
    if not reason or len(reason) > 2000:
        raise ValidationError("reason: say why, in at most 2000 characters", field="reason")
    with uow:
        s = uow.session
        if not parties.of_this_bank(uow, who, [customer_id]):
            raise NotFound(f"customer {customer_id} not found")
        row = VisitTaskRow(tenant_id=who.tenant_id, officer_user_id=officer_user_id, customer_id=customer_id,
                           due_on=due_on, reason=reason, source=source, source_id=source_id, status="open",
                           created_by=who.username, created_at=utcnow())
        s.add(row)
        s.flush()
        audit.record(s, who, "visit.create", "visit_task", row.id,
                     after={"customer_id": customer_id, "officer_user_id": officer_user_id,
                            "due_on": due_on.isoformat(), "source": source})
        view = _visit_view(row)
        uow.commit()
    return view


def _may_see_visits(who: Principal) -> None:
    if not (who.can(P.RECOMMEND) or who.can(P.MANAGE_CREDIT_LINES) or who.can(P.EDIT_POLICIES)):
        raise PermissionDenied("only a loan officer, an approver or the risk team sees visit tasks")


def list_visits(uow: UnitOfWork, who: Principal, *, status: str | None = "open", mine: bool = False,
                limit: int = 200) -> list[VisitView]:
    """Visit tasks of the bank, soonest due first: an officer sees the visits assigned to them (`mine`: anyone
    sees only their own)."""
    _may_see_visits(who)
    if status is not None and status not in VISIT_STATUSES:
        raise ValidationError(f"status: one of {', '.join(VISIT_STATUSES)}", field="status")
    if not 1 <= limit <= 500:
        raise ValidationError("limit: from 1 to 500", field="limit")
    with uow:
        q = select(VisitTaskRow).where(VisitTaskRow.tenant_id == who.tenant_id)
        if status is not None:
            q = q.where(VisitTaskRow.status == status)
        if mine or _officer_only(who):
            q = q.where(VisitTaskRow.officer_user_id == who.user_id)
        rows = list(uow.session.execute(q.order_by(VisitTaskRow.due_on, VisitTaskRow.id).limit(limit)).scalars())
    names = parties.customer_names(uow, who, [r.customer_id for r in rows]) if rows else {}
    return [_visit_view(r, names.get(r.customer_id, "")) for r in rows]


def record_visit_outcome(uow: UnitOfWork, who: Principal, visit_id: int, outcome: str,
                         status: str = "done") -> VisitView:
    """The officer who was asked (or an approver, or the risk team) records what the visit found, or cancels
    it with why."""
    _may_see_visits(who)
    if status not in ("done", "cancelled"):
        raise ValidationError("status: done or cancelled", field="status")
    outcome = (outcome or "").strip()
    if not outcome or len(outcome) > 2000:
        raise ValidationError("outcome: say what the visit found, in at most 2000 characters", field="outcome")
    with uow:
        s = uow.session
        row = s.get(VisitTaskRow, visit_id)
        if row is None or row.tenant_id != who.tenant_id or (
                _officer_only(who) and row.officer_user_id != who.user_id):
            raise NotFound(f"visit {visit_id} not found")
        if row.status != "open":
            raise Conflict(f"visit {visit_id} is already {row.status}", field="status")
        row.status, row.outcome, row.done_by, row.done_at = status, outcome, who.username, utcnow()
        audit.record(s, who, f"visit.{status}", "visit_task", row.id, before={"status": "open"},
                     after={"status": status}, reason=outcome[:500])
        view = _visit_view(row)
        uow.commit()
    return view


def officer_role(who: Principal) -> bool:
    """Whether the caller sees only their own customers' alerts and visits."""
    return _officer_only(who) and who.has_role(Role.CREDIT_OFFICER)
