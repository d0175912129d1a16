"""Policy governance: one publish path with evidence (golden tests, a simulation on the bank's own history),
promote and roll back with a second person, and the challenger report over its test window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from microlend.core.clock import utcnow
from microlend.core.errors import Conflict, PermissionDenied, ValidationError
from microlend.core.identity import Principal
from microlend.core.tables import AuditRow
from microlend.core.tenancy import Tenant
from microlend.core.uow import UnitOfWork
from microlend.decisioning import changes, service
from microlend.decisioning.challenger_report import challenger_report
from microlend.decisioning.evidence import FALLBACK_SAMPLE
from microlend.decisioning.tables import PolicyVersionRow

from .test_decision_service import application, stricter_policy


def audit_actions(uow: UnitOfWork, prefix: str) -> list[str]:
    with uow:
        return list(
            uow.session.execute(
                select(AuditRow.action).where(AuditRow.action.like(f"{prefix}%")).order_by(AuditRow.id)
            ).scalars()
        )


class TestSubmission:
    def test_a_version_without_golden_tests_is_refused(self, uow: UnitOfWork, bank: Tenant, analyst: Principal) -> None:
        doc = stricter_policy()
        del doc["tests"]
        with pytest.raises(ValidationError, match="no golden tests"):
            service.submit(uow, analyst, doc)

    def test_a_bank_without_history_is_simulated_on_the_stated_sample(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal
    ) -> None:
        version, sub = service.submit_with_evidence(uow, analyst, stricter_policy(), note="cut-off 520 -> 540")
        sim = sub.simulation
        assert sim["source"] == "shipped_sample" and sim["sample"] == FALLBACK_SAMPLE
        assert "no acted-on decisions" in sim["fallback"]
        assert sim["champion"]["hash"] == sub.champion_hash
        assert sim["swaps"].get("refer→decline", 0) > 0  # a higher cut-off declines the grey band below 540
        assert sum(sim["candidate"]["outcomes"].values()) == sim["rows"]
        assert all(g["passed"] for g in sub.golden) and sub.golden
        stored = service.submission_of(uow, analyst, version.content_hash)
        assert stored is not None and stored.note == "cut-off 520 -> 540" and stored.simulation == sim

    def test_the_bank_s_own_recent_decisions_are_the_history(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal
    ) -> None:
        low = application({"model": {"score": "530"}})
        for i in range(6):
            service.decide(uow, analyst, application({"customer": {"customer_id": f"c{i}"}}))
        service.decide(uow, analyst, low)
        _, sub = service.submit_with_evidence(uow, analyst, stricter_policy())
        sim = sub.simulation
        assert (sim["source"], sim["rows"], sim["fallback"]) == ("bank_history", 7, None)
        assert sim["swaps"] == {"refer→decline": 1}  # the applicant scored 530 only

    def test_publishing_needs_the_stored_evidence(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal, second_analyst: Principal
    ) -> None:
        version = service.submit(uow, analyst, stricter_policy())
        with uow:
            from microlend.decisioning.tables import PolicySubmissionRow

            uow.session.query(PolicySubmissionRow).delete()
            uow.commit()
        with pytest.raises(Conflict, match="no stored submission evidence"):
            service.publish(uow, second_analyst, version.content_hash)


class TestPromoteAndRollBack:
    def test_a_running_challenger_is_promoted_unchanged_by_a_second_person(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal, second_analyst: Principal
    ) -> None:
        first_champion = service.policy_setup(uow, analyst).champion_hash
        version = service.submit(uow, analyst, stricter_policy())
        service.publish(uow, second_analyst, version.content_hash, challenger_share_bp=1000)
        request = changes.request_change(uow, analyst, "promote", version.content_hash, "it declines less bad")
        with pytest.raises(PermissionDenied, match="maker-checker"):
            changes.decide_change(uow, analyst, request.id, approve=True)
        assert service.policy_setup(uow, analyst).champion_hash == first_champion
        done = changes.decide_change(uow, second_analyst, request.id, approve=True)
        assert (done.status, done.decided_by) == ("approved", "wang.analyst")
        setup = service.policy_setup(uow, analyst)
        assert (setup.champion_hash, setup.challenger_hash) == (version.content_hash, None)
        assert service.version_of(uow, analyst, first_champion).status == "retired"
        assert audit_actions(uow, "policy.")[-2:] == ["policy.request_promote", "policy.promote"]

    def test_only_the_challenger_can_be_promoted(self, uow: UnitOfWork, bank: Tenant, analyst: Principal) -> None:
        version = service.submit(uow, analyst, stricter_policy())
        with pytest.raises(Conflict, match="not the running challenger"):
            changes.request_change(uow, analyst, "promote", version.content_hash)

    def test_a_retired_version_is_published_again_by_a_second_person(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal, second_analyst: Principal
    ) -> None:
        first_champion = service.policy_setup(uow, analyst).champion_hash
        version = service.submit(uow, analyst, stricter_policy())
        service.publish(uow, second_analyst, version.content_hash)
        request = changes.request_change(uow, second_analyst, "rollback", first_champion, "bad rates rose")
        with pytest.raises(Conflict, match="still waiting"):
            changes.request_change(uow, analyst, "rollback", first_champion)
        with pytest.raises(PermissionDenied):
            changes.decide_change(uow, second_analyst, request.id, approve=True)
        changes.decide_change(uow, analyst, request.id, approve=True)
        assert service.policy_setup(uow, analyst).champion_hash == first_champion
        assert service.version_of(uow, analyst, first_champion).status == "published"
        assert service.version_of(uow, analyst, version.content_hash).status == "retired"
        record = service.decide(uow, analyst, application())
        assert record.policy_hash == first_champion

    def test_a_rejected_request_changes_nothing(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal, second_analyst: Principal
    ) -> None:
        first_champion = service.policy_setup(uow, analyst).champion_hash
        version = service.submit(uow, analyst, stricter_policy())
        service.publish(uow, second_analyst, version.content_hash)
        with pytest.raises(Conflict, match="roll back only to a retired version"):
            changes.request_change(uow, analyst, "rollback", version.content_hash)
        request = changes.request_change(uow, analyst, "rollback", first_champion)
        assert changes.decide_change(uow, second_analyst, request.id, approve=False).status == "rejected"
        assert service.policy_setup(uow, analyst).champion_hash == version.content_hash
        with uow:
            row = uow.session.execute(
                select(PolicyVersionRow).where(PolicyVersionRow.content_hash == first_champion)
            ).scalar_one()
            assert row.status == "retired"


class TestChallengerReport:
    def test_the_champion_counts_only_decisions_since_the_test_began(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal, second_analyst: Principal
    ) -> None:
        for i in range(30):
            service.decide(uow, analyst, application({"customer": {"customer_id": f"before{i}"}}))
        version = service.submit(uow, analyst, stricter_policy())
        service.publish(uow, second_analyst, version.content_hash, challenger_share_bp=5000)
        during = [service.decide(uow, analyst, application({"customer": {"customer_id": f"c{i}"}})) for i in range(40)]
        report = challenger_report(uow, analyst)
        arms = {a.arm: a for a in report.arms}
        assert report.window_start is not None
        assert arms["champion"].decisions == sum(r.arm == "champion" for r in during)
        assert arms["champion"].decisions + arms["challenger"].decisions == 40
        test = report.approval_test
        assert test is not None and test.ci_low <= test.difference <= test.ci_high

    def test_outcomes_count_only_once_mature(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal, second_analyst: Principal
    ) -> None:
        version = service.submit(uow, analyst, stricter_policy())
        service.publish(uow, second_analyst, version.content_hash, challenger_share_bp=5000)
        records = [service.decide(uow, analyst, application({"customer": {"customer_id": f"c{i}"}})) for i in range(40)]
        bad = {r.id: i % 3 == 0 for i, r in enumerate(records)}
        young = challenger_report(uow, analyst, bad)
        assert all(a.approved_with_outcome == 0 and a.bad_rate is None for a in young.arms)
        assert sum(a.approved_immature for a in young.arms) == 40
        assert young.bad_rate_test is None
        later = challenger_report(uow, analyst, bad, now=utcnow() + timedelta(days=91))
        assert sum(a.approved_with_outcome for a in later.arms) == 40
        assert sum(a.approved_bad for a in later.arms) == sum(bad.values())
        assert later.bad_rate_test is not None


class TestLimitReviewSubmission:
    def test_a_limit_review_is_submitted_with_the_same_evidence_and_says_what_it_lacks(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal
    ) -> None:
        from microlend.decisioning.limits import default_limit_review

        _, sub = service.submit_with_evidence(uow, analyst, default_limit_review(), note="shipped review")
        assert sub.golden and all(g["passed"] for g in sub.golden)
        sim = sub.simulation
        assert (sim["kind"], sim["source"], sim["rows"]) == ("limit_review", "none", 0)
        assert "golden tests are the only evidence" in sim["fallback"]
