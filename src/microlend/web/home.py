"""The home page (首页) each member of staff signs in onto: cards of their own work, one per part of their roles
(an officer's queue, visits and overdue customers; an approver's waiting approvals; the risk team's models and
monitoring alerts; campaigns; today's collection cases; recent activity; jobs and their exceptions; the bank at
a glance). Every card reads its figure through the same service function as the page it links to, so the two
never disagree, and is shown only to who may open that page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from microlend.api.deps import UnitOfWorkDep
from microlend.core import audit, jobs
from microlend.core.errors import DomainError
from microlend.core.identity import Permission, Principal, Role
from microlend.core.uow import UnitOfWork
from microlend.marketing import service as marketing
from microlend.origination import assist
from microlend.origination import early_warning as ew
from microlend.origination import service as applications
from microlend.parties import queries as parties
from microlend.risk import monitoring_runs, registry
from microlend.servicing.service import collecting
from microlend.web import labels
from microlend.web.operations import KIND_LABELS
from microlend.web.pages import current_principal, login_redirect, page
from microlend.web.templates import request_locale

router = APIRouter(include_in_schema=False)

P = Permission
#: Items a card lists; its figure counts them all.
SHOWN = 5
HOME = "/home"


#: The words of the codes a card's badge shows (English msgids); a code not here (a bucket, M1) is data.
BADGES = {
    "referred": "Referred", "recommended": "Recommended", "accepted": "Accepted",
    "draft": "Draft", "validated": "Validated", "approved": "Approved", "champion": "Champion",
    "challenger": "Challenger", "retired": "Retired", "launched": "Launched", "running": "Running",
    "completed": "Completed", "closed": "Closed", "failed": "Failed", "succeeded": "Succeeded",
    "act": "Act", "watch": "Watch", "stable": "Stable", "high": "High", "medium": "Medium", "low": "Low",
}


@dataclass(frozen=True)
class Item:
    """One line of a card: what, where it leads (None: no page to open), a short detail, a badge (a code of
    `BADGES`, shown in the reader's language, or data as it is) and a moment or day (bank's time zone)."""

    title: str
    href: str | None = None
    detail: str = ""
    badge: str = ""
    tone: str = ""
    when: object = None
    amount: Decimal | None = None

    @property
    def badge_msgid(self) -> str | None:
        return BADGES.get(self.badge)


@dataclass(frozen=True)
class Figure:
    label: str  # msgid
    value: object  # int, Decimal rate (percent) or a day; None shows "—"
    kind: str = "number"  # number | percent | day


@dataclass
class Card:
    """A piece of the user's work: its title, the page with all of it, a figure or two and the first items."""

    key: str
    title: str  # msgid
    href: str
    count: int | None = None
    figures: list[Figure] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    empty: str = "Nothing waiting."  # msgid
    more: str = ""  # msgid of a second link's label
    more_href: str = ""


def _application_items(views: list[applications.Application]) -> list[Item]:
    return [Item(v.customer_name or f"#{v.id}", f"/applications/{v.id}", f"#{v.id}", badge=v.status,
                 tone="warn", when=v.submitted_at, amount=v.amount) for v in views[:SHOWN]]


def officer_queue(uow: UnitOfWork, who: Principal, locale: str) -> Card:
    """The officer's review queue: referred and recommended applications of their branch and of no branch."""
    branch = assist.staff_branch(uow, who)
    result = applications.list_applications(uow, who, status=["referred", "recommended"], branch=branch or None,
                                            with_unbranched=True, page_size=SHOWN, locale=locale)
    return Card("queue", "My queue", "/workbench/queue", result.total, items=_application_items(result.items))


def officer_visits(uow: UnitOfWork, who: Principal, now: datetime) -> Card:
    """The officer's open visits: early-warning visits assigned to them, then campaign visit tasks."""
    visits = ew.list_visits(uow, who, status="open", mine=True)
    tasks = marketing.visit_cards(uow, who, now=now) if who.can(P.VIEW_CAMPAIGNS) else []
    items = [Item(v.customer_name or f"#{v.customer_id}", "/early-warning/visits", v.reason, when=v.due_on)
             for v in visits[:SHOWN]]
    card = Card("visits", "My visits", "/early-warning/visits", len(visits) + len(tasks), items=items,
                empty="No visits to make.")
    if tasks:
        card.more, card.more_href = "Visit tasks from campaigns", "/tasks/visits"
        card.figures.append(Figure("Visit tasks from campaigns", len(tasks)))
    return card


def overdue_customers(uow: UnitOfWork, who: Principal) -> Card:
    """The branch's overdue loans, most days past due first; the counts are the portfolio page's."""
    branch = assist.staff_branch(uow, who)
    active, overdue = assist.portfolio_figures(uow, who, branch)
    lines = [x for x in assist.branch_portfolio(uow, who, branch, limit=SHOWN) if x.days_past_due > 0]
    items = [Item(x.customer_name or f"#{x.id}", f"/loans/{x.id}", f"#{x.id}", badge=x.bucket, tone="bad")
             for x in lines]
    return Card("overdue", "My overdue customers", "/workbench/portfolio", overdue, items=items,
                figures=[Figure("Active loans", active)], empty="No overdue loans.")


def waiting_approvals(uow: UnitOfWork, who: Principal, locale: str) -> Card:
    waiting = applications.list_applications(uow, who, status=["recommended"], page_size=SHOWN, locale=locale)
    release = applications.list_applications(uow, who, status=["accepted"], page_size=1, locale=locale)
    return Card("approvals", "Waiting approvals", "/workbench/approvals", waiting.total,
                items=_application_items(waiting.items), figures=[Figure("Accepted, waiting for funds", release.total)])


def models(uow: UnitOfWork, who: Principal) -> Card:
    versions = registry.list_model_versions(uow, who)
    newest = sorted(versions, key=lambda v: v.id, reverse=True)
    items = [Item(f"{v.name} v{v.version}", f"/analyst/models/{v.id}", badge=v.status) for v in newest[:SHOWN]]
    figures = [Figure("Champions", sum(1 for v in versions if v.status == "champion")),
               Figure("Waiting for validation or approval",
                      sum(1 for v in versions if v.status in ("draft", "validated")))]
    return Card("models", "Models", "/analyst/models", len(versions), figures=figures, items=items,
                empty="No models yet.")


def monitoring_alerts(uow: UnitOfWork, who: Principal) -> Card:
    """The latest monitoring run of each model that raised alerts."""
    latest: dict[int, monitoring_runs.MonitoringRun] = {}
    for run in monitoring_runs.monitoring_runs(uow, who, limit=100):
        latest.setdefault(run.model_version_id, run)
    alerting = [r for r in latest.values() if r.alerts]
    items = [Item(r.model_label, f"/analyst/models/{r.model_version_id}/monitoring", when=r.as_of,
                  badge=r.status, tone="bad" if r.status == "act" else "warn") for r in alerting[:SHOWN]]
    return Card("monitoring", "Monitoring alerts", "/analyst/models", sum(len(r.alerts) for r in alerting),
                items=items, empty="No monitoring alerts.")


def early_warning(uow: UnitOfWork, who: Principal) -> Card:
    counts = ew.count_open(uow, who)
    alerts = ew.list_alerts(uow, who, limit=SHOWN)
    items = [Item(a.customer_name or f"#{a.subject_id}", "/early-warning", badge=a.severity, when=a.raised_on,
                  tone="bad" if a.severity == "high" else "warn") for a in alerts]
    return Card("early-warning", "Early-warning alerts", "/early-warning", sum(counts.values()), items=items,
                empty="No open alerts.")


def campaigns(uow: UnitOfWork, who: Principal) -> Card:
    items_ = marketing.list_campaigns(uow, who)
    running = [c for c in items_ if c.status not in ("closed", "draft")]
    newest = sorted(items_, key=lambda c: c.id, reverse=True)
    items = [Item(c.name, f"/marketing/campaigns/{c.id}", badge=c.status, when=c.launched_at)
             for c in newest[:SHOWN]]
    return Card("campaigns", "Campaigns", "/marketing/campaigns", len(items_), items=items,
                figures=[Figure("Running", len(running))], empty="No campaigns yet.")


def todays_cases(uow: UnitOfWork, who: Principal) -> Card:
    """The collector's open cases, then the ones nobody has taken (the collections queue's two lists)."""
    mine = collecting.list_cases(uow, who, assignee=who.username, limit=100)
    unassigned = collecting.list_cases(uow, who, unassigned=True, limit=100)
    cases = [*mine, *unassigned]
    names = parties.customer_names(uow, who, [c.customer_id for c in cases[:SHOWN] if c.customer_id is not None])
    items = [Item(names.get(c.customer_id or 0, "") or f"#{c.loan_id}", f"/collections/cases/{c.id}",
                  f"#{c.id}", badge=c.bucket, tone="bad") for c in cases[:SHOWN]]
    return Card("cases", "Today's cases", "/collections", len(cases), items=items,
                figures=[Figure("Mine", len(mine)), Figure("Not taken yet", len(unassigned))], empty="No open cases.")


def recent_activity(uow: UnitOfWork, who: Principal, locale: str) -> Card:
    """The newest audit records, their action codes and object kinds as words in the reader's language."""
    with uow:
        rows = audit.read(uow.session, who, limit=SHOWN)
    items = [Item(labels.label(labels.AUDIT_ACTIONS, r.action, locale), None,
                  f"{r.actor} · {labels.label(labels.OBJECT_TYPES, r.object_type, locale)} {r.object_id}", when=r.at)
             for r in rows]
    return Card("activity", "Recent activity", "/audit", None, items=items, empty="No activity yet.")


def jobs_status(uow: UnitOfWork, who: Principal) -> Card:
    """The calendar's jobs: the next close of business, and the failures (exceptions) that need a look."""
    calendar = jobs.list_jobs(uow, who)
    failed = jobs.list_runs(uow, who, status=jobs.FAILED, limit=SHOWN)
    cob = next((j for j in calendar if j.kind == "close_of_business"), None)
    items = [Item(KIND_LABELS.get(r.kind, r.kind), "/operations/jobs", when=r.business_date, badge=r.status,
                  tone="bad") for r in failed]
    figures = [Figure("Jobs failing now", sum(1 for j in calendar if j.failures))]
    if cob is not None:
        figures.insert(0, Figure("Next close of business", cob.next_business_date, "day"))
    return Card("jobs", "Jobs and exceptions", "/operations/jobs", len(failed), figures=figures, items=items,
                empty="No failed runs.")


def bank_at_a_glance(uow: UnitOfWork, who: Principal, now: datetime) -> Card:
    """The bank's figures: customers, active and overdue loans, applications in review, last 30 days' STP rate
    (of decided applications; the waiting ones apart) — the dashboard's own query, over every branch."""
    d = assist.branch_dashboard(uow, who, now, "")
    figures = [Figure("Customers", parties.customer_count(uow, who)),
               Figure("Active loans", d.active_loans), Figure("Overdue rate", d.overdue_rate, "percent"),
               Figure("In review", d.waiting), Figure("Straight-through rate", d.stp_rate, "percent")]
    return Card("bank", "The bank at a glance", "/workbench/dashboard?scope=all", d.submitted, figures=figures)


def _now() -> datetime:
    return datetime.now(UTC)


#: The cards in the order a page shows them: (permissions needed, all of them; what builds the card).
Builder = Callable[[UnitOfWork, Principal, str, datetime], Card]
CARDS: list[tuple[tuple[Permission, ...], Builder]] = [
    ((P.MANAGE_USERS, P.VIEW_APPLICATIONS, P.VIEW_LOANS), lambda u, w, loc, now: bank_at_a_glance(u, w, now)),
    ((P.RECOMMEND, P.VIEW_APPLICATIONS), lambda u, w, loc, now: officer_queue(u, w, loc)),
    ((P.APPROVE_CREDIT, P.VIEW_APPLICATIONS), lambda u, w, loc, now: waiting_approvals(u, w, loc)),
    ((P.RECOMMEND,), lambda u, w, loc, now: officer_visits(u, w, now)),
    ((P.RECOMMEND, P.VIEW_LOANS), lambda u, w, loc, now: overdue_customers(u, w)),
    ((P.COLLECT,), lambda u, w, loc, now: todays_cases(u, w)),
    ((P.EDIT_POLICIES,), lambda u, w, loc, now: early_warning(u, w)),
    ((P.VIEW_MODELS, P.TRAIN_MODELS), lambda u, w, loc, now: models(u, w)),
    ((P.VIEW_MODELS, P.VALIDATE_MODELS), lambda u, w, loc, now: models(u, w)),
    ((P.VIEW_MODELS, P.TRAIN_MODELS), lambda u, w, loc, now: monitoring_alerts(u, w)),
    ((P.MANAGE_CAMPAIGNS,), lambda u, w, loc, now: campaigns(u, w)),
    ((P.RUN_JOBS,), lambda u, w, loc, now: jobs_status(u, w)),
    ((P.VIEW_AUDIT,), lambda u, w, loc, now: recent_activity(u, w, loc)),
]


def cards_for(uow: UnitOfWork, who: Principal, locale: str, now: datetime) -> list[Card]:
    """The home page's cards for `who`: each one the roles allow, once, in the order of `CARDS`."""
    out: list[Card] = []
    for needed, build in CARDS:
        if not all(who.can(p) for p in needed):
            continue
        card = build(uow, who, locale, now)
        if all(c.key != card.key for c in out):
            out.append(card)
    return out


def _greeting(who: Principal) -> list[Role]:
    return sorted(who.roles, key=lambda r: list(Role).index(r))


@router.get(HOME, response_class=HTMLResponse)
def home(request: Request, uow: UnitOfWorkDep) -> Response:
    """首页 the signed-in member of staff's own work; a borrower goes to their own pages."""
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    if who.has_role(Role.BORROWER):
        return RedirectResponse("/b", status_code=303)
    try:
        cards = cards_for(uow, who, request_locale(request), _now())
    except DomainError as exc:
        return page(request, who, "error.html", status_code=exc.status_code, message=exc.message)
    from microlend.web.access import ROLE_LABELS

    return page(request, who, "home.html", cards=cards, roles=_greeting(who), role_labels=ROLE_LABELS,
                zero=Decimal(0))
