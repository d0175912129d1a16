"""The `microlend` command: one Typer group per module."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from microlend.cli import backup
from microlend.cli.common import check_bind, console, fail, open_uow, user_errors
from microlend.core import audit, tenancy
from microlend.core.identity import STAFF_ROLES

app = typer.Typer(name="microlend", help="Microlend: digital lending for small banks.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
tenant_app = typer.Typer(help="Banks on this platform.", no_args_is_help=True)
user_app = typer.Typer(help="Staff users of a bank.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(tenant_app, name="tenant")
app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")

#: Module command groups: (module, attribute, command name). Missing modules are skipped.
MODULE_GROUPS: list[tuple[str, str, str]] = [
    ("microlend.cli.servicing", "app", "loan"),
    ("microlend.cli.servicing", "ledger_app", "ledger"),
    ("microlend.cli.servicing", "cob_app", "cob"),
    ("microlend.cli.servicing", "servicing_app", "servicing"),
    ("microlend.cli.servicing", "portfolio_app", "portfolio"),
    ("microlend.cli.data", "app", "data"),
    ("microlend.cli.risk", "app", "risk"),
    ("microlend.cli.federation", "app", "federation"),
    ("microlend.cli.decisioning", "app", "policy"),
    ("microlend.cli.decisioning", "decision_app", "decision"),
    ("microlend.cli.marketing", "app", "marketing"),
    ("microlend.cli.demo", "app", "demo"),
    ("microlend.cli.sandbox", "app", "sandbox"),
    ("microlend.cli.events", "app", "events"),
    ("microlend.cli.worker", "app", "worker"),
    ("microlend.cli.batch", "app", "batch"),
]


def _groups_needed() -> set[str] | None:
    """When run as `microlend GROUP ...`, load only that group's module (the model libraries behind some
    groups take seconds to import); otherwise (help, tests) load them all."""
    words = [a for a in sys.argv[1:] if not a.startswith("-")]
    if Path(sys.argv[0]).name != "microlend" or not words:
        return None
    return {words[0]}


app.command("backup")(backup.backup)
app.command("restore")(backup.restore)

_needed = _groups_needed()
for _module, _attr, _name in MODULE_GROUPS:
    if _needed is None or _name in _needed:
        app.add_typer(getattr(importlib.import_module(_module), _attr), name=_name)


@db_app.command("upgrade")
@user_errors
def db_upgrade(
    module: Annotated[list[str] | None, typer.Option(help="Only this module's schema (and what it needs); repeatable")]
    = None,
) -> None:
    """Create or migrate the schema to the newest version."""
    from microlend.core.db import make_engine
    from microlend.core.migrate import current, upgrade
    from microlend.core.settings import get_settings

    engine = make_engine(get_settings().database_url)
    upgrade(engine, modules=module)
    console.print(f"schema at {', '.join(current(engine))}")


@tenant_app.command("create")
@user_errors
def tenant_create(
    name: str,
    display_name: Annotated[str | None, typer.Option(help="Name shown to users")] = None,
    currency: str = "CNY",
    locale: Annotated[str, typer.Option(help="zh_CN or en")] = "zh_CN",
) -> None:
    """Create a bank, ready to work: chart of accounts, products, policy and a starter model included."""
    t = tenancy.create_tenant(open_uow(), name, display_name=display_name, currency=currency, locale=locale)
    console.print(f"tenant [bold]{t.name}[/] created (id {t.id}, business date {t.business_date})")


@tenant_app.command("list")
@user_errors
def tenant_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    tenants = tenancy.list_tenants(open_uow())
    if as_json:
        print(json.dumps([{"id": t.id, "name": t.name, "display_name": t.display_name,
                           "business_date": t.business_date.isoformat()} for t in tenants], ensure_ascii=False))
        return
    table = Table("id", "name", "display name", "currency", "business date")
    for t in tenants:
        table.add_row(str(t.id), t.name, t.display_name, t.currency, t.business_date.isoformat())
    console.print(table)


@user_app.command("create")
@user_errors
def user_create(
    tenant: Annotated[str, typer.Option(help="Tenant name")],
    username: Annotated[str, typer.Option()],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    role: Annotated[list[str], typer.Option(help=f"One of: {', '.join(STAFF_ROLES)}; repeat for several")],
    display_name: str = "",
    branch: str = "",
) -> None:
    """Create a staff user in a bank."""
    u = tenancy.create_user_platform(open_uow(), tenant, username, password, role, display_name=display_name,
                                     branch=branch)
    console.print(f"user [bold]{u.username}[/] created in {tenant} with roles {', '.join(u.roles)}")


@app.command("login")
@user_errors
def login(
    user: Annotated[str, typer.Option("--user", help="Your username")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
) -> None:
    """Sign in as a person for the commands that need one (submit, publish, promote, approve...): the
    password is prompted without echo; a token lasting 30 minutes is kept in the data directory (0600)."""
    from microlend.cli.session import SESSION_MINUTES, log_in

    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else typer.prompt("Password", hide_input=True)
    who = log_in(open_uow(), user, password)
    console.print(f"signed in as {who.username} for {SESSION_MINUTES} minutes", highlight=False)


@app.command("logout")
@user_errors
def logout() -> None:
    """Forget this machine's sign-in."""
    from microlend.cli.session import log_out

    console.print("signed out" if log_out() else "nobody was signed in", highlight=False)


@audit_app.command("verify")
@user_errors
def audit_verify(tenant: Annotated[str | None, typer.Option(help="Only this tenant")] = None) -> None:
    """Recompute every tenant's keyed audit chain; exit code 1 if a record was edited or removed, a head was
    altered or deleted, or a bank's chain is gone."""
    uow = open_uow()
    names = {t.id: t.name for t in tenancy.list_tenants(uow)}
    only = tenancy.tenant_by_name(uow, tenant).id if tenant else None
    broken = False
    with uow.read_only(streamed=True):  # one snapshot, each chain read in chunks
        ids = [only] if only is not None else audit.chain_tenants(uow.session)
        for tenant_id in ids:
            report = audit.verify(uow.session, tenant_id)
            status = "[green]intact[/]" if report.ok else "[red]BROKEN[/]"
            name = names.get(tenant_id, f"tenant {tenant_id} (no such bank)")
            console.print(f"{name}: {report.records} records, {status}", highlight=False)
            for problem in report.problems:
                console.print(f"  - {problem}", highlight=False)
            broken = broken or not report.ok
    if broken:
        raise typer.Exit(1)


@app.command("serve")
@user_errors
def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Run the web server (API, OpenAPI at /docs, staff and borrower pages)."""
    import uvicorn

    if not 1 <= port <= 65535:
        raise fail("port: must be between 1 and 65535")
    check_bind(host)
    # the app writes one line per request itself (with its request id, route, status and time)
    uvicorn.run("microlend.api.main:app", host=host, port=port, workers=workers, log_level="info",
                proxy_headers=False, access_log=False)

