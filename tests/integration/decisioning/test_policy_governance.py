"""Policy governance: one publish path with evidence (golden tests, a simulation on the bank's own history),
promote and roll back with a second person, and the challenger report over its test window."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from microlend.core.clock import utcnow
from microlend.core.errors import Conflict, PermissionDenied, ValidationError
from microlend.core.identity import Principal
from microlend.core.money import round_half_up
from microlend.core.tables import AuditRow
from microlend.core.tenancy import Tenant
from microlend.core.uow import UnitOfWork
from microlend.decisioning import changes, service, versions
from microlend.decisioning.challenger_report import add_months, challenger_report, wilson_interval
from microlend.decisioning.domain import DecisionInput
from microlend.decisioning.evidence import FALLBACK_SAMPLE
from microlend.decisioning.policy import deep_merge
from microlend.decisioning.queries import LoanPerformance
from microlend.decisioning.tables import DecisionRow, PolicyVersionRow

from .test_decision_service import DEFAULT, application, stricter_policy


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
        # the same good application is approved by both arms every time: no variation, so no test to show
        assert {r.outcome for r in during} == {"approve"}
        assert report.approval_test is None

    def test_the_window_excludes_earlier_decisions_and_loans_not_yet_on_book_for_the_outcome_window(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal, second_analyst: Principal
    ) -> None:
        today = utcnow().date()
        old = [service.decide(uow, analyst, application({"customer": {"customer_id": f"old{i}"}})) for i in range(10)]
        version = service.submit(uow, analyst, stricter_policy())
        service.publish(uow, second_analyst, version.content_hash, challenger_share_bp=5000)
        records = [service.decide(uow, analyst, application({"customer": {"customer_id": f"c{i}"}})) for i in range(40)]
        six_months_ago, one_month_ago = add_months(today, -6), add_months(today, -1)
        performance = {r.id: LoanPerformance(six_months_ago, six_months_ago + timedelta(days=45)) for r in old}
        # in the window: even ones paid out six months ago (mature), odd ones a month ago (immature); every
        # third went bad in its second month
        for i, r in enumerate(records):
            paid_out = six_months_ago if i % 2 == 0 else one_month_ago
            bad_on = paid_out + timedelta(days=40) if i % 3 == 0 else None
            performance[r.id] = LoanPerformance(paid_out, bad_on if bad_on is None or bad_on <= today else None)
        report = challenger_report(uow, analyst, performance, outcome_months=3)
        challenger = next(c for c in report.comparisons if c.arm == "challenger")
        arms = {"champion": challenger.baseline, "challenger": challenger.candidate}
        approved = {r.id for r in records if r.outcome == "approve"}
        mature = [i for i, r in enumerate(records) if r.id in approved and i % 2 == 0]
        assert sum(a.decisions for a in arms.values()) == 40
        assert sum(a.mature for a in arms.values()) == len(mature)
        assert sum(a.immature for a in arms.values()) == len([r for r in records if r.id in approved]) - len(mature)
        assert sum(a.bad for a in arms.values()) == len([i for i in mature if i % 3 == 0])
        assert challenger.bad_rate_test is not None
        for a in arms.values():
            assert a.bad_ci == wilson_interval(a.bad, a.mature)
            assert a.approval_ci == wilson_interval(a.approved, a.decisions)
            assert a.expected_loss == round_half_up(Decimal("0.012") * Decimal("0.45") * Decimal("50000")) * a.approved
        # income over the term the application asked for, read from the decisions' stored inputs
        term = DEFAULT["test_base"]["application"]["term_months"]
        assert sum(a.interest_income for a in arms.values()) == sum(
            round_half_up(r.limit * r.annual_rate * (term + 1) / 24) for r in records
            if r.outcome == "approve" and r.annual_rate is not None) > 0
        # the same decisions before their loans had three months on book: no outcome yet
        young = challenger_report(uow, analyst, {i: LoanPerformance(one_month_ago, None) for i in performance})
        assert all(c.baseline.mature == 0 and c.candidate.mature == 0 for c in young.comparisons)
        assert young.bad_rate_test is None

    def test_a_shadow_runs_beside_a_split_challenger_and_the_report_covers_both(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal, second_analyst: Principal
    ) -> None:
        split = service.submit(uow, analyst, stricter_policy())
        service.publish(uow, second_analyst, split.content_hash, challenger_share_bp=5000)
        shadow_doc = stricter_policy()
        shadow_doc["metadata"]["name"] = "shadow_micro_loan"
        shadow = service.submit(uow, analyst, shadow_doc)
        service.publish(uow, second_analyst, shadow.content_hash, shadow=True)
        setup = service.policy_setup(uow, analyst)
        assert (setup.challenger_hash, setup.challenger_share_bp, setup.shadow_hash) == (
            split.content_hash, 5000, shadow.content_hash)
        records = [service.decide(uow, analyst, application({"customer": {"customer_id": f"c{i}"}})) for i in range(30)]
        assert {r.arm for r in records} == {"champion", "challenger"}
        assert all(len(r.shadow_ids) == 1 for r in records)
        shadows = [service.get_decision(uow, analyst, r.shadow_ids[0]) for r in records]
        assert {(s.arm, s.acted_on, s.policy_hash) for s in shadows} == {("shadow", False, shadow.content_hash)}
        report = challenger_report(uow, analyst)
        by_arm = {c.arm: c for c in report.comparisons}
        assert set(by_arm) == {"challenger", "shadow"}
        assert by_arm["challenger"].baseline.decisions + by_arm["challenger"].candidate.decisions == 30
        assert by_arm["shadow"].candidate.decisions == 30 and by_arm["shadow"].baseline.decisions == 30
        assert by_arm["shadow"].baseline.policy_hashes == tuple(sorted({setup.champion_hash, split.content_hash}))
        # stopping the shadow leaves the split running, and the other way round
        service.stop_challenger(uow, second_analyst, "shadow")
        setup = service.policy_setup(uow, analyst)
        assert (setup.challenger_hash, setup.shadow_hash) == (split.content_hash, None)
        assert service.decide(uow, analyst, application()).shadow_ids == ()
        assert service.version_of(uow, analyst, shadow.content_hash).status == "retired"

    def test_the_shadow_can_be_promoted_by_a_second_person(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal, second_analyst: Principal
    ) -> None:
        shadow = service.submit(uow, analyst, stricter_policy())
        service.publish(uow, second_analyst, shadow.content_hash, shadow=True)
        request = changes.request_change(uow, analyst, "promote", shadow.content_hash)
        changes.decide_change(uow, second_analyst, request.id, approve=True)
        setup = service.policy_setup(uow, analyst)
        assert (setup.champion_hash, setup.shadow_hash) == (shadow.content_hash, None)


class TestEnvironments:
    def test_a_draft_moves_to_test_only_when_lint_clean_and_its_golden_tests_pass(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal
    ) -> None:
        failing = stricter_policy()
        failing["metadata"]["name"] = "failing"
        failing["tests"][0]["expect"] = {"outcome": "decline"}
        untested = stricter_policy()
        untested["metadata"]["name"] = "untested"
        del untested["tests"]
        for doc, match in ((failing, "golden_test_failed"), (untested, "no golden tests")):
            draft = service.save_draft(uow, analyst, doc)
            assert draft.environment == "draft"
            with pytest.raises(ValidationError, match=match):
                versions.promote_to_test(uow, analyst, draft.content_hash)
            assert service.version_of(uow, analyst, draft.content_hash).environment == "draft"
        good = service.save_draft(uow, analyst, stricter_policy())
        assert versions.promote_to_test(uow, analyst, good.content_hash).environment == "test"
        assert audit_actions(uow, "policy.promote_to_test") == ["policy.promote_to_test"]
        with pytest.raises(Conflict, match="already in test"):
            versions.promote_to_test(uow, analyst, good.content_hash)

    def test_a_version_in_test_is_evaluated_on_request_and_never_decides_a_live_application(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal
    ) -> None:
        low = deep_merge(DEFAULT["test_base"], {"model": {"score": "530"}})
        draft = service.save_draft(uow, analyst, stricter_policy())
        with pytest.raises(Conflict, match="is in draft, not test"):
            versions.evaluate_in_environment(uow, analyst, draft.content_hash, "test", low)
        versions.promote_to_test(uow, analyst, draft.content_hash)
        with uow:
            decisions_before = uow.session.execute(select(func.count()).select_from(DecisionRow)).scalar_one()
        outputs = versions.evaluate_in_environment(uow, analyst, draft.content_hash, "test", low)
        assert (outputs["outcome"], outputs["reasons"]) == ("decline", ["SCORE_BELOW_CUTOFF"])
        with uow:
            assert uow.session.execute(select(func.count()).select_from(DecisionRow)).scalar_one() == decisions_before
        live = service.decide(uow, analyst, DecisionInput.from_canonical(low))
        assert live.outcome == "refer" and live.policy_hash == service.policy_setup(uow, analyst).champion_hash
        with pytest.raises(Conflict, match="not production"):
            versions.evaluate_in_environment(uow, analyst, draft.content_hash, "production", low)

    def test_production_is_reached_only_through_submission_and_a_second_person(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal, second_analyst: Principal
    ) -> None:
        version = service.submit(uow, analyst, stricter_policy())
        assert service.version_of(uow, analyst, version.content_hash).environment == "test"
        with pytest.raises(PermissionDenied):
            service.publish(uow, analyst, version.content_hash)
        assert service.version_of(uow, analyst, version.content_hash).environment == "test"
        published = service.publish(uow, second_analyst, version.content_hash)
        assert published.environment == "production"
        champion = service.active_policy(uow, analyst)
        assert champion.environment == "production"

    def test_a_limit_review_goes_through_the_same_environments(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal, second_analyst: Principal
    ) -> None:
        from microlend.decisioning.limits import default_limit_review

        doc = default_limit_review()
        draft = service.save_draft(uow, analyst, doc)
        versions.promote_to_test(uow, analyst, draft.content_hash)
        line = deep_merge(doc["test_base"], {})
        outputs = versions.evaluate_in_environment(uow, analyst, draft.content_hash, "test", line)
        assert outputs["action"] in ("increase", "keep", "decrease", "freeze")
        service.submit(uow, analyst, doc)
        assert service.publish(uow, second_analyst, draft.content_hash).environment == "production"


class TestEveryKindNeedsEvidence:
    def test_a_kind_without_a_simulation_on_the_bank_s_history_cannot_be_submitted(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from microlend.decisioning import domain, lint

        doc = stricter_policy()
        doc["metadata"]["kind"] = "collections_strategy"
        monkeypatch.setitem(domain.OUTPUTS_BY_KIND, "collections_strategy", domain.REQUIRED_OUTPUTS)
        assert lint.lint_policy(doc).ok
        with pytest.raises(ValidationError, match="collections_strategy policy has no simulation"):
            service.submit(uow, analyst, doc)
        with uow:
            assert uow.session.execute(select(PolicyVersionRow).where(
                PolicyVersionRow.name == doc["metadata"]["name"])).scalar_one_or_none() is None


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


class TestEarlyWarningSubmission:
    def test_early_warning_rules_are_simulated_on_the_current_book_and_run_alone(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal
    ) -> None:
        from microlend.decisioning.early_warning import default_early_warning

        _, sub = service.submit_with_evidence(uow, analyst, default_early_warning(), note="shipped rules")
        assert sub.golden and all(g["passed"] for g in sub.golden)
        assert (sub.simulation["kind"], sub.simulation["rows"]) == ("early_warning", 0)
        assert "golden tests are the only evidence" in sub.simulation["fallback"]
