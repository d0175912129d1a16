"""Pages of the risk analyst (风险分析师): datasets (upload, quality report), the model registry (train,
validate, approve with four eyes, promote, retire) and monitoring of a model in use with charts."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from datetime import date
from itertools import pairwise
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup, escape

from microlend.api.deps import Count, Id, UnitOfWorkDep, Version
from microlend.api.security import report_page
from microlend.core.clock import utcnow
from microlend.core.errors import DomainError, NotFound, ValidationError
from microlend.core.identity import Permission, Principal, Role
from microlend.data import service as data_service
from microlend.data.importer import ContractBroken
from microlend.data.quality import default_bad
from microlend.data.service import MAX_UPLOAD_BYTES, import_upload
from microlend.risk import monitoring_runs, registry
from microlend.risk import service as risk_service
from microlend.risk.federation import partnerships
from microlend.risk.federation import runs as training_runs
from microlend.web import i18n
from microlend.web.pages import current_principal, login_redirect, page
from microlend.web.templates import request_locale

router = APIRouter(include_in_schema=False)

NAV: list[tuple[str, str, Permission]] = [
    ("/analyst/datasets", "Datasets", Permission.MANAGE_DATASETS),
    ("/analyst/models", "Models", Permission.VIEW_MODELS),
]

#: status -> badge class on the pages
BADGES = {"draft": "", "validated": "warn", "approved": "warn", "champion": "ok", "challenger": "ok",
          "retired": "bad"}
ACTIONS = ("validate", "approve", "promote", "retire")


def _error(request: Request, who: Principal, exc: DomainError) -> HTMLResponse:
    return page(request, who, "error.html", status_code=exc.status_code, message=exc.message)


def translate(request: Request, msgid: str) -> str:
    return str(i18n.translations(request_locale(request)).gettext(msgid))


def _opened_as_a_page(request: Request) -> bool:
    """A report address opened in the browser's window (not in a page's frame): it gets the app's layout."""
    return request.headers.get("sec-fetch-dest") == "document"


def _signed_in(request: Request, uow: UnitOfWorkDep) -> Principal | Response:
    who = current_principal(request, uow)
    return login_redirect(request) if who is None else who


def _data_dir(request: Request) -> Any:
    return request.app.state.settings.data_dir


# ------------------------------------------------------------------------------------------ datasets


def _datasets_page(request: Request, who: Principal, uow: UnitOfWorkDep, *, status_code: int = 200,
                   error: str | None = None, violations: list[Any] | None = None,
                   form: dict[str, Any] | None = None) -> HTMLResponse:
    datasets = data_service.list_datasets(uow, who)
    latest: dict[str, Any] = {}
    for d in datasets:
        latest.setdefault(d.name, d)
    return page(request, who, "analyst/datasets.html", status_code=status_code, datasets=list(latest.values()),
                versions={n: sum(1 for d in datasets if d.name == n) for n in latest}, error=error,
                violations=violations or [], form=form or {}, max_mb=MAX_UPLOAD_BYTES // (1024 * 1024))


@router.get("/analyst/datasets", response_class=HTMLResponse)
def datasets(request: Request, uow: UnitOfWorkDep) -> Response:
    who = _signed_in(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        return _datasets_page(request, who, uow)
    except DomainError as exc:
        return _error(request, who, exc)


@router.post("/analyst/datasets", response_class=HTMLResponse)
def upload_dataset(
    request: Request, uow: UnitOfWorkDep, name: Annotated[str, Form(max_length=64)],
    file: Annotated[UploadFile, File()], contract: Annotated[str, Form()] = "",
    valid_only: Annotated[bool, Form()] = False,
) -> Response:
    """导入数据集 upload a file; a contract refusal lists each row and column at fault on the same page."""
    who = _signed_in(request, uow)
    if not isinstance(who, Principal):
        return who
    form = {"name": name, "contract": contract, "valid_only": valid_only}
    try:
        result = import_upload(uow, who, data_dir=_data_dir(request), name=name.strip(),
                               filename=file.filename or "", content=file.file.read(MAX_UPLOAD_BYTES + 1),
                               contract_text=contract, valid_only=valid_only)
    except ContractBroken as exc:
        return _datasets_page(request, who, uow, status_code=422, error=exc.message.splitlines()[0],
                              violations=exc.violations[:100], form=form)
    except DomainError as exc:
        if exc.status_code in (401, 403):
            return _error(request, who, exc)
        return _datasets_page(request, who, uow, status_code=exc.status_code, error=exc.message, form=form)
    d = result.dataset
    return RedirectResponse(f"/analyst/datasets/{d.name}?version={d.version}&imported=1", status_code=303)


def _bad_of(columns: list[dict[str, Any]], target: str) -> str:
    """The value of `target` that means bad by its contract's categories ("bad", or 1 of a 0/1 flag)."""
    column = next((c for c in columns if c.get("name") == target), {})
    return default_bad(column.get("categories")) or ""


@router.get("/analyst/datasets/{name}", response_class=HTMLResponse)
def dataset_detail(request: Request, uow: UnitOfWorkDep, name: str, version: Version = None,
                   target: str = "", bad: str = "", imported: Count = 0) -> Response:
    who = _signed_in(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        info = data_service.get_dataset(uow, who, name, version)
        versions = [d for d in data_service.list_datasets(uow, who) if d.name == name]
    except DomainError as exc:
        return _error(request, who, exc)
    columns = [c["name"] for c in info.columns]
    target = target if target in columns else (info.contract.get("target") or "")
    bad = bad or (_bad_of(info.contract.get("columns") or info.columns, target) if target else "")
    quality = f"/analyst/datasets/{info.name}/quality?version={info.version}"
    if target:
        quality += f"&target={target}&bad={bad}"
    return page(request, who, "analyst/dataset.html", d=info, versions=versions, columns=columns, target=target,
                bad=bad, quality_url=quality, imported=bool(imported),
                can_train=who.can(Permission.TRAIN_MODELS))


@router.get("/analyst/datasets/{name}/quality", response_class=HTMLResponse)
def dataset_quality(request: Request, uow: UnitOfWorkDep, name: str, version: Version = None,
                    target: str = "", bad: str = "") -> Response:
    """The self-contained quality report (shown in a frame on the dataset page); opened as a page of its own,
    it is shown inside the app's layout, with a way back."""
    who = _signed_in(request, uow)
    if not isinstance(who, Principal):
        return who
    if _opened_as_a_page(request):
        query = request.url.query
        return page(request, who, "analyst/framed_report.html", title=translate(request, "Data quality report"),
                    subject=name, back_url=f"/analyst/datasets/{quote(name)}" + (f"?{query}" if query else ""),
                    back_label=translate(request, "Back to the dataset"),
                    frame_url=request.url.path + (f"?{query}" if query else ""), extra_url=None, extra_label="")
    try:
        if target and not bad:  # no value named: the target's own "bad" (never a 0 % bad rate of '')
            info = data_service.get_dataset(uow, who, name, version)
            bad = _bad_of(info.contract.get("columns") or info.columns, target)
        report = data_service.dataset_quality_html(uow, who, name, version,
                                                   target=(target or None) if bad else None,
                                                   bad=bad if target else None)
    except DomainError as exc:
        return _error(request, who, exc)
    return report_page(report)


# ------------------------------------------------------------------------------------------ models


def _holdout(v: registry.ModelVersion) -> dict[str, Any]:
    figures: dict[str, Any] = v.metrics.get("test") or v.metrics.get("oot") or v.metrics.get("data") or {}
    return figures


@router.get("/analyst/models", response_class=HTMLResponse)
def models(request: Request, uow: UnitOfWorkDep, status: str = "") -> Response:
    """模型注册 the registry: every version with its status and hold-out AUC, KS and Gini."""
    who = _signed_in(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        versions = list(reversed(registry.list_model_versions(uow, who, status=status or None)))
    except DomainError as exc:
        return _error(request, who, exc)
    return page(request, who, "analyst/models.html", versions=versions, holdout=_holdout, badges=BADGES,
                status=status, statuses=[s.value for s in registry.ModelStatus],
                can_train=who.can(Permission.TRAIN_MODELS))


def _train_form(request: Request, who: Principal, uow: UnitOfWorkDep, *, status_code: int = 200,
                error: str | None = None, form: dict[str, Any] | None = None) -> HTMLResponse:
    all_versions = data_service.list_datasets(uow, who)
    names: dict[str, Any] = {}
    for d in all_versions:
        names.setdefault(d.name, d)
    return page(request, who, "analyst/train.html", status_code=status_code, datasets=list(names.values()),
                error=error, form=form or {}, max_rows=risk_service.MAX_TRAINING_ROWS)


@router.get("/analyst/models/new", response_class=HTMLResponse)
def train_form(request: Request, uow: UnitOfWorkDep, dataset: str = "", target: str = "",
               bad: str = "") -> Response:
    who = _signed_in(request, uow)
    if not isinstance(who, Principal):
        return who
    if not who.can(Permission.TRAIN_MODELS):
        return page(request, who, "error.html", status_code=403, message="forbidden")
    try:
        return _train_form(request, who, uow, form={"dataset": dataset, "target": target, "bad": bad,
                                                    "kind": "scorecard", "seed": 42})
    except DomainError as exc:
        return _error(request, who, exc)


@router.post("/analyst/models", response_class=HTMLResponse)
def train(
    request: Request, uow: UnitOfWorkDep, dataset: Annotated[str, Form(max_length=64)],
    target: Annotated[str, Form(max_length=100)], bad: Annotated[str, Form(max_length=100)],
    kind: Annotated[str, Form(max_length=20)] = "scorecard", date_column: Annotated[str, Form(max_length=100)] = "",
    name: Annotated[str, Form(max_length=100)] = "", seed: Annotated[int, Form(ge=0, le=2**31 - 1)] = 42,
) -> Response:
    """训练模型 train, validate and register a draft in the request (German-credit-sized data: seconds)."""
    who = _signed_in(request, uow)
    if not isinstance(who, Principal):
        return who
    form = {"dataset": dataset, "target": target, "bad": bad, "kind": kind, "date_column": date_column,
            "name": name, "seed": seed}
    cmd = risk_service.TrainingRequest(dataset=dataset, target=target.strip(), bad=bad.strip(), kind=kind,
                                       date_column=date_column.strip() or None, name=name.strip(), seed=seed)
    try:
        version = risk_service.train_from_dataset(uow, who, cmd, store_root=_data_dir(request) / "models")
    except DomainError as exc:
        if exc.status_code in (401, 403):
            return _error(request, who, exc)
        return _train_form(request, who, uow, status_code=exc.status_code, error=exc.message, form=form)
    return RedirectResponse(f"/analyst/models/{version.id}?done=trained", status_code=303)


def _model_page(request: Request, who: Principal, uow: UnitOfWorkDep, version_id: int, *, status_code: int = 200,
                done: str = "", error: str | None = None) -> HTMLResponse:
    v = registry.get_model_version(uow, who, version_id)
    points: dict[str, list[dict[str, Any]]] | None = None
    try:
        table = risk_service.points_table(uow, who, version_id)
    except DomainError:
        table = None
    expert = risk_service.expert_table(uow, who, version_id, request_locale(request)) if v.kind == "expert" else None
    if table is not None and expert is None:
        points = {}
        for row in table.to_dict("records"):
            points.setdefault(row["feature"], []).append(row)
    samples = [(name, v.metrics[name]) for name in ("train", "test", "oot", "data") if name in v.metrics]
    benchmark = v.metrics.get("benchmark") or {}
    trainer = who.user_id == v.trained_by
    involved = trainer or who.user_id == v.validated_by
    approver_role = who.has_role(Role.RISK_ANALYST, Role.ADMIN) and who.can(Permission.APPROVE_MODELS)
    gates = registry.gate_results(uow, who, v)
    return page(
        request, who, "analyst/model.html", status_code=status_code, v=v, samples=samples, benchmark=benchmark,
        points=points, expert=expert, badges=BADGES, has_report=risk_service.has_report(uow, who, version_id),
        done=done, error=error, trainer=trainer, gates=gates,
        can_validate=v.status == "draft" and who.can(Permission.VALIDATE_MODELS) and not trainer
        and gates["passed"],
        can_approve=v.status == "validated" and approver_role and not involved,
        four_eyes=v.status == "validated" and approver_role and involved,
        can_promote=v.status in ("approved", "challenger") and who.can(Permission.APPROVE_MODELS),
        can_retire=v.status != "retired" and who.can(Permission.APPROVE_MODELS),
    )


@router.get("/analyst/models/{version_id}", response_class=HTMLResponse)
def model_detail(request: Request, uow: UnitOfWorkDep, version_id: Id, done: str = "") -> Response:
    who = _signed_in(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        return _model_page(request, who, uow, version_id, done=done if done in (*ACTIONS, "trained") else "")
    except DomainError as exc:
        return _error(request, who, exc)


@router.get("/analyst/models/{version_id}/report", response_class=HTMLResponse)
def model_report(request: Request, uow: UnitOfWorkDep, version_id: Id) -> Response:
    """The validation report stored with the version (shown in a frame on the model page); opened as a page of
    its own, it is shown inside the app's layout, with a way back."""
    who = _signed_in(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        if _opened_as_a_page(request):
            version = registry.get_model_version(uow, who, version_id)
            return page(request, who, "analyst/framed_report.html", title=translate(request, "Validation report"),
                        subject=version.label, back_url=f"/analyst/models/{version_id}",
                        back_label=translate(request, "Back to the model"),
                        frame_url=f"/analyst/models/{version_id}/report",
                        extra_url=f"/api/v1/risk/models/{version_id}/report.xlsx",
                        extra_label=translate(request, "Tables as Excel"))
        return report_page(risk_service.report_html(uow, who, version_id))
    except DomainError as exc:
        return _error(request, who, exc)


# ------------------------------------------------------------------------------------------ model gates

#: the gates' form fields: whole numbers for the sample minimums, decimals for the figures
GATE_FIELDS = {"min_rows": int, "min_bads": int, "min_test_auc": float, "min_test_ks": float,
               "max_auc_gap": float, "max_oot_psi": float}


def _gates_page(request: Request, who: Principal, uow: UnitOfWorkDep, *, status_code: int = 200,
                error: str | None = None, saved: bool = False) -> HTMLResponse:
    gates = registry.model_gates(uow, who)
    return page(request, who, "analyst/gates.html", status_code=status_code, gates=gates.to_dict(),
                fields=list(GATE_FIELDS), can_edit=who.can(Permission.MANAGE_MODEL_GATES), error=error, saved=saved)


PARTNERSHIP_DONE = ("added", "suspended", "active")


def _partnerships_page(request: Request, who: Principal, uow: UnitOfWorkDep, *, status_code: int = 200,
                       error: str | None = None, done: str = "", form: dict[str, str] | None = None) -> HTMLResponse:
    found = partnerships.list_partnerships(uow, who)
    can_manage = who.can(Permission.APPROVE_MODELS) and who.has_role(*partnerships.MANAGER_ROLES)
    return page(request, who, "analyst/partnerships.html", status_code=status_code, partnerships=found,
                badges={"active": "ok", "suspended": "bad"}, can_manage=can_manage, error=error,
                done=done if done in PARTNERSHIP_DONE else "", form=form or {}, today=utcnow().date())


@router.get("/analyst/partnerships", response_class=HTMLResponse)
def partnerships_page(request: Request, uow: UnitOfWorkDep, done: str = "") -> Response:
    """联合建模合作方 the bank's data partners: endpoint, key fingerprint, features, purpose, consent basis, contract,
    validity, status; a risk analyst or admin records one, suspends it or makes it active again."""
    who = _signed_in(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        return _partnerships_page(request, who, uow, done=done)
    except DomainError as exc:
        return _error(request, who, exc)


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"{name}: '{text[:20]}' is not a date (YYYY-MM-DD)", field=name) from None


@router.post("/analyst/partnerships", response_class=HTMLResponse)
def partnership_add(request: Request, uow: UnitOfWorkDep, name: Annotated[str, Form(max_length=100)],
                    endpoint_url: Annotated[str, Form(max_length=300)],
                    key_fingerprint: Annotated[str, Form(max_length=16)],
                    features: Annotated[str, Form(max_length=5000)], purpose: Annotated[str, Form(max_length=500)],
                    consent_basis: Annotated[str, Form(max_length=500)],
                    contract_ref: Annotated[str, Form(max_length=100)], valid_from: Annotated[str, Form(max_length=20)],
                    valid_to: Annotated[str, Form(max_length=20)]) -> Response:
    who = _signed_in(request, uow)
    if not isinstance(who, Principal):
        return who
    form = {"name": name, "endpoint_url": endpoint_url, "key_fingerprint": key_fingerprint, "features": features,
            "purpose": purpose, "consent_basis": consent_basis, "contract_ref": contract_ref,
            "valid_from": valid_from, "valid_to": valid_to}
    try:
        partnerships.register_partnership(uow, who, partnerships.PartnershipCreate(
            name=name, endpoint_url=endpoint_url, key_fingerprint=key_fingerprint, purpose=purpose,
            contract_ref=contract_ref, valid_from=_day(valid_from, "valid_from"), valid_to=_day(valid_to, "valid_to"),
            features=tuple(f for f in features.replace("\n", ",").split(",")), consent_basis=consent_basis))
    except DomainError as exc:
        try:
            return _partnerships_page(request, who, uow, status_code=exc.status_code, error=exc.message, form=form)
        except DomainError as inner:
            return _error(request, who, inner)
    return RedirectResponse("/analyst/partnerships?done=added", status_code=303)


@router.post("/analyst/partnerships/{partnership_id}/status", response_class=HTMLResponse)
def partnership_status(request: Request, uow: UnitOfWorkDep, partnership_id: Id,
                       status: Annotated[str, Form(max_length=20)],
                       reason: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Suspend a partnership (its joint models fall back to the bank's own at once) or make it active again."""
    who = _signed_in(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        changed = partnerships.set_status(uow, who, partnership_id, status, reason=reason)
    except DomainError as exc:
        try:
            return _partnerships_page(request, who, uow, status_code=exc.status_code, error=exc.message)
        except DomainError as inner:
            return _error(request, who, inner)
    return RedirectResponse(f"/analyst/partnerships?done={changed.status}", status_code=303)


@router.get("/analyst/gates", response_class=HTMLResponse)
def gates_page(request: Request, uow: UnitOfWorkDep, saved: str = "") -> Response:
    """The bank's model gates (模型准入门槛): what a model must reach before it can be validated."""
    who = _signed_in(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        return _gates_page(request, who, uow, saved=saved == "1")
    except DomainError as exc:
        return _error(request, who, exc)


@router.post("/analyst/gates", response_class=HTMLResponse)
def gates_save(request: Request, uow: UnitOfWorkDep,
               min_rows: Annotated[str, Form(max_length=20)], min_bads: Annotated[str, Form(max_length=20)],
               min_test_auc: Annotated[str, Form(max_length=20)], min_test_ks: Annotated[str, Form(max_length=20)],
               max_auc_gap: Annotated[str, Form(max_length=20)],
               max_oot_psi: Annotated[str, Form(max_length=20)]) -> Response:
    who = _signed_in(request, uow)
    if not isinstance(who, Principal):
        return who
    raw = {"min_rows": min_rows, "min_bads": min_bads, "min_test_auc": min_test_auc, "min_test_ks": min_test_ks,
           "max_auc_gap": max_auc_gap, "max_oot_psi": max_oot_psi}
    try:
        changes: dict[str, Any] = {}
        for name, kind in GATE_FIELDS.items():
            try:
                changes[name] = kind(raw[name].strip())
            except ValueError:
                raise ValidationError(f"{name}: expected {'a whole number' if kind is int else 'a number'}, "
                                      f"got {raw[name]!r}", field=name) from None
        registry.set_model_gates(uow, who, changes)
    except DomainError as exc:
        try:
            return _gates_page(request, who, uow, status_code=exc.status_code, error=exc.message)
        except DomainError as inner:
            return _error(request, who, inner)
    return RedirectResponse("/analyst/gates?saved=1", status_code=303)


def _act(request: Request, uow: UnitOfWorkDep, version_id: int, action: str,
         run: Callable[[Principal], registry.ModelVersion]) -> Response:
    who = _signed_in(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        run(who)
    except DomainError as exc:
        try:
            return _model_page(request, who, uow, version_id, status_code=exc.status_code, error=exc.message)
        except DomainError as inner:
            return _error(request, who, inner)
    return RedirectResponse(f"/analyst/models/{version_id}?done={action}", status_code=303)


@router.post("/analyst/models/{version_id}/validate", response_class=HTMLResponse)
def validate(request: Request, uow: UnitOfWorkDep, version_id: Id) -> Response:
    return _act(request, uow, version_id, "validate", lambda who: registry.mark_validated(uow, who, version_id))


@router.post("/analyst/models/{version_id}/approve", response_class=HTMLResponse)
def approve(request: Request, uow: UnitOfWorkDep, version_id: Id,
            note: Annotated[str, Form(max_length=2000)] = "") -> Response:
    return _act(request, uow, version_id, "approve",
                lambda who: registry.approve_model(uow, who, version_id, note=note))


@router.post("/analyst/models/{version_id}/promote", response_class=HTMLResponse)
def promote(request: Request, uow: UnitOfWorkDep, version_id: Id,
            role: Annotated[str, Form(max_length=20)] = "champion") -> Response:
    return _act(request, uow, version_id, "promote",
                lambda who: registry.promote_model(uow, who, version_id, role))


@router.post("/analyst/models/{version_id}/retire", response_class=HTMLResponse)
def retire(request: Request, uow: UnitOfWorkDep, version_id: Id,
           reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    return _act(request, uow, version_id, "retire",
                lambda who: registry.retire_model(uow, who, version_id, reason=reason))


# ------------------------------------------------------------------------------------------ monitoring

DEV_COLOUR, LIVE_COLOUR, WATCH_COLOUR, ACT_COLOUR = "#6b7785", "#b3261e", "#b26a00", "#b3261e"


def _png(draw: Callable[[Any], None], size: tuple[float, float] = (5.4, 3.0)) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, dpi=110)
    try:
        draw(ax)
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(labelsize=7)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _bin_labels(edges: list[float]) -> list[str]:
    cuts = [round(e) for e in edges]
    return [f"<{cuts[0]}"] + [f"{a}-{b}" for a, b in pairwise(cuts)] + [f"≥{cuts[-1]}"]


def distribution_chart(development: dict[str, Any], live: list[float] | None) -> str:
    """Score distribution: development shares per score band, and the live shares beside them."""
    labels = _bin_labels(development["score_edges"])
    dev = development["score_shares"]

    def draw(ax: Any) -> None:
        x = list(range(len(labels)))
        width = 0.4 if live is not None else 0.7
        ax.bar([i - (0.2 if live is not None else 0) for i in x], [s * 100 for s in dev], width=width,
               color=DEV_COLOUR, label="development")
        if live is not None:
            ax.bar([i + 0.2 for i in x], [s * 100 for s in live], width=width, color=LIVE_COLOUR, label="live")
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=45, ha="right")
        ax.set_ylabel("% of cases", fontsize=7)
        ax.legend(fontsize=7, frameon=False)

    return _png(draw)


def psi_chart(by_month: list[dict[str, Any]]) -> str:
    """PSI per month with the watch (0.10) and act (0.25) lines."""
    def draw(ax: Any) -> None:
        months = [m["month"] for m in by_month]
        ax.plot(months, [m["psi"] for m in by_month], marker="o", color=LIVE_COLOUR)
        ax.axhline(0.10, color=WATCH_COLOUR, linestyle="--", linewidth=1)
        ax.axhline(0.25, color=ACT_COLOUR, linestyle=":", linewidth=1)
        ax.set_ylim(bottom=0, top=max(0.3, max(m["psi"] for m in by_month) * 1.15))
        ax.set_ylabel("PSI", fontsize=7)
        ax.tick_params(axis="x", rotation=45)

    return _png(draw)


def csi_chart(rows: list[dict[str, Any]]) -> str:
    """CSI per feature, largest first, coloured by alert level."""
    top = rows[:15][::-1]

    def draw(ax: Any) -> None:
        colours = [ACT_COLOUR if r["status"] == "act" else WATCH_COLOUR if r["status"] == "watch" else DEV_COLOUR
                   for r in top]
        ax.barh([r["feature"][:28] for r in top], [r["csi"] for r in top], color=colours)
        ax.axvline(0.10, color=WATCH_COLOUR, linestyle="--", linewidth=1)
        ax.axvline(0.25, color=ACT_COLOUR, linestyle=":", linewidth=1)
        ax.set_xlabel("CSI", fontsize=7)

    return _png(draw, size=(5.4, 0.3 * len(top) + 1.0))


@router.get("/analyst/models/{version_id}/monitoring", response_class=HTMLResponse)
def monitoring(request: Request, uow: UnitOfWorkDep, version_id: Id, dataset: str = "",
               date_column: str = "") -> Response:
    """模型监控 is the live population still the development one? PSI of live scores, CSI per feature."""
    who = _signed_in(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        report = risk_service.monitoring_report(uow, who, version_id, dataset=dataset or None,
                                                date_column=date_column or None)
        v = registry.get_model_version(uow, who, version_id)
        runs = monitoring_runs.monitoring_runs(uow, who, version_id=version_id, limit=12)
        names = sorted({d.name for d in data_service.list_datasets(uow, who)}) if who.can(
            Permission.MANAGE_DATASETS) or who.can(Permission.TRAIN_MODELS) else []
    except DomainError as exc:
        return _error(request, who, exc)
    charts: dict[str, str] = {}
    development = report["development"]
    if development.get("score_edges"):
        live = report["score"]["live_shares"] if report["score"] else None
        charts["distribution"] = distribution_chart(development, live)
    if len(report["by_month"]) >= 2:
        charts["psi"] = psi_chart(report["by_month"])
    if report["characteristics"]:
        charts["csi"] = csi_chart(report["characteristics"])
    return page(request, who, "analyst/monitoring.html", v=v, m=report, charts=charts, badges=BADGES,
                datasets=names, dataset=dataset, date_column=date_column, runs=runs,
                latest=runs[0] if runs else None)


# ------------------------------------------------------------------------------------------ joint training runs

RUN_BADGES = {"running": "warn", "succeeded": "ok", "failed": "bad"}


def comparison_svg(rows: list[tuple[str, float | None, float | None]], label: str) -> str:
    """AUC and KS of each side as paired horizontal bars (0..1), in the product's chart style (see web.charts):
    AUC the first series, KS the second, each value written at its bar's end; a figure not measured is a dash."""
    width, pair_height, label_width, pad = 600, 76, 190, 8
    height = pair_height * len(rows) + pad
    scale = width - label_width - 80
    parts = []
    for i, (name, auc, ks_) in enumerate(rows):
        y = pad + i * pair_height
        parts.append(f'<text class="label" x="0" y="{y + 40}">{escape(name)}</text>')
        for j, (what, value) in enumerate((("AUC", auc), ("KS", ks_))):
            top = y + 4 + j * 32
            if value is None:
                parts.append(f'<text class="value" x="{label_width + 6}" y="{top + 22}">{what} —</text>')
                continue
            w = max(value, 0.0) * scale
            parts.append(f'<rect class="{("series-1", "series-0")[j]}" x="{label_width}" y="{top}" width="{w:.1f}" '
                         f'height="26"><title>{escape(name)} {what}: {value:.3f}</title></rect>')
            parts.append(f'<text class="value" x="{label_width + w + 6:.1f}" y="{top + 22}">{what} {value:.3f}</text>')
    return (f'<svg class="chart hbars" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
            f'<line class="axis" x1="{label_width}" y1="{pad}" x2="{label_width}" y2="{height}"/>'
            f'{"".join(parts)}</svg>')


def _run_of(uow: UnitOfWorkDep, who: Principal, partnership_id: int, run_id: int) -> training_runs.TrainingRun:
    run = training_runs.get_run(uow, who, run_id)
    if run.partnership_id != partnership_id:
        raise NotFound(f"training run {run_id} not found")
    return run


@router.get("/analyst/partnerships/{partnership_id}/runs", response_class=HTMLResponse)
def training_runs_page(request: Request, uow: UnitOfWorkDep, partnership_id: Id) -> Response:
    """联合训练任务 a partnership's joint training runs: status, progress (refreshed while one runs), timings."""
    who = _signed_in(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        p = partnerships.get_partnership(uow, who, partnership_id)
        runs = training_runs.list_runs(uow, who, partnership_id)
    except DomainError as exc:
        return _error(request, who, exc)
    template = "analyst/_training_runs.html" if request.headers.get("HX-Request") else "analyst/training_runs.html"
    now = utcnow()
    return page(request, who, template, p=p, runs=runs, badges=RUN_BADGES, now=now,
                running=any(r.running and not r.stalled(now) for r in runs))


@router.get("/analyst/partnerships/{partnership_id}/runs/{run_id}", response_class=HTMLResponse)
def training_run_page(request: Request, uow: UnitOfWorkDep, partnership_id: Id, run_id: Id) -> Response:
    """A joint training run: its progress, or how it ended; the joint model against the bank-only model trained on
    the same fold (AUC, KS, each side's contribution) as a chart and as a table."""
    who = _signed_in(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        p = partnerships.get_partnership(uow, who, partnership_id)
        run = _run_of(uow, who, partnership_id, run_id)
    except DomainError as exc:
        return _error(request, who, exc)
    if request.headers.get("HX-Request"):
        panel = page(request, who, "analyst/_training_run_status.html", p=p, run=run, badges=RUN_BADGES,
                     now=utcnow())
        if not run.running:  # it ended while the page watched: reload it for the outcome and the comparison
            panel.headers["HX-Refresh"] = "true"
        return panel
    names = {"joint": translate(request, "Joint model"), "bank_only": translate(request, "Bank only"),
             "partner_only": translate(request, "Partner's part only")}
    sides = [(side, names[side], run.figures(side)) for side in training_runs.SIDES]
    chart = ""
    if run.status == "succeeded":
        chart = comparison_svg([(name, f["auc"], f["ks"]) for _, name, f in sides],
                               translate(request, "Validation AUC and KS: joint model and bank only"))
    return page(request, who, "analyst/training_run.html", p=p, run=run, badges=RUN_BADGES, sides=sides, now=utcnow(),
                chart=Markup(chart),
                contribution={k: run.result.get("contribution", {}).get(k)
                              for k in ("partner_auc", "partner_ks", "bank_auc", "bank_ks")})
