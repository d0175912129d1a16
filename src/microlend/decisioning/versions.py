"""Policy versions (maker-checker): drafts, submission through lint, publishing as champion, challenger or
shadow by a second person, retiring; and the reads of what is in force."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, select
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.decisioning import evidence, reason_codes
from microlend.decisioning.arms import BUCKETS
from microlend.decisioning.golden import run_golden_tests
from microlend.decisioning.lint import LintReport, lint_policy
from microlend.decisioning.money import MoneyAssumptions
from microlend.decisioning.policy import (
    CompiledPolicy,
    parse_policy,
    policy_hash,
    policy_kind,
    policy_name,
    register_subdecision,
    subdecision_keys,
)
from microlend.decisioning.reasons import CATALOGUE, Reason
from microlend.decisioning.tables import (
    DecisionSetupRow,
    PolicySubmissionRow,
    PolicyVersionRow,
)


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
    environment: str = "draft"  # draft, test, production (see `tables.ENVIRONMENTS`)

    @classmethod
    def from_row(cls, row: PolicyVersionRow) -> PolicyVersion:
        return cls(
            row.id, row.name, row.content_hash, row.status, row.author, row.publisher, row.created_at, row.published_at,
            row.environment or "draft",
        )


# --- compiled policies, cached by bank and content hash (a hash names exactly one content) ----------------

_COMPILED: dict[tuple[int, str], CompiledPolicy] = {}


def compiled_policy(session: Session, tenant_id: int, content_hash: str) -> CompiledPolicy:
    cached = _COMPILED.get((tenant_id, content_hash))
    if cached is not None:
        return cached
    row = version_row(session, tenant_id, content_hash)
    if policy_hash(row.content) != content_hash:
        raise Conflict(f"policy version {content_hash[:12]}: stored content does not match its hash")
    load_subdecisions(session, tenant_id, row.content)
    compiled = CompiledPolicy(row.content, content_hash)
    _COMPILED[(tenant_id, content_hash)] = compiled
    return compiled


def load_subdecisions(session: Session, tenant_id: int, doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The sub-decisions a policy loads, and theirs, from the bank's stored versions by content hash (so a
    decision replays with exactly the sub-decisions it was made with), made loadable by the engine. A key
    that names no stored version is left out: lint reports it and the engine refers what reaches it."""
    found: dict[str, dict[str, Any]] = {}
    todo = subdecision_keys(doc)
    while todo:
        key = todo.pop()
        if not key or key in found:
            continue
        row = session.execute(select(PolicyVersionRow).where(
            PolicyVersionRow.tenant_id == tenant_id, PolicyVersionRow.content_hash == key)).scalar_one_or_none()
        if row is None:
            continue
        if policy_hash(row.content) != key:
            raise Conflict(f"policy version {key[:12]}: stored content does not match its hash")
        found[key] = row.content
        register_subdecision(key, row.content)
        todo += subdecision_keys(row.content)
    return found


def subdecisions_of(uow: UnitOfWork, who: Principal, doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The stored versions a policy loads as sub-decisions (by content hash), made loadable."""
    who.require(Permission.VIEW_POLICIES)
    with uow.read_only():
        return load_subdecisions(uow.session, who.tenant_id, doc)


def bank_catalogue(session: Session, tenant_id: int) -> dict[str, Reason]:
    """The bank's reason-code catalogue (the built-in codes for a bank that has none stored)."""
    return reason_codes.catalogue(session, tenant_id) or dict(CATALOGUE)


def lint_for_bank(uow: UnitOfWork, who: Principal, content: dict[str, Any] | str | bytes, *,
                  run_tests: bool = True) -> LintReport:
    """Lint a policy against the bank's reason catalogue, with the sub-decisions it loads from the bank's
    stored versions."""
    who.require(Permission.VIEW_POLICIES)
    doc = _as_document(content)
    with uow.read_only():
        catalogue = bank_catalogue(uow.session, who.tenant_id)
        subs = load_subdecisions(uow.session, who.tenant_id, doc)
    return lint_policy(doc, run_tests=run_tests, catalogue=catalogue, subdecisions=subs)


def version_row(session: Session, tenant_id: int, content_hash: str) -> PolicyVersionRow:
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
               DecisionSetupRow.challenger_shadow, DecisionSetupRow.shadow_hash).where(
    DecisionSetupRow.tenant_id == bindparam("tid"))


def arms_in_force(session: Session, tenant_id: int) -> Row[str, str | None, int, bool, str | None]:
    """The policies in force, read on every decision (a statement built once, no ORM object)."""
    row = session.connection().execute(_ARMS, {"tid": tenant_id}).one_or_none()
    if row is None:
        raise NotFound(_NO_POLICY)
    return row


def audit_summary(row: PolicyVersionRow) -> dict[str, Any]:
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


@dataclass(frozen=True)
class Submission:
    """What a version was submitted with: the maker's note, lint warnings, golden test results and the
    simulation against the champion of the day (see `evidence`)."""

    content_hash: str
    submitted_by: str
    submitted_at: datetime
    note: str
    champion_hash: str | None
    warnings: tuple[str, ...]
    golden: tuple[dict[str, Any], ...]
    simulation: dict[str, Any]

    @classmethod
    def from_row(cls, row: PolicySubmissionRow, content_hash: str) -> Submission:
        return cls(content_hash, row.submitted_by, row.submitted_at, row.note, row.champion_hash,
                   tuple(row.warnings), tuple(row.golden), dict(row.simulation))


def submit(uow: UnitOfWork, who: Principal, content: dict[str, Any] | str | bytes, note: str = "") -> PolicyVersion:
    """Hand a policy version in for publishing, the one way to publish any kind of policy: it must lint
    clean (warnings are kept with it), have golden tests that all pass, and it is simulated against the
    version in force on the bank's own recent history; all of it is stored for the checker."""
    return submit_with_evidence(uow, who, content, note)[0]


def submit_with_evidence(uow: UnitOfWork, who: Principal, content: dict[str, Any] | str | bytes,
                         note: str = "") -> tuple[PolicyVersion, Submission]:
    who.require(Permission.EDIT_POLICIES)
    doc = _as_document(content)
    with uow.read_only():
        catalogue = bank_catalogue(uow.session, who.tenant_id)
        subs = load_subdecisions(uow.session, who.tenant_id, doc)
    report = lint_policy(doc, catalogue=catalogue, subdecisions=subs)
    if not report.ok:
        problems = "; ".join(f.text() for f in report.errors[:5])
        raise ValidationError(f"content: the policy fails lint: {problems}", field="content")
    if "no_golden_tests" in report.kinds():
        raise ValidationError("tests: the policy has no golden tests; add at least one case with its expected "
                              "outputs before submitting it", field="tests")
    golden = run_golden_tests(doc, subs)
    warnings = [f.text() for f in report.findings if f.severity == "warning"]
    kind = policy_kind(doc)
    money = None if kind in ("limit_review", "early_warning") else _money_assumptions(uow, who)
    book = _early_warning_book(uow, who) if kind == "early_warning" else None
    with uow:
        s = uow.session
        row, created = _insert_or_get(s, who, doc, "submitted", note)
        if not created and row.status != "draft":
            raise Conflict(f"content: this exact policy version already exists ({row.status})", field="content")
        if row.status == "draft":
            before = audit_summary(row)
            row.status, row.submitted_at, row.note = "submitted", utcnow(), note
            audit.record(s, who, "policy.submit", "policy_version", row.id, before=before, after=audit_summary(row))
        # lint clean and every golden test passing: a submitted version is in the test environment
        row.environment = "test"
        champion_hash, simulation = _simulate_against_champion(s, who.tenant_id, doc, money, book)
        submission = PolicySubmissionRow(
            tenant_id=who.tenant_id, policy_version_id=row.id, submitted_by=who.username,
            submitted_at=row.submitted_at or utcnow(), note=note, champion_hash=champion_hash, warnings=warnings,
            golden=evidence.golden_evidence(golden), simulation=simulation)
        s.add(submission)
        s.flush()
        version = PolicyVersion.from_row(row)
        stored = Submission.from_row(submission, row.content_hash)
        uow.commit()
    return version, stored


def _money_assumptions(uow: UnitOfWork, who: Principal) -> MoneyAssumptions:
    from microlend.decisioning.ports import money_assumptions

    return money_assumptions(uow, who)


def _early_warning_book(uow: UnitOfWork, who: Principal) -> Any:
    from microlend.decisioning.ports import early_warning_book

    return early_warning_book(uow, who)


SIMULATED_KINDS = ("credit_decision", "limit_review", "early_warning")
#: Kinds of which one version is in force at a time (publishing one retires the one before).
SINGLE_KINDS = ("limit_review", "early_warning")


def _simulate_against_champion(s: Session, tenant_id: int, doc: dict[str, Any],
                               money: MoneyAssumptions | None, book: Any = None) -> tuple[str | None, dict[str, Any]]:
    """The stored simulation of a version against the version of its kind in force, on the bank's history
    (an early-warning version: on the current book). A kind with no simulation cannot be submitted: the
    checker would have no evidence."""
    kind = policy_kind(doc)
    if kind == "limit_review":
        return None, evidence.limit_review_simulation(s, tenant_id, doc)
    if kind == "early_warning":
        from microlend.decisioning.early_warning import default_early_warning, simulation

        in_force = evidence.published_of_kind(s, tenant_id, "early_warning")
        baseline = in_force or default_early_warning()
        return (policy_hash(baseline) if in_force else None), simulation(doc, baseline, book)
    if kind == "credit_decision":
        setup = s.get(DecisionSetupRow, tenant_id)
        champion_hash = setup.champion_hash if setup is not None else None
        champion = version_row(s, tenant_id, champion_hash).content if champion_hash else None
        return champion_hash, evidence.credit_simulation(s, tenant_id, doc, champion, money)
    raise ValidationError(f"content: a {kind} policy has no simulation on the bank's history, so it cannot be "
                          f"submitted (kinds that can: {', '.join(SIMULATED_KINDS)})", field="content")


def _submission_row(s: Session, row: PolicyVersionRow) -> PolicySubmissionRow | None:
    return s.execute(select(PolicySubmissionRow).where(
        PolicySubmissionRow.tenant_id == row.tenant_id, PolicySubmissionRow.policy_version_id == row.id)
        .order_by(PolicySubmissionRow.id.desc()).limit(1)).scalar_one_or_none()


def submission_of(uow: UnitOfWork, who: Principal, content_hash: str) -> Submission | None:
    """The evidence a version was submitted with (None for one published without: the default policy)."""
    who.require(Permission.VIEW_POLICIES)
    with uow:
        row = version_row(uow.session, who.tenant_id, content_hash)
        found = _submission_row(uow.session, row)
        return None if found is None else Submission.from_row(found, content_hash)


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
        after=audit_summary(row),
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
        row = version_row(s, who.tenant_id, content_hash)
        kind = policy_kind(row.content)
        if kind in SINGLE_KINDS and challenger:
            raise ValidationError(f"challenger_share_bp: a {kind.replace('_', ' ')} policy runs alone; publish it "
                                  "without a challenger share or shadow", field="challenger_share_bp")
        if kind not in ("credit_decision", *SINGLE_KINDS):
            raise ValidationError(f"content_hash: a {kind} policy cannot be published", field="content_hash")
        if row.status != "submitted":
            raise Conflict(
                f"content_hash: only a submitted version can be published; this one is {row.status}",
                field="content_hash",
            )
        if row.environment != "test":
            raise Conflict(f"content_hash: only a version in the test environment moves to production; this one "
                           f"is in {row.environment}", field="content_hash")
        if row.author_user_id == who.user_id and row.author == who.username:
            raise PermissionDenied(
                "publish: you wrote this policy version; a second person holding 'publish_policies' must "
                "publish it (maker-checker)"
            )
        if _submission_row(s, row) is None:
            raise Conflict("content_hash: this version has no stored submission evidence (golden tests and "
                           "simulation); submit it again", field="content_hash")
        before = audit_summary(row)
        now = utcnow()
        row.status, row.publisher, row.publisher_user_id, row.published_at = (
            "published",
            who.username,
            who.user_id,
            now,
        )
        row.environment = "production"
        retired: str | None = None
        if kind in SINGLE_KINDS:
            previous: str | None = None
            for other in s.execute(select(PolicyVersionRow).where(
                    PolicyVersionRow.tenant_id == who.tenant_id, PolicyVersionRow.status == "published",
                    PolicyVersionRow.id != row.id)).scalars():
                if policy_kind(other.content) == kind:
                    other.status, other.retired_at = "retired", now
                    previous = other.content_hash
            retired = previous
            arm = kind
        else:
            setup = s.get(DecisionSetupRow, who.tenant_id)
            if challenger:
                if setup is None:
                    raise Conflict("content_hash: publish a champion before a challenger", field="content_hash")
                if shadow:  # the shadow slot: runs beside the champion and any split challenger
                    if setup.challenger_shadow:  # a shadow still in the challenger's slot (an older set-up) leaves
                        setup.shadow_hash = setup.shadow_hash or setup.challenger_hash
                        _clear_challenger(setup)
                    retired = _retire(s, who, setup.shadow_hash, keep=_in_force(setup, "shadow"))
                    setup.shadow_hash, setup.shadow_started_at = content_hash, now
                else:
                    retired = _retire(s, who, setup.challenger_hash, keep=_in_force(setup, "challenger"))
                    setup.challenger_hash, setup.challenger_share_bp = content_hash, share
                    setup.challenger_shadow, setup.challenger_started_at = False, now
                setup.updated_at = now
            elif setup is None:
                s.add(DecisionSetupRow(tenant_id=who.tenant_id, champion_hash=content_hash, updated_at=now))
            else:
                retired = _retire(s, who, setup.champion_hash, keep=_in_force(setup, "champion", content_hash))
                setup.champion_hash, setup.updated_at = content_hash, now
                if setup.challenger_hash == content_hash:
                    _clear_challenger(setup)
                if setup.shadow_hash == content_hash:
                    _clear_shadow(setup)
            arm = ("shadow" if shadow else "challenger") if challenger else "champion"
        audit.record(
            s,
            who,
            "policy.publish",
            "policy_version",
            row.id,
            before=before,
            after=audit_summary(row) | {"arm": arm, "challenger_share_bp": share, "retired": retired},
        )
        version = PolicyVersion.from_row(row)
        uow.commit()
    return version


def _clear_challenger(setup: DecisionSetupRow) -> None:
    setup.challenger_hash, setup.challenger_share_bp, setup.challenger_shadow = None, 0, False
    setup.challenger_started_at = None


def _clear_shadow(setup: DecisionSetupRow) -> None:
    setup.shadow_hash, setup.shadow_started_at = None, None


def _in_force(setup: DecisionSetupRow, leaving: str, replacement: str | None = None) -> tuple[str, ...]:
    """The versions that stay in force when the one in slot `leaving` goes (plus its replacement, if any)."""
    slots = {"champion": setup.champion_hash, "challenger": setup.challenger_hash, "shadow": setup.shadow_hash}
    staying = tuple(h for slot, h in slots.items() if slot != leaving and h is not None)
    return staying + ((replacement,) if replacement is not None else ())


def _retire(s: Session, who: Principal, content_hash: str | None, keep: str | tuple[str, ...] | None) -> str | None:
    """Retire a version leaving service, unless it stays in force in `keep`; the caller's one audit record names
    it (one write, one record)."""
    kept = (keep,) if isinstance(keep, str) else (keep or ())
    if content_hash is None or content_hash in kept:
        return None
    row = version_row(s, who.tenant_id, content_hash)
    row.status, row.retired_at = "retired", utcnow()
    return content_hash


RUNS = ("challenger", "shadow")


def stop_challenger(uow: UnitOfWork, who: Principal, arm: str | None = None) -> None:
    """End the split challenger (`arm="challenger"`), the shadow (`"shadow"`) or both (None); the versions
    leaving service are retired."""
    who.require(Permission.PUBLISH_POLICIES)
    if arm is not None and arm not in RUNS:
        raise ValidationError(f"arm: one of {', '.join(RUNS)}", field="arm")
    with uow:
        s = uow.session
        setup = _setup(s, who.tenant_id)
        running = {"challenger": setup.challenger_hash, "shadow": setup.shadow_hash}
        stopping = [a for a in RUNS if (arm is None or a == arm) and running[a] is not None]
        if not stopping:
            raise Conflict(f"there is no {arm or 'challenger or shadow'} running")
        before = {
            "challenger_hash": setup.challenger_hash,
            "challenger_share_bp": setup.challenger_share_bp,
            "shadow_hash": setup.shadow_hash,
        }
        retired = []
        for a in stopping:
            gone = _retire(s, who, running[a], keep=_in_force(setup, a))
            if gone is not None:
                retired.append(gone)
            if a == "challenger":
                _clear_challenger(setup)
            else:
                _clear_shadow(setup)
        setup.updated_at = utcnow()
        audit.record(
            s,
            who,
            "policy.stop_challenger",
            "decision_setup",
            who.tenant_id,
            before=before,
            after={"challenger_hash": setup.challenger_hash, "shadow_hash": setup.shadow_hash, "stopped": stopping,
                   "retired": retired},
        )
        uow.commit()


def active_policy(uow: UnitOfWork, who: Principal) -> PolicyVersion:
    """The champion version in force for the caller's bank."""
    who.require(Permission.VIEW_POLICIES)
    with uow:
        setup = _setup(uow.session, who.tenant_id)
        return PolicyVersion.from_row(version_row(uow.session, who.tenant_id, setup.champion_hash))


def policy_content(uow: UnitOfWork, who: Principal, content_hash: str) -> dict[str, Any]:
    who.require(Permission.VIEW_POLICIES)
    with uow:
        return copy.deepcopy(version_row(uow.session, who.tenant_id, content_hash).content)


def list_versions(uow: UnitOfWork, who: Principal) -> list[PolicyVersion]:
    who.require(Permission.VIEW_POLICIES)
    with uow:
        rows = uow.session.execute(
            select(PolicyVersionRow).where(PolicyVersionRow.tenant_id == who.tenant_id).order_by(PolicyVersionRow.id)
        ).scalars()
        return [PolicyVersion.from_row(r) for r in rows]


@dataclass(frozen=True)
class PolicySetup:
    """The versions in force: the champion, an optional split challenger (share in basis points) and an optional
    shadow beside them (`challenger_shadow` is always false since the shadow has a slot of its own)."""

    champion_hash: str
    challenger_hash: str | None
    challenger_share_bp: int
    challenger_shadow: bool
    challenger_started_at: datetime | None = None
    shadow_hash: str | None = None
    shadow_started_at: datetime | None = None


def policy_setup(uow: UnitOfWork, who: Principal) -> PolicySetup:
    who.require(Permission.VIEW_POLICIES)
    with uow:
        setup = _setup(uow.session, who.tenant_id)
        return PolicySetup(
            setup.champion_hash, setup.challenger_hash, setup.challenger_share_bp, setup.challenger_shadow,
            setup.challenger_started_at, setup.shadow_hash, setup.shadow_started_at,
        )


def version_of(uow: UnitOfWork, who: Principal, content_hash: str) -> PolicyVersion:
    who.require(Permission.VIEW_POLICIES)
    with uow:
        return PolicyVersion.from_row(version_row(uow.session, who.tenant_id, content_hash))


# --- environments: draft -> test -> production -----------------------------------------------------------


def promote_to_test(uow: UnitOfWork, who: Principal, content_hash: str) -> PolicyVersion:
    """Move a draft into the test environment, where it can be evaluated on request and never decides a live
    application: it must lint clean and have golden tests that all pass (any kind of policy). Production is
    reached only by submitting and being published by a second person."""
    who.require(Permission.EDIT_POLICIES)
    with uow:
        s = uow.session
        row = version_row(s, who.tenant_id, content_hash)
        if row.environment != "draft":
            raise Conflict(f"content_hash: version {content_hash[:12]} is already in {row.environment}",
                           field="content_hash")
        doc = dict(row.content)
        report = lint_policy(doc)
        if not report.ok:
            problems = "; ".join(f.text() for f in report.errors[:5])
            raise ValidationError(f"content_hash: the policy fails lint: {problems}", field="content_hash")
        if "no_golden_tests" in report.kinds():
            raise ValidationError("content_hash: the policy has no golden tests; add at least one case with its "
                                  "expected outputs before testing it", field="content_hash")
        failed = [r.name for r in run_golden_tests(doc) if not r.passed]
        if failed:
            raise ValidationError(f"content_hash: golden tests fail: {', '.join(failed[:5])}", field="content_hash")
        before = {**audit_summary(row), "environment": row.environment}
        row.environment = "test"
        audit.record(s, who, "policy.promote_to_test", "policy_version", row.id, before=before,
                     after={**audit_summary(row), "environment": "test"})
        version = PolicyVersion.from_row(row)
        uow.commit()
    return version


def evaluate_in_environment(uow: UnitOfWork, who: Principal, content_hash: str, environment: str,
                            data: dict[str, Any]) -> dict[str, Any]:
    """Evaluate one input (the policy kind's canonical input: a decision input, a credit line's review input)
    with a version of the named environment; nothing is stored and no live decision changes."""
    who.require(Permission.VIEW_POLICIES)
    from microlend.decisioning.domain import DecisionInput
    from microlend.decisioning.limits import LimitReviewInput, review_line

    if environment not in ("test", "production"):
        raise ValidationError("environment: one of test, production", field="environment")
    with uow:
        row = version_row(uow.session, who.tenant_id, content_hash)
        if row.environment != environment:
            raise Conflict(f"environment: version {content_hash[:12]} is in {row.environment}, not {environment}",
                           field="environment")
        compiled = compiled_policy(uow.session, who.tenant_id, content_hash)
        kind = policy_kind(row.content)
    if kind == "limit_review":
        return review_line(compiled, LimitReviewInput.from_canonical(data)).outputs()
    return compiled.evaluate(DecisionInput.from_canonical(data)).outputs()
