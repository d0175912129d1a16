"""Golden tests of a policy document (its `tests`): each input evaluated and the outputs it names compared,
limits and rates as exact decimals. Both kinds: credit decisions and limit reviews."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from microlend.core.errors import ValidationError
from microlend.decisioning.domain import DecisionInput, exact_decimal
from microlend.decisioning.limits import LimitReviewInput, review_line
from microlend.decisioning.policy import (
    CompiledPolicy,
    compile_policy,
    golden_inputs,
    policy_hash,
    policy_kind,
    register_subdecision,
)


@dataclass(frozen=True)
class GoldenResult:
    name: str
    passed: bool
    problems: tuple[str, ...]



def run_golden_tests(doc: dict[str, Any], subdecisions: Mapping[str, Any] | None = None) -> list[GoldenResult]:
    """Evaluate every golden test and compare the outputs it names (limits and rates as Decimals), with the
    sub-decisions the policy loads (stored documents by content hash)."""
    for key, sub in (subdecisions or {}).items():
        if policy_hash(sub) == key:
            register_subdecision(key, sub)
    compiled = compile_policy(doc)
    evaluate = _evaluator(policy_kind(doc), compiled)
    results = []
    for name, data, expect in golden_inputs(doc):
        try:
            got = evaluate(data)
        except ValidationError as exc:
            results.append(GoldenResult(name, False, (f"input is not valid: {exc}",)))
            continue
        problems = _compare(expect, got)
        results.append(GoldenResult(name, not problems, tuple(problems)))
    return results


def _evaluator(kind: str, compiled: CompiledPolicy) -> Callable[[Any], dict[str, Any]]:
    """For a policy kind: golden-test input -> outputs in their stored JSON form."""
    if kind == "limit_review":
        return lambda data: review_line(compiled, LimitReviewInput.from_canonical(data)).outputs()
    if kind == "early_warning":
        from microlend.decisioning.early_warning import EarlyWarningInput, assess_one

        return lambda data: dict(assess_one(compiled, EarlyWarningInput.from_canonical(data)))
    return lambda data: compiled.evaluate(DecisionInput.from_canonical(data)).outputs()


def _compare(expect: dict[str, Any], got: dict[str, Any]) -> list[str]:
    problems = []
    for key, wanted in expect.items():
        if key not in got:
            problems.append(f"expect.{key}: not an output (one of {', '.join(got)})")
            continue
        actual = got[key]
        if key in ("limit", "annual_rate", "exposure_cap"):
            ok = (wanted is None and actual is None) or (
                wanted is not None and actual is not None and exact_decimal(wanted, key) == Decimal(actual)
            )
        elif key == "reasons":
            ok = list(wanted) == list(actual)
        else:
            ok = wanted == actual
        if not ok:
            problems.append(f"{key}: expected {wanted!r}, got {actual!r}")
    return problems
