"""Decision engine figures: in-process decision latency, stored decisions on SQLite, batch simulation rate.

Run: .venv/bin/python bench/bench_decisions.py [--rows 500000]
Targets (issue 5): in-process decision p99 <= 2 ms; simulation >= 50,000 applications/s.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from microlend.decisioning.domain import DecisionInput
from microlend.decisioning.policy import compile_policy, deep_merge, default_policy


def percentiles(samples_ms: list[float]) -> str:
    arr = np.array(samples_ms)
    return (
        f"p50 {np.percentile(arr, 50):.3f} ms, p95 {np.percentile(arr, 95):.3f} ms, "
        f"p99 {np.percentile(arr, 99):.3f} ms, max {arr.max():.3f} ms (n={len(arr)})"
    )


CPU_MS: list[float] = []


def time_calls(fn: Any, n: int, warmup: int = 200) -> list[float]:
    """Wall-clock milliseconds per call; the thread's CPU milliseconds per call are left in CPU_MS (on a
    shared machine the wall-clock tail includes time the process waited for a core)."""
    for _ in range(warmup):
        fn()
    out = []
    CPU_MS.clear()
    for _ in range(n):
        c = time.thread_time()
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
        CPU_MS.append((time.thread_time() - c) * 1000)
    return out


def report(label: str, samples: list[float]) -> None:
    print(f"  {label:<30s} wall {percentiles(samples)}")
    print(f"  {'':<30s} cpu  {percentiles(CPU_MS)}")


def in_process(n: int) -> None:
    doc = default_policy()
    compiled = compile_policy(doc)
    base = doc["test_base"]
    decision_input = DecisionInput.from_canonical(base)
    print("in-process decision, default policy, features in memory:")
    report("policy only, no trace:", time_calls(lambda: compiled.evaluate(decision_input), n))
    report("policy only, with trace:", time_calls(lambda: compiled.evaluate(decision_input, trace=True), n))
    report(
        "input validation + policy:",
        time_calls(lambda: compiled.evaluate(DecisionInput.from_canonical(base), trace=True), n),
    )
    try:
        from microlend.risk.artefacts import load_model
        from microlend.risk.datasets import german_credit
        from microlend.risk.starter import STARTER_DIR
    except ImportError:
        print("  scorecard + policy: the risk module's starter scorecard is not available")
        return
    model: Any = load_model(STARTER_DIR).model
    case = german_credit().frame.drop(columns=["creditability"], errors="ignore").iloc[0].to_dict()

    def scorecard_and_policy() -> None:
        pd_, score, reasons = model.score_one(case)
        data = deep_merge(
            base,
            {
                "model": {
                    "model_version": "starter",
                    "score": f"{score:.2f}",
                    "pd": f"{pd_:.6f}",
                    "reason_codes": [r.feature for r in reasons],
                }
            },
        )
        compiled.evaluate(DecisionInput.from_canonical(data), trace=True)

    report("starter scorecard + policy:", time_calls(scorecard_and_policy, n))


def stored(n: int) -> None:
    from microlend.core.db import Base, make_engine, make_session_factory
    from microlend.core.identity import Principal, Role
    from microlend.core.tenancy import TENANT_SETUP, create_tenant, register_tenant_setup
    from microlend.core.uow import UnitOfWork
    from microlend.decisioning import service
    from microlend.decisioning import tables as _tables  # noqa: F401

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        Base.metadata.create_all(engine)
        register_tenant_setup(service.setup_tenant)
        uow = UnitOfWork(make_session_factory(engine))
        bank = create_tenant(uow, "bench-bank")
        TENANT_SETUP.remove(service.setup_tenant)
        who = Principal(user_id=1, tenant_id=bank.id, username="officer", roles=frozenset({Role.CREDIT_OFFICER}))
        base = default_policy()["test_base"]
        inputs = [
            DecisionInput.from_canonical(deep_merge(base, {"customer": {"customer_id": f"c{i}"}}))
            for i in range(n + 100)
        ]
        it = iter(inputs)
        samples = time_calls(lambda: service.decide(uow, who, next(it)), n, warmup=100)
        rate = 1000 / statistics.mean(samples)
        print(
            f"stored decision (service.decide on SQLite, trace + audit row): {percentiles(samples)}; "
            f"{rate:,.0f} decisions/s on one thread"
        )
        engine.dispose()


def simulation(rows: int) -> None:
    from microlend.decisioning.columnar import ColumnarPolicy
    from microlend.decisioning.simulate import applications_from_lending_club, frame_columns, simulate

    doc = default_policy()
    lc = applications_from_lending_club()
    frame = pd.concat([lc] * (rows // len(lc) + 1), ignore_index=True).head(rows)
    policy = ColumnarPolicy(doc)
    t = time.perf_counter()
    cols = frame_columns(frame, policy.fields)
    prep = time.perf_counter() - t
    t = time.perf_counter()
    policy.evaluate(cols, rows)
    evaluation = time.perf_counter() - t
    print(f"simulation over {rows:,} Lending Club applications:")
    print(
        f"  columns from the table: {prep:.3f} s; batch evaluation: {evaluation:.3f} s "
        f"({rows / evaluation:,.0f} applications/s); together {rows / (prep + evaluation):,.0f}/s"
    )
    from microlend.decisioning.simulate import evaluate_parquet

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "apps.parquet"
        frame.to_parquet(path, index=False)
        t = time.perf_counter()
        evaluate_parquet(doc, path)
        arrow = time.perf_counter() - t
    print(
        f"  from Parquet in Arrow record batches of 65,536 (read + evaluate): {arrow:.3f} s "
        f"({rows / arrow:,.0f} applications/s)"
    )
    t = time.perf_counter()
    simulate(doc, frame, baseline=doc, charts=False)
    total = time.perf_counter() - t
    print(
        f"  full simulate() with a baseline and segments (no charts): {total:.3f} s "
        f"({rows / total:,.0f} applications/s per policy pair)"
    )
    sample = lc.head(2000)
    from microlend.decisioning.simulate import evaluate_frame

    t = time.perf_counter()
    evaluate_frame(doc, sample, mode="engine")
    engine_rate = len(sample) / (time.perf_counter() - t)
    print(f"  for comparison, the rule engine row by row: {engine_rate:,.0f} applications/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--stored", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=500_000)
    args = parser.parse_args()
    in_process(args.calls)
    stored(args.stored)
    simulation(args.rows)


if __name__ == "__main__":
    main()
