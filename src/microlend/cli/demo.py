"""`microlend demo`: migrate, seed the demo bank, print its logins and serve it, with the external data
providers simulated by the provider sandboxes in a process of their own.

Seeding is reused: a finished seeding leaves `<data dir>/demo-seed.json` naming the database, the seed's
version and its size (customers, days). A later `demo run` or `demo seed` on the same database whose schema is
at this version's heads and whose note matches seeds nothing and serves at once; a database behind is migrated
first. `--fresh` removes the demo's SQLite database and files and seeds anew (on PostgreSQL, drop the database
yourself)."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from microlend import worker
from microlend.cli.common import check_bind, console, fail, open_uow, user_errors

app = typer.Typer(help="The demo bank on an embedded database.", no_args_is_help=True)

#: The version of what seeding makes; a change to the demo's data raises it, and a note of another version
#: (or none) means the database is seeded again (idempotently: what is there stays).
SEED_VERSION = 1
NOTE = "demo-seed.json"


def _note_path() -> Path:
    from microlend.core.settings import get_settings

    return get_settings().data_dir / NOTE


def _database() -> str:
    """The configured database, without a password (it is written into the note)."""
    from sqlalchemy.engine import make_url

    from microlend.core.settings import get_settings

    return make_url(get_settings().database_url).render_as_string(hide_password=True)


def _wanted(customers: int, days: int) -> dict[str, object]:
    return {"seed_version": SEED_VERSION, "database": _database(), "customers": customers, "days": days}


def seeded_already(customers: int, days: int) -> bool:
    """The rule of reuse: the note of a finished seeding of this size and version, on this database."""
    try:
        note = json.loads(_note_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(note, dict) and all(note.get(k) == v for k, v in _wanted(customers, days).items())


def _demo_tenant_id() -> int | None:
    from sqlalchemy import select

    from microlend.core.tables import TenantRow
    from microlend.demo.seed import DEMO_TENANT

    uow = open_uow()
    with uow:
        return uow.session.execute(select(TenantRow.id).where(TenantRow.name == DEMO_TENANT)).scalar_one_or_none()


def _fresh() -> None:
    """Remove the demo's SQLite database (with its journal files), its seeding note and its files."""
    from sqlalchemy.engine import make_url

    from microlend.core.settings import get_settings

    url = make_url(get_settings().database_url)
    if url.get_backend_name() != "sqlite":
        raise fail("--fresh removes the demo's SQLite database; on PostgreSQL drop and create the database yourself")
    if url.database and url.database != ":memory:":
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(url.database + suffix).unlink(missing_ok=True)
    _note_path().unlink(missing_ok=True)
    shutil.rmtree(get_settings().data_dir / "demo-files", ignore_errors=True)
    console.print(f"removed {url.database} and the demo's files: seeding anew")


def _logins() -> None:
    from microlend.demo.seed import DEMO_PASSWORD, DEMO_STAFF, DEMO_TENANT

    table = Table("username", "password", "role", title="Demo bank (seeded before: reused)")
    for username, roles, _display, _branch in DEMO_STAFF:
        table.add_row(f"{username}@{DEMO_TENANT}", DEMO_PASSWORD, ", ".join(str(r) for r in roles))
    console.print(table)


def _seed(customers: int, days: int = 150, *, fresh: bool = False) -> int:
    """Seed the demo bank (and live its history once, against a fast sandbox) unless a finished seeding of
    this version and size is there to reuse; returns the bank's id."""
    from microlend.core.db import make_engine
    from microlend.core.migrate import schema_state, upgrade
    from microlend.core.settings import get_settings
    from microlend.demo import providers
    from microlend.demo.seed import seed

    started = time.perf_counter()
    if fresh:
        _fresh()
    engine = make_engine(get_settings().database_url)
    with engine.connect() as connection:
        current = schema_state(connection).current
    if not current:
        upgrade(engine)
    if seeded_already(customers, days):
        tenant_id = _demo_tenant_id()
        if tenant_id is not None:
            console.print(f"the demo bank was seeded before (see {_note_path()}): reused; "
                          "`--fresh` seeds it anew")
            _logins()
            return tenant_id
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("seeding the demo bank", total=customers)
        bank = seed(open_uow(), customers=customers, progress=lambda n: progress.advance(task, n))
    seeded = time.perf_counter()
    if bank.new:
        console.print(
            f"{bank.customers} customers; {bank.accounts} of them bank with us: {bank.transactions} "
            "account movements imported from core banking"
        )
    if days and bank.new:
        from microlend.demo.history import seed_datasets, seed_marketing, simulate

        lo, hi = providers.SEEDING_LATENCY_MS
        with providers.start(providers.anchor_of(open_uow(), bank.tenant_id), (lo, hi)) as sandbox:
            providers.connect(open_uow(), bank.tenant_id, sandbox.base_url)
            console.print(f"provider sandbox at {sandbox.base_url} ({lo}-{hi} ms per call while the history is lived)")
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task(f"living {days} days at the demo bank", total=days)
                life = simulate(open_uow(), bank.tenant_id, days=days, progress=lambda n: progress.advance(task, n))
        lived = time.perf_counter()
        console.print(f"{life.days} business days: {life.summary()}; {life.repayments} repayments")
        console.print(seed_marketing(open_uow(), bank.tenant_id))
        console.print(seed_datasets(open_uow(), bank.tenant_id, get_settings().data_dir / "demo-files"))
        console.print(
            f"seeding took {time.perf_counter() - started:.0f} s: customers and accounts "
            f"{seeded - started:.0f} s, history {lived - seeded:.0f} s, marketing and datasets "
            f"{time.perf_counter() - lived:.0f} s"
        )
    if bank.new:  # only a seeding that went through to the end is reused
        _note_path().parent.mkdir(parents=True, exist_ok=True)
        _note_path().write_text(json.dumps(_wanted(customers, days)), encoding="utf-8")
    else:
        console.print("[yellow]the demo bank was there, but not from a finished seeding of this version and size: "
                      "kept as it is; `--fresh` seeds it anew[/]")
    table = Table("username", "password", "role", title=f"Demo bank: {bank.customers} customers")
    for username, password, roles in bank.logins:
        table.add_row(username, password, roles)
    console.print(table)
    return bank.tenant_id


@app.command("seed")
@user_errors
def seed_command(
    customers: Annotated[int, typer.Option(min=1, max=1000)] = 1000,
    days: Annotated[int, typer.Option(min=0, max=365, help="days of history to live")] = 150,
    fresh: Annotated[bool, typer.Option("--fresh", help="remove the demo's SQLite database and seed anew")] = False,
) -> None:
    """Create the demo bank (idempotent; a finished seeding is reused) and print its logins."""
    _seed(customers, days, fresh=fresh)


def claim_port(host: str, port: int) -> socket.socket:
    """Bind the server's address before anything is seeded, so a port in use is said at once (exit code 2,
    naming `--port`) and nobody takes it while the demo is being seeded."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise fail(f"--host {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a closing connection is no user
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        other = 8001 if port != 8001 else 8002
        raise fail(f"port {port} on {host} is in use ({exc.strerror}): nothing was seeded. Start the demo on "
                   f"another port with `microlend demo run --port {other}` (or `make demo PORT={other}`), or stop "
                   "the program that listens there") from None
    return sock


@app.command("run")
@user_errors
def run(
    host: str = "127.0.0.1",
    port: int = 8000,
    customers: Annotated[int, typer.Option(min=1, max=1000)] = 1000,
    days: Annotated[int, typer.Option(min=0, max=365, help="days of history to live")] = 150,
    fresh: Annotated[bool, typer.Option("--fresh", help="remove the demo's SQLite database and seed anew")] = False,
) -> None:
    """Migrate, seed and serve the demo bank at http://HOST:PORT (`--port` when 8000 is taken), its data
    providers simulated by a sandbox process on a free loopback port that stops with the demo. A finished
    seeding is reused; `--fresh` seeds anew."""
    import uvicorn

    from microlend.demo import providers

    check_bind(host)
    sock = claim_port(host, port)
    tenant_id = _seed(customers, days, fresh=fresh)
    lo, hi = providers.SERVING_LATENCY_MS
    with providers.start(providers.anchor_of(open_uow(), tenant_id), (lo, hi)) as sandbox:
        changed = providers.connect(open_uow(), tenant_id, sandbox.base_url)
        console.print(
            f"provider sandbox at {sandbox.base_url} ({lo}-{hi} ms per call; {changed} provider settings re-pointed)"
        )
        console.print(f"Open [bold]http://{host}:{port}/[/] and sign in with a login above. API docs: /docs")
        stop = threading.Event()  # the bank's calendar runs next to the server, as `microlend worker` would
        calendar = threading.Thread(target=worker.serve, args=(open_uow(),), kwargs={"stop": stop}, daemon=True,
                                    name="worker")
        calendar.start()
        try:
            server = uvicorn.Server(uvicorn.Config("microlend.api.main:app", host=host, port=port, log_level="info"))
            server.run(sockets=[sock])
        finally:
            sock.close()
            stop.set()
            calendar.join(30)
