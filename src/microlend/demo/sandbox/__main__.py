"""`python -m microlend.demo.sandbox`: the sandbox without the rest of the command line (for a process of its
own; `microlend sandbox serve` takes the same options)."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from microlend.demo.sandbox.app import SandboxOptions, parse_latency
from microlend.demo.sandbox.profiles import DEFAULT_SEED
from microlend.demo.sandbox.server import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m microlend.demo.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700)
    parser.add_argument("--public", action="store_true", help="allow a host other machines can reach")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--anchor",
        type=date.fromisoformat,
        default=None,
        help="the day the simulated world is built around (default: today)",
    )
    parser.add_argument("--latency-ms", type=parse_latency, default=(0, 0))
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--timeout-rate", type=float, default=0.0)
    parser.add_argument("--malformed-rate", type=float, default=0.0)
    parser.add_argument("--timeout-s", type=float, default=10.0)
    parser.add_argument("--keys", default="sandbox", help="accepted API keys, comma-separated")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    try:
        options = SandboxOptions(
            seed=args.seed,
            anchor=args.anchor,
            latency_ms=args.latency_ms,
            error_rate=args.error_rate,
            timeout_rate=args.timeout_rate,
            malformed_rate=args.malformed_rate,
            timeout_s=args.timeout_s,
            keys=tuple(k for k in args.keys.split(",") if k.strip()),
        )
        serve(options, args.host, args.port, public=args.public, log_level=args.log_level)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
