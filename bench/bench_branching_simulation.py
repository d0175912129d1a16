"""Batch simulation of a branching policy (switchNode): applications/s against the same policy without
branches and the rule engine row by row, and how many rows the batch and the engine decide differently.

Run: .venv/bin/python bench/bench_branching_simulation.py [--rows 500000]
Target (issue 20): the same order of magnitude as a straight policy (hundreds of thousands/s).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.unit.decisioning.branching_policy import branching_policy

from microlend.decisioning.columnar import ColumnarPolicy
from microlend.decisioning.policy import default_policy
from microlend.decisioning.simulate import applications_from_lending_club, evaluate_frame, frame_columns, simulate


def rate(doc: dict[str, object], frame: pd.DataFrame, repeat: int = 3) -> tuple[float, float]:
    """(applications/s of the batch evaluation alone, of columns + evaluation), best of `repeat`."""
    policy = ColumnarPolicy(doc)
    best_eval = best_total = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        cols = frame_columns(frame, policy.fields)
        prep = time.perf_counter() - t
        t = time.perf_counter()
        policy.evaluate(cols, len(frame))
        evaluation = time.perf_counter() - t
        best_eval, best_total = min(best_eval, evaluation), min(best_total, prep + evaluation)
    return len(frame) / best_eval, len(frame) / best_total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--engine-rows", type=int, default=2000)
    args = parser.parse_args()
    lc = applications_from_lending_club()
    frame = pd.concat([lc] * (args.rows // len(lc) + 1), ignore_index=True).head(args.rows)
    branching = branching_policy()
    assert ColumnarPolicy(branching).branching
    print(f"simulation over {args.rows:,} Lending Club applications:")
    ev, total = rate(branching, frame)
    print(f"  branching policy (switchNode, 3 branches), batch: {ev:,.0f} applications/s "
          f"(with building the columns: {total:,.0f}/s)")
    ev, total = rate(default_policy(), frame)
    print(f"  the same policy without branches, batch:        {ev:,.0f} applications/s "
          f"(with building the columns: {total:,.0f}/s)")
    t = time.perf_counter()
    report = simulate(branching, frame, baseline=default_policy(), charts=False)
    total = time.perf_counter() - t
    print(f"  full simulate() of the branching policy against the straight one, with money by segment: "
          f"{total:.2f} s ({args.rows / total:,.0f} applications/s per policy pair; mode {report.mode})")
    sample = lc.head(args.engine_rows)
    t = time.perf_counter()
    evaluate_frame(branching, sample, mode="engine")
    engine_rate = len(sample) / (time.perf_counter() - t)
    print(f"  branching policy, rule engine row by row:       {engine_rate:,.0f} applications/s")
    batch, mode = evaluate_frame(branching, lc)
    engine_all, _ = evaluate_frame(branching, lc, mode="engine")
    mismatches = sum(batch.row(i) != engine_all.row(i) for i in range(len(lc)))
    print(f"  batch ({mode}) vs engine on all {len(lc):,} sample applications: {mismatches} mismatches")


if __name__ == "__main__":
    main()
