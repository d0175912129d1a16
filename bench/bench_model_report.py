"""Opening a model's validation report after validation: the page serves the report stored at training (no
figures or charts recomputed), so it must open in under 300 ms (target from the model-governance issue).

Run: .venv/bin/python bench/bench_model_report.py [--calls 50]

Trains a German-credit scorecard and GBDT (the report is built then, once), registers both in a bank on a
migrated SQLite file, has a model validator mark them validated, then times GET of the report over the HTTP
API (app in process, bearer token) and of the Excel export. Prints p50/p99/max ms per model and the report's
bootstrap interval widths."""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

TARGET_MS = 300.0
PASSWORD = "bench-password-1"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    os.environ.setdefault("MICROLEND_SECRET_KEY", "bench-secret-key-0123456789-abcdefghij")
    os.environ.setdefault("MICROLEND_AUDIT_KEY", "bench-audit-key-held-outside-the-database-01")
    os.environ["MICROLEND_MODE"] = "local"
    from fastapi.testclient import TestClient

    from microlend.api.app import create_app
    from microlend.bootstrap import load_modules
    from microlend.core import migrate, tenancy
    from microlend.core.db import make_engine, make_session_factory
    from microlend.core.settings import Settings
    from microlend.core.uow import UnitOfWork
    from microlend.risk.datasets import german_credit
    from microlend.risk.development import develop_model
    from microlend.risk.registry import mark_validated, register_model

    load_modules()
    logging.getLogger("microlend").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="microlend-bench-report-") as tmp:
        root = Path(tmp)
        url = f"sqlite:///{root / 'bench.db'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        uow = UnitOfWork(make_session_factory(engine))
        tenant = tenancy.create_tenant(uow, "bench")
        people = {}
        with uow:
            for name, role in (("wang", "risk_analyst"), ("sun", "model_validator")):
                people[name] = tenancy.principal_for(
                    tenancy.add_user(uow.session, tenant.id, f"{name}@bench", PASSWORD, [role])
                )
            uow.commit()
        settings = Settings(mode="local", database_url=url, data_dir=root)
        versions = {}
        for kind in ("scorecard", "gbdt"):
            started = time.perf_counter()
            dev = develop_model(
                german_credit().frame,
                target="creditability",
                bad="bad",
                kind=kind,
                out_dir=root / kind,
                created_at=datetime(2026, 1, 1, tzinfo=UTC),
                name=kind,
                seed=7,
            )
            build_s = time.perf_counter() - started
            v = register_model(uow, people["wang"], root / kind, store_root=root / "models")
            mark_validated(uow, people["sun"], v.id)
            ci = dev.report["by_sample"]["test"]["ci"]
            versions[kind] = v.id
            print(
                f"{kind}: trained and report built once in {build_s:.1f} s; test AUC "
                f"{dev.report['samples']['test']['metrics']['auc']:.4f}, 95% interval widths AUC "
                f"{ci['auc']['width']:.4f}, Gini {ci['gini']['width']:.4f}, KS {ci['ks']['width']:.4f}"
            )
        app = create_app(settings, engine=engine)
        with TestClient(app) as client:
            r = client.post("/api/v1/auth/token", data={"username": "sun@bench", "password": PASSWORD})
            headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
            for kind, vid in versions.items():
                for path in (f"/api/v1/risk/models/{vid}/report", f"/api/v1/risk/models/{vid}/report.xlsx"):
                    client.get(path, headers=headers)  # warm up
                    timings = np.empty(args.calls)
                    for i in range(args.calls):
                        started = time.perf_counter()
                        resp = client.get(path, headers=headers)
                        timings[i] = (time.perf_counter() - started) * 1000
                        assert resp.status_code == 200, resp.text
                    p50, p99 = np.percentile(timings, [50, 99])
                    verdict = ""
                    if path.endswith("/report"):
                        verdict = f" ({'ok' if p99 < TARGET_MS else 'OVER TARGET'}: < {TARGET_MS:.0f} ms)"
                    print(
                        f"{kind} {path.rsplit('/', 1)[-1]}: {len(resp.content) / 1024:.0f} KiB, p50 {p50:.1f} ms, "
                        f"p99 {p99:.1f} ms, max {timings.max():.1f} ms{verdict}"
                    )
        engine.dispose()


if __name__ == "__main__":
    main()
