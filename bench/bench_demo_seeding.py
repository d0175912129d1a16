"""Where a first seeding of the demo bank spends its time, by phase: `microlend demo seed` into a new data folder
(no kept seeding) under cProfile, then the cumulative seconds of the seeding's parts (customers and accounts,
the history's applications, repayments, collections and the worker's jobs, marketing) and of what one
application costs (consents, data gathering, scoring, the policy, audit records). The datasets are imported by a
process of their own (not in the profile). Prints the wall time, this process's CPU time and the machine's load.
`python bench/bench_demo_seeding.py [--days 75] [--customers 1000]`, or `--profile FILE` to summarise a
profile written before (`python -m cProfile -o FILE -m microlend demo seed`)."""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: (label, module file suffix, function name): the parts of a seeding, outermost first
PARTS = [
    ("seeding, all", "cli/demo.py", "_seed"),
    ("customers and staff", "demo/seed.py", "seed"),
    ("  accounts imported", "demo/seed.py", "seed_accounts"),
    ("history, all", "demo/history.py", "simulate"),
    ("  applications of the day", "demo/history.py", "_applications_of_the_day"),
    ("    consents given", "demo/signing.py", "give_consent"),
    ("    submit (decided at once)", "origination/service.py", "submit"),
    ("      external data gathered", "origination/business_data.py", "gather"),
    ("      scored", "risk/registry.py", "score"),
    ("      policy decided", "decisioning/service.py", "decide"),
    ("    recommend", "origination/service.py", "recommend"),
    ("    approve", "origination/service.py", "approve"),
    ("    signed", "demo/signing.py", "sign"),
    ("    disbursed", "origination/service.py", "disburse"),
    ("  repayments of the day", "demo/history.py", "_repayments_of_the_day"),
    ("  collections of the day", "demo/history.py", "_collections_of_the_day"),
    ("  worker's jobs", "demo/history.py", "_run_jobs"),
    ("  alerts acted on", "demo/history.py", "_act_on_alerts"),
    ("marketing", "demo/history.py", "seed_marketing"),
    ("audit records (everywhere)", "core/audit.py", "record"),
    ("argon2 hashing (everywhere)", "argon2/_password_hasher.py", "hash"),
    ("pandera validation (everywhere)", "pandera/api/pandas/container.py", "validate"),
]


def summarise(profile: pstats.Stats, top: int) -> None:
    stats = profile.stats  # type: ignore[attr-defined]
    for label, suffix, name in PARTS:
        hits = [(v[3], v[1]) for (file, _, fn), v in stats.items() if fn == name and file.endswith(suffix)]
        if hits:
            cumulative, calls = max(hits)
            each = 1000 * cumulative / max(calls, 1)
            print(f"{label:<34} {cumulative:8.1f} s  {calls:7d} calls  {each:8.1f} ms/call")
    print(f"\nthe {top} functions of the package with the most time of their own:")
    own = sorted(((v[2], v[1], f"{Path(file).name}:{fn}") for (file, _, fn), v in stats.items()
                  if "/microlend/" in file), reverse=True)[:top]
    for tottime, calls, where in own:
        print(f"  {tottime:7.1f} s  {calls:8d}  {where}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=75)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--profile", type=Path, help="summarise this profile instead of seeding")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    if args.profile:
        summarise(pstats.Stats(str(args.profile)), args.top)
        return 0
    folder = tempfile.mkdtemp(prefix="demo-seeding-")
    os.environ.update(MICROLEND_DATA_DIR=folder, MICROLEND_DEMO_CACHE="off")
    sys.path.insert(0, str(ROOT / "src"))
    from typer.testing import CliRunner

    from microlend.cli.main import app

    started, cpu = time.perf_counter(), time.process_time()
    profiler = cProfile.Profile()
    result = profiler.runcall(CliRunner().invoke, app, ["demo", "seed", "--customers", str(args.customers),
                                                        "--days", str(args.days)])
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    if result.exit_code != 0:
        print(result.output, result.exception, file=sys.stderr)
        return 1
    load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    print(f"seeding {args.customers} customers, {args.days} days: {wall:.1f} s wall, {cpu:.1f} s CPU of this "
          f"process under the profiler (the datasets' process apart), load average {load}; data in {folder}\n")
    summarise(pstats.Stats(profiler), args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
