"""Reason wording at validation, on SQLite and PostgreSQL: a model with a feature that has no reason text in
both languages cannot be validated (the message names the features); the dataset contract's wording fixes it
and is kept with the model."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from microlend.core.errors import Conflict
from microlend.data.contracts import DataContract
from microlend.risk import service
from microlend.risk.datasets import german_credit
from microlend.risk.development import develop_model
from microlend.risk.reasons import reason_message
from microlend.risk.registry import get_model_version, mark_validated, register_model

from .conftest import Bank

CREATED = datetime(2026, 2, 1, tzinfo=UTC)
RENAMED = {"status_of_existing_checking_account": "checking", "duration_in_month": "term_months"}


def _develop(out: Path, wording: dict[str, dict[str, str]] | None, seed: int) -> Path:
    frame = german_credit().frame.rename(columns=RENAMED)
    develop_model(
        frame,
        target="creditability",
        bad="bad",
        kind="scorecard",
        out_dir=out,
        created_at=CREATED,
        benchmark=False,
        seed=seed,
        name="renamed",
        reason_wording=wording,
    )
    return out


def test_a_feature_without_wording_blocks_validation_until_the_contract_words_it(bank: Bank, tmp_path: Path) -> None:
    unworded = register_model(bank.uow, bank.people["wang"], _develop(tmp_path / "a", None, 5), store_root=bank.store)
    with pytest.raises(Conflict, match=r"no reason wording \(en and zh-CN\) for checking, term_months; declare"):
        mark_validated(bank.uow, bank.people["sun"], unworded.id)
    assert get_model_version(bank.uow, bank.people["sun"], unworded.id).status == "draft"

    contract = DataContract.from_dict(
        {
            "name": "renamed",
            "columns": [
                {
                    "name": "checking",
                    "dtype": "string",
                    "reason": {"en": "the checking account is low", "zh-CN": "活期账户余额偏低"},
                },
                {"name": "term_months", "dtype": "int", "reason": {"en": "the term is long", "zh-CN": "期限偏长"}},
            ],
        }
    )
    worded = register_model(
        bank.uow, bank.people["wang"], _develop(tmp_path / "b", contract.reason_wording(), 6), store_root=bank.store
    )
    validated = mark_validated(bank.uow, bank.people["sun"], worded.id)
    assert validated.status == "validated"
    wording = validated.parameters["reason_wording"]
    assert reason_message("term_months", "zh-CN", wording) == "term_months：期限偏长"
    case = german_credit().frame.rename(columns=RENAMED).drop(columns="creditability").iloc[0].to_dict()
    risky = {**case, "checking": "... < 0 DM", "term_months": 60}
    scored = service.score_case(bank.uow, bank.people["zhao"], worded.id, risky)
    messages = {r.feature: r.message("zh-CN") for r in scored.reasons}
    assert messages.get("checking") == "checking：活期账户余额偏低"
