"""Use cases of the decision engine (决策中台): submit and publish policy versions (maker-checker), decide
applications with the policies in force (champion, challenger, shadow), and replay stored decisions."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, bindparam, func, select
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Permission, Principal, system_principal
from microlend.core.tables import TenantRow
from microlend.core.uow import UnitOfWork
from microlend.decisioning import store
from microlend.decisioning.arms import BUCKETS, choose_arm
from microlend.decisioning.domain import DecisionInput, ModelResult
from microlend.decisioning.lint import lint_policy
from microlend.decisioning.policy import (
    CompiledPolicy,
    PolicyResult,
    compact_trace,
    default_policy,
    parse_policy,
    policy_hash,
    policy_kind,
    policy_name,
)
from microlend.decisioning.reasons import tellable_reasons
from microlend.decisioning.tables import DecisionRow, DecisionSetupRow, PolicyVersionRow


@dataclass(frozen=True)
class PolicyVersion:
    id: int
    name: str
    content_hash: str
    status: str
    author: str
    publisher: str | None
    created_at: datetime
    published_at: datetime | None

    @classmethod
    def from_row(cls, row: PolicyVersionRow) -> PolicyVersion:
        return cls(
            row.id, row.name, row.content_hash, row.status, row.author, row.publisher, row.created_at, row.published_at
        )


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

    @classmethod
    def from_row(cls, row: DecisionRow, locale: str = "zh_CN", shadow_ids: tuple[int, ...] = ()) -> DecisionRecord:
        return cls.of(row.id, {c: getattr(row, c) for c in _RECORD_COLUMNS}, locale, shadow_ids)

    @classmethod
    def of(cls, decision_id: int, values: dict[str, Any], locale: str = "zh_CN",
           shadow_ids: tuple[int, ...] = ()) -> DecisionRecord:
        """From the column values of a decision (as stored, or about to be)."""
        outcome = values["outcome"]
        told = tuple(tellable_reasons(values["reasons"], locale=locale)) if outcome != "approve" else ()
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

    @property
    def approval_rate(self) -> float:
        return self.approved / self.decisions if self.decisions else 0.0

    @property
    def bad_rate(self) -> float | None:
        """Observed bad rate of approved decisions with a known outcome (None until outcomes arrive)."""
        return self.approved_bad / self.approved_with_outcome if self.approved_with_outcome else None


# --- compiled policies, cached by content hash (a hash names exactly one content) -----------------------

_COMPILED: dict[str, CompiledPolicy] = {}


def _compiled(session: Session, tenant_id: int, content_hash: str) -> CompiledPolicy:
    cached = _COMPILED.get(content_hash)
    if cached is not None:
        return cached
    row = _version(session, tenant_id, content_hash)
    if policy_hash(row.content) != content_hash:
        raise Conflict(f"policy version {content_hash[:12]}: stored content does not match its hash")
    compiled = CompiledPolicy(row.content, content_hash)
    _COMPILED[content_hash] = compiled
    return compiled


def _version(session: Session, tenant_id: int, content_hash: str) -> PolicyVersionRow:
    row = session.execute(
        select(PolicyVersionRow).where(
            PolicyVersionRow.tenant_id == tenant_id, PolicyVersionRow.content_hash == content_hash
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"content_hash: no policy version {content_hash[:12]} in this bank", field="content_hash")
    return row


_NO_POLICY = "this bank has no published credit policy yet; submit and publish one first"


def _setup(session: Session, tenant_id: int) -> DecisionSetupRow:
    setup = session.get(DecisionSetupRow, tenant_id)
    if setup is None:
        raise NotFound(_NO_POLICY)
    return setup


_ARMS = select(DecisionSetupRow.champion_hash, DecisionSetupRow.challenger_hash, DecisionSetupRow.challenger_share_bp,
               DecisionSetupRow.challenger_shadow).where(DecisionSetupRow.tenant_id == bindparam("tid"))


def _arms(session: Session, tenant_id: int) -> Row[str, str | None, int, bool]:
    """The policies in force, read on every decision (a statement built once, no ORM object)."""
    row = session.connection().execute(_ARMS, {"tid": tenant_id}).one_or_none()
    if row is None:
        raise NotFound(_NO_POLICY)
    return row


def _summary(row: PolicyVersionRow) -> dict[str, Any]:
    return {"name": row.name, "content_hash": row.content_hash, "status": row.status}


# --- policy versions -------------------------------------------------------------------------------------


def _as_document(content: dict[str, Any] | str | bytes) -> dict[str, Any]:
    return parse_policy(content) if isinstance(content, str | bytes) else copy.deepcopy(content)


def save_draft(uow: UnitOfWork, who: Principal, content: dict[str, Any] | str | bytes) -> PolicyVersion:
    """Store a policy version as a draft (no checks beyond the format), or return the existing one."""
    who.require(Permission.EDIT_POLICIES)
    doc = _as_document(content)
    with uow:
        row, _ = _insert_or_get(uow.session, who, doc, "draft")
        version = PolicyVersion.from_row(row)
        uow.commit()
    return version


def submit(uow: UnitOfWork, who: Principal, content: dict[str, Any] | str | bytes, note: str = "") -> PolicyVersion:
    """Hand a policy version in for publishing; it must pass lint (golden tests included)."""
    who.require(Permission.EDIT_POLICIES)
    doc = _as_document(content)
    report = lint_policy(doc)
    if not report.ok:
        problems = "; ".join(f.text() for f in report.errors[:5])
        raise ValidationError(f"content: the policy fails lint: {problems}", field="content")
    with uow:
        s = uow.session
        row, created = _insert_or_get(s, who, doc, "submitted", note)
        if not created and row.status != "draft":
            raise Conflict(f"content: this exact policy version already exists ({row.status})", field="content")
        if row.status == "draft":
            before = _summary(row)
            row.status, row.submitted_at, row.note = "submitted", utcnow(), note
            audit.record(s, who, "policy.submit", "policy_version", row.id, before=before, after=_summary(row))
        version = PolicyVersion.from_row(row)
        uow.commit()
    return version


def _insert_or_get(
    s: Session, who: Principal, doc: dict[str, Any], status: str, note: str = ""
) -> tuple[PolicyVersionRow, bool]:
    content_hash = policy_hash(doc)
    existing = s.execute(
        select(PolicyVersionRow).where(
            PolicyVersionRow.tenant_id == who.tenant_id, PolicyVersionRow.content_hash == content_hash
        )
    ).scalar_one_or_none()
    if existing is not None:
        return existing, False
    now = utcnow()
    row = PolicyVersionRow(
        tenant_id=who.tenant_id,
        name=policy_name(doc) or "policy",
        content_hash=content_hash,
        content=doc,
        status=status,
        author=who.username,
        author_user_id=who.user_id,
        created_at=now,
        submitted_at=now if status == "submitted" else None,
        note=note,
    )
    s.add(row)
    s.flush()
    audit.record(
        s,
        who,
        f"policy.{'submit' if status == 'submitted' else 'draft'}",
        "policy_version",
        row.id,
        after=_summary(row),
    )
    return row, True


def publish(
    uow: UnitOfWork,
    who: Principal,
    content_hash: str,
    *,
    challenger_share_bp: int | None = None,
    shadow: bool = False,
) -> PolicyVersion:
    """Put a submitted version in force, checked by a second person (maker-checker, 双人复核).

    Without challenger options it becomes the champion (the previous one is retired); with a share (basis
    points) it becomes the challenger for that share of customers; with `shadow` it is evaluated beside
    every decision and stored, never acted on."""
    who.require(Permission.PUBLISH_POLICIES)
    challenger = challenger_share_bp is not None or shadow
    share = challenger_share_bp or 0
    if not 0 <= share <= BUCKETS:
        raise ValidationError(f"challenger_share_bp: must be between 0 and {BUCKETS}", field="challenger_share_bp")
    with uow:
        s = uow.session
        row = _version(s, who.tenant_id, content_hash)
        if policy_kind(row.content) != "credit_decision":
            raise ValidationError(
                f"content_hash: a {policy_kind(row.content)} policy cannot decide applications", field="content_hash"
            )
        if row.status != "submitted":
            raise Conflict(
                f"content_hash: only a submitted version can be published; this one is {row.status}",
                field="content_hash",
            )
        if row.author_user_id == who.user_id and row.author == who.username:
            raise PermissionDenied(
                "publish: you wrote this policy version; a second person holding 'publish_policies' must "
                "publish it (maker-checker)"
            )
        before = _summary(row)
        now = utcnow()
        row.status, row.publisher, row.publisher_user_id, row.published_at = (
            "published",
            who.username,
            who.user_id,
            now,
        )
        setup = s.get(DecisionSetupRow, who.tenant_id)
        retired: str | None = None
        if challenger:
            if setup is None:
                raise Conflict("content_hash: publish a champion before a challenger", field="content_hash")
            retired = _retire(s, who, setup.challenger_hash, keep=setup.champion_hash)
            setup.challenger_hash, setup.challenger_share_bp, setup.challenger_shadow = content_hash, share, shadow
            setup.updated_at = now
        elif setup is None:
            s.add(DecisionSetupRow(tenant_id=who.tenant_id, champion_hash=content_hash, updated_at=now))
        else:
            retired = _retire(s, who, setup.champion_hash, keep=content_hash)
            setup.champion_hash, setup.updated_at = content_hash, now
            if setup.challenger_hash == content_hash:
                setup.challenger_hash, setup.challenger_share_bp, setup.challenger_shadow = None, 0, False
        audit.record(
            s,
            who,
            "policy.publish",
            "policy_version",
            row.id,
            before=before,
            after=_summary(row)
            | {
                "arm": ("shadow" if shadow else "challenger") if challenger else "champion",
                "challenger_share_bp": share,
                "retired": retired,
            },
        )
        version = PolicyVersion.from_row(row)
        uow.commit()
    return version


def _retire(s: Session, who: Principal, content_hash: str | None, keep: str | None) -> str | None:
    """Retire a version leaving service; the caller's one audit record names it (one write, one record)."""
    if content_hash is None or content_hash == keep:
        return None
    row = _version(s, who.tenant_id, content_hash)
    row.status, row.retired_at = "retired", utcnow()
    return content_hash


def stop_challenger(uow: UnitOfWork, who: Principal) -> None:
    """End the challenger or shadow run; its version is retired."""
    who.require(Permission.PUBLISH_POLICIES)
    with uow:
        s = uow.session
        setup = _setup(s, who.tenant_id)
        if setup.challenger_hash is None:
            raise Conflict("there is no challenger running")
        before = {
            "challenger_hash": setup.challenger_hash,
            "challenger_share_bp": setup.challenger_share_bp,
            "challenger_shadow": setup.challenger_shadow,
        }
        retired = _retire(s, who, setup.challenger_hash, keep=setup.champion_hash)
        setup.challenger_hash, setup.challenger_share_bp, setup.challenger_shadow = None, 0, False
        setup.updated_at = utcnow()
        audit.record(
            s,
            who,
            "policy.stop_challenger",
            "decision_setup",
            who.tenant_id,
            before=before,
            after={"challenger_hash": None, "retired": retired},
        )
        uow.commit()


def active_policy(uow: UnitOfWork, who: Principal) -> PolicyVersion:
    """The champion version in force for the caller's bank."""
    who.require(Permission.VIEW_POLICIES)
    with uow:
        setup = _setup(uow.session, who.tenant_id)
        return PolicyVersion.from_row(_version(uow.session, who.tenant_id, setup.champion_hash))


def policy_content(uow: UnitOfWork, who: Principal, content_hash: str) -> dict[str, Any]:
    who.require(Permission.VIEW_POLICIES)
    with uow:
        return copy.deepcopy(_version(uow.session, who.tenant_id, content_hash).content)


def list_versions(uow: UnitOfWork, who: Principal) -> list[PolicyVersion]:
    who.require(Permission.VIEW_POLICIES)
    with uow:
        rows = uow.session.execute(
            select(PolicyVersionRow).where(PolicyVersionRow.tenant_id == who.tenant_id).order_by(PolicyVersionRow.id)
        ).scalars()
        return [PolicyVersion.from_row(r) for r in rows]


# --- decisions -------------------------------------------------------------------------------------------


def decide(
    uow: UnitOfWork,
    who: Principal,
    decision_input: DecisionInput,
    *,
    challenger_model: ModelResult | None = None,
    application_ref: str | None = None,
    locale: str = "zh_CN",
) -> DecisionRecord:
    """Decide one application with the policy in force for this customer's arm and store the Decision.

    A shadow policy is evaluated beside it and stored, never acted on. `challenger_model` is the challenger
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
        setup = _arms(s, who.tenant_id)
        customer_id = decision_input.customer.customer_id
        arm, acted_hash, acted_input = "champion", setup.champion_hash, decision_input
        if setup.challenger_hash and not setup.challenger_shadow:
            arm = choose_arm(who.tenant_id, customer_id, setup.challenger_share_bp)
            if arm == "challenger":
                acted_hash, acted_input = setup.challenger_hash, challenger_input
        result = _compiled(s, who.tenant_id, acted_hash).evaluate(acted_input, trace=True)
        shadow_hash = None
        if setup.challenger_hash and setup.challenger_shadow:
            shadow_hash = setup.challenger_hash
        elif challenger_model is not None and not setup.challenger_hash:
            shadow_hash = setup.champion_hash
        shadow = None
        if shadow_hash is not None:
            shadow = _compiled(s, who.tenant_id, shadow_hash).evaluate(challenger_input, trace=True)
    row = _values(who, acted_input, arm, True, acted_hash, result, application_ref)
    shadow_row = None
    if shadow is not None and shadow_hash is not None:
        shadow_row = _values(who, challenger_input, "shadow", False, shadow_hash, shadow, application_ref)
    with uow:
        decision_id, shadow_id = store.write(uow.session, who, row, shadow_row)
        uow.commit()
    shadow_ids = () if shadow_id is None else (shadow_id,)
    return DecisionRecord.of(decision_id, row, locale, shadow_ids)


def _values(
    who: Principal,
    decision_input: DecisionInput,
    arm: str,
    acted_on: bool,
    content_hash: str,
    result: PolicyResult,
    application_ref: str | None,
) -> dict[str, Any]:
    return {
        "tenant_id": who.tenant_id,
        "customer_id": decision_input.customer.customer_id,
        "application_ref": application_ref,
        "arm": arm,
        "acted_on": acted_on,
        "shadow_of": None,
        "inputs": decision_input.canonical(),
        "model_versions": {"model": decision_input.model.model_version},
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
        return DecisionRecord.from_row(_decision(uow.session, who, decision_id), locale)


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
        version = _version(s, who.tenant_id, row.policy_hash)
        if policy_hash(version.content) != row.policy_hash:
            raise Conflict(f"policy version {row.policy_hash[:12]}: stored content does not match its hash")
        decision_input = DecisionInput.from_canonical(row.inputs)
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


def arm_summary(uow: UnitOfWork, who: Principal, bad_by_decision: Mapping[int, bool] | None = None) -> list[ArmSummary]:
    """Decisions and outcomes per arm and policy version. `bad_by_decision` (decision id -> went bad), as
    servicing learns it, adds the observed bad rate of approved decisions per arm."""
    who.require(Permission.VIEW_DECISIONS)
    with uow:
        rows = uow.session.execute(
            select(DecisionRow.arm, DecisionRow.policy_hash, DecisionRow.outcome, func.count())
            .where(DecisionRow.tenant_id == who.tenant_id)
            .group_by(DecisionRow.arm, DecisionRow.policy_hash, DecisionRow.outcome)
        ).all()
        performance: dict[tuple[str, str], list[int]] = {}
        if bad_by_decision:
            ids = list(bad_by_decision)
            for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
                approved = uow.session.execute(
                    select(DecisionRow.id, DecisionRow.arm, DecisionRow.policy_hash).where(
                        DecisionRow.tenant_id == who.tenant_id,
                        DecisionRow.outcome == "approve",
                        DecisionRow.id.in_(chunk),
                    )
                ).all()
                for decision_id, arm, content_hash in approved:
                    known = performance.setdefault((arm, content_hash), [0, 0])
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
            *performance.get((arm, h), [0, 0]),
        )
        for (arm, h), c in sorted(counts.items())
    ]


# --- a new bank moves in with the default policy ----------------------------------------------------------


def setup_tenant(session: Session, tenant: TenantRow) -> None:
    """Tenant-setup hook: publish the default micro-loan policy as the champion, by the system."""
    who = system_principal(tenant.id)
    doc = default_policy()
    content_hash = policy_hash(doc)
    now = utcnow()
    row = PolicyVersionRow(
        tenant_id=tenant.id,
        name=policy_name(doc) or "default_micro_loan",
        content_hash=content_hash,
        content=doc,
        status="published",
        author="system",
        author_user_id=0,
        created_at=now,
        submitted_at=now,
        publisher="system",
        publisher_user_id=0,
        published_at=now,
        note="default policy for a new bank",
    )
    session.add(row)
    session.add(DecisionSetupRow(tenant_id=tenant.id, champion_hash=content_hash, updated_at=now))
    session.flush()
    audit.record(
        session,
        who,
        "policy.publish",
        "policy_version",
        row.id,
        after=_summary(row),
        reason="default policy for a new bank",
    )


# --- what adapters show: a decision in full, the setup in force, outcomes from servicing -------------------


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


def decision_detail(uow: UnitOfWork, who: Principal, decision_id: int, locale: str = "zh_CN") -> DecisionDetail:
    who.require(Permission.VIEW_DECISIONS)
    with uow:
        row = _decision(uow.session, who, decision_id)
        return DecisionDetail(
            DecisionRecord.from_row(row, locale),
            row.application_ref,
            row.shadow_of,
            copy.deepcopy(row.inputs),
            copy.deepcopy(row.model_versions),
            copy.deepcopy(row.trace),
            copy.deepcopy(row.outputs),
            row.created_by,
            row.created_at,
        )


@dataclass(frozen=True)
class PolicySetup:
    """The versions in force: the champion and an optional challenger (share in basis points, or shadow)."""

    champion_hash: str
    challenger_hash: str | None
    challenger_share_bp: int
    challenger_shadow: bool


def policy_setup(uow: UnitOfWork, who: Principal) -> PolicySetup:
    who.require(Permission.VIEW_POLICIES)
    with uow:
        setup = _setup(uow.session, who.tenant_id)
        return PolicySetup(
            setup.champion_hash, setup.challenger_hash, setup.challenger_share_bp, setup.challenger_shadow
        )


def version_of(uow: UnitOfWork, who: Principal, content_hash: str) -> PolicyVersion:
    who.require(Permission.VIEW_POLICIES)
    with uow:
        return PolicyVersion.from_row(_version(uow.session, who.tenant_id, content_hash))
