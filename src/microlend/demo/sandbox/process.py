"""The sandbox in a process of its own (`python -m microlend.demo.sandbox`), for tests and the demo: started on a
free port, ready once `/healthz` answers, stopped with `.stop()` or at the end of a `with` block."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

from microlend.demo.sandbox.app import SandboxOptions


@dataclass
class SandboxProcess:
    base_url: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> None:
        """End the process (politely, then for good) and drop its log."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _arguments(options: SandboxOptions, host: str, port: int) -> list[str]:
    lo, hi = options.latency_ms
    args = [
        "--host",
        host,
        "--port",
        str(port),
        "--seed",
        str(options.seed),
        "--latency-ms",
        f"{lo}-{hi}",
        "--error-rate",
        str(options.error_rate),
        "--timeout-rate",
        str(options.timeout_rate),
        "--malformed-rate",
        str(options.malformed_rate),
        "--timeout-s",
        str(options.timeout_s),
        "--keys",
        ",".join(options.keys),
    ]
    if options.anchor is not None:
        args += ["--anchor", options.anchor.isoformat()]
    return args


def start_sandbox(
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    seed: int = 0,
    anchor: date | None = None,
    latency_ms: tuple[int, int] = (0, 0),
    error_rate: float = 0.0,
    timeout_rate: float = 0.0,
    malformed_rate: float = 0.0,
    keys: tuple[str, ...] = ("sandbox",),
    timeout_s: float = 10.0,
    startup_timeout: float = 20.0,
) -> SandboxProcess:
    """Start the sandbox in a new process (`port` 0: a free port) and return once it answers `/healthz`."""
    options = SandboxOptions(
        seed=seed,
        anchor=anchor,
        latency_ms=latency_ms,
        error_rate=error_rate,
        timeout_rate=timeout_rate,
        malformed_rate=malformed_rate,
        keys=keys,
        timeout_s=timeout_s,
    )
    source = str(Path(__file__).resolve().parents[3])  # the directory holding the `microlend` package
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p)}
    for attempt in range(3):
        chosen = port or free_port(host)
        log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by SandboxProcess.stop
        process = subprocess.Popen(
            [sys.executable, "-m", "microlend.demo.sandbox", *_arguments(options, host, chosen)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        sandbox = SandboxProcess(f"http://{host}:{chosen}", process, log)
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"{sandbox.base_url}/healthz", timeout=1.0).status_code == 200:
                    return sandbox
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        output = sandbox.output()
        sandbox.stop()
        if port or attempt == 2 or "address already in use" not in output.lower():
            raise RuntimeError(f"the sandbox did not start on {sandbox.base_url}: {output.strip()[-2000:]}")
    raise AssertionError("unreachable")  # pragma: no cover
