"""Read functions about applications and what became of them, for adapters and other modules: views,
never rows; every query is scoped to the caller's tenant."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from microlend.core import references
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.decisioning import queries as decisions
from microlend.decisioning.queries import LoanPerformance
from microlend.origination import exposure as exposures
from microlend.origination import inputs
from microlend.origination.applications import Status
from microlend.origination.tables import ApplicationRow
from microlend.parties import queries as parties
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
        with_loan = (ApplicationRow.tenant_id == who.tenant_id, ApplicationRow.decision_id.is_not(None),
                     ApplicationRow.loan_id.is_not(None))
        linked = uow.session.execute(select(ApplicationRow.decision_id, ApplicationRow.loan_id).where(*with_loan)).all()
        outcomes = loans.loan_outcomes(uow, who, select(ApplicationRow.loan_id).where(*with_loan))
        bad = {int(d): outcomes[int(loan)].bad for d, loan in linked
               if d is not None and loan is not None and int(loan) in outcomes}
        shadows = decisions.shadows_of(uow, who, select(ApplicationRow.decision_id).where(*with_loan))
        for shadow_id, acted_id in shadows.items():
            if acted_id in bad:
                bad[shadow_id] = bad[acted_id]
    return bad


def decision_performance(uow: UnitOfWork, who: Principal, on: date) -> dict[int, LoanPerformance]:
    """Decision id -> when its loan was paid out and the first day it went bad (as of `on`), for every decision
    whose application became a loan; a shadow decision shares its acted one's loan."""
    who.require(Permission.VIEW_DECISIONS)
    with uow:
        with_loan = (ApplicationRow.tenant_id == who.tenant_id, ApplicationRow.decision_id.is_not(None),
                     ApplicationRow.loan_id.is_not(None))
        linked = uow.session.execute(select(ApplicationRow.decision_id, ApplicationRow.loan_id).where(*with_loan)).all()
        facts = loans.loan_performance(uow, who, select(ApplicationRow.loan_id).where(*with_loan), on)
        found = {int(d): LoanPerformance(facts[int(loan)].disbursed_on, facts[int(loan)].bad_on)
                 for d, loan in linked if d is not None and loan is not None and int(loan) in facts}
        shadows = decisions.shadows_of(uow, who, select(ApplicationRow.decision_id).where(*with_loan))
        for shadow_id, acted_id in shadows.items():
            if acted_id in found:
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


@dataclass(frozen=True)
class CustomerCreditFacts:
    """What a live decision would see of one customer's record at this bank, computed for the whole base at once
    (see `preapproval_credit_facts`): the obligor group's exposure (授信敞口: principal outstanding, undrawn
    credit-line limits, open offers, applications in review), the group's own arrears, non-performing and
    written-off loans, the customer's applications in the last 30 days and offers still open; and, for the
    marketing customer view, the customer's own loans and applications with their dates."""

    outstanding: Decimal = Decimal(0)
    undrawn: Decimal = Decimal(0)
    offers: Decimal = Decimal(0)
    in_review: Decimal = Decimal(0)
    own_days_past_due: int = 0
    own_npl_loans: int = 0
    own_written_off: int = 0
    applications_30d: int = 0
    pending_offers: int = 0
    # the customer's own figures
    loans_count: int = 0
    active_loans: int = 0
    own_outstanding: Decimal = Decimal(0)
    days_past_due: int = 0
    max_days_past_due_ever: int = 0
    installments_due: int = 0
    paid_on_time: int = 0
    last_early_repayment: date | None = None
    last_disbursed: date | None = None
    last_closed: date | None = None
    applications_count: int = 0
    last_applied_at: datetime | None = None
    # the credit report, as the bank's bureau gives it to a decision (None: no credit-report consent)
    bureau_present: bool | None = None
    bureau_blacklisted: bool = False
    bureau_overdue_elsewhere: bool = False
    credit_history_months: int | None = None
    bureau_lenders_open: int | None = None
    bureau_inquiries_3m: int | None = None

    @property
    def exposure_total(self) -> Decimal:
        return self.outstanding + self.undrawn + self.offers + self.in_review


@dataclass(frozen=True)
class BankCreditFacts:
    """The bank's lending limits (as a live decision reads them), the customers whose credit-report consent
    stands, and each customer's credit facts (a customer with no loan, line or application is absent)."""

    borrower_exposure_cap: Decimal | None
    turnover_multiple: Decimal
    debt_to_income_ceiling: Decimal
    tax_loan_fraction: Decimal
    credit_report_consent: frozenset[int]
    customers: dict[int, CustomerCreditFacts]


def _report_fields(report: Any) -> dict[str, Any]:
    if report is None:
        return {}
    return {"bureau_present": bool(report.present), "bureau_blacklisted": bool(report.blacklisted),
            "bureau_overdue_elsewhere": bool(report.overdue_elsewhere),
            "credit_history_months": report.credit_history_months,
            "bureau_lenders_open": report.lenders_with_open_credit, "bureau_inquiries_3m": report.inquiries_3m}


def preapproval_credit_facts(uow: UnitOfWork, who: Principal, on: date, now: datetime) -> BankCreditFacts:
    """Every customer's credit facts as `decision_input` computes them for one application (exposure summed over
    the obligor group, arrears and non-performing loans over the group's last five years, applications in the 30
    days before `now`), in a few set-based queries over the whole base instead of one decision at a time."""
    settings = exposures.credit_settings(uow, who)
    since = on.replace(year=on.year - exposures.HISTORY_YEARS) if (on.month, on.day) != (2, 29) else on - timedelta(
        days=365 * exposures.HISTORY_YEARS)
    summaries = loans.loan_summaries(uow, who, on, since)
    undrawn = loans.undrawn_by_customer(uow, who)
    groups = parties.obligor_groups(uow, who)
    consent = parties.customers_with_consent(uow, who, "credit_report")
    offered = (Status.APPROVED.value, Status.ACCEPTED.value)
    in_review = (Status.SUBMITTED.value, Status.REFERRED.value, Status.RECOMMENDED.value)
    apps: dict[int, dict[str, Any]] = {}
    with uow:
        rows = uow.session.execute(select(
            ApplicationRow.customer_id, ApplicationRow.status, ApplicationRow.amount, ApplicationRow.recommended_amount,
            ApplicationRow.recommendation, ApplicationRow.offer_amount, ApplicationRow.offer_expires_at,
            ApplicationRow.submitted_at).where(ApplicationRow.tenant_id == who.tenant_id)).all()
    recent = now - timedelta(days=exposures.VELOCITY_DAYS)
    for customer, status, amount, recommended, recommendation, offer, expires, submitted in rows:
        a = apps.setdefault(int(customer), {"offers": Decimal(0), "review": Decimal(0), "n30": 0, "open": 0,
                                            "n": 0, "last": None})
        a["n"] += 1
        if submitted is not None:
            a["last"] = submitted if a["last"] is None or submitted > a["last"] else a["last"]
            a["n30"] += submitted >= recent
        if status in offered:
            if offer is not None and (status != Status.APPROVED.value or expires is None or expires >= now):
                a["offers"] += offer
            if status == Status.APPROVED.value and expires is not None and expires >= now:
                a["open"] += 1
        elif status in in_review:
            a["review"] += recommended if recommendation == "approve" and recommended is not None else amount
    reports: dict[int, Any] = {}
    if consent:
        for customer_id, kind, attributes in parties.customer_kinds_and_attributes(uow, who, sorted(consent)):
            reports[customer_id] = inputs.bureau_report(kind, attributes)
    ids = set(summaries) | set(undrawn) | set(apps) | set(groups) | set(reports)
    members: dict[int, list[int]] = {}
    for c in ids:
        members.setdefault(groups.get(c, c), []).append(c)
    zero = Decimal(0)
    out: dict[int, CustomerCreditFacts] = {}
    for c in ids:
        group = members[groups.get(c, c)]
        mine = summaries.get(c)
        app = apps.get(c, {})
        out[c] = CustomerCreditFacts(
            outstanding=sum((summaries[g].outstanding for g in group if g in summaries), zero),
            undrawn=sum((undrawn.get(g, zero) for g in group), zero),
            offers=sum((apps[g]["offers"] for g in group if g in apps), zero),
            in_review=sum((apps[g]["review"] for g in group if g in apps), zero),
            own_days_past_due=max((summaries[g].days_past_due for g in group if g in summaries), default=0),
            own_npl_loans=sum(summaries[g].non_performing for g in group if g in summaries),
            own_written_off=sum(summaries[g].written_off for g in group if g in summaries),
            applications_30d=int(app.get("n30", 0)), pending_offers=int(app.get("open", 0)),
            loans_count=mine.loans_count if mine else 0, active_loans=mine.active_loans if mine else 0,
            own_outstanding=mine.outstanding if mine else zero, days_past_due=mine.days_past_due if mine else 0,
            max_days_past_due_ever=mine.max_days_past_due_ever if mine else 0,
            installments_due=mine.installments_due if mine else 0, paid_on_time=mine.paid_on_time if mine else 0,
            last_early_repayment=mine.last_early_repayment if mine else None,
            last_disbursed=mine.last_disbursed if mine else None, last_closed=mine.last_closed if mine else None,
            applications_count=int(app.get("n", 0)), last_applied_at=app.get("last"),
            **_report_fields(reports.get(c)))
    return BankCreditFacts(settings.borrower_exposure_cap, settings.turnover_multiple,
                           settings.debt_to_income_ceiling, settings.tax_loan_fraction, frozenset(consent), out)


#: A loan is judged good once it has been on book this long without going bad (or was repaid), for monitoring.
OUTCOME_WINDOW_DAYS = 90


def monitoring_facts(uow: UnitOfWork, who: Principal, on: date) -> dict[int, tuple[dict[str, Any], bool | None]]:
    """Application id -> (the features its decision saw, whether its loan went bad as of `on`: True once bad,
    False once repaid or on book `OUTCOME_WINDOW_DAYS` days without going bad, None otherwise or without a loan),
    for every decided application of the caller's bank: what the worker's model monitoring measures."""
    who.require(Permission.VIEW_DECISIONS)
    with uow:
        apps = uow.session.execute(select(ApplicationRow.id, ApplicationRow.decision_id, ApplicationRow.loan_id).where(
            ApplicationRow.tenant_id == who.tenant_id, ApplicationRow.decision_id.is_not(None))).all()
        features = decisions.decision_features(uow, who, [int(d) for _, d, _ in apps if d is not None])
        loan_ids = [int(loan) for _, _, loan in apps if loan is not None]
        facts = loans.loan_performance(uow, who, loan_ids, on) if loan_ids else {}
        outcomes = loans.loan_outcomes(uow, who, loan_ids) if loan_ids else {}
    found: dict[int, tuple[dict[str, Any], bool | None]] = {}
    for app_id, decision_id, loan_id in apps:
        bad: bool | None = None
        if loan_id is not None and int(loan_id) in facts:
            fact, outcome = facts[int(loan_id)], outcomes.get(int(loan_id))
            if fact.bad_on is not None and fact.bad_on <= on:
                bad = True
            elif (on - fact.disbursed_on).days >= OUTCOME_WINDOW_DAYS or (outcome and outcome.status == "closed"):
                bad = False
        found[int(app_id)] = (features.get(int(decision_id), {}) if decision_id is not None else {}, bad)
    return found
