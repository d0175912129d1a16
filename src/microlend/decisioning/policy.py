"""Credit policies (授信政策) as data: a GoRules JSON Decision Model evaluated by zen-engine.

A policy document is the JDM graph (`nodes`, `edges`) plus our own keys, which the engine ignores:
`metadata` (name, description, currency), `test_base` (a full decision input) and `tests` (golden
cases: `{"name", "input": <partial input deep-merged over test_base>, "expect": {...}}`).
A version is identified by the sha256 of the document's canonical JSON.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import zen

from microlend.core.errors import ValidationError
from microlend.decisioning.domain import (
    OUTCOMES,
    DecisionInput,
    ExposureFacts,
    canonical_json,
    engine_limit,
    engine_rate,
)

DEFAULT_POLICY = "default_micro_loan.json"

#: Sub-decisions (`decisionNode`) by key: a key is the content hash of a stored policy version, so what a key
#: loads never changes and a decision replays with exactly the sub-decision it was made with. Filled from a
#: bank's stored versions (`versions.load_subdecisions`) before a policy that uses them is compiled.
_SUBDECISIONS: dict[str, Any] = {}


def _load_subdecision(key: str) -> Any:
    content = _SUBDECISIONS.get(key)
    if content is None:
        raise ValidationError(f"sub-decision {key[:12]}: no stored policy version with this hash is loaded",
                              field="content")
    return content


def register_subdecision(content_hash: str, doc: dict[str, Any]) -> None:
    """Make a stored version loadable as a sub-decision under its content hash (checked here)."""
    if policy_hash(doc) != content_hash:
        raise ValidationError(f"sub-decision {content_hash[:12]}: content does not match its hash", field="content")
    if content_hash not in _SUBDECISIONS:
        _SUBDECISIONS[content_hash] = zen.ZenDecisionContent(json.dumps(engine_graph(doc)))


def subdecision_keys(doc: dict[str, Any]) -> list[str]:
    """The keys of the sub-decisions a policy document uses directly."""
    keys = []
    for node in doc.get("nodes", []):
        if isinstance(node, dict) and node.get("type") == "decisionNode":
            content = node.get("content")
            key = content.get("key") if isinstance(content, dict) else None
            keys.append(str(key or ""))
    return keys


def engine_graph(doc: dict[str, Any]) -> dict[str, Any]:
    """The part of a policy document the engine reads."""
    return {k: v for k, v in doc.items() if k in ("contentType", "nodes", "edges")}


_ENGINE = zen.ZenEngine({"loader": _load_subdecision})


@dataclass(frozen=True)
class PolicyResult:
    """What a policy decided, with exact numbers, and the engine's trace when asked for."""

    outcome: str
    limit: Decimal
    annual_rate: Decimal | None
    reasons: tuple[str, ...]
    risk_grade: str | None = None
    trace: dict[str, Any] | None = field(default=None, compare=False)
    latency_ms: float = field(default=0.0, compare=False)
    exposure_cap: Decimal | None = None  # the cap on the obligor group's exposure the policy applied

    def outputs(self) -> dict[str, Any]:
        """The JSON form stored with a decision and compared on replay."""
        return {
            "outcome": self.outcome,
            "limit": str(self.limit),
            "annual_rate": None if self.annual_rate is None else str(self.annual_rate),
            "reasons": list(self.reasons),
            "risk_grade": self.risk_grade,
            # only from policies that give it, so decisions of earlier policies replay to what they stored
            **({} if self.exposure_cap is None else {"exposure_cap": str(self.exposure_cap)}),
        }


def parse_policy(text: str | bytes, source: str = "policy") -> dict[str, Any]:
    """Read a policy document, refusing what is not a JDM graph."""
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{source}: not valid JSON ({exc})", field="content") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list) or not isinstance(doc.get("edges"), list):
        raise ValidationError(f"{source}: a policy needs 'nodes' and 'edges' lists (JDM format)", field="content")
    return doc


def load_policy_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"{p}: cannot read the policy file ({exc.strerror})", field="file") from None
    return parse_policy(text, str(p))


def default_policy() -> dict[str, Any]:
    """The micro-loan policy a new bank starts with."""
    text = resources.files("microlend.decisioning").joinpath("policies", DEFAULT_POLICY).read_text("utf-8")
    return parse_policy(text, DEFAULT_POLICY)


def policy_hash(doc: dict[str, Any]) -> str:
    """The version identity: sha256 of the canonical JSON of the whole document (tests included)."""
    return hashlib.sha256(canonical_json(doc).encode("utf-8")).hexdigest()


def policy_name(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata")
    return str(meta.get("name", "")) if isinstance(meta, dict) else ""


def policy_kind(doc: dict[str, Any]) -> str:
    """`credit_decision` (the default) or `limit_review`: decides which outputs a policy must give."""
    meta = doc.get("metadata")
    return str(meta.get("kind", "credit_decision")) if isinstance(meta, dict) else "credit_decision"


def policy_currency(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata")
    return str(meta.get("currency", "CNY")) if isinstance(meta, dict) else "CNY"


class CompiledPolicy:
    """A policy compiled once by the engine; `evaluate` is the in-process decision."""

    def __init__(self, doc: dict[str, Any], content_hash: str | None = None) -> None:
        self.content_hash = content_hash or policy_hash(doc)
        self.currency = policy_currency(doc)
        self.document = doc
        graph = engine_graph(doc)
        try:
            self._decision = _ENGINE.create_decision(json.dumps(graph))
        except Exception as exc:  # the engine's own error types are not exported
            reason = " ".join(str(exc).split("Stack backtrace")[0].split())
            raise ValidationError(f"content: the rule engine refuses this policy ({reason})", field="content") from None

    def evaluate_raw(self, context: str | dict[str, Any], trace: bool = False) -> dict[str, Any]:
        """The engine's answer as it gives it (result, and trace when asked)."""
        answer = self._decision.evaluate(context, {"trace": True} if trace else None)
        return dict(answer)

    def evaluate(self, decision_input: DecisionInput, trace: bool = False) -> PolicyResult:
        """Decide one application. An engine failure (e.g. a rule comparing a missing value) becomes a
        referral with reason ENGINE_ERROR: a decision never crashes on incomplete data."""
        started = time.perf_counter()
        try:
            answer = self.evaluate_raw(decision_input.engine_context(), trace)
            result = outputs_from_engine(answer.get("result"), self.currency)
            trace_data = answer.get("trace") if trace else None
        except ValidationError as exc:
            result = _engine_error(str(exc))
            trace_data = {"error": str(exc)} if trace else None
        except Exception as exc:  # engine errors arrive as plain RuntimeError/ValueError
            result = _engine_error(str(exc))
            trace_data = {"error": str(exc)} if trace else None
        result = within_exposure(result, decision_input.exposure)
        latency = (time.perf_counter() - started) * 1000.0
        return PolicyResult(
            result.outcome,
            result.limit,
            result.annual_rate,
            result.reasons,
            result.risk_grade,
            trace_data,
            latency,
            result.exposure_cap,
        )


def within_exposure(result: PolicyResult, exposure: ExposureFacts) -> PolicyResult:
    """Whatever the policy says, a decision never grants more than the bank's cap on the obligor group's
    exposure leaves available (授信敞口上限): the limit is lowered to it, with reason EXPOSURE_CAP, and
    nothing available is a decline."""
    if exposure.cap is None or result.outcome == "decline":
        return result
    available = max(exposure.cap - exposure.total, Decimal(0))
    if result.limit <= available:
        return result
    reasons = result.reasons if "EXPOSURE_CAP" in result.reasons else (*result.reasons, "EXPOSURE_CAP")
    if available == 0:
        return replace(result, outcome="decline", limit=Decimal("0.00"), annual_rate=None, reasons=("EXPOSURE_CAP",))
    return replace(result, limit=available, reasons=reasons)


def compact_trace(trace: Any) -> Any:
    """The engine's trace without each node's copy of the whole context: which node ran in which order,
    which rows fired (with the values they looked at) and what each expression gave."""
    if not isinstance(trace, dict):
        return trace
    return {
        str(node_id): {k: _compact_data(step.get(k)) if k == "traceData" else step.get(k)
                       for k in ("name", "order", "traceData")}
        for node_id, step in trace.items()
        if isinstance(step, dict)
    }


def _compact_data(data: Any) -> Any:
    """A sub-decision's trace data is a trace of its own: compacted the same way."""
    if isinstance(data, dict) and data and all(isinstance(v, dict) and "order" in v and "name" in v
                                               for v in data.values()):
        return compact_trace(data)
    return data


def _engine_error(message: str) -> PolicyResult:
    return PolicyResult("refer", Decimal("0.00"), None, ("ENGINE_ERROR",), None, {"error": message})


def outputs_from_engine(result: Any, currency: str = "CNY") -> PolicyResult:
    """Check and convert the engine's result into exact outputs (the required outputs must be there)."""
    if not isinstance(result, dict):
        raise ValidationError("the policy's result is not an object", field="outcome")
    # the engine drops null values from its result, so a missing annual_rate means "not priced"
    missing = [k for k in ("outcome", "limit", "reasons") if k not in result]
    if missing:
        raise ValidationError(f"{missing[0]}: the policy did not produce it", field=missing[0])
    outcome = result["outcome"]
    if outcome not in OUTCOMES:
        raise ValidationError(
            f"outcome: the policy gave {outcome!r}, expected one of {', '.join(OUTCOMES)}", field="outcome"
        )
    reasons = result["reasons"]
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise ValidationError("reasons: the policy must give a list of reason codes", field="reasons")
    limit_value = result["limit"]
    limit = engine_limit(0 if limit_value is None else limit_value, currency)
    rate = engine_rate(result.get("annual_rate"))
    grade = result.get("risk_grade")
    cap = result.get("exposure_cap")
    return PolicyResult(str(outcome), limit, rate, tuple(reasons), None if grade is None else str(grade),
                        exposure_cap=None if cap is None else engine_limit(cap, currency))


@lru_cache(maxsize=64)
def _compiled_by_text(content_hash: str, text: str) -> CompiledPolicy:
    return CompiledPolicy(json.loads(text), content_hash)


def compile_policy(doc: dict[str, Any]) -> CompiledPolicy:
    """Compile a policy, cached by content hash (a published version compiles once per process)."""
    text = canonical_json(doc)
    return _compiled_by_text(hashlib.sha256(text.encode("utf-8")).hexdigest(), text)


# --- golden tests -------------------------------------------------------------------------------------


def deep_merge(base: Any, override: Any) -> Any:
    """`override` laid over `base`: objects merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = copy.deepcopy(base)
        for key, value in override.items():
            merged[key] = deep_merge(merged.get(key), value)
        return merged
    return copy.deepcopy(override)


def golden_inputs(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, full input, expected outputs) for each golden test in the document."""
    tests = doc.get("tests", [])
    if not isinstance(tests, list):
        raise ValidationError("tests: must be a list of {name, input, expect}", field="tests")
    base = doc.get("test_base", {})
    cases = []
    for i, case in enumerate(tests):
        if not isinstance(case, dict) or not isinstance(case.get("expect"), dict):
            raise ValidationError(f"tests[{i}]: needs an 'expect' object", field="tests")
        name = str(case.get("name", f"test {i + 1}"))
        cases.append((name, deep_merge(base, case.get("input", {})), case["expect"]))
    return cases
