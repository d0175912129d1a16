"""`microlend sandbox`: the external data providers (bureau, tax, e-invoices, merchant acquiring, registry,
court enforcement) simulated over HTTP for the demo and tests."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from microlend.cli.common import console, fail, user_errors

app = typer.Typer(help="Provider sandboxes: simulated external data over HTTP.", no_args_is_help=True)


@app.command("serve")
@user_errors
def serve(
    host: str = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8700,
    seed: Annotated[int, typer.Option(help="seed of the simulated businesses (profiles and histories)")] = 0,
    anchor: Annotated[str | None, typer.Option(help="day the simulated world is built around (default today)")] = None,
    latency_ms: Annotated[str, typer.Option(help="uniform latency per call, milliseconds LOW-HIGH")] = "50-300",
    error_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="share of calls answered 503")] = 0.0,
    timeout_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="share of calls held 10 s")] = 0.0,
    malformed_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="share of calls with a broken body")] = 0.0,
    keys: Annotated[str, typer.Option(help="accepted Bearer keys, comma-separated")] = "sandbox",
    public: Annotated[bool, typer.Option("--public", help="allow a host other machines can reach")] = False,
) -> None:
    """Serve the six providers under http://HOST:PORT/v1/... (health at /healthz)."""
    from microlend.demo.sandbox import SandboxOptions, parse_latency
    from microlend.demo.sandbox import serve as run
    from microlend.demo.sandbox.server import check_host

    try:
        day = date.fromisoformat(anchor) if anchor else None
    except ValueError:
        raise fail(f"anchor: '{anchor}' is not an ISO date (YYYY-MM-DD)") from None
    try:
        options = SandboxOptions(
            seed=seed,
            anchor=day,
            latency_ms=parse_latency(latency_ms),
            error_rate=error_rate,
            timeout_rate=timeout_rate,
            malformed_rate=malformed_rate,
            keys=tuple(k.strip() for k in keys.split(",") if k.strip()),
        )
        check_host(host, public)
    except ValueError as exc:
        raise fail(str(exc)) from None
    console.print(f"provider sandbox at [bold]http://{host}:{port}/v1/[/] (keys: {', '.join(options.keys)})")
    run(options, host, port, public=public)
