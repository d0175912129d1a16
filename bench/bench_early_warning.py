"""Early-warning scan figures: the monthly behaviour score and every early-warning signal of a whole active
book (days-past-due transitions, score and its fall, tax sales, merchant turnover, enforcement, bureau overdue,
months drawn to the limit), judged by the shipped early-warning rules, set-based (Polars and the columnar
rule engine).

Run: .venv/bin/python bench/bench_early_warning.py [--loans 1000000] [--instalments 6] [--seed 7]
Prints loans/s for the signals with the behaviour score, for the rules, and for the whole scan (target:
>= 100,000 loans/s), the alerts raised by signal and severity, and checks sampled rows against the rule
engine row by row.

--db: the real scan end to end, as the worker's early-warning job runs it (`scan(uow, worker)`), on a scratch
SQLite database seeded (bulk executemany, timed apart) with the book as it stands on the business date: open
credit lines with their drawdowns and loans outside a line with their instalments (about 6% of subjects
delinquent), last month's stored behaviour scores (computed by the scorecard on the book as it stood then),
consents and provider answers (bureau and enforcement with the pull before, tax and merchant) of a share of
the customers, and the shipped early-warning rules published maker-checker. Prints loans/s of the whole scan
and of its parts (reading the book, its instalment totals in ranges of loans, last month's scores and the
provider answers, all at once, on SQLite from 100,000 loans each in a process of its own; signals and
behaviour score; rules; writing the month's scores while the rules run, the alerts and the audit record), the
scan process's peak memory and the alerts raised; --profile prints the scan's cProfile (cumulative and own time).
--rescan runs the scan a second time on the same business date (the daily scan after the month's first: the
month's scores are kept and only changed ones are written; the alerts are open and seen again).
--record PATH writes the month's scores and the alerts after the scan(s) to PATH-scores.parquet and
PATH-alerts.parquet (every column as text, sorted), so two versions of the scan can be compared exactly.
--backend postgresql runs it on a new scratch database on MICROLEND_BENCH_PG (dropped afterwards).
Run: .venv/bin/python bench/bench_early_warning.py --db [--loans 1000000] [--answered 0.1] [--profile] [--rescan]
     [--backend sqlite|postgresql] [--record PATH] [--keep-seed]
--keep-seed: seed once (named by the schema, the seed's arguments and layout) and run on a copy of it after.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from microlend.decisioning import behaviour
from microlend.decisioning import early_warning as rules
from microlend.decisioning.behaviour_scores import factor_bins, factor_values, scorecard_definition
from microlend.decisioning.policy import compile_policy
from microlend.origination.behaviour_scoring import scores_of
from microlend.origination.early_warning import book_signals

sys.path.insert(0, str(Path(__file__).resolve().parent))

ON = date(2026, 11, 30)


def generate(n: int, per_subject: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Seeded subjects (40% credit lines, 60% loans), their instalments, last month's scores and the external
    facts of a third of the customers."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n + 1, dtype=np.int64)
    kinds = np.where(rng.random(n) < 0.4, "line", "loan")
    opened = np.datetime64(ON) - rng.integers(0, 1500, n).astype("timedelta64[D]")
    limits = rng.integers(10_000, 1_000_000, n) * 100
    dpd = np.where(rng.random(n) < 0.06, rng.integers(1, 120, n), 0).astype(np.int32)
    subjects = pl.DataFrame({"subject_id": ids, "kind": kinds, "customer_id": ids, "limit_cents": limits,
                             "opened_on": opened, "current_dpd": dpd}, schema=behaviour.SUBJECT_SCHEMA)
    m = n * per_subject
    owner = np.repeat(ids, per_subject)
    disbursed = np.datetime64(ON - timedelta(days=400)) + rng.integers(0, 380, m).astype("timedelta64[D]")
    due = disbursed + rng.integers(20, 370, m).astype("timedelta64[D]")
    late = np.where(rng.random(m) < 0.1, rng.integers(1, 60, m), 0).astype("timedelta64[D]")
    paid = due + late
    unpaid = (paid > np.datetime64(ON)) | (rng.random(m) < 0.01)
    heavy = np.repeat(rng.random(n) < 0.05, per_subject)  # a few lines drawn to the full
    principal = np.where(heavy, np.repeat(limits, per_subject) // per_subject,
                         np.repeat(limits, per_subject) // (per_subject * 2)).astype(np.int64)
    instalments = pl.DataFrame({"kind": np.repeat(kinds, per_subject), "subject_id": owner,
                                "disbursed_on": disbursed, "due": due, "paid_on": paid, "principal_cents": principal},
                               schema={"kind": pl.Utf8, **behaviour.INSTALMENT_SCHEMA})
    instalments = instalments.with_columns(
        pl.when(pl.Series(unpaid) | pl.Series(heavy)).then(None).otherwise(pl.col("paid_on")).alias("paid_on"))
    before = pl.DataFrame({"subject_kind": kinds, "subject_id": ids,
                           "score_before": rng.integers(520, 720, n).astype(np.int32),
                           "dpd_before": np.where(rng.random(n) < 0.03, rng.integers(1, 40, n), 0).astype(np.int32)})
    known = ids[rng.random(n) < 0.33]
    k = len(known)
    external = pl.DataFrame({
        "customer_id": known,
        "tax.sales_growth": np.where(rng.random(k) < 0.9, rng.normal(0.05, 0.25, k), np.nan),
        "merchant.flow_trend": np.where(rng.random(k) < 0.8, rng.normal(0.0, 0.2, k), np.nan),
        "enforcement.cases_open": (rng.random(k) < 0.02).astype(np.int32),
        "enforcement.dishonest": rng.random(k) < 0.005,
        "bureau.overdue_now": np.where(rng.random(k) < 0.03, rng.integers(1, 3, k), 0).astype(np.int32),
    }).with_columns(pl.col("tax.sales_growth").fill_nan(None), pl.col("merchant.flow_trend").fill_nan(None))
    return subjects, instalments, before, external


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--instalments", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", action="store_true", help="the real scan end to end on a seeded SQLite database")
    parser.add_argument("--answered", type=float, default=0.1,
                        help="--db: share of customers with provider answers and consents")
    parser.add_argument("--profile", action="store_true", help="--db: cProfile the scan (to stderr)")
    parser.add_argument("--rescan", action="store_true",
                        help="--db: run the scan a second time in the month (the daily scan after the month's first)")
    parser.add_argument("--record", default="",
                        help="--db: write the month's scores and the alerts to RECORD-scores.parquet and "
                             "RECORD-alerts.parquet (sorted, as text) after the scan(s), to compare versions")
    parser.add_argument("--keep-seed", action="store_true",
                        help="--db: seed once and keep it (a SQLite file under the temporary directory, or a "
                             "PostgreSQL template database), then run every time on a copy of it")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite",
                        help="--db: the scratch database (postgresql: a new database on MICROLEND_BENCH_PG)")
    args = parser.parse_args()
    if args.db:
        db_main(args)
        return
    subjects, instalments, before, external = generate(args.loans, args.instalments, args.seed)
    print(f"{args.loans:,} active loans and lines, {instalments.height:,} instalments (seed {args.seed})")
    doc = rules.default_early_warning()
    warm = book_signals(subjects.head(1000), instalments.head(6000), ON, before=before, external=external)
    rules.assess_book(doc, warm.select(list(rules.BOOK_SCHEMA)))
    t0, c0 = time.perf_counter(), time.process_time()
    book = book_signals(subjects, instalments, ON, before=before, external=external)
    t1, c1 = time.perf_counter(), time.process_time()
    assessed = rules.assess_book(doc, book.select(list(rules.BOOK_SCHEMA)))
    found = rules.raised(assessed)
    t2, c2 = time.perf_counter(), time.process_time()
    n = args.loans
    print(f"load average while it ran: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall time suffers when "
          "others share them; CPU seconds are what the scan itself used)")
    print(f"signals and behaviour score: {t1 - t0:.3f} s wall {c1 - c0:.3f} s CPU  {n / (t1 - t0):,.0f} loans/s")
    print(f"early-warning rules:         {t2 - t1:.3f} s wall {c2 - c1:.3f} s CPU  {n / (t2 - t1):,.0f} loans/s")
    print(f"whole scan:                  {t2 - t0:.3f} s wall {c2 - c0:.3f} s CPU  {n / (t2 - t0):,.0f} loans/s, "
          f"{n / (c2 - c0):,.0f} loans per CPU second (target >= 100,000 loans/s)")
    print(f"alerts raised: {found.height:,}")
    for signal, counts in rules.count_by_signal(assessed).items():
        print(f"  {signal:20s} {counts}")
    compiled = compile_policy(doc)
    sample = assessed.sample(500, seed=args.seed)
    differ = 0
    for r in sample.iter_rows(named=True):
        facts = rules.EarlyWarningInput.from_canonical({
            "subject": {"kind": r["subject_kind"]},
            "dpd": {"now": r["dpd.now"], "before": r["dpd.before"]},
            "score": {"value": r["score.value"], "drop": r["score.drop"]},
            "tax": {"sales_growth": None if r["tax.sales_growth"] is None else repr(r["tax.sales_growth"])},
            "merchant": {"flow_trend": None if r["merchant.flow_trend"] is None else repr(r["merchant.flow_trend"])},
            "enforcement": {"cases_open": r["enforcement.cases_open"], "dishonest": r["enforcement.dishonest"]},
            "bureau": {"overdue_now": r["bureau.overdue_now"]},
            "line": {"months_at_limit": r["line.months_at_limit"]},
        })
        differ += rules.assess_one(compiled, facts) != {s: r[s] for s in rules.SIGNALS}
    print(f"reference check on 500 sampled loans (rule engine row by row): {differ} differ")


# --- --db: the real scan end to end on a seeded SQLite database ----------------------------------------------

PREVIOUS = date(2026, 10, 31)  # the month-end of last month's stored behaviour scores
STORAGE = 100  # cents -> stored ten-thousandths (the Amount column)
STAMP = "2026-11-30 00:00:00.000000"
#: how the seed lays its rows out, named into a kept seed's name with the schema (`--keep-seed`)
SEED_LAYOUT = "early-warning book v1"


def _iso(days: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return days.astype("datetime64[D]").astype(str)


def seed_book(n: int, seed: int, answered: float) -> dict[str, Any]:
    """N subjects (one customer each): 35% open credit lines with one drawdown (a bullet due 180 days after
    it), 65% amortising loans (3 to 24 monthly instalments, still running on the business date). About 6% of
    the subjects are delinquent (an instalment due and unpaid since a random due date); 10% of the borrowers
    pay a quarter of their instalments 1-10 days late, the others on time or a few days early. `answered` of
    the customers have gateway answers within 90 days (bureau and enforcement: the newest and the previous
    pull; tax and merchant: the newest) and both consents."""
    rng = np.random.default_rng(seed)
    on = np.datetime64(ON, "D")
    ids = np.arange(1, n + 1, dtype=np.int64)
    is_line = rng.random(n) < 0.35
    line_of = np.where(is_line, np.cumsum(is_line), 0)
    limit = rng.integers(10_000, 500_000, n) * 100  # cents
    term = np.where(is_line, 1, rng.choice(np.array([3, 6, 12, 24]), n, p=[0.15, 0.3, 0.4, 0.15]))
    # a line's drawdown: most fall due later; a delinquent one's bullet fell due 1-120 days ago
    bad = rng.random(n) < 0.065
    span = np.where(is_line, 180, term * 30)
    age = (rng.random(n) * (span - 1)).astype(np.int64) + 1
    age = np.where(is_line & bad, 180 + rng.integers(1, 121, n), age)
    disbursed = on - age.astype("timedelta64[D]")
    opened = disbursed - np.where(is_line, rng.integers(0, 700, n), 0).astype("timedelta64[D]")
    drawn = np.where(rng.random(n) < 0.05, limit, (limit * rng.uniform(0.1, 0.9, n)).astype(np.int64))
    principal = np.where(is_line, drawn, limit)
    owner = np.repeat(ids - 1, term)
    number = np.arange(len(owner)) - np.repeat(np.cumsum(term) - term, term) + 1
    due = disbursed[owner] + np.where(is_line[owner], 180, 30 * number).astype("timedelta64[D]")
    share = principal // term
    inst_principal = np.where(number == term[owner], principal[owner] - share[owner] * (term[owner] - 1),
                              share[owner])
    fallen = due < on
    # the first missed instalment of a delinquent subject: a random one of those fallen due
    fallen_count = np.bincount(owner, weights=fallen, minlength=n).astype(np.int64)
    delinquent = bad & (fallen_count > 0)
    first_missed = np.where(delinquent, rng.integers(0, np.maximum(fallen_count, 1)) + 1, 10**6)
    missed = fallen & (number >= first_missed[owner])
    paid = fallen & ~missed
    sometimes_late = (rng.random(n) < 0.1)[owner] & (rng.random(len(owner)) < 0.25)
    late = np.where(sometimes_late, rng.integers(1, 11, len(owner)), -rng.integers(0, 4, len(owner)))
    paid_on = np.minimum(due + late.astype("timedelta64[D]"), on)
    miss_due = np.full(n, on)
    np.minimum.at(miss_due, owner[missed], due[missed])
    dpd = np.where(delinquent, (on - miss_due).astype(np.int64), 0)
    maturity = np.full(n, on)
    np.maximum.at(maturity, owner, due)
    return {"n": n, "ids": ids, "is_line": is_line, "line_of": line_of, "limit": limit, "term": term,
            "disbursed": disbursed, "opened": opened, "principal": principal, "dpd": dpd, "maturity": maturity,
            "inst": {"owner": owner, "number": number, "due": due, "principal": inst_principal, "paid": paid,
                     "missed": missed, "paid_on": paid_on},
            "answered": ids[rng.random(n) < answered], "rng": rng}


def previous_scores(book: dict[str, Any]) -> pl.DataFrame:
    """Last month's stored scores, computed by the scorecard itself as of the previous month-end from the book
    as it stood then (instalments paid after it unpaid then; days past due 30 fewer), kept compactly as the
    monthly run keeps them (days past due, factor bins and values; the scorecard once, on the run)."""
    prev = np.datetime64(PREVIOUS, "D")
    inst = book["inst"]
    kinds = np.where(book["is_line"], "line", "loan")
    subject = np.where(book["is_line"], book["line_of"], book["ids"])
    then = book["disbursed"] <= prev
    subjects = pl.DataFrame({"subject_id": subject[then], "kind": kinds[then], "customer_id": book["ids"][then],
                             "limit_cents": book["limit"][then], "opened_on": book["opened"][then],
                             "current_dpd": np.maximum(book["dpd"][then] - 30, 0).astype(np.int32)},
                            schema=behaviour.SUBJECT_SCHEMA)
    owner = inst["owner"]
    keep = then[owner]
    paid_then = inst["paid"] & (inst["paid_on"] <= prev)
    instalments = pl.DataFrame({"kind": kinds[owner][keep], "subject_id": subject[owner][keep],
                                "disbursed_on": book["disbursed"][owner][keep], "due": inst["due"][keep],
                                "paid_on": np.where(paid_then, inst["paid_on"], np.datetime64("NaT"))[keep],
                                "principal_cents": inst["principal"][keep]},
                               schema={"kind": pl.Utf8, **behaviour.INSTALMENT_SCHEMA})
    scored = scores_of(subjects, instalments, PREVIOUS)
    return scored.select("kind", "subject_id", "customer_id", "score", "band", pl.col("current_dpd").cast(pl.Int64),
                         factor_bins(scored).alias("factor_bins"), factor_values(scored).alias("factor_values"))


def _answer_pool(count: int) -> tuple[dict[str, list[str]], dict[str, list[dict[str, Any]]]]:
    """Encrypted provider answers (the sandbox's payloads of `count` businesses), reused across customers, and
    the facts the gateway keeps of each (`answer_facts.facts_of`)."""
    import json

    from microlend.core import crypto
    from microlend.data.answer_facts import facts_of
    from microlend.demo import identities
    from microlend.demo.sandbox.providers import payload

    rng = random.Random(11)
    subjects = [identities.uscc(rng) for _ in range(count)]
    kinds = ("bureau", "tax", "merchant", "enforcement")
    answers = {kind: [payload(kind, s, ON - timedelta(days=10), seed=7, anchor=ON) for s in subjects]
               for kind in kinds}
    return ({kind: [crypto.encrypt(json.dumps(a)) for a in answers[kind]] for kind in kinds},
            {kind: [facts_of(kind, a) for a in answers[kind]] for kind in kinds})


def load_book(url: str, tenant_id: int, book: dict[str, Any]) -> dict[str, int]:
    """Bulk insert (SQLite: executemany in one transaction; PostgreSQL: COPY) customers, lines, loans,
    instalments, last month's scores, consents and provider answers with the facts the gateway keeps of
    each as it records it."""
    n, ids, inst = book["n"], book["ids"], book["inst"]
    postgres = url.startswith("postgresql")
    if postgres:
        import psycopg

        con: Any = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
        cur = con.cursor()
        cur.execute("SELECT code, id FROM servicing_products WHERE tenant_id = %s", (tenant_id,))
        products: dict[Any, Any] = dict(cur.fetchall())
    else:
        import sqlite3

        con = sqlite3.connect(url.removeprefix("sqlite:///"))
        con.execute("PRAGMA foreign_keys=OFF")
        cur = con.cursor()
        products = dict(cur.execute("SELECT code, id FROM servicing_products WHERE tenant_id = ?", (tenant_id,)))
        cur.execute("BEGIN")
    products = {str(k): int(v) for k, v in products.items()}
    counts: dict[str, int] = {}

    def put(table: str, names: list[str], rows: Any) -> None:
        columns = ", ".join(f'"{x}"' for x in names)
        k = 0
        if postgres:
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    k += 1
        else:
            rows = list(rows)
            cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * len(names))})", rows)
            k = len(rows)
        counts[table] = counts.get(table, 0) + k

    put("customers", ["id", "tenant_id", "kind", "name", "id_number_enc", "id_number_index", "id_number_masked",
                      "phone_enc", "phone_index", "phone_masked", "address", "industry", "branch",
                      "marketing_consent", "attributes", "created_at", "updated_at", "version"],
        ((i, tenant_id, "business", f"商户{i}", "-", f"{i:064x}", "9111********0001", "-", f"p{i:063x}",
          "138****0000", "", "", "", 0, "{}", STAMP, STAMP, 1) for i in ids.tolist()))
    line = book["is_line"]
    li = np.flatnonzero(line)
    put("credit_lines", ["id", "tenant_id", "product_id", "customer_id", "limit", "annual_rate", "opened_on",
                         "expires_on", "status", "created_at"],
        zip(book["line_of"][li].tolist(), [tenant_id] * len(li), [products["RV-STD"]] * len(li), ids[li].tolist(),
            (book["limit"][li] * STORAGE).tolist(), ["0.12"] * len(li), _iso(book["opened"][li]).tolist(),
            _iso(book["opened"][li] + np.timedelta64(1095, "D")).tolist(), ["open"] * len(li), [STAMP] * len(li),
            strict=True))
    dpd = book["dpd"]
    bucket = np.select([dpd == 0, dpd <= 30, dpd <= 60, dpd <= 90], ["M0", "M1", "M2", "M3"], "M4+")
    loan_class = np.select([dpd == 0, dpd <= 90], ["normal", "special_mention"], "substandard")
    order = '["penalty", "fee", "overdue_interest", "overdue_principal", "current_interest", "current_principal"]'
    put("loans", ["id", "tenant_id", "product_id", "customer_id", "credit_line_id", "method", "currency",
                  "principal", "annual_rate", "rate_e8", "penalty_rate_e8", "grace_days", "term_months",
                  "upfront_fee", "fee_mode", "allocation_order", "disbursed_on", "maturity_date", "status",
                  "days_past_due", "bucket", "loan_class", "penalty_accrued", "penalty_paid", "credit_balance",
                  "accrual_status", "request_hash", "created_at"],
        zip(ids.tolist(), [tenant_id] * n,
            np.where(line, products["RV-STD"], products["EP-STD"]).tolist(), ids.tolist(),
            [int(x) if x else None for x in book["line_of"].tolist()],
            np.where(line, "bullet", "equal-principal").tolist(), ["CNY"] * n,
            (book["principal"] * STORAGE).tolist(), ["0.12"] * n, [12_000_000] * n, [18_000_000] * n, [0] * n,
            np.where(line, 6, book["term"]).tolist(), [0] * n, ["deduct"] * n, [order] * n,
            _iso(book["disbursed"]).tolist(), _iso(book["maturity"]).tolist(), ["active"] * n, dpd.tolist(),
            bucket.tolist(), loan_class.tolist(), [0] * n, [0] * n, [0] * n,
            np.where(dpd > 90, "non-accrual", "accruing").tolist(), [""] * n, [STAMP] * n, strict=True))
    owner, m = inst["owner"], len(inst["owner"])
    epoch = np.datetime64("1970-01-01", "D")
    start = np.where(inst["number"] == 1, book["disbursed"][owner], inst["due"] - np.timedelta64(30, "D"))
    status = np.where(inst["paid"], "paid", np.where(inst["missed"], "overdue", "pending"))
    principal = inst["principal"] * STORAGE
    paid_principal = np.where(inst["paid"], principal, 0)
    chunk = 500_000
    for lo in range(0, m, chunk):
        s = slice(lo, lo + chunk)
        k = len(owner[s])
        put("loan_installments", ["tenant_id", "loan_id", "number", "period_start", "due_date", "start_day",
                                  "due_day", "principal", "interest", "fee", "principal_paid", "interest_paid",
                                  "fee_paid", "interest_accrued", "status", "paid_on"],
            zip([tenant_id] * k, ids[owner[s]].tolist(), inst["number"][s].tolist(), _iso(start[s]).tolist(),
                _iso(inst["due"][s]).tolist(), ((start[s] - epoch).astype(np.int64) + 719163).tolist(),
                ((inst["due"][s] - epoch).astype(np.int64) + 719163).tolist(), principal[s].tolist(), [0] * k,
                [0] * k, paid_principal[s].tolist(), [0] * k, [0] * k, [0] * k, status[s].tolist(),
                [d if p else None for d, p in zip(_iso(inst["paid_on"][s]).tolist(), inst["paid"][s].tolist(),
                                                   strict=True)], strict=True))
    prev = previous_scores(book)
    run_id = 1
    put("behaviour_score_runs", ["id", "tenant_id", "month", "as_of", "scorecard_version", "definition", "scored",
                                 "created_at"],
        [(run_id, tenant_id, f"{PREVIOUS:%Y-%m}", PREVIOUS.isoformat(), behaviour.SCORECARD_VERSION,
          json.dumps(scorecard_definition(), sort_keys=True, ensure_ascii=False), prev.height, STAMP)])
    put("behaviour_scores", ["tenant_id", "run_id", "subject_kind", "subject_id", "customer_id", "month", "score",
                             "band", "current_dpd", "factor_bins", "factor_values"],
        ((tenant_id, run_id, kind, sid, cid, f"{PREVIOUS:%Y-%m}", score, band, dpd, bins, values)
         for kind, sid, cid, score, band, dpd, bins, values in prev.iter_rows()))
    answered = book["answered"].tolist()
    put("consents", ["tenant_id", "customer_id", "scope", "granted_at", "granted_by", "channel", "text_version",
                     "text_hash", "locale", "evidence"],
        ((tenant_id, c, scope, STAMP, "borrower", "self", f"{scope}/2026-11", "", "zh_CN", "{}")
         for c in answered for scope in ("credit_report", "external_data")))
    pool, facts = _answer_pool(64)
    rng = book["rng"]
    newest, previous = f"{ON - timedelta(days=10)} 09:00:00.000000", f"{ON - timedelta(days=40)} 09:00:00.000000"
    pick = rng.integers(0, 64, (len(answered), 6)).tolist()
    calls, kept = [], []
    call_id = 0
    for c, p in zip(answered, pick, strict=True):
        for j, (kind, at) in enumerate((("bureau", newest), ("bureau", previous), ("enforcement", newest),
                                        ("enforcement", previous), ("tax", newest), ("merchant", newest))):
            call_id += 1
            calls.append((call_id, tenant_id, kind, f"{c:064x}", "9111********0001", "business", "monitoring",
                          "worker", at, "ok", 120, 0, "CNY", 0, 200, pool[kind][p[j]], "-"))
            f = facts[kind][p[j]]
            kept.append((call_id, tenant_id, f"{c:064x}", kind, at, int(f["found"]), f["series_first"], f["series"],
                         f["counts"], f["overdue_now"], f["overdue_level"], f["cases"]))
    put("data_provider_calls", ["id", "tenant_id", "kind", "subject_index", "subject_masked", "subject_kind",
                                "purpose", "called_by", "at", "status", "latency_ms", "cost", "currency", "cached",
                                "http_status", "payload", "payload_sha256"], calls)
    put("data_answer_facts", ["call_id", "tenant_id", "subject_index", "kind", "at", "found", "series_first",
                              "series", "counts", "overdue_now", "overdue_level", "cases"], kept)
    con.commit()
    if postgres:
        for table in ("customers", "credit_lines", "loans", "data_provider_calls", "behaviour_score_runs"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        con.commit()
        con.autocommit = True
        cur.execute("VACUUM ANALYZE")
    else:
        cur.execute("ANALYZE")
    con.close()
    return counts


SCAN_CHILD = """
import cProfile, json, os, pstats, sys, time
sys.path.insert(0, sys.argv[3])
from _scratch import bench_environment
bench_environment()
from microlend.bootstrap import load_modules
from microlend.core.db import make_engine, make_session_factory
from microlend.core.identity import system_principal
from microlend.core.uow import UnitOfWork
from microlend.decisioning import early_warning as rules
from microlend.decisioning.behaviour_scores import factor_bins, factor_values, scorecard_definition
from microlend.origination import early_warning as ew
load_modules()
engine = make_engine(sys.argv[1])
who = system_principal(int(sys.argv[2]), "worker")
spent, spent_cpu = {}, {}

def timed(owner, name, part):
    inner = getattr(owner, name)
    def wrapper(*a, **k):
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            return inner(*a, **k)
        finally:
            spent[part] = spent.get(part, 0.0) + time.perf_counter() - t0
            spent_cpu[part] = spent_cpu.get(part, 0.0) + time.thread_time() - c0
    setattr(owner, name, wrapper)

timed(ew, "current_book", "read the book and its signals")
timed(ew, "portfolio_subjects", "  read: loans and lines")
timed(ew, "loan_totals", f"  read: instalment totals (ranges at once: {ew.TOTALS_PARTS})")
timed(ew, "_before", "  read: last month's scores")
timed(ew, "_external", "  read: provider answers and consents")
timed(ew, "totals_signals", "  signals and behaviour score")
timed(rules, "assess_book", "early-warning rules")
timed(rules, "raised", "early-warning rules")
timed(ew, "store_month", "write: this month's scores")
profile = cProfile.Profile() if sys.argv[4] == "1" else None
t0, c0 = time.perf_counter(), time.process_time()
if profile:
    profile.enable()
run = ew.scan(UnitOfWork(make_session_factory(engine)), who)
if profile:
    profile.disable()
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
load = os.getloadavg()[0]
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
if profile:
    stats = pstats.Stats(profile, stream=sys.stderr)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(30)
again = None
if sys.argv[5] == "1":  # the same scan again later in the month: the month's scores are there, the alerts open
    first, first_cpu, spent, spent_cpu = spent, spent_cpu, {}, {}
    t0, c0 = time.perf_counter(), time.process_time()
    rerun = ew.scan(UnitOfWork(make_session_factory(engine)), who)
    again = {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0, "load": os.getloadavg()[0],
             "spent": spent, "spent_cpu": spent_cpu, "raised": rerun.raised, "new": rerun.new,
             "escalated": rerun.escalated}
    spent, spent_cpu = first, first_cpu
if sys.argv[6]:  # the month's scores and the alerts, to compare one version of the scan with another
    import polars as pl
    from sqlalchemy import text
    with engine.connect() as c:
        for name, sql in (("scores", "SELECT subject_kind, subject_id, customer_id, month, score, band, current_dpd, "
                                     "factor_bins, factor_values FROM behaviour_scores WHERE month = '2026-11'"),
                          ("alerts", "SELECT subject_kind, subject_id, customer_id, signal, severity, inputs, status, "
                                     "open_key, raised_on, last_seen_on FROM early_warning_alerts")):
            rows = c.execute(text(sql)).all()
            frame = pl.DataFrame([tuple(str(v) if v is not None else None for v in r) for r in rows],
                                 schema=list(c.execute(text(sql + " LIMIT 0")).keys()), orient="row")
            frame.sort(frame.columns).write_parquet(f"{sys.argv[6]}-{name}.parquet")
print(json.dumps({"seconds": seconds, "cpu": cpu, "load": load, "peak_kib": hwm, "spent": spent, "spent_cpu": spent_cpu,
                  "subjects": run.subjects, "raised": run.raised, "new": run.new, "escalated": run.escalated,
                  "by_signal": run.by_signal, "kept": run.scores_kept, "version": run.rule_version[:12],
                  "again": again}))
"""


def publish_default_rules(factory: Any, tenant_id: int) -> str:
    """The bank's risk team submits the shipped early-warning rules and a second person publishes them (on the
    empty book, before the portfolio is loaded: the simulation of the evidence runs on the current book)."""
    from microlend.core.identity import Principal, Role
    from microlend.core.uow import UnitOfWork
    from microlend.decisioning import versions

    maker, checker = (Principal(user_id=900 + i, tenant_id=tenant_id, username=f"analyst-{i}",
                                roles=frozenset({Role.RISK_ANALYST})) for i in (1, 2))
    version, _ = versions.submit_with_evidence(UnitOfWork(factory), maker, rules.default_early_warning())
    versions.publish(UnitOfWork(factory), checker, version.content_hash)
    return version.content_hash


def seed_database(args: argparse.Namespace, url: str) -> int:
    """Migrate and seed the scratch database at `url` (timed apart, not part of the figures): the bank's id."""
    from microlend.core import migrate, tenancy
    from microlend.core.db import make_engine, make_session_factory
    from microlend.core.uow import UnitOfWork

    engine = make_engine(url)
    started = time.perf_counter()
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    bank = tenancy.create_tenant(UnitOfWork(factory), f"bench-{random.randrange(10**6)}", business_date=ON)
    version = publish_default_rules(factory, bank.id)
    engine.dispose()
    book = seed_book(args.loans, args.seed, args.answered)
    counts = load_book(url, bank.id, book)
    seeded = time.perf_counter() - started
    dpd, lines = book["dpd"], int(book["is_line"].sum())
    del book["inst"], book["rng"]
    late = int((dpd > 0).sum())
    print(f"seeded {args.backend} {url.rsplit('/', 1)[-1]} in {seeded:.1f} s (not timed below): "
          f"{args.loans:,} subjects = {lines:,} open credit lines with a drawdown + {args.loans - lines:,} loans; "
          f"{late:,} delinquent ({late / args.loans:.1%}: 1-30 dpd {int(((dpd > 0) & (dpd <= 30)).sum()):,}, "
          f"31-90 {int(((dpd > 30) & (dpd <= 90)).sum()):,}, >90 {int((dpd > 90).sum()):,}); "
          f"rows {counts}; early-warning rules {version[:12]} published (maker-checker)")
    return bank.id


def db_main(args: argparse.Namespace) -> None:
    import subprocess
    import sys

    from _scratch import ROOT, bench_environment, keep_seed, kept_copy, schema_hash, scratch_database
    from sqlalchemy import text

    bench_environment()
    from microlend.bootstrap import load_modules
    from microlend.core.db import make_engine

    load_modules()
    name = (f"bench_early_warning_seed_{args.loans}_{args.seed}_{round(args.answered * 1000)}_"
            f"{schema_hash(SEED_LAYOUT)}")
    kept = kept_copy(args.backend, name) if args.keep_seed else None
    if kept is not None:
        url, drop = kept
        engine = make_engine(url)
        with engine.connect() as c:
            tenant_id = int(c.execute(text("SELECT max(id) FROM tenants")).scalar_one())
        engine.dispose()
        print(f"a copy of the kept seed {name} ({args.backend}): {args.loans:,} subjects")
    else:
        url, drop = scratch_database(args.backend, "bench-early-warning")
        tenant_id = seed_database(args, url)
        if args.keep_seed:
            keep_seed(args.backend, url, name)
            print(f"  kept as {name} for later runs with --keep-seed")
    try:
        proc = subprocess.run([sys.executable, "-c", SCAN_CHILD, url, str(tenant_id), str(ROOT / "bench"),
                               "1" if args.profile else "0", "1" if args.rescan else "0", args.record],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not proc.stdout.strip():
            print(proc.stderr)
            return
        if args.profile:
            print(proc.stderr)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        drop()
        if url.startswith("sqlite"):
            shutil.rmtree(os.path.dirname(url.removeprefix("sqlite:///")), ignore_errors=True)
    n = r["subjects"]
    print(f"scan(uow, worker) on {args.backend}, {n:,} subjects, load average {r['load']:.2f} "
          f"on {os.cpu_count()} cores:")
    print(f"  whole scan: {r['seconds']:.2f} s wall, {r['cpu']:.2f} s CPU = {n / r['seconds']:,.0f} loans/s "
          f"(target >= 100,000 loans/s)")
    rest = r["seconds"] - sum(s for part, s in r["spent"].items() if not part.startswith(" "))
    print("  (the reads run at once, each in its own unit of work, and the month's scores are written while the rules "
          "judge the book: their times overlap; CPU is the part's own thread's: neither Polars' worker threads nor "
          "the database server are counted)")
    _parts(r["spent"], r.get("spent_cpu", {}), rest, n, "  ")
    print(f"  peak memory of the scan process: {r['peak_kib'] / 1024:,.0f} MiB")
    print(f"  alerts raised {r['raised']:,} ({r['raised'] / n:.1%} of subjects), new {r['new']:,}, "
          f"escalated {r['escalated']:,}; scores kept: {r['kept']}; rules {r['version']}")
    for signal, counts_ in r["by_signal"].items():
        print(f"    {signal:20s} {counts_}")
    again = r.get("again")
    if again:
        print(f"  the same scan again in the month (load average {again['load']:.2f}): {again['seconds']:.2f} s wall, "
              f"{again['cpu']:.2f} s CPU = {n / again['seconds']:,.0f} loans/s; alerts raised {again['raised']:,}, "
              f"new {again['new']:,}, escalated {again['escalated']:,}")
        rest = again["seconds"] - sum(s for part, s in again["spent"].items() if not part.startswith(" "))
        _parts(again["spent"], again.get("spent_cpu", {}), rest, n, "    ")


def _parts(spent: dict[str, float], cpu: dict[str, float], rest: float, n: int, indent: str) -> None:
    """Wall seconds, loans/s and the thread's CPU seconds of each timed part of a scan."""
    for part, s in [*spent.items(), ("write: alerts, audit, commit (the rest)", rest)]:
        own = f"{cpu[part]:7.2f} s CPU" if part in cpu else ""
        print(f"{indent}{part:42s} {s:7.2f} s  {n / s if s > 0 else float('inf'):>12,.0f} loans/s  {own}")


if __name__ == "__main__":
    main()
