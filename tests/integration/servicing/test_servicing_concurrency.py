"""A bank workload in the style of Jepsen's: many parallel repayments and disbursements, with repeated
idempotency keys, on PostgreSQL. Afterwards the ledger balances, reconciles, and nothing was posted twice."""

from __future__ import annotations

import random
import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from tests.integration.servicing.kit import Bank

from microlend.core.errors import Conflict
from microlend.servicing import service
from microlend.servicing.ledger import Acct
from microlend.servicing.service import Disbursement
from microlend.servicing.tables import LoanRow, RepaymentRow

D = Decimal


@pytest.mark.slow
def test_parallel_repayments_and_disbursements_keep_the_ledger_balanced(bank: Bank) -> None:
    if bank.dialect != "postgresql":
        pytest.skip("the concurrency workload runs on PostgreSQL (SQLite serialises writers)")
    loans = [service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", D("20000"), 12)).id for _ in range(4)]
    # each key always means the same request, so repeats must replay, never post again
    repayment_keys = {f"pay-{k}": (loans[k % len(loans)], D(10 + k)) for k in range(40)}
    disbursement_keys = {f"loan-{k}": D(5000 + 100 * k) for k in range(8)}
    errors: list[BaseException] = []
    results: dict[str, set[int]] = {}
    answered = {"posted": 0, "busy": 0}  # successes, and 409s for a key another request is still processing
    lock = threading.Lock()
    attempts_per_worker, workers = 30, 8

    def attempt(rng: random.Random) -> tuple[str, int]:
        if rng.random() < 0.8:
            key = rng.choice(sorted(repayment_keys))
            loan_id, amount = repayment_keys[key]
            return key, service.post_repayment(bank.uow(), bank.who, loan_id, amount, idempotency_key=key).id
        key = rng.choice(sorted(disbursement_keys))
        view = service.disburse(
            bank.uow(), bank.who, Disbursement("EP-STD", disbursement_keys[key], 6, idempotency_key=key)
        )
        return key, view.id

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(attempts_per_worker):  # a 409 ends one attempt, never the worker
            try:
                key, answer = attempt(rng)
            except Conflict as err:
                with lock:
                    if "being processed" in err.message:
                        answered["busy"] += 1
                    else:
                        errors.append(err)
                continue
            except BaseException as err:
                with lock:
                    errors.append(err)
                continue
            with lock:
                answered["posted"] += 1
                results.setdefault(key, set()).add(answer)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert answered["posted"] + answered["busy"] == workers * attempts_per_worker, answered  # none cut short
    assert answered["posted"] >= len(results) > 0, answered
    assert all(len(ids) == 1 for ids in results.values()), "a key answered with two different postings"
    with bank.uow() as u:
        posted = u.session.execute(select(func.count()).select_from(RepaymentRow)).scalar_one()
        disbursed = u.session.execute(select(func.count()).select_from(LoanRow)).scalar_one()
    used_repayments = [k for k in results if k.startswith("pay-")]
    used_loans = [k for k in results if k.startswith("loan-")]
    assert posted == len(used_repayments)
    assert disbursed == len(loans) + len(used_loans)
    tb = service.trial_balance(bank.uow(), bank.who)
    assert tb.balanced
    cash = next(r for r in tb.rows if r.code == Acct.CASH)
    assert cash.debit == sum(repayment_keys[k][1] for k in used_repayments)
    assert cash.credit == D("80000") + sum(disbursement_keys[k] for k in used_loans)
    assert service.reconcile(bank.uow(), bank.who).ok
