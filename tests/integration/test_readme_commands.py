"""The README's `microlend` commands work as written: every one names commands and options that exist, and the
ones that need no placeholder, no second person and no running server run on the demo's files in a folder laid
out like the repository after `make demo`."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from microlend.cli.main import app
from microlend.core.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
#: Words in the README that stand for something the reader supplies.
PLACEHOLDERS = {"book.csv", "new.json", "HASH", "…", "NAME", "FILE", "ID", "T", "D", "FILE.csv", "TOKEN"}
#: What the README sets before a command (`BUREAU_KEY=… microlend …`), placeholders given a value.
ENVIRONMENT: dict[str, str] = {}
#: Commands that are only checked for their names and options, and why.
NOT_RUN = {
    ("serve",): "serves until stopped",
    ("worker",): "runs the bank's calendar until stopped (its subcommands run)",
    ("login",): "asks for the person's password",
    ("risk", "mark-validated"): "needs the demo bank's model and a signed-in validator",
    ("policy", "review-limits"): "needs a signed-in person",
}


def _commands_in(text: str) -> list[list[str]]:
    """The `microlend …` lines of the README's shell blocks (continuations joined, comments dropped) and its
    inline `microlend …` spans."""
    found: list[list[str]] = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                name, value = words[0].split("=", 1)  # VAR=value before the command
                ENVIRONMENT[name] = "a-provider-key-0123456789" if value in PLACEHOLDERS else value
                words = words[1:]
            if words and words[0] in ("microlend", ".venv/bin/microlend"):
                found.append(words[1:])
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    for span in re.findall(r"`((?:\.venv/bin/)?microlend [^`\n]+)`", prose):
        found.append([w.strip("[]") for w in span.split()[1:]])
    return found


def _resolve(words: list[str]) -> tuple[tuple[str, ...], Any]:
    """Walk the command tree: the command path and the command the words end on."""
    command: Any = typer.main.get_command(app)
    path: list[str] = []
    for word in words:
        subcommands = getattr(command, "commands", None)  # a group (typer's own click or click's)
        if subcommands is None or word.startswith("-"):
            break
        sub = subcommands.get(word)
        assert sub is not None, f"`microlend {' '.join(words)}`: no command '{word}' under '{' '.join(path)}'"
        command, path = sub, [*path, word]
    return tuple(path), command


def test_the_readme_names_only_commands_and_options_that_exist() -> None:
    commands = _commands_in(README.read_text(encoding="utf-8"))
    assert len(commands) > 40
    for words in commands:
        _, command = _resolve(words)
        options = {opt for param in command.params for opt in param.opts + param.secondary_opts}
        for word in words:
            if word.startswith("--"):
                name = word.split("=", 1)[0]
                assert name == "--help" or name in options, f"`microlend {' '.join(words)}`: no option {name}"


@pytest.fixture
def repository_after_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder like the repository after `make demo`: `src/` and the demo's files under `var/demo-files/`
    (written by the function the demo seeds them with)."""
    from microlend.demo.history import german_credit_frame

    (tmp_path / "src").symlink_to(ROOT / "src")
    files = tmp_path / "var" / "demo-files"
    files.mkdir(parents=True)
    german_credit_frame().to_csv(files / "german_credit.csv", index=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MICROLEND_DATA_DIR", "var")
    monkeypatch.delenv("MICROLEND_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.mark.slow
def test_the_readme_commands_run_as_written_on_the_demo_files(repository_after_demo: Path) -> None:
    commands = _commands_in(README.read_text(encoding="utf-8"))
    runner = CliRunner(env=ENVIRONMENT)
    ran = []
    for words in commands:
        path, _ = _resolve(words)
        if path[:1] == ("demo",) or path in NOT_RUN or PLACEHOLDERS & set(words) or "[--force]" in words:
            continue
        if any(w.isupper() and len(w) > 1 and w.isalpha() for w in words):
            continue  # an inline mention with a placeholder (`--tenant NAME`)
        result = runner.invoke(app, words)
        assert result.exit_code == 0, f"`microlend {shlex.join(words)}` exited {result.exit_code}:\n{result.output}"
        ran.append(path)
    for expected in [("risk", "train"), ("policy", "sample-data"), ("policy", "simulate"), ("policy", "lint"),
                     ("tenant", "create"), ("backup",), ("cob", "run")]:
        assert expected in ran, f"{expected} was not run"
    assert (repository_after_demo / "var" / "report.html").is_file()
    assert (repository_after_demo / "var" / "models" / "sc1").is_dir()
