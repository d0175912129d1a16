"""Two processes train and score a joint model from the CLI: the partner is a real `microlend federation
partner serve` subprocess on a free port; the bank runs `train` and `score`. Lending Club split vertically:
the bank holds the application fields and the outcome, the partner the credit-history fields."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from tests.provider_server import free_port
from typer.testing import CliRunner

from microlend.cli.main import app
from microlend.risk.datasets import lending_club
from microlend.risk.federation.keys import PartnershipKey
from microlend.risk.federation.training import TrainingSettings, central_reference, plaintext_reference

BANK_FIELDS = ["funded_amnt", "term", "addr_state", "verification_status", "annual_inc", "emp_length"]
#: the lender's own grade and rate price the credit history, so neither side holds them
NEITHER = ["int_rate", "sub_grade"]
ROWS = 2400
SETTINGS = {"key_bits": 512, "max_epochs": 4, "batch_size": 400, "learning_rate": 0.3}
runner = CliRunner()


def _id_number(i: int) -> str:
    return f"3301061988{(i % 12) + 1:02d}{(i % 28) + 1:02d}{i:04d}"


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("federation")
    frame = lending_club().frame.iloc[:ROWS + 200].copy()
    frame.insert(0, "id_number", [_id_number(i) for i in range(len(frame))])
    bank = frame.iloc[:ROWS][["id_number", *BANK_FIELDS, "Class"]]  # rows 0..2399
    partner = frame.iloc[200:].drop(columns=[*BANK_FIELDS, *NEITHER, "Class"])  # rows 200..2599: 2,200 shared
    paths = {"bank": base / "bank.csv", "partner": base / "partner.parquet", "key": base / "partnership.key",
             "state": base / "partner-state", "model": base / "model", "scored": base / "scored.csv",
             "base": base}
    bank.to_csv(paths["bank"], index=False)
    partner.to_parquet(paths["partner"], index=False)
    # a fixed key: the shared IDs' order, hence the validation fold, follows the keyed hashes
    paths["key"].write_text("microlend-federation-key-v1:" + bytes(range(32)).hex() + "\n")
    paths["key"].chmod(0o600)
    return paths


def _microlend() -> list[str]:
    """The installed command when there is one (it loads only the group it runs), else the app itself."""
    script = Path(sys.executable).with_name("microlend")
    return [str(script)] if script.is_file() else [sys.executable, "-c", "from microlend.cli.main import app; app()"]


@pytest.fixture(scope="module")
def partner_url(split: dict[str, Path]) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path("src").resolve()), os.environ.get("PYTHONPATH",
                                                                                                      "")])}
    process = subprocess.Popen(
        [*_microlend(), "federation", "partner", "serve", "--data",
         str(split["partner"]), "--id-column", "id_number", "--key-file", str(split["key"]), "--port", str(port),
         "--state-dir", str(split["state"]), "--keep-messages"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    try:
        while True:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            assert time.monotonic() < deadline, "the partner did not start within 240 s"
            try:
                httpx.post(url + "/federation/hello", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def trained(split: dict[str, Path], partner_url: str) -> dict[str, object]:
    result = runner.invoke(app, [
        "federation", "train", "--partner", partner_url, "--key-file", str(split["key"]), "--data",
        str(split["bank"]), "--id-column", "id_number", "--target", "Class", "--bad", "bad", "--kind", "lr",
        "--out", str(split["model"]), "--key-bits", str(SETTINGS["key_bits"]), "--epochs",
        str(SETTINGS["max_epochs"]), "--batch-size", str(SETTINGS["batch_size"]), "--learning-rate",
        str(SETTINGS["learning_rate"]), "--keep-messages"])
    assert result.exit_code == 0, result.output
    model: dict[str, object] = json.loads((split["model"] / "model.json").read_text())
    return model


def test_joint_model_matches_central_training_and_beats_the_bank_alone(split: dict[str, Path],
                                                                       trained: dict[str, object]) -> None:
    metrics = trained["metrics"]
    assert isinstance(metrics, dict)
    assert metrics["shared_ids"] == ROWS - 200
    bank, partner = pd.read_csv(split["bank"]), pd.read_parquet(split["partner"])
    key = PartnershipKey.load(split["key"])
    settings = TrainingSettings(**SETTINGS)  # type: ignore[arg-type]
    same_central = plaintext_reference(bank, partner, id_column="id_number", target="Class", bad="bad", key=key,
                                       settings=settings)
    reference = central_reference(bank, partner, id_column="id_number", target="Class", bad="bad", key=key,
                                  settings=settings)
    joint = metrics["valid_auc_joint"]
    assert abs(joint - same_central) <= 0.01  # the same model trained centrally, in the clear
    assert joint >= reference["valid_auc_central"] - 0.01  # and no worse than a central scikit-learn fit
    assert joint > metrics["valid_auc_bank_only"] == pytest.approx(reference["valid_auc_bank_only"])
    partner_side = trained["partner"]
    assert isinstance(partner_side, dict)
    assert partner_side["key_fingerprint"] == key.fingerprint
    assert "total_il_high_credit_limit" in partner_side["features"]
    assert (split["model"] / "transcript.jsonl").is_file()


def test_batch_scoring_adds_pd_score_and_reasons(split: dict[str, Path], partner_url: str,
                                                 trained: dict[str, object]) -> None:
    to_score = pd.read_csv(split["bank"]).drop(columns=["Class"]).iloc[:300]
    data = split["base"] / "applicants.csv"
    to_score.to_csv(data, index=False)
    result = runner.invoke(app, ["federation", "score", "--model", str(split["model"]), "--partner", partner_url,
                                 "--key-file", str(split["key"]), "--data", str(data), "--out",
                                 str(split["scored"])])
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(split["scored"])
    assert len(scored) == 300
    assert scored["pd"].between(0, 1).all() and scored["score"].notna().all()
    assert scored["reasons"].fillna("").str.len().gt(0).any()
    assert not scored["partner_found"].iloc[:200].any() and scored["partner_found"].iloc[200:].all()
    # the partner answered only for the IDs asked, and logged each request
    log = (split["state"] / "requests.log").read_text().splitlines()
    assert any(json.loads(line)["type"] == "score" for line in log)


def _values(frame: pd.DataFrame, columns: list[str]) -> set[str]:
    out: set[str] = set()
    for column in columns:
        for value in frame[column].dropna().unique().tolist():
            text = str(value)
            if isinstance(value, float) and value.is_integer():
                text = str(int(value))
            if len(text.replace(".", "")) >= 4 or not text.replace(".", "").isdigit():
                out.add(text)
    return out


#: fields that carry positions in the shared order and row counts (public by the protocol): numbers that could
#: equal a feature value by chance, so they are left out of the scan
PUBLIC_COUNTS = {"train", "positions", "batch", "counts", "rows", "count", "epoch"}


def _without_public_counts(text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return text
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in PUBLIC_COUNTS}
    return json.dumps(body)


def test_no_feature_value_label_or_id_crosses_the_wire_in_clear(split: dict[str, Path],
                                                               trained: dict[str, object]) -> None:
    bank, partner = pd.read_csv(split["bank"]), pd.read_parquet(split["partner"])
    partner_values = _values(partner, ["total_bal_il", "total_il_high_credit_limit", "revol_util"])
    bank_values = _values(bank, ["funded_amnt", "annual_inc", "verification_status", "emp_length", "term"])
    secrets = partner_values | bank_values | {"bad", "good"} | set(bank["id_number"]) | set(partner["id_number"])
    bodies = [*sorted((split["model"] / "messages").iterdir()), *sorted((split["state"] / "messages").iterdir())]
    assert len(bodies) > 10
    transcripts = [split["model"] / "transcript.jsonl", split["state"] / "transcript.jsonl"]
    for entry in (json.loads(line) for t in transcripts for line in t.read_text().splitlines()):
        # only metadata: a byte count, a hash and a time, with the message type
        assert set(entry) == {"time", "direction", "type", "size", "sha256"}
        assert isinstance(entry["size"], int) and re.fullmatch(r"[0-9a-f]{64}", entry["sha256"])
        assert entry["type"] in {"hello", "psi/start", "psi/finish", "train/setup", "train/woe", "train/step",
                                 "train/update", "train/partials", "train/finish", "score"}
    token = re.compile(r"[A-Za-z0-9_.]+")
    for path in bodies:
        seen = set(token.findall(_without_public_counts(path.read_text())))
        leaked = seen & secrets
        assert not leaked, f"{path.name} carries {sorted(leaked)[:5]}"
    # and the labels as a sequence: no body holds a list of 0/1 as long as the training fold
    for path in bodies:
        assert not re.search(r"\[(?:[01],){100,}", path.read_text()), path.name


def test_a_wrong_key_is_refused_on_both_sides(split: dict[str, Path], partner_url: str,
                                             trained: dict[str, object]) -> None:
    wrong = split["base"] / "wrong.key"
    assert runner.invoke(app, ["federation", "keygen", str(wrong)]).exit_code == 0
    result = runner.invoke(app, ["federation", "train", "--partner", partner_url, "--key-file", str(wrong),
                                 "--data", str(split["bank"]), "--id-column", "id_number", "--target", "Class",
                                 "--bad", "bad", "--out", str(split["base"] / "nope"), "--key-bits", "512"])
    assert result.exit_code == 2
    assert "wrong --key-file" in result.output
    assert httpx.post(partner_url + "/federation/hello", content=b"{}").status_code == 401
    result = runner.invoke(app, ["federation", "score", "--model", str(split["model"]), "--partner", partner_url,
                                 "--key-file", str(wrong), "--data", str(split["bank"]), "--out",
                                 str(split["base"] / "x.csv")])
    assert result.exit_code == 2 and "not the partnership key" in result.output


def test_secureboost_says_it_is_not_available_yet(split: dict[str, Path]) -> None:
    result = runner.invoke(app, ["federation", "train", "--partner", "http://127.0.0.1:1", "--key-file",
                                 str(split["key"]), "--data", str(split["bank"]), "--id-column", "id_number",
                                 "--target", "Class", "--bad", "bad", "--out", str(split["base"] / "sb"),
                                 "--kind", "secureboost"])
    assert result.exit_code == 2 and "not available yet" in result.output
