"""`microlend demo`: migrate, seed the demo bank, print its logins and serve it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from microlend.cli.common import check_bind, console, open_uow, user_errors

app = typer.Typer(help="The demo bank on an embedded database.", no_args_is_help=True)


def _seed(customers: int, days: int = 150) -> None:
    from microlend.core.db import make_engine
    from microlend.core.migrate import upgrade
    from microlend.core.settings import get_settings
    from microlend.demo.seed import seed

    upgrade(make_engine(get_settings().database_url))
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("seeding the demo bank", total=customers)
        bank = seed(open_uow(), customers=customers, progress=lambda n: progress.advance(task, n))
    if days and bank.new:
        from microlend.demo.history import simulate
        from microlend.demo.seed import german_credit

        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"living {days} days at the demo bank", total=days)
            life = simulate(open_uow(), bank.tenant_id, german_credit(), days=days,
                            progress=lambda n: progress.advance(task, n))
        console.print(f"{life.days} business days: {life.applications} applications, {life.disbursed} loans "
                      f"disbursed, {life.repayments} repayments, {life.waiting_review} waiting for review")
        from microlend.demo.history import seed_marketing

        console.print(seed_marketing(open_uow(), bank.tenant_id))
        from microlend.core.settings import get_settings
        from microlend.demo.history import seed_datasets

        console.print(seed_datasets(open_uow(), bank.tenant_id, get_settings().data_dir / "demo-files"))
    table = Table("username", "password", "role", title=f"Demo bank: {bank.customers} customers")
    for username, password, roles in bank.logins:
        table.add_row(username, password, roles)
    console.print(table)


@app.command("seed")
@user_errors
def seed_command(customers: Annotated[int, typer.Option(min=1, max=1000)] = 1000,
                 days: Annotated[int, typer.Option(min=0, max=365, help="days of history to live")] = 150) -> None:
    """Create the demo bank (idempotent) and print its logins."""
    _seed(customers, days)


@app.command("run")
@user_errors
def run(host: str = "127.0.0.1", port: int = 8000,
        customers: Annotated[int, typer.Option(min=1, max=1000)] = 1000,
        days: Annotated[int, typer.Option(min=0, max=365, help="days of history to live")] = 150) -> None:
    """Migrate, seed and serve the demo bank at http://HOST:PORT."""
    import uvicorn

    check_bind(host)
    _seed(customers, days)
    console.print(f"Open [bold]http://{host}:{port}/[/] and sign in with a login above. API docs: /docs")
    uvicorn.run("microlend.api.main:app", host=host, port=port, log_level="info")
