"""Read functions about applications and what became of them, for adapters and other modules: views,
never rows; every query is scoped to the caller's tenant."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import func, select

from microlend.core import references
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.decisioning import queries as decisions
from microlend.decisioning.queries import LoanPerformance
from microlend.origination.applications import Status
from microlend.origination.tables import ApplicationRow
from microlend.servicing import queries as loans

#: A loan has gone bad (坏账口径) once it is more than this many days past due, or written off.
BAD_DPD = loans.BAD_DAYS_PAST_DUE
#: Statuses whose decision made an offer (for the marketing funnel's "approved" step).
_APPROVED = (Status.APPROVED.value, Status.ACCEPTED.value, Status.CONTRACTED.value, Status.DISBURSED.value)
_CHUNK = 500


def observed_bad(uow: UnitOfWork, who: Principal) -> dict[int, bool]:
    """Decision id -> went bad, for every decision whose application became a loan (origination links the
    decision to the loan; servicing knows its days past due). Shadow decisions share their acted one's fate."""
    who.require(Permission.VIEW_DECISIONS)
    with uow:
        linked = uow.session.execute(
            select(ApplicationRow.decision_id, ApplicationRow.loan_id).where(
                ApplicationRow.tenant_id == who.tenant_id, ApplicationRow.decision_id.is_not(None),
                ApplicationRow.loan_id.is_not(None))).all()
        outcomes = loans.loan_outcomes(uow, who, select(ApplicationRow.loan_id).where(
            ApplicationRow.tenant_id == who.tenant_id, ApplicationRow.decision_id.is_not(None),
            ApplicationRow.loan_id.is_not(None)))
        bad = {int(d): outcomes[int(loan)].bad for d, loan in linked
               if d is not None and loan is not None and int(loan) in outcomes}
        for shadow_id, acted_id in decisions.shadows_of(uow, who, list(bad)).items():
            bad[shadow_id] = bad[acted_id]
    return bad


def decision_performance(uow: UnitOfWork, who: Principal, on: date) -> dict[int, LoanPerformance]:
    """Decision id -> when its loan was paid out and the first day it went bad (as of `on`), for every decision
    whose application became a loan; a shadow decision shares its acted one's loan."""
    who.require(Permission.VIEW_DECISIONS)
    with uow:
        linked = uow.session.execute(
            select(ApplicationRow.decision_id, ApplicationRow.loan_id).where(
                ApplicationRow.tenant_id == who.tenant_id, ApplicationRow.decision_id.is_not(None),
                ApplicationRow.loan_id.is_not(None))).all()
        facts = loans.loan_performance(uow, who, select(ApplicationRow.loan_id).where(
            ApplicationRow.tenant_id == who.tenant_id, ApplicationRow.decision_id.is_not(None),
            ApplicationRow.loan_id.is_not(None)), on)
        found = {int(d): LoanPerformance(facts[int(loan)].disbursed_on, facts[int(loan)].bad_on)
                 for d, loan in linked if d is not None and loan is not None and int(loan) in facts}
        for shadow_id, acted_id in decisions.shadows_of(uow, who, list(found)).items():
            found[shadow_id] = found[acted_id]
    return found


def waiting_for_review(uow: UnitOfWork, who: Principal) -> int:
    """Referred and recommended applications of the caller's bank still waiting for people."""
    with uow:
        return int(uow.session.execute(select(func.count()).select_from(ApplicationRow).where(
            ApplicationRow.tenant_id == who.tenant_id,
            ApplicationRow.status.in_((Status.REFERRED.value, Status.RECOMMENDED.value)))).scalar_one())


@dataclass(frozen=True)
class ApplicationStep:
    """One step of a customer's way to a loan: applied, approved (an offer was made) or disbursed."""

    customer_id: int
    kind: str
    at: datetime
    campaign_id: int | None


def application_steps(uow: UnitOfWork, who: Principal, customer_ids: Sequence[int],
                      since: datetime) -> list[ApplicationStep]:
    """The steps of applications submitted since `since` by these customers: applied at submission,
    approved when the decision made an offer, disbursed when the money went out. An application that arrived
    through a tracked link carries its campaign."""
    ids = sorted({int(i) for i in customer_ids})
    out: list[ApplicationStep] = []
    with uow:
        for start in range(0, len(ids), _CHUNK):
            rows = uow.session.execute(select(
                ApplicationRow.customer_id, ApplicationRow.campaign_id, ApplicationRow.status,
                ApplicationRow.submitted_at, ApplicationRow.decided_at, ApplicationRow.disbursed_at).where(
                ApplicationRow.tenant_id == who.tenant_id, ApplicationRow.customer_id.in_(ids[start : start + _CHUNK]),
                ApplicationRow.submitted_at >= since)).all()
            for customer, campaign, status, submitted, decided, disbursed in rows:
                cid = None if campaign is None else int(campaign)
                out.append(ApplicationStep(int(customer), "applied", submitted, cid))
                if status in _APPROVED and decided is not None:
                    out.append(ApplicationStep(int(customer), "approved", decided, cid))
                if disbursed is not None:
                    out.append(ApplicationStep(int(customer), "disbursed", disbursed, cid))
    return out


def of_this_bank(uow: UnitOfWork, who: Principal, application_ids: Sequence[int]) -> set[int]:
    """The ids among `application_ids` that are applications of the caller's bank."""
    return references.of_bank(uow, who, ApplicationRow.id, ApplicationRow.tenant_id, application_ids)
def application_customers(uow: UnitOfWork, who: Principal, application_ids: Sequence[int]) -> dict[int, int]:
    """The customer of each application among `application_ids` that is this bank's; another bank's
    application is simply absent."""
    ids = sorted({int(i) for i in application_ids})
    if not ids:
        return {}
    with uow:
        rows = uow.session.execute(select(ApplicationRow.id, ApplicationRow.customer_id).where(
            ApplicationRow.tenant_id == who.tenant_id, ApplicationRow.id.in_(ids))).all()
    return {int(i): int(c) for i, c in rows}


def operating_cost_per_loan(uow: UnitOfWork, who: Principal) -> Decimal:
    """What the bank takes one micro-loan to cost to run, for projections: the per-loan figure of its
    unit-cost settings (单笔运营成本; the reported reference until it sets its own)."""
    from microlend.origination.unit_cost import cost_assumptions

    return cost_assumptions(uow, who).reference_per_loan
