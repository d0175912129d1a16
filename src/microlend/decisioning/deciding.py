"""Deciding applications with the policies in force (champion, challenger, shadow), reading stored decisions
back, replaying them, and summarising the arms."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from microlend.core.clock import utcnow
from microlend.core.errors import Conflict, NotFound
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.decisioning import reason_codes, store
from microlend.decisioning.arms import choose_arm
from microlend.decisioning.domain import DecisionInput, ModelResult
from microlend.decisioning.policy import CompiledPolicy, PolicyResult, compact_trace, policy_hash
from microlend.decisioning.reasons import Catalogue, ReasonValues, reason, tellable_reasons
from microlend.decisioning.tables import DecisionRow
from microlend.decisioning.trace_view import TraceStep, plain_trace, reason_values
from microlend.decisioning.versions import arms_in_force, compiled_policy, load_subdecisions, version_row


@dataclass(frozen=True)
class DecisionRecord:
    """A stored decision as the caller sees it; `borrower_reasons` are the messages a borrower may be told."""

    id: int
    customer_id: str
    arm: str
    acted_on: bool
    policy_hash: str
    outcome: str
    limit: Decimal
    annual_rate: Decimal | None
    reasons: tuple[str, ...]
    borrower_reasons: tuple[str, ...]
    latency_ms: float
    shadow_ids: tuple[int, ...] = ()
    # (code, staff text, tellable) from the bank's catalogue, parameters filled in; empty when not explained
    reason_texts: tuple[tuple[str, str, bool], ...] = ()

    @classmethod
    def from_row(cls, row: DecisionRow, locale: str = "zh_CN", shadow_ids: tuple[int, ...] = (),
                 explained: tuple[Catalogue, ReasonValues] | None = None) -> DecisionRecord:
        return cls.of(row.id, {c: getattr(row, c) for c in _RECORD_COLUMNS}, locale, shadow_ids, explained)

    @classmethod
    def of(cls, decision_id: int, values: dict[str, Any], locale: str = "zh_CN",
           shadow_ids: tuple[int, ...] = (), explained: tuple[Catalogue, ReasonValues] | None = None,
           ) -> DecisionRecord:
        """From the column values of a decision (as stored, or about to be); `explained` is the bank's
        catalogue entries of its reasons and their parameters as the rules that fired give them."""
        outcome = values["outcome"]
        catalogue, params = explained if explained is not None else (None, None)
        told = (tuple(tellable_reasons(values["reasons"], locale=locale, catalogue=catalogue, values=params))
                if outcome != "approve" else ())
        texts: tuple[tuple[str, str, bool], ...] = ()
        if catalogue is not None:
            entries = [reason(c, catalogue) for c in values["reasons"]]
            texts = tuple((r.code, r.staff_message(locale, (params or {}).get(r.code)), r.tellable) for r in entries)
        return cls(
            decision_id,
            values["customer_id"],
            values["arm"],
            values["acted_on"],
            values["policy_hash"],
            outcome,
            values["limit"],
            values["annual_rate"],
            tuple(values["reasons"]),
            told,
            values["latency_us"] / 1000.0,
            shadow_ids,
            texts,
        )


_RECORD_COLUMNS = ("customer_id", "arm", "acted_on", "policy_hash", "outcome", "limit", "annual_rate", "reasons",
                   "latency_us")


@dataclass(frozen=True)
class ReplayResult:
    decision_id: int
    policy_hash: str
    equal: bool
    stored: dict[str, Any]
    replayed: dict[str, Any]
    differences: tuple[str, ...]


@dataclass(frozen=True)
class ArmSummary:
    arm: str
    policy_hash: str
    decisions: int
    approved: int
    declined: int
    referred: int
    approved_with_outcome: int = 0  # approved decisions whose performance is known
    approved_bad: int = 0
    approved_immature: int = 0  # approved with an outcome, but too young for it to count

    @property
    def approval_rate(self) -> float:
        return self.approved / self.decisions if self.decisions else 0.0

    @property
    def bad_rate(self) -> float | None:
        """Observed bad rate of approved decisions with a known outcome (None until outcomes arrive)."""
        return self.approved_bad / self.approved_with_outcome if self.approved_with_outcome else None


# --- decisions -------------------------------------------------------------------------------------------


def decide(
    uow: UnitOfWork,
    who: Principal,
    decision_input: DecisionInput,
    *,
    challenger_model: ModelResult | None = None,
    application_ref: str | None = None,
    locale: str = "zh_CN",
    model_provenance: Mapping[str, Any] | None = None,
) -> DecisionRecord:
    """Decide one application with the policy in force for this customer's arm and store the Decision.

    `model_provenance`: how the model results came about (the versions that scored, a joint model's partner
    call with its outcome and latency), kept beside the model version in the record, not among the inputs.

    A shadow policy (beside the champion and any split challenger) is evaluated too and stored, never acted on.
    `challenger_model` is the challenger
    model's answer for the same applicant: the challenger arm (split or shadow) decides with it, and with no
    challenger policy it gives a shadow decision of the champion policy. Never raises on incomplete data:
    the policy refers or declines with reasons."""
    who.require(Permission.DECIDE)
    challenger_input = (
        decision_input.model_copy(update={"model": challenger_model})
        if challenger_model is not None
        else decision_input
    )
    # evaluate while only reading, so the write transaction (which on SQLite holds the database's write
    # lock, and on PostgreSQL the tenant's audit head) lasts no longer than storing the decision
    with uow.read_only():
        s = uow.session
        setup = arms_in_force(s, who.tenant_id)
        customer_id = decision_input.customer.customer_id
        arm, acted_hash, acted_input = "champion", setup.champion_hash, decision_input
        if setup.challenger_hash and not setup.challenger_shadow:
            arm = choose_arm(who.tenant_id, customer_id, setup.challenger_share_bp)
            if arm == "challenger":
                acted_hash, acted_input = setup.challenger_hash, challenger_input
        result = compiled_policy(s, who.tenant_id, acted_hash).evaluate(acted_input, trace=True)
        shadow_hash = None
        if setup.shadow_hash:  # the shadow slot runs beside the champion and any split challenger
            shadow_hash = setup.shadow_hash
        elif setup.challenger_hash and setup.challenger_shadow:  # a set-up written before the shadow slot
            shadow_hash = setup.challenger_hash
        elif challenger_model is not None and not setup.challenger_hash:
            shadow_hash = setup.champion_hash
        shadow = None
        if shadow_hash is not None:
            shadow = compiled_policy(s, who.tenant_id, shadow_hash).evaluate(challenger_input, trace=True)
        explained = None
        if result.outcome != "approve":
            doc = compiled_policy(s, who.tenant_id, acted_hash).document
            explained = _explanation(s, who.tenant_id, doc, result.reasons, result.trace)
    row = _values(who, acted_input, arm, True, acted_hash, result, application_ref, model_provenance)
    shadow_row = None
    if shadow is not None and shadow_hash is not None:
        shadow_row = _values(who, challenger_input, "shadow", False, shadow_hash, shadow, application_ref,
                             model_provenance)
    with uow:
        decision_id, shadow_id = store.write(uow.session, who, row, shadow_row)
        uow.commit()
    shadow_ids = () if shadow_id is None else (shadow_id,)
    return DecisionRecord.of(decision_id, row, locale, shadow_ids, explained)


def _explanation(s: Session, tenant_id: int, doc: dict[str, Any], reasons: tuple[str, ...] | list[str],
                 trace: Any, read: Catalogue | None = None) -> tuple[Catalogue, ReasonValues]:
    """The bank's catalogue entries of a decision's reasons, and their parameters from the rows that gave
    them (read from the trace and the policy version the decision was made with). `read`: the entries read
    already for many decisions at once (a list of them asks the catalogue once)."""
    if read is None:
        catalogue = reason_codes.codes_catalogue(s, tenant_id, list(reasons))
    else:
        catalogue = {code: read[code] for code in reasons if code in read}
    subs = load_subdecisions(s, tenant_id, doc)
    return catalogue, reason_values(doc, trace, catalogue, subs)


def _explained_row(s: Session, row: DecisionRow) -> tuple[Catalogue, ReasonValues] | None:
    if not row.reasons:
        return None
    doc = version_row(s, row.tenant_id, row.policy_hash).content
    return _explanation(s, row.tenant_id, doc, row.reasons, row.trace)


def _values(
    who: Principal,
    decision_input: DecisionInput,
    arm: str,
    acted_on: bool,
    content_hash: str,
    result: PolicyResult,
    application_ref: str | None,
    model_provenance: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "tenant_id": who.tenant_id,
        "customer_id": decision_input.customer.customer_id,
        "application_ref": application_ref,
        "arm": arm,
        "acted_on": acted_on,
        "shadow_of": None,
        "inputs": decision_input.canonical(),
        "model_versions": {"model": decision_input.model.model_version, **(model_provenance or {})},
        "policy_hash": content_hash,
        "trace": compact_trace(result.trace),
        "outputs": result.outputs(),
        "outcome": result.outcome,
        "limit": result.limit,
        "annual_rate": result.annual_rate,
        "reasons": list(result.reasons),
        "latency_us": round(result.latency_ms * 1000),
        "created_by": who.username,
        "created_at": utcnow(),
    }


def get_decision(uow: UnitOfWork, who: Principal, decision_id: int, locale: str = "zh_CN") -> DecisionRecord:
    who.require(Permission.VIEW_DECISIONS)
    with uow:
        row = _decision(uow.session, who, decision_id)
        return DecisionRecord.from_row(row, locale, explained=_explained_row(uow.session, row))


def _decision(s: Session, who: Principal, decision_id: int) -> DecisionRow:
    row = s.get(DecisionRow, decision_id)
    if row is None or row.tenant_id != who.tenant_id:
        raise NotFound(f"decision {decision_id} not found")
    return row


def replay(uow: UnitOfWork, who: Principal, decision_id: int) -> ReplayResult:
    """Re-evaluate a stored decision from its stored inputs and policy version, and compare the outputs."""
    who.require(Permission.VIEW_DECISIONS)
    with uow:
        s = uow.session
        row = _decision(s, who, decision_id)
        version = version_row(s, who.tenant_id, row.policy_hash)
        if policy_hash(version.content) != row.policy_hash:
            raise Conflict(f"policy version {row.policy_hash[:12]}: stored content does not match its hash")
        decision_input = DecisionInput.from_canonical(row.inputs)
        load_subdecisions(s, who.tenant_id, version.content)
        differences: list[str] = []
        if decision_input.canonical() != row.inputs:
            differences.append("inputs: the stored inputs do not read back to the same canonical form")
        replayed = CompiledPolicy(version.content, row.policy_hash).evaluate(decision_input).outputs()
        stored = dict(row.outputs)
        differences += [
            f"{k}: stored {stored.get(k)!r}, replayed {replayed.get(k)!r}"
            for k in sorted(set(stored) | set(replayed))
            if stored.get(k) != replayed.get(k)
        ]
        return ReplayResult(row.id, row.policy_hash, not differences, stored, replayed, tuple(differences))


def arm_summary(uow: UnitOfWork, who: Principal, bad_by_decision: Mapping[int, bool] | None = None, *,
                since: datetime | None = None, mature_before: datetime | None = None) -> list[ArmSummary]:
    """Decisions and outcomes per arm and policy version. `bad_by_decision` (decision id -> went bad), as
    servicing learns it, adds the observed bad rate of approved decisions per arm. With `since`, only the
    decisions made from then on count (a challenger's test window); with `mature_before`, only approved
    decisions made before then have a known outcome (younger ones are counted as immature)."""
    who.require(Permission.VIEW_DECISIONS)
    window = [DecisionRow.tenant_id == who.tenant_id]
    if since is not None:
        window.append(DecisionRow.created_at >= since)
    with uow:
        rows = uow.session.execute(
            select(DecisionRow.arm, DecisionRow.policy_hash, DecisionRow.outcome, func.count())
            .where(*window)
            .group_by(DecisionRow.arm, DecisionRow.policy_hash, DecisionRow.outcome)
        ).all()
        performance: dict[tuple[str, str], list[int]] = {}
        if bad_by_decision:
            ids = list(bad_by_decision)
            for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
                approved = uow.session.execute(
                    select(DecisionRow.id, DecisionRow.arm, DecisionRow.policy_hash, DecisionRow.created_at).where(
                        *window,
                        DecisionRow.outcome == "approve",
                        DecisionRow.id.in_(chunk),
                    )
                ).all()
                for decision_id, arm, content_hash, created_at in approved:
                    known = performance.setdefault((arm, content_hash), [0, 0, 0])
                    if mature_before is not None and created_at > mature_before:
                        known[2] += 1
                        continue
                    known[0] += 1
                    known[1] += int(bool(bad_by_decision[decision_id]))
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for arm, content_hash, outcome, n in rows:
        counts.setdefault((arm, content_hash), {})[outcome] = int(n)
    return [
        ArmSummary(
            arm,
            h,
            sum(c.values()),
            c.get("approve", 0),
            c.get("decline", 0),
            c.get("refer", 0),
            *performance.get((arm, h), [0, 0, 0]),
        )
        for (arm, h), c in sorted(counts.items())
    ]


def arm_summaries(decided: Iterable[Any], bad_by_decision: Mapping[int, bool] | None = None, *,
                  mature_before: datetime | None = None) -> list[ArmSummary]:
    """`arm_summary` of decisions read already (rows with id, arm, policy_hash, outcome and created_at): a
    report that holds its window's decisions counts them without reading them again."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    performance: dict[tuple[str, str], list[int]] = {}
    for r in decided:
        key = (str(r.arm), str(r.policy_hash))
        outcomes = counts.setdefault(key, {})
        outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
        if r.outcome != "approve" or not bad_by_decision or int(r.id) not in bad_by_decision:
            continue
        known = performance.setdefault(key, [0, 0, 0])
        if mature_before is not None and r.created_at > mature_before:
            known[2] += 1
            continue
        known[0] += 1
        known[1] += int(bool(bad_by_decision[int(r.id)]))
    return [ArmSummary(arm, h, sum(c.values()), c.get("approve", 0), c.get("decline", 0), c.get("refer", 0),
                       *performance.get((arm, h), [0, 0, 0]))
            for (arm, h), c in sorted(counts.items())]


# --- a decision in full, for adapters ----------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionDetail:
    """A stored decision with everything it was made from: inputs, versions, trace and outputs."""

    record: DecisionRecord
    application_ref: str | None
    shadow_of: int | None
    inputs: dict[str, Any]
    model_versions: dict[str, Any]
    trace: Any
    outputs: dict[str, Any]
    created_by: str
    created_at: datetime
    steps: tuple[TraceStep, ...] = ()  # the trace in plain language, rows numbered from 1


def decision_detail(uow: UnitOfWork, who: Principal, decision_id: int, locale: str = "zh_CN") -> DecisionDetail:
    who.require(Permission.VIEW_DECISIONS)
    with uow:
        row = _decision(uow.session, who, decision_id)
        doc = version_row(uow.session, row.tenant_id, row.policy_hash).content
        subs = load_subdecisions(uow.session, row.tenant_id, doc)
        return DecisionDetail(
            DecisionRecord.from_row(row, locale, explained=_explained_row(uow.session, row)),
            row.application_ref,
            row.shadow_of,
            copy.deepcopy(row.inputs),
            copy.deepcopy(row.model_versions),
            copy.deepcopy(row.trace),
            copy.deepcopy(row.outputs),
            row.created_by,
            row.created_at,
            tuple(plain_trace(doc, row.trace, subs)),
        )
