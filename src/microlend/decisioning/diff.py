"""What changed between two policy versions, in the terms a checker reviews before publishing: nodes added or
removed, table rows added, removed or edited cell by cell, expressions changed, golden tests changed."""

from __future__ import annotations

from typing import Any


def _nodes(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(n.get("id")): n for n in doc.get("nodes", []) if isinstance(n, dict)}


def _label(node: dict[str, Any]) -> str:
    return f"'{node.get('name') or node.get('id')}'"


def _columns(content: dict[str, Any]) -> dict[str, str]:
    return {
        str(c.get("id")): str(c.get("name") or c.get("field") or c.get("id"))
        for c in [*content.get("inputs", []), *content.get("outputs", [])]
    }


def _table_changes(label: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    changes = []
    if old.get("hitPolicy") != new.get("hitPolicy"):
        changes.append(f"table {label}: hit policy {old.get('hitPolicy')} -> {new.get('hitPolicy')}")
    if old.get("outputPath") != new.get("outputPath"):
        changes.append(f"table {label}: output path {old.get('outputPath')} -> {new.get('outputPath')}")
    old_cols, new_cols = _columns(old), _columns(new)
    for cid in new_cols.keys() - old_cols.keys():
        changes.append(f"table {label}: column '{new_cols[cid]}' added")
    for cid in old_cols.keys() - new_cols.keys():
        changes.append(f"table {label}: column '{old_cols[cid]}' removed")
    old_rows = {str(r.get("_id")): (i, r) for i, r in enumerate(old.get("rules", []))}
    new_rows = {str(r.get("_id")): (i, r) for i, r in enumerate(new.get("rules", []))}
    names = old_cols | new_cols
    for rid, (i, row) in sorted(new_rows.items(), key=lambda kv: kv[1][0]):
        if rid not in old_rows:
            cells = ", ".join(f"{names.get(k, k)} {v!s}" for k, v in row.items() if k in names and str(v).strip())
            changes.append(f"table {label}: row {i + 1} ({rid}) added: {cells}")
            continue
        j, before = old_rows[rid]
        for key in sorted(set(before) | set(row)):
            if key in names and str(before.get(key, "")).strip() != str(row.get(key, "")).strip():
                changes.append(
                    f"table {label}: row {i + 1} ({rid}) {names[key]}: '{before.get(key, '')}' -> '{row.get(key, '')}'"
                )
        if i != j:
            changes.append(f"table {label}: row {rid} moved from position {j + 1} to {i + 1}")
    for rid, (j, _) in sorted(old_rows.items(), key=lambda kv: kv[1][0]):
        if rid not in new_rows:
            changes.append(f"table {label}: row {j + 1} ({rid}) removed")
    return changes


def _expression_changes(label: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    before = {str(x.get("key")): str(x.get("value")) for x in old.get("expressions", [])}
    after = {str(x.get("key")): str(x.get("value")) for x in new.get("expressions", [])}
    changes = [f"expressions {label}: {k} added: {after[k]}" for k in after if k not in before]
    changes += [f"expressions {label}: {k} removed" for k in before if k not in after]
    changes += [
        f"expressions {label}: {k}: '{before[k]}' -> '{after[k]}'"
        for k in after
        if k in before and before[k] != after[k]
    ]
    if old.get("passThrough") != new.get("passThrough"):
        changes.append(f"expressions {label}: pass-through {old.get('passThrough')} -> {new.get('passThrough')}")
    return changes


def policy_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human-readable changes from `old` to `new`; empty when the decision logic and tests are the same."""
    changes: list[str] = []
    before, after = _nodes(old), _nodes(new)
    for nid in after.keys() - before.keys():
        changes.append(f"node {_label(after[nid])} ({after[nid].get('type')}) added")
    for nid in before.keys() - after.keys():
        changes.append(f"node {_label(before[nid])} ({before[nid].get('type')}) removed")
    for nid in sorted(before.keys() & after.keys(), key=lambda i: [n.get("id") for n in new["nodes"]].index(i)):
        a, b = before[nid], after[nid]
        if a.get("type") != b.get("type"):
            changes.append(f"node {_label(b)}: type {a.get('type')} -> {b.get('type')}")
            continue
        ca, cb = a.get("content") or {}, b.get("content") or {}
        if b.get("type") == "decisionTableNode":
            changes += _table_changes(_label(b), ca, cb)
        elif b.get("type") == "expressionNode":
            changes += _expression_changes(_label(b), ca, cb)
        elif ca != cb:
            changes.append(f"node {_label(b)}: content changed")
    edges = (
        {(e.get("sourceId"), e.get("targetId")) for e in old.get("edges", [])},
        {(e.get("sourceId"), e.get("targetId")) for e in new.get("edges", [])},
    )
    changes += [f"edge {s} -> {t} added" for s, t in sorted(edges[1] - edges[0], key=str)]
    changes += [f"edge {s} -> {t} removed" for s, t in sorted(edges[0] - edges[1], key=str)]
    tests = (
        {str(t.get("name")): t for t in old.get("tests", [])},
        {str(t.get("name")): t for t in new.get("tests", [])},
    )
    changes += [f"golden test '{n}' added" for n in tests[1] if n not in tests[0]]
    changes += [f"golden test '{n}' removed" for n in tests[0] if n not in tests[1]]
    changes += [f"golden test '{n}' changed" for n in tests[1] if n in tests[0] and tests[0][n] != tests[1][n]]
    if old.get("test_base") != new.get("test_base"):
        changes.append("golden test base input changed")
    return changes
