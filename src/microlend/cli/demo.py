"""`microlend demo`: migrate, seed the demo bank, print its logins and serve it, with the external data
providers simulated by the provider sandboxes in a process of their own.

Seeding is reused: a finished seeding leaves `<data dir>/demo-seed.json` naming the database, the seed's
version and its size (customers, days). A later `demo run` or `demo seed` on the same database whose schema is
at this version's heads and whose note matches seeds nothing and serves at once; a database behind is migrated
first. `--fresh` removes the demo's SQLite database and files and seeds anew (on PostgreSQL, drop the database
yourself).

A finished seeding on SQLite is also kept on this machine (`~/.cache/microlend/demo`, or the folder in
`MICROLEND_DEMO_CACHE`; `off` keeps nothing; nor is anything kept when the keys come from the environment): the
database, the data folder's keys and files, under a key of the
seed's version and size and a fingerprint of this version's code. A new data folder (no database yet) with the
same key starts from that copy instead of living its history again — a fresh clone of the same code serves in
seconds. Any change to the code makes a new key, so a copy never serves data the code would not make."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import socket
import sqlite3
import threading
import time
from concurrent.futures import ProcessPoolExecutor
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
#: The business days of history the demo lives by default: two and a half months give every persona real work
#: (loans repaid and in arrears, collections cases with kept and broken promises, month-end model monitoring and
#: provisioning, month-old data asked again, referred applications waiting) at half the seeding time of five
#: months; `--days` lives more.
HISTORY_DAYS = 75


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


def cache_root() -> Path | None:
    """Where finished seedings are kept (None: nowhere). Only a demo whose keys are its data folder's own
    is kept: a copy made under keys from the environment could not be read under others."""
    if os.environ.get("MICROLEND_SECRET_KEY") or os.environ.get("MICROLEND_AUDIT_KEY"):
        return None
    value = os.environ.get("MICROLEND_DEMO_CACHE")
    if value is not None:
        return None if value.strip().lower() in ("", "off", "0", "no") else Path(value)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "microlend" / "demo"


def code_fingerprint() -> str:
    """A digest of this version's package files: seeding goes through every module's use cases."""
    import microlend

    root = Path(microlend.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                       and p.suffix not in (".pyc", ".mo")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def _snapshot_dir(customers: int, days: int) -> Path | None:
    root = cache_root()
    return None if root is None else root / f"v{SEED_VERSION}-{customers}c-{days}d-{code_fingerprint()}"


def _sqlite_file() -> Path | None:
    from sqlalchemy.engine import make_url

    from microlend.core.settings import get_settings

    url = make_url(get_settings().database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


#: What a snapshot copies from the data folder besides the database (keys, the demo's files, the datasets).
KEPT = ("secret_key", "audit.key", "demo-files", "datasets")


def keep_seeding(customers: int, days: int) -> Path | None:
    """Copy a finished seeding (database through SQLite's online backup, the data folder's keys and files)
    into the cache; returns the snapshot's folder."""
    from microlend.core.settings import get_settings

    target, db = _snapshot_dir(customers, days), _sqlite_file()
    if target is None or db is None or target.exists():
        return target
    data_dir = get_settings().data_dir
    work = target.with_name(target.name + f".{os.getpid()}.tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, mode=0o700)
    source, copy = sqlite3.connect(db), sqlite3.connect(work / "microlend.db")
    try:
        source.backup(copy)
    finally:
        source.close()
        copy.close()
    for name in KEPT:
        item = data_dir / name
        if item.is_dir():
            shutil.copytree(item, work / name)
        elif item.is_file():
            shutil.copy2(item, work / name)
    (work / "data_dir.txt").write_text(str(data_dir.resolve()), encoding="utf-8")
    try:
        work.rename(target)
    except OSError:  # another demo kept the same seeding meanwhile
        shutil.rmtree(work, ignore_errors=True)
    return target


def restore_seeding(customers: int, days: int) -> bool:
    """Start a new data folder (no database yet) from a kept seeding of this key; the keys made for the empty
    folder are replaced by the snapshot's (nothing was written with them). Dataset rows point at the new
    folder's files."""
    from microlend.core.settings import get_settings

    snapshot, db = _snapshot_dir(customers, days), _sqlite_file()
    if snapshot is None or db is None or db.exists() or not (snapshot / "microlend.db").is_file():
        return False
    data_dir = get_settings().data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in KEPT:
        item, here = snapshot / name, data_dir / name
        if item.is_dir():
            shutil.rmtree(here, ignore_errors=True)
            shutil.copytree(item, here)
        elif item.is_file():
            shutil.copy2(item, here)
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(snapshot / "microlend.db", db)
    old, new = (snapshot / "data_dir.txt").read_text(encoding="utf-8"), str(data_dir.resolve())
    connection = sqlite3.connect(db)
    try:
        with connection:
            connection.execute("UPDATE datasets SET path = replace(path, ?, ?), source = replace(source, ?, ?)",
                               (old, new, old, new))
    finally:
        connection.close()
    get_settings.cache_clear()  # the folder's keys are the snapshot's now
    _note_path().write_text(json.dumps(_wanted(customers, days)), encoding="utf-8")
    console.print(f"the demo bank starts from a seeding kept on this machine ({snapshot}); `--fresh` seeds anew")
    return True


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (the datasets' process; 0 where not measured)."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return 0.0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _seed_datasets(tenant_id: int, folder: str) -> str:
    """The analysts' datasets, in a process of its own (on the database and keys of this one's settings)."""
    from microlend.demo.history import seed_datasets

    return seed_datasets(open_uow(), tenant_id, Path(folder))


def _seed(customers: int, days: int = HISTORY_DAYS, *, fresh: bool = False) -> int:
    """Seed the demo bank (and live its history once, against a fast sandbox) unless a finished seeding of
    this version and size is there to reuse; returns the bank's id."""
    from microlend.core.db import make_engine
    from microlend.core.migrate import schema_state, upgrade
    from microlend.core.settings import get_settings
    from microlend.demo import providers
    from microlend.demo.seed import seed

    started, cpu = time.perf_counter(), time.process_time()
    if fresh:
        _fresh()
    elif days:
        restore_seeding(customers, days)
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
        from microlend.demo.history import seed_marketing, simulate

        # the analysts' datasets touch nothing the history does: imported by a process of their own meanwhile
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=spawn) as helper:
            datasets = helper.submit(_seed_datasets, bank.tenant_id, str(get_settings().data_dir / "demo-files"))
            with providers.in_process(providers.anchor_of(open_uow(), bank.tenant_id)) as address:
                providers.connect(open_uow(), bank.tenant_id, address)
                console.print("provider sandbox answering in this process while the history is lived")
                with Progress(console=console, transient=True) as progress:
                    task = progress.add_task(f"living {days} days at the demo bank", total=days)
                    life = simulate(open_uow(), bank.tenant_id, days=days,
                                    progress=lambda n: progress.advance(task, n))
            lived = time.perf_counter()
            console.print(f"{life.days} business days: {life.summary()}; {life.repayments} repayments")
            console.print(seed_marketing(open_uow(), bank.tenant_id))
            marketed = time.perf_counter()
            console.print(datasets.result())
        console.print(
            f"seeding took {time.perf_counter() - started:.0f} s: customers and accounts "
            f"{seeded - started:.0f} s, history {lived - seeded:.0f} s, marketing {marketed - lived:.1f} s, "
            f"then waiting for the datasets {time.perf_counter() - marketed:.1f} s (CPU of this process "
            f"{time.process_time() - cpu:.0f} s, of the datasets' {_children_cpu():.0f} s)"
        )
    if bank.new:  # only a seeding that went through to the end is reused
        _note_path().parent.mkdir(parents=True, exist_ok=True)
        _note_path().write_text(json.dumps(_wanted(customers, days)), encoding="utf-8")
        if days:
            kept = keep_seeding(customers, days)
            if kept is not None:
                console.print(f"seeding kept in {kept} for the next new data folder")
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
    days: Annotated[int, typer.Option(min=0, max=365, help="days of history to live")] = HISTORY_DAYS,
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
    days: Annotated[int, typer.Option(min=0, max=365, help="days of history to live")] = HISTORY_DAYS,
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
