"""The evidence a policy version is submitted with (送审材料): lint warnings, golden test results, and a
simulation against the version in force on the bank's own recent history.

The history of a credit policy is the inputs of the bank's own acted-on decisions of the last
`HISTORY_DAYS` days (at most `HISTORY_MAX_ROWS`, newest first); a bank with none falls back to the shipped
sample `FALLBACK_SAMPLE`, and the evidence says so. A limit review's history is the inputs of the limit
changes the bank's reviews proposed in the same window; it is compared with the published limit review
(or the shipped one)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from microlend.core.clock import utcnow
from microlend.decisioning.golden import GoldenResult
from microlend.decisioning.money import DEFAULT_ASSUMPTIONS, MoneyAssumptions, money_report
from microlend.decisioning.policy import policy_hash, policy_kind, policy_name
from microlend.decisioning.tables import DecisionRow, LimitChangeRow, PolicyVersionRow

HISTORY_DAYS = 90
HISTORY_MAX_ROWS = 20_000
FALLBACK_SAMPLE = "lending_club"


def golden_evidence(results: list[GoldenResult]) -> list[dict[str, Any]]:
    return [{"name": r.name, "passed": r.passed, "problems": list(r.problems)} for r in results]


def flatten_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """A stored decision input as one row named by input path (application.amount, model.score, ...)."""
    row: dict[str, Any] = {}
    for section, values in inputs.items():
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            if not isinstance(value, dict | list):
                row[f"{section}.{key}"] = value
    return row


def decision_history(
    session: Session, tenant_id: int, days: int = HISTORY_DAYS, max_rows: int = HISTORY_MAX_ROWS
) -> pd.DataFrame:
    """The inputs of the bank's acted-on decisions of the last `days` days, one row each."""
    since = utcnow() - timedelta(days=days)
    inputs = (
        session.execute(
            select(DecisionRow.inputs)
            .where(DecisionRow.tenant_id == tenant_id, DecisionRow.acted_on.is_(True), DecisionRow.created_at >= since)
            .order_by(DecisionRow.id.desc())
            .limit(max_rows)
        )
        .scalars()
        .all()
    )
    return pd.DataFrame([flatten_inputs(i) for i in inputs])


def count_history(session: Session, tenant_id: int, days: int = HISTORY_DAYS, max_rows: int = HISTORY_MAX_ROWS) -> int:
    """How many rows `decision_history` would give (at most `max_rows`)."""
    since = utcnow() - timedelta(days=days)
    ids = (
        select(DecisionRow.id)
        .where(DecisionRow.tenant_id == tenant_id, DecisionRow.acted_on.is_(True), DecisionRow.created_at >= since)
        .limit(max_rows)
        .subquery()
    )
    return int(session.execute(select(func.count()).select_from(ids)).scalar_one())


def limit_review_history(
    session: Session, tenant_id: int, days: int = HISTORY_DAYS, max_rows: int = HISTORY_MAX_ROWS
) -> pd.DataFrame:
    since = utcnow() - timedelta(days=days)
    inputs = (
        session.execute(
            select(LimitChangeRow.inputs)
            .where(LimitChangeRow.tenant_id == tenant_id, LimitChangeRow.created_at >= since)
            .order_by(LimitChangeRow.id.desc())
            .limit(max_rows)
        )
        .scalars()
        .all()
    )
    return pd.DataFrame(list(inputs))


def _swaps(before: list[str], after: list[str]) -> dict[str, int]:
    counts = Counter(f"{b}→{a}" for b, a in zip(before, after, strict=True) if b != a)
    return dict(sorted(counts.items()))


def credit_simulation(
    session: Session, tenant_id: int, doc: dict[str, Any], champion: dict[str, Any] | None,
    money: MoneyAssumptions | None = None,
) -> dict[str, Any]:
    """Outcome counts of `doc` and the champion on the bank's recent decisions, who swaps, and the money of
    both by segment on the bank's assumptions (`money`; the defaults when not given)."""
    import time

    from microlend.decisioning.simulate import evaluate_frame, sample_applications

    frame = decision_history(session, tenant_id)
    source: dict[str, Any] = {
        "source": "bank_history",
        "window_days": HISTORY_DAYS,
        "max_rows": HISTORY_MAX_ROWS,
        "fallback": None,
    }
    if frame.empty:
        frame = sample_applications(FALLBACK_SAMPLE)
        source = {
            "source": "shipped_sample",
            "sample": FALLBACK_SAMPLE,
            "window_days": HISTORY_DAYS,
            "max_rows": HISTORY_MAX_ROWS,
            "fallback": f"the bank has no acted-on decisions in the last {HISTORY_DAYS} days; "
            f"simulated on the shipped sample '{FALLBACK_SAMPLE}' instead",
        }
    started = time.perf_counter()
    result, mode = evaluate_frame(doc, frame)
    seconds = time.perf_counter() - started
    candidate = [str(o) for o in result.outcome]
    evidence: dict[str, Any] = {
        **source,
        "kind": "credit_decision",
        "rows": len(frame),
        "mode": mode,
        "rows_per_second": round(len(frame) / seconds, 1) if seconds > 0 else None,
        "candidate": {
            "hash": policy_hash(doc),
            "name": policy_name(doc),
            "outcomes": dict(sorted(Counter(candidate).items())),
        },
        "champion": None,
        "swaps": {},
    }
    base_result = evaluate_frame(champion, frame)[0] if champion is not None else None
    evidence["money"] = money_report(frame, result, base_result, money or DEFAULT_ASSUMPTIONS)
    if champion is not None and base_result is not None:
        base = [str(o) for o in base_result.outcome]
        evidence["champion"] = {
            "hash": policy_hash(champion),
            "name": policy_name(champion),
            "outcomes": dict(sorted(Counter(base).items())),
        }
        evidence["swaps"] = _swaps(base, candidate)
    return evidence


def limit_review_simulation(session: Session, tenant_id: int, doc: dict[str, Any]) -> dict[str, Any]:
    """Actions of `doc` and of the limit review in force on the inputs the bank's reviews stored."""
    from microlend.decisioning.limits import default_limit_review, review_portfolio

    baseline = published_limit_review(session, tenant_id) or default_limit_review()
    frame = limit_review_history(session, tenant_id)
    evidence: dict[str, Any] = {
        "kind": "limit_review",
        "window_days": HISTORY_DAYS,
        "max_rows": HISTORY_MAX_ROWS,
        "rows": len(frame),
        "champion": {"hash": policy_hash(baseline), "name": policy_name(baseline)},
        "candidate": {"hash": policy_hash(doc), "name": policy_name(doc)},
        "swaps": {},
    }
    if frame.empty:
        return {
            **evidence,
            "source": "none",
            "fallback": f"the bank's reviews stored no credit line inputs in the last {HISTORY_DAYS} days and "
            "no sample of credit lines is shipped; the golden tests are the only evidence",
        }
    after = [str(a) for a in review_portfolio(doc, frame)["action"]]
    before = [str(a) for a in review_portfolio(baseline, frame)["action"]]
    evidence["candidate"]["outcomes"] = dict(sorted(Counter(after).items()))
    evidence["champion"]["outcomes"] = dict(sorted(Counter(before).items()))
    evidence["swaps"] = _swaps(before, after)
    return {**evidence, "source": "bank_history", "fallback": None}


def published_limit_review(session: Session, tenant_id: int) -> dict[str, Any] | None:
    """The limit review policy the bank published last (None: the shipped one applies)."""
    return published_of_kind(session, tenant_id, "limit_review")


def published_of_kind(session: Session, tenant_id: int, kind: str) -> dict[str, Any] | None:
    """The policy of a kind that runs alone (limit review, early warning) the bank published last (None: the
    shipped one applies)."""
    for row in session.execute(
        select(PolicyVersionRow)
        .where(PolicyVersionRow.tenant_id == tenant_id, PolicyVersionRow.status == "published")
        .order_by(PolicyVersionRow.published_at.desc(), PolicyVersionRow.id.desc())
    ).scalars():
        if policy_kind(row.content) == kind:
            return dict(row.content)
    return None
