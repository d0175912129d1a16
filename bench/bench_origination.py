"""Origination over HTTP: time from submit to decision, and the straight-through-processing rate.

A migrated SQLite file gets the demo bank (its 1,000 customers built from the German credit data, staff
logins); the app is served by uvicorn on loopback in its own process and this process posts a stream of
1,000 applications, one per customer, the way the demo's history draws them (product mix, terms, amounts).
Submitting decides at once, so the request's latency is the time from submit to decision.

Prints: p50/p99 of submit-to-decision for applications decided automatically (target p99 <= 100 ms; the
first --warm-up requests are left out of the latency figures, not of the rates), the server-side decision
time, and the STP rate (share decided with no person), overall and within the automatic authority.

Run: .venv/bin/python bench/bench_origination.py [--applications 1000] [--warm-up 20] [--keep]"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret-key-0123456789-abcdefghij"
AUTOMATIC_AUTHORITY = Decimal("200000")  # the default policy refers larger amounts to people


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(url: str, customers: int) -> list[tuple[int, dict[str, Any]]]:
    """Migrate, seed the demo bank and return its customers with their profiles."""
    from sqlalchemy import select

    from microlend.bootstrap import load_modules
    from microlend.core import migrate
    from microlend.core.db import make_engine, make_session_factory
    from microlend.core.uow import UnitOfWork
    from microlend.demo.seed import seed
    from microlend.demo.signing import borrower
    from microlend.parties import consents
    from microlend.parties.tables import CustomerRow

    load_modules()
    engine = make_engine(url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    bank = seed(UnitOfWork(factory), customers=customers)
    with UnitOfWork(factory) as u:
        rows = u.session.execute(select(CustomerRow.id, CustomerRow.attributes)
                                 .where(CustomerRow.tenant_id == bank.tenant_id).order_by(CustomerRow.id)).all()
    for cid, _ in rows:  # each borrower authorised the credit report query on their phone before applying
        consents.give_consent(UnitOfWork(factory), borrower(bank.tenant_id, cid), cid, "credit_report")
    engine.dispose()
    return [(cid, dict(attrs or {})) for cid, attrs in rows]


def serve(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MICROLEND_DATABASE_URL": url, "MICROLEND_SECRET_KEY": SECRET, "MICROLEND_MODE": "local"}
    cmd = [sys.executable, "-m", "uvicorn", "microlend.api.main:app", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError("the server did not start")


def stream(customers: list[tuple[int, dict[str, Any]]], n: int, seed: int = 7) -> list[dict[str, Any]]:
    """One application per customer, drawn like the demo's history: product mix, term from the profile's
    duration, amount ten-odd times the profile's (1970s Mark) amount in round thousands."""
    from microlend.demo.history import PRODUCTS, TERMS

    rng = random.Random(seed)
    chosen = customers[:n]
    rng.shuffle(chosen)
    bodies = []
    for cid, profile in chosen:
        product = rng.choices([p for p, _ in PRODUCTS], [w for _, w in PRODUCTS])[0]
        lo, hi = TERMS[product]
        term = max(lo, min(hi, int(profile.get("duration_in_month", 12))))
        raw = int(profile.get("credit_amount", 2000)) * rng.choice((6, 8, 10, 12, 15))
        amount = max(5000, min(400000, round(raw, -3)))
        bodies.append({"customer_id": cid, "product_code": product, "amount": f"{amount}.00", "term_months": term,
                       "purpose": "经营周转", "consents": ["credit_report"]})
    return bodies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--applications", type=int, default=1000)
    ap.add_argument("--warm-up", type=int, default=20)
    ap.add_argument("--keep", action="store_true", help="keep the database file")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-origination-"))
    url = f"sqlite:///{work / 'microlend.db'}"
    os.environ.update({"MICROLEND_SECRET_KEY": SECRET, "MICROLEND_DATA_DIR": str(work)})
    t0 = time.perf_counter()
    customers = prepare(url, args.applications)
    print(f"demo bank seeded: {len(customers)} customers in {time.perf_counter() - t0:.1f} s ({url})")
    port = free_port()
    server = serve(url, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            r = client.post("/api/v1/auth/token", data={"username": "officer@demo", "password": "microlend-demo"})
            r.raise_for_status()
            headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
            results: list[tuple[dict[str, Any], dict[str, Any], float]] = []
            for body in stream(customers, args.applications):
                started = time.perf_counter()
                r = client.post("/api/v1/applications", json=body, headers=headers)
                elapsed = (time.perf_counter() - started) * 1000
                if r.status_code != 201:
                    raise RuntimeError(f"{r.status_code}: {r.text}")
                results.append((body, r.json(), elapsed))
    finally:
        server.terminate()
        server.wait(timeout=30)

    total = len(results)
    statuses = Counter(app["status"] for _, app, _ in results)
    automatic = [(b, a, ms) for b, a, ms in results if a["decision"]["automatic"]]
    timed = [ms for i, (_, a, ms) in enumerate(results) if i >= args.warm_up and a["decision"]["automatic"]]
    server_ms = [float(a["decision"].get("latency_ms") or 0) for i, (_, a, _) in enumerate(results)
                 if i >= args.warm_up and a["decision"]["automatic"]]
    within = [(b, a) for b, a, _ in results if Decimal(b["amount"]) <= AUTOMATIC_AUTHORITY]
    within_auto = [a for _, a in within if a["decision"]["automatic"]]
    referred_within = Counter(code for _, a in within if not a["decision"]["automatic"]
                              for code in (x["code"] for x in a["decision"]["reasons"]))

    print(f"\napplications: {total}   outcomes: {dict(statuses)}")
    print(f"submit -> decision over HTTP, automatic decisions (n={len(timed)}, first {args.warm_up} left out): "
          f"p50 {pct(timed, 50):.1f} ms, p99 {pct(timed, 99):.1f} ms, max {max(timed):.1f} ms "
          f"(target p99 <= 100 ms: {'met' if pct(timed, 99) <= 100 else 'NOT met'})")
    if server_ms and any(server_ms):
        print(f"  of which inside the service (decision_ms): p50 {pct(server_ms, 50):.1f} ms, "
              f"p99 {pct(server_ms, 99):.1f} ms")
    print(f"STP rate (decided with no person): {len(automatic)}/{total} = {len(automatic) / total:.1%}")
    print(f"  within the automatic authority (amount <= {AUTOMATIC_AUTHORITY:,}): {len(within_auto)}/{len(within)}"
          f" = {len(within_auto) / max(len(within), 1):.1%}")
    if referred_within:
        print(f"  referred within the authority, by reason: {dict(referred_within.most_common(6))}")
    if args.keep:
        print(f"database kept at {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
