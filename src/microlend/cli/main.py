"""The `microlend` command: one Typer group per module, registered below."""

from __future__ import annotations

import typer

app = typer.Typer(name="microlend", help="Microlend: digital lending for small banks.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
