"""`microlend demo`: migrate, seed the demo bank, print its logins and serve it, with the external data
providers simulated by the provider sandboxes in a process of their own."""

from __future__ import annotations

import threading
import time
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from microlend import worker
from microlend.cli.common import check_bind, console, open_uow, user_errors

app = typer.Typer(help="The demo bank on an embedded database.", no_args_is_help=True)


def _seed(customers: int, days: int = 150) -> int:
    """Seed the demo bank (and live its history once, against a fast sandbox); returns the bank's id."""
    from microlend.core.db import make_engine
    from microlend.core.migrate import upgrade
    from microlend.core.settings import get_settings
    from microlend.demo import providers
    from microlend.demo.seed import seed

    started = time.perf_counter()
    upgrade(make_engine(get_settings().database_url))
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
) -> None:
    """Create the demo bank (idempotent) and print its logins."""
    _seed(customers, days)


@app.command("run")
@user_errors
def run(
    host: str = "127.0.0.1",
    port: int = 8000,
    customers: Annotated[int, typer.Option(min=1, max=1000)] = 1000,
    days: Annotated[int, typer.Option(min=0, max=365, help="days of history to live")] = 150,
) -> None:
    """Migrate, seed and serve the demo bank at http://HOST:PORT, its data providers simulated by a sandbox
    process on a free loopback port that stops with the demo."""
    import uvicorn

    from microlend.demo import providers

    check_bind(host)
    tenant_id = _seed(customers, days)
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
            uvicorn.run("microlend.api.main:app", host=host, port=port, log_level="info")
        finally:
            stop.set()
            calendar.join(30)
