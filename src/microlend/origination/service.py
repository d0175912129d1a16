"""Application use cases: submit and decide automatically, review with four eyes, offer, accept, disburse.

Automated steps (scoring, the policy, disbursement of an accepted offer) run under the platform's own
identity, so a borrower needs no permission beyond applying; every step is audited."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Permission, Principal, Role, system_principal
from microlend.core.money import round_half_up
from microlend.core.tenancy import business_date
from microlend.core.uow import UnitOfWork
from microlend.data import gateway
from microlend.decisioning import queries as decision_queries
from microlend.decisioning import service as decisions
from microlend.decisioning.domain import ModelResult
from microlend.decisioning.reasons import reason
from microlend.origination import business_data, exposure, inputs
from microlend.origination.applications import (
    OPEN_REVIEW,
    ApprovalAuthority,
    Review,
    Status,
    check_transition,
    offer_expiry,
    review_due,
)
from microlend.origination.events import ApplicationDecided
from microlend.origination.tables import ApplicationRow, LoanContractRow
from microlend.parties import queries as parties
from microlend.parties.consents import Evidence, check_scopes, own_session, record_in_session
from microlend.risk.federation.online import PartnerSubject
from microlend.risk.registry import ScoringRuntime
from microlend.servicing import queries as loan_queries
from microlend.servicing import service as servicing
from microlend.servicing.apr import apr
from microlend.servicing.schedules import RepaymentMethod, Schedule, build_schedule

#: The consent under which a joint model may ask its data partner about the applicant.
PARTNER_SCORING = "partner_scoring"
#: Loans up to this amount are disbursed on acceptance with no person; larger ones are released by staff.
AUTOMATIC_DISBURSEMENT_LIMIT = Decimal("200000")

_scoring = ScoringRuntime()
set_bureau = inputs.set_bureau
scoring_case = inputs.scoring_case


@dataclass(frozen=True)
class NewApplication:
    customer_id: int
    product_code: str
    amount: Decimal
    term_months: int
    purpose: str = ""
    consents: tuple[str, ...] = ()
    channel: str = "api"
    campaign_id: int | None = None
    locale: str = "zh_CN"  # of the consent texts a borrower agrees to when applying
    evidence: Evidence | None = None


@dataclass(frozen=True)
class Offer:
    amount: Decimal
    annual_rate: Decimal
    apr: Decimal
    expires_at: datetime
    term_months: int
    method: str
    penalty_rate: Decimal | None = None


@dataclass(frozen=True)
class Application:
    id: int
    customer_id: int
    customer_name: str
    product_code: str
    amount: Decimal
    term_months: int
    purpose: str
    channel: str
    status: str
    branch: str
    submitted_by: str
    submitted_at: datetime
    decision_id: int | None
    outcome: str | None
    limit: Decimal | None
    annual_rate: Decimal | None
    apr: Decimal | None
    reasons: list[dict[str, Any]]
    score: Decimal | None
    pd: Decimal | None
    model_version: str
    automatic: bool
    decided_at: datetime | None
    decision_ms: int | None
    review_due_at: datetime | None
    recommended_by: int | None
    recommendation: str | None
    recommended_amount: Decimal | None
    recommended_rate: Decimal | None
    review_notes: str
    field_visit: dict[str, Any]
    approvals: list[int]
    decided_by: str | None
    offer: Offer | None
    loan_id: int | None
    credit_line_id: int | None
    disbursed_at: datetime | None
    overdue_review: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _reasons(codes: list[str], locale: str, worded: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The decision's reasons as the bank's catalogue words them (`worded`, from the decision engine), or the
    built-in wording."""
    if worded is not None and [w["code"] for w in worded] == codes:
        return [{"code": w["code"], "message": w["message"], "tellable": w["tellable"]} for w in worded]
    return [{"code": c, "message": reason(c).message(locale), "tellable": reason(c).tellable} for c in codes]


def _worded(uow: UnitOfWork, rows: list[ApplicationRow], locale: str) -> dict[int, list[dict[str, Any]]]:
    """Decision id -> its reasons worded by the bank's catalogue, for the decided applications among `rows`."""
    ids = [r.decision_id for r in rows if r.decision_id is not None and r.decision_reasons]
    if not ids:
        return {}
    return decision_queries.reason_messages(uow, system_principal(rows[0].tenant_id), ids, locale)


def _view(row: ApplicationRow, customer_name: str, now: datetime, locale: str = "zh_CN",
          worded: dict[int, list[dict[str, Any]]] | None = None) -> Application:
    offer = None
    if row.offer_amount is not None and row.offer_rate is not None and row.offer_expires_at is not None:
        offer = Offer(row.offer_amount, row.offer_rate, row.offer_apr or Decimal(0), row.offer_expires_at,
                      row.term_months, "", row.offer_penalty_rate)
    return Application(
        id=row.id, customer_id=row.customer_id, customer_name=customer_name, product_code=row.product_code,
        amount=row.amount, term_months=row.term_months, purpose=row.purpose, channel=row.channel,
        status=row.status, branch=row.branch, submitted_by=row.submitted_by, submitted_at=row.submitted_at,
        decision_id=row.decision_id, outcome=row.decision_outcome, limit=row.decision_limit,
        annual_rate=row.decision_rate, apr=row.offer_apr, reasons=_reasons(list(row.decision_reasons or []), locale,
                                                                     (worded or {}).get(row.decision_id or 0)),
        score=row.score, pd=row.pd, model_version=row.model_version, automatic=row.automatic,
        decided_at=row.decided_at, decision_ms=row.decision_ms, review_due_at=row.review_due_at,
        recommended_by=row.recommended_by, recommendation=row.recommendation,
        recommended_amount=row.recommended_amount, recommended_rate=row.recommended_rate,
        review_notes=row.review_notes, field_visit=dict(row.field_visit or {}), approvals=list(row.approvals or []),
        decided_by=row.decided_by, offer=offer, loan_id=row.loan_id, credit_line_id=row.credit_line_id,
        disbursed_at=row.disbursed_at,
        overdue_review=row.status in OPEN_REVIEW and row.review_due_at is not None and row.review_due_at < now,
    )


def _current(uow: UnitOfWork, row: ApplicationRow, locale: str = "zh_CN") -> Application:
    """The application as it stands now in this transaction, with its customer's name."""
    name = parties.customer_names(uow, system_principal(row.tenant_id), [row.customer_id]).get(row.customer_id, "")
    return _view(row, name, utcnow(), locale, _worded(uow, [row], locale))


def _decided(row: ApplicationRow, at: datetime | None = None) -> ApplicationDecided:
    return ApplicationDecided(row.tenant_id, row.id, row.customer_id, str(row.status), bool(row.automatic),
                              row.campaign_id, at or row.decided_at or utcnow(), row.offer_amount)


def _is_borrower(who: Principal) -> bool:
    return who.has_role(Role.BORROWER) and not who.has_role(Role.ADMIN, Role.CREDIT_OFFICER, Role.SYSTEM)


def _application(s: Session, who: Principal, application_id: int, *, lock: bool = False) -> ApplicationRow:
    q = select(ApplicationRow).where(ApplicationRow.id == application_id, ApplicationRow.tenant_id == who.tenant_id)
    if lock:
        q = q.with_for_update()
    row = s.execute(q).scalar_one_or_none()
    if row is None or (_is_borrower(who) and who.customer_id != row.customer_id):
        raise NotFound(f"application {application_id} not found")
    return row


def _audit_view(row: ApplicationRow) -> dict[str, Any]:
    return {"status": row.status, "amount": str(row.amount), "term_months": row.term_months,
            "product_code": row.product_code, "offer_amount": str(row.offer_amount) if row.offer_amount else None,
            "offer_rate": str(row.offer_rate) if row.offer_rate else None, "loan_id": row.loan_id}


def _schedule(product: servicing.ProductView, amount: Decimal, rate: Decimal, term: int, start: date) -> Schedule:
    fee = round_half_up(amount * product.upfront_fee_rate, product.currency)
    return build_schedule(product.method, amount, rate, term, start, upfront_fee=fee, fee_mode=product.fee_mode,
                          currency=product.currency, repayment_day=product.repayment_day)


def offer_apr(product: servicing.ProductView, amount: Decimal, rate: Decimal, term: int, start: date) -> Decimal:
    """APR (年化利率, IRR of the borrower's real cash flows) to disclose with an offer."""
    if product.method == RepaymentMethod.REVOLVING:
        return rate  # simple daily interest on what is drawn, no fee: the APR is the rate itself
    return apr(_schedule(product, amount, rate, term, start))


def penalty_rate(product: servicing.ProductView, rate: Decimal) -> Decimal:
    """罚息利率: the annual rate on overdue amounts, the contract rate times the product's multiplier."""
    return rate * product.penalty_multiplier


def _product(uow: UnitOfWork, code: str, tenant_id: int) -> servicing.ProductView:
    for p in servicing.list_products(uow, system_principal(tenant_id)):
        if p.code == code:
            return p
    raise ValidationError(f"product_code: no product '{code}' in this bank's catalogue", field="product_code")


def _open_offer(uow: UnitOfWork, row: ApplicationRow, product: servicing.ProductView, amount: Decimal,
                rate: Decimal, now: datetime, on: date, authority: ApprovalAuthority) -> None:
    """The offer, never priced above the bank's rate cap (rate, penalty rate and APR with fees)."""
    rate = loan_queries.capped_rate(uow, system_principal(row.tenant_id), product.code, amount, rate,
                                    row.term_months)
    row.offer_amount = amount
    row.offer_rate = rate
    row.offer_apr = offer_apr(product, amount, rate, row.term_months, on)
    row.offer_penalty_rate = penalty_rate(product, rate)
    row.offer_expires_at = offer_expiry(now, authority)


def _consents(uow: UnitOfWork, who: Principal, customer_id: int, cmd: NewApplication,
              application_id: int) -> set[str]:
    """The consents the decision may use: those on record and not revoked. A borrower applying in their own
    session gives the ones they tick; staff cannot give them for the borrower, only check they are given."""
    if cmd.consents and own_session(who, customer_id):
        record_in_session(uow, who, customer_id, cmd.consents, locale=cmd.locale,
                          evidence=cmd.evidence or Evidence(), application_id=application_id)
    given = parties.consented_scopes(uow, who, customer_id)
    missing = sorted(set(cmd.consents) - given)
    if missing:
        raise PermissionDenied(f"consents: the borrower has not given '{missing[0]}'; the borrower gives it in "
                               "their own session or with a one-time code texted to their registered mobile",
                               field="consents")
    return given


def _partner_subject(uow: UnitOfWork, system: Principal, customer_id: int, consents: set[str]) -> PartnerSubject:
    """What a joint model may ask its data partner about: the applicant's ID number (the partner receives only
    its keyed hash) when the applicant consented to scoring with a data partner; otherwise nothing."""
    if PARTNER_SCORING not in consents:
        return PartnerSubject(consent=False)
    return PartnerSubject(consent=True, id_number=parties.query_subject(uow, system, customer_id)[0])


def submit(uow: UnitOfWork, who: Principal, cmd: NewApplication,
           authority: ApprovalAuthority | None = None) -> Application:
    """Submit an application and decide it at once: approve (an offer), decline (with reasons) or refer."""
    who.require(Permission.APPLY)
    authority = authority or ApprovalAuthority()
    check_scopes(cmd.consents)
    if cmd.amount <= 0:
        raise ValidationError("amount: must be positive", field="amount")
    system = system_principal(who.tenant_id, "decision-engine")
    started, cpu_started = time.perf_counter(), time.thread_time()
    with uow:
        s = uow.session
        customer = parties.customer(uow, who, cmd.customer_id)
        product = _product(uow, cmd.product_code, who.tenant_id)
        product.to_product().check_offer(cmd.amount, cmd.term_months, product.annual_rate)
        on = business_date(s, who.tenant_id)
        # the external sources first (in parallel, under the consents on record or given in this session), so
        # the obligor group is not held while providers answer
        asked = parties.consented_scopes(uow, who, customer.id) | (
            set(cmd.consents) if own_session(who, customer.id) else set())
        data = business_data.gather(uow, system, customer.id, asked, purpose="credit application", on=on)
        # reserve the obligor group's headroom: a second application of the group waits until this one is decided
        exposure.lock_borrowers(s, who.tenant_id, parties.obligor_group(uow, who, customer.id))
        now = utcnow()
        row = ApplicationRow(
            tenant_id=who.tenant_id, customer_id=customer.id, product_code=cmd.product_code, amount=cmd.amount,
            term_months=cmd.term_months, purpose=cmd.purpose.strip()[:200], channel=cmd.channel,
            campaign_id=cmd.campaign_id, status=Status.SUBMITTED, branch=customer.branch, submitted_by=who.username,
            submitted_at=now, decision_reasons=[], field_visit={}, approvals=[], review_notes="",
        )
        s.add(row)
        s.flush()
        consents = _consents(uow, who, customer.id, cmd, row.id)
        gateway.link_calls(uow, system, data.call_ids, row.id)
        audit.record(s, who, "application.submit", "application", row.id, after=_audit_view(row))

        scored = _scoring.score(uow, system, {**scoring_case(customer), **data.scoring_case()},
                                subject_type="application", subject_id=row.id,
                                partner_subject=_partner_subject(uow, system, customer.id, consents))
        champion = scored.champion
        model = ModelResult(model_version=champion.model_label, score=Decimal(f"{champion.score:.2f}"),
                            pd=Decimal(f"{champion.pd:.6f}"), reason_codes=tuple(champion.reason_codes))
        challenger = None
        if scored.challenger is not None:
            c = scored.challenger
            challenger = ModelResult(model_version=c.model_label, score=Decimal(f"{c.score:.2f}"),
                                     pd=Decimal(f"{c.pd:.6f}"), reason_codes=tuple(c.reason_codes))
        seen = inputs.decision_input(uow, who, customer, cmd, row.id, on, consents, model,
                                     product.min_amount, data=data)
        decision = decisions.decide(uow, system, seen, challenger_model=challenger,
                                    application_ref=f"application:{row.id}", model_provenance=scored.provenance())
        row.decision_id = decision.id
        row.decision_outcome = decision.outcome
        row.decision_limit = decision.limit
        row.decision_rate = decision.annual_rate
        row.decision_reasons = list(decision.reasons)
        row.score, row.pd, row.model_version = model.score, model.pd, model.model_version
        row.decided_at = utcnow()
        if decision.outcome == "approve" and decision.limit and decision.annual_rate is not None:
            check_transition(Status.SUBMITTED, Status.APPROVED, "approve")
            row.status, row.automatic, row.decided_by = Status.APPROVED, True, system.username
            _open_offer(uow, row, product, min(cmd.amount, decision.limit), decision.annual_rate, now, on, authority)
        elif decision.outcome == "decline":
            row.status, row.automatic, row.decided_by = Status.DECLINED, True, system.username
        else:
            row.status = Status.REFERRED
            row.review_due_at = review_due(now, authority)
        row.decision_ms = round((time.perf_counter() - started) * 1000)
        row.decision_cpu_ms = round((time.thread_time() - cpu_started) * 1000)
        uow.publish(_decided(row))
        audit.record(s, system, f"application.{row.status}", "application", row.id, after=_audit_view(row),
                     reason=",".join(row.decision_reasons))
        view = _view(row, customer.name, now, worded=_worded(uow, [row], "zh_CN"))
        uow.commit()
    return view


def get(uow: UnitOfWork, who: Principal, application_id: int, locale: str = "zh_CN") -> Application:
    if not _is_borrower(who):
        who.require(Permission.VIEW_APPLICATIONS)
    with uow:
        return _current(uow, _application(uow.session, who, application_id), locale)


@dataclass(frozen=True)
class ApplicationPage:
    items: list[Application]
    total: int


def list_applications(
    uow: UnitOfWork, who: Principal, *, status: list[str] | None = None, branch: str | None = None,
    customer_id: int | None = None, page: int = 1, page_size: int = 50, locale: str = "zh_CN",
    with_unbranched: bool = False,
) -> ApplicationPage:
    """A queue or a list: filter by status, branch or customer; referred ones oldest (most urgent) first.
    `with_unbranched` adds, to a branch's list, the applications of no branch (a self-registered borrower's):
    they belong to every branch's queue until someone takes them."""
    if not _is_borrower(who):
        who.require(Permission.VIEW_APPLICATIONS)
    if not 1 <= page_size <= 200:
        raise ValidationError("page_size: must be between 1 and 200", field="page_size")
    known = {s.value for s in Status}
    for st in status or []:
        if st not in known:
            raise ValidationError(f"status: unknown status '{st}'", field="status")
    with uow:
        cond = [ApplicationRow.tenant_id == who.tenant_id]
        if _is_borrower(who):
            cond.append(ApplicationRow.customer_id == (who.customer_id or -1))
        if status:
            cond.append(ApplicationRow.status.in_(status))
        if branch:
            cond.append(or_(ApplicationRow.branch == branch, ApplicationRow.branch == "") if with_unbranched
                        else ApplicationRow.branch == branch)
        if customer_id is not None:
            cond.append(ApplicationRow.customer_id == customer_id)
        total = uow.session.execute(select(func.count()).select_from(ApplicationRow).where(*cond)).scalar_one()
        order = (ApplicationRow.review_due_at.asc(), ApplicationRow.id.asc()) if status and set(status) <= {
            s.value for s in OPEN_REVIEW} else (ApplicationRow.id.desc(),)
        rows = uow.session.execute(
            select(ApplicationRow).where(*cond).order_by(*order).offset((page - 1) * page_size).limit(page_size)
        ).scalars().all()
        names = parties.customer_names(uow, who, [r.customer_id for r in rows])
        now = utcnow()
        worded = _worded(uow, list(rows), locale)
        return ApplicationPage([_view(r, names.get(r.customer_id, ""), now, locale, worded) for r in rows], total)


def _review(row: ApplicationRow) -> Review:
    return Review(recommended_by=row.recommended_by, recommendation=row.recommendation,
                  recommended_amount=row.recommended_amount, recommended_rate=row.recommended_rate,
                  notes=row.review_notes, approvals=list(row.approvals or []))


def recommend(uow: UnitOfWork, who: Principal, application_id: int, recommendation: str,
              amount: Decimal | None, annual_rate: Decimal | None, notes: str = "",
              field_visit: dict[str, Any] | None = None, authority: ApprovalAuthority | None = None) -> Application:
    """客户经理 an officer's recommendation on a referred application, with notes and field-visit findings."""
    who.require(Permission.RECOMMEND)
    authority = authority or ApprovalAuthority()
    with uow:
        s = uow.session
        row = _application(s, who, application_id, lock=True)
        before = _audit_view(row)
        check_transition(Status(row.status), Status.RECOMMENDED, "recommend")
        if recommendation == "approve" and amount is not None:
            product = _product(uow, row.product_code, who.tenant_id)
            product.to_product().check_offer(amount, row.term_months, annual_rate or product.annual_rate)
            _check_available(uow, who, row, amount)
        review = _review(row)
        review.recommend(who, authority, recommendation, amount, annual_rate, notes)
        row.status = Status.RECOMMENDED
        row.recommended_by, row.recommendation = review.recommended_by, review.recommendation
        row.recommended_amount, row.recommended_rate = review.recommended_amount, review.recommended_rate
        row.review_notes, row.approvals = notes[:2000], []
        row.field_visit = dict(field_visit or {})
        row.version += 1
        audit.record(s, who, "application.recommend", "application", row.id, before=before,
                     after={**_audit_view(row), "recommendation": recommendation, "notes": notes[:200]})
        view = _current(uow, row)
        uow.commit()
    return view


def _check_available(uow: UnitOfWork, who: Principal, row: ApplicationRow, amount: Decimal) -> None:
    """No person approves more than the obligor group's exposure cap leaves available (the group's rows are
    locked until the approval commits, as for an automatic decision)."""
    exposure.lock_borrowers(uow.session, who.tenant_id, parties.obligor_group(uow, who, row.customer_id))
    group = exposure.group_exposure(uow, system_principal(who.tenant_id), row.customer_id,
                                    exclude_application=row.id)
    if group.available is not None and amount > group.available:
        raise exposure.AboveAvailable(amount, group)


def approve(uow: UnitOfWork, who: Principal, application_id: int,
            authority: ApprovalAuthority | None = None) -> Application:
    """审批 an approval; four eyes, and a second approver above the single-approval authority."""
    who.require(Permission.APPROVE_CREDIT)
    authority = authority or ApprovalAuthority()
    with uow:
        s = uow.session
        row = _application(s, who, application_id, lock=True)
        before = _audit_view(row)
        if row.status != Status.RECOMMENDED:
            raise Conflict(f"cannot approve: the application is {row.status}")
        review = _review(row)
        complete = review.approve(who, authority)
        row.approvals = list(review.approvals)
        if complete:
            assert review.recommended_amount is not None and review.recommended_rate is not None
            _check_available(uow, who, row, review.recommended_amount)
            product = _product(uow, row.product_code, who.tenant_id)
            now, on = utcnow(), business_date(s, who.tenant_id)
            row.status, row.decided_by = Status.APPROVED, who.username
            _open_offer(uow, row, product, review.recommended_amount, review.recommended_rate, now, on, authority)
            uow.publish(_decided(row, now))
        row.version += 1
        audit.record(s, who, "application.approve", "application", row.id, before=before,
                     after={**_audit_view(row), "approvals": row.approvals, "complete": complete})
        view = _current(uow, row)
        uow.commit()
    return view


def decline(uow: UnitOfWork, who: Principal, application_id: int, notes: str = "",
            authority: ApprovalAuthority | None = None) -> Application:
    who.require(Permission.APPROVE_CREDIT)
    authority = authority or ApprovalAuthority()
    with uow:
        s = uow.session
        row = _application(s, who, application_id, lock=True)
        before = _audit_view(row)
        if row.status != Status.RECOMMENDED:
            raise Conflict(f"cannot decline: the application is {row.status}")
        _review(row).decline(who, authority)
        row.status, row.decided_by = Status.DECLINED, who.username
        row.review_notes = (row.review_notes + "\n" + notes).strip()[:2000]
        uow.publish(_decided(row, utcnow()))
        row.version += 1
        audit.record(s, who, "application.decline", "application", row.id, before=before, after=_audit_view(row),
                     reason=notes[:200])
        view = _current(uow, row)
        uow.commit()
    return view


def withdraw(uow: UnitOfWork, who: Principal, application_id: int) -> Application:
    who.require(Permission.APPLY)
    with uow:
        s = uow.session
        row = _application(s, who, application_id, lock=True)
        before = _audit_view(row)
        check_transition(Status(row.status), Status.WITHDRAWN, "withdraw")
        row.status = Status.WITHDRAWN
        row.version += 1
        audit.record(s, who, "application.withdraw", "application", row.id, before=before, after=_audit_view(row))
        view = _current(uow, row)
        uow.commit()
    return view


def _release_funds(uow: UnitOfWork, row: ApplicationRow, product: servicing.ProductView) -> None:
    """Open the credit line or disburse the loan through servicing (one key per application: never twice)."""
    system = system_principal(row.tenant_id, "origination")
    assert row.offer_amount is not None and row.offer_rate is not None
    signed = uow.session.execute(select(LoanContractRow.id).where(
        LoanContractRow.tenant_id == row.tenant_id, LoanContractRow.application_id == row.id)).first()
    if signed is None:
        raise Conflict("cannot pay out: the borrower has not signed the loan contract")
    if product.method == RepaymentMethod.REVOLVING:
        line = servicing.open_credit_line(uow, system, row.product_code, row.offer_amount,
                                          customer_id=row.customer_id, annual_rate=row.offer_rate,
                                          months=row.term_months)
        row.credit_line_id, row.status = line.id, Status.CONTRACTED
        return
    loan = servicing.disburse(uow, system, servicing.Disbursement(
        product_code=row.product_code, principal=row.offer_amount, term_months=row.term_months,
        annual_rate=row.offer_rate, customer_id=row.customer_id, application_id=row.id,
        idempotency_key=f"application-{row.id}"))
    row.loan_id, row.status, row.disbursed_at = loan.id, Status.DISBURSED, utcnow()


def disburse(uow: UnitOfWork, who: Principal, application_id: int) -> Application:
    """Staff release the funds of an accepted offer above the automatic authority."""
    who.require(Permission.DISBURSE)
    with uow:
        s = uow.session
        row = _application(s, who, application_id, lock=True)
        before = _audit_view(row)
        if row.status != Status.ACCEPTED:
            raise Conflict(f"cannot disburse: the application is {row.status}; the borrower must accept an "
                           "approved offer first")
        _release_funds(uow, row, _product(uow, row.product_code, who.tenant_id))
        row.version += 1
        audit.record(s, who, "application.disburse", "application", row.id, before=before, after=_audit_view(row))
        view = _current(uow, row)
        uow.commit()
    return view


def schedule_preview(uow: UnitOfWork, who: Principal, application_id: int) -> Schedule | None:
    """The repayment schedule of the open offer, for the borrower to see before accepting."""
    app = get(uow, who, application_id)
    if app.offer is None:
        return None
    with uow:
        product = _product(uow, app.product_code, who.tenant_id)
        on = business_date(uow.session, who.tenant_id)
    if product.method == RepaymentMethod.REVOLVING:
        return None
    return _schedule(product, app.offer.amount, app.offer.annual_rate, app.term_months, on)


def ensure_staff(who: Principal) -> None:
    if _is_borrower(who):
        raise PermissionDenied("this is for bank staff")
