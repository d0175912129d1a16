"""The engine's trace in plain language (决策轨迹): per node, in the order it ran, the table's name, each row
that fired numbered as the policy page numbers it (from 1), the input values it matched and what it gave;
and the parameters of the reasons those rows gave (`AGE_ABOVE_MAX` from a row `> 60` says 60).

Pure functions of a policy document and a (compact) trace, so a stored decision is explained from the
version it was made with."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from microlend.decisioning.cells import parse_cell
from microlend.decisioning.reasons import Catalogue, is_reason_field, reason

KINDS = {
    "decisionTableNode": "table",
    "expressionNode": "expression",
    "switchNode": "switch",
    "decisionNode": "sub_decision",
}


@dataclass(frozen=True)
class Condition:
    column: str  # the column's name as the page shows it
    field: str  # the input it reads
    test: str  # the cell, plainly (`> 65`, `A, B`)
    value: Any  # the value the input had


@dataclass(frozen=True)
class Output:
    name: str
    value: str


@dataclass(frozen=True)
class FiredRow:
    row: int  # 1-based, as the policy page numbers rows
    rule_id: str
    note: str
    matched: tuple[Condition, ...]
    outputs: tuple[Output, ...]


@dataclass(frozen=True)
class TraceStep:
    order: int
    node_id: str
    name: str
    kind: str  # table, expression, switch, sub_decision
    rows: tuple[FiredRow, ...] = ()
    results: tuple[Output, ...] = ()
    steps: tuple[TraceStep, ...] = field(default=())  # a sub-decision's own steps


def plain_value(value: Any) -> str:
    """A value as a person reads it: no JSON quotes, numbers without a trailing .0, lists comma-separated."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, list):
        return ", ".join(plain_value(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {plain_value(v)}" for k, v in value.items())
    return str(value)


def plain_cell(text: Any) -> str:
    """A table cell as a person reads it: `"X"` is X, `"A","B"` is A, B; empty is any value (-)."""
    raw = str(text if text is not None else "").strip()
    if not raw:
        return "-"
    cell = parse_cell(raw)
    if cell is not None and cell.values and not cell.intervals and not cell.null and not cell.any:
        return ", ".join(plain_value(v) for v in cell.values)
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'" and raw[0] not in raw[1:-1]:
        return raw[1:-1]
    return raw


def _nodes(doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(n.get("id")): n for n in doc.get("nodes", []) if isinstance(n, dict)}


def _content(node: Mapping[str, Any]) -> dict[str, Any]:
    content = node.get("content")
    return content if isinstance(content, dict) else {}


def _rule_at(rules: list[Any], item: Mapping[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """The row an engine trace item names: by its 0-based index, checked against the rule's id."""
    rule_id = (item.get("rule") or {}).get("_id") if isinstance(item.get("rule"), dict) else None
    index = item.get("index")
    if (isinstance(index, int) and 0 <= index < len(rules) and isinstance(rules[index], dict)
            and (rule_id is None or rules[index].get("_id") == rule_id)):
        return index, rules[index]
    for i, r in enumerate(rules):
        if isinstance(r, dict) and rule_id is not None and r.get("_id") == rule_id:
            return i, r
    return None


def _fired_rows(node: Mapping[str, Any], trace_data: Any) -> tuple[FiredRow, ...]:
    content = _content(node)
    rules = content.get("rules", []) if isinstance(content.get("rules"), list) else []
    inputs = [c for c in content.get("inputs", []) if isinstance(c, dict)]
    outputs = [c for c in content.get("outputs", []) if isinstance(c, dict)]
    items = trace_data if isinstance(trace_data, list) else [trace_data] if isinstance(trace_data, dict) else []
    fired = []
    for item in items:
        if not isinstance(item, dict):
            continue
        found = _rule_at(rules, item)
        if found is None:
            continue
        index, rule = found
        refs_data = item.get("reference_map")
        refs: dict[str, Any] = refs_data if isinstance(refs_data, dict) else {}
        matched = tuple(
            Condition(str(c.get("name") or c.get("field") or c.get("id")), str(c.get("field", "")),
                      plain_cell(rule.get(str(c.get("id")))), refs.get(str(c.get("field", ""))))
            for c in inputs
            if str(rule.get(str(c.get("id")), "") or "").strip()
        )
        given = tuple(Output(str(o.get("name") or o.get("field") or o.get("id")),
                             plain_cell(rule.get(str(o.get("id"))))) for o in outputs)
        fired.append(FiredRow(index + 1, str(rule.get("_id", "")), str(rule.get("_description", "")), matched,
                              given))
    return tuple(fired)


def _results(trace_data: Any) -> tuple[Output, ...]:
    if not isinstance(trace_data, dict):
        return ()
    return tuple(
        Output(str(key), plain_value(value.get("result") if isinstance(value, dict) else value))
        for key, value in trace_data.items()
    )


def _is_trace(data: Any) -> bool:
    return isinstance(data, dict) and bool(data) and all(
        isinstance(v, dict) and "order" in v for v in data.values())


def plain_trace(doc: Mapping[str, Any], trace: Any,
                subdecisions: Mapping[str, Mapping[str, Any]] | None = None) -> list[TraceStep]:
    """The steps of a trace (the engine's, compact or whole) in the order they ran; the input and output
    nodes are left out. `subdecisions` are the documents of the sub-decisions by key."""
    if not isinstance(trace, dict):
        return []
    nodes = _nodes(doc)
    steps = []
    for node_id, step in trace.items():
        if not isinstance(step, dict):
            continue
        node = nodes.get(str(node_id), {})
        kind = KINDS.get(str(node.get("type", "")))
        if kind is None:
            continue
        data = step.get("traceData")
        name = str(node.get("name") or step.get("name") or node_id)
        order = int(step.get("order") or 0)
        if kind == "table":
            steps.append(TraceStep(order, str(node_id), name, kind, rows=_fired_rows(node, data)))
        elif kind == "sub_decision":
            key = str(_content(node).get("key", ""))
            sub_doc = (subdecisions or {}).get(key, {})
            inner = plain_trace(sub_doc, data, subdecisions) if _is_trace(data) else []
            steps.append(TraceStep(order, str(node_id), name, kind, steps=tuple(inner)))
        elif kind == "switch":
            steps.append(TraceStep(order, str(node_id), name, kind, results=_switch(node, data)))
        else:
            steps.append(TraceStep(order, str(node_id), name, kind, results=_results(data)))
    return sorted(steps, key=lambda s: s.order)


def _switch(node: Mapping[str, Any], data: Any) -> tuple[Output, ...]:
    statements = [s for s in _content(node).get("statements", []) if isinstance(s, dict)]
    ids = [s.get("id") for s in statements]
    items = data.get("statements", []) if isinstance(data, dict) else data if isinstance(data, list) else []
    out = []
    for item in items:
        sid = item.get("id") if isinstance(item, dict) else None
        if sid in ids:
            out.append(Output(f"branch {ids.index(sid) + 1}", plain_cell(statements[ids.index(sid)].get("condition"))))
    return tuple(out)


def _bound(cell_text: Any) -> Any:
    """The value a cell names: the finite end of a comparison, the ends of a range, or its value."""
    cell = parse_cell(str(cell_text or ""))
    if cell is None:
        return plain_cell(cell_text)
    if cell.intervals:
        iv = cell.intervals[0]
        lo = None if iv.lo == -math.inf else iv.lo
        hi = None if iv.hi == math.inf else iv.hi
        if lo is not None and hi is not None and lo != hi:
            return f"{plain_value(lo)}–{plain_value(hi)}"
        value = lo if lo is not None else hi
        return plain_value(value) if isinstance(value, float) else value
    if cell.values:
        return plain_value(cell.values[0])
    return plain_cell(cell_text)


def reason_values(doc: Mapping[str, Any], trace: Any, catalogue: Catalogue | None = None,
                  subdecisions: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """The parameters of each reason code the trace's rows gave, by code: a parameter bound to an input
    field takes the bound of that field's cell in the row that gave the code. Reads only the rows that fired
    in tables with a reason column (a decision's explanation is on the hot path)."""
    values: dict[str, dict[str, Any]] = {}

    def walk(document: Mapping[str, Any], steps: Any) -> None:
        if not isinstance(steps, dict):
            return
        nodes = _nodes(document)
        for node_id, step in steps.items():
            node = nodes.get(str(node_id))
            if node is None or not isinstance(step, dict):
                continue
            data = step.get("traceData")
            if node.get("type") == "decisionNode":
                sub = (subdecisions or {}).get(str(_content(node).get("key", "")))
                if sub is not None and _is_trace(data):
                    walk(sub, data)
                continue
            if node.get("type") != "decisionTableNode":
                continue
            content = _content(node)
            reason_cols = [o.get("id") for o in content.get("outputs", []) if isinstance(o, dict)
                           and is_reason_field(o.get("field"))]
            if not reason_cols:
                continue
            rules = content.get("rules", []) if isinstance(content.get("rules"), list) else []
            by_field = {str(c.get("field")): c.get("id") for c in content.get("inputs", []) if isinstance(c, dict)}
            items = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
            for item in items:
                found = _rule_at(rules, item) if isinstance(item, dict) else None
                if found is None:
                    continue
                rule = found[1]
                for col in reason_cols:
                    code = plain_cell(rule.get(str(col)))
                    for name, input_field in reason(code, catalogue).params:
                        column = by_field.get(input_field)
                        if column is not None and str(rule.get(column, "") or "").strip():
                            values.setdefault(code, {}).setdefault(name, _bound(rule.get(column)))

    walk(doc, trace)
    return values


def trace_json(steps: list[TraceStep] | tuple[TraceStep, ...]) -> list[dict[str, Any]]:
    """The plain trace as JSON (for the API)."""
    return [
        {
            "order": s.order,
            "node_id": s.node_id,
            "name": s.name,
            "kind": s.kind,
            "rows": [
                {
                    "row": r.row,
                    "rule_id": r.rule_id,
                    "note": r.note,
                    "matched": [{"column": c.column, "field": c.field, "test": c.test, "value": c.value}
                                for c in r.matched],
                    "outputs": [{"name": o.name, "value": o.value} for o in r.outputs],
                }
                for r in s.rows
            ],
            "results": [{"name": o.name, "value": o.value} for o in s.results],
            "steps": trace_json(s.steps),
        }
        for s in steps
    ]
