"""Credit policy pages (授信政策) of the risk analyst: versions with status and arm, a version as readable
tables, a new draft edited as JSON with live lint and a diff against the version in force, simulation on a
historical sample with charts, submit, publish by a second person, champion/challenger report; and the
decision lookup page with inputs, trace, reasons and replay."""

from __future__ import annotations

import html
import json
import math
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from microlend.api.deps import Id, UnitOfWorkDep
from microlend.core.clock import utcnow
from microlend.core.errors import DomainError, NotFound, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.decisioning import changes as changes_svc
from microlend.decisioning import policy_views
from microlend.decisioning import service as svc
from microlend.decisioning.challenger_report import OUTCOME_MONTHS, Comparison, challenger_report
from microlend.decisioning.diff import policy_diff
from microlend.decisioning.evidence import HISTORY_DAYS
from microlend.decisioning.golden import GoldenResult, run_golden_tests
from microlend.decisioning.lint import LintReport
from microlend.decisioning.policy import parse_policy, policy_name
from microlend.decisioning.reasons import reason
from microlend.decisioning.simulate import profit_chart
from microlend.decisioning.simulation_service import BANK_HISTORY, history_size, simulation
from microlend.decisioning.trace_view import plain_cell
from microlend.origination import queries as outcomes
from microlend.servicing import queries as servicing
from microlend.web import i18n
from microlend.web.pages import current_principal, login_redirect, page
from microlend.web.templates import request_locale

router = APIRouter(include_in_schema=False)

NAV: list[tuple[str, str, Permission]] = [
    ("/policies", "Credit policies", Permission.VIEW_POLICIES),
    ("/decisions", "Decisions", Permission.VIEW_DECISIONS),
]

STATUS_LABELS = {"draft": "Draft", "submitted": "Awaiting publication", "published": "Published",
                 "retired": "Retired"}
OUTCOME_LABELS = {"approve": "Credit approved", "decline": "Credit declined", "refer": "Referred to a person"}
SAMPLES = {"german_credit": "German credit (1,000)", "lending_club": "Lending Club (9,857)"}



def _who(request: Request, uow: UnitOfWork, permission: Permission) -> Principal | Response:
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    if not who.can(permission):
        return page(request, who, "error.html", status_code=403, message="forbidden")
    return who


def _error(request: Request, who: Principal, exc: DomainError) -> HTMLResponse:
    return page(request, who, "error.html", status_code=exc.status_code, message=exc.message)


# --- reading a policy ------------------------------------------------------------------------------------------


def ordered_nodes(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The graph's nodes in evaluation order (edges followed from the input), unreachable ones last."""
    nodes = [n for n in doc.get("nodes", []) if isinstance(n, dict)]
    by_id = {n.get("id"): n for n in nodes}
    successors: dict[Any, list[Any]] = {}
    incoming: dict[Any, int] = {n.get("id"): 0 for n in nodes}
    for e in doc.get("edges", []):
        if isinstance(e, dict) and e.get("sourceId") in by_id and e.get("targetId") in by_id:
            successors.setdefault(e["sourceId"], []).append(e["targetId"])
            incoming[e["targetId"]] += 1
    ready = [n.get("id") for n in nodes if incoming[n.get("id")] == 0]
    order: list[Any] = []
    while ready:
        nid = ready.pop(0)
        order.append(nid)
        for t in successors.get(nid, []):
            incoming[t] -= 1
            if incoming[t] == 0:
                ready.append(t)
    order += [n.get("id") for n in nodes if n.get("id") not in order]
    return [by_id[i] for i in order]


#: What a node is, in words (the engine's type names are not shown).
NODE_KINDS = {"decisionTableNode": "Decision table", "expressionNode": "Calculations", "switchNode": "Branching",
              "decisionNode": "Sub-decision", "inputNode": "Application", "outputNode": "Decision",
              "functionNode": "Code"}
HIT_POLICIES = {"first": "first matching row", "collect": "every matching row"}


def node_view(node: dict[str, Any]) -> dict[str, Any]:
    """What a page shows of a node, plainly: a decision table's columns and rows (strings without their
    quotes, any value as -), an expression's assignments, a sub-decision's version."""
    content = node.get("content") if isinstance(node.get("content"), dict) else {}
    assert isinstance(content, dict)
    hit = content.get("hitPolicy")
    view: dict[str, Any] = {"id": node.get("id"), "name": node.get("name") or node.get("id"),
                            "type": node.get("type"), "kind": NODE_KINDS.get(str(node.get("type")), "Step"),
                            "hit_policy": HIT_POLICIES.get(str(hit), hit) if hit else None}
    if node.get("type") == "decisionTableNode":
        inputs = [c for c in content.get("inputs", []) if isinstance(c, dict)]
        outputs = [c for c in content.get("outputs", []) if isinstance(c, dict)]
        view["inputs"] = [c.get("name") or c.get("field") for c in inputs]
        view["outputs"] = [c.get("name") or c.get("field") for c in outputs]
        view["rows"] = [
            {"inputs": [plain_cell(r.get(c.get("id"), "")) for c in inputs],
             "outputs": [plain_cell(r.get(c.get("id"), "")) for c in outputs],
             "description": r.get("_description", "")}
            for r in content.get("rules", []) if isinstance(r, dict)
        ]
    elif node.get("type") == "decisionNode":
        view["sub_decision"] = str(content.get("key", ""))
    elif node.get("type") == "expressionNode":
        view["expressions"] = [(x.get("key"), x.get("value")) for x in content.get("expressions", [])
                               if isinstance(x, dict)]
    return view


def _versions(uow: UnitOfWork, who: Principal) -> tuple[list[Any], svc.PolicySetup | None]:
    return policy_views.versions_newest_first(uow, who)


@router.get("/policies", response_class=HTMLResponse)
def policies(request: Request, uow: UnitOfWorkDep) -> Response:
    who = _who(request, uow, Permission.VIEW_POLICIES)
    if not isinstance(who, Principal):
        return who
    versions, setup = _versions(uow, who)
    return page(request, who, "policies/list.html", versions=versions, setup=setup, status_labels=STATUS_LABELS,
                can_edit=who.can(Permission.EDIT_POLICIES))


#: golden test outcomes per stored version and the sub-decisions it loads (both content-addressed, so never
#: changed): a version's tests run on its first view in a process, not on every view
_GOLDEN: dict[tuple[str, tuple[str, ...]], tuple[list[GoldenResult], str]] = {}
_GOLDEN_KEPT = 256


def _golden_tests(content_hash: str, doc: dict[str, Any], subdecisions: dict[str, dict[str, Any]]
                  ) -> tuple[list[GoldenResult], str]:
    """(results, or the message of a document whose tests cannot run) of a stored version's golden tests."""
    key = (content_hash, tuple(sorted(subdecisions)))
    if key not in _GOLDEN:
        try:
            outcome: tuple[list[GoldenResult], str] = (run_golden_tests(doc, subdecisions), "")
        except DomainError as exc:
            outcome = ([], exc.message)
        if len(_GOLDEN) >= _GOLDEN_KEPT:
            _GOLDEN.pop(next(iter(_GOLDEN)))
        _GOLDEN[key] = outcome
    results, error = _GOLDEN[key]
    return list(results), error


def _version_page(request: Request, uow: UnitOfWork, who: Principal, content_hash: str, *,
                  message: str = "", error: str = "", status_code: int = 200) -> HTMLResponse:
    version = svc.version_of(uow, who, content_hash)
    doc = svc.policy_content(uow, who, content_hash)
    setup = policy_views.setup_or_none(uow, who)
    public = policy_views.version_view(version, setup)
    golden, golden_error = _golden_tests(content_hash, doc, svc.subdecisions_of(uow, who, doc))
    changes: list[str] | None = None
    if setup is not None and setup.champion_hash != content_hash:
        changes = policy_diff(svc.policy_content(uow, who, setup.champion_hash), doc)
    can_publish = (version.status == "submitted" and who.can(Permission.PUBLISH_POLICIES))
    submission = svc.submission_of(uow, who, content_hash)
    requests = [r for r in changes_svc.list_changes(uow, who) if r.content_hash == content_hash]
    can_request = who.can(Permission.EDIT_POLICIES) and not requests
    sim_rows = _outcome_rows(submission.simulation) if submission else []
    money = submission.simulation.get("money") if submission else None
    money_chart = profit_chart(money) if money else ""
    return page(request, who, "policies/version.html", status_code=status_code, version=public, doc=doc,
                submission=submission, sim_rows=sim_rows, requests=requests, money_chart=money_chart,
                can_confirm=who.can(Permission.PUBLISH_POLICIES),
                can_promote=can_request and public.arm in ("challenger", "shadow"),
                can_roll_back=can_request and version.status == "retired" and version.published_at is not None,
                status_labels=STATUS_LABELS,
                description=(doc.get("metadata") or {}).get("description", ""),
                nodes=[node_view(n) for n in ordered_nodes(doc)], golden=golden, golden_error=golden_error,
                changes=changes, can_publish=can_publish, can_edit=who.can(Permission.EDIT_POLICIES),
                is_author=version.author == who.username, message=message, error=translate(request, error),
                setup=setup)


def _outcome_rows(sim: dict[str, Any]) -> list[tuple[str, int | None, int]]:
    """(outcome, under the champion or None, under this version) from a stored simulation."""
    candidate = (sim.get("candidate") or {}).get("outcomes") or {}
    champion = (sim.get("champion") or {}).get("outcomes")
    names = sorted(set(candidate) | set(champion or {}))
    return [(o, None if champion is None else int(champion.get(o, 0)), int(candidate.get(o, 0))) for o in names]


def translate(request: Request, message: str) -> str:
    """A service message in the reader's language when the catalogue has it (the four-eyes refusal)."""
    return str(i18n.translations(request_locale(request)).gettext(message)) if message else ""


CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 360, 180, 30


def survival_chart(comparison: Comparison) -> dict[str, Any]:
    """Points of the survival curves of a comparison's two arms, scaled into an SVG box (share still good on
    the y axis from the lowest share seen, rounded down to a tenth, to 100 %; months on book on the x axis)."""
    series = [(c.arm, [(0, 1.0)] + [(p.month, p.still_good) for p in c.survival])
              for c in (comparison.baseline, comparison.candidate)]
    months = max([m for _, pts in series for m, _ in pts] + [1])
    low = min([v for _, pts in series for _, v in pts] + [1.0])
    floor = max(0.0, math.floor(low * 10 - 1e-9) / 10) if low < 1 else 0.9
    span_x, span_y = CHART_WIDTH - 2 * CHART_PAD, CHART_HEIGHT - 2 * CHART_PAD

    def xy(month: int, share: float) -> str:
        x = CHART_PAD + span_x * month / months
        y = CHART_PAD + span_y * (1 - (share - floor) / (1 - floor))
        return f"{x:.1f},{y:.1f}"

    return {"width": CHART_WIDTH, "height": CHART_HEIGHT, "pad": CHART_PAD, "months": months, "floor": floor,
            "lines": [{"arm": arm, "points": " ".join(xy(m, v) for m, v in pts), "has_data": len(pts) > 1}
                      for arm, pts in series]}


@router.get("/policies/arms", response_class=HTMLResponse)
def arms(request: Request, uow: UnitOfWorkDep, outcome_months: int = OUTCOME_MONTHS) -> Response:
    """Champion, split challenger and shadow: per arm volume, limits, rates, expected loss and profit, approval
    and bad rates (mature loans only) with Wilson intervals, the tests against the champion and the survival
    curves."""
    who = _who(request, uow, Permission.VIEW_DECISIONS)
    if not isinstance(who, Principal):
        return who
    outcome_months = min(max(outcome_months, 1), 36)
    setup = policy_views.setup_or_none(uow, who) if who.can(Permission.VIEW_POLICIES) else None
    report = None
    if setup is not None:
        report = challenger_report(uow, who, outcomes.decision_performance(uow, who, utcnow().date()),
                                   outcome_months=outcome_months, lgd=servicing.loss_given_default(uow, who))
    summary = report.arms if report is not None else svc.arm_summary(uow, who)
    comparisons = report.comparisons if report is not None else []
    can_stop = who.can(Permission.PUBLISH_POLICIES) and setup is not None
    return page(request, who, "policies/arms.html", arms=summary, setup=setup, report=report,
                comparisons=[(c, survival_chart(c)) for c in comparisons], outcome_months=outcome_months,
                can_stop=can_stop and bool(setup and setup.challenger_hash),
                can_stop_shadow=can_stop and bool(setup and setup.shadow_hash))


@router.post("/policies/challenger/stop", response_class=HTMLResponse)
def stop_challenger(request: Request, uow: UnitOfWorkDep, arm: Annotated[str, Form()] = "challenger") -> Response:
    who = _who(request, uow, Permission.PUBLISH_POLICIES)
    if not isinstance(who, Principal):
        return who
    try:
        svc.stop_challenger(uow, who, arm if arm in ("challenger", "shadow") else "challenger")
    except DomainError as exc:
        return _error(request, who, exc)
    return RedirectResponse("/policies/arms", status_code=303)


# --- a new draft: edit, lint, diff, simulate, submit ---------------------------------------------------------


def _parse(content: str) -> dict[str, Any]:
    if not content.strip():
        raise ValidationError("content: paste or edit the policy document (JSON)", field="content")
    return parse_policy(content, "content")


@router.get("/policies/new", response_class=HTMLResponse)
def new_draft(request: Request, uow: UnitOfWorkDep, base: str = "") -> Response:
    """A new version starts as a copy of the version in force (or of `base`)."""
    who = _who(request, uow, Permission.EDIT_POLICIES)
    if not isinstance(who, Principal):
        return who
    try:
        setup = policy_views.setup_or_none(uow, who)
        start = base or (setup.champion_hash if setup else "")
        doc = svc.policy_content(uow, who, start) if start else {}
    except DomainError as exc:
        return _error(request, who, exc)
    return _editor(request, uow, who, json.dumps(doc, ensure_ascii=False, indent=2), base=start)


def _editor(request: Request, uow: UnitOfWork, who: Principal, content: str, *, base: str = "", note: str = "",
            error: str = "", status_code: int = 200) -> HTMLResponse:
    report, changes, parse_error = _check(uow, who, content)
    history = history_size(uow, who, HISTORY_DAYS) if who.can(Permission.VIEW_DECISIONS) else 0
    return page(request, who, "policies/edit.html", status_code=status_code, content=content, base=base,
                note=note, error=error, report=report, changes=changes, parse_error=parse_error, samples=SAMPLES,
                history_days=HISTORY_DAYS, history=history)


def _check(uow: UnitOfWork, who: Principal, content: str) -> tuple[LintReport | None, list[str] | None, str]:
    """Lint findings and the changes against the version in force, or why the text cannot be read."""
    try:
        doc = _parse(content)
    except DomainError as exc:
        return None, None, exc.message
    report = svc.lint_for_bank(uow, who, doc)
    setup = policy_views.setup_or_none(uow, who)
    changes = policy_diff(svc.policy_content(uow, who, setup.champion_hash), doc) if setup else None
    return report, changes, ""


@router.post("/policies/lint", response_class=HTMLResponse)
def lint_fragment(request: Request, uow: UnitOfWorkDep, content: Annotated[str, Form()] = "") -> Response:
    """htmx: the lint findings and the diff for the text being edited."""
    who = _who(request, uow, Permission.VIEW_POLICIES)
    if not isinstance(who, Principal):
        return who
    report, changes, parse_error = _check(uow, who, content)
    return page(request, who, "policies/_lint.html", report=report, changes=changes, parse_error=parse_error)


@router.post("/policies/simulate", response_class=HTMLResponse)
def simulate_fragment(request: Request, uow: UnitOfWorkDep, content: Annotated[str, Form()] = "",
                      dataset: Annotated[str, Form()] = BANK_HISTORY,
                      history_days: Annotated[str, Form()] = str(HISTORY_DAYS)) -> Response:
    """htmx: the simulation of the text being edited on the bank's own recent applications or a sample,
    against the version in force, with its money by segment."""
    who = _who(request, uow, Permission.EDIT_POLICIES)
    if not isinstance(who, Principal):
        return who
    try:
        days = _days(history_days)
        report = simulation(uow, who, _parse(content), dataset, None, None, charts=True, history_days=days)
    except DomainError as exc:
        return page(request, who, "policies/_simulation.html", status_code=exc.status_code, error=exc.message,
                    report=None, data=None)
    return page(request, who, "policies/_simulation.html", report=report, data=report.as_dict(), error="",
                dataset=SAMPLES.get(dataset, dataset), history_days=days, bank_history=dataset == BANK_HISTORY)


def _days(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValidationError("history_days: give the number of days as a whole number",
                              field="history_days") from None


@router.post("/policies/submit", response_class=HTMLResponse)
def submit(request: Request, uow: UnitOfWorkDep, content: Annotated[str, Form()] = "",
           note: Annotated[str, Form()] = "", base: Annotated[str, Form()] = "") -> Response:
    who = _who(request, uow, Permission.EDIT_POLICIES)
    if not isinstance(who, Principal):
        return who
    try:
        version = svc.submit(uow, who, _parse(content), note=note.strip()[:500])
    except DomainError as exc:
        return _editor(request, uow, who, content, base=base, note=note, error=exc.message,
                       status_code=exc.status_code)
    return RedirectResponse(f"/policies/{version.content_hash}?done=submitted", status_code=303)


# --- one version ---------------------------------------------------------------------------------------------


@router.get("/policies/{content_hash}", response_class=HTMLResponse)
def version_page(request: Request, uow: UnitOfWorkDep, content_hash: str, done: str = "") -> Response:
    who = _who(request, uow, Permission.VIEW_POLICIES)
    if not isinstance(who, Principal):
        return who
    try:
        return _version_page(request, uow, who, content_hash, message=done)
    except DomainError as exc:
        return _error(request, who, exc)


@router.post("/policies/{content_hash}/publish", response_class=HTMLResponse)
def publish(request: Request, uow: UnitOfWorkDep, content_hash: str, arm: Annotated[str, Form()] = "champion",
            share_percent: Annotated[str, Form()] = "") -> Response:
    """Publish as champion, as challenger on a share of customers, or in shadow; the author is refused."""
    who = _who(request, uow, Permission.PUBLISH_POLICIES)
    if not isinstance(who, Principal):
        return who
    try:
        share = None
        if arm == "challenger":
            try:
                share = round(float(share_percent.strip().rstrip("%")) * 100)
            except ValueError:
                raise ValidationError("share_percent: give the challenger's share as a percentage",
                                      field="share_percent") from None
        svc.publish(uow, who, content_hash, challenger_share_bp=share, shadow=arm == "shadow")
    except NotFound as exc:
        return _error(request, who, exc)
    except DomainError as exc:
        return _version_page(request, uow, who, content_hash, error=exc.message, status_code=exc.status_code)
    return RedirectResponse(f"/policies/{content_hash}?done=published", status_code=303)


@router.post("/policies/{content_hash}/promote", response_class=HTMLResponse)
def request_promote(request: Request, uow: UnitOfWorkDep, content_hash: str,
                    note: Annotated[str, Form()] = "") -> Response:
    """Ask for the running challenger to become the champion; a second person confirms it."""
    return _request_change(request, uow, "promote", content_hash, note)


@router.post("/policies/{content_hash}/rollback", response_class=HTMLResponse)
def request_rollback(request: Request, uow: UnitOfWorkDep, content_hash: str,
                     note: Annotated[str, Form()] = "") -> Response:
    """Ask for a retired version to be the champion again; a second person confirms it."""
    return _request_change(request, uow, "rollback", content_hash, note)


def _request_change(request: Request, uow: UnitOfWork, action: str, content_hash: str, note: str) -> Response:
    who = _who(request, uow, Permission.EDIT_POLICIES)
    if not isinstance(who, Principal):
        return who
    try:
        changes_svc.request_change(uow, who, action, content_hash, note.strip()[:500])
    except NotFound as exc:
        return _error(request, who, exc)
    except DomainError as exc:
        return _version_page(request, uow, who, content_hash, error=exc.message, status_code=exc.status_code)
    return RedirectResponse(f"/policies/{content_hash}?done=requested", status_code=303)


@router.post("/policies/changes/{request_id}", response_class=HTMLResponse)
def confirm_change(request: Request, uow: UnitOfWorkDep, request_id: Id,
                   approve: Annotated[str, Form()] = "") -> Response:
    """A second person approves (the change is made) or rejects a promote or roll back request."""
    who = _who(request, uow, Permission.PUBLISH_POLICIES)
    if not isinstance(who, Principal):
        return who
    try:
        done = changes_svc.decide_change(uow, who, request_id, approve == "1")
    except NotFound as exc:
        return _error(request, who, exc)
    except DomainError as exc:
        pending = [r for r in changes_svc.list_changes(uow, who) if r.id == request_id]
        if not pending:
            return _error(request, who, exc)
        return _version_page(request, uow, who, pending[0].content_hash, error=exc.message,
                             status_code=exc.status_code)
    return RedirectResponse(f"/policies/{done.content_hash}?done={done.status}", status_code=303)


# --- decisions -----------------------------------------------------------------------------------------------


@router.get("/decisions", response_class=HTMLResponse)
def decision_lookup(request: Request, uow: UnitOfWorkDep, id: str = "") -> Response:
    who = _who(request, uow, Permission.VIEW_DECISIONS)
    if not isinstance(who, Principal):
        return who
    if id.strip().isdigit():
        return RedirectResponse(f"/decisions/{int(id)}", status_code=303)
    return page(request, who, "policies/decision_lookup.html", query=id, error="invalid" if id.strip() else "")


@router.get("/decisions/{decision_id}", response_class=HTMLResponse)
def decision_page(request: Request, uow: UnitOfWorkDep, decision_id: Id) -> Response:
    who = _who(request, uow, Permission.VIEW_DECISIONS)
    if not isinstance(who, Principal):
        return who
    locale = request_locale(request)
    try:
        d = svc.decision_detail(uow, who, decision_id, locale)
    except DomainError as exc:
        return _error(request, who, exc)
    trace = sorted((d.trace or {}).items(), key=lambda kv: (kv[1] or {}).get("order", 0)) \
        if isinstance(d.trace, dict) else []
    reasons = list(d.record.reason_texts) or [(c, reason(c).message(locale), reason(c).tellable)
                                              for c in d.record.reasons]
    return page(request, who, "policies/decision.html", d=d, r=d.record, outcome_labels=OUTCOME_LABELS,
                reasons=reasons, steps=d.steps,
                inputs=json.dumps(d.inputs, ensure_ascii=False, indent=2),
                trace=[(v.get("name") if isinstance(v, dict) else k,
                        json.dumps((v or {}).get("traceData"), ensure_ascii=False, indent=1) if isinstance(v, dict)
                        else json.dumps(v, ensure_ascii=False)) for k, v in trace],
                policy=policy_name_of(uow, who, d.record.policy_hash))


def policy_name_of(uow: UnitOfWork, who: Principal, content_hash: str) -> str:
    try:
        return policy_name(svc.policy_content(uow, who, content_hash)) if who.can(Permission.VIEW_POLICIES) else ""
    except DomainError:
        return ""


@router.post("/decisions/{decision_id}/replay", response_class=HTMLResponse)
def replay(request: Request, uow: UnitOfWorkDep, decision_id: Id) -> Response:
    """htmx: replay the stored decision and say whether it gives the same result."""
    who = _who(request, uow, Permission.VIEW_DECISIONS)
    if not isinstance(who, Principal):
        return who
    try:
        result = svc.replay(uow, who, decision_id)
    except DomainError as exc:
        return HTMLResponse(f'<p class="error">{html.escape(exc.message)}</p>', status_code=exc.status_code)
    return page(request, who, "policies/_replay.html", result=result)
