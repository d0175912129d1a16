"""Editing a policy's decision table cell by cell (the table editor): a new document with the given cells and
notes changed, rows added or removed; everything else, golden tests included, as it was. The result is a new
version to lint and save as a draft; the version edited never changes."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from microlend.core.errors import NotFound, ValidationError

_NOTE = "_description"
MAX_CELL = 500


def table_node(doc: Mapping[str, Any], node_id: str) -> dict[str, Any]:
    for node in doc.get("nodes", []):
        if isinstance(node, dict) and node.get("id") == node_id and node.get("type") == "decisionTableNode":
            return node
    raise NotFound(f"node_id: the policy has no decision table '{node_id}'", field="node_id")


def columns(node: Mapping[str, Any]) -> list[str]:
    content = node.get("content") or {}
    return [str(c.get("id")) for c in [*content.get("inputs", []), *content.get("outputs", [])] if isinstance(c, dict)]


def edit_table(doc: Mapping[str, Any], node_id: str, rows: Sequence[Mapping[str, str]], *,
               delete: set[int] | None = None) -> dict[str, Any]:
    """The document with table `node_id`'s rows replaced by `rows` (1-based order as the page shows them),
    each a mapping of column id -> cell text plus `_description`; rows in `delete` (1-based) are left out and a
    row with an unknown `_id` is new. Cells keep the engine's syntax (`> 65`, `"E"`, `[520..560)`)."""
    new = copy.deepcopy(dict(doc))
    node = table_node(new, node_id)
    content = node["content"]
    known = columns(node)
    old_rules = {str(r.get("_id")): r for r in content.get("rules", []) if isinstance(r, dict)}
    rules: list[dict[str, Any]] = []
    used: set[str] = set()
    for i, row in enumerate(rows, start=1):
        if i in (delete or set()):
            continue
        rule_id = str(row.get("_id") or "").strip()
        if not rule_id or rule_id in used:
            rule_id = _fresh_id(set(old_rules) | used)
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", rule_id):
            raise ValidationError(f"row {i}: '{rule_id}' is not a row id", field="rows")
        used.add(rule_id)
        rule: dict[str, Any] = {"_id": rule_id}
        for col in known:
            text = str(row.get(col, "") or "").strip()
            if len(text) > MAX_CELL or "\n" in text:
                raise ValidationError(f"row {i}: a cell is one line of at most {MAX_CELL} characters", field="rows")
            rule[col] = text
        note = str(row.get(_NOTE, "") or "").strip()
        if note:
            rule[_NOTE] = note[:MAX_CELL]
        rules.append(rule)
    if not rules:
        raise ValidationError("rows: a decision table needs at least one row", field="rows")
    content["rules"] = rules
    return new


def _fresh_id(taken: set[str]) -> str:
    n = len(taken) + 1
    while f"row{n}" in taken:
        n += 1
    return f"row{n}"
