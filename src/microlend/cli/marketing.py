"""`microlend marketing`: segments, pre-approval runs, campaigns and their reports from the command line.

Customer data comes from a file (Parquet or CSV: customer_id, marketing_consent, current_days_past_due and
the features segments read); a pre-approval reads the feature library's source tables from a folder of
Parquet files (customers.parquet, loans.parquet, ..., profile.parquet) or of partitioned Parquet folders
(customers/, loans/, ..., profile/, by tenant and month, which the batch engine reads itself: on Spark, the
cluster in parallel), or from a seeded synthetic base.
Bad input exits with code 2 and one line saying what is wrong.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import polars as pl
import pyarrow.parquet as pq
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from microlend.cli.common import (
    batch_engine,
    console,
    fail,
    parquet_folder,
    parquet_tables,
    tenant_principal,
    user_errors,
)
from microlend.core.clock import utcnow
from microlend.core.errors import ValidationError
from microlend.marketing import service
from microlend.marketing.journeys import StepSpec
from microlend.marketing.segments import FrequencyCap, identifiers, parse_segment_expression

if TYPE_CHECKING:
    from microlend.marketing.preapproval import PreapprovalInputs

app = typer.Typer(help="Marketing: segments, pre-approval runs, campaigns and reports (营销).", no_args_is_help=True)
segment_app = typer.Typer(help="Segments: validate, save, count and preview.", no_args_is_help=True)
campaign_app = typer.Typer(help="Campaigns: create, launch, send.", no_args_is_help=True)
app.add_typer(segment_app, name="segment")
app.add_typer(campaign_app, name="campaign")

Tenant = Annotated[str, typer.Option("--tenant", help="Tenant (bank) name")]


def _instant(text: str | None) -> datetime:
    if text is None:
        return utcnow()
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"at: '{text}' is not an ISO date-time such as 2026-03-02T10:00+08:00",
                              field="at") from None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{name}: '{text}' is not a date such as 2026-03-01", field=name) from None


def _read_customers(path: Path) -> pl.DataFrame:
    if not path.is_file():
        raise ValidationError(f"customers: no file at {path}", field="customers")
    try:
        if path.suffix.lower() == ".parquet":
            return pl.read_parquet(path)
        if path.suffix.lower() == ".csv":
            return pl.read_csv(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ValidationError(f"customers: cannot read {path.name}: {exc}", field="customers") from None
    raise ValidationError("customers: use a .parquet or .csv file", field="customers")


# --- segments ---------------------------------------------------------------------------------------------


@segment_app.command("validate")
@user_errors
def segment_validate(expression: Annotated[str, typer.Argument(help="ZEN expression, e.g. 'age >= 25'")]) -> None:
    """Check an expression against the feature namespace and say which features it reads."""
    node = parse_segment_expression(expression)
    console.print(f"ok: reads {', '.join(sorted(identifiers(node)))}")


@segment_app.command("save")
@user_errors
def segment_save(
    tenant: Tenant,
    name: Annotated[str, typer.Option("--name", help="Segment name")],
    expression: Annotated[str, typer.Argument(help="ZEN expression")],
    description: Annotated[str, typer.Option(help="What the segment is for")] = "",
) -> None:
    """Store the expression as the segment's next version."""
    uow, who = tenant_principal(tenant)
    saved = service.save_segment(uow, who, name, expression, at=utcnow(), description=description)
    console.print(f"saved segment '{saved.name}' version {saved.version}")


@segment_app.command("count")
@user_errors
def segment_count(
    tenant: Tenant,
    name: Annotated[str, typer.Option("--name", help="Segment name")],
    customers: Annotated[Path, typer.Option("--customers", help="Customer features (.parquet or .csv)")],
    channel: Annotated[str, typer.Option(help="sms, push or visit")] = "sms",
    at: Annotated[str | None, typer.Option(help="When (ISO date-time); default now")] = None,
    sample: Annotated[int, typer.Option(help="Customers to preview")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Live count with every exclusion, and a sample preview."""
    uow, who = tenant_principal(tenant)
    summary = service.preview_segment(uow, who, name, _read_customers(customers), channel=channel, at=_instant(at),
                                      sample_size=sample)
    if as_json:
        console.print_json(json.dumps({"selected": summary.selected, "excluded": summary.excluded,
                                       "eligible": summary.eligible, "sample": summary.sample}, default=str))
        return
    console.print(f"selected {summary.selected:,}; eligible on {channel} {summary.eligible:,}; excluded "
                  + ", ".join(f"{k} {v:,}" for k, v in summary.excluded.items()))
    if summary.sample:
        table = Table(*summary.sample[0].keys())
        for row in summary.sample:
            table.add_row(*(str(v) for v in row.values()))
        console.print(table)


@segment_app.command("preview")
@user_errors
def segment_preview(
    tenant: Tenant,
    name: Annotated[str, typer.Option("--name", help="Segment name")],
    customers: Annotated[Path, typer.Option("--customers", help="Customer features (.parquet or .csv)")],
    channel: Annotated[str, typer.Option(help="sms, push or visit")] = "sms",
    sample: Annotated[int, typer.Option(help="Customers to show")] = 20,
) -> None:
    """Show a sample of the customers a campaign on this segment would contact."""
    segment_count(tenant, name, customers, channel=channel, at=None, sample=sample, as_json=False)


# --- pre-approval -----------------------------------------------------------------------------------------


def _parquet_inputs(data: Path) -> PreapprovalInputs:
    """The pre-approval's inputs in a folder: `name.parquet` files are read here, `name/` folders of partitioned
    files are left for the batch engine to read."""
    from microlend.marketing.preapproval import PreapprovalInputs

    sources: dict[str, Any] = {name: pq.read_table(path) if path.is_file() else parquet_folder(path, name)
                               for name, path in parquet_tables(data).items()}
    if "customers" not in sources:
        raise fail(f"data: {data} has no customers.parquet or customers/ folder")
    profile = sources.pop("profile", None)
    return PreapprovalInputs(sources, profile)


@app.command("preapprove")
@user_errors
def preapprove(
    tenant: Tenant,
    as_of: Annotated[str, typer.Option("--as-of", help="Features as of this date (YYYY-MM-DD)")],
    data: Annotated[Path | None, typer.Option(help="Folder of the source tables and the profile, each a Parquet file "
                                                   "(customers.parquet) or a folder of partitioned Parquet files "
                                                   "(customers/tenant_id=1/month=2024-01/...)")] = None,
    synthetic: Annotated[int | None, typer.Option(help="Use a seeded synthetic base of this many customers")] = None,
    segment: Annotated[str | None, typer.Option(help="Only customers in this segment")] = None,
    product: Annotated[str, typer.Option(help="Product code the offers are for")] = "MICRO_BIZ",
    amount: Annotated[str, typer.Option(help="Amount asked of the policy (CNY)")] = "200000",
    term: Annotated[int, typer.Option(help="Term in months")] = 12,
    offer_days: Annotated[int, typer.Option(help="Days an offer stays valid")] = 30,
    chunk_rows: Annotated[int, typer.Option(help="Customers per chunk (and per commit)")] = 100_000,
    engine: Annotated[str, typer.Option(help="Batch engine for the features of --data/--synthetic: local or spark "
                                             "(MICROLEND_SPARK_MASTER or MICROLEND_SPARK_REMOTE)")] = "local",
) -> None:
    """Score with the bank's champion model, evaluate its published policy and store offers; resumes a killed
    run. Without --data or --synthetic: the bank's own customers, with the live credit rules (exposure, arrears,
    blacklist, capacity). --synthetic is refused on a bank with real customers (use an empty scratch tenant)."""
    from microlend.marketing.bank_preapproval import run_bank_preapproval
    from microlend.marketing.preapproval import OfferParameters, PreapprovalInputs, run_preapproval

    day = _day(as_of, "as_of")
    try:
        requested = Decimal(amount)
    except InvalidOperation:
        raise fail(f"amount: '{amount}' is not a number") from None
    params = OfferParameters(product_code=product, requested_amount=requested, term_months=term,
                             offer_days=offer_days)
    if data is not None and synthetic is not None:
        raise fail("give --data FOLDER or --synthetic N, not both (neither: the bank's own customers)")
    if engine != "local" and data is None and synthetic is None:
        raise fail(f"engine: the bank's own customers are read from its database on the local engine; "
                   f"--engine {engine} applies to --data or --synthetic")
    batch = batch_engine(engine)
    uow, who = tenant_principal(tenant)
    inputs = None
    if synthetic is not None:
        if synthetic < 1:
            raise fail("synthetic: give a positive number of customers")
        real = service.real_customer_count(uow, who)
        if real:
            raise fail(f"synthetic: {tenant} has {real:,} real customers; synthetic benchmark data goes only into "
                       "an empty scratch tenant (create one, e.g. `microlend tenant create scratch`, and run there)")
        from microlend.marketing.synthetic import customer_base

        tables, profile = customer_base(synthetic, as_of=day)
        inputs = PreapprovalInputs(tables, profile)
    elif data is not None:
        if not data.is_dir():
            raise fail(f"data: no folder at {data}")
        inputs = _parquet_inputs(data)
    with Progress(TextColumn("pre-approval"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as bar:
        task = bar.add_task("customers", total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        if inputs is None:
            summary = run_bank_preapproval(uow, who, as_of=day, started_at=utcnow(), segment_name=segment,
                                           params=params, chunk_rows=chunk_rows, progress=progress)
        else:
            summary = run_preapproval(uow, who, inputs, as_of=day, started_at=utcnow(), segment_name=segment,
                                      params=params, engine=batch, chunk_rows=chunk_rows, progress=progress)
    run = next((r for r in service.list_runs(uow, who) if r.id == summary.run_id), None)
    if run is not None:
        console.print(f"model {run.model_version}; policy {run.policy_version}")
    console.print(f"run {summary.run_id} {summary.status}{' (resumed)' if summary.resumed else ''}: "
                  f"{summary.customers_total:,} customers, {summary.customers_in_segment:,} in segment, "
                  f"{summary.offers:,} offers")


@app.command("offers")
@user_errors
def offers(
    tenant: Tenant,
    run: Annotated[int | None, typer.Option("--run", help="Run id; default the latest completed run")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """List a pre-approval run's offers: customer, limit, rate, expiry and run."""
    uow, who = tenant_principal(tenant)
    listed = service.list_offers(uow, who, run)
    if as_json:
        print(json.dumps([{k: v for k, v in o.to_dict().items() if k in (
            "customer_id", "limit", "annual_rate", "expires_on", "run_id")} for o in listed], indent=2))
        return
    table = Table("customer", "limit", "annual rate", "expires on", "run")
    for o in listed:
        table.add_row(str(o.customer_id), f"{o.limit:,.2f}", f"{o.annual_rate:.4%}", o.expires_on.isoformat(),
                      str(o.run_id))
    console.print(table)


# --- campaigns --------------------------------------------------------------------------------------------


@campaign_app.command("create")
@user_errors
def campaign_create(
    tenant: Tenant,
    name: Annotated[str, typer.Option("--name", help="Campaign name")],
    channel: Annotated[str, typer.Option(help="sms, push or visit")] = "sms",
    segment: Annotated[str | None, typer.Option(help="Target a segment")] = None,
    run: Annotated[int | None, typer.Option(help="Target a pre-approval run's offers")] = None,
    control_share: Annotated[int, typer.Option(help="Control group share in basis points (1000 = 10%)")] = 1000,
    locale: Annotated[str, typer.Option(help="zh_CN or en")] = "zh_CN",
    cost_per_message: Annotated[str, typer.Option(help="Cost of one message (CNY)")] = "0.05",
    attribution_days: Annotated[int, typer.Option(help="Days after a send that a conversion counts")] = 30,
    cap_messages: Annotated[int, typer.Option(help="Frequency cap: messages per window")] = 2,
    cap_days: Annotated[int, typer.Option(help="Frequency cap: window in days")] = 7,
    department: Annotated[str, typer.Option(help="Department running the campaign")] = "",
    product: Annotated[str, typer.Option(help="Product the campaign offers")] = "",
    budget: Annotated[str | None, typer.Option(help="What its contacts may cost (CNY); none by default")] = None,
) -> None:
    """Create a draft campaign."""
    try:
        cost = Decimal(cost_per_message)
        budget_value = None if budget is None else Decimal(budget)
    except InvalidOperation:
        raise fail(f"cost_per_message or budget: '{cost_per_message}' / '{budget}' is not a number") from None
    uow, who = tenant_principal(tenant)
    spec = service.CampaignSpec(name=name, channel=channel, segment_name=segment, run_id=run,
                                control_share_bp=control_share, locale=locale, cost_per_message=cost,
                                attribution_days=attribution_days, cap=FrequencyCap(cap_messages, cap_days),
                                department=department, product=product, budget=budget_value)
    camp = service.create_campaign(uow, who, spec, at=utcnow())
    console.print(f"campaign {camp.id} '{camp.name}' created (draft)")


@campaign_app.command("launch")
@user_errors
def campaign_launch(
    tenant: Tenant,
    campaign_id: Annotated[int, typer.Argument(help="Campaign id")],
    customers: Annotated[Path, typer.Option("--customers", help="Customer features (.parquet or .csv)")],
    at: Annotated[str | None, typer.Option(help="When (ISO date-time); default now")] = None,
    bank_name: Annotated[str, typer.Option(help="Name signed on messages")] = "",
) -> None:
    """Apply exclusions, hold out the control group, fill the outbox or create visit tasks."""
    uow, who = tenant_principal(tenant)
    s = service.launch_campaign(uow, who, campaign_id, _read_customers(customers), at=_instant(at),
                                bank_name=bank_name)
    console.print(f"campaign {s.campaign_id}: targeted {s.targeted:,}, control {s.control:,}, treatment "
                  f"{s.treatment:,}, messages {s.messages:,}, visit tasks {s.visit_tasks:,}, scheduled at "
                  f"{s.scheduled_at.isoformat()}; excluded " + ", ".join(f"{k} {v:,}" for k, v in s.excluded.items()))


@campaign_app.command("send")
@user_errors
def campaign_send(
    tenant: Tenant,
    now: Annotated[str | None, typer.Option(help="Send what is due at this instant; default now")] = None,
    customers: Annotated[Path | None, typer.Option(help="Take current consent from this file")] = None,
) -> None:
    """Hand due outbox messages to the sender (the default writes them to the log)."""
    uow, who = tenant_principal(tenant)
    kwargs: dict[str, Any] = {}
    if customers is not None:
        frame = _read_customers(customers)
        if "marketing_consent" not in frame.columns:
            raise fail("customers: the file has no marketing_consent column")
        consenting = set(frame.filter(pl.col("marketing_consent")).get_column("customer_id").to_list())
        kwargs["consent"] = lambda _s, _t, ids: {i for i in ids if i in consenting}
    result = service.dispatch_outbox(uow, who, now=_instant(now), **kwargs)
    console.print(f"sent {result.sent:,}, failed {result.failed:,}, suppressed "
                  + (", ".join(f"{k} {v:,}" for k, v in result.suppressed.items()) or "0"))


@campaign_app.command("step")
@user_errors
def campaign_step(
    tenant: Tenant,
    campaign_id: Annotated[int, typer.Argument(help="Campaign id (not launched yet)")],
    after_days: Annotated[int, typer.Option(help="Days after the previous step (the launch for the first)")],
    condition: Annotated[str, typer.Option(help="no_click, no_application or clicked_no_application")],
    action: Annotated[str, typer.Option(help="sms, push or visit")],
    template: Annotated[str | None, typer.Option(help="Message text; the campaign's by default")] = None,
) -> None:
    """Add a follow-up step to a campaign's journey."""
    uow, who = tenant_principal(tenant)
    step = service.add_journey_step(uow, who, campaign_id, StepSpec(after_days, condition, action, template))
    console.print(f"campaign {campaign_id}: step {step.position} after {step.after_days} days, {step.condition} -> "
                  f"{step.action}")


@campaign_app.command("journeys")
@user_errors
def campaign_journeys(
    tenant: Tenant,
    now: Annotated[str | None, typer.Option(help="Advance what is due at this instant; default now")] = None,
    customers: Annotated[Path | None, typer.Option(help="Take current consent from this file")] = None,
) -> None:
    """Advance every journey step now due (the worker does this every hour)."""
    uow, who = tenant_principal(tenant)
    kwargs: dict[str, Any] = {}
    if customers is not None:
        frame = _read_customers(customers)
        if "marketing_consent" not in frame.columns:
            raise fail("customers: the file has no marketing_consent column")
        consenting = set(frame.filter(pl.col("marketing_consent")).get_column("customer_id").to_list())
        kwargs["consent"] = lambda _s, _t, ids: {i for i in ids if i in consenting}
    done = service.advance_journeys(uow, who, now=_instant(now), **kwargs)
    console.print(f"steps done {done.steps_done}, stopped {done.steps_stopped}; reached {done.contacted:,}: "
                  f"messages {done.messages:,}, visit tasks {done.visit_tasks:,}")


@campaign_app.command("list")
@user_errors
def campaign_list(tenant: Tenant) -> None:
    """The tenant's campaigns."""
    uow, who = tenant_principal(tenant)
    table = Table("id", "name", "channel", "status", "control", "launched")
    for c in service.list_campaigns(uow, who):
        table.add_row(str(c.id), c.name, c.channel, c.status, f"{c.control_share_bp / 100:.1f}%",
                      c.launched_at.isoformat() if c.launched_at else "")
    console.print(table)


@campaign_app.command("tasks")
@user_errors
def campaign_tasks(
    tenant: Tenant,
    officer: Annotated[int | None, typer.Option(help="Only this officer's (user id)")] = None,
) -> None:
    """Open visit tasks for loan officers."""
    uow, who = tenant_principal(tenant)
    table = Table("task", "campaign", "customer", "officer", "created")
    for t in service.visit_tasks(uow, who, officer_user_id=officer):
        table.add_row(str(t.id), t.campaign_name, str(t.customer_id), str(t.officer_user_id or ""),
                      t.created_at.isoformat())
    console.print(table)


@app.command("report")
@user_errors
def report(
    tenant: Tenant,
    campaign_ids: Annotated[list[int], typer.Argument(help="One or more campaign ids")],
    out: Annotated[Path, typer.Option("--out", help="HTML file to write; the JSON goes beside it")],
) -> None:
    """Funnel, treatment vs control with its confidence interval, and costs: one HTML file plus JSON."""
    uow, who = tenant_principal(tenant)
    result = service.campaign_report(uow, who, campaign_ids)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(result.to_html(), encoding="utf-8")
    out.with_suffix(".json").write_text(result.to_json(), encoding="utf-8")
    lift = result.comparisons[1]
    console.print(f"wrote {out} and {out.with_suffix('.json').name}: disbursed {lift.treatment_rate:.2%} treated "
                  f"vs {lift.control_rate:.2%} control, difference {lift.difference * 100:+.2f} pp "
                  f"[{lift.low * 100:+.2f}, {lift.high * 100:+.2f}]")


@app.command("uplift")
@user_errors
def uplift(
    tenant: Tenant,
    campaign_ids: Annotated[list[int], typer.Argument(help="Past campaigns with control groups to learn from")],
    customers: Annotated[Path, typer.Option("--customers", help="Customer features (.parquet or .csv)")],
    features: Annotated[str, typer.Option(help="Comma-separated feature columns the model uses")],
    out: Annotated[Path, typer.Option("--out", help="Ranked targets (.parquet); the report goes beside it")],
    stage: Annotated[str, typer.Option(help="Conversion to model: applied, approved or disbursed")] = "disbursed",
    method: Annotated[str, typer.Option(help="two_model or class_transformation")] = "two_model",
) -> None:
    """Train an uplift model on past campaigns (30% held out for the Qini curve) and rank the customers."""
    from microlend.marketing.uplift import rank_targets, uplift_report_html

    if method not in ("two_model", "class_transformation"):
        raise fail("method: two_model or class_transformation")
    names = [f.strip() for f in features.split(",") if f.strip()]
    frame = _read_customers(customers)
    missing = [f for f in names if f not in frame.columns]
    if not names or missing:
        raise fail(f"features: {', '.join(missing) or 'none given'} not in {customers.name}")
    uow, who = tenant_principal(tenant)
    trained = service.train_uplift(uow, who, campaign_ids, frame, names, stage=stage, method=method)
    if trained.model is None or trained.evaluation is None:
        raise fail(trained.detail)
    result = trained.evaluation
    ranked = rank_targets(trained.model, frame, names)
    out.parent.mkdir(parents=True, exist_ok=True)
    ranked.write_parquet(out)
    out.with_suffix(".html").write_text(uplift_report_html(result), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps({
        "method": method, "stage": stage, "campaigns": campaign_ids, "features": names, "qini_area": result.qini_area,
        "auuc_normalised": result.auuc_normalised,
        "qini_coefficient": result.qini_coefficient, "uplift_at": result.uplift_at,
        "qini_curve": {"x": result.curve[0], "q": result.curve[1]}}, indent=2), encoding="utf-8")
    console.print(f"held out {trained.held_out:,} customers: Qini area {result.qini_area:.4f}, "
                  f"AUUC (normalised) {result.auuc_normalised:.4f}, "
                  f"Qini {result.qini_coefficient:.4f}, "
                  + ", ".join(f"top {k} {v * 100:+.2f} pp" for k, v in result.uplift_at.items())
                  + f"; ranked {ranked.height:,} customers into {out}")
