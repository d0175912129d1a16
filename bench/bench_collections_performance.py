"""Collections performance over a generated collections book: the same SQL the app runs
(`microlend.servicing.collections_performance`), here on an in-memory SQLite database with tables shaped like
`collection_cases`, `collection_actions`, `loan_repayments`, `audit_log` and `users` and their indexes.

Run: .venv/bin/python bench/bench_collections_performance.py [--cases 50000] [--collectors 40] [--seed 7]
Generates seeded cases over twelve months (each assigned, some reassigned or re-routed, most closed), about ten
actions a case (contacts, promises kept / broken / pending, notes) and a few repayments a case, then prints the
seconds of each statement and of assembling the figures for the twelve months.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import time
from datetime import date, datetime, timedelta

from microlend.servicing import collections_performance as cp

TENANT = 1
FIRST = date(2025, 1, 1)
SCHEMA = """
CREATE TABLE users (id INTEGER PRIMARY KEY, tenant_id INTEGER, username TEXT UNIQUE, display_name TEXT);
CREATE TABLE collection_cases (id INTEGER PRIMARY KEY, tenant_id INTEGER, loan_id INTEGER, status TEXT,
  assignee TEXT, opened_on DATE, closed_on DATE, close_reason TEXT);
CREATE INDEX ix_collection_cases_loan ON collection_cases (tenant_id, loan_id);
CREATE INDEX ix_collection_cases_assignee ON collection_cases (tenant_id, status, assignee, id);
CREATE TABLE collection_actions (id INTEGER PRIMARY KEY, tenant_id INTEGER, case_id INTEGER, kind TEXT,
  party TEXT, outcome TEXT, amount BIGINT, promise_status TEXT, promised_on DATE, actor TEXT, at DATETIME);
CREATE INDEX ix_collection_actions_case ON collection_actions (tenant_id, case_id, id);
CREATE INDEX ix_collection_actions_promises ON collection_actions (tenant_id, kind, promise_status);
CREATE TABLE loan_repayments (id INTEGER PRIMARY KEY, tenant_id INTEGER, loan_id INTEGER, amount BIGINT,
  value_date DATE, status TEXT);
CREATE INDEX ix_loan_repayments_loan_seq ON loan_repayments (loan_id, id);
CREATE TABLE audit_log (id INTEGER PRIMARY KEY, tenant_id INTEGER, at DATETIME, action TEXT, object_type TEXT,
  object_id TEXT);
CREATE INDEX ix_audit_log_object ON audit_log (tenant_id, object_type, object_id);
"""


def stamp(d: date, rng: random.Random) -> str:
    return (datetime(d.year, d.month, d.day) + timedelta(seconds=rng.randrange(86_400))).isoformat(" ")


def generate(db: sqlite3.Connection, cases: int, collectors: int, seed: int) -> tuple[int, int]:
    rng = random.Random(seed)
    people = [f"c{i}" for i in range(collectors)]
    db.executemany("INSERT INTO users (tenant_id, username, display_name) VALUES (?, ?, ?)",
                   [(TENANT, p, f"Collector {i}") for i, p in enumerate(people)])
    case_rows: list[tuple[object, ...]] = []
    actions: list[tuple[object, ...]] = []
    repayments: list[tuple[object, ...]] = []
    audits: list[tuple[object, ...]] = []
    outcomes = ("promise", "refused", "no_answer", "wrong_number")
    for case_id in range(1, cases + 1):
        opened = FIRST + timedelta(rng.randrange(330))
        life = rng.randrange(5, 120)
        closed = opened + timedelta(life) if rng.random() < 0.8 else None
        end = closed or opened + timedelta(life)
        who = rng.choice(people)
        actions.append((case_id, "assign", who, None, None, None, None, "boss", stamp(opened, rng)))
        if rng.random() < 0.2:  # reassigned half-way
            who = rng.choice(people)
            actions.append((case_id, "assign", who, None, None, None, None, "boss",
                            stamp(opened + timedelta(life // 2), rng)))
        elif rng.random() < 0.05:
            audits.append((stamp(opened + timedelta(life // 2), rng), str(case_id)))
        for _ in range(rng.randrange(4, 14)):
            day = opened + timedelta(rng.randrange(max(1, (end - opened).days)))
            kind = rng.choices(("contact", "promise", "note"), (6, 2, 1))[0]
            status = (rng.choices(("kept", "broken", "pending", "closed"), (5, 3, 1, 1))[0]
                      if kind == "promise" else None)
            actions.append((case_id, kind, "borrower" if kind == "contact" else None,
                            rng.choice(outcomes) if kind == "contact" else None,
                            rng.randrange(50, 5000) * 10_000 if kind == "promise" else None, status,
                            day.isoformat() if kind == "promise" else None, who, stamp(day, rng)))
        for _ in range(rng.randrange(0, 5)):
            day = opened + timedelta(rng.randrange(-10, life + 20))
            repayments.append((case_id, rng.randrange(20, 3000) * 10_000, day.isoformat(),
                               "reversed" if rng.random() < 0.02 else "posted"))
        case_rows.append((case_id, case_id, "closed" if closed else "open", who, opened.isoformat(),
                          closed.isoformat() if closed else None,
                          (rng.choice(("cured", "written_off")) if closed else None)))
    db.executemany("INSERT INTO collection_cases (id, tenant_id, loan_id, status, assignee, opened_on, closed_on,"
                   f" close_reason) VALUES (?, {TENANT}, ?, ?, ?, ?, ?, ?)", case_rows)
    db.executemany("INSERT INTO collection_actions (tenant_id, case_id, kind, party, outcome, amount, promise_status,"
                   f" promised_on, actor, at) VALUES ({TENANT}, ?, ?, ?, ?, ?, ?, ?, ?, ?)", actions)
    db.executemany(f"INSERT INTO loan_repayments (tenant_id, loan_id, amount, value_date, status) VALUES ({TENANT},"
                   " ?, ?, ?, ?)", repayments)
    db.executemany(f"INSERT INTO audit_log (tenant_id, at, action, object_type, object_id) VALUES ({TENANT}, ?,"
                   " 'collections.reroute', 'collection_case', ?)", audits)
    db.commit()
    return len(actions), len(repayments)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cases", type=int, default=50_000)
    parser.add_argument("--collectors", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    db = sqlite3.connect(":memory:")
    db.executescript(SCHEMA)
    t0 = time.perf_counter()
    n_actions, n_repayments = generate(db, args.cases, args.collectors, args.seed)
    print(f"generated {args.cases:,} cases, {n_actions:,} actions, {n_repayments:,} repayments "
          f"in {time.perf_counter() - t0:.1f} s")
    period = cp.Period((2025, 1), (2025, 12))
    rows = {}
    total = 0.0
    for name, build in (("activity", cp.activity_sql), ("promises", cp.promises_sql),
                        ("recovered", cp.recovered_sql), ("closed", cp.closed_sql)):
        t = time.perf_counter()
        rows[name] = [tuple(r) for r in db.execute(build(period, TENANT, "sqlite")).fetchall()]
        spent = time.perf_counter() - t
        total += spent
        print(f"{name + ':':11} {spent:.2f} s ({len(rows[name]):,} rows)")
    t = time.perf_counter()
    names = dict(db.execute("SELECT username, display_name FROM users").fetchall())
    r = cp.assemble(period.labels, names, rows["activity"], rows["promises"], rows["recovered"], rows["closed"])
    spent = time.perf_counter() - t
    total += spent
    print(f"assembly:   {spent:.3f} s ({len(r.collectors)} collectors x {len(r.months)} months)")
    print(f"total:      {total:.2f} s; everyone: {r.total.cases_worked:,} cases worked, kept rate "
          f"{r.total.kept_rate}, recovered {r.total.amount_recovered:,}")


if __name__ == "__main__":
    main()
