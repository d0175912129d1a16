"""Read functions other modules call about stored decisions."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, select

from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.decisioning.tables import DecisionRow
from microlend.decisioning.versions import _setup, version_row

_CHUNK = 500


@dataclass(frozen=True)
class LoanPerformance:
    """What became of the loan a decision led to, as servicing knows it: the day it was paid out and the first
    day it was bad (more than 30 days past due, or written off), None while it never was."""

    disbursed_on: date
    bad_on: date | None


def shadows_of(uow: UnitOfWork, who: Principal, decision_ids: Sequence[int] | Select[Any]) -> dict[int, int]:
    """Shadow decision id -> the acted decision it shadowed, for the acted ones among `decision_ids` (ids, or a
    query giving them: then one set-based read)."""
    found: dict[int, int] = {}
    if isinstance(decision_ids, Select):
        sets: list[Select[Any] | list[int]] = [decision_ids]
    else:
        ids = sorted({int(i) for i in decision_ids})
        sets = [ids[start : start + _CHUNK] for start in range(0, len(ids), _CHUNK)]
    with uow:
        for acted in sets:
            for shadow_id, acted_id in uow.session.execute(
                select(DecisionRow.id, DecisionRow.shadow_of).where(
                    DecisionRow.tenant_id == who.tenant_id, DecisionRow.shadow_of.in_(acted))
            ).all():
                if acted_id is not None:
                    found[int(shadow_id)] = int(acted_id)
    return found


def latest_exposure_cap(uow: UnitOfWork, who: Principal, customer_id: int) -> Decimal | None:
    """The cap on the obligor group's exposure that the customer's latest acted-on decision applied (the cap of
    their risk grade, the bank's and capacity's), when the policy gives one."""
    with uow:
        outputs = uow.session.execute(
            select(DecisionRow.outputs).where(
                DecisionRow.tenant_id == who.tenant_id, DecisionRow.customer_id == str(customer_id),
                DecisionRow.acted_on.is_(True)).order_by(DecisionRow.id.desc()).limit(1)).scalar_one_or_none()
    cap = (outputs or {}).get("exposure_cap")
    return None if cap is None else Decimal(str(cap))


def reason_messages(uow: UnitOfWork, who: Principal, decision_ids: Sequence[int],
                    locale: str = "zh_CN") -> dict[int, list[dict[str, Any]]]:
    """Decision id -> its reasons as the bank's catalogue words them, with the parameters of the rules that
    fired: [{code, message (what the borrower may be told), staff_message, tellable}]. Reads the stored reason
    codes, and a decision's trace (and its policy version) only when one of its reasons' texts takes a
    parameter: a list of referrals words most reasons from the catalogue alone."""
    from microlend.decisioning import reason_codes
    from microlend.decisioning.deciding import _explanation
    from microlend.decisioning.reasons import reason
    from microlend.decisioning.versions import version_row

    ids = sorted({int(i) for i in decision_ids})
    found: dict[int, list[dict[str, Any]]] = {}
    with uow:
        s = uow.session
        docs: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), _CHUNK):
            rows = s.execute(select(DecisionRow.id, DecisionRow.policy_hash, DecisionRow.reasons)
                             .where(DecisionRow.tenant_id == who.tenant_id,
                                    DecisionRow.id.in_(ids[start : start + _CHUNK]))).all()
            # the catalogue entries of every reason of the chunk, in one read
            read = reason_codes.codes_catalogue(s, who.tenant_id, sorted({c for r in rows for c in r.reasons or ()}))
            with_params = [int(r.id) for r in rows if any(reason(c, read).params for c in r.reasons or ())]
            traces: dict[int, Any] = {}
            if with_params:
                traces = {int(i): t for i, t in s.execute(select(DecisionRow.id, DecisionRow.trace).where(
                    DecisionRow.tenant_id == who.tenant_id, DecisionRow.id.in_(with_params))).all()}
            for decision_id, content_hash, codes in rows:
                if not codes:
                    found[int(decision_id)] = []
                    continue
                values: Mapping[str, Mapping[str, Any]] = {}
                if int(decision_id) in traces:
                    if content_hash not in docs:
                        docs[content_hash] = version_row(s, who.tenant_id, content_hash).content
                    _, values = _explanation(s, who.tenant_id, docs[content_hash], codes, traces[int(decision_id)],
                                             read)
                entries = [reason(c, read) for c in codes]
                found[int(decision_id)] = [
                    {"code": r.code, "message": r.message(locale, values.get(r.code)),
                     "staff_message": r.staff_message(locale, values.get(r.code)), "tellable": r.tellable}
                    for r in entries]
    return found


def published_credit_policy(uow: UnitOfWork, who: Principal) -> tuple[dict[str, Any], str]:
    """The credit-decision policy in force for the caller's bank (its champion version, the one live decisions
    use) and its label: name and the first 12 characters of its content hash."""
    with uow:
        setup = _setup(uow.session, who.tenant_id)
        row = version_row(uow.session, who.tenant_id, setup.champion_hash)
        return copy.deepcopy(dict(row.content)), f"{row.name}@{row.content_hash[:12]}"


def decision_features(uow: UnitOfWork, who: Principal, decision_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Decision id -> the features its policy saw (the business data, the bank's own record, the credit report)
    and the customer's years in business, for the caller's bank's decisions among `decision_ids`."""
    found: dict[int, dict[str, Any]] = {}
    ids = list(dict.fromkeys(int(i) for i in decision_ids))
    with uow:
        for start in range(0, len(ids), 500):
            for i, inputs in uow.session.execute(select(DecisionRow.id, DecisionRow.inputs).where(
                    DecisionRow.tenant_id == who.tenant_id, DecisionRow.id.in_(ids[start:start + 500]))).all():
                seen = dict(inputs or {})
                customer = seen.get("customer") or {}
                features = dict(seen.get("features") or {})
                if isinstance(customer, dict) and customer.get("years_in_business") is not None:
                    features.setdefault("years_in_business", customer["years_in_business"])
                found[int(i)] = features
    return found
