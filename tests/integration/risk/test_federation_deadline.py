"""A training run's whole exchange with the partner has a deadline: a partner that accepts the connection but never
answers, or hangs in the middle of the encrypted epochs, ends the run with a clear error once the deadline has
passed, instead of waiting on it (each request alone may wait ten minutes)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from tests.provider_server import free_port
from typer.testing import CliRunner

from microlend.cli.main import app as main_app
from microlend.risk.datasets import lending_club
from microlend.risk.federation.client import DeadlinePassed, PartnerClient
from microlend.risk.federation.keys import PartnershipKey
from microlend.risk.federation.partner import PartnerService
from microlend.risk.federation.server import create_app
from microlend.risk.federation.training import TrainingSettings, train_joint

KEY = PartnershipKey(bytes(range(32)))
BANK_FIELDS = ["funded_amnt", "term", "addr_state", "verification_status", "annual_inc", "emp_length"]


@pytest.fixture
def silent() -> Iterator[str]:
    """A port whose kernel accepts connections that nobody ever reads or answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def test_a_silent_partner_is_given_up_at_the_deadline_and_nothing_more_is_sent(silent: str) -> None:
    started = time.perf_counter()
    client = PartnerClient(silent, KEY, timeout=600.0, deadline=0.8)
    with pytest.raises(DeadlinePassed, match=r"deadline of 0.8 s \(hello unanswered\)"):
        client.call("hello", {})
    assert 0.75 < time.perf_counter() - started < 5
    with pytest.raises(DeadlinePassed, match="before it was sent"):
        client.call("psi/start", {})
    client.close()


class Hangs(PartnerService):
    """A partner that answers the PSI and the set-up, then hangs on the first encrypted step."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.release = threading.Event()

    def handle(self, message_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        if message_type == "train/step":
            self.release.wait(120)
        return super().handle(message_type, payload)


def test_a_partner_hung_in_the_middle_of_training_ends_the_run_at_the_deadline(tmp_path: Path) -> None:
    frame = lending_club().frame.iloc[:700].copy()
    frame.insert(0, "id_number", [f"33010619880101{i:04d}" for i in range(len(frame))])
    bank = frame[["id_number", *BANK_FIELDS, "Class"]]
    partner = frame.iloc[50:].drop(columns=[*BANK_FIELDS, "int_rate", "sub_grade", "Class"]).reset_index(drop=True)
    service = Hangs(partner, "id_number", KEY, tmp_path / "partner", workers=1)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(service, KEY, tmp_path / "partner"), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    phases: list[str] = []
    deadline = 20.0
    try:
        started = time.perf_counter()
        with PartnerClient(f"http://127.0.0.1:{port}", KEY, deadline=deadline) as client:
            with pytest.raises(DeadlinePassed, match=r"train/step unanswered\); the run stops"):
                train_joint(bank.reset_index(drop=True), id_column="id_number", target="Class", bad="bad",
                            partner=client, partner_url=client.url, key=KEY,
                            settings=TrainingSettings(key_bits=512, max_epochs=2, batch_size=200, min_shared=100,
                                                      workers=1),
                            progress=lambda phase, done, total: phases.append(phase))
            waited = time.perf_counter() - started
    finally:
        service.release.set()
        server.should_exit = True
        thread.join(timeout=10)
    assert "encrypted set-up" in phases  # it hung after the set-up, in the epochs
    assert deadline - 0.5 < waited < deadline + 10


def test_the_cli_run_stops_at_its_deadline_with_a_clear_message(silent: str, tmp_path: Path) -> None:
    key = tmp_path / "partnership.key"
    key.write_text("microlend-federation-key-v1:" + KEY.secret.hex() + "\n")
    key.chmod(0o600)
    data = tmp_path / "bank.csv"
    data.write_text("id_number,x,y\n1,1,good\n2,2,bad\n")
    started = time.perf_counter()
    result = CliRunner().invoke(main_app, [
        "federation", "train", "--partner", silent, "--key-file", str(key), "--data", str(data), "--id-column",
        "id_number", "--target", "y", "--bad", "bad", "--out", str(tmp_path / "model"), "--deadline", "0.02"])
    assert time.perf_counter() - started < 30
    assert result.exit_code != 0 and "passed its deadline of 1.2 s" in result.output, result.output
    assert not (tmp_path / "model" / "model.json").exists()
    zero = CliRunner().invoke(main_app, [
        "federation", "train", "--partner", silent, "--key-file", str(key), "--data", str(data), "--id-column",
        "id_number", "--target", "y", "--bad", "bad", "--out", str(tmp_path / "model"), "--deadline", "0"])
    assert zero.exit_code == 2 and "deadline" in zero.output
