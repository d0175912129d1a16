"""Every staff page of the demo bank against the target "p99 <= 300 ms" (issue: the first hour of a new user).

Run: .venv/bin/python bench/bench_pages.py [--data-dir DIR] [--calls 20] [--customers 1000] [--days 75]

The demo bank is built the way `make demo` builds it (`microlend demo run`'s seeding, in DIR; a finished seeding
there is reused, so a second run starts at once), and its audit chain checked as the worker's hourly job does (the
audit page shows that stored check and verifies only the records written after it). The app runs in process
(Starlette's TestClient, its start-up included). Each persona signs in, opens its home page and every item of its
menu, and follows the in-app links of those pages, and of the pages they lead to, once (a bounded walk: a path with
numbers is one page, `/loans/{id}`, opened at the first id met; a report shown in a frame is opened too). Every page
found is then opened `--calls` times by the first persona that reached it. Printed: first view, p50 and p99 per
page, slowest p99 first, and the pages over the target; with wall and CPU time and the load average."""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

TARGET_MS = 300.0
#: the walk's bound: pages per persona
MAX_PAGES = 200
_HREF = re.compile(r'<(?:a|iframe) [^>]*(?:href|src)="(/[^"#]*)"')
_NAV = re.compile(r'<nav class="nav" id="nav">(.*?)</nav>', re.S)
_SKIP = ("/static", "/lang", "/logout", "/login", "/b/", "/api/", "/docs", "/openapi")
_DOWNLOADS = (".xlsx", ".csv", ".pdf", ".json", ".zip", ".parquet")


def pattern(path: str) -> str:
    return re.sub(r"/\d+(?=/|$)", "/{id}", path)


@dataclass
class Timed:
    persona: str
    url: str
    first_ms: float
    times_ms: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def _links(html: str) -> list[str]:
    found = []
    for href in _HREF.findall(html.replace("&amp;", "&")):
        path = urlsplit(href).path
        if path.startswith(_SKIP) or path.endswith(_DOWNLOADS) or path.endswith("/new"):
            continue
        found.append(href)
    return found


def _get(client: Any, url: str) -> tuple[int, str, float]:
    started = time.perf_counter()
    answer = client.get(url, follow_redirects=False)
    elapsed = (time.perf_counter() - started) * 1000
    html = answer.text if "text/html" in answer.headers.get("content-type", "") else ""
    return answer.status_code, html, elapsed


def walk(client: Any, persona: str, known: set[str], failed: list[str]) -> list[tuple[str, float]]:
    """The pages `persona` reaches from its home and menu (two links deep) that no persona before reached:
    (address, first view in ms). Pages that answer 5xx are added to `failed`."""
    status, html, first = _get(client, "/home")
    if status != 200:
        raise SystemExit(f"{persona}: /home answered {status}")
    nav = _NAV.search(html)
    menu = _links(nav.group(1)) if nav else []
    found: list[tuple[str, float]] = []
    seen: set[str] = set()
    found.append(("/home", first))  # every persona's own
    seen.add("/home")
    frontier = list(dict.fromkeys(menu + _links(html)))
    for _depth in range(3):
        following: list[str] = []
        for url in frontier:
            key = pattern(urlsplit(url).path)
            if key in seen or len(seen) >= MAX_PAGES:
                continue
            seen.add(key)
            status, html, ms = _get(client, url)
            if status >= 500:
                failed.append(f"{persona} {url} {status}")
            if status != 200 or not html:
                continue
            if key not in known:
                found.append((url, ms))
            following += _links(html)
        frontier = list(dict.fromkeys(following))
    return found


def _check_audit_chain(engine: Any, tenant: str) -> Any:
    """The stored check of the demo bank's audit chain moved on to its last record (the worker's audit_check)."""
    from sqlalchemy import select

    from microlend.core import audit
    from microlend.core.db import make_session_factory
    from microlend.core.identity import system_principal
    from microlend.core.tables import TenantRow
    from microlend.core.uow import UnitOfWork

    uow = UnitOfWork(make_session_factory(engine))
    with uow:
        tenant_id = uow.session.execute(select(TenantRow.id).where(TenantRow.name == tenant)).scalar_one()
    return audit.check_chain(uow, system_principal(tenant_id, "worker"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=Path("var/bench-pages"))
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--days", type=int, default=75)
    parser.add_argument("--only", default="", help="time only pages whose address contains this")
    args = parser.parse_args()
    os.environ["MICROLEND_DATA_DIR"] = str(args.data_dir.resolve())
    os.environ.setdefault("MICROLEND_DEMO_CACHE", "off")
    from fastapi.testclient import TestClient

    from microlend.api.app import create_app
    from microlend.cli.demo import _seed
    from microlend.core.db import make_engine
    from microlend.core.migrate import upgrade
    from microlend.core.settings import get_settings
    from microlend.demo.seed import DEMO_PASSWORD, DEMO_STAFF, DEMO_TENANT

    started = time.perf_counter()
    _seed(args.customers, args.days)
    engine = make_engine(get_settings().database_url)
    upgrade(engine)  # a bank seeded by an earlier version gets its indexes
    checked = _check_audit_chain(engine, DEMO_TENANT)  # as the worker's hourly job has by the time one signs in
    seeded = time.perf_counter()
    print(f"demo bank ready in {seeded - started:.0f} s ({args.data_dir}); audit chain checked through record "
          f"#{checked.records} ({'intact' if checked.ok else 'BROKEN'})", flush=True)
    personas = list({tuple(roles): name for name, roles, _, _ in reversed(DEMO_STAFF)}.values())[::-1]
    results: list[Timed] = []
    known: set[str] = set()
    failed: list[str] = []
    with TestClient(create_app(), base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        for persona in personas:
            client.cookies.clear()
            answer = client.post("/login", data={"username": f"{persona}@{DEMO_TENANT}", "password": DEMO_PASSWORD},
                                 follow_redirects=False)
            if answer.status_code != 303:
                raise SystemExit(f"{persona} could not sign in: {answer.status_code}")
            pages = walk(client, persona, known, failed)
            known |= {pattern(urlsplit(u).path) for u, _ in pages} - {"/home"}
            print(f"{persona}: {len(pages)} new pages", flush=True)
            for url, first in pages:
                if args.only and args.only not in url:
                    continue
                times = [_get(client, url)[2] for _ in range(args.calls)]
                results.append(Timed(persona, url, first, times))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    results.sort(key=lambda t: t.p99, reverse=True)
    print(f"\n{'p99 ms':>8} {'p50 ms':>8} {'first ms':>9}  persona    page")
    for t in results:
        print(f"{t.p99:8.1f} {t.p50:8.1f} {t.first_ms:9.1f}  {t.persona:10} {t.url}")
    over = [t for t in results if t.p99 > TARGET_MS]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n{len(results)} pages x {args.calls} calls; {len(over)} over {TARGET_MS:.0f} ms (p99): "
          f"{', '.join(t.url for t in over) or 'none'}")
    if failed:
        print("pages that failed (5xx): " + "; ".join(failed))
    print(f"seeding {seeded - started:.0f} s, pages {time.perf_counter() - seeded:.0f} s wall; process CPU "
          f"{usage.ru_utime + usage.ru_stime:.0f} s (user+sys); load average {load}")
    return 1 if over or failed else 0


if __name__ == "__main__":
    sys.exit(main())
