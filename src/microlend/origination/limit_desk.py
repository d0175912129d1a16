"""The limit management desk (增信提额): the candidates the periodic review proposed — increases waiting for a
person, every decrease and freeze — with the model's evidence (behaviour score, band, each factor's points,
utilisation, days past due, proposed against current limit and why).

The customer's officer (客户经理) sees the candidates of their customers and supports or opposes each with a
note; an approver decides the case: four eyes (neither who ran the review nor who recommended may decide),
and an increase only within the approver's authority by amount (a tenant setting per role; above it a
person with a higher role decides). Nothing lowers a limit without a person."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from microlend.core.errors import NotFound, PermissionDenied
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.decisioning import behaviour
from microlend.decisioning.behaviour_scores import StoredScore, latest_scores, score_history
from microlend.decisioning.limit_changes import (
    LimitAuthority,
    LimitChange,
    limit_authority,
    limit_change,
    limit_changes_of_line,
    pending_changes,
    recommend_limit_change,
)
from microlend.decisioning.reasons import reason
from microlend.origination.assist import staff_branch
from microlend.origination.limit_review import decide_limit_change
from microlend.parties import queries as parties


@dataclass(frozen=True)
class Factor:
    name: str
    label: str
    value: int | None
    points: int
    text: str


@dataclass(frozen=True)
class Candidate:
    """One proposed change with the evidence a person needs to judge it."""

    change: LimitChange
    customer_name: str
    score: int | None
    band: str
    factors: tuple[Factor, ...]
    utilisation: Decimal | None
    current_dpd: int | None
    max_dpd_6m: int | None
    drawn: Decimal | None
    why: tuple[str, ...]
    can_decide: bool = False
    refusal: str = ""

    @property
    def id(self) -> int:
        return self.change.id


@dataclass(frozen=True)
class Case:
    candidate: Candidate
    history: tuple[LimitChange, ...]
    scores: tuple[StoredScore, ...]
    authority: Decimal


def _is_officer_only(who: Principal) -> bool:
    return not who.can(Permission.MANAGE_CREDIT_LINES)


def _mine(uow: UnitOfWork, who: Principal, customer_ids: set[int]) -> set[int]:
    """Of these customers, the ones the officer serves: assigned to them, or unassigned in their branch
    (every unassigned one for head office)."""
    if not customer_ids:
        return set()
    branch = staff_branch(uow, who)
    return {c.id for c in parties.all_customers(uow, who) if c.id in customer_ids and (
        c.officer_user_id == who.user_id or (c.officer_user_id is None and (not branch or c.branch == branch)))}


def _number(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


def _evidence(change: LimitChange, stored: StoredScore | None, name: str, locale: str,
              who: Principal, authority: LimitAuthority) -> Candidate:
    inputs = change.inputs or {}
    seen = inputs.get("behaviour.score") or None
    if seen:
        points = tuple(behaviour.FactorPoints.from_dict(f) for f in seen.get("factors", []))
        score, band = int(seen["score"]), str(seen["band"])
    elif stored is not None:
        points, score, band = stored.factors, stored.score, stored.band
    else:
        points, score, band = (), None, ""
    factors = tuple(Factor(p.name, p.label(locale), p.value, p.points, p.text(locale)) for p in points)
    dpd, worst = inputs.get("behaviour.current_dpd"), inputs.get("behaviour.max_dpd_6m")
    why = tuple(reason(code).message(locale) for code in change.reasons)
    refusal = ""
    if who.can(Permission.MANAGE_CREDIT_LINES):
        if change.created_by == who.username:
            refusal = "you ran the review that proposed this change; a second person decides it"
        elif change.recommended_by == who.username:
            refusal = "four eyes: you recommended this change, so another person must decide it"
        elif change.increase > authority.of(who):
            refusal = "above your approval authority: a person with a higher authority decides it"
    else:
        refusal = "forbidden"
    return Candidate(change, name, score, band, factors, _number(inputs.get("line.utilisation")),
                     None if dpd is None else int(dpd), None if worst is None else int(worst),
                     _number(inputs.get("line.drawn")), why, can_decide=change.status == "pending" and not refusal,
                     refusal=refusal)


def _candidates(uow: UnitOfWork, who: Principal, changes: list[LimitChange], locale: str) -> list[Candidate]:
    customer_ids = [c.customer_id for c in changes if c.customer_id is not None]
    names = parties.customer_names(uow, who, customer_ids) if customer_ids else {}
    stored = latest_scores(uow, who, "line", [c.credit_line_id for c in changes]) if changes else {}
    authority = limit_authority(uow, who)
    return [_evidence(c, stored.get(c.credit_line_id), names.get(c.customer_id or 0, ""), locale, who, authority)
            for c in changes]


def officer_candidates(uow: UnitOfWork, who: Principal, locale: str = "zh_CN") -> list[Candidate]:
    """增信提额 candidates of the officer's customers (every pending one for an approver or administrator),
    decreases and freezes first, then the largest increase."""
    if not (who.can(Permission.RECOMMEND) or who.can(Permission.MANAGE_CREDIT_LINES)):
        raise PermissionDenied("only a loan officer or an approver sees the limit desk")
    changes = pending_changes(uow, who)
    if _is_officer_only(who):
        mine = _mine(uow, who, {c.customer_id for c in changes if c.customer_id is not None})
        changes = [c for c in changes if c.customer_id in mine]
    order = {"freeze": 0, "decrease": 1, "increase": 2}
    changes.sort(key=lambda c: (order.get(c.action, 3), -c.increase, c.id))
    return _candidates(uow, who, changes, locale)


def approver_queue(uow: UnitOfWork, who: Principal, locale: str = "zh_CN") -> list[Candidate]:
    """Every pending change of the bank for an approver, with whether the caller may decide it."""
    who.require(Permission.MANAGE_CREDIT_LINES)
    changes = pending_changes(uow, who)
    changes.sort(key=lambda c: (c.recommendation is None, c.id))  # recommended ones first
    return _candidates(uow, who, changes, locale)


def _visible(uow: UnitOfWork, who: Principal, change_id: int) -> LimitChange:
    if not (who.can(Permission.RECOMMEND) or who.can(Permission.MANAGE_CREDIT_LINES)):
        raise PermissionDenied("only a loan officer or an approver sees the limit desk")
    change = limit_change(uow, who, change_id)
    if _is_officer_only(who) and (change.customer_id is None
                                  or change.customer_id not in _mine(uow, who, {change.customer_id})):
        raise NotFound(f"limit change {change_id} not found")
    return change


def case(uow: UnitOfWork, who: Principal, change_id: int, locale: str = "zh_CN") -> Case:
    """The case of one change: its evidence, the line's earlier changes and its monthly scores."""
    change = _visible(uow, who, change_id)
    [candidate] = _candidates(uow, who, [change], locale)
    history = tuple(c for c in limit_changes_of_line(uow, who, change.credit_line_id) if c.id != change.id)
    scores = tuple(score_history(uow, who, "line", change.credit_line_id))
    return Case(candidate, history, scores, limit_authority(uow, who).of(who))


def recommend(uow: UnitOfWork, who: Principal, change_id: int, recommendation: str, note: str) -> LimitChange:
    """The officer of the customer supports or opposes the change with a note."""
    _visible(uow, who, change_id)
    return recommend_limit_change(uow, who, change_id, recommendation, note)


def decide(uow: UnitOfWork, who: Principal, change_id: int, approve: bool, note: str = "") -> LimitChange:
    """An approver applies or rejects the change (four eyes, authority by amount)."""
    who.require(Permission.MANAGE_CREDIT_LINES)
    return decide_limit_change(uow, who, change_id, approve, note)
