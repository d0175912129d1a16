"""`microlend worker`: the process that runs every bank's calendar next to the web server, and the commands
to see a bank's jobs and runs and to ask for a run again."""

from __future__ import annotations

import json
import logging
import signal
import threading
from datetime import date
from typing import Annotated, Any

import typer
from rich.table import Table

from microlend import worker
from microlend.cli.common import console, fail, open_uow, tenant_principal, user_errors
from microlend.core import jobs

app = typer.Typer(help="The worker: each bank's calendar (close of business, provisioning, reminders).",
                  invoke_without_command=True)


@app.callback()
@user_errors
def run(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Run what is due now and stop")] = False,
    poll: Annotated[float, typer.Option(min=1, help="Seconds between looks at the calendar")] = 30.0,
    timezone: Annotated[str, typer.Option(help="Time zone of a new bank's calendar")] = jobs.DEFAULT_TIMEZONE,
) -> None:
    """Run the worker until stopped (SIGTERM or Ctrl-C); with --once, run what is due and stop."""
    if ctx.invoked_subcommand is not None:
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    jobs.zone(timezone)
    uow = open_uow()
    if once:
        worker.ensure_calendars(uow, timezone=timezone)
        outcomes = worker.run_due(uow)
        for o in outcomes:
            console.print(f"{o.claim.kind} {o.claim.business_date} (tenant {o.claim.tenant_id}): "
                          f"{'ok' if o.ok else 'failed: ' + (o.error or '')}", highlight=False)
        console.print(f"{len(outcomes)} run(s)", highlight=False)
        if any(not o.ok for o in outcomes):
            raise typer.Exit(1)
        return
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    worker.serve(uow, poll_s=poll, stop=stop, timezone=timezone)


@app.command("jobs")
@user_errors
def list_jobs(tenant: Annotated[str, typer.Option(help="The bank")],
              as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The bank's calendar: each job, when it runs next and for which business date."""
    uow, who = tenant_principal(tenant, "worker-cli")
    rows = jobs.list_jobs(uow, who)
    if as_json:
        print(json.dumps([_job(j) for j in rows], ensure_ascii=False))
        return
    table = Table("id", "job", "cadence", "local time", "next business date", "next run (UTC)", "failures", "state")
    for j in rows:
        table.add_row(str(j.id), j.kind, j.cadence, f"{j.local_time} {j.timezone}", j.next_business_date.isoformat(),
                      j.next_run_at.isoformat(timespec="minutes"), str(j.failures),
                      "running" if j.running else (j.last_error or "")[:80])
    console.print(table)


@app.command("runs")
@user_errors
def list_runs(tenant: Annotated[str, typer.Option(help="The bank")],
              failed: Annotated[bool, typer.Option("--failed", help="Only failed runs")] = False,
              limit: Annotated[int, typer.Option(min=1, max=500)] = 30,
              as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The bank's runs, newest first: business date, start, seconds, outcome and figures."""
    uow, who = tenant_principal(tenant, "worker-cli")
    rows = jobs.list_runs(uow, who, status=jobs.FAILED if failed else None, limit=limit)
    if as_json:
        print(json.dumps([_run(r) for r in rows], ensure_ascii=False))
        return
    table = Table("id", "job", "business date", "started (UTC)", "seconds", "outcome", "attempt")
    table.add_column("figures / error", overflow="fold")
    for r in rows:
        table.add_row(str(r.id), r.kind, r.business_date.isoformat(), r.started_at.isoformat(timespec="seconds"),
                      "" if r.seconds is None else f"{r.seconds:.1f}", r.status, str(r.attempt),
                      r.error or json.dumps(r.figures, ensure_ascii=False)[:200])
    console.print(table)


@app.command("rerun")
@user_errors
def rerun(job_id: int, tenant: Annotated[str, typer.Option(help="The bank")],
          on: Annotated[str | None, typer.Option("--date", help="Business date (default: its latest run's)")] = None
          ) -> None:
    """Ask the worker to run a job again now (for a business date up to its next one)."""
    try:
        business_date = date.fromisoformat(on) if on else None
    except ValueError:
        raise fail(f"date: '{on}' is not a date YYYY-MM-DD") from None
    uow, who = tenant_principal(tenant, "worker-cli")
    job = jobs.request_rerun(uow, who, job_id, business_date)
    console.print(f"job {job.id} ({job.kind}) will run for {job.rerun_date} at the worker's next look",
                  highlight=False)


def _job(j: jobs.JobView) -> dict[str, Any]:
    return {"id": j.id, "kind": j.kind, "cadence": j.cadence, "local_time": j.local_time, "timezone": j.timezone,
            "enabled": j.enabled, "next_business_date": j.next_business_date.isoformat(),
            "next_run_at": j.next_run_at.isoformat(), "failures": j.failures, "last_error": j.last_error,
            "rerun_date": j.rerun_date.isoformat() if j.rerun_date else None, "running": j.running}


def _run(r: jobs.RunView) -> dict[str, Any]:
    return {"id": r.id, "job_id": r.job_id, "kind": r.kind, "business_date": r.business_date.isoformat(),
            "attempt": r.attempt, "trigger": r.trigger, "worker": r.worker, "status": r.status,
            "started_at": r.started_at.isoformat(), "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            "seconds": r.seconds, "figures": r.figures, "error": r.error, "requested_by": r.requested_by}
