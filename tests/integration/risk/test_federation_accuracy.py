"""The issue's accuracy figure on real data: Lending Club split vertically (the bank holds the application fields
and the outcome, the partner the credit-history fields), 6,000 shared IDs, a small key. The encrypted joint
training converges to the logistic regression fitted centrally on the same rows, bins, WoE and L2 penalty, and
beats the bank's own model. The partner runs in-process (the HTTP path is the end-to-end test's)."""

from __future__ import annotations

import pandas as pd
import pytest
from tests.partner_wire import InProcess

from microlend.risk.datasets import lending_club
from microlend.risk.federation.keys import PartnershipKey
from microlend.risk.federation.partner import PartnerService
from microlend.risk.federation.training import (
    JointModel,
    TrainingSettings,
    central_reference,
    plaintext_reference,
    train_joint,
)

BANK_FIELDS = ["funded_amnt", "term", "addr_state", "verification_status", "annual_inc", "emp_length"]
#: the lender's own grade and rate price the credit history, so neither side holds them
NEITHER = ["int_rate", "sub_grade"]
SHARED = 6000
EXTRA = 300
KEY = PartnershipKey(bytes(range(32)))
#: every epoch runs (no early stop), so the last one shows where the steps settle
SETTINGS = TrainingSettings(key_bits=512, max_epochs=6, patience=6)


@pytest.fixture(scope="module")
def sides() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = lending_club().frame.iloc[:SHARED + 2 * EXTRA].copy()
    frame.insert(0, "id_number", [f"33010619880101{i:06d}" for i in range(len(frame))])
    bank = frame.iloc[:SHARED + EXTRA][["id_number", *BANK_FIELDS, "Class"]].reset_index(drop=True)
    partner = frame.iloc[EXTRA:].drop(columns=[*BANK_FIELDS, *NEITHER, "Class"]).reset_index(drop=True)
    return bank, partner


@pytest.fixture(scope="module")
def model(sides: tuple[pd.DataFrame, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory) -> JointModel:
    bank, partner = sides
    service = PartnerService(partner, "id_number", KEY, tmp_path_factory.mktemp("partner-state"))
    return train_joint(bank, id_column="id_number", target="Class", bad="bad", partner=InProcess(service),
                       partner_url="http://127.0.0.1:1", key=KEY, settings=SETTINGS)


def test_joint_training_reaches_the_central_model_and_beats_the_bank_alone(
        sides: tuple[pd.DataFrame, pd.DataFrame], model: JointModel) -> None:
    bank, partner = sides
    m = model.metrics
    assert m["shared_ids"] == SHARED
    reference = central_reference(bank, partner, id_column="id_number", target="Class", bad="bad", key=KEY,
                                  settings=SETTINGS)
    central = reference["valid_auc_central_same"]
    settled = model.history[-1]["valid_auc"]
    assert len(model.history) == SETTINGS.max_epochs
    # where the encrypted steps settle is the centrally fitted model of the same loss and penalty
    assert abs(settled - central) <= 0.01
    # the model kept (the best validation epoch) is within 0.01 of it or better, and beats the bank alone
    assert m["valid_auc_joint"] >= central - 0.01
    assert m["valid_auc_joint"] > m["valid_auc_bank_only"] + 0.03
    assert m["valid_auc_bank_only"] == pytest.approx(reference["valid_auc_bank_only"])
    # the encryption costs nothing but fixed-point rounding: the same steps in the clear land on the same AUC
    same = plaintext_reference(bank, partner, id_column="id_number", target="Class", bad="bad", key=KEY,
                               settings=SETTINGS)
    assert m["valid_auc_joint"] == pytest.approx(same, abs=0.002)
