"""Policy versions with maker-checker, stored decisions, replay, champion/challenger and shadow runs."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from microlend.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Principal, Role
from microlend.core.tables import AuditRow
from microlend.core.tenancy import Tenant
from microlend.core.uow import UnitOfWork
from microlend.decisioning import service
from microlend.decisioning.domain import DecisionInput, ModelResult
from microlend.decisioning.policy import deep_merge, default_policy, policy_hash
from microlend.decisioning.tables import DecisionRow, PolicyVersionRow

DEFAULT = default_policy()


def application(overrides: dict[str, Any] | None = None) -> DecisionInput:
    return DecisionInput.from_canonical(deep_merge(DEFAULT["test_base"], overrides or {}))


def stricter_policy() -> dict[str, Any]:
    """The default policy with the cut-off raised from 520 to 540 (and its golden tests adjusted)."""
    doc = copy.deepcopy(DEFAULT)
    doc["metadata"]["name"] = "stricter_micro_loan"
    knockout = next(n for n in doc["nodes"] if n["id"] == "knockout")
    knockout["content"]["rules"][-1]["k_score"] = "< 540"
    for test in doc["tests"]:
        if test["name"].startswith("score 520"):
            test["expect"] = {"outcome": "decline", "reasons": ["SCORE_BELOW_CUTOFF"]}
    return doc


def audit_count(uow: UnitOfWork, action: str) -> int:
    with uow:
        return int(uow.session.execute(select(func.count()).where(AuditRow.action == action)).scalar_one())


class TestANewBank:
    def test_moves_in_with_the_default_policy_in_force(self, uow: UnitOfWork, bank: Tenant, analyst: Principal) -> None:
        active = service.active_policy(uow, analyst)
        assert active.status == "published" and active.author == "system" and active.publisher == "system"
        assert active.content_hash == policy_hash(DEFAULT)
        assert audit_count(uow, "policy.publish") == 1


class TestMakerChecker:
    def test_the_author_cannot_publish_their_own_version(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal
    ) -> None:
        version = service.submit(uow, analyst, stricter_policy())
        with pytest.raises(PermissionDenied, match="maker-checker"):
            service.publish(uow, analyst, version.content_hash)

    def test_someone_without_the_permission_cannot_publish(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal, officer: Principal
    ) -> None:
        version = service.submit(uow, analyst, stricter_policy())
        with pytest.raises(PermissionDenied, match="publish_policies"):
            service.publish(uow, officer, version.content_hash)

    def test_a_second_person_publishes_and_the_old_champion_retires(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal, second_analyst: Principal
    ) -> None:
        old = service.active_policy(uow, analyst)
        version = service.submit(uow, analyst, stricter_policy(), note="cut-off 540")
        assert version.status == "submitted"
        published = service.publish(uow, second_analyst, version.content_hash)
        assert published.publisher == "wang.analyst"
        assert service.active_policy(uow, analyst).content_hash == version.content_hash
        statuses = {v.content_hash: v.status for v in service.list_versions(uow, analyst)}
        assert statuses[old.content_hash] == "retired"
        assert service.decide(uow, analyst, application({"model": {"score": "530"}})).outcome == "decline"

    def test_only_a_submitted_version_can_be_published(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal, second_analyst: Principal
    ) -> None:
        draft = service.save_draft(uow, analyst, stricter_policy())
        with pytest.raises(Conflict, match="this one is draft"):
            service.publish(uow, second_analyst, draft.content_hash)

    def test_a_limit_review_policy_cannot_become_the_credit_policy(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal, second_analyst: Principal
    ) -> None:
        from microlend.decisioning.limits import default_limit_review

        champion = service.policy_setup(uow, analyst).champion_hash
        version = service.submit(uow, analyst, default_limit_review())
        with pytest.raises(ValidationError, match="a limit review policy runs alone"):
            service.publish(uow, second_analyst, version.content_hash, challenger_share_bp=1000)
        published = service.publish(uow, second_analyst, version.content_hash)
        assert published.status == "published"
        assert service.policy_setup(uow, analyst).champion_hash == champion  # the credit policy is untouched

    def test_a_policy_failing_lint_cannot_be_submitted(self, uow: UnitOfWork, bank: Tenant, analyst: Principal) -> None:
        doc = stricter_policy()
        doc["tests"][0]["expect"]["outcome"] = "decline"
        with pytest.raises(ValidationError, match="golden_test_failed"):
            service.submit(uow, analyst, doc)

    def test_the_same_content_is_one_version(self, uow: UnitOfWork, bank: Tenant, analyst: Principal) -> None:
        service.submit(uow, analyst, stricter_policy())
        with pytest.raises(Conflict, match="already exists"):
            service.submit(uow, analyst, stricter_policy())

    def test_a_version_content_cannot_be_edited(self, uow: UnitOfWork, bank: Tenant, analyst: Principal) -> None:
        version = service.submit(uow, analyst, stricter_policy())
        with uow:
            row = uow.session.get(PolicyVersionRow, version.id)
            assert row is not None
            row.content = {"nodes": [], "edges": []}
            with pytest.raises(ValueError, match="cannot change"):
                uow.session.flush()


class TestDecisions:
    def test_a_decision_stores_inputs_versions_trace_outputs_and_latency(
        self, uow: UnitOfWork, bank: Tenant, officer: Principal
    ) -> None:
        record = service.decide(uow, officer, application(), application_ref="APP-1")
        assert (record.outcome, record.limit, record.annual_rate) == (
            "approve",
            Decimal("50000.00"),
            Decimal("0.062000"),
        )
        assert record.arm == "champion" and record.acted_on
        with uow:
            row = uow.session.get(DecisionRow, record.id)
            assert row is not None
            assert row.inputs == application().canonical()
            assert row.model_versions == {"model": "golden"}
            assert row.policy_hash == policy_hash(DEFAULT)
            assert row.trace["knockout"]["traceData"] == []
            assert row.outputs["limit"] == "50000.00" and row.latency_us > 0
        assert audit_count(uow, "decision.create") == 1

    def test_a_decline_tells_the_borrower_only_tellable_reasons(
        self, uow: UnitOfWork, bank: Tenant, officer: Principal
    ) -> None:
        record = service.decide(
            uow,
            officer,
            application({"customer": {"blacklisted": True, "age": 17, "years_in_business": "0"}}),
            locale="en",
        )
        assert record.outcome == "decline" and record.reasons == ("AGE_BELOW_MIN", "BLACKLISTED")
        assert record.borrower_reasons == ("The applicant is younger than 18",)

    def test_missing_features_refer_with_a_reason(self, uow: UnitOfWork, bank: Tenant, officer: Principal) -> None:
        data = deep_merge(DEFAULT["test_base"], {"application": {"amount": "250000"}}) | {"features": {}}
        record = service.decide(uow, officer, DecisionInput.from_canonical(data))
        assert record.outcome == "refer" and "THIN_FILE" in record.reasons

    def test_a_borrower_cannot_decide(self, uow: UnitOfWork, bank: Tenant) -> None:
        borrower = Principal(user_id=99, tenant_id=bank.id, username="b", roles=frozenset({Role.BORROWER}))
        with pytest.raises(PermissionDenied):
            service.decide(uow, borrower, application())

    def test_another_bank_cannot_see_a_decision(
        self, uow: UnitOfWork, bank: Tenant, other_bank: Tenant, officer: Principal
    ) -> None:
        record = service.decide(uow, officer, application())
        outsider = Principal(user_id=50, tenant_id=other_bank.id, username="x", roles=frozenset({Role.AUDITOR}))
        with pytest.raises(NotFound):
            service.get_decision(uow, outsider, record.id)
        with pytest.raises(NotFound):
            service.replay(uow, outsider, record.id)


class TestReplay:
    def test_a_replayed_decision_gives_the_same_result(self, uow: UnitOfWork, bank: Tenant, officer: Principal) -> None:
        overrides: list[dict[str, Any]] = [
            {},
            {"model": {"score": "519"}},
            {"application": {"amount": "250000"}},
            {"features": {}},
        ]
        ids = [service.decide(uow, officer, application(o)).id for o in overrides]
        for decision_id in ids:
            result = service.replay(uow, officer, decision_id)
            assert result.equal, result.differences

    def test_a_decision_stored_before_the_data_section_replays(
        self, uow: UnitOfWork, bank: Tenant, officer: Principal
    ) -> None:
        record = service.decide(uow, officer, application())
        old_capacity = {
            "borrower_kind": "business",
            "verified_turnover": None,
            "turnover_multiple": "0.5",
            "debt_to_income_ceiling": "2",
            "age_at_maturity": 41,
            "id_document_expired": False,
            "credit_report_consent": True,
            "product_min_amount": None,
        }
        with uow:
            row = uow.session.get(DecisionRow, record.id)
            assert row is not None
            assert "data" not in row.inputs and row.inputs["capacity"] == old_capacity
            old = {k: v for k, v in row.inputs.items() if k != "capacity"} | {"capacity": old_capacity}
            row.inputs = old  # exactly what the engine stored before small-business data
            uow.commit()
        result = service.replay(uow, officer, record.id)
        assert result.equal, result.differences

    def test_a_decision_on_small_business_data_replays(self, uow: UnitOfWork, bank: Tenant, officer: Principal) -> None:
        record = service.decide(
            uow,
            officer,
            application(
                {
                    "application": {"product_code": "TAX_LOAN", "amount": "180000"},
                    "capacity": {"tax_loan_fraction": "0.3", "verified_sales_12m": "512345.67"},
                    "data": {"sources": {"tax": "ok", "registry": "ok"}, "unavailable": ["merchant"]},
                    "features": {"tax_sales_12m": 512345.67, "tax_sales_growth_yoy": 0.02},
                }
            ),
        )
        assert (record.outcome, record.limit) == ("approve", Decimal("153700.00"))
        with uow:
            row = uow.session.get(DecisionRow, record.id)
            assert row is not None
            assert row.inputs["data"]["sources"] == {"tax": "ok", "registry": "ok", "merchant": "unavailable"}
            assert row.inputs["capacity"]["verified_sales_12m"] == "512345.67"
        assert service.replay(uow, officer, record.id).equal
        declined = service.decide(uow, officer, application({"features": {"enf_dishonest": 1}}))
        assert (declined.outcome, list(declined.reasons)) == ("decline", ["ENFORCEMENT_DISHONEST"])
        assert service.replay(uow, officer, declined.id).equal

    def test_replay_uses_the_stored_version_after_a_new_one_is_published(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal, second_analyst: Principal
    ) -> None:
        record = service.decide(uow, analyst, application({"model": {"score": "530"}}))
        assert record.outcome == "refer"  # grade E: the grey band is referred
        service.publish(uow, second_analyst, service.submit(uow, analyst, stricter_policy()).content_hash)
        assert service.replay(uow, analyst, record.id).equal

    def test_a_tampered_outcome_is_caught(self, uow: UnitOfWork, bank: Tenant, officer: Principal) -> None:
        record = service.decide(uow, officer, application())
        with uow:
            row = uow.session.get(DecisionRow, record.id)
            assert row is not None
            row.outputs = row.outputs | {"outcome": "decline"}
            uow.commit()
        result = service.replay(uow, officer, record.id)
        assert not result.equal
        assert result.differences == ("outcome: stored 'decline', replayed 'approve'",)


class TestChampionChallenger:
    def test_a_challenger_takes_its_share_of_customers(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal, second_analyst: Principal
    ) -> None:
        version = service.submit(uow, analyst, stricter_policy())
        service.publish(uow, second_analyst, version.content_hash, challenger_share_bp=3000)
        arms = [
            service.decide(uow, analyst, application({"customer": {"customer_id": f"c{i}"}})).arm for i in range(200)
        ]
        share = arms.count("challenger") / len(arms)
        assert 0.2 < share < 0.4
        again = service.decide(uow, analyst, application({"customer": {"customer_id": "c7"}}))
        assert again.arm == arms[7]
        summary = {s.arm: s for s in service.arm_summary(uow, analyst)}
        assert summary["challenger"].policy_hash == version.content_hash
        assert summary["challenger"].decisions + summary["champion"].decisions == 201
        assert summary["champion"].bad_rate is None

    def test_bad_rates_per_arm_come_from_outcomes_as_they_arrive(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal, second_analyst: Principal
    ) -> None:
        version = service.submit(uow, analyst, stricter_policy())
        service.publish(uow, second_analyst, version.content_hash, challenger_share_bp=5000)
        records = [service.decide(uow, analyst, application({"customer": {"customer_id": f"c{i}"}})) for i in range(40)]
        declined = service.decide(uow, analyst, application({"customer": {"age": 17, "years_in_business": "0"}}))
        bad = {r.id: (i % 4 == 0) for i, r in enumerate(records)} | {declined.id: True}
        summary = {s.arm: s for s in service.arm_summary(uow, analyst, bad)}
        for arm in ("champion", "challenger"):
            mine = [r for i, r in enumerate(records) if r.arm == arm]
            assert summary[arm].approved_with_outcome == len(mine)
            assert summary[arm].approved_bad == sum(bad[r.id] for r in mine)

    def test_the_challenger_report_counts_its_arms_as_the_summary_does(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal, second_analyst: Principal
    ) -> None:
        """The report counts the decisions it read for its window; the summary reads them apart: the same
        figures, outcomes and bad loans per arm included (old loans: every outcome mature)."""
        from datetime import date

        from microlend.decisioning.challenger_report import challenger_report
        from microlend.decisioning.deciding import arm_summaries
        from microlend.decisioning.queries import LoanPerformance

        version = service.submit(uow, analyst, stricter_policy())
        service.publish(uow, second_analyst, version.content_hash, challenger_share_bp=5000)
        records = [service.decide(uow, analyst, application({"customer": {"customer_id": f"c{i}"}})) for i in range(24)]
        declined = service.decide(uow, analyst, application({"customer": {"age": 17, "years_in_business": "0"}}))
        performance = {r.id: LoanPerformance(date(2020, 1, 1), date(2020, 3, 1) if i % 3 == 0 else None)
                       for i, r in enumerate(records)} | {declined.id: LoanPerformance(date(2020, 1, 1), None)}
        report = challenger_report(uow, analyst, performance, outcome_months=12)
        bad = {i: p.bad_on is not None for i, p in performance.items()}
        assert report.arms == service.arm_summary(uow, analyst, bad, since=report.window_start)
        assert {s.arm for s in report.arms} == {"champion", "challenger"}
        assert sum(s.approved_bad for s in report.arms) == sum(
            bad[r.id] for r in records if r.outcome == "approve") > 0
        with uow:
            rows = uow.session.execute(select(DecisionRow.id, DecisionRow.arm, DecisionRow.policy_hash,
                                              DecisionRow.outcome, DecisionRow.created_at)
                                       .where(DecisionRow.tenant_id == analyst.tenant_id)).all()
        cut = sorted(r.created_at for r in rows)[len(rows) // 2]  # the younger half is not mature yet
        summed = arm_summaries(rows, bad, mature_before=cut)
        assert summed == service.arm_summary(uow, analyst, bad, mature_before=cut)
        assert sum(s.approved_immature for s in summed) > 0

    def test_a_shadow_policy_is_stored_but_never_acted_on(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal, second_analyst: Principal
    ) -> None:
        version = service.submit(uow, analyst, stricter_policy())
        service.publish(uow, second_analyst, version.content_hash, shadow=True)
        record = service.decide(uow, analyst, application({"model": {"score": "530"}}))
        assert record.outcome == "refer" and record.arm == "champion"  # the grey band goes to a person
        [shadow_id] = record.shadow_ids
        shadow = service.get_decision(uow, analyst, shadow_id)
        assert (shadow.arm, shadow.acted_on, shadow.outcome) == ("shadow", False, "decline")
        assert service.replay(uow, analyst, shadow_id).equal
        service.stop_challenger(uow, second_analyst)
        assert service.decide(uow, analyst, application()).shadow_ids == ()
        assert audit_count(uow, "policy.stop_challenger") == 1
        statuses = {v.content_hash: v.status for v in service.list_versions(uow, analyst)}
        assert statuses[version.content_hash] == "retired"


class TestChallengerModel:
    def test_a_challenger_model_alone_runs_in_shadow_on_the_champion_policy(
        self, uow: UnitOfWork, bank: Tenant, officer: Principal
    ) -> None:
        challenger = ModelResult(model_version="gbdt-2", score=Decimal("500"), pd=Decimal("0.3"))
        record = service.decide(uow, officer, application(), challenger_model=challenger)
        assert record.outcome == "approve" and record.arm == "champion"
        [shadow_id] = record.shadow_ids
        shadow = service.get_decision(uow, officer, shadow_id)
        assert (shadow.arm, shadow.acted_on, shadow.outcome, shadow.policy_hash) == (
            "shadow",
            False,
            "decline",
            record.policy_hash,
        )
        assert service.replay(uow, officer, shadow_id).equal

    def test_the_challenger_arm_decides_with_the_challenger_model(
        self, uow: UnitOfWork, bank: Tenant, analyst: Principal, second_analyst: Principal
    ) -> None:
        version = service.submit(uow, analyst, stricter_policy())
        service.publish(uow, second_analyst, version.content_hash, challenger_share_bp=10_000)
        challenger = ModelResult(model_version="gbdt-2", score=Decimal("700"), pd=Decimal("0.001"))
        record = service.decide(uow, analyst, application({"model": {"score": "530"}}), challenger_model=challenger)
        assert (record.arm, record.outcome, record.annual_rate) == ("challenger", "approve", Decimal("0.045000"))
        with uow:
            row = uow.session.get(DecisionRow, record.id)
            assert row is not None and row.model_versions == {"model": "gbdt-2"}
