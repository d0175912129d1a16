"""A live credit decision whose champion is a joint model: latency with the partner up (it answers the partial
score over HTTP), down (connection refused: the bank-only fallback) and hung (SIGSTOP: the 300 ms timeout, then
the fallback).

The partner is a real `microlend federation partner serve` process; the bank side (SQLite, the default credit
policy, the registry's champion, `decide_application`) runs here on one thread.

    .venv/bin/python bench/bench_joint_decision.py --decisions 300
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from microlend.core.db import Base, make_engine, make_session_factory
from microlend.core.identity import Principal, Role
from microlend.core.tenancy import TENANT_SETUP, create_tenant, register_tenant_setup
from microlend.core.uow import UnitOfWork
from microlend.decisioning import scored_decision
from microlend.decisioning import service as decisions
from microlend.decisioning.domain import ApplicationFacts, CustomerFacts
from microlend.risk import registry
from microlend.risk.datasets import lending_club
from microlend.risk.federation.keys import PartnershipKey, generate_key
from microlend.risk.federation.online import OnlinePartners, install_key
from microlend.risk.federation.partner import PartnerService
from microlend.risk.federation.partnerships import PartnershipCreate, register_partnership
from microlend.risk.federation.training import TrainingSettings, train_joint
from microlend.risk.joint_models import register_joint_model

BANK_FIELDS = ["funded_amnt", "term", "addr_state", "verification_status", "annual_inc", "emp_length"]
NEITHER = ["int_rate", "sub_grade"]


class InProcess:
    def __init__(self, service: PartnerService) -> None:
        self.service = service

    def call(self, message_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self.service.handle(message_type, json.loads(json.dumps(payload)))


def person(user_id: int, tenant_id: int, role: Role) -> Principal:
    return Principal(user_id=user_id, tenant_id=tenant_id, username=f"{role.value}-{user_id}",
                     roles=frozenset({role}))


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(name: str, decide: Callable[[int], str], rows: list[int]) -> None:
    load = os.getloadavg()
    samples, labels = [], []
    cpu0, wall0 = cpu(), time.perf_counter()
    for row in rows:
        started = time.perf_counter()
        labels.append(decide(row))
        samples.append((time.perf_counter() - started) * 1000)
    wall, used = time.perf_counter() - wall0, cpu() - cpu0
    fallback = sum(label.endswith("bank-only") for label in labels)
    print(f"{name}: {len(rows)} decisions, p50 {np.percentile(samples, 50):.1f} ms, p99 "
          f"{np.percentile(samples, 99):.1f} ms, max {max(samples):.1f} ms; {fallback} fell back; wall {wall:.1f} s, "
          f"bank CPU {used:.1f} s ({used / len(rows) * 1000:.1f} ms/decision); load {load[0]:.2f} {load[1]:.2f}",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=300)
    parser.add_argument("--hung", type=int, default=40, help="decisions while the partner is stopped (SIGSTOP)")
    parser.add_argument("--timeout", type=float, default=0.3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-joint-") as tmp:
        work = Path(tmp)
        frame = lending_club().frame.iloc[:3200].copy()
        frame.insert(0, "id_number", [f"33010619880101{i:06d}" for i in range(len(frame))])
        bank_frame = frame.iloc[:3000][["id_number", *BANK_FIELDS, "Class"]].reset_index(drop=True)
        partner_frame = frame.iloc[200:].drop(columns=[*BANK_FIELDS, *NEITHER, "Class"]).reset_index(drop=True)
        key_path = work / "partnership.key"
        generate_key(key_path)
        key = PartnershipKey.load(key_path)
        state = work / "partner-state"
        model = train_joint(bank_frame, id_column="id_number", target="Class", bad="bad",
                            partner=InProcess(PartnerService(partner_frame, "id_number", key, state)),
                            partner_url="", key=key, created_at=datetime.now(UTC).isoformat(),
                            settings=TrainingSettings(key_bits=1024, max_epochs=4, batch_size=500, learning_rate=0.3))
        model.save(work / "model")

        data = work / "partner.parquet"
        partner_frame.to_parquet(data, index=False)
        port = 8700 + os.getpid() % 1000
        script = Path(sys.executable).with_name("microlend")
        command = [str(script)] if script.is_file() else [sys.executable, "-c",
                                                          "from microlend.cli.main import app; app()"]
        partner = subprocess.Popen([*command, "federation", "partner", "serve", "--data", str(data), "--id-column",
                                    "id_number", "--key-file", str(key_path), "--port", str(port), "--state-dir",
                                    str(state)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    httpx.post(url + "/federation/hello", timeout=2)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise SystemExit("the partner did not start") from None
                    time.sleep(0.3)

            engine = make_engine(f"sqlite:///{work / 'bank.db'}")
            Base.metadata.create_all(engine)
            register_tenant_setup(decisions.setup_tenant)
            uow = UnitOfWork(make_session_factory(engine))
            bank = create_tenant(uow, "bench-bank")
            TENANT_SETUP.remove(decisions.setup_tenant)
            analyst, validator = person(1, bank.id, Role.RISK_ANALYST), person(2, bank.id, Role.MODEL_VALIDATOR)
            approver, officer = person(3, bank.id, Role.RISK_ANALYST), person(4, bank.id, Role.CREDIT_OFFICER)
            pid = register_partnership(uow, analyst, PartnershipCreate(
                name="telecom", endpoint_url=url, key_fingerprint=key.fingerprint, purpose="joint PD model",
                contract_ref="DP-1", valid_from=date(2026, 1, 1), valid_to=date(2030, 12, 31))).id
            v = register_joint_model(uow, analyst, work / "model", partnership_id=pid, on=date.today(),
                                     store_root=work / "store")
            registry.mark_validated(uow, validator, v.id)
            registry.approve_model(uow, approver, v.id)
            registry.promote_model(uow, approver, v.id, "champion")
            install_key(key_path, work / "keys")
            scored_decision._scoring = registry.ScoringRuntime(OnlinePartners(keys=work / "keys",
                                                                              timeout=args.timeout))
            print(f"joint champion {v.label}: validation AUC {v.metrics['test']['auc']:.4f} joint vs "
                  f"{v.metrics['sides']['bank_only']['auc']:.4f} bank only; partner timeout "
                  f"{args.timeout * 1000:.0f} ms",
                  flush=True)

            cases = bank_frame.drop(columns=["Class"]).to_dict("records")

            def decide(row: int) -> str:
                _, label = scored_decision.decide_application(
                    uow, officer, application=ApplicationFacts(amount=Decimal("20000.00"), term_months=12,
                                                               product_code="micro"),
                    customer=CustomerFacts(customer_id=f"C-{row}", age=40), features={}, model=None,
                    profile=cases[row], application_ref=f"application:{row}", locale="en")
                return label

            rows = [200 + (i * 7) % 2800 for i in range(args.decisions)]
            for row in rows[:20]:  # warm-up: connections, caches
                decide(row)
            measure("partner up (joint score over HTTP)", decide, rows)
            os.kill(partner.pid, signal.SIGSTOP)
            measure(f"partner hung (SIGSTOP; {args.timeout * 1000:.0f} ms timeout, then fallback)", decide,
                    rows[:args.hung])
            os.kill(partner.pid, signal.SIGCONT)
            partner.terminate()
            partner.wait(timeout=20)
            measure("partner down (connection refused, fallback)", decide, rows)
            engine.dispose()
        finally:
            if partner.poll() is None:
                os.kill(partner.pid, signal.SIGCONT)
                partner.terminate()
                partner.wait(timeout=20)


if __name__ == "__main__":
    pd.options.mode.copy_on_write = True
    main()
