"""Verifying a tenant's keyed audit chain: one ordered read of its records and an HMAC per record, on SQLite
and PostgreSQL. Writes N records (in batches of 1,000 through the audit writer, with before/after images like
a real record's), then times `audit.verify` twice (cold and warm) and prints records per second.

Run: .venv/bin/python bench/bench_audit_verify.py [--records 100000] [--backend sqlite|postgresql|both]"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid

from sqlalchemy import create_engine, text

from microlend.core import audit, tenancy
from microlend.core.db import make_engine, make_session_factory
from microlend.core.identity import system_principal
from microlend.core.migrate import upgrade
from microlend.core.uow import UnitOfWork

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
os.environ.setdefault("MICROLEND_AUDIT_KEY", "bench-audit-key-held-outside-the-database")


def run(url: str, records: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    uow = UnitOfWork(make_session_factory(engine))
    tenant = tenancy.create_tenant(uow, "auditbench")
    who = system_principal(tenant.id, "bench")
    started = time.perf_counter()
    written = 0
    while written < records:
        n = min(1000, records - written)
        with uow:
            audit.record_many(uow.session, [audit.Entry(
                who, "loan.repay", "loan", written + i, before={"outstanding": "10000.00", "status": "active"},
                after={"outstanding": "9120.55", "status": "active", "amount": "879.45"}, reason="repayment")
                for i in range(n)])
            uow.commit()
        written += n
    write_s = time.perf_counter() - started
    print(f"{engine.dialect.name}: wrote {written:,} records in {write_s:.1f} s")
    for label in ("cold", "warm"):
        with uow:
            t0 = time.perf_counter()
            report = audit.verify(uow.session, tenant.id)
            seconds = time.perf_counter() - t0
        assert report.ok and report.records > records, report.problems[:3]
        print(f"{engine.dialect.name}: verify ({label}) {report.records:,} records in {seconds:.2f} s "
              f"({report.records / seconds:,.0f} records/s)")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as folder:
            run(f"sqlite:///{folder}/audit.db", args.records)
    if args.backend in ("postgresql", "both"):
        name = f"ml_auditbench_{uuid.uuid4().hex[:8]}"
        server = f"{PG_SERVER}/test".replace("postgresql://", "postgresql+psycopg://")
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            run(f"{PG_SERVER}/{name}", args.records)
        finally:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
