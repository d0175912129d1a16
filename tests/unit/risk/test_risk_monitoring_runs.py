"""The month-end monitoring run's figures and alerts, on cases made up in memory: drift of scores and
characteristics against the reference cases, ranking on known outcomes, and bad rate by score band."""

from __future__ import annotations

import random
from datetime import date

from microlend.risk.monitoring import NOT_ENOUGH_OUTCOMES, MonitoredCase, MonitoringThresholds, monitoring_run

DAY = date(2026, 3, 31)


def cases(n: int, *, shift: float = 0.0, seed: int = 1, ranks: bool = True) -> list[MonitoredCase]:
    """Scores around 600 (+ shift); the lower the score the likelier bad when `ranks`, else bad at random."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        score = rng.gauss(600 + shift, 50)
        pd_ = min(0.95, max(0.01, (700 - score) / 400))
        bad = rng.random() < (pd_ if ranks else 0.2)
        out.append(MonitoredCase(DAY, score, pd_, {"turnover": score * 100, "industry": "retail"}, bad))
    return out


def test_the_same_population_raises_nothing() -> None:
    reference, recent = cases(400, seed=1), cases(400, seed=2)
    run = monitoring_run(recent, reference, ["turnover", "industry"])
    assert run["score"]["status"] == "stable" and run["reference"] == "first_live_months"
    assert {c["feature"] for c in run["characteristics"]} == {"turnover", "industry"}
    assert run["performance"]["status"] == "stable" and run["performance"]["auc"] > 0.65
    assert run["status"] == "stable" and run["alerts"] == []
    assert sum(b["count"] for b in run["bands"]) == 800


def test_a_shifted_population_and_a_model_that_no_longer_ranks_raise_act() -> None:
    reference, recent = cases(400, seed=1), cases(400, shift=-60, seed=2, ranks=False)
    run = monitoring_run(recent, reference, ["turnover"], judged=recent)
    whats = {a["what"] for a in run["alerts"]}
    assert {"score_psi", "csi", "auc"} <= whats and run["status"] == "act"
    assert run["performance"]["auc"] < 0.6


def test_thresholds_decide_and_few_outcomes_are_not_judged() -> None:
    reference, recent = cases(400, seed=1), cases(400, shift=-15, seed=2)
    lenient = monitoring_run(recent, reference, [], thresholds=MonitoringThresholds(psi_watch=0.5, psi_act=0.9))
    strict = monitoring_run(recent, reference, [], thresholds=MonitoringThresholds(psi_watch=0.001))
    assert not any(a["what"] == "score_psi" for a in lenient["alerts"])
    assert any(a["what"] == "score_psi" for a in strict["alerts"])
    few = monitoring_run(cases(20), [], [], judged=cases(20))
    assert few["score"] is None and few["performance"]["status"] == NOT_ENOUGH_OUTCOMES and few["alerts"] == []


def test_a_development_profile_is_the_reference_when_the_model_has_one() -> None:
    development = {"score_edges": [550.0, 600.0, 650.0], "score_shares": [0.25, 0.25, 0.25, 0.25]}
    run = monitoring_run(cases(400, shift=120), [], [], development=development)
    assert run["reference"] == "development" and run["score"]["status"] == "act"
