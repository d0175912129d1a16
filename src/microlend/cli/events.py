"""`microlend events`: the event outbox for the people who run the platform — what waits, what failed, and
delivering it again."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from microlend.cli.common import console, open_uow, user_errors
from microlend.core import outbox, tenancy
from microlend.core.uow import UnitOfWork

app = typer.Typer(help="Domain events: deliveries to their handlers, waiting, failed and retried.",
                  no_args_is_help=True)


def _tenant_id(uow: UnitOfWork, tenant: str | None) -> int | None:
    return None if tenant is None else tenancy.tenant_by_name(uow, tenant).id


@app.command("list")
@user_errors
def list_deliveries(
    failed: Annotated[bool, typer.Option("--failed", help="Only deliveries that gave up after every attempt")] = False,
    pending: Annotated[bool, typer.Option("--pending", help="Only deliveries waiting for an attempt")] = False,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Deliveries of events to handlers, newest first, with their attempts and last error."""
    uow = open_uow()
    status = outbox.FAILED if failed else outbox.PENDING if pending else None
    rows = outbox.list_deliveries(uow, status=status, tenant_id=_tenant_id(uow, tenant), limit=limit)
    if as_json:
        print(json.dumps([{
            "id": r.id, "tenant_id": r.tenant_id, "event_id": r.event_id, "event_type": r.event_type,
            "handler": r.handler, "status": r.status, "attempts": r.attempts, "last_error": r.last_error,
            "created_at": r.created_at.isoformat(), "next_attempt_at": r.next_attempt_at.isoformat(),
            "delivered_at": r.delivered_at.isoformat() if r.delivered_at else None,
        } for r in rows], ensure_ascii=False))
        return
    table = Table("id", "tenant", "event", "status", "tries")
    table.add_column("handler", overflow="fold")
    table.add_column("next attempt / last error", overflow="fold")
    for r in rows:
        waiting = r.next_attempt_at.isoformat(timespec="seconds") + " " if r.status == outbox.PENDING else ""
        table.add_row(str(r.id), str(r.tenant_id), r.event_type, r.status, str(r.attempts),
                      r.handler.rsplit(".", 1)[-1], waiting + (r.last_error or "")[:200])
    console.print(table)
    totals = outbox.counts(uow, tenant_id=_tenant_id(uow, tenant))
    console.print(", ".join(f"{n:,} {s}" for s, n in totals.items()), highlight=False)


@app.command("retry")
@user_errors
def retry(
    failed: Annotated[bool, typer.Option("--failed", help="Give failed deliveries one more attempt too")] = False,
    all_waiting: Annotated[bool, typer.Option("--all", help="Also deliveries whose next attempt is not due")] = False,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 1000,
) -> None:
    """Deliver the waiting deliveries whose next attempt is due, each handler in its own unit of work."""
    uow = open_uow()
    tenant_id = _tenant_id(uow, tenant)
    requeued = outbox.requeue_failed(uow, tenant_id=tenant_id) if failed else 0
    report = outbox.deliver_due(uow, limit=limit, tenant_id=tenant_id, include_not_due=all_waiting)
    console.print(f"{report.done:,} delivered, {report.retrying:,} to retry later, {report.failed:,} failed"
                  + (f" ({requeued:,} failed ones given another attempt)" if failed else ""), highlight=False)
    if report.retrying or report.failed:
        raise typer.Exit(1)


@app.command("purge")
@user_errors
def purge(days: Annotated[int, typer.Option(min=1, help="Keep deliveries done in the last DAYS days")] = 30) -> None:
    """Delete deliveries done more than DAYS days ago; waiting and failed ones are kept."""
    removed = outbox.purge_done(open_uow(), older_than=timedelta(days=days))
    console.print(f"{removed:,} delivered events older than {days} days removed", highlight=False)
