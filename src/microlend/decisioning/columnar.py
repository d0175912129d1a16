"""Batch evaluation of a policy over whole columns (numpy), for simulation, backtests and pre-approval.

The policy's decision tables and expressions are compiled into array operations that follow the rule
engine's semantics: a missing field is null; a cell comparing a null or a value of another type does not
match; an expression comparing or adding a null fails, and a failed row becomes a referral with reason
ENGINE_ERROR exactly as in `CompiledPolicy.evaluate`. Supported: input, expression, decision-table
(first/collect) and output nodes in a chain or in branches of first-hit switch nodes (see `ColumnarPolicy`),
table cells as in `cells.py`, and expressions made of literals, field paths, arithmetic, comparisons,
and/or/not, `??`, `? :`, array literals, len, map, min, max, floor. Anything else raises `NotCompilable`,
and callers fall back to the engine row by row.
Numbers are float64 here (exact for amounts to the cent below 10^13); outputs are converted to Decimal
with the same rounding as the engine path.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from microlend.decisioning.cells import Cell, parse_cell
from microlend.decisioning.domain import DecisionInput, engine_limit, engine_rate
from microlend.decisioning.expressions import (
    Ast,
    Batch,
    BoolArray,
    Hits,
    NotCompilable,
    V,
    cell_mask,
    evaluate,
    object_column,
    parse_expression,
    select,
)

__all__ = [
    "BatchResult",
    "ColumnarPolicy",
    "Hits",
    "NotCompilable",
    "V",
    "column",
    "columns_from_arrow",
    "columns_from_inputs",
    "concat_results",
    "expression_fields",
    "flatten",
    "parse_expression",
]


@dataclass
class _Table:
    node_id: str
    hit_policy: str
    inputs: list[Ast]
    outputs: list[tuple[str, str]]  # (column id, field path)
    rules: list[tuple[list[Cell], dict[str, Ast]]]
    output_path: str | None
    pass_through: bool

    def run(self, b: Batch) -> None:
        cols = [evaluate(b, e) for e in self.inputs]
        if any(c.kind in ("list", "hits") for c in cols):
            raise NotCompilable(f"table {self.node_id}: a list-valued input column")
        masks = []
        seen: dict[tuple[int, Cell], BoolArray] = {}  # a cell repeated down a column is tested once
        for cells, _ in self.rules:
            m = np.ones(b.n, dtype=bool)
            for j, (col, cell) in enumerate(zip(cols, cells, strict=True)):
                if cell.any:  # an empty cell matches every row: nothing to narrow
                    continue
                mask = seen.get((j, cell))
                if mask is None:
                    mask = seen[(j, cell)] = cell_mask(b, col, cell)
                m &= mask
            masks.append(m)
        err = np.logical_or.reduce([c.err for c in cols]) if cols else b.false()
        matrix = np.vstack(masks).T if masks else np.zeros((b.n, 0), dtype=bool)
        if self.hit_policy == "collect":
            self._collect(b, matrix, err)
        else:
            self._first(b, matrix, err)

    def _collect(self, b: Batch, matrix: BoolArray, err: BoolArray) -> None:
        records = []
        for _, outs in self.rules:
            record = {}
            for field_path in outs:
                ast = outs[field_path]
                if ast[0] not in ("num", "str", "bool", "null"):
                    raise NotCompilable(f"table {self.node_id}: a collect table with computed outputs")
                record[field_path] = None if ast[0] == "null" else ast[1]
            records.append(record)
        if not self.output_path:
            raise NotCompilable(f"table {self.node_id}: a collect table needs an output path")
        b.columns[self.output_path] = V("hits", Hits(matrix, tuple(records)), b.false(), err)

    def _first(self, b: Batch, matrix: BoolArray, err: BoolArray) -> None:
        any_hit = matrix.any(axis=1) if matrix.shape[1] else b.false()
        first = np.where(any_hit, matrix.argmax(axis=1) if matrix.shape[1] else 0, -1)
        prefix = f"{self.output_path}." if self.output_path else ""
        for _, field_path in self.outputs:
            per_rule = [
                evaluate(b, outs[field_path]) if field_path in outs else b.const("null", None) for _, outs in self.rules
            ]
            path = prefix + field_path
            current = b.get(path)
            result = current
            for j in range(len(self.rules) - 1, -1, -1):
                chosen = first == j
                result = select(b, chosen, per_rule[j], result, np.where(chosen, per_rule[j].err, result.err))
            result.err = result.err | err
            b.columns[path] = result


# --- compiled policy --------------------------------------------------------------------------------------


@dataclass
class _Expressions:
    node_id: str
    items: list[tuple[str, Ast]]
    pass_through: bool

    def run(self, b: Batch) -> None:
        values = [(key, evaluate(b, ast)) for key, ast in self.items]
        if not self.pass_through:
            errors = [c.err for c in b.columns.values()]
            carried = np.logical_or.reduce(errors) if errors else b.false()
            b.columns = {}
            values = [(k, V(v.kind, v.data, v.null, v.err | carried)) for k, v in values]
        for key, value in values:
            b.columns[key] = value


@dataclass(frozen=True)
class BatchResult:
    """Outputs for every row; `limit` and `annual_rate` are floats for charts and sums, exact on request."""

    outcome: npt.NDArray[np.object_]
    limit: npt.NDArray[np.float64]
    annual_rate: npt.NDArray[np.float64]  # NaN where not priced
    reasons: npt.NDArray[np.object_]
    risk_grade: npt.NDArray[np.object_]
    exposure_cap: npt.NDArray[np.float64] | None = None  # NaN where the policy gives none

    def __len__(self) -> int:
        return len(self.outcome)

    def row(self, i: int, currency: str = "CNY") -> dict[str, Any]:
        """Row i in the stored-output form, with the engine path's exact conversion."""
        rate = self.annual_rate[i]
        limit: Decimal = engine_limit(float(self.limit[i]), currency)
        annual = engine_rate(None if np.isnan(rate) else float(rate))
        grade = self.risk_grade[i]
        out = {
            "outcome": self.outcome[i],
            "limit": str(limit),
            "annual_rate": None if annual is None else str(annual),
            "reasons": list(self.reasons[i]),
            "risk_grade": None if grade is None else str(grade),
        }
        if self.exposure_cap is not None and not np.isnan(self.exposure_cap[i]):
            out["exposure_cap"] = str(engine_limit(float(self.exposure_cap[i]), currency))
        return out


class ColumnarPolicy:
    """A policy compiled to array operations.

    A branching policy (分支, `switchNode` with the "first" hit policy) is evaluated by routing row subsets:
    each switch evaluates its conditions over the rows that reach it and hands every row to the first
    statement whose condition is true (an empty condition always is; a condition that fails, is null or is
    not a boolean is false, as in the engine). A row no statement takes produces no output, which the
    engine path reports as a referral with ENGINE_ERROR, and so does this one."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.steps: list[_Table | _Expressions] = []
        self.switches: list[_Switch] = []
        if any(n.get("type") == "switchNode" for n in doc.get("nodes", []) if isinstance(n, Mapping)):
            self.plan: _Plan = _branching_plan(doc, self)
        else:
            self.steps = [_step(node) for node in _chain(doc) if node.get("type") not in ("inputNode", "outputNode")]
            self.plan = _Plan(list(self.steps), None)

    @property
    def branching(self) -> bool:
        return bool(self.switches)

    @property
    def fields(self) -> set[str]:
        """Every field path the policy reads (inputs and values it derives itself)."""
        found: set[str] = set()
        for step in self.steps:
            asts: list[Ast] = []
            if isinstance(step, _Expressions):
                asts = [a for _, a in step.items]
            else:
                asts = list(step.inputs) + [a for _, outs in step.rules for a in outs.values()]
            for ast in asts:
                _paths(ast, found)
        for switch in self.switches:
            for condition, _ in switch.branches:
                if condition is not None:
                    _paths(condition, found)
        return found

    def evaluate(self, columns: Mapping[str, V] | None = None, n: int | None = None) -> BatchResult:
        """The credit-decision outputs for every row."""
        if n is None:
            raise ValueError("the batch size is required")
        if not self.branching:
            return _result(self._run(columns, n))
        parts = _run_plan(self.plan, Batch(n, dict(columns or {})), np.arange(n))
        return _scatter(n, [(rows, _result(b)) for rows, b in parts if len(rows)])

    def evaluate_outputs(
        self, columns: Mapping[str, V], n: int, names: tuple[str, ...]
    ) -> tuple[dict[str, V], BoolArray]:
        """Named outputs of any policy kind, and the rows where the rule engine would have failed."""
        if self.branching:
            raise NotCompilable("named outputs of a branching policy are evaluated by the engine")
        b = self._run(columns, n)
        errors = [c.err for c in b.columns.values()]
        err = np.logical_or.reduce(errors) if errors else np.zeros(n, dtype=bool)
        return {name: b.get(name) for name in names}, err

    def _run(self, columns: Mapping[str, V] | None, n: int | None) -> Batch:
        if n is None:
            raise ValueError("the batch size is required")
        b = Batch(n, dict(columns or {}))
        for step in self.steps:
            step.run(b)
        return b


def _step(node: Mapping[str, Any]) -> _Table | _Expressions:
    kind, content = node.get("type"), node.get("content") or {}
    if content.get("inputField") or (content.get("executionMode") or "single") != "single":
        raise NotCompilable(f"node {node.get('id')}: input fields and loop mode")
    if kind == "expressionNode":
        if content.get("outputPath"):
            raise NotCompilable(f"node {node.get('id')}: an expression node with an output path")
        items = [(str(x["key"]), parse_expression(str(x["value"]))) for x in content.get("expressions", [])]
        return _Expressions(str(node.get("id")), items, bool(content.get("passThrough", True)))
    if kind == "decisionTableNode":
        return _table(dict(node))
    raise NotCompilable(f"node {node.get('id')}: {kind} is evaluated by the engine only")


# --- branching (switchNode) -------------------------------------------------------------------------------


@dataclass
class _Plan:
    """The steps from one point of the graph to the output, or to a switch that splits the rows."""

    steps: list[_Table | _Expressions]
    switch: _Switch | None


@dataclass
class _Switch:
    node_id: str
    branches: list[tuple[Ast | None, _Plan]]  # (condition, None: always true; where its rows go next)

    def routes(self, b: Batch) -> list[BoolArray]:
        """Each branch's rows: the first statement whose condition is true takes the row."""
        taken = b.false()
        out = []
        for condition, _ in self.branches:
            if condition is None:
                hit = np.ones(b.n, dtype=bool)
            else:
                v = evaluate(b, condition)
                hit = (np.asarray(v.data, dtype=bool) & ~v.null & ~v.err) if v.kind == "bool" else b.false()
            mask = hit & ~taken
            taken |= mask
            out.append(mask)
        return out


def _branching_plan(doc: Mapping[str, Any], policy: ColumnarPolicy) -> _Plan:
    nodes = {n.get("id"): n for n in doc.get("nodes", []) if isinstance(n, Mapping)}
    succ: dict[tuple[Any, Any], list[Any]] = {}
    for e in doc.get("edges", []):
        if not isinstance(e, Mapping) or e.get("sourceId") not in nodes or e.get("targetId") not in nodes:
            raise NotCompilable("an edge to or from a node that is not in the graph")
        source = nodes[e.get("sourceId")]
        handle = e.get("sourceHandle") if source.get("type") == "switchNode" else None
        succ.setdefault((e.get("sourceId"), handle), []).append(e.get("targetId"))
    starts = [i for i, n in nodes.items() if n.get("type") == "inputNode"]
    if len(starts) != 1 or any(len(v) > 1 for v in succ.values()):
        raise NotCompilable("a branching policy is evaluated in batch when every node leads to one next node")
    steps: dict[Any, _Table | _Expressions] = {}
    reached: set[Any] = set()

    def plan_from(node_id: Any, path: frozenset[Any]) -> _Plan:
        collected: list[_Table | _Expressions] = []
        current = node_id
        while True:
            if current in path:
                raise NotCompilable("a cycle in the graph")
            path = path | {current}
            reached.add(current)
            node = nodes[current]
            kind = node.get("type")
            if kind == "outputNode":
                return _Plan(collected, None)
            if kind == "switchNode":
                return _Plan(collected, switch_at(node, path))
            if kind != "inputNode":
                if current not in steps:
                    steps[current] = _step(node)
                collected.append(steps[current])
            nxt = succ.get((current, None), [])
            if not nxt:
                raise NotCompilable(f"node {current}: a path that ends before the output")
            current = nxt[0]

    def switch_at(node: Mapping[str, Any], path: frozenset[Any]) -> _Switch:
        content = node.get("content") or {}
        if str(content.get("hitPolicy", "first")) != "first":
            raise NotCompilable(f"switch {node.get('id')}: only the first-hit policy is evaluated in batch")
        branches: list[tuple[Ast | None, _Plan]] = []
        handles = set()
        for statement in content.get("statements", []):
            handles.add(statement.get("id"))
            text = str(statement.get("condition") or "").strip()
            target = succ.get((node.get("id"), statement.get("id")), [])
            if not target:
                raise NotCompilable(f"switch {node.get('id')}: a statement leading nowhere")
            branches.append((parse_expression(text) if text else None, plan_from(target[0], path)))
        if any(node_id == node.get("id") and h not in handles for node_id, h in succ):
            raise NotCompilable(f"switch {node.get('id')}: an edge from no statement")
        switch = _Switch(str(node.get("id")), branches)
        policy.switches.append(switch)
        return switch

    plan = plan_from(starts[0], frozenset())
    if set(nodes) - reached:
        raise NotCompilable("a node the input does not reach")
    policy.steps = list(steps.values())
    return plan


def _take(b: Batch, rows: npt.NDArray[np.intp]) -> Batch:
    """The batch of the given rows only."""
    cols = {}
    for path, v in b.columns.items():
        if v.kind == "hits":
            data: Any = Hits(v.data.matrix[rows], v.data.records)
        elif v.data is None:
            data = None
        else:
            data = v.data[rows]
        cols[path] = V(v.kind, data, v.null[rows], v.err[rows])
    return Batch(len(rows), cols)


def _run_plan(plan: _Plan, b: Batch, rows: npt.NDArray[np.intp]) -> list[tuple[npt.NDArray[np.intp], Batch]]:
    """(rows, their final batch) for every route the rows take; rows no statement takes are left out."""
    for step in plan.steps:
        step.run(b)
    if plan.switch is None:
        return [(rows, b)]
    out = []
    for mask, (_, branch) in zip(plan.switch.routes(b), plan.switch.branches, strict=True):
        if mask.all():
            out += _run_plan(branch, b, rows)
        elif mask.any():
            picked = np.flatnonzero(mask)
            out += _run_plan(branch, _take(b, picked), rows[picked])
    return out


def _scatter(n: int, parts: list[tuple[npt.NDArray[np.intp], BatchResult]]) -> BatchResult:
    """One result in row order from the results of row subsets; a row in none of them failed in the engine
    (no output) and is referred with ENGINE_ERROR."""
    outcome = np.full(n, "refer", dtype=object)
    limit = np.zeros(n, dtype=float)
    rate = np.full(n, np.nan)
    reasons = object_column(n, ("ENGINE_ERROR",))
    grade = np.full(n, None, dtype=object)
    has_cap = any(r.exposure_cap is not None for _, r in parts)
    cap = np.full(n, np.nan) if has_cap else None
    for rows, r in parts:
        outcome[rows] = r.outcome
        limit[rows] = r.limit
        rate[rows] = r.annual_rate
        reasons[rows] = r.reasons
        grade[rows] = r.risk_grade
        if cap is not None and r.exposure_cap is not None:
            cap[rows] = r.exposure_cap
    return BatchResult(outcome, limit, rate, reasons, grade, cap)


def expression_fields(text: str) -> set[str]:
    """The field paths an expression reads (raises NotCompilable for what it cannot parse)."""
    found: set[str] = set()
    _paths(parse_expression(text), found)
    return found


def _paths(ast: Any, found: set[str]) -> None:
    if isinstance(ast, tuple) and ast:
        if ast[0] == "path" and not str(ast[1]).startswith("#"):
            found.add(str(ast[1]))
            return
        for part in ast[1:]:
            _paths(part, found)
    elif isinstance(ast, list):
        for part in ast:
            _paths(part, found)


def _chain(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    nodes = {n.get("id"): n for n in doc.get("nodes", [])}
    succ: dict[Any, list[Any]] = {}
    indegree: dict[Any, int] = dict.fromkeys(nodes, 0)
    for e in doc.get("edges", []):
        succ.setdefault(e.get("sourceId"), []).append(e.get("targetId"))
        indegree[e.get("targetId")] = indegree.get(e.get("targetId"), 0) + 1
    starts = [i for i, n in nodes.items() if n.get("type") == "inputNode"]
    if len(starts) != 1 or any(len(v) > 1 for v in succ.values()) or any(d > 1 for d in indegree.values()):
        raise NotCompilable("only a single chain of nodes is evaluated in batch")
    order, current = [], starts[0]
    while current is not None:
        order.append(nodes[current])
        nxt = succ.get(current, [])
        current = nxt[0] if nxt else None
    return order


def _table(node: dict[str, Any]) -> _Table:
    content = node.get("content") or {}
    inputs = content.get("inputs", [])
    outputs = [(str(o["id"]), str(o["field"])) for o in content.get("outputs", [])]
    rules = []
    for r in content.get("rules", []):
        cells = []
        for col in inputs:
            cell = parse_cell(r.get(col["id"], ""))
            if cell is None:
                raise NotCompilable(f"table {node.get('id')}: cell '{r.get(col['id'])}'")
            cells.append(cell)
        outs = {}
        for col_id, field_path in outputs:
            text = str(r.get(col_id, "")).strip()
            outs[field_path] = parse_expression(text) if text else ("null",)
        rules.append((cells, outs))
    fields = []
    for col in inputs:
        if not col.get("field"):
            raise NotCompilable(f"table {node.get('id')}: an input column without a field")
        fields.append(parse_expression(str(col["field"])))
    return _Table(
        str(node.get("id")),
        str(content.get("hitPolicy", "first")),
        fields,
        outputs,
        rules,
        content.get("outputPath") or None,
        bool(content.get("passThrough", True)),
    )


def _result(b: Batch) -> BatchResult:
    n = b.n
    errors = [c.err for c in b.columns.values()]
    err = np.logical_or.reduce(errors) if errors else np.zeros(n, dtype=bool)
    outcome = b.get("outcome")
    limit = b.get("limit")
    rate = b.get("annual_rate")
    reasons = b.get("reasons")
    grade = b.get("risk_grade")
    if outcome.kind != "str" or limit.kind not in ("num", "null") or rate.kind not in ("num", "null"):
        raise NotCompilable("the policy's outputs are not of the expected kinds")
    out_outcome = np.where(err, "refer", outcome.data).astype(object)
    out_limit = np.where(err | limit.null, 0.0, limit.data if limit.kind == "num" else 0.0).astype(float)
    out_rate = np.where(err | rate.null, np.nan, rate.data if rate.kind == "num" else np.nan).astype(float)
    out_reasons = reasons.data.copy() if reasons.kind == "list" else object_column(n, ())
    out_reasons[err] = object_column(int(err.sum()), ("ENGINE_ERROR",))
    if grade.kind == "str":
        out_grade = np.asarray(np.where(err | grade.null, None, grade.data), dtype=object)
    else:
        out_grade = np.full(n, None, dtype=object)
    cap = b.columns.get("exposure_cap")
    out_cap = None
    if cap is not None and cap.kind in ("num", "null"):
        out_cap = np.where(err | cap.null, np.nan, cap.data if cap.kind == "num" else np.nan).astype(float)
    return BatchResult(out_outcome, out_limit, out_rate, out_reasons, out_grade, out_cap)


# --- inputs -----------------------------------------------------------------------------------------------


def column(values: Any, n: int) -> V:
    """A batch column from a sequence or array, typed by what it holds (None/NaN are null)."""
    arr = np.asarray(values)
    false = np.zeros(n, dtype=bool)
    if arr.dtype == bool:
        return V("bool", arr, false, false.copy())
    if arr.dtype.kind in "iuf":
        data = arr.astype(float)
        null = np.isnan(data)
        return V("num", np.where(null, 0.0, data), null, false.copy())
    items = list(arr.tolist()) if arr.dtype != object else list(arr)
    null = np.fromiter((v is None or (isinstance(v, float) and v != v) for v in items), dtype=bool, count=n)
    kinds = {_kind(v) for v, isnull in zip(items, null, strict=True) if not isnull}
    if not kinds:
        return V("null", None, np.ones(n, dtype=bool), false.copy())
    if len(kinds) > 1:
        raise NotCompilable(f"a column mixing {', '.join(sorted(kinds))} values")
    kind = kinds.pop()
    if kind == "num":
        data = np.array([0.0 if isnull else float(v) for v, isnull in zip(items, null, strict=True)])
        return V("num", data, null, false.copy())
    if kind == "bool":
        return V(
            "bool",
            np.array([bool(v) if not isnull else False for v, isnull in zip(items, null, strict=True)]),
            null,
            false.copy(),
        )
    data_obj = np.empty(n, dtype=object)
    data_obj[:] = [None if isnull else v for v, isnull in zip(items, null, strict=True)]
    return V("str", data_obj, null, false.copy())


def _kind(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, int | float | Decimal | np.integer | np.floating):
        return "num"
    if isinstance(value, str):
        return "str"
    raise NotCompilable(f"a column holding {type(value).__name__} values")


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists and scalars are leaves."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def columns_from_inputs(inputs: list[DecisionInput]) -> dict[str, V]:
    """Batch columns from decision inputs (the same facts the engine sees, by field path)."""
    rows = [flatten(i.model_dump(mode="python")) for i in inputs]
    paths = sorted({p for r in rows for p in r})
    n = len(rows)
    return {
        p: column(np.array([r.get(p) for r in rows], dtype=object), n)
        for p in paths
        if not isinstance(rows[0].get(p), list | tuple)
    }


def columns_from_arrow(
    batch: Any, only: set[str] | None = None, numeric: Callable[[str], bool] | None = None
) -> dict[str, V]:
    """Batch columns from an Arrow record batch or table whose columns are named by field path.

    `numeric(path)` says which text or decimal columns hold numbers (they are cast to float64)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = batch.num_rows
    cols: dict[str, V] = {}
    for name in batch.schema.names:
        if only is not None and name not in only:
            continue
        arr = batch.column(name)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        kind = arr.type
        wants_number = numeric(name) if numeric is not None else False
        if pa.types.is_decimal(kind) or (wants_number and (pa.types.is_string(kind) or pa.types.is_large_string(kind))):
            try:
                arr = pc.cast(arr, pa.float64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise NotCompilable(f"column '{name}' holds values that are not numbers") from None
            kind = arr.type
        null = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        if pa.types.is_floating(kind) or pa.types.is_integer(kind):
            data = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=float)
            cols[name] = V("num", np.where(null, 0.0, data), null | np.isnan(data), np.zeros(n, dtype=bool))
        elif pa.types.is_boolean(kind):
            filled = pc.fill_null(arr, False).to_numpy(zero_copy_only=False)
            cols[name] = V("bool", np.asarray(filled, dtype=bool), null, np.zeros(n, dtype=bool))
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            data_obj = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)
            cols[name] = (
                V("str", data_obj, null, np.zeros(n, dtype=bool))
                if not null.all()
                else V("null", None, null, np.zeros(n, dtype=bool))
            )
        elif pa.types.is_null(kind):
            cols[name] = V("null", None, np.ones(n, dtype=bool), np.zeros(n, dtype=bool))
        else:
            raise NotCompilable(f"column '{name}' of Arrow type {kind}")
    return cols


def concat_results(parts: list[BatchResult]) -> BatchResult:
    """One result from the results of consecutive batches."""

    def joined(f: str) -> Any:
        return np.concatenate([getattr(p, f) for p in parts]) if parts else np.array([])

    caps = None
    if parts and all(p.exposure_cap is not None for p in parts):
        caps = joined("exposure_cap")
    return BatchResult(joined("outcome"), joined("limit"), joined("annual_rate"), joined("reasons"),
                       joined("risk_grade"), caps)
