from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from microlend.core import audit
from microlend.core.errors import Conflict, NotFound, PermissionDenied
from microlend.core.identity import Principal, Role
from microlend.core.tables import AuditRow
from microlend.risk.datasets import german_credit
from microlend.risk.development import develop_model
from microlend.risk.registry import (
    ScoringRuntime,
    approve_model,
    get_model_version,
    list_model_versions,
    mark_validated,
    promote_model,
    register_model,
    retire_model,
    scores_of,
)
from microlend.risk.tables import ModelScoreRow

from .conftest import Bank, open_bank


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    data = german_credit()
    out = {}
    for kind in ("scorecard", "gbdt"):
        d = tmp_path_factory.mktemp(kind)
        develop_model(data.frame, target=data.target, bad=data.bad, kind=kind, out_dir=d, benchmark=False, seed=7,
                      created_at=datetime(2026, 2, 1, tzinfo=UTC), name=f"german-{kind}")
        out[kind] = d
    return out


def _approved(bank: Bank, directory: Path) -> int:
    wang, li = bank.people["wang"], bank.people["li"]
    v = register_model(bank.uow, wang, directory, store_root=bank.store)
    mark_validated(bank.uow, bank.people["sun"], v.id)
    approve_model(bank.uow, li, v.id)
    return v.id


class TestStarterModel:
    def test_a_new_bank_decides_with_the_expert_scorecard_and_keeps_the_german_one_approved(
            self, shipped_bank: Bank) -> None:
        bank = shipped_bank
        versions = {v.name: v for v in list_model_versions(bank.uow, bank.people["wang"])}
        assert {n: v.status for n, v in versions.items()} == {
            "starter-expert-micro-business": "champion", "starter-german-credit": "approved"}
        outcome = ScoringRuntime().score(bank.uow, bank.people["zhao"], german_credit().frame.iloc[0].to_dict(),
                                         subject_type="application", subject_id=1)
        expert = versions["starter-expert-micro-business"]
        assert outcome.champion.model_version_id == expert.id
        assert outcome.champion.score < 520  # a German credit profile tells the expert scorecard nothing
        promoted = promote_model(bank.uow, bank.people["li"], versions["starter-german-credit"].id, "champion")
        assert promoted.status == "champion"

    def test_a_bank_running_the_german_scorecard_scores_its_profiles(self, bank: Bank) -> None:
        (starter,) = list_model_versions(bank.uow, bank.people["wang"])
        assert starter.status == "champion" and starter.kind == "scorecard"
        assert starter.store_path.startswith("package:")
        outcome = ScoringRuntime().score(bank.uow, bank.people["zhao"], german_credit().frame.iloc[0].to_dict(),
                                         subject_type="application", subject_id=1)
        assert outcome.champion.model_version_id == starter.id
        assert 300 < outcome.champion.score < 800

    def test_the_starter_is_on_the_audit_trail(self, bank: Bank) -> None:
        with bank.uow:
            actions = bank.uow.session.execute(select(AuditRow.action).where(
                AuditRow.tenant_id == bank.tenant_id)).scalars().all()
            assert "model.champion" in actions
            assert audit.verify(bank.uow.session, bank.tenant_id).ok


class TestApproval:
    def test_full_path_from_draft_to_champion(self, bank: Bank, model_dirs: dict[str, Path]) -> None:
        wang, li = bank.people["wang"], bank.people["li"]
        v = register_model(bank.uow, wang, model_dirs["scorecard"], store_root=bank.store)
        assert (v.status, v.trained_by_name, v.name, v.version) == ("draft", wang.username, "german-scorecard", 1)
        assert v.metrics["test"]["auc"] > 0.75 and len(v.dataset_hash) == 64
        validated = mark_validated(bank.uow, bank.people["sun"], v.id)
        assert (validated.status, validated.validated_by_name) == ("validated", bank.people["sun"].username)
        assert validated.validated_at is not None
        approved = approve_model(bank.uow, li, v.id, note="checked the report")
        assert (approved.status, approved.approved_by_name) == ("approved", li.username)
        assert approved.approved_at is not None
        assert promote_model(bank.uow, li, v.id, "champion").status == "champion"

    def test_the_trainer_cannot_approve_their_own_model(self, bank: Bank, model_dirs: dict[str, Path]) -> None:
        wang = bank.people["wang"]
        v = register_model(bank.uow, wang, model_dirs["scorecard"], store_root=bank.store)
        mark_validated(bank.uow, bank.people["sun"], v.id)
        with pytest.raises(PermissionDenied, match="a different person must approve it"):
            approve_model(bank.uow, wang, v.id)
        assert get_model_version(bank.uow, wang, v.id).status == "validated"

    def test_only_a_risk_analyst_or_admin_approves(self, bank: Bank, model_dirs: dict[str, Path]) -> None:
        wang = bank.people["wang"]
        v = register_model(bank.uow, wang, model_dirs["scorecard"], store_root=bank.store)
        mark_validated(bank.uow, bank.people["sun"], v.id)
        with pytest.raises(PermissionDenied):
            approve_model(bank.uow, bank.people["zhao"], v.id)
        with pytest.raises(PermissionDenied):
            approve_model(bank.uow, bank.people["chen"], v.id)
        assert approve_model(bank.uow, bank.people["admin"], v.id).status == "approved"

    def test_a_draft_cannot_skip_validation(self, bank: Bank, model_dirs: dict[str, Path]) -> None:
        v = register_model(bank.uow, bank.people["wang"], model_dirs["scorecard"], store_root=bank.store)
        with pytest.raises(Conflict, match="is draft; it can become retired, validated, not approved"):
            approve_model(bank.uow, bank.people["li"], v.id)
        with pytest.raises(Conflict, match="has not been approved"):
            promote_model(bank.uow, bank.people["li"], v.id, "champion")

    def test_a_credit_officer_cannot_register(self, bank: Bank, model_dirs: dict[str, Path]) -> None:
        with pytest.raises(PermissionDenied, match="train_models"):
            register_model(bank.uow, bank.people["zhao"], model_dirs["scorecard"], store_root=bank.store)

    def test_the_same_model_twice_is_a_conflict(self, bank: Bank, model_dirs: dict[str, Path]) -> None:
        register_model(bank.uow, bank.people["wang"], model_dirs["gbdt"], store_root=bank.store)
        with pytest.raises(Conflict, match="already registered as german-gbdt v1"):
            register_model(bank.uow, bank.people["li"], model_dirs["gbdt"], store_root=bank.store)

    def test_every_transition_writes_an_audit_record(self, bank: Bank, model_dirs: dict[str, Path]) -> None:
        vid = _approved(bank, model_dirs["scorecard"])
        promote_model(bank.uow, bank.people["li"], vid, "champion")
        with bank.uow:
            actions = bank.uow.session.execute(select(AuditRow.action).where(
                AuditRow.object_type == "model_version", AuditRow.object_id == str(vid))
                .order_by(AuditRow.seq)).scalars().all()
        assert actions == ["model.register", "model.validated", "model.approved", "model.champion"]


class TestChampionAndChallenger:
    def test_one_champion_per_bank_the_old_one_retires(self, bank: Bank, model_dirs: dict[str, Path]) -> None:
        li = bank.people["li"]
        (starter,) = list_model_versions(bank.uow, li, status="champion")
        vid = _approved(bank, model_dirs["scorecard"])
        promote_model(bank.uow, li, vid, "champion")
        champions = list_model_versions(bank.uow, li, status="champion")
        assert [v.id for v in champions] == [vid]
        assert get_model_version(bank.uow, li, starter.id).status == "retired"

    def test_challenger_scores_in_shadow_and_every_score_names_its_version(
        self, bank: Bank, model_dirs: dict[str, Path]
    ) -> None:
        li, zhao = bank.people["li"], bank.people["zhao"]
        gbdt_id = _approved(bank, model_dirs["gbdt"])
        promote_model(bank.uow, li, gbdt_id, "challenger")
        case = german_credit().frame.iloc[3].to_dict()
        case["purpose"] = "never seen before"
        case.pop("credit_amount")
        outcome = ScoringRuntime().score(bank.uow, zhao, case, subject_type="application", subject_id="A-7")
        assert outcome.challenger is not None and outcome.challenger.model_version_id == gbdt_id
        rows = scores_of(bank.uow, li, "application", "A-7")
        assert [(r.role, r.shadow) for r in rows] == [("champion", False), ("challenger", True)]
        assert rows[0].model_version_id == outcome.champion.model_version_id
        assert float(rows[1].pd) == pytest.approx(outcome.challenger.pd, abs=1e-9)
        assert all(r.scored_by == zhao.user_id for r in rows)

    def test_a_challenger_can_become_champion(self, bank: Bank, model_dirs: dict[str, Path]) -> None:
        li = bank.people["li"]
        vid = _approved(bank, model_dirs["gbdt"])
        promote_model(bank.uow, li, vid, "challenger")
        promote_model(bank.uow, li, vid, "champion")
        assert ScoringRuntime().in_use(bank.uow, li)[0].id == vid

    def test_without_a_champion_scoring_is_refused(self, bank: Bank) -> None:
        li = bank.people["li"]
        (starter,) = list_model_versions(bank.uow, li)
        retire_model(bank.uow, li, starter.id, reason="replaced by our own model")
        with pytest.raises(Conflict, match="no champion model"):
            ScoringRuntime().score(bank.uow, li, {}, subject_type="application", subject_id=1)
        with pytest.raises(Conflict, match="is retired; it can become nothing"):
            promote_model(bank.uow, li, starter.id, "champion")

    def test_a_borrower_cannot_score(self, bank: Bank) -> None:
        borrower = Principal(user_id=99, tenant_id=bank.tenant_id, username="b", roles=frozenset({Role.BORROWER}))
        with pytest.raises(PermissionDenied):
            ScoringRuntime().score(bank.uow, borrower, {}, subject_type="application", subject_id=1)


class TestTenantIsolation:
    def test_another_banks_model_is_not_found(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              model_dirs: dict[str, Path]) -> None:
        bank = open_bank(tmp_path, monkeypatch, "bank-a")
        from microlend.core import tenancy
        other = tenancy.create_tenant(bank.uow, "bank-b")
        with bank.uow:
            row = tenancy.add_user(bank.uow.session, other.id, "sun@bank-b", "correct-horse-9", ["risk_analyst"])
            outsider = tenancy.principal_for(row)
            bank.uow.commit()
        vid = _approved(bank, model_dirs["scorecard"])
        with pytest.raises(NotFound):
            get_model_version(bank.uow, outsider, vid)
        with pytest.raises(NotFound):
            approve_model(bank.uow, outsider, vid)
        assert vid not in [v.id for v in list_model_versions(bank.uow, outsider)]
        with bank.uow:
            assert bank.uow.session.execute(select(ModelScoreRow)).first() is None
