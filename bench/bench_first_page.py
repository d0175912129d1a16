"""Seconds from a fresh clone to the demo's first page: clone this repository into a temporary folder, run
`make demo PORT=…` with a new data folder and time the install (until `.venv/.installed-demo`) and the first
200 of `/` (following the redirect to the sign-in page). Run it twice: the second clone shows the reuse of a
kept seeding; `--cold` gives the clone an empty seeding cache of its own, so it seeds from nothing however often
it runs, and `--cache DIR` names the cache (a first run fills it, a second starts from it). It clones the
repository this script is in (its checked-out branch, committed work only), and prints the wall time, the CPU
time of `make demo` and everything it started, and the machine's load.
`python bench/bench_first_page.py [--port 8765] [--cold | --cache DIR] [--keep]`."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def first_page(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as answer:  # follows the 303
            return bool(answer.status == 200)
    except OSError:
        return False


def cpu_seconds(session: int) -> float | None:
    """User and system CPU of every process of the session `make demo` leads, with their waited-for children
    (Linux /proc; None elsewhere)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    try:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == session:  # the session id (field 6 of stat)
                total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    except OSError:
        return None
    return total / tick


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--keep", action="store_true", help="leave the clone in place")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--cold", action="store_true", help="an empty seeding cache: seed from nothing")
    parser.add_argument("--cache", type=Path, help="the seeding cache to use (run twice: cold, then warm)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="microlend-clone-"))
    clone = folder / "microlend"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    # the clone's own package, whatever the environment of this script points Python at
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["MICROLEND_DATA_DIR"] = str(clone / "var")
    if args.cold or args.cache:
        env["MICROLEND_DEMO_CACHE"] = str(args.cache or folder / "seeding-cache")
    started = time.perf_counter()
    log = (folder / "make-demo.log").open("w")
    demo = subprocess.Popen(["make", "demo", f"PORT={args.port}"], cwd=clone, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    installed = served = cpu = None
    try:
        while time.perf_counter() - started < args.timeout and demo.poll() is None:
            if installed is None and (clone / ".venv" / ".installed-demo").exists():
                installed = time.perf_counter() - started
            if first_page(args.port):
                served = time.perf_counter() - started
                cpu = cpu_seconds(demo.pid)
                break
            time.sleep(0.5)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGINT)
            try:
                demo.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(demo.pid, signal.SIGKILL)
        log.close()
    load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    print(f"install {installed or float('nan'):.1f} s, first page {served or float('nan'):.1f} s wall, "
          f"{cpu or float('nan'):.1f} s CPU (make demo and what it started), load average {load} "
          f"(seeding cache {env.get('MICROLEND_DEMO_CACHE', 'of the machine')}; log {folder / 'make-demo.log'})")
    if not args.keep:
        shutil.rmtree(clone, ignore_errors=True)
    return 0 if served is not None else 1


if __name__ == "__main__":
    sys.exit(main())
