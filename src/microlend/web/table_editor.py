"""The table editor (决策表编辑器): a policy version's decision table edited cell by cell in the page, checked by
lint (htmx) and saved as a new draft version; the version edited never changes."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from microlend.api.deps import UnitOfWorkDep
from microlend.core.errors import DomainError, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.decisioning import service as svc
from microlend.decisioning.lint import LintReport
from microlend.decisioning.table_edit import edit_table, table_node
from microlend.web.pages import current_principal, login_redirect, page

router = APIRouter(include_in_schema=False)

NAV: list[tuple[str, str, Permission]] = []
MAX_ROWS = 500


def _who(request: Request, uow: UnitOfWork) -> Principal | Response:
    who = current_principal(request, uow)
    if who is None:
        return login_redirect(request)
    if not who.can(Permission.EDIT_POLICIES):
        return page(request, who, "error.html", status_code=403, message="forbidden")
    return who


def _table(node: dict[str, Any]) -> dict[str, Any]:
    content = node.get("content") or {}
    cols = [{"id": str(c.get("id")), "name": c.get("name") or c.get("field"), "field": c.get("field"), "side": side}
            for side in ("inputs", "outputs") for c in content.get(side, []) if isinstance(c, dict)]
    rows = [{"id": str(r.get("_id", "")), "cells": {c["id"]: str(r.get(c["id"], "") or "") for c in cols},
             "note": str(r.get("_description", "") or "")}
            for r in content.get("rules", []) if isinstance(r, dict)]
    return {"id": node.get("id"), "name": node.get("name") or node.get("id"), "columns": cols, "rows": rows}


def rows_from_form(form: FormData, column_ids: list[str]) -> tuple[list[dict[str, str]], set[int]]:
    """The rows as posted: `n` rows, each `id-i`, `c-i-<column>`, `note-i` and `del-i` (1-based)."""
    try:
        n = int(str(form.get("n", "0")))
    except ValueError:
        raise ValidationError("n: the number of rows is not a number", field="n") from None
    if not 0 < n <= MAX_ROWS:
        raise ValidationError(f"n: a table has 1 to {MAX_ROWS} rows", field="n")
    rows, delete = [], set()
    for i in range(1, n + 1):
        row = {col: str(form.get(f"c-{i}-{col}", "") or "") for col in column_ids}
        row["_id"] = str(form.get(f"id-{i}", "") or "")
        row["_description"] = str(form.get(f"note-{i}", "") or "")
        if form.get(f"del-{i}") or (not row["_id"] and not any(row[c].strip() for c in column_ids)):
            delete.add(i)  # a row ticked for removal, or the blank new row left empty
        rows.append(row)
    return rows, delete


def _edited(uow: UnitOfWork, who: Principal, content_hash: str, node_id: str,
            form: FormData) -> tuple[dict[str, Any], LintReport]:
    doc = svc.policy_content(uow, who, content_hash)
    node = table_node(doc, node_id)
    column_ids = [c["id"] for c in _table(node)["columns"]]
    rows, delete = rows_from_form(form, column_ids)
    new = edit_table(doc, node_id, rows, delete=delete)
    return new, svc.lint_for_bank(uow, who, new)


def _editor(request: Request, who: Principal, content_hash: str, node: dict[str, Any], *,
            report: LintReport | None = None, error: str = "", status_code: int = 200) -> HTMLResponse:
    return page(request, who, "policies/table_edit.html", status_code=status_code, content_hash=content_hash,
                table=_table(node), report=report, error=error)


@router.get("/policies/{content_hash}/tables/{node_id}", response_class=HTMLResponse)
def table_editor(request: Request, uow: UnitOfWorkDep, content_hash: str, node_id: str) -> Response:
    who = _who(request, uow)
    if not isinstance(who, Principal):
        return who
    try:
        node = table_node(svc.policy_content(uow, who, content_hash), node_id)
    except DomainError as exc:
        return page(request, who, "error.html", status_code=exc.status_code, message=exc.message)
    return _editor(request, who, content_hash, node)


@router.post("/policies/{content_hash}/tables/{node_id}/lint", response_class=HTMLResponse)
async def table_lint(request: Request, uow: UnitOfWorkDep, content_hash: str, node_id: str) -> Response:
    """htmx: lint of the policy with the table as edited (nothing is saved)."""
    who = _who(request, uow)
    if not isinstance(who, Principal):
        return who
    form = await request.form()
    try:
        _, report = _edited(uow, who, content_hash, node_id, form)
    except DomainError as exc:
        return page(request, who, "policies/_lint.html", status_code=exc.status_code, report=None, changes=None,
                    parse_error=exc.message)
    return page(request, who, "policies/_lint.html", report=report, changes=None, parse_error="")


@router.post("/policies/{content_hash}/tables/{node_id}", response_class=HTMLResponse)
async def table_save(request: Request, uow: UnitOfWorkDep, content_hash: str, node_id: str) -> Response:
    """Save the edited table as a new draft version when lint finds no error (422 with the findings if it
    does, nothing stored)."""
    who = _who(request, uow)
    if not isinstance(who, Principal):
        return who
    form = await request.form()
    try:
        new, report = _edited(uow, who, content_hash, node_id, form)
        if not report.ok:
            return _editor(request, who, content_hash, table_node(new, node_id), report=report, status_code=422)
        version = svc.save_draft(uow, who, json.loads(json.dumps(new)))
    except DomainError as exc:
        try:
            node = table_node(svc.policy_content(uow, who, content_hash), node_id)
        except DomainError:
            return page(request, who, "error.html", status_code=exc.status_code, message=exc.message)
        return _editor(request, who, content_hash, node, error=exc.message, status_code=exc.status_code)
    return RedirectResponse(f"/policies/{version.content_hash}?done=saved", status_code=303)
