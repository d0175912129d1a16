"""The periodic review of open credit lines (额度复审) on a bank's own books: behaviour read set-based from
servicing (utilisation, days past due, repayment history), each line's monthly behaviour score (the points
scorecard of `decisioning.behaviour` on the bank's own servicing history, not the application score), the
bank's published limit review policy evaluated in batch. Every change is a proposal kept by decisioning with
its inputs: decreases and freezes (limit lowered to what is drawn: no new drawdowns) always wait for a person
to approve them; increases within the policy's authority are applied at once only when the policy says so,
larger ones wait for an approver. Every applied change goes through servicing and is audited there. It
lives in origination, above both: decisioning decides, servicing books, origination asks."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pandas as pd

from microlend.core.errors import DomainError, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.money import round_half_up
from microlend.core.tenancy import business_date
from microlend.core.uow import UnitOfWork
from microlend.decisioning.behaviour import SCORECARD_VERSION, factors_of
from microlend.decisioning.behaviour_scores import store_month
from microlend.decisioning.evidence import published_limit_review
from microlend.decisioning.limit_changes import (
    LimitChange,
    ProposedChange,
    limit_authority,
    pending_change,
    pending_limit_changes,
    record_limit_change,
    require_authority,
    settle_limit_change,
)
from microlend.decisioning.limits import default_limit_review, review_portfolio
from microlend.decisioning.policy import policy_hash
from microlend.origination.behaviour_scoring import portfolio_scores
from microlend.parties import queries as parties
from microlend.servicing import queries as loans
from microlend.servicing.service import change_credit_line_limit

__all__ = ["LimitChange", "LimitReviewRun", "LineReview", "decide_limit_change", "line_facts",
           "pending_limit_changes", "review_credit_lines"]

_RATIO = Decimal("0.0001")


@dataclass(frozen=True)
class LineReview:
    """What the review proposes for one line and what became of it (applied, pending, kept, failed)."""

    credit_line_id: int
    customer_id: int | None
    action: str
    outcome: str
    current_limit: Decimal
    new_limit: Decimal
    reasons: tuple[str, ...]
    status: str
    change_id: int | None = None
    note: str = ""


@dataclass(frozen=True)
class LimitReviewRun:
    business_date: date
    policy_hash: str
    applied: bool
    lines: tuple[LineReview, ...]

    def count(self, **where: str) -> int:
        return sum(all(getattr(r, k) == v for k, v in where.items()) for r in self.lines)


def line_facts(uow: UnitOfWork, who: Principal, on: date) -> pd.DataFrame:
    """One row per open credit line with the review's inputs, named by input path (set-based queries)."""
    lines = pd.DataFrame([(x.id, x.customer_id, x.limit, x.opened_on) for x in loans.open_credit_lines(uow, who)],
                         columns=["id", "customer_id", "limit", "opened_on"])
    if lines.empty:
        return lines
    drawn = loans.drawn_by_credit_line(uow, who)
    dpd = loans.credit_line_arrears(uow, who)
    history = pd.DataFrame(loans.credit_line_instalments(uow, who, on), columns=["line", "due", "paid"])
    late = _lateness(history, on)
    customer_ids = [int(c) for c in lines["customer_id"].dropna().unique()]
    attributes = parties.customer_attributes(uow, who, customer_ids)
    rows = []
    for line_id, customer_id, limit, opened_on in lines.itertuples(index=False):
        used = Decimal(drawn.get(line_id) or 0)
        known = customer_id == customer_id and customer_id is not None  # NaN for a line with no customer
        attrs = attributes.get(int(customer_id), {}) if known and customer_id else {}
        now_dpd, written_off = dpd.get(line_id, (0, 0))
        worst_6m, on_time = late.get(line_id, (0, None))
        rows.append({
            "line.line_id": str(line_id),
            "line.limit": str(limit),
            "line.utilisation": str((used / limit).quantize(_RATIO, ROUND_HALF_UP) if limit > 0 else Decimal(1)),
            "line.months_on_book": max(0, (on - opened_on).days * 12 // 365),
            "behaviour.current_dpd": now_dpd + (9999 if written_off else 0),
            "behaviour.max_dpd_6m": max(worst_6m, now_dpd),
            "behaviour.on_time_ratio_12m": None if on_time is None else str(on_time),
            "warning.blacklisted": bool(attrs.get("blacklisted", False)),
            "warning.overdue_elsewhere": bool(attrs.get("overdue_elsewhere", False)),
            "warning.turnover_drop": bool(attrs.get("turnover_drop", False)),
            "_customer_id": int(customer_id) if known else None,
            "_drawn": used,
            "_attributes": attrs,
        })
    return pd.DataFrame(rows)


def _lateness(history: pd.DataFrame, on: date) -> dict[int, tuple[int, Decimal | None]]:
    """Per line: the worst days late of instalments due in the last 6 months, and the share of the last 12
    months' instalments paid by their due date."""
    if history.empty:
        return {}
    due = pd.to_datetime(history["due"])
    paid = pd.to_datetime(history["paid"])
    today = pd.Timestamp(on)
    late_days = ((paid.fillna(today) - due).dt.days).clip(lower=0)
    recent = due > today - pd.Timedelta(days=183)
    frame = pd.DataFrame({"line": history["line"], "late": late_days.where(recent, 0),
                          "on_time": (paid.notna() & (paid <= due)).astype(int)})
    grouped = frame.groupby("line").agg(late=("late", "max"), on_time=("on_time", "sum"), n=("on_time", "size"))
    return {int(line): (int(r.late), (Decimal(int(r.on_time)) / Decimal(int(r.n))).quantize(_RATIO, ROUND_HALF_UP))
            for line, r in grouped.iterrows()}


def _behaviour_scores(uow: UnitOfWork, who: Principal, on: date, frame: pd.DataFrame, store: bool) -> None:
    """Each line's monthly behaviour score (the bank's own servicing history, points-based scorecard) as the
    review's `model.score`; with `store`, the month's scores of every line and loan are kept too."""
    scored = portfolio_scores(uow, who, on)
    if store:
        store_month(uow, who, on, [
            {"subject_kind": r["kind"], "subject_id": int(r["subject_id"]), "customer_id": r["customer_id"],
             "score": int(r["score"]), "band": r["band"], "factors": [f.as_dict() for f in factors_of(r)]}
            for r in scored.iter_rows(named=True)])
    by_line = {int(r["subject_id"]): r for r in scored.filter(scored["kind"] == "line").iter_rows(named=True)}
    found = [by_line.get(int(line_id)) for line_id in frame["line.line_id"]]
    frame["model.score"] = np.array([np.nan if r is None else float(r["score"]) for r in found])
    frame["model.pd"] = np.nan
    frame["model.model_version"] = SCORECARD_VERSION
    frame["_behaviour"] = [None if r is None else {
        "score": int(r["score"]), "band": r["band"], "scorecard": SCORECARD_VERSION,
        "factors": [f.as_dict() for f in factors_of(r)]} for r in found]


def review_credit_lines(uow: UnitOfWork, who: Principal, *, apply: bool = False,
                        policy: dict[str, Any] | None = None) -> LimitReviewRun:
    """Re-decide every open credit line with the bank's published limit review (the shipped one until it
    publishes its own), or with `policy` for a dry run. With `apply`, every change becomes a proposal kept
    with its inputs: decreases and freezes always wait for a person to approve them (never applied here);
    an increase within the policy's authority is applied at once only when the policy says so
    (`metadata.auto_apply_increases`), else it waits too. Applying needs a registered policy: a local file
    that is not the bank's published limit review is refused (use it for a dry run)."""
    who.require(Permission.MANAGE_CREDIT_LINES)
    with uow:
        on = business_date(uow.session, who.tenant_id)
        registered = published_limit_review(uow.session, who.tenant_id) or default_limit_review()
    doc = policy or registered
    content_hash = policy_hash(doc)
    if apply and content_hash != policy_hash(registered):
        raise ValidationError(
            f"policy: {content_hash[:12]} is not the bank's published limit review ({policy_hash(registered)[:12]}); "
            "a local file may only be used for a dry run: submit and publish it first", field="policy")
    auto_increase = bool((doc.get("metadata") or {}).get("auto_apply_increases", False))
    with uow:
        frame = line_facts(uow, who, on)
    if frame.empty:
        return LimitReviewRun(on, content_hash, apply, ())
    _behaviour_scores(uow, who, on, frame, store=apply)
    automatic_limit = limit_authority(uow, who).automatic_limit
    inputs = frame[[c for c in frame.columns if not c.startswith("_") and c != "model.model_version"]]
    result = review_portfolio(doc, inputs)
    reviews = []
    for i, r in enumerate(result.itertuples(index=False)):
        line_id, customer_id = int(r.line_id), frame["_customer_id"].iloc[i]
        current = Decimal(frame["line.limit"].iloc[i])
        new_limit = Decimal(r.limit)
        if r.action == "freeze":
            new_limit = min(current, round_half_up(frame["_drawn"].iloc[i]))
        reasons = tuple(r.reasons)
        review = LineReview(line_id, None if pd.isna(customer_id) else int(customer_id), str(r.action),
                            str(r.outcome), current, new_limit, reasons, "proposed")
        if not apply or r.action == "keep" or (new_limit == current and r.outcome == "approve"):
            reviews.append(_with(review, status="kept" if r.action == "keep" else "proposed"))
            continue
        facts = {k: _plain(v) for k, v in inputs.iloc[i].to_dict().items()}
        facts["behaviour.score"] = frame["_behaviour"].iloc[i]
        facts["line.drawn"] = str(frame["_drawn"].iloc[i])
        automatic = (r.action == "increase" and r.outcome == "approve" and new_limit > current and auto_increase
                     and new_limit - current <= automatic_limit)
        if not automatic:
            reviews.append(_with(review, status="pending",
                                 change_id=_store(uow, who, review, facts, content_hash, "pending")))
            continue
        try:
            with uow:  # the change and its record land together
                change_credit_line_limit(uow, who, line_id, new_limit,
                                         f"limit review ({r.action}): {' '.join(reasons)}")
                change_id = _store(uow, who, review, facts, content_hash, "applied", audited=False)
                uow.commit()
        except DomainError as exc:
            reviews.append(_with(review, status="failed", note=exc.message))
            continue
        reviews.append(_with(review, status="applied", change_id=change_id))
    return LimitReviewRun(on, content_hash, apply, tuple(reviews))


def _with(review: LineReview, **changes: Any) -> LineReview:
    return replace(review, **changes)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _store(uow: UnitOfWork, who: Principal, review: LineReview, facts: dict[str, Any], content_hash: str,
           status: str, audited: bool = True) -> int:
    """Keep the proposal (applied ones are audited by servicing; a pending one is audited when kept)."""
    change = ProposedChange(review.credit_line_id, review.customer_id, review.action, review.outcome,
                            review.current_limit, review.new_limit, review.reasons)
    return record_limit_change(uow, who, change, facts, content_hash, status, audited=audited)


def decide_limit_change(uow: UnitOfWork, who: Principal, change_id: int, approve: bool,
                        note: str = "") -> LimitChange:
    """An approver applies (through servicing) or rejects a referred change; not the one who proposed or
    recommended it, and an increase only within the approver's authority by amount."""
    who.require(Permission.MANAGE_CREDIT_LINES)
    with uow:
        change = pending_change(uow, who, change_id)
        if approve:
            require_authority(uow, who, change)  # before anything is booked
            change_credit_line_limit(uow, who, change.credit_line_id, change.proposed_limit,
                                     f"limit change {change_id} approved ({change.action})")
        settled = settle_limit_change(uow, who, change_id, approve, note)
        uow.commit()
    return settled
