"""The starter models shipped with Microlend (拎包入住), as JSON: the scorecard every new bank gets, developed on the
German credit data, and the expert scorecard for micro-businesses (专家评分卡) a bank registers before it has
default history of its own.

Rebuild them with `python -m microlend.risk.starter` (the German scorecard, after a change to scorecard
development) and `python -m microlend.risk.starter expert` (after a change to the expert points table)."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

STARTER_NAME = "starter-german-credit"
STARTER_SUBDIR = "starter/german_credit_scorecard"
STARTER_DIR = Path(__file__).parent / "german_credit_scorecard"
STARTER_CREATED_AT = datetime(2026, 1, 1, tzinfo=UTC)
#: the starter's validation report figures (report.json of its development)
STARTER_REPORT = Path(__file__).parent / "german_credit_report.json"

EXPERT_STARTER_NAME = "starter-expert-micro-business"
EXPERT_STARTER_SUBDIR = "starter/expert_micro_business"
EXPERT_STARTER_DIR = Path(__file__).parent / "expert_micro_business"
#: what an expert model's metrics say instead of figures: there is no sample to measure it on
EXPERT_METRICS = {"basis": "expert judgement, no development sample",
                  "basis_zh": "专家判断，无建模样本"}
#: the outcome the assumed PD refers to
EXPERT_TARGET, EXPERT_BAD = "default_90dpd_12m", "1"


def build_starter(out_dir: Path = STARTER_DIR) -> Path:
    """Develop the starter scorecard on German credit and keep the files scoring needs; the report's figures
    are kept beside them (STARTER_REPORT), and its HTML page is drawn from them when asked for."""
    from microlend.risk.datasets import german_credit
    from microlend.risk.development import develop_model

    data = german_credit()
    with tempfile.TemporaryDirectory() as work:
        dev = develop_model(data.frame, target=data.target, bad=data.bad, kind="scorecard", out_dir=work,
                            created_at=STARTER_CREATED_AT, name=STARTER_NAME)
        out_dir.mkdir(parents=True, exist_ok=True)
        for file_name in ["model.json", *dev.artefact.metadata.files]:
            shutil.copyfile(Path(work) / file_name, out_dir / file_name)
        if out_dir == STARTER_DIR:
            shutil.copyfile(Path(work) / "report.json", STARTER_REPORT)
    return out_dir


def build_expert_starter(out_dir: Path = EXPERT_STARTER_DIR) -> Path:
    """Write the micro-business expert scorecard (model.json + expert_scorecard.json) from its points table in
    `microlend.risk.starter.micro_business`; the PD mapping is recorded as an assumption in its parameters."""
    from microlend.risk.artefacts import save_model
    from microlend.risk.starter import micro_business

    model = micro_business.micro_business_scorecard()
    save_model(model, out_dir, target=EXPERT_TARGET, bad=EXPERT_BAD, created_at=STARTER_CREATED_AT, data_hash="",
               parameters={"pd_mapping": micro_business.PD_ASSUMPTION, "scaling": model.scaling.to_dict(),
                           "base_points": model.base_points, "score_range": [model.min_score, model.max_score],
                           "description": micro_business.DESCRIPTION},
               metrics=EXPERT_METRICS, name=EXPERT_STARTER_NAME)
    return out_dir
