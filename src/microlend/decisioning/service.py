"""Use cases of the decision engine (决策中台), gathered for adapters: policy versions (`versions`: submit
and publish with maker-checker, champion, challenger and shadow), deciding applications and reading stored
decisions back (`deciding`), and the default policy a new bank moves in with (`tenant_setup`)."""

from __future__ import annotations

from microlend.decisioning.deciding import (
    ArmSummary,
    DecisionDetail,
    DecisionRecord,
    ReplayResult,
    arm_summary,
    decide,
    decision_detail,
    get_decision,
    replay,
)
from microlend.decisioning.reason_codes import ReasonCode, get_reason_code, list_reason_codes, save_reason_code
from microlend.decisioning.tenant_setup import setup_tenant
from microlend.decisioning.versions import (
    PolicySetup,
    PolicyVersion,
    Submission,
    active_policy,
    lint_for_bank,
    list_versions,
    policy_content,
    policy_setup,
    publish,
    save_draft,
    stop_challenger,
    subdecisions_of,
    submission_of,
    submit,
    submit_with_evidence,
    version_of,
)

__all__ = [
    "ArmSummary",
    "DecisionDetail",
    "DecisionRecord",
    "PolicySetup",
    "PolicyVersion",
    "ReasonCode",
    "ReplayResult",
    "Submission",
    "active_policy",
    "arm_summary",
    "decide",
    "decision_detail",
    "get_decision",
    "get_reason_code",
    "lint_for_bank",
    "list_reason_codes",
    "list_versions",
    "policy_content",
    "policy_setup",
    "publish",
    "replay",
    "save_draft",
    "save_reason_code",
    "setup_tenant",
    "stop_challenger",
    "subdecisions_of",
    "submission_of",
    "submit",
    "submit_with_evidence",
    "version_of",
]
