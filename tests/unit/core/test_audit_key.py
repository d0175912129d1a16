"""The audit chain's key: from the setting, or in local mode a key file under the data dir, made 0600 once."""

from __future__ import annotations

import stat
from pathlib import Path

from microlend.core.audit import KEY_FILE, chain_key
from microlend.core.settings import Settings


def test_local_mode_makes_a_private_key_file_once_and_keeps_using_it(tmp_path: Path) -> None:
    local = Settings(mode="local", data_dir=tmp_path / "data", audit_key="")
    key = chain_key(local)
    path = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text()) == 64 and key == chain_key(local)
    assert [p.name for p in path.parent.iterdir()] == [KEY_FILE]  # no temporary file left behind
    assert chain_key(Settings(mode="local", data_dir=tmp_path / "other", audit_key="")) != key


def test_the_setting_takes_precedence_and_each_key_gives_its_own_chain(tmp_path: Path) -> None:
    one = chain_key(Settings(mode="local", data_dir=tmp_path, audit_key="k" * 32))
    two = chain_key(Settings(mode="local", data_dir=tmp_path, audit_key="j" * 32))
    assert one != two and len(one) == 32
    assert not (tmp_path / KEY_FILE).exists()
