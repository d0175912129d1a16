"""Limit management for existing borrowers (额度管理): a periodic review re-decides each credit line from
behaviour — repayment history, utilisation, the behaviour score and early-warning (预警) signals.

The rules are a policy document of kind `limit_review` (see `policies/default_limit_review.json`) with the
outputs `action` (increase 提额, keep, decrease 降额, freeze 冻结), `limit` (the new limit), `outcome`
(`approve`: apply automatically within policy; `refer`: a person decides, e.g. a large increase) and
`reasons`. This module evaluates it for one line (rule engine) or a whole portfolio (batch); applying the
result to a credit line belongs to origination.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, field_validator

from microlend.core.errors import ValidationError
from microlend.decisioning.columnar import ColumnarPolicy
from microlend.decisioning.domain import engine_json, engine_limit, validate_facts
from microlend.decisioning.policy import CompiledPolicy, parse_policy, policy_currency

DEFAULT_LIMIT_REVIEW = "default_limit_review.json"
ACTIONS = ("increase", "keep", "decrease", "freeze")


class _Facts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LineFacts(_Facts):
    """The credit line under review."""

    line_id: str
    limit: Decimal
    utilisation: Decimal  # drawn / limit, 0..1
    months_on_book: int

    @field_validator("limit", "utilisation", mode="before")
    @classmethod
    def _no_float(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError("send amounts and ratios as decimal strings, not floating point")
        return value


class BehaviourFacts(_Facts):
    """How the borrower has repaid: current and worst days past due, share of instalments paid on time."""

    current_dpd: int = 0
    max_dpd_6m: int = 0
    on_time_ratio_12m: Decimal | None = None


class WarningFacts(_Facts):
    """Early-warning signals from outside the loan."""

    blacklisted: bool = False
    overdue_elsewhere: bool = False
    turnover_drop: bool = False  # turnover fell sharply against last year


class BehaviourScore(_Facts):
    model_version: str = ""
    score: Decimal | None = None
    pd: Decimal | None = None


class LimitReviewInput(_Facts):
    line: LineFacts
    behaviour: BehaviourFacts = BehaviourFacts()
    warning: WarningFacts = WarningFacts()
    model: BehaviourScore = BehaviourScore()

    @classmethod
    def from_canonical(cls, data: Any) -> LimitReviewInput:
        return validate_facts(cls, data)

    def engine_context(self) -> str:
        return engine_json(self.model_dump(mode="python"))


@dataclass(frozen=True)
class LimitReview:
    action: str
    outcome: str
    limit: Decimal
    reasons: tuple[str, ...]

    def outputs(self) -> dict[str, Any]:
        return {"action": self.action, "outcome": self.outcome, "limit": str(self.limit), "reasons": list(self.reasons)}


def default_limit_review() -> dict[str, Any]:
    text = resources.files("microlend.decisioning").joinpath("policies", DEFAULT_LIMIT_REVIEW).read_text("utf-8")
    return parse_policy(text, DEFAULT_LIMIT_REVIEW)


def review_line(compiled: CompiledPolicy, review_input: LimitReviewInput) -> LimitReview:
    """Review one line with the rule engine; a failure keeps the limit and refers it to a person."""
    try:
        result = compiled.evaluate_raw(review_input.engine_context()).get("result") or {}
        return _review_from(result, compiled.currency, review_input.line.limit)
    except ValidationError:
        raise
    except Exception:  # the engine's errors are plain RuntimeError/ValueError
        return LimitReview("keep", "refer", review_input.line.limit, ("ENGINE_ERROR",))


def _review_from(result: dict[str, Any], currency: str, current: Decimal) -> LimitReview:
    action, outcome, reasons = result.get("action"), result.get("outcome"), result.get("reasons", [])
    if action not in ACTIONS:
        raise ValidationError(
            f"action: the policy gave {action!r}, expected one of {', '.join(ACTIONS)}", field="action"
        )
    if outcome not in ("approve", "refer"):
        raise ValidationError(f"outcome: the policy gave {outcome!r}, expected approve or refer", field="outcome")
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise ValidationError("reasons: the policy must give a list of reason codes", field="reasons")
    return LimitReview(str(action), str(outcome), engine_limit(result.get("limit", current), currency), tuple(reasons))


# --- a whole portfolio ------------------------------------------------------------------------------------

LINE_NUMERIC = (
    "line.limit",
    "line.utilisation",
    "line.months_on_book",
    "behaviour.current_dpd",
    "behaviour.max_dpd_6m",
    "behaviour.on_time_ratio_12m",
    "model.score",
    "model.pd",
)


def review_portfolio(doc: dict[str, Any], lines: pd.DataFrame) -> pd.DataFrame:
    """Review every line of a table (columns named by input path) in batch: one row per line with
    line_id, action, outcome, limit (Decimal) and reasons."""
    from microlend.decisioning.simulate import frame_columns

    policy = ColumnarPolicy(doc)
    n = len(lines)
    cols = frame_columns(lines, policy.fields, numeric=LINE_NUMERIC)
    values, err = policy.evaluate_outputs(cols, n, ("action", "outcome", "limit", "reasons"))
    currency = policy_currency(doc)
    current = lines["line.limit"].astype(str).tolist()
    limit_col, action_col, outcome_col, reasons_col = (
        values["limit"],
        values["action"],
        values["outcome"],
        values["reasons"],
    )
    out = []
    for i in range(n):
        if err[i]:
            out.append(("keep", "refer", Decimal(current[i]), ("ENGINE_ERROR",)))
            continue
        limit = engine_limit(float(limit_col.data[i]) if not limit_col.null[i] else current[i], currency)
        out.append((str(action_col.data[i]), str(outcome_col.data[i]), limit, tuple(reasons_col.data[i])))
    return pd.DataFrame(
        {
            "line_id": lines["line.line_id"].astype(str).to_numpy(),
            "action": [o[0] for o in out],
            "outcome": [o[1] for o in out],
            "limit": np.array([o[2] for o in out], dtype=object),
            "reasons": [o[3] for o in out],
        }
    )
