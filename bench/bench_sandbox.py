"""The provider sandbox under a burst: calls spread over the six providers, all at once, against the sandbox in
a process of its own, from a minimal HTTP/1.1 client (one connection per call, so the load tool's own CPU
stays small). Prints the wall time, calls/s and p50/p95/max latency per scenario.

Run: .venv/bin/python bench/bench_sandbox.py
With latency 50-300 ms per call, 200 calls at once should take about the slowest call (~0.3-0.5 s): the
sandbox waits with asyncio, so one process serves them side by side."""

from __future__ import annotations

import asyncio
import os
import random
import time
from urllib.parse import urlencode

from microlend.demo.sandbox import KINDS, PATHS, subject_with
from microlend.demo.sandbox.process import start_sandbox

SCENARIOS = (((50, 300), 200, 200), ((50, 300), 1000, 200), ((0, 0), 2000, 50))


async def call(port: int, path: str) -> float:
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: sandbox\r\nAuthorization: Bearer sandbox\r\nConnection: close\r\n\r\n".encode()
    )
    data = await reader.read()
    writer.close()
    if not data.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(data[:200].decode(errors="replace"))
    return time.monotonic() - started


async def burst(port: int, paths: list[str], at_once: int) -> tuple[float, list[float]]:
    gate = asyncio.Semaphore(at_once)

    async def one(path: str) -> float:
        async with gate:
            return await call(port, path)

    started = time.monotonic()
    latencies = await asyncio.gather(*(one(p) for p in paths))
    return time.monotonic() - started, sorted(latencies)


def main() -> None:
    rng = random.Random(1)
    subjects = [subject_with(p, rng) for p in ["good"] * 30 + ["declining", "shell", "thin", "overdue"] * 3]
    for latency, calls, at_once in SCENARIOS:
        paths = [
            f"/v1/{KINDS[n % 6]}/{PATHS[KINDS[n % 6]]}?" + urlencode({"subject": subjects[n % len(subjects)]})
            for n in range(calls)
        ]
        with start_sandbox(latency_ms=latency) as sandbox:
            asyncio.run(burst(sandbox.port, paths[:50], 50))  # warm up
            wall, lat = asyncio.run(burst(sandbox.port, paths, at_once))
        print(
            f"latency {latency[0]}-{latency[1]} ms, {calls} calls, {at_once} at once: wall {wall:.2f} s "
            f"({calls / wall:.0f} calls/s), p50 {lat[len(lat) // 2] * 1000:.0f} ms, "
            f"p95 {lat[int(len(lat) * 0.95)] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms"
        )
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
