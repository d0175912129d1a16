"""Policy lint (政策检查): what must hold before a policy may be submitted for publishing.

Errors refuse the policy: missing required outputs, code nodes, unconnected nodes, failing golden tests,
a graph the engine refuses, a reason code the bank's catalogue has no text for (the borrower would be told
nothing), a parameterised reason given by a row without the bound its text needs, and a sub-decision that is
not a stored version. Warnings report rules that can never fire under the first hit policy, holes in
numeric bands, and a policy without golden tests.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from microlend.core.errors import ValidationError
from microlend.decisioning.cells import Cell, holes, parse_cell
from microlend.decisioning.domain import OUTPUTS_BY_KIND
from microlend.decisioning.golden import run_golden_tests
from microlend.decisioning.policy import CompiledPolicy, policy_kind, subdecision_keys
from microlend.decisioning.reasons import CATALOGUE, Catalogue, is_reason_field

Severity = Literal["error", "warning"]
CODE_NODES = ("functionNode",)


@dataclass(frozen=True)
class Finding:
    severity: Severity
    kind: str  # missing_output, code_node, unconnected_node, unreachable_rule, table_gap, ...
    where: str
    message: str

    def text(self) -> str:
        return f"{self.severity}: [{self.kind}] {self.where}: {self.message}"


@dataclass(frozen=True)
class LintReport:
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    def kinds(self) -> set[str]:
        return {f.kind for f in self.findings}


def lint_policy(doc: dict[str, Any], *, run_tests: bool = True, catalogue: Catalogue | None = None,
                subdecisions: Mapping[str, Any] | None = None) -> LintReport:
    """Every finding about a policy document (parsed JDM with our extra keys), against a bank's reason-code
    catalogue (the built-in codes when none is given) and the sub-decisions it may load (by key)."""
    findings: list[Finding] = []
    nodes = [n for n in doc.get("nodes", []) if isinstance(n, dict)]
    findings += _code_nodes(nodes)
    findings += _graph(nodes, doc.get("edges", []))
    findings += _required_outputs(nodes, policy_kind(doc))
    for node in nodes:
        if node.get("type") == "decisionTableNode":
            findings += _table(node)
    findings += _reason_codes(nodes, CATALOGUE if catalogue is None else catalogue)
    for sub in (subdecisions or {}).values():  # the codes a sub-decision gives are this policy's too
        if isinstance(sub, dict):
            findings += _reason_codes([n for n in sub.get("nodes", []) if isinstance(n, dict)],
                                      CATALOGUE if catalogue is None else catalogue)
    findings += _subdecisions(doc, subdecisions)
    findings += _unknown_fields(nodes, policy_kind(doc))
    structural = any(f.severity == "error" for f in findings)
    if not structural:
        try:
            CompiledPolicy(doc)
        except ValidationError as exc:
            findings.append(Finding("error", "invalid_policy", "policy", exc.message))
            structural = True
    if run_tests and not structural:
        findings += _golden(doc, subdecisions)
    return LintReport(tuple(findings))


def _content(node: dict[str, Any]) -> dict[str, Any]:
    """A node's content when it is an object (a malformed or code node may hold text: nothing to read)."""
    content = node.get("content")
    return content if isinstance(content, dict) else {}


def _name(node: dict[str, Any]) -> str:
    return f"node '{node.get('name') or node.get('id')}'"


def _code_nodes(nodes: list[dict[str, Any]]) -> list[Finding]:
    return [
        Finding(
            "error",
            "code_node",
            _name(n),
            f"{n.get('type')} runs code; express the rule as a table, expression or switch",
        )
        for n in nodes
        if n.get("type") in CODE_NODES
    ]


def _graph(nodes: list[dict[str, Any]], edges: Any) -> list[Finding]:
    findings: list[Finding] = []
    ids = {n.get("id") for n in nodes}
    succ: dict[Any, set[Any]] = defaultdict(set)
    pred: dict[Any, set[Any]] = defaultdict(set)
    for e in edges if isinstance(edges, list) else []:
        if not isinstance(e, dict):
            continue
        a, b = e.get("sourceId"), e.get("targetId")
        if a not in ids or b not in ids:
            findings.append(
                Finding(
                    "error",
                    "unconnected_node",
                    f"edge '{e.get('id')}'",
                    f"connects '{a}' to '{b}', which is not a node",
                )
            )
            continue
        succ[a].add(b)
        pred[b].add(a)
    inputs = [n.get("id") for n in nodes if n.get("type") == "inputNode"]
    outputs = [n.get("id") for n in nodes if n.get("type") == "outputNode"]
    if not inputs or not outputs:
        findings.append(Finding("error", "unconnected_node", "policy", "needs an input node and an output node"))
        return findings
    from_input, to_output = _reach(inputs, succ), _reach(outputs, pred)
    for n in nodes:
        nid = n.get("id")
        if nid not in from_input or nid not in to_output:
            side = "the input" if nid not in from_input else "the output"
            findings.append(Finding("error", "unconnected_node", _name(n), f"is not connected to {side}"))
    return findings


def _reach(start: list[Any], step: dict[Any, set[Any]]) -> set[Any]:
    seen, todo = set(start), list(start)
    while todo:
        for nxt in step[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _produced(node: dict[str, Any]) -> set[str]:
    """Top-level keys a node writes into the result."""
    content = _content(node)
    prefix = content.get("outputPath")
    if prefix:
        return {str(prefix).split(".")[0]}
    if node.get("type") == "expressionNode":
        return {str(x.get("key", "")).split(".")[0] for x in content.get("expressions", [])}
    if node.get("type") == "decisionTableNode":
        return {str(o.get("field", "")).split(".")[0] for o in content.get("outputs", [])}
    return set()


def _required_outputs(nodes: list[dict[str, Any]], kind: str) -> list[Finding]:
    if kind not in OUTPUTS_BY_KIND:
        known = ", ".join(OUTPUTS_BY_KIND)
        return [Finding("error", "missing_output", "metadata.kind", f"'{kind}' is not a policy kind ({known})")]
    produced: set[str] = set()
    for n in nodes:
        produced |= _produced(n)
    return [
        Finding("error", "missing_output", "policy", f"no node produces the required output '{out}'")
        for out in OUTPUTS_BY_KIND[kind]
        if out not in produced
    ]


def _table(node: dict[str, Any]) -> list[Finding]:
    content = _content(node)
    columns = [c.get("id") for c in content.get("inputs", [])]
    names = {c.get("id"): c.get("name") or c.get("field") or c.get("id") for c in content.get("inputs", [])}
    rules = [r for r in content.get("rules", []) if isinstance(r, dict)]
    parsed: list[list[Cell | None]] = [[parse_cell(r.get(c, "")) for c in columns] for r in rules]
    findings: list[Finding] = []
    if content.get("hitPolicy", "first") != "first":
        return findings  # a collect table lists what applies: values that match no row are intended
    for j in range(len(rules)):
        for i in range(j):
            if _shadows(parsed[i], parsed[j]):
                findings.append(
                    Finding(
                        "warning",
                        "unreachable_rule",
                        f"{_name(node)} row {j + 1} ({rules[j].get('_id')})",
                        f"can never fire: row {i + 1} ({rules[i].get('_id')}) above it matches everything it matches",
                    )
                )
                break
    for k, col in enumerate(columns):
        groups: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for j, r in enumerate(rules):
            groups[tuple(str(r.get(c, "")).strip() for c in columns if c != col)].append(j)
        for rows in groups.values():
            cells = [parsed[j][k] for j in rows]
            # a column of numeric bands (a `null` row beside them is fine); anything else is not checked
            if any(c is None or c.any or c.values for c in cells) or not any(c.intervals for c in cells if c):
                continue
            intervals = [iv for c in cells if c is not None for iv in c.intervals]
            for hole in holes(intervals):
                findings.append(
                    Finding(
                        "warning",
                        "table_gap",
                        f"{_name(node)} column '{names[col]}'",
                        f"values in {hole.text()} match no row (rows {', '.join(str(j + 1) for j in rows)})",
                    )
                )
    return findings


def _shadows(upper: list[Cell | None], lower: list[Cell | None]) -> bool:
    return all(u is not None and w is not None and u.covers(w) for u, w in zip(upper, lower, strict=True))


def _reason_codes(nodes: list[dict[str, Any]], catalogue: Catalogue) -> list[Finding]:
    findings = []
    for n in nodes:
        if n.get("type") != "decisionTableNode":
            continue
        content = _content(n)
        reason_cols = [o.get("id") for o in content.get("outputs", []) if is_reason_field(o.get("field"))]
        columns = {str(c.get("field")): c.get("id") for c in content.get("inputs", [])}
        for j, r in enumerate(content.get("rules", [])):
            if not isinstance(r, dict):
                continue
            for col in reason_cols:
                cell = parse_cell(r.get(col, ""))
                for code in cell.values if cell is not None else ():
                    if not isinstance(code, str):
                        continue
                    entry = catalogue.get(code)
                    if entry is None or entry.missing_text():
                        what = "is not in" if entry is None else f"has no {', '.join(entry.missing_text())} text in"
                        findings.append(Finding(
                            "error", "unknown_reason", f"{_name(n)} row {j + 1}",
                            f"reason code '{code}' {what} the bank's reason catalogue; add it with its texts "
                            "before the policy can be submitted"))
                        continue
                    for param, field in entry.params:
                        column = columns.get(field)
                        if column is None or not str(r.get(column, "") or "").strip():
                            findings.append(Finding(
                                "error", "reason_parameter", f"{_name(n)} row {j + 1}",
                                f"reason code '{code}' says {{{param}}}, which comes from the row's '{field}' "
                                "cell, and this row tests no such cell"))
    return findings


def _subdecisions(doc: dict[str, Any], loadable: Mapping[str, Any] | None) -> list[Finding]:
    """A sub-decision is named by the content hash of a stored version of the bank's policies."""
    findings = []
    for key in subdecision_keys(doc):
        if not key:
            findings.append(Finding("error", "sub_decision", "policy", "a sub-decision node names no version"))
        elif loadable is None or key not in loadable:
            findings.append(Finding("error", "sub_decision", f"sub-decision '{key[:12]}'",
                                    "is not a stored policy version of this bank (name it by its content hash)"))
    return findings


def _golden(doc: dict[str, Any], subdecisions: Mapping[str, Any] | None = None) -> list[Finding]:
    try:
        results = run_golden_tests(doc, subdecisions)
    except ValidationError as exc:
        return [Finding("error", "golden_test_failed", "tests", exc.message)]
    if not results:
        return [Finding("warning", "no_golden_tests", "tests", "the policy has no golden tests")]
    return [
        Finding("error", "golden_test_failed", f"test '{r.name}'", "; ".join(r.problems))
        for r in results
        if not r.passed
    ]


def _input_paths(kind: str) -> set[str]:
    from pydantic import BaseModel

    from microlend.decisioning.domain import SOURCE_KINDS, DecisionInput
    from microlend.decisioning.early_warning import EarlyWarningInput
    from microlend.decisioning.limits import LimitReviewInput

    roots: dict[str, type[BaseModel]] = {"limit_review": LimitReviewInput, "early_warning": EarlyWarningInput}
    root: type[BaseModel] = roots.get(kind, DecisionInput)
    paths = set()
    for name, info in root.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths |= {f"{name}.{sub}" for sub in annotation.model_fields}
    if root is DecisionInput:
        paths |= {f"data.sources.{kind}" for kind in SOURCE_KINDS}  # a map: one status per provider kind
    return paths


def _unknown_fields(nodes: list[dict[str, Any]], kind: str) -> list[Finding]:
    """Field paths that are neither decision inputs, features, nor produced by a node: a misspelt field
    silently reads null, so such rules quietly never fire."""
    from microlend.decisioning.columnar import NotCompilable, expression_fields

    known = _input_paths(kind)
    produced: set[str] = set()
    for n in nodes:
        content = _content(n)
        prefix = f"{content['outputPath']}." if content.get("outputPath") else ""
        if content.get("outputPath"):
            produced.add(str(content["outputPath"]))
        produced |= {prefix + str(x.get("key", "")) for x in content.get("expressions", []) or []}
        produced |= {prefix + str(o.get("field", "")) for o in content.get("outputs", []) or []}
    findings = []
    for n in nodes:
        content = _content(n)
        texts = [str(x.get("value", "")) for x in content.get("expressions", []) or []]
        texts += [str(c.get("field")) for c in content.get("inputs", []) or [] if c.get("field")]
        used: set[str] = set()
        for text in texts:
            try:
                used |= expression_fields(text)
            except NotCompilable:
                continue
        for path in sorted(used):
            if path in known or path in produced or path.startswith("features.") or path.startswith("$"):
                continue
            findings.append(
                Finding(
                    "warning",
                    "unknown_field",
                    _name(n),
                    f"'{path}' is not a decision input, a feature or a value any node produces",
                )
            )
    return findings
