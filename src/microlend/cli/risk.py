"""`microlend risk ...`: train, score and validate models from CSV or Parquet files (thin adapter)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from microlend.cli.common import guarded, open_uow, read_table, user_principal, write_table
from microlend.core.clock import SystemClock
from microlend.core.errors import ValidationError
from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.risk import registry
from microlend.risk.artefacts import load_model
from microlend.risk.development import STEPS, develop_model, validate_on
from microlend.risk.gates import GateResult, failures
from microlend.risk.reasons import messages_for_codes

app = typer.Typer(name="risk", help="Risk models: train, score and validate.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
_err = Console(stderr=True)
_out = Console()


class Kind(StrEnum):
    scorecard = "scorecard"
    gbdt = "gbdt"


@contextmanager
def _steps(title: str) -> Iterator[Callable[[str], None]]:
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=_err, transient=False) as progress:
        task = progress.add_task(title, total=len(STEPS))
        seen: list[str] = []

        def step(name: str) -> None:
            if seen:
                progress.advance(task)
            seen.append(name)
            progress.update(task, description=f"{title}: {name}")

        yield step
        progress.update(task, completed=len(STEPS), description=f"{title}: done")


@app.command()
def train(
    data: Annotated[Path, typer.Option("--data", help="labelled CSV or Parquet file")],
    target: Annotated[str, typer.Option("--target", help="column holding the outcome")],
    bad: Annotated[str, typer.Option("--bad", help="value of the target that means bad")],
    out: Annotated[Path, typer.Option("--out", help="directory for the model and its report")],
    kind: Annotated[Kind, typer.Option("--kind", help="scorecard or gbdt")] = Kind.scorecard,
    date_column: Annotated[str | None, typer.Option("--date-column", help="date column for an out-of-time "
                                                    "sample")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    name: Annotated[str, typer.Option("--name", help="a name shown in the report and the registry")] = "",
    register: Annotated[bool, typer.Option("--register", help="register the model as a draft")] = False,
    tenant: Annotated[str | None, typer.Option("--tenant", help="bank to register in")] = None,
    user: Annotated[str | None, typer.Option("--user", help="the trainer: must be the signed-in person "
                                             "(`microlend login`)")] = None,
    contract: Annotated[Path | None, typer.Option("--contract", help="data contract (JSON) declaring ordered "
                                                  "categories, monotone directions and reason wording")] = None,
) -> None:
    """Train, validate against the other model kind, and write the model plus report.html and report.json.
    The sample must meet the model gates' minimum rows and bads (the bank's, with --register; else defaults)."""
    from microlend.data.contracts import load_contract

    with guarded(library_errors=True):
        if register and not tenant:
            raise ValidationError("register: give --tenant (and sign in) to register the model", field="register")
        declared = load_contract(contract) if contract is not None else None
        ordinal = declared.ordinal_columns() if declared is not None else {}
        gates = None
        if register and tenant:
            uow = open_uow()
            gates = registry.model_gates(uow, _person(uow, "register", user, tenant))
        frame = read_table(data)
        with _steps(f"training {kind.value}") as step:
            dev = develop_model(frame, target=target, bad=bad, kind=kind.value, out_dir=out,
                                created_at=SystemClock().now(), date_column=date_column, seed=seed,
                                name=name, progress=step, gates=gates, ordinal=ordinal,
                                monotone=declared.monotone_columns() if declared is not None else None,
                                reason_wording=declared.reason_wording() if declared is not None else None)
        for warning in dev.report["extra"].get("warnings", []):
            _err.print(f"[bold yellow]warning:[/] {escape(warning)}", highlight=False)
        test = dev.report["samples"]["test"]["metrics"]
        _out.print(f"{kind.value} with {len(dev.artefact.model.features)} features written to {out}: "
                   f"test AUC {test['auc']:.4f}, Gini {test['gini']:.4f}, KS {test['ks']:.4f}; "
                   f"content hash {dev.artefact.metadata.content_hash[:12]}", highlight=False)
        failed = failures([GateResult(**r) for r in dev.report["gates"]["results"]])
        _out.print("model gates: " + ("all passed" if not failed else "FAILED " + "; ".join(failed)
                                      + " (it cannot be validated)"), highlight=False)
        if register and tenant:
            uow = open_uow()
            version = registry.register_model(uow, _person(uow, "register", user, tenant), out, name=name)
            _out.print(f"registered as {version.label} (id {version.id}, {version.status})", highlight=False)


@app.command()
def score(
    model: Annotated[Path, typer.Option("--model", help="model directory")],
    data: Annotated[Path, typer.Option("--data", help="CSV or Parquet file to score")],
    out: Annotated[Path, typer.Option("--out", help="CSV or Parquet file to write")],
    locale: Annotated[str, typer.Option("--locale", help="language of reason_text: en or zh-CN")] = "en",
    top_n: Annotated[int, typer.Option("--reasons", help="reason codes per case")] = 3,
) -> None:
    """Write the input rows plus pd (probability of bad), score (higher is safer) and reasons."""
    with guarded(library_errors=True):
        artefact = load_model(model)
        frame = read_table(data)
        scored = artefact.model.score_batch(frame, top_n=top_n)
        result = frame.copy()
        result["pd"] = scored["pd"].to_numpy()
        result["score"] = scored["score"].round(2).to_numpy()
        result["reasons"] = scored["reasons"].to_numpy()
        texts = {codes: messages_for_codes(codes, locale) for codes in pd.unique(scored["reasons"])}
        result["reason_text"] = scored["reasons"].map(texts).to_numpy()
        unseen = 0
        if "unseen" in scored.columns:
            result["unseen"] = scored["unseen"].to_numpy()
            unseen = int((scored["unseen"] > 0).sum())
        write_table(result, out)
    _out.print(f"scored {len(result)} rows with {artefact.metadata.kind} "
               f"{artefact.metadata.content_hash[:12]} into {out}"
               + (f"; {unseen} rows had a category never seen in training (scored at its lowest points)"
                  if unseen else ""), highlight=False)


@app.command()
def report(
    model: Annotated[Path, typer.Option("--model", help="model directory")],
    data: Annotated[Path, typer.Option("--data", help="labelled CSV or Parquet file")],
    out: Annotated[Path, typer.Option("--out", help="HTML file to write (JSON is written next to it)")],
) -> None:
    """Validate a saved model on any labelled data: one HTML file with charts, plus JSON."""
    with guarded(library_errors=True):
        if out.suffix.lower() not in (".html", ".htm"):
            raise ValidationError(f"out: use an .html file name, not '{out.name}'", field="out")
        artefact = load_model(model)
        frame = read_table(data)
        out.parent.mkdir(parents=True, exist_ok=True)
        result = validate_on(artefact, frame, out, out.with_suffix(".json"))
    m = result["samples"]["data"]["metrics"]
    _out.print(f"report written to {out}: AUC {m['auc']:.4f}, KS {m['ks']:.4f} on {int(m['count'])} rows",
               highlight=False)


@app.command()
def points(
    model: Annotated[Path, typer.Option("--model", help="scorecard model directory")],
    out: Annotated[Path, typer.Option("--out", help=".csv or .xlsx file to write")],
) -> None:
    """Export a scorecard's points table (feature, bin, points, WoE, count) or an expert scorecard's (with neutral
    points, reason codes and rationale) to CSV or Excel."""
    from microlend.risk.expert import ExpertScorecardModel
    from microlend.risk.scorecard import ScorecardModel

    with guarded(library_errors=True):
        artefact = load_model(model)
        if not isinstance(artefact.model, ScorecardModel | ExpertScorecardModel):
            raise ValidationError(f"model: a points table exists for scorecards, not for {artefact.metadata.kind}",
                                  field="model")
        out.parent.mkdir(parents=True, exist_ok=True)
        artefact.model.export_points_table(out)
    _out.print(f"points table written to {out}", highlight=False)


@app.command()
def monitor(
    model: Annotated[Path, typer.Option("--model", help="model directory")],
    data: Annotated[Path, typer.Option("--data", help="live CSV or Parquet file (outcomes optional)")],
    out: Annotated[Path, typer.Option("--out", help="JSON file to write")],
    date_column: Annotated[str | None, typer.Option("--date-column", help="application date, for AUC/KS "
                                                    "by month")] = None,
    development: Annotated[Path | None, typer.Option("--development", help="development sample (needed "
                                                     "for a GBDT's per-feature stability)")] = None,
) -> None:
    """PSI of live scores and CSI per feature against development (watch from 0.10, act from 0.25)."""
    import json

    from microlend.risk.monitoring import monitor as run_monitor

    with guarded(library_errors=True):
        artefact = load_model(model)
        live = read_table(data)
        dev = read_table(development, "development") if development is not None else None
        result = run_monitor(artefact, live, date_column=date_column, development=dev)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    worst = result["characteristics"][0] if result["characteristics"] else None
    _out.print(f"score PSI {result['score']['psi']:.4f} ({result['score']['status']})"
               + (f"; largest CSI {worst['feature']} {worst['csi']:.4f} ({worst['status']})" if worst else ""),
               highlight=False)


# --- registry ------------------------------------------------------------------------------------------

TenantOpt = Annotated[str, typer.Option("--tenant", help="bank name")]
UserOpt = Annotated[str, typer.Option("--user", help="username acting")]
IdOpt = Annotated[int, typer.Option("--id", help="model version id")]
PersonOpt = Annotated[str | None, typer.Option("--user", help="must be the signed-in person (`microlend login`)")]


def _person(uow: UnitOfWork, act: str, user: str | None, tenant: str) -> Principal:
    """A four-eyes act is done by the person signed in with `microlend login`, never by a name alone."""
    from microlend.cli.session import signed_in_person

    return signed_in_person(uow, act, user, tenant)


@app.command("register")
def register_command(model: Annotated[Path, typer.Option("--model", help="model directory")], tenant: TenantOpt,
                     user: PersonOpt = None, name: Annotated[str, typer.Option("--name")] = "") -> None:
    """Register a trained model in a bank's registry as a draft (the user is recorded as trainer)."""
    with guarded(library_errors=True):
        uow = open_uow()
        v = registry.register_model(uow, _person(uow, "register", user, tenant), model, name=name)
    _out.print(f"registered {v.label} (id {v.id}): {v.status}", highlight=False)


@app.command("mark-validated")
def mark_validated_command(version_id: IdOpt, tenant: TenantOpt, user: PersonOpt = None,
                           note: Annotated[str, typer.Option("--note")] = "") -> None:
    """A model validator (not the trainer) validates a draft that passes every model gate."""
    with guarded(library_errors=True):
        uow = open_uow()
        v = registry.mark_validated(uow, _person(uow, "mark-validated", user, tenant), version_id, note=note)
    _out.print(f"{v.label} (id {v.id}): {v.status} by {v.validated_by_name}", highlight=False)


@app.command("gates")
def gates_command(tenant: TenantOpt, user: UserOpt,
                  set_: Annotated[list[str] | None, typer.Option("--set", help="gate=value, e.g. min_rows=500 "
                                                                 "(admin)")] = None) -> None:
    """Show the bank's model gates, or change some of them with --set."""
    with guarded(library_errors=True):
        uow = open_uow()
        who = user_principal(uow, user, tenant)
        if set_:
            changes: dict[str, float | int] = {}
            for item in set_:
                key, sep, value = item.partition("=")
                if not sep:
                    raise ValidationError(f"set: use gate=value, not '{item}'", field="set")
                try:
                    changes[key.strip()] = int(value) if key.strip() in ("min_rows", "min_bads") else float(value)
                except ValueError:
                    raise ValidationError(f"{key.strip()}: '{value}' is not a number", field=key.strip()) from None
            gates = registry.set_model_gates(uow, who, changes)
        else:
            gates = registry.model_gates(uow, who)
    for key, value in gates.to_dict().items():
        _out.print(f"{key} = {value}", highlight=False)


@app.command("approve")
def approve_command(version_id: IdOpt, tenant: TenantOpt, user: PersonOpt = None,
                    note: Annotated[str, typer.Option("--note")] = "") -> None:
    """Approve a validated model (a risk analyst or admin who neither trained nor validated it)."""
    with guarded(library_errors=True):
        uow = open_uow()
        v = registry.approve_model(uow, _person(uow, "approve", user, tenant), version_id, note=note)
    _out.print(f"{v.label} (id {v.id}): {v.status} by {v.approved_by_name}", highlight=False)


@app.command("promote")
def promote_command(version_id: IdOpt, tenant: TenantOpt, user: PersonOpt = None,
                    role: Annotated[str, typer.Option("--role", help="champion or challenger")] = "champion",
                    ) -> None:
    """Put an approved model in use as champion or challenger; the one it replaces is retired."""
    with guarded(library_errors=True):
        uow = open_uow()
        v = registry.promote_model(uow, _person(uow, "promote", user, tenant), version_id, role)
    _out.print(f"{v.label} (id {v.id}): {v.status}", highlight=False)


@app.command("retire")
def retire_command(version_id: IdOpt, tenant: TenantOpt, user: UserOpt,
                   reason: Annotated[str, typer.Option("--reason")] = "") -> None:
    with guarded(library_errors=True):
        uow = open_uow()
        v = registry.retire_model(uow, user_principal(uow, user, tenant), version_id, reason=reason)
    _out.print(f"{v.label} (id {v.id}): {v.status}", highlight=False)


@app.command("models")
def models_command(tenant: TenantOpt, user: UserOpt,
                   status: Annotated[str | None, typer.Option("--status")] = None,
                   as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List a bank's model versions."""
    import json

    from rich.table import Table

    with guarded(library_errors=True):
        uow = open_uow()
        versions = registry.list_model_versions(uow, user_principal(uow, user, tenant), status=status)
    if as_json:
        print(json.dumps([{"id": v.id, "name": v.name, "version": v.version, "kind": v.kind, "status": v.status,
                           "content_hash": v.content_hash, "metrics": v.metrics, "trained_by": v.trained_by_name,
                           "approved_by": v.approved_by_name} for v in versions], ensure_ascii=False))
        return
    table = Table("id", "name", "version", "kind", "status", "test AUC", "trained by", "approved by")
    for v in versions:
        auc = v.metrics.get("test", {}).get("auc")
        shown = ("n/a (expert judgement)" if v.kind == "expert" else "") if auc is None else f"{auc:.4f}"
        table.add_row(str(v.id), v.name, str(v.version), v.kind, v.status, shown,
                      v.trained_by_name, v.approved_by_name or "")
    _out.print(table)
