"""Seconds from a fresh clone to the demo's first page: clone this repository into a temporary folder, run
`make demo PORT=…` with a new data folder and time the install (until `.venv/.installed-demo`) and the first
200 of `/` (following the redirect to the sign-in page). Run it twice: the second clone shows the reuse of a
kept seeding. `python bench/bench_first_page.py [--port 8765] [--keep]`."""

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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--keep", action="store_true", help="leave the clone in place")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="microlend-clone-"))
    clone = folder / "microlend"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = {**os.environ, "MICROLEND_DATA_DIR": str(clone / "var")}
    started = time.perf_counter()
    log = (folder / "make-demo.log").open("w")
    demo = subprocess.Popen(["make", "demo", f"PORT={args.port}"], cwd=clone, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    installed = served = None
    try:
        while time.perf_counter() - started < args.timeout and demo.poll() is None:
            if installed is None and (clone / ".venv" / ".installed-demo").exists():
                installed = time.perf_counter() - started
            if first_page(args.port):
                served = time.perf_counter() - started
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
    print(f"install {installed or float('nan'):.1f} s, first page {served or float('nan'):.1f} s "
          f"(log {folder / 'make-demo.log'})")
    if not args.keep:
        shutil.rmtree(clone, ignore_errors=True)
    return 0 if served is not None else 1


if __name__ == "__main__":
    sys.exit(main())
