"""`microlend federation ...`: joint modelling with a data partner (联合建模) from the command line (thin adapter
over microlend.risk.federation): the partnership key, the partner's server, joint training and scoring."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from microlend.cli.common import check_bind, fail, guarded
from microlend.core.clock import SystemClock
from microlend.core.errors import DomainError, ValidationError
from microlend.risk.reasons import messages_for_codes

app = typer.Typer(name="federation", help="Joint modelling with a data partner: neither side hands over its data.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
partner_app = typer.Typer(help="The partner's side.", no_args_is_help=True)
app.add_typer(partner_app, name="partner")
if TYPE_CHECKING:
    from microlend.core.identity import Principal
    from microlend.core.uow import UnitOfWork
    from microlend.risk.federation.partnerships import Partnership

_err = Console(stderr=True)
_out = Console()

KeyOpt = Annotated[Path, typer.Option("--key-file", help="the partnership key (`microlend federation keygen`)")]
PartnerOpt = Annotated[str, typer.Option("--partner", help="the partner's URL, e.g. http://10.0.0.5:8700")]
IdOpt = Annotated[str, typer.Option("--id-column", help="column holding the ID number")]
#: how long a training run's whole exchange with the partner may take by default (minutes)
DEFAULT_DEADLINE_MIN = 120.0


class Kind(StrEnum):
    lr = "lr"
    secureboost = "secureboost"


@app.command()
def keygen(key: Annotated[Path, typer.Argument(help="file to write (0600); never overwritten")]) -> None:
    """Make a new partnership key; give the same file to the partner over a secure channel."""
    from microlend.risk.federation.keys import generate_key

    with guarded():
        fingerprint = generate_key(key)
    _out.print(f"partnership key written to {key} (fingerprint {fingerprint}); share it only with the partner",
               highlight=False)


@partner_app.command("serve")
def partner_serve(
    data: Annotated[Path, typer.Option("--data", help="the partner's features (CSV or Parquet)")],
    id_column: IdOpt,
    key_file: KeyOpt,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8700,
    state_dir: Annotated[Path, typer.Option("--state-dir", help="request log, transcript and model parts")]
    = Path("federation-partner"),
    keep_messages: Annotated[bool, typer.Option("--keep-messages", help="also keep every message body "
                                                "(for an audit)")] = False,
) -> None:
    """Serve the partner's side of the protocol; the features never leave this process in clear."""
    import uvicorn

    from microlend.cli.common import read_table
    from microlend.risk.federation.keys import PartnershipKey
    from microlend.risk.federation.partner import PartnerService
    from microlend.risk.federation.server import create_app

    with guarded(library_errors=True):
        if not 1 <= port <= 65535:
            raise ValidationError("port: must be between 1 and 65535", field="port")
        check_bind(host)
        key = PartnershipKey.load(key_file)
        service = PartnerService(read_table(data), id_column, key, state_dir)
        web = create_app(service, key, state_dir, keep_bodies=keep_messages)
    _err.print(f"partner serving {len(service.hashes)} IDs and {len(service.features)} features on "
               f"http://{host}:{port} (key {key.fingerprint}); log in {state_dir}", highlight=False)
    uvicorn.run(web, host=host, port=port, log_level="warning", access_log=False)


def _check_partnership(name: str, tenant: str | None, user: str | None, fingerprint: str,
                       url: str) -> tuple[UnitOfWork, Principal, Partnership]:
    from microlend.cli.common import open_uow, user_principal
    from microlend.risk.federation.partnerships import partnership_for_training

    if not tenant or not user:
        raise ValidationError("partnership: give --tenant and --user with --partnership", field="partnership")
    uow = open_uow()
    who = user_principal(uow, user, tenant)
    return uow, who, partnership_for_training(uow, who, name, on=SystemClock().today(), key_fingerprint=fingerprint,
                                              endpoint_url=url)


def _failure(exc: BaseException) -> str:
    """The error of a failed run as the command's user reads it."""
    if isinstance(exc, DomainError):
        return exc.message
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), console=_err, transient=False)


@app.command()
def train(
    partner: PartnerOpt,
    key_file: KeyOpt,
    data: Annotated[Path, typer.Option("--data", help="the bank's labelled data (CSV or Parquet)")],
    id_column: IdOpt,
    target: Annotated[str, typer.Option("--target", help="column holding the outcome")],
    bad: Annotated[str, typer.Option("--bad", help="value of the target that means bad")],
    out: Annotated[Path, typer.Option("--out", help="directory for the bank's part of the model")],
    kind: Annotated[Kind, typer.Option("--kind")] = Kind.lr,
    key_bits: Annotated[int, typer.Option("--key-bits", help="Paillier key size")] = 2048,
    epochs: Annotated[int, typer.Option("--epochs", help="at most this many passes")] = 8,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 1000,
    learning_rate: Annotated[float, typer.Option("--learning-rate", help="the first epoch's step; later epochs take "
                                                 "it divided by 1 + (epoch - 1)")] = 1.0,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    keep_messages: Annotated[bool, typer.Option("--keep-messages", help="also keep every message body in "
                                                "OUT/messages (for an audit)")] = False,
    partnership: Annotated[str | None, typer.Option("--partnership", help="the partnership's name in the bank's "
                                                    "records: training is refused unless it is active, within its "
                                                    "dates, under this key and at this URL")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="bank name (with --partnership)")] = None,
    user: Annotated[str | None, typer.Option("--user", help="username acting (with --partnership)")] = None,
    deadline: Annotated[float, typer.Option("--deadline", help="minutes the whole exchange with the partner may "
                                            "take before the run stops")] = DEFAULT_DEADLINE_MIN,
) -> None:
    """Train a joint logistic regression with the partner: PSI on hashed IDs, then Paillier-encrypted, masked
    gradients; early stopping on the bank's validation fold. With --partnership the bank's record of the partner
    is checked first (a suspended or expired partnership refuses the run)."""
    from microlend.cli.common import read_table
    from microlend.risk.federation.client import PartnerClient
    from microlend.risk.federation.keys import PartnershipKey, Transcript
    from microlend.risk.federation.runs import RunRecorder, fail_run, finish_run, start_run
    from microlend.risk.federation.training import TRANSCRIPT_FILE, TrainingSettings, train_joint

    if kind is Kind.secureboost:
        raise fail("kind: secureboost is not available yet; use --kind lr")
    with guarded(library_errors=True):
        settings = TrainingSettings(key_bits=key_bits, max_epochs=epochs, batch_size=batch_size,
                                    learning_rate=learning_rate, seed=seed)
        key = PartnershipKey.load(key_file)
        recorded = _check_partnership(partnership, tenant, user, key.fingerprint, partner) if partnership else None
        frame = read_table(data)
        out.mkdir(parents=True, exist_ok=True)
        transcript = Transcript(out / TRANSCRIPT_FILE, out / "messages" if keep_messages else None)
        if not deadline > 0:
            raise ValidationError("deadline: give the minutes the run may take (more than 0)", field="deadline")
        run_id, recorder = None, None
        if recorded is not None:  # the run in the bank's records, its progress written as it goes
            uow, who, agreed = recorded
            run_id = start_run(uow, who, agreed, settings={
                "max_epochs": epochs, "batch_size": batch_size, "key_bits": key_bits, "learning_rate": learning_rate,
                "seed": seed, "deadline_minutes": deadline, "data": data.name, "rows": len(frame)}).id
            recorder = RunRecorder(uow, who, run_id)
        try:
            with PartnerClient(partner, key, transcript, deadline=deadline * 60) as client, _progress() as bar:
                task = bar.add_task("joint training", total=None)

                def step(phase: str, done: int, total: int) -> None:
                    bar.update(task, description=f"joint training: {phase}", completed=done, total=total)
                    if recorder is not None:
                        recorder(phase, done, total)

                model = train_joint(frame, id_column=id_column, target=target, bad=bad, partner=client,
                                    partner_url=partner, key=key, settings=settings, progress=step,
                                    created_at=SystemClock().now().isoformat())
            model.save(out)
        except BaseException as exc:
            if recorded is not None and run_id is not None:
                fail_run(recorded[0], recorded[1], run_id, _failure(exc))
            raise
        if recorded is not None and run_id is not None:
            finish_run(recorded[0], recorded[1], run_id, model_id=model.model_id, metrics=model.metrics)
            _err.print(f"training run {run_id} recorded under partnership '{recorded[2].name}'", highlight=False)
    m = model.metrics
    _out.print(f"joint model {model.model_id} written to {out}: {m['shared_ids']} shared IDs, validation AUC "
               f"{m['valid_auc_joint']:.4f} joint vs {m['valid_auc_bank_only']:.4f} bank only "
               f"(partner adds {m['partner_contribution_auc']:+.4f}); {len(model.features)} bank and "
               f"{len(model.partner_features)} partner features", highlight=False)


@app.command()
def score(
    model: Annotated[Path, typer.Option("--model", help="the joint model's directory")],
    partner: PartnerOpt,
    key_file: KeyOpt,
    data: Annotated[Path, typer.Option("--data", help="CSV or Parquet file to score")],
    out: Annotated[Path, typer.Option("--out", help="CSV or Parquet file to write")],
    id_column: Annotated[str | None, typer.Option("--id-column", help="column holding the ID number (default: "
                                                  "the one used in training)")] = None,
    locale: Annotated[str, typer.Option("--locale", help="language of reason_text: en or zh-CN")] = "en",
    top_n: Annotated[int, typer.Option("--reasons", help="reason codes per case")] = 3,
) -> None:
    """Write the input rows plus pd, score (higher is safer), reasons and partner_found; the partner returns its
    partial score for the requested IDs only."""
    import pandas as pd

    from microlend.cli.common import read_table, write_table
    from microlend.risk.federation.client import PartnerClient
    from microlend.risk.federation.keys import PartnershipKey
    from microlend.risk.federation.training import JointModel, score_joint

    with guarded(library_errors=True):
        joint = JointModel.load(model)
        key = PartnershipKey.load(key_file)
        frame = read_table(data)
        column = id_column or str(joint.settings.get("id_column", ""))
        if not column:
            raise ValidationError("id-column: give the column holding the ID number", field="id-column")
        with PartnerClient(partner, key) as client:
            scored = score_joint(joint, frame, id_column=column, partner=client, key=key, top_n=top_n)
        result = frame.copy()
        result["pd"] = scored["pd"].to_numpy()
        result["score"] = scored["score"].round(2).to_numpy()
        result["reasons"] = scored["reasons"].to_numpy()
        texts = {codes: messages_for_codes(codes, locale) for codes in pd.unique(scored["reasons"])}
        result["reason_text"] = scored["reasons"].map(texts).to_numpy()
        result["partner_found"] = scored["partner_found"].to_numpy()
        write_table(result, out)
    missing = int((~scored["partner_found"]).sum())
    _out.print(f"scored {len(result)} rows with joint model {joint.model_id} into {out}"
               + (f"; the partner holds no record of {missing} (scored with its neutral contribution)"
                  if missing else ""), highlight=False)


# --- the bank's record of its data partners ----------------------------------------------------------------

partnership_app = typer.Typer(help="The bank's data partnerships: who, where, which key, purpose, contract, dates.",
                              no_args_is_help=True)
app.add_typer(partnership_app, name="partnership")
TenantOpt = Annotated[str, typer.Option("--tenant", help="bank name")]
UserOpt = Annotated[str, typer.Option("--user", help="username acting")]


def _show(p: object) -> str:
    from microlend.risk.federation.partnerships import Partnership

    assert isinstance(p, Partnership)
    return (f"{p.id}  {p.name}  {p.status}  {p.endpoint_url}  key {p.key_fingerprint}  "
            f"{p.valid_from.isoformat()}..{p.valid_to.isoformat()}  contract {p.contract_ref}  ({p.purpose})  "
            f"features {','.join(p.features) or '-'}  consent basis: {p.consent_basis or '-'}")


@partnership_app.command("add")
def partnership_add(
    tenant: TenantOpt, user: UserOpt,
    name: Annotated[str, typer.Option("--name", help="the partner's name")],
    endpoint: Annotated[str, typer.Option("--endpoint", help="the partner's federation server URL")],
    purpose: Annotated[str, typer.Option("--purpose", help="what the partner's data is used for")],
    contract: Annotated[str, typer.Option("--contract", help="the contract's reference")],
    valid_from: Annotated[str, typer.Option("--from", help="first day, YYYY-MM-DD")],
    valid_to: Annotated[str, typer.Option("--to", help="last day (the expiry), YYYY-MM-DD")],
    features: Annotated[str, typer.Option("--features", help="the partner's features the partnership covers, "
                                          "comma-separated names")],
    consent_basis: Annotated[str, typer.Option("--consent-basis", help="the consent or legal basis of the data use, "
                                               "e.g. the applicant's partner_scoring consent")],
    key_file: Annotated[Path | None, typer.Option("--key-file", help="the partnership key: only its fingerprint "
                                                  "is recorded")] = None,
    fingerprint: Annotated[str | None, typer.Option("--fingerprint", help="the key's fingerprint, when the key "
                                                    "is not on this machine")] = None,
) -> None:
    """Record a data partner (risk analyst or admin); the key itself is never stored."""
    from microlend.cli.common import open_uow, user_principal
    from microlend.risk.federation.online import install_key
    from microlend.risk.federation.partnerships import PartnershipCreate, register_partnership

    with guarded(library_errors=True):
        if (key_file is None) == (fingerprint is None):
            raise ValidationError("key: give --key-file or --fingerprint (one of them)", field="key")
        # the bank's copy of the key goes to its key store (for the online path); the database gets its fingerprint
        print_ = install_key(key_file) if key_file is not None else str(fingerprint)
        cmd = PartnershipCreate(name=name, endpoint_url=endpoint, key_fingerprint=print_, purpose=purpose,
                                contract_ref=contract, valid_from=_day(valid_from, "from"),
                                valid_to=_day(valid_to, "to"), features=tuple(features.split(",")),
                                consent_basis=consent_basis)
        uow = open_uow()
        p = register_partnership(uow, user_principal(uow, user, tenant), cmd)
    _out.print(f"partnership recorded: {_show(p)}", highlight=False)


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"{name}: '{text}' is not a date (YYYY-MM-DD)", field=name) from None


@partnership_app.command("list")
def partnership_list(tenant: TenantOpt, user: UserOpt,
                     status: Annotated[str | None, typer.Option("--status", help="active or suspended")] = None,
                     ) -> None:
    from microlend.cli.common import open_uow, user_principal
    from microlend.risk.federation.partnerships import list_partnerships

    with guarded(library_errors=True):
        uow = open_uow()
        found = list_partnerships(uow, user_principal(uow, user, tenant), status=status)
    for p in found:
        _out.print(_show(p), highlight=False)
    if not found:
        _out.print("no partnerships", highlight=False)


def _set_status(tenant: str, user: str, partnership_id: int, status: str, reason: str) -> None:
    from microlend.cli.common import open_uow, user_principal
    from microlend.risk.federation.partnerships import set_status

    with guarded(library_errors=True):
        uow = open_uow()
        p = set_status(uow, user_principal(uow, user, tenant), partnership_id, status, reason=reason)
    _out.print(_show(p), highlight=False)


IdOption = Annotated[int, typer.Option("--id", help="partnership id")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="why (audited)")]


@partnership_app.command("suspend")
def partnership_suspend(tenant: TenantOpt, user: UserOpt, partnership_id: IdOption, reason: ReasonOpt) -> None:
    """Suspend a partnership: its joint models fall back to the bank's own model at once."""
    _set_status(tenant, user, partnership_id, "suspended", reason)


@partnership_app.command("activate")
def partnership_activate(tenant: TenantOpt, user: UserOpt, partnership_id: IdOption, reason: ReasonOpt) -> None:
    _set_status(tenant, user, partnership_id, "active", reason)


@app.command("register")
def register_command(
    model: Annotated[Path, typer.Option("--model", help="the joint model's directory (`federation train --out`)")],
    partnership: Annotated[str, typer.Option("--partnership", help="the partnership's name")],
    tenant: TenantOpt,
    user: Annotated[str | None, typer.Option("--user", help="must be the signed-in person (`microlend login`)")]
    = None,
    name: Annotated[str, typer.Option("--name", help="the model's name in the registry")] = "",
) -> None:
    """Register a joint model as a draft in the bank's model registry (kind hetero-lr), under its partnership:
    its validation report, gates, validation and four-eyes approval are those of every model."""
    from microlend.cli.common import open_uow
    from microlend.cli.session import signed_in_person
    from microlend.risk.federation.partnerships import find_partnership
    from microlend.risk.federation.runs import link_model_version
    from microlend.risk.federation.training import JointModel
    from microlend.risk.joint_models import register_joint_model

    with guarded(library_errors=True):
        uow = open_uow()
        who = signed_in_person(uow, "register", user, tenant)
        p = find_partnership(uow, who, partnership)
        v = register_joint_model(uow, who, model, partnership_id=p.id, on=SystemClock().today(), name=name)
        link_model_version(uow, who, model_id=JointModel.load(model).model_id, version_id=v.id)
    m = v.metrics
    _out.print(f"registered {v.label} (id {v.id}, {v.kind}): {v.status}; validation AUC "
               f"{m['test']['auc']:.4f} joint vs {m['sides']['bank_only']['auc']:.4f} bank only", highlight=False)
