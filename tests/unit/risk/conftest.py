from __future__ import annotations

import pytest

from microlend.risk.datasets import LabelledDataset, german_credit, stratified_split
from microlend.risk.scorecard import ScorecardFit, train_scorecard


@pytest.fixture(scope="session")
def german() -> LabelledDataset:
    return german_credit()


@pytest.fixture(scope="session")
def german_split(german: LabelledDataset):  # type: ignore[no-untyped-def]
    return stratified_split(german.frame, german.target, german.bad, seed=42)


@pytest.fixture(scope="session")
def german_scorecard(german_split, german: LabelledDataset) -> ScorecardFit:  # type: ignore[no-untyped-def]
    train, _ = german_split
    return train_scorecard(train, german.target, german.bad)
