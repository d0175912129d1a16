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
from microlend.decisioning.tenant_setup import setup_tenant
from microlend.decisioning.versions import (
    PolicySetup,
    PolicyVersion,
    Submission,
    active_policy,
    list_versions,
    policy_content,
    policy_setup,
    publish,
    save_draft,
    stop_challenger,
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
    "ReplayResult",
    "Submission",
    "active_policy",
    "arm_summary",
    "decide",
    "decision_detail",
    "get_decision",
    "list_versions",
    "policy_content",
    "policy_setup",
    "publish",
    "replay",
    "save_draft",
    "setup_tenant",
    "stop_challenger",
    "submission_of",
    "submit",
    "submit_with_evidence",
    "version_of",
]
