"""The starter scorecard every new bank gets (拎包入住): developed on the German credit data, shipped as JSON.

Rebuild it with `python -m microlend.risk.starter` after a change to scorecard development."""

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
