"""`microlend policy` and `microlend decision`: thin commands over the decision engine.

Exit codes: 0 done, 1 the policy has errors or failing tests, 2 bad input (with one clear line)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from microlend.cli.common import batch_engine, fail, open_uow, tenant_principal, user_errors, user_principal
from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork

app = typer.Typer(
    name="policy",
    help="Credit policies: lint, test, simulate, submit and publish.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
decision_app = typer.Typer(
    name="decision",
    help="Stored credit decisions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(soft_wrap=True)


@app.callback()
def policy_group() -> None:
    """Credit policies: lint, test, simulate, submit and publish."""


@app.command("lint")
@user_errors
def lint(
    file: Annotated[Path, typer.Argument(help="Policy document (JDM JSON)")],
    no_tests: Annotated[bool, typer.Option("--no-tests", help="Skip the golden tests")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Findings as JSON")] = False,
) -> None:
    """Check a policy: required outputs, no code nodes, connected graph, reachable rows, no gaps, tests."""
    from microlend.decisioning.lint import lint_policy
    from microlend.decisioning.policy import load_policy_file

    report = lint_policy(load_policy_file(file), run_tests=not no_tests)
    if as_json:
        print(json.dumps([f.__dict__ for f in report.findings], ensure_ascii=False, indent=2))
    else:
        for f in report.findings:
            colour = "red" if f.severity == "error" else "yellow"
            console.print(
                f"[{colour}]{f.severity}[/]: " + escape(f"[{f.kind}] {f.where}: {f.message}"), highlight=False
            )
        errors, warnings = len(report.errors), len(report.findings) - len(report.errors)
        console.print(f"{file}: {errors} error(s), {warnings} warning(s)", highlight=False)
    if not report.ok:
        raise typer.Exit(1)


@app.command("test")
@user_errors
def test(file: Annotated[Path, typer.Argument(help="Policy document (JDM JSON)")]) -> None:
    """Run the golden tests embedded in a policy."""
    from microlend.decisioning.golden import run_golden_tests
    from microlend.decisioning.policy import load_policy_file

    results = run_golden_tests(load_policy_file(file))
    for r in results:
        mark = "[green]pass[/]" if r.passed else "[red]FAIL[/]"
        console.print(f"{mark} " + escape(r.name), highlight=False)
        for problem in r.problems:
            console.print("     " + escape(problem), highlight=False)
    failed = sum(not r.passed for r in results)
    console.print(f"{len(results) - failed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)


@app.command("hash")
@user_errors
def content_hash(file: Annotated[Path, typer.Argument(help="Policy document (JDM JSON)")]) -> None:
    """Print the version identity of a policy (sha256 of its canonical JSON)."""
    from microlend.decisioning.policy import load_policy_file, policy_hash

    print(policy_hash(load_policy_file(file)))


@app.command("diff")
@user_errors
def diff(
    old: Annotated[Path, typer.Argument(help="The version in force (JDM JSON)")],
    new: Annotated[Path, typer.Argument(help="The proposed version (JDM JSON)")],
) -> None:
    """Show what a new version changes: nodes, table rows cell by cell, expressions, golden tests."""
    from microlend.decisioning.diff import policy_diff
    from microlend.decisioning.policy import load_policy_file

    changes = policy_diff(load_policy_file(old), load_policy_file(new))
    for change in changes:
        console.print(escape(change), highlight=False)
    console.print(f"{len(changes)} change(s)")


@app.command("simulate")
@user_errors
def simulate(
    policy: Annotated[Path, typer.Option("--policy", help="Policy to simulate")],
    data: Annotated[Path, typer.Option("--data", help="Applications table (.csv or .parquet)")],
    out: Annotated[Path, typer.Option("--out", help="HTML report to write; JSON goes beside it")],
    baseline: Annotated[Path | None, typer.Option("--baseline", help="Policy to compare with")] = None,
    segment: Annotated[list[str] | None, typer.Option("--segment", help="Column to break down by; repeat")] = None,
) -> None:
    """Run a policy over past applications: approvals, bad rates, limits, rates, swaps, by segment."""
    from microlend.decisioning.policy import load_policy_file, policy_kind
    from microlend.decisioning.simulate import load_applications, render_html
    from microlend.decisioning.simulate import simulate as run

    doc = load_policy_file(policy)
    base = load_policy_file(baseline) if baseline is not None else None
    for path, candidate in ((policy, doc), (baseline, base)):
        if candidate is not None and policy_kind(candidate) != "credit_decision":
            raise fail(f"'{path}' is a {policy_kind(candidate)} policy; simulate runs credit-decision policies")
    if out.suffix.lower() not in (".html", ".htm"):
        raise fail(f"--out: '{out}' should end in .html")
    frame = load_applications(data)
    report = run(doc, frame, baseline=base, segment_columns=segment or None)
    out.write_text(render_html(report), encoding="utf-8")
    json_path = out.with_suffix(".json")
    json_path.write_text(report.to_json(), encoding="utf-8")
    o = report.overall
    console.print(
        f"{report.rows} applications in {report.seconds:.3f} s ({report.rows_per_second:,.0f}/s, "
        f"{report.mode}); approval rate {o.approval_rate:.1%}; report {out}, data {json_path}",
        highlight=False,
    )


@app.command("sample-data")
@user_errors
def sample_data(
    out: Annotated[Path, typer.Option("--out", help="File to write (.csv or .parquet)")],
    source: Annotated[str, typer.Option(help="lending_club or german_credit")] = "lending_club",
) -> None:
    """Write an applications table derived from public credit data, ready for `policy simulate`."""
    from microlend.decisioning.simulate import sample_applications

    if out.suffix.lower() not in (".csv", ".parquet"):
        raise fail(f"--out: '{out}' should end in .csv or .parquet")
    frame = sample_applications(source)
    if out.suffix.lower() == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    console.print(f"{len(frame)} applications written to {out}", highlight=False)


@app.command("review-limits")
@user_errors
def review_limits(
    data: Annotated[
        Path | None, typer.Option("--data", help="Credit lines (.csv or .parquet), columns named by path")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Results to write (.csv)")] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="Limit review policy (default: shipped)")] = None,
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Review the open credit lines of this bank's database")
    ] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="With --tenant, signed in: store the proposals (decreases wait for a "
                           "person) and apply increases within authority if the policy allows")
    ] = False,
) -> None:
    """Re-decide credit lines from behaviour: increase, keep, decrease or freeze; large increases referred."""
    import pandas as pd

    from microlend.decisioning.limits import default_limit_review, review_portfolio
    from microlend.decisioning.policy import load_policy_file, policy_kind

    doc = load_policy_file(policy) if policy is not None else default_limit_review()
    if policy_kind(doc) != "limit_review":
        raise fail(f"--policy: '{policy}' is not a limit review policy (metadata.kind)")
    if tenant is not None:
        _review_bank(tenant, doc, apply, out, local_file=policy is not None)
        return
    if apply:
        raise fail("--apply: only with --tenant (a file review changes nothing)")
    if data is None or out is None:
        raise fail("--data and --out: both are needed to review a file (or give --tenant)")
    if data.suffix.lower() not in (".csv", ".parquet") or not data.exists():
        raise fail(f"--data: '{data}' should be an existing .csv or .parquet file")
    lines = pd.read_csv(data) if data.suffix.lower() == ".csv" else pd.read_parquet(data)
    missing = [c for c in ("line.line_id", "line.limit") if c not in lines.columns]
    if missing:
        raise fail(f"--data: column '{missing[0]}' is missing")
    result = review_portfolio(doc, lines)
    result.assign(reasons=result["reasons"].map(" ".join)).to_csv(out, index=False)
    counts = result["action"].value_counts().to_dict()
    summary = ", ".join(f"{k} {counts.get(k, 0)}" for k in ("increase", "keep", "decrease", "freeze"))
    console.print(
        f"{len(result)} lines reviewed: {summary}; {int((result['outcome'] == 'refer').sum())} referred; "
        f"results in {out}",
        highlight=False,
    )


def _review_bank(tenant: str, doc: dict[str, object], apply: bool, out: Path | None, local_file: bool) -> None:
    """The periodic review on a bank's database: a dry run as the platform's scheduled identity; applying it
    (proposals, and increases within authority where the policy allows) as the signed-in person."""
    import csv

    from microlend.origination.limit_review import review_credit_lines

    if apply:
        from microlend.cli.session import signed_in_person

        uow = open_uow()
        who = signed_in_person(uow, "review-limits --apply", tenant=tenant)
    else:
        uow, who = tenant_principal(tenant, "limit-review")
    run = review_credit_lines(uow, who, apply=apply, policy=dict(doc) if local_file else None)
    if out is not None:
        with out.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["credit_line_id", "action", "outcome", "current_limit", "new_limit", "status",
                             "reasons"])
            for r in run.lines:
                writer.writerow([r.credit_line_id, r.action, r.outcome, r.current_limit, r.new_limit, r.status,
                                 " ".join(r.reasons)])
    summary = ", ".join(f"{a} {run.count(action=a)}" for a in ("increase", "keep", "decrease", "freeze"))
    done = (f"{run.count(status='applied')} applied, {run.count(status='pending')} proposed to an approver, "
            f"{run.count(status='failed')} failed" if apply else "nothing changed (add --apply)")
    console.print(f"{tenant}: {len(run.lines)} open lines reviewed on {run.business_date}: {summary}; {done}",
                  highlight=False)


# --- commands on a bank's database (as one of its users) -------------------------------------------------


def _as_user(username: str) -> tuple[UnitOfWork, Principal]:
    uow = open_uow()
    return uow, user_principal(uow, username)


def _person(act: str, user: str | None) -> tuple[UnitOfWork, Principal]:
    from microlend.cli.session import signed_in_person

    uow = open_uow()
    return uow, signed_in_person(uow, act, user)


_SIGNED_IN = "must be the signed-in person (`microlend login`)"


@app.command("score-behaviour")
def score_behaviour(
    tenant: Annotated[str, typer.Option("--tenant", help="Score the open lines and active loans of this bank")],
    engine: Annotated[str, typer.Option(help="Total the instalments on a batch engine, local or spark "
                                             "(default: in the database)")] = "",
) -> None:
    """The monthly behaviour score (月度行为评分) of every open credit line and active loan, kept as this month's."""
    from microlend.origination.behaviour_scoring import score_portfolio

    batch = batch_engine(engine) if engine else None
    uow, who = tenant_principal(tenant, "behaviour-score")
    run = score_portfolio(uow, who, engine=batch)
    bands = ", ".join(f"{band} {count}" for band, count in run.bands.items())
    console.print(f"{tenant}: {run.scored} lines and loans scored for {run.month} on {run.business_date}: {bands}",
                  highlight=False)


@app.command("submit")
@user_errors
def submit(
    file: Annotated[Path, typer.Argument(help="Policy document (JDM JSON)")],
    note: Annotated[str, typer.Option(help="Why this version")] = "",
    user: Annotated[str | None, typer.Option("--user", help=f"The author; {_SIGNED_IN}")] = None,
) -> None:
    """Submit a policy version as the signed-in person: it must pass lint and have golden tests that pass;
    it is simulated against the champion on the bank's recent decisions and the evidence kept."""
    from microlend.decisioning import service
    from microlend.decisioning.policy import load_policy_file

    uow, who = _person("submit", user)
    version, evidence = service.submit_with_evidence(uow, who, load_policy_file(file), note=note)
    for warning in evidence.warnings:
        console.print("[yellow]warning[/]: " + escape(warning), highlight=False)
    sim = evidence.simulation
    source = sim.get("source")
    console.print(f"simulated on {sim.get('rows', 0)} applications ({source}"
                  + (f": {sim['fallback']}" if sim.get("fallback") else "") + ")", highlight=False)
    for swap, n in (sim.get("swaps") or {}).items():
        console.print(f"  {swap}: {n}", highlight=False)
    console.print(f"submitted {version.name} {version.content_hash} by {version.author}", highlight=False)


@app.command("to-test")
@user_errors
def to_test(
    content_hash: Annotated[str, typer.Argument(help="A draft version's hash")],
    user: Annotated[str | None, typer.Option("--user", help=_SIGNED_IN)] = None,
) -> None:
    """Move a draft into the test environment (lint clean, golden tests pass): evaluated on request
    (`POST /api/v1/policies/{hash}/evaluate?environment=test`), never on a live application."""
    from microlend.decisioning import versions as policy_versions

    uow, who = _person("to-test", user)
    version = policy_versions.promote_to_test(uow, who, content_hash)
    console.print(f"{version.name} {version.content_hash} is in {version.environment}", highlight=False)


@app.command("publish")
@user_errors
def publish(
    content_hash: Annotated[str, typer.Argument(help="Version hash (see `policy hash`)")],
    challenger_share: Annotated[int | None, typer.Option(help="Run as challenger on this many basis points")] = None,
    shadow: Annotated[bool, typer.Option("--shadow", help="Run in shadow: stored, never acted on")] = False,
    user: Annotated[str | None, typer.Option("--user", help=f"The checker, not the author; {_SIGNED_IN}")] = None,
) -> None:
    """Publish a submitted version as the signed-in checker (maker-checker): champion, challenger or shadow."""
    from microlend.decisioning import service

    uow, who = _person("publish", user)
    version = service.publish(uow, who, content_hash, challenger_share_bp=challenger_share, shadow=shadow)
    console.print(f"published {version.name} {version.content_hash} by {version.publisher}", highlight=False)


@app.command("promote")
@user_errors
def promote(
    content_hash: Annotated[str, typer.Argument(help="The running challenger's hash")],
    note: Annotated[str, typer.Option(help="Why")] = "",
    user: Annotated[str | None, typer.Option("--user", help=_SIGNED_IN)] = None,
) -> None:
    """Ask for the running challenger to become the champion, unchanged; a second person confirms it."""
    from microlend.decisioning import changes

    uow, who = _person("promote", user)
    request = changes.request_change(uow, who, "promote", content_hash, note)
    console.print(f"request {request.id}: promote {content_hash[:12]} waits for a second person "
                  f"(`microlend policy confirm {request.id}`)", highlight=False)


@app.command("rollback")
@user_errors
def rollback(
    to: Annotated[str, typer.Option("--to", help="The retired version's hash")],
    note: Annotated[str, typer.Option(help="Why")] = "",
    user: Annotated[str | None, typer.Option("--user", help=_SIGNED_IN)] = None,
) -> None:
    """Ask for a retired version to be the champion again; a second person confirms it."""
    from microlend.decisioning import changes

    uow, who = _person("rollback", user)
    request = changes.request_change(uow, who, "rollback", to, note)
    console.print(f"request {request.id}: roll back to {to[:12]} waits for a second person "
                  f"(`microlend policy confirm {request.id}`)", highlight=False)


@app.command("confirm")
@user_errors
def confirm(
    request_id: Annotated[int, typer.Argument(help="The promote or roll back request")],
    reject: Annotated[bool, typer.Option("--reject", help="Refuse it instead")] = False,
    user: Annotated[str | None, typer.Option("--user", help=f"Not the one who asked; {_SIGNED_IN}")] = None,
) -> None:
    """Approve (the change is made at once) or reject a promote or roll back request, as a second person."""
    from microlend.decisioning import changes

    uow, who = _person("confirm", user)
    done = changes.decide_change(uow, who, request_id, approve=not reject)
    console.print(f"request {done.id}: {done.action} {done.content_hash[:12]} {done.status} by {done.decided_by}",
                  highlight=False)


@app.command("versions")
@user_errors
def versions(user: Annotated[str, typer.Option("--user", help="A bank user who may view policies")]) -> None:
    """List the bank's policy versions."""
    from microlend.decisioning import service

    uow, who = _as_user(user)
    table = Table("hash", "name", "status", "environment", "author", "publisher")
    for v in service.list_versions(uow, who):
        table.add_row(v.content_hash[:12], v.name, v.status, v.environment, v.author, v.publisher or "")
    console.print(table)


@decision_app.callback()
def decision_group() -> None:
    """Stored credit decisions."""


@decision_app.command("replay")
@user_errors
def replay(
    decision_id: Annotated[int, typer.Argument(help="Decision id")],
    user: Annotated[str, typer.Option("--user", help="A bank user who may view decisions")],
) -> None:
    """Re-evaluate a stored decision from its stored inputs and policy version; exit 1 if it differs."""
    from microlend.decisioning import service

    uow, who = _as_user(user)
    result = service.replay(uow, who, decision_id)
    if result.equal:
        console.print(f"decision {decision_id}: replay gives the same result ({result.stored['outcome']})")
        return
    for difference in result.differences:
        console.print("[red]differs[/] " + escape(difference), highlight=False)
    raise typer.Exit(1)


@decision_app.command("trace")
@user_errors
def trace(
    decision_id: Annotated[int, typer.Argument(help="Decision id")],
    user: Annotated[str, typer.Option("--user", help="A bank user who may view decisions")],
) -> None:
    """How a stored decision was reached: each table's rows that fired (numbered from 1 as the policy page
    numbers them) with the values they matched and what they gave, and each expression's results."""
    from microlend.decisioning import service

    uow, who = _as_user(user)
    detail = service.decision_detail(uow, who, decision_id, "en")
    for step in detail.steps:
        console.print(f"[bold]{escape(step.name)}[/]", highlight=False)
        for row in step.rows:
            matched = "; ".join(f"{c.column} {c.test} (was {c.value})" for c in row.matched) or "any values"
            gave = ", ".join(f"{o.name} = {o.value}" for o in row.outputs)
            console.print(escape(f"  row {row.row}: {matched} -> {gave}"), highlight=False)
        for result in step.results:
            console.print(escape(f"  {result.name} = {result.value}"), highlight=False)
        for inner in step.steps:
            for row in inner.rows:
                gave = ", ".join(f"{o.name} = {o.value}" for o in row.outputs)
                console.print(escape(f"  {inner.name} row {row.row} -> {gave}"), highlight=False)


@app.command("reasons")
@user_errors
def reasons(
    user: Annotated[str, typer.Option("--user", help="A bank user who may view policies")],
    as_json: Annotated[bool, typer.Option("--json", help="The catalogue as JSON")] = False,
) -> None:
    """List the bank's reason-code catalogue: borrower and staff texts, tellable, parameters."""
    from microlend.decisioning import service

    uow, who = _as_user(user)
    if as_json:
        print(json.dumps([r.as_dict() for r in service.list_reason_codes(uow, who)], ensure_ascii=False, indent=2))
        return
    table = Table("code", "tellable", "borrower (en)", "borrower (zh)", "parameters")
    for r in service.list_reason_codes(uow, who):
        table.add_row(r.code, "yes" if r.tellable else "no", escape(r.borrower_en), escape(r.borrower_zh),
                      ", ".join(f"{n} <- {f}" for n, f in r.params))
    console.print(table)


@app.command("reason-set")
@user_errors
def reason_set(
    code: Annotated[str, typer.Argument(help="Reason code, e.g. AGE_ABOVE_MAX")],
    borrower_zh: Annotated[str, typer.Option("--borrower-zh", help="What a borrower is told (zh-CN)")],
    borrower_en: Annotated[str, typer.Option("--borrower-en", help="What a borrower is told (English)")],
    staff_zh: Annotated[str | None, typer.Option("--staff-zh", help="Staff text (zh-CN); default: borrower's")] = None,
    staff_en: Annotated[str | None, typer.Option("--staff-en", help="Staff text (en); default: borrower's")] = None,
    tellable: Annotated[bool, typer.Option("--tellable/--not-tellable", help="May the borrower be told")] = True,
    param: Annotated[list[str] | None, typer.Option(
        "--param", help="name=input.field, e.g. max_age=customer.age; repeat")] = None,
    user: Annotated[str | None, typer.Option("--user", help=f"A policy analyst; {_SIGNED_IN}")] = None,
) -> None:
    """Add a reason code to the bank's catalogue or change its texts, as the signed-in analyst (audited)."""
    from microlend.decisioning import service

    params: dict[str, str] = {}
    for item in param or []:
        name, sep, field = item.partition("=")
        if not sep or not name.strip() or not field.strip():
            raise fail(f"--param: '{item}' is not name=input.field")
        params[name.strip()] = field.strip()
    uow, who = _person("edit reason codes", user)
    saved = service.save_reason_code(uow, who, code, borrower_zh=borrower_zh, borrower_en=borrower_en,
                                     staff_zh=staff_zh or borrower_zh, staff_en=staff_en or borrower_en,
                                     tellable=tellable, params=params)
    console.print(f"reason code {saved.code} saved by {saved.updated_by}", highlight=False)
